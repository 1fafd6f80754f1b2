"""What a new worker would otherwise do in its first requests, done once at start.

Under gunicorn the app is loaded in the master (`preload_app`) and the workers are forked from
it, so what is compiled or loaded here is each worker's from its first request. Left to the
first requests, it was the templates' compilation (about 0.5 s of CPU for the dashboard's first
page) and each language's catalogue, done by every thread that got a request before it was
done: while a rollout's new pods took their people, their first pages took 1 to 2 s.

Tests build many apps and need none of this: only the WSGI entry point calls it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import flask_babel
from flask import Flask
from jinja2 import Environment

from ..config import LANGUAGES
from ..state import portal_state
from .i18n import LANGUAGE_COOKIE, format_uptime


@dataclass(frozen=True)
class WarmedUp:
    """What `warm_up` did, for the start's log line."""

    templates: int  # compiled, counted once per environment
    languages: int
    seconds: float


def template_environments(app: Flask) -> tuple[Environment, ...]:
    """The app's environment (pages) and the card renderer's (card bodies, without per-request globals)."""
    renderer = portal_state(app).renderer
    assert renderer is not None, "create_app sets the card renderer"
    return (app.jinja_env, renderer.env)


def warm_up(app: Flask) -> WarmedUp:
    """Compile every template in each environment and load each language's texts.

    A template that does not compile stops the start here, rather than failing a person's page.
    """
    started = time.perf_counter()
    compiled = 0
    for env in template_environments(app):
        for name in env.list_templates(extensions=["html"]):
            env.get_template(name)
            compiled += 1
    moment = datetime.now(UTC)
    for code in LANGUAGES:
        # The language a page is drawn in comes from the request (its cookie, here).
        with app.test_request_context("/", headers={"Cookie": f"{LANGUAGE_COOKIE}={code}"}):
            flask_babel.get_translations()
            flask_babel.format_datetime(moment, "short")
            flask_babel.format_timedelta(timedelta(minutes=-5), add_direction=True)
            format_uptime(0.999)
    return WarmedUp(compiled, len(LANGUAGES), time.perf_counter() - started)
