"""The status card: one part per Uptime Kuma status page, and the tiles' status dots."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import cast

from flask import Blueprint, Response, current_app
from flask_babel import lazy_gettext as _l

from ...config import StatusWidgetSection
from ...identity import current_user
from ..framework import Part, Widget, WidgetRuntime, WidgetView, serve
from .client import UPSTREAM, MonitorStatus, StatusPage, UptimeKumaClient

WIDGET = Widget(
    slug="status",
    title=_l("Service status"),
    icon="pulse",
    scope="shared",
    upstream="uptime_kuma",
    upstream_label=UPSTREAM,
    wide=True,
)
bp = Blueprint("status", __name__)


@dataclass(frozen=True)
class TileDot:
    """The live status dot of a tile that names an Uptime Kuma monitor."""

    tile: str
    monitor: str
    status: MonitorStatus


def _parts(runtime: WidgetRuntime) -> list[Part[StatusPage]]:
    """One part per configured status page (the same for every request: made once per app)."""
    extensions = current_app.extensions
    found: list[Part[StatusPage]] | None = extensions.get("status_parts")
    if found is None:
        client: UptimeKumaClient = extensions["portal"].clients["uptime_kuma"]
        settings = cast(StatusWidgetSection, runtime.settings)
        found = [Part(slug, slug, partial(client.status_page, slug)) for slug in settings.slugs]
        extensions["status_parts"] = found
    return found


def _no_monitors(pages: list[StatusPage]) -> bool:
    return not any(page.monitors for page in pages)


def _tile_dots(view: WidgetView) -> str:
    """Attach the dots of the tiles this user sees; their list is part of the version.

    Worked out from the data and the user's grants only, as `serve` requires: the framework
    keeps the result for every poll with the same data and grants.
    """
    user = current_user()
    by_name: dict[str, MonitorStatus] = {}
    for page in view.values:
        for monitor in page.monitors:
            by_name.setdefault(monitor.name.casefold(), monitor.status)
    dots = [
        TileDot(tile.slug, tile.monitor, by_name.get(tile.monitor.casefold(), MonitorStatus.UNKNOWN))
        for tile in current_app.extensions["portal"].config.tiles
        if tile.monitor and user is not None and user.may_see(tile.roles)
    ]
    view.extra["dots"] = dots
    return ",".join(dot.tile for dot in dots)


@bp.get("/widgets/status")
def view() -> Response:
    """Render the service status card from the configured status pages."""
    return serve(WIDGET, _parts, is_empty=_no_monitors, decorate=_tile_dots)
