"""Build information: version, commit, and an id that changes whenever what we render changes."""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

__version__ = "0.1.0"
PACKAGE_DIR = Path(__file__).resolve().parent.parent  # the portal package


@dataclass(frozen=True)
class BuildInfo:
    version: str
    commit: str
    build_id: str


def _commit() -> str:
    """PORTAL_BUILD_COMMIT (set by the image build), else the checkout's HEAD, else unknown."""
    from_env = os.environ.get("PORTAL_BUILD_COMMIT", "").strip()
    if from_env:
        return from_env[:40]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=PACKAGE_DIR,
            capture_output=True,
            text=True,
            timeout=2,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _files_digest() -> str:
    """Fragments rendered by another template version must not match an old card's version, and
    a page left open must learn of a release that changed only its styles or scripts (an image
    built without PORTAL_BUILD_COMMIT says "unknown" for every release)."""
    digest = hashlib.blake2b(digest_size=8)
    files = [*(PACKAGE_DIR / "templates").rglob("*.html"), *(PACKAGE_DIR / "static").rglob("*")]
    for path in sorted(f for f in files if f.is_file()):
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def build_info() -> BuildInfo:
    """Read once at start-up."""
    commit = _commit()
    build_id = hashlib.blake2b(
        f"{__version__}:{commit}:{_files_digest()}".encode(), digest_size=6
    ).hexdigest()
    return BuildInfo(__version__, commit, build_id)
