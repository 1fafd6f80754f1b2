"""What every upstream client shares: the error hierarchy and one bounded HTTP JSON fetch.

No Flask here. Error messages are shown to users: they say what failed in words and never
carry secrets, query strings or credentials (URLs are redacted to scheme, host and path).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3

JSON = Any


def N_(msgid: str) -> str:
    """Mark a message for translation; it is translated when rendered, not here."""
    return msgid


@dataclass(frozen=True)
class Reason:
    """Why something failed, for a user: an English msgid and its values, translated at render.

    Safe to show: built only from the upstream's name, HTTP status codes, redacted URLs and
    numbers, never from credentials, query strings or upstream-supplied text.
    """

    msgid: str
    values: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, msgid: str, **values: object) -> Reason:
        return cls(msgid, tuple((k, str(v)) for k, v in values.items()))

    def __str__(self) -> str:
        return self.msgid % dict(self.values)


class UpstreamError(Exception):
    """An upstream call failed; `reason` says why in words safe to show to a user."""

    def __init__(self, upstream: str, reason: Reason) -> None:
        super().__init__(str(reason))
        self.upstream = upstream
        self.reason = reason

    @property
    def message(self) -> str:
        """The English text, for logs."""
        return str(self.reason)

    @property
    def outcome(self) -> str:
        """Short label used in logs and metrics."""
        return "error"


class UpstreamUnavailable(UpstreamError):
    """Timeout, refused connection, 5xx, throttling: try again later."""

    @property
    def outcome(self) -> str:
        return "unavailable"


class UpstreamAuthError(UpstreamError):
    """The upstream refused our credentials (401/403)."""

    @property
    def outcome(self) -> str:
        return "auth"


class UpstreamBadResponse(UpstreamError):
    """The upstream answered, but not with what we can use (404, garbage, too large)."""

    @property
    def outcome(self) -> str:
        return "bad_response"


def redact_url(url: str) -> str:
    """Keep scheme, host, port and path; drop credentials, query and fragment."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass(frozen=True)
class HttpLimits:
    """Bounds of one upstream call."""

    timeout: float = 5.0
    connect_timeout: float = 2.0
    max_bytes: int = 2_000_000


