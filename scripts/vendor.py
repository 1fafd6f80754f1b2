"""`make vendor`: fetch the vendored front-end packages from npm and check them against vendor.json.

    python scripts/vendor.py            # verify: the files on disk are what the packages contain
    python scripts/vendor.py --update   # copy the files from the packages (after a version bump)

Each package in portal/static/vendor/vendor.json names its npm source, and for each file the
path inside the package and its SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VENDOR = Path(__file__).resolve().parent.parent / "portal" / "static" / "vendor"


def _fetch(spec: str, into: Path) -> Path:
    """`npm pack name@version` and unpack it; returns the package directory."""
    out = (
        subprocess.run(
            ["npm", "pack", spec, "--silent"], cwd=into, capture_output=True, text=True, check=True
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    with tarfile.open(into / out) as archive:
        archive.extractall(into / "unpacked", filter="data")
    return into / "unpacked" / "package"


def main(update: bool) -> int:
    manifest_path = VENDOR / "vendor.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    problems = 0
    for package in manifest["packages"]:
        spec = package["source"].removeprefix("npm:")
        with tempfile.TemporaryDirectory() as tmp:
            root = _fetch(spec, Path(tmp))
            for relative, meta in package["files"].items():
                source = root / meta["from"]
                digest = hashlib.sha256(source.read_bytes()).hexdigest()
                target = VENDOR / relative
                if update:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, target)
                    meta["sha256"] = digest
                    print(f"updated {relative}")
                elif digest != meta["sha256"] or hashlib.sha256(target.read_bytes()).hexdigest() != digest:
                    print(f"MISMATCH {relative} (package {spec})")
                    problems += 1
                else:
                    print(f"ok {relative}")
    if update:
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main("--update" in sys.argv[1:]))
