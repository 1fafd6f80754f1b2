"""The unified DevSecOps portal: a Flask shell whose widgets load themselves with htmx."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import flask_babel
from flask import Flask, g, request, url_for
from prometheus_client import CollectorRegistry

from . import shell
from .auth import init_auth
from .caching.widget_cache import CacheObserver
from .config import LANGUAGES, ConfigError, load_settings, upstreams_of
from .insecure_settings import insecure_settings
from .layout import views as layout_views
from .observability import health
from .observability.build import __version__, build_info
from .observability.logs import configure_logging
from .observability.metrics import PrometheusObserver, count_in_flight, init_metrics
from .state import EXTENSION, PortalState, build_state, portal_state
from .web import errors, security
from .web.assets import PortalFlask
from .web.bidi import without_bidi_controls
from .web.compression import init_compression
from .web.guard import init_guard
from .web.i18n import format_day, format_list, format_uptime, init_i18n
from .web.markdown import render_markdown
from .web.request_record import init_request_record
from .web.word_breaks import word_breaks
from .widgets import WIDGETS
from .widgets.serving import FragmentRenderer, fetched_text, render_card, widget_blueprint

__all__ = ["ConfigError", "__version__", "create_app"]

log = logging.getLogger(__name__)


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the application from PORTAL_CONFIG and the environment.

    `test_config` may carry `PORTAL` (the YAML structure as a dict, instead of the file),
    `ENV` (environment overrides, for secrets) and any Flask setting. Raises ConfigError
    with a message naming the offending keys when the configuration is unusable.
    """
    overrides = dict(test_config or {})
    env = {**os.environ, **overrides.pop("ENV", {})}
    widgets = overrides.pop("WIDGETS", WIDGETS)  # tests may add widgets of their own
    settings = load_settings(env=env, config=overrides.pop("PORTAL", None), widgets=widgets)
    # One registry per application: tests build many apps in one process.
    registry = CollectorRegistry()
    observer: CacheObserver = overrides.pop("CACHE_OBSERVER", None) or PrometheusObserver(
        registry,
        widgets=[widget.slug for widget in widgets],
        upstreams=sorted(upstreams_of(widgets)),
    )

    configure_logging(env.get("PORTAL_LOG_LEVEL", "INFO"))
    app = PortalFlask(__name__)
    app.config.from_mapping(
        SECRET_KEY=settings.secrets.secret_key,
        SESSION_COOKIE_NAME="portal_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=1_000_000,
        TEMPLATES_AUTO_RELOAD=False,
    )
    app.config.update(overrides)

    config = settings.config
    build = build_info()
    app.config["PORTAL_BUILD_ID"] = build.build_id
    threads = int(env.get("PORTAL_THREADS", "8"))
    state = build_state(settings, build, observer, threads, widgets)
    app.extensions[EXTENSION] = state
    _migrate_at_start(state)

    init_i18n(app, config.portal.default_language, config.portal.timezone)
    requests = init_metrics(app, registry, build)
    init_request_record(app, requests)
    security.init_security(app)
    init_compression(app)
    count_in_flight(app, requests)
    errors.init_errors(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(shell.bp)
    app.register_blueprint(layout_views.bp)
    for widget in widgets:
        app.register_blueprint(widget_blueprint(widget))
    init_guard(app)
    init_auth(app, state)
    _init_templates(app, state)
    state.renderer = FragmentRenderer(app)
    _register_commands(app)
    for warning in insecure_settings(config, settings.secrets.upstreams):
        log.warning(warning, extra={"event": "insecure_setting"})
    if config.auth.mode == "demo":
        log.warning(
            "demo identity is on: anyone can act as a demo user; never use this in production",
            extra={"event": "demo_mode"},
        )
    return app


def _migrate_at_start(state: PortalState) -> None:
    """Bring the database's schema up to date (one replica at a time); start anyway without it.

    Under gunicorn the app is loaded once in the master: its connections are closed here, before
    the workers are forked, and each worker opens its own.
    """
    database = state.database
    if database.ready():
        log.info(
            "database ready",
            extra={
                "event": "database_ready",
                "database": database.kind,
                "revision": database.current_revision(),
            },
        )
    else:
        log.error(
            "database unreachable at start: layouts fall back to the defaults until it answers",
            extra={
                "event": "database_unreachable",
                "database": database.kind,
                "url": database.describe(),
                "detail": database.last_problem,
            },
        )
    database.dispose()


def _init_templates(app: Flask, state: PortalState) -> None:
    """Template helpers (the templates are compiled at start by `web.warm_up`, under gunicorn)."""

    built: dict[tuple[str, str], str] = {}  # a card draws a dozen icons: url_for once for each

    def static_url(filename: str) -> str:
        key = (filename, request.script_root)
        found = built.get(key)
        if found is None:
            version = state.static_versions.get(filename)
            found = (
                url_for("static", filename=filename, v=version)
                if version
                else url_for("static", filename=filename)
            )
            if len(built) < 1000:  # the static files, under a few script roots
                built[key] = found
        return found

    app.jinja_env.globals.update(
        get_locale=flask_babel.get_locale,
        format_time=flask_babel.format_time,
        format_datetime=flask_babel.format_datetime,
        format_decimal=flask_babel.format_decimal,
        format_date=flask_babel.format_date,
        format_timedelta=flask_babel.format_timedelta,
        format_uptime=format_uptime,
        format_list=format_list,
        format_day=format_day,
        render_card=render_card,
        tiles_css_url=shell.views.tiles_css_url,
        viewer_key=shell.views.viewer_key,
        role_names=shell.views.role_names,
        static_url=static_url,
        portal=state,
        languages=LANGUAGES,
    )

    app.jinja_env.finalize = without_bidi_controls
    app.jinja_env.filters["markdown"] = render_markdown
    app.jinja_env.filters["fetched_text"] = fetched_text
    app.jinja_env.filters["word_breaks"] = word_breaks

    @app.context_processor
    def _request_context() -> dict[str, Any]:
        return {
            "user": g.get("user"),
            "theme": request.cookies.get(shell.views.THEME_COOKIE, "system"),
        }


def _register_commands(app: Flask) -> None:
    @app.cli.command("check-config")
    def check_config() -> None:
        """Validate PORTAL_CONFIG and the secrets (the app loaded, so they are valid)."""
        print(f"configuration OK: {portal_state(app).settings.source}")
