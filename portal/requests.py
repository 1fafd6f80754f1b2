"""The portal's request class: what every poll repeats is parsed once per worker."""

from __future__ import annotations

from flask import Request
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.utils import cached_property

from .memo import Memo

# Parsed Cookie headers by their exact text: a dashboard sends the same one with every poll.
_cookies: Memo[str, ImmutableMultiDict[str, str]] = Memo(4096)


class PortalRequest(Request):
    """Flask's request, whose cookies come from a per-worker memo of the raw header."""

    @cached_property
    def cookies(self) -> ImmutableMultiDict[str, str]:
        raw = self.environ.get("HTTP_COOKIE", "")
        found = _cookies.get(raw)
        if found is None:
            found = super().cookies  # werkzeug's parser; the result is immutable, safe to share
            _cookies.put(raw, found)
        return found
