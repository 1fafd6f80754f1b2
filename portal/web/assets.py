"""Static files cached by version: a year when the URL names this pod's file, never otherwise.

The page asks for each static file as `/static/<file>?v=<content hash>`, so a browser may keep
it for a year. During a rolling upgrade, though, a page drawn by a new pod can have its
stylesheet answered by an old one: the old file under the new URL. Kept for a year, that page
would look broken until the next release. So only an answer whose file matches the `v` asked
for is kept; any other is revalidated at each use (its ETag), and the next load gets the file
of whichever release answers.
"""

from __future__ import annotations

from flask import Flask, request

from ..state import portal_state

ONE_YEAR = 365 * 24 * 3600


class PortalFlask(Flask):
    """Flask, with static files cached for a year only under their own version."""

    def get_send_file_max_age(self, filename: str | None) -> int | None:
        """A year when `?v=` is this file's content hash; else None (no-cache: revalidate)."""
        versions = portal_state(self).static_versions
        asked = request.args.get("v")
        if filename is not None and asked and asked == versions.get(filename):
            return ONE_YEAR
        return None
