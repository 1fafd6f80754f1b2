"""Two releases of the portal side by side, as during a rolling upgrade, in one process.

`other_release(app, directory)` makes `app` serve static files as another release would (some
of them changed, one only it has); `RoundRobin` puts pods behind one address, each request
going to the next pod, as the Ingress spreads requests over a Service's pods.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from flask import Flask

from portal.state import portal_state
from portal.web.static_files import content_versions, minified_files

CHANGED = ("css/portal.css", "js/portal.js", "icons/ui.svg")  # what the other release changed
ONLY_THERE = "css/only-old.css"  # a file only the other release has
MARK = "the other release"
ADDED = {  # what the other release's files say, where a page can see it (and kept when minified)
    "css": f'\n:root {{ --portal-release: "{MARK}"; }}\n',
    "js": f'\nwindow.portalRelease = "{MARK}";\n',
    "svg": f"\n<!-- {MARK} -->\n",
}


class RoundRobin:
    """Pods behind one address: each request goes to the next one (a WSGI app)."""

    def __init__(self, *pods: Flask) -> None:
        self.pods = pods
        self.served: list[int] = []  # which pod answered each request

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        turn = len(self.served) % len(self.pods)
        self.served.append(turn)
        return self.pods[turn].wsgi_app(environ, start_response)


def other_release(app: Flask, directory: Path) -> Flask:
    """`app` serving the static files of another release: CHANGED differ (they hold MARK),
    ONLY_THERE is new, and the content hashes the pages carry say so."""
    static = directory / "static"
    shutil.copytree(Path(app.static_folder or ""), static)
    for name in CHANGED:
        changed = static / name
        changed.write_text(
            changed.read_text(encoding="utf-8") + ADDED[name.rsplit(".", 1)[1]], encoding="utf-8"
        )
    (static / ONLY_THERE).write_text(f'.only-old::after {{ content: "{MARK}: a file only it has"; }}\n')
    app.static_folder = str(static)
    state = portal_state(app)
    state.static_versions.update(content_versions(static))
    state.static_minified.update(minified_files(static))
    return app
