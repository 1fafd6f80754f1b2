"""What the application builds once at start-up and every request reads: `PortalState`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from .caching.widget_cache import (
    CacheObserver,
    FallbackStore,
    FetchPolicy,
    LocalStore,
    RedisStore,
    Store,
    WidgetCache,
)
from .config import PortalConfig, Settings, Tile
from .observability.build import PACKAGE_DIR, BuildInfo
from .shell.icons import BrandIcon, load_brand_icons
from .upstreams.breaker import BreakerPolicy
from .widgets import WIDGET_MODULES
from .widgets.framework import WidgetRuntime


@dataclass
class PortalState:
    """The deployment as configured: settings, cache, clients, widgets, tiles, assets."""

    settings: Settings
    build: BuildInfo
    cache: WidgetCache
    store: Store
    clients: dict[str, Any]
    widgets: dict[str, WidgetRuntime]
    icons: dict[str, BrandIcon]
    static_versions: dict[str, str] = field(default_factory=dict)
    tiles_css: str = ""

    @property
    def config(self) -> PortalConfig:
        return self.settings.config

    @property
    def tiles(self) -> tuple[Tile, ...]:
        return self.config.tiles


def _session(pool_size: int) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "devsecops-portal"
    return session


def build_store(settings: Settings, observer: CacheObserver) -> Store:
    """Redis (with an in-process fallback) when configured, else in-process only."""
    cache = settings.config.cache
    local = LocalStore(cache.local_max_entries)
    if not cache.redis_url:
        return local
    redis_store = RedisStore.from_url(cache.redis_url, settings.secrets.redis_password, cache.key_prefix)
    return FallbackStore(redis_store, local, observer)


def build_widgets(config: PortalConfig) -> dict[str, WidgetRuntime]:
    """Each widget with its settings, whether it is configured, and its cache policy."""
    runtimes: dict[str, WidgetRuntime] = {}
    for module in WIDGET_MODULES:
        widget = module.WIDGET
        settings = getattr(config.widgets, widget.slug)
        upstream = getattr(config.upstreams, widget.upstream)
        configured = upstream is not None and bool(getattr(settings, "slugs", True))
        timeout = upstream.timeout if upstream is not None else 5.0
        policy = FetchPolicy(
            ttl=settings.ttl,
            stale_ttl=settings.stale_ttl,
            upstream=widget.upstream,
            wait_timeout=timeout + 1.0,
            upstream_label=widget.upstream_label,
        )
        runtimes[widget.slug] = WidgetRuntime(widget, settings, configured, policy)
    return runtimes


def _static_versions() -> dict[str, str]:
    """A content hash per static file, for cache-busting URLs (computed once)."""
    root = PACKAGE_DIR / "static"
    versions = {}
    for path in root.rglob("*"):
        if path.is_file():
            versions[path.relative_to(root).as_posix()] = hashlib.blake2b(
                path.read_bytes(), digest_size=5
            ).hexdigest()
    return versions


def tiles_stylesheet(tiles: tuple[Tile, ...], icons: dict[str, BrandIcon]) -> str:
    """One rule per tile giving its accent colour (the icon's brand colour when it has one)."""
    rules = []
    for tile in tiles:
        icon = icons.get(tile.icon or "")
        if icon is not None:
            rules.append(f".tile--{tile.slug}{{--tile-accent:{icon.color}}}")
    return "\n".join(rules) + "\n"


def build_state(settings: Settings, build: BuildInfo, observer: CacheObserver, threads: int) -> PortalState:
    """Create clients, stores and widget runtimes from validated settings."""
    config = settings.config
    store = build_store(settings, observer)
    policies = {}
    clients: dict[str, Any] = {}
    for module in WIDGET_MODULES:
        name = module.WIDGET.upstream
        section = getattr(config.upstreams, name)
        if section is None or name in clients:
            continue
        policies[name] = BreakerPolicy(
            section.breaker_threshold, section.breaker_backoff, section.breaker_backoff_max
        )
        clients[name] = module.make_client(section, _session(max(threads, 4) * 2))
    cache = WidgetCache(store, policies, config.cache.failure_hold, observer)
    icons = load_brand_icons()
    return PortalState(
        settings=settings,
        build=build,
        cache=cache,
        store=store,
        clients=clients,
        widgets=build_widgets(config),
        icons=icons,
        static_versions=_static_versions(),
        tiles_css=tiles_stylesheet(config.tiles, icons),
    )
