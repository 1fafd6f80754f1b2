"""Language and time zone: Flask-Babel wired to a cookie, Accept-Language and the config."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date

from babel import Locale
from babel.dates import format_skeleton
from babel.lists import format_list as babel_format_list
from babel.numbers import format_percent
from flask import Flask, current_app, request
from flask_babel import Babel, get_locale, gettext

from ..caching.memo import Memo
from ..config import LANGUAGES
from ..upstreams.errors import Reason

LANGUAGE_COOKIE = "portal_lang"
babel = Babel()
# The language for each Accept-Language a browser sends (and default): browsers send few distinct ones.
_by_header: Memo[tuple[str, str], str] = Memo(512)
# Returned as Locale objects, which Flask-Babel then uses as they are instead of parsing a code.
LOCALES = {code: Locale.parse(code) for code in LANGUAGES}


def select_locale() -> Locale:
    """The saved choice, else the browser's preference, else the configured default."""
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return LOCALES[chosen]
    key = (request.headers.get("Accept-Language", ""), current_app.config["PORTAL_LANGUAGE"])
    found = _by_header.get(key)
    if found is None:
        found = request.accept_languages.best_match(LANGUAGES) or key[1]
        _by_header.put(key, found)
    return LOCALES[found]


def select_timezone() -> str:
    """Times are shown in the portal's configured time zone."""
    return str(current_app.config["PORTAL_TIMEZONE"])


def init_i18n(app: Flask, default_language: str, timezone: str) -> None:
    """Bind Flask-Babel to the app with the portal's selectors."""
    app.config["PORTAL_LANGUAGE"] = default_language
    app.config["PORTAL_TIMEZONE"] = timezone
    app.config.setdefault("BABEL_DEFAULT_LOCALE", default_language)
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    app.jinja_env.filters["reason"] = translate_reason


def format_uptime(fraction: float) -> str:
    """An uptime ratio as a localised percentage with one decimal, never rounded up to 100 %."""
    floored = math.floor(fraction * 1000) / 1000
    return str(format_percent(floored, locale=get_locale(), decimal_quantization=False))


def format_list(items: Iterable[str]) -> str:
    """ "a, b and c" in the user's language ("a, b et c")."""
    return str(babel_format_list(list(items), locale=get_locale()))


def format_day(day: date, today: date | None = None) -> str:
    """A day in the user's language and order, the year only when it is not today's: "Dec 5"
    (« 5 déc. »), "Jan 3, 2028". Every card writes a day without its time so, never "12/5/26",
    which half of a bilingual team reads as the 12th of May."""
    skeleton = "MMMd" if today is None or day.year == today.year else "yMMMd"
    return str(format_skeleton(skeleton, day, locale=get_locale()))


def translate_reason(reason: Reason) -> str:
    """A failure's explanation in the user's language (values are inserted as text; a value
    that is a Reason, in the user's language too)."""
    values = {k: translate_reason(v) if isinstance(v, Reason) else v for k, v in reason.values}
    return str(gettext(reason.msgid, **values))
