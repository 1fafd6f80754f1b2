"""What the application builds once at start-up and every request reads: `PortalState`.

Reach it through `portal_state()`, the one typed accessor (never through app.extensions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import requests
from flask import Flask, current_app
from requests.adapters import HTTPAdapter

from .caching.broadcast import Broadcast, FileBroadcast, RedisBroadcast
from .caching.changes import UpstreamChanges
from .caching.codec import Codec
from .caching.pod_store import build_store
from .caching.stores import CacheStore, FallbackStore, temporary_directory
from .caching.widget_cache import CacheObserver, FetchPolicy, WidgetCache
from .config import PortalConfig, Settings, Tile, upstreams_of
from .observability.build import PACKAGE_DIR, BuildInfo
from .shell.icons import BrandIcon, load_brand_icons
from .storage.database import Database
from .storage.preferences import KeptPreferences
from .upstreams.breaker import BreakerPolicy
from .upstreams.upstream import ClientSetup, Upstream
from .web.static_files import content_versions, minified_files
from .widgets.contract import Widget, WidgetContext
from .widgets.write_pace import WritePace

if TYPE_CHECKING:
    from .widgets.serving import CardViews, FragmentRenderer

EXTENSION = "portal"


@dataclass
class PortalState:
    """The deployment as configured: settings, store, cache, clients, widgets, tiles, database, assets."""

    settings: Settings
    build: BuildInfo
    store: CacheStore
    codec: Codec  # what shared stores write values with (signed JSON)
    broadcast: Broadcast
    cache: WidgetCache
    clients: dict[str, Any]  # by upstream name
    widgets: dict[str, WidgetContext]  # by slug, in the registry's order
    icons: dict[str, BrandIcon]
    database: Database
    preferences: KeptPreferences  # each user's stored choices, kept by the worker between changes
    changes: UpstreamChanges  # when each tool last pushed a change (its webhooks)
    static_versions: dict[str, str] = field(default_factory=dict)  # each static file's content hash
    static_minified: dict[str, bytes] = field(default_factory=dict)  # the page's own scripts and CSS
    renderer: FragmentRenderer | None = None  # set once the app's templates are set up
    card_views: CardViews | None = None  # made on first use
    write_pace: WritePace = field(default_factory=WritePace)  # changes per person per minute

    @property
    def config(self) -> PortalConfig:
        return self.settings.config

    @property
    def tiles(self) -> tuple[Tile, ...]:
        return self.config.tiles


def portal_state(app: Flask | None = None) -> PortalState:
    """The state of the current application (or of `app`)."""
    found: PortalState = (app or current_app).extensions[EXTENSION]
    return found


def _session(pool_size: int) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "devsecops-portal"
    return session


def build_broadcast(store: CacheStore) -> Broadcast:
    """Redis's channel when the store is Redis, else a file the pod's workers share.

    Built before gunicorn forks its workers (the app is preloaded), so they share the file.
    """
    if isinstance(store, FallbackStore):
        primary = store.primary
        return RedisBroadcast(primary.client, f"{primary.key_prefix}events")
    return FileBroadcast(temporary_directory("portal-events-") / "events")


def build_clients(
    settings: Settings,
    widgets: Sequence[Widget],
    store: CacheStore,
    threads: int,
    observer: CacheObserver | None = None,
) -> dict[str, Any]:
    """One client per configured upstream, shared by every widget that names it."""
    clients: dict[str, Any] = {}
    for name, spec in upstreams_of(widgets).items():
        section = settings.config.upstream(name)
        if section is None:
            continue
        assert isinstance(spec, Upstream)
        # Every fetch thread and every request thread may hold a connection at once.
        session = _session(max(max(threads, 4) * 2, section.fetch_threads + threads))
        report = partial(observer.upstream_quota, name) if observer is not None else None
        setup = ClientSetup(section, session, settings.secrets.of(name), store, report)
        clients[name] = spec.make_client(setup)
    return clients


def build_widgets(
    config: PortalConfig, widgets: Sequence[Widget], clients: dict[str, Any]
) -> dict[str, WidgetContext]:
    """Each widget with its settings, whether it is configured, its clients and cache policies."""
    contexts: dict[str, WidgetContext] = {}
    for widget in widgets:
        settings = config.widget(widget.slug)
        policies = {}
        for upstream in widget.upstreams:
            section = config.upstream(upstream.name)
            timeout = section.timeout if section is not None else 5.0
            policies[upstream.name] = FetchPolicy(
                ttl=settings.ttl,
                stale_ttl=settings.stale_ttl,
                upstream=upstream.name,
                upstream_label=upstream.label,
                timeout=timeout,
                answer_within=min(config.cache.answer_within, timeout),
                refresh_within=min(config.cache.refresh_within, config.cache.answer_within, timeout),
            )
        contexts[widget.slug] = WidgetContext(
            widget=widget,
            settings=settings,
            configured=widget.is_configured(settings, config),
            config=config,
            clients={u.name: clients[u.name] for u in widget.upstreams if u.name in clients},
            policies=policies,
        )
    return contexts


def breaker_policies(config: PortalConfig, widgets: Sequence[Widget]) -> dict[str, BreakerPolicy]:
    policies = {}
    for name in upstreams_of(widgets):
        section = config.upstream(name)
        if section is not None:
            policies[name] = BreakerPolicy(
                section.breaker_threshold, section.breaker_backoff, section.breaker_backoff_max
            )
    return policies


def fetch_threads(config: PortalConfig, widgets: Sequence[Widget]) -> dict[str, int]:
    """Each configured upstream's concurrent fetches per worker."""
    sections = {name: config.upstream(name) for name in upstreams_of(widgets)}
    return {name: section.fetch_threads for name, section in sections.items() if section is not None}


def tiles_stylesheet(tiles: tuple[Tile, ...], icons: dict[str, BrandIcon]) -> str:
    """One rule per tile giving its accent colour (the icon's brand colour when it has one)."""
    rules = []
    for tile in tiles:
        icon = icons.get(tile.icon or "")
        if icon is not None:
            rules.append(f".tile--{tile.slug}{{--tile-accent:{icon.color}}}")
    return "\n".join(rules) + "\n"


def build_state(
    settings: Settings, build: BuildInfo, observer: CacheObserver, threads: int, widgets: Sequence[Widget]
) -> PortalState:
    """Create stores, clients and widget contexts from validated settings."""
    config = settings.config
    cache_settings = config.cache
    codec = Codec(settings.secrets.secret_key)
    store = build_store(
        cache_settings.redis_url,
        settings.secrets.redis_password,
        cache_settings.key_prefix,
        cache_settings.local_max_entries,
        observer,
        codec,
    )
    broadcast = build_broadcast(store)
    cache = WidgetCache(
        store,
        breaker_policies(config, widgets),
        cache_settings.failure_hold,
        observer,
        broadcast,
        max_waiting=max(1, threads // 4),  # the shell and the other cards keep the rest
        fetch_threads=fetch_threads(config, widgets),
    )
    clients = build_clients(settings, widgets, store, threads, observer)
    icons = load_brand_icons()
    return PortalState(
        settings=settings,
        build=build,
        store=store,
        codec=codec,
        broadcast=broadcast,
        cache=cache,
        clients=clients,
        widgets=build_widgets(config, widgets, clients),
        icons=icons,
        database=Database.from_settings(config.database, settings.secrets.database_password),
        preferences=KeptPreferences(broadcast),
        changes=UpstreamChanges(broadcast, upstreams_of(widgets)),
        static_versions=content_versions(PACKAGE_DIR / "static"),
        static_minified=minified_files(PACKAGE_DIR / "static"),
    )
