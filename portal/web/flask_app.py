"""The portal's Flask and request classes: what every poll repeats is worked out once per worker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, Request
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.utils import cached_property

from ..caching.memo import Memo

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


_SYNCED_MAX = 512  # the app's hooks and views are a few dozen


class PortalFlask(Flask):
    """Flask with the portal's request class, and each hook's sync-or-async check made once.

    Flask asks `inspect.iscoroutinefunction` of every before/after/teardown hook and view on
    every request; the answer never changes for a function.
    """

    request_class = PortalRequest

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._synced: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        found = self._synced.get(func)
        if found is None:
            found = super().ensure_sync(func)
            if len(self._synced) >= _SYNCED_MAX:  # functions made per request (after_this_request)
                self._synced.clear()
            self._synced[func] = found
        return found
