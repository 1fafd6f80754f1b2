"""The portal's static files as they are served: each file's content hash (its URL's `v`) and the
page's own scripts and stylesheet minified.

The sources in `portal/static/js` and `portal/static/css` are written to be read: comments say
why, and they are most of the bytes. A first load sends them minified (rjsmin, rcssmin), made
once when the portal starts: about 25 kB less on the wire, compressed. The vendored files come
minified already; the icons are served as they are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import rcssmin
import rjsmin

# The page's own files, by folder and suffix, and how each is minified.
MINIFIERS: dict[tuple[str, str], Callable[[str], str]] = {
    ("js", ".js"): rjsmin.jsmin,
    ("css", ".css"): rcssmin.cssmin,
}


def content_versions(root: Path) -> dict[str, str]:
    """A content hash of each file under `root` (its path relative to it), for cache-busting URLs."""
    return {
        path.relative_to(root).as_posix(): hashlib.blake2b(path.read_bytes(), digest_size=5).hexdigest()
        for path in root.rglob("*")
        if path.is_file()
    }


def minified_files(root: Path) -> dict[str, bytes]:
    """The page's own scripts and stylesheets under `root`, minified (by path relative to it)."""
    found = {}
    for (folder, suffix), minify in MINIFIERS.items():
        for path in sorted((root / folder).glob(f"*{suffix}")):
            found[path.relative_to(root).as_posix()] = minify(path.read_text(encoding="utf-8")).encode()
    return found
