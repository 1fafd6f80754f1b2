"""Credentials written into a configured URL: found (to refuse them) and masked (to quote one).

A URL in the configuration reaches places a secret must not: the ConfigMap, the logs, and for a
tile's link every signed-in browser. Credentials go in the environment (the chart's Secret).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that carry a credential: ?private_token=, ?access_token=, ?api_key=, ?sig=,
# and libpq's ?sslpassword= (a Redis or database URL may carry ?password=, which both honour).
SECRET_PARAMETER = re.compile(
    r"(?:^|[_-])(?:token|secret|password|passwd|pass|key|apikey|sig|signature|auth|credentials?)$"
    r"|^sslpassword$",
    re.IGNORECASE,
)
MASK = "***"


def credentials_in(url: str) -> str | None:
    """What credential `url` carries, in words ("private_token= in its query"), or None."""
    parts = urlsplit(url)
    if parts.password is not None:
        return "a password before the host"
    if parts.username is not None:
        return "a user name before the host"
    return secret_parameter_in(url)


def secret_parameter_in(url: str) -> str | None:
    """The query or fragment parameter of `url` that carries a credential ("password= in its
    query"), or None: for the URLs whose user name is no secret (a database's, Redis')."""
    parts = urlsplit(url)
    for where, text in (("query", parts.query), ("fragment", parts.fragment)):
        for name, _ in parse_qsl(text, keep_blank_values=True):
            if SECRET_PARAMETER.search(name):
                return f"{name}= in its {where}"
    return None


def masked_query(url: str) -> str:
    """`url` with the values of its secret query (and fragment) parameters replaced by ***: for
    a URL whose user name is no secret (a database's)."""
    parts = urlsplit(url)
    return urlunsplit(
        parts._replace(query=_masked_pairs(parts.query), fragment=_masked_pairs(parts.fragment))
    )


def masked(url: str) -> str:
    """`url` as a message may quote it: its password and secret query values replaced by ***."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "(a URL that cannot be read, not quoted)"
    netloc = parts.netloc
    user, at, host = netloc.rpartition("@")
    if at and password is not None:
        netloc = f"{user.partition(':')[0]}:{MASK}@{host}"
    elif at:  # a name alone may be a token (https://glpat-…@gitlab.example.org)
        netloc = f"{MASK}@{host}"
    return urlunsplit(
        (parts.scheme, netloc, parts.path, _masked_pairs(parts.query), _masked_pairs(parts.fragment))
    )


def _masked_pairs(text: str) -> str:
    """A query (or fragment) with the values of its secret parameters replaced by ***."""
    pairs = parse_qsl(text, keep_blank_values=True)
    if not any(SECRET_PARAMETER.search(name) for name, _ in pairs):
        return text
    return urlencode([(n, MASK if SECRET_PARAMETER.search(n) else v) for n, v in pairs], safe="*")
