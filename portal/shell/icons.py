"""Tile icons: the vendored simple-icons (CC0) drawn inline in the tile's brand colour."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ..config import BUILTIN_ICONS
from ..observability.build import PACKAGE_DIR

VENDOR_DIR = PACKAGE_DIR / "static" / "vendor"


@dataclass(frozen=True)
class BrandIcon:
    """One 24x24 single-path icon and its brand colour."""

    name: str
    title: str
    path: str  # the SVG path data
    color: str  # "#RRGGBB"


def load_brand_icons() -> dict[str, BrandIcon]:
    """Read the vendored icons listed in vendor.json (once, at start-up)."""
    manifest = json.loads((VENDOR_DIR / "vendor.json").read_text(encoding="utf-8"))
    icons: dict[str, BrandIcon] = {}
    for package in manifest["packages"]:
        if package["name"] != "simple-icons":
            continue
        for relative, meta in package["files"].items():
            name = relative.rsplit("/", 1)[-1].removesuffix(".svg")
            if name not in BUILTIN_ICONS:
                continue
            svg = (VENDOR_DIR / relative).read_text(encoding="utf-8")
            path = re.search(r'<path d="([^"]+)"', svg)
            title = re.search(r"<title>([^<]+)</title>", svg)
            if path is None:
                raise ValueError(f"{relative}: no path in the icon")
            icons[name] = BrandIcon(
                name=name,
                title=title.group(1) if title else name,
                path=path.group(1),
                color="#" + meta["brand_hex"],
            )
    return icons
