"""Static files cached by version: a year when the URL names this pod's file, never otherwise.

The page asks for each static file as `/static/<file>?v=<content hash>`, so a browser may keep
it for a year. During a rolling upgrade, though, a page drawn by a new pod can have its
stylesheet answered by an old one: the old file under the new URL. Kept for a year, that page
would look broken until the next release. So only an answer whose file matches the `v` asked
for is kept; any other is revalidated at each use (its ETag), and the next load gets the file
of whichever release answers.

Better still, a pod asked for another release's version of one of its files (or for a file
only another release has) does not answer with its own: it sends the browser to ask again (a
307 to the same URL, `try` counted), and behind the Ingress, which spreads requests over the
pods, the next ask usually reaches a pod of that release. After MAX_TRIES asks, the pod's own
file is served (not kept), as before: when the release asked for is gone, the page still gets
a stylesheet. Chromium follows these redirects for stylesheets, scripts and `<use>` icons.

The page's own scripts and stylesheet are served minified, from memory (web/static_files.py).
"""

from __future__ import annotations

import mimetypes
from io import BytesIO
from urllib.parse import urlencode

from flask import Flask, Response, request, send_file

from ..state import portal_state

ONE_YEAR = 365 * 24 * 3600
MAX_TRIES = 3  # redirects of one request for another release's file, before serving this pod's


class PortalFlask(Flask):
    """Flask, with static files cached for a year only under their own version."""

    def get_send_file_max_age(self, filename: str | None) -> int | None:
        """A year when `?v=` is this file's content hash; else None (no-cache: revalidate)."""
        versions = portal_state(self).static_versions
        asked = request.args.get("v")
        if filename is not None and asked and asked == versions.get(filename):
            return ONE_YEAR
        return None

    def send_static_file(self, filename: str) -> Response:
        """This pod's file (minified: the page's own scripts and CSS); a 307 to ask again when
        another release's version is asked for."""
        asked = request.args.get("v")
        own = portal_state(self).static_versions.get(filename)
        tries = request.args.get("try", "0")
        # `own` is None for a file only the other release has (a 404 here).
        if asked and asked != own and tries.isdigit() and int(tries) < MAX_TRIES:
            query = urlencode({"v": asked, "try": int(tries) + 1})
            again = Response(status=307, headers={"Location": f"{request.script_root}{request.path}?{query}"})
            again.headers["Cache-Control"] = "no-store"
            return again
        minified = portal_state(self).static_minified.get(filename)
        if minified is None or own is None:
            return super().send_static_file(filename)
        return send_file(
            BytesIO(minified),
            mimetype=mimetypes.guess_type(filename)[0],
            etag=f"{own}-min",
            max_age=self.get_send_file_max_age(filename),
            conditional=True,
        )