class BoundedJsonGetter:
    """GET a JSON document within a deadline and a size cap, mapping failures to UpstreamError."""

    def __init__(
        self,
        upstream: str,
        session: requests.Session,
        limits: HttpLimits,
        verify: bool | str = True,
    ) -> None:
        self.upstream = upstream
        self.session = session
        self.limits = limits
        self.verify = verify

    def get(self, url: str, params: dict[str, Any] | None = None, deadline: float | None = None) -> JSON:
        """Fetch `url` and return the decoded JSON body.

        `deadline` (a time.monotonic() value) bounds several calls that make one result;
        by default the call has the whole `timeout`.
        """
        body = self._get_bytes(url, params, deadline)
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise UpstreamBadResponse(
                self.upstream,
                Reason.of(
                    N_("%(upstream)s returned a response that is not valid JSON"), upstream=self.upstream
                ),
            ) from exc

    def _get_bytes(self, url: str, params: dict[str, Any] | None, deadline: float | None) -> bytes:
        limits = self.limits
        if deadline is None:
            deadline = time.monotonic() + limits.timeout
        remaining = deadline - time.monotonic()
        if remaining <= 0.05:
            raise UpstreamUnavailable(
                self.upstream,
                Reason.of(
                    N_("%(upstream)s did not answer within %(seconds)s s"),
                    upstream=self.upstream,
                    seconds=f"{limits.timeout:g}",
                ),
            )
        where = redact_url(url)
        try:
            response = self.session.get(
                url,
                params=params,
                timeout=(min(limits.connect_timeout, remaining), remaining),
                stream=True,
                allow_redirects=False,
                verify=self.verify,
                headers={"Accept": "application/json"},
            )
        except requests.Timeout as exc:
            raise UpstreamUnavailable(
                self.upstream,
                Reason.of(
                    N_("%(upstream)s did not answer within %(seconds)s s"),
                    upstream=self.upstream,
                    seconds=f"{limits.timeout:g}",
                ),
            ) from exc
        except requests.ConnectionError as exc:
            raise UpstreamUnavailable(
                self.upstream,
                Reason.of(
                    N_("%(upstream)s is unreachable (connection to %(where)s failed)"),
                    upstream=self.upstream,
                    where=where,
                ),
            ) from exc
        except requests.RequestException as exc:
            raise UpstreamUnavailable(
                self.upstream, Reason.of(N_("%(upstream)s request failed"), upstream=self.upstream)
            ) from exc
        with response:
            self._check_status(response, where)
            return self._read_capped(response, deadline)

    def _check_status(self, response: requests.Response, where: str) -> None:
        status = response.status_code
        if status in (401, 403):
            raise UpstreamAuthError(
                self.upstream,
                Reason.of(
                    N_("%(upstream)s refused the portal's credentials (HTTP %(status)s)"),
                    upstream=self.upstream,
                    status=status,
                ),
            )
        if status == 404:
            raise UpstreamBadResponse(
                self.upstream,
                Reason.of(N_("%(upstream)s: not found (%(where)s)"), upstream=self.upstream, where=where),
            )
        if status == 429 or status >= 500:
            raise UpstreamUnavailable(
                self.upstream,
                Reason.of(
                    N_("%(upstream)s is failing (HTTP %(status)s from %(where)s)"),
                    upstream=self.upstream,
                    status=status,
                    where=where,
                ),
            )
        if status != 200:
            raise UpstreamBadResponse(
                self.upstream,
                Reason.of(
                    N_("%(upstream)s answered HTTP %(status)s from %(where)s"),
                    upstream=self.upstream,
                    status=status,
                    where=where,
                ),
            )

    def _read_capped(self, response: requests.Response, deadline: float) -> bytes:
        cap = self.limits.max_bytes
        too_large = UpstreamBadResponse(
            self.upstream,
            Reason.of(
                N_("%(upstream)s sent a response larger than %(kb)s kB"),
                upstream=self.upstream,
                kb=cap // 1000,
            ),
        )
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                # read1 returns what has arrived instead of waiting for a full buffer, so a
                # slow drip is noticed at the deadline rather than when the body completes.
                chunk = response.raw.read1(65536, decode_content=True)
                if not chunk:
                    break
                size += len(chunk)
                if size > cap:
                    raise too_large
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise UpstreamUnavailable(
                        self.upstream,
                        Reason.of(
                            N_("%(upstream)s is too slow (no complete answer within %(seconds)s s)"),
                            upstream=self.upstream,
                            seconds=f"{self.limits.timeout:g}",
                        ),
                    )
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError) as exc:
            raise UpstreamUnavailable(
                self.upstream,
                Reason.of(
                    N_("%(upstream)s did not answer within %(seconds)s s"),
                    upstream=self.upstream,
                    seconds=f"{self.limits.timeout:g}",
                ),
            ) from exc
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise UpstreamUnavailable(
                self.upstream, Reason.of(N_("%(upstream)s broke off the response"), upstream=self.upstream)
            ) from exc
        return b"".join(chunks)


def require(mapping: Any, key: str, kind: type | tuple[type, ...], upstream: str) -> Any:
    """Return mapping[key] if it has the expected type, else raise UpstreamBadResponse."""
    if not isinstance(mapping, dict) or key not in mapping:
        raise UpstreamBadResponse(
            upstream,
            Reason.of(
                N_("%(upstream)s returned an incomplete answer (no '%(key)s')"), upstream=upstream, key=key
            ),
        )
    value = mapping[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise UpstreamBadResponse(
            upstream,
            Reason.of(N_("%(upstream)s returned a malformed '%(key)s'"), upstream=upstream, key=key),
        )
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)
