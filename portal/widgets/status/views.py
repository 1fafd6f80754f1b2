"""The status card: one part per Uptime Kuma status page, and the tiles' status dots."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from functools import partial
from typing import cast

from flask import Blueprint, Response, current_app
from flask_babel import lazy_gettext as _l

from ...config import StatusWidgetSection
from ...identity import current_user
from ...memo import Memo
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
    client: UptimeKumaClient = current_app.extensions["portal"].clients["uptime_kuma"]
    settings = cast(StatusWidgetSection, runtime.settings)
    return [Part(slug, slug, partial(client.status_page, slug)) for slug in settings.slugs]


def _no_monitors(pages: list[StatusPage]) -> bool:
    return not any(page.monitors for page in pages)


def _tile_dots(view: WidgetView) -> str:
    """Attach the dots of the tiles this user sees; their list is part of the version."""
    user = current_user()
    # The same data and the same grants give the same dots: worked out once per worker.
    key = (
        tuple(part.result.fingerprint for part in view.parts),
        (user.roles, user.groups) if user is not None else None,
    )
    memo: Memo[Hashable, list[TileDot]] = current_app.extensions.setdefault("status_dots", Memo(1024))
    dots = memo.get(key)
    if dots is None:
        by_name: dict[str, MonitorStatus] = {}
        for page in view.values:
            for monitor in page.monitors:
                by_name.setdefault(monitor.name.casefold(), monitor.status)
        dots = [
            TileDot(tile.slug, tile.monitor, by_name.get(tile.monitor.casefold(), MonitorStatus.UNKNOWN))
            for tile in current_app.extensions["portal"].config.tiles
            if tile.monitor and user is not None and user.may_see(tile.roles)
        ]
        memo.put(key, dots)
    view.extra["dots"] = dots
    return ",".join(dot.tile for dot in dots)


@bp.get("/widgets/status")
def view() -> Response:
    """Render the service status card from the configured status pages."""
    return serve(WIDGET, _parts, is_empty=_no_monitors, decorate=_tile_dots)
