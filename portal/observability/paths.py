"""A URL's path as the logs keep it: cut short, and without the secrets a path may carry.

Used by the portal's request lines (an unknown URL's path) and by gunicorn's access log.
"""

from __future__ import annotations

import re

# A calendar feed's token is the feed's only key: anyone who reads the log could subscribe.
_FEED = re.compile(r"^(/feeds/[^/]+/)[^/]+?(\.ics)?(?=/|$)")
# Any other long opaque segment (a token in a mistyped address), never a word a broken link or a
# scanner would use.
_OPAQUE_SEGMENT = re.compile(r"(?<=/)[A-Za-z0-9_-]{20,}")
LONGEST = 200


def logged_path(path: str) -> str:
    """`path` cut to LONGEST characters, a feed's token as "<token>", long opaque segments as "…"."""
    return _OPAQUE_SEGMENT.sub("…", _FEED.sub(r"\1<token>\2", path[:LONGEST]))
