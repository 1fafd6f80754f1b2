"""The status card: one part per Uptime Kuma status page, and the tiles' status dots."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from flask_babel import lazy_gettext as _l

from ...config import PortalConfig, Slug, WidgetSection
from ...identity import User
from ...upstreams.upstream import ClientSetup, Upstream
from ..contract import Part, Widget, WidgetContext, WidgetView
from .client import UPSTREAM, MonitorStatus, StatusPage, UptimeKumaClient


def _client(setup: ClientSetup) -> UptimeKumaClient:
    return UptimeKumaClient(setup.session, setup.base_url, None, setup.limits, setup.verify)


# Uptime Kuma's status pages are public: no secret.
UPTIME_KUMA: Upstream[UptimeKumaClient] = Upstream("uptime_kuma", UPSTREAM, _client)


class StatusSettings(WidgetSection):
    """widgets.status: the Uptime Kuma status pages the card shows, by slug."""

    slugs: tuple[Slug, ...] = ()


@dataclass(frozen=True)
class TileDot:
    """The live status dot of a tile that names an Uptime Kuma monitor.

    `since` is set when the page's data is stale: the dot then says "unknown since HH:MM"
    rather than a state that may no longer hold.
    """

    tile: str
    monitor: str
    status: MonitorStatus
    since: datetime | None = None


class StatusWidget(Widget):
    """Services up, degraded, down or in maintenance, from Uptime Kuma's status pages."""

    slug = "status"
    title = _l("Service status")
    icon = "pulse"
    scope = "shared"
    upstreams = (UPTIME_KUMA,)
    settings_model = StatusSettings
    wide = True
    fills_tile_dots = True
    polls_in_background = True

    def is_configured(self, settings: WidgetSection, config: PortalConfig) -> bool:
        assert isinstance(settings, StatusSettings)
        return super().is_configured(settings, config) and bool(settings.slugs)

    def parts(self, ctx: WidgetContext, user: User) -> Sequence[Part[StatusPage]]:
        """One part per configured status page."""
        client = ctx.client(UPTIME_KUMA)
        settings = ctx.settings
        assert isinstance(settings, StatusSettings)
        return [Part(slug, slug, UPTIME_KUMA, partial(client.status_page, slug)) for slug in settings.slugs]

    def is_empty(self, view: WidgetView) -> bool:
        return not any(page.monitors for page in view.values)

    def decorate(self, view: WidgetView, ctx: WidgetContext, user: User) -> str:
        """The dots of the tiles this user sees (by grants); their list is part of the version."""
        by_name: dict[str, tuple[MonitorStatus, datetime | None]] = {}
        for part in view.parts:
            page: StatusPage | None = part.value
            if page is None:
                continue
            since = part.problem.stale_since if part.stale and part.problem else None
            for monitor in page.monitors:
                by_name.setdefault(monitor.name.casefold(), (monitor.status, since))
        dots = []
        for tile in ctx.config.tiles:
            if not tile.monitor or not user.may_see(tile.roles):
                continue
            status, since = by_name.get(tile.monitor.casefold(), (MonitorStatus.UNKNOWN, None))
            dots.append(TileDot(tile.slug, tile.monitor, MonitorStatus.UNKNOWN if since else status, since))
        view.extra["dots"] = dots
        return ",".join(f"{dot.tile}={dot.status.name}@{dot.since}" for dot in dots)
