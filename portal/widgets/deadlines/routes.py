"""The deadlines card's own routes: the calendar feed's panel, its renewal and revocation, the feed."""

from __future__ import annotations

import logging
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta

from flask import Blueprint, Response, g, render_template, request
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from ...auth import external_url, portal_origin
from ...auth.guard import public_view
from ...config import LANGUAGES
from ...identity import User, current_user
from ...state import portal_state
from ...web.guard import audit, write_refusal
from ...web.i18n import translate_reason
from ..contract import WidgetContext
from ..serving import FAILED_HEADER
from ..taiga.cards import board_part, catalog_part, taiga_settings
from ..taiga.client import Catalog
from ..taiga.feed import calendar
from ..taiga.keeping import FeedToken, StorageAway, StorageMissing, keeper
from ..taiga.work import MyWork
from .widget import DeadlinesSettings, DeadlinesWidget

log = logging.getLogger(__name__)


def register(widget: DeadlinesWidget, blueprint: Blueprint) -> None:
    def feed_panel() -> Response:
        """The calendar feed's panel on the card: my private URL, renew, revoke."""
        try:
            return feed_panel_answer(widget)
        except HTTPException:  # an answer on purpose (400 for an unlisted Host), not a bug
            raise
        except Exception:
            log.exception("feed panel failed", extra=_failure(widget, "feed_panel_failed"))
            return failed_feed_panel(widget, _("The calendar feed could not be shown. It has been logged."))

    def renew_feed() -> Response:
        """A new private feed URL for me (the previous one stops working)."""
        return feed_change(widget, "renew")

    def revoke_feed() -> Response:
        """No feed URL for me any more (it answers 404)."""
        return feed_change(widget, "revoke")

    def feed(token: str) -> Response:
        """My deadlines as an iCalendar feed, for a calendar application: the URL is the credential."""
        return feed_answer(widget, token)

    blueprint.add_url_rule("/widgets/deadlines/feed", "feed_panel", feed_panel, methods=["GET"])
    blueprint.add_url_rule("/widgets/deadlines/feed/renew", "renew_feed", renew_feed, methods=["POST"])
    blueprint.add_url_rule("/widgets/deadlines/feed/revoke", "revoke_feed", revoke_feed, methods=["POST"])
    blueprint.add_url_rule("/feeds/taiga/<token>.ics", "feed", public_view(feed), methods=["GET"])


def settings_of(ctx: WidgetContext) -> DeadlinesSettings:
    """The card's settings, typed."""
    settings = ctx.settings
    assert isinstance(settings, DeadlinesSettings)
    return settings


def feed_panel_answer(
    widget: DeadlinesWidget, notice: str = "", kind: str = "info", status: int = 200
) -> Response:
    state = portal_state()
    ctx = state.widgets[widget.slug]
    user = current_user()
    if user is None or not ctx.settings.enabled or not user.may_see(ctx.settings.roles):
        return Response(status=403)
    kept = keeper()
    away = False
    token: FeedToken | None = None
    if kept.available:
        try:
            token = kept.feed_token(user)
        except StorageAway:  # not "no feed yet": that would offer to make one over the one in use
            away = True
    # The URL is the credential: on the configured public URL, or a listed Host (400 otherwise).
    # It carries the person's language: a calendar service fetching it sends none of its own.
    language = str(get_locale() or "")
    url = external_url(f"{widget.slug}.feed", token=token.token, lang=language) if token else ""
    html = render_template(
        "widgets/deadlines_feed.html",
        available=kept.available,
        away=away,
        token=token,
        url=url,
        notice=notice,
        kind=kind,
        idle_days=settings_of(ctx).feed_idle_days,
    )
    response = Response(html, status=status, content_type="text/html; charset=utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


def feed_change(widget: DeadlinesWidget, action: str) -> Response:
    ctx = portal_state().widgets[widget.slug]
    refusal = write_refusal(ctx.settings.roles)
    user = current_user()
    if refusal is not None or user is None:
        audit(f"{action}_feed", "calendar feed", "refused", widget=widget.slug, reason=str(refusal))
        return feed_panel_answer(widget, translate_reason(refusal) if refusal else "", "danger", 403)
    portal_origin()  # an unlisted Host is refused (400) before the address changes, not after
    try:
        notice = _change_feed(user, action)
    except StorageAway:
        audit(f"{action}_feed", "calendar feed", "storage_away", widget=widget.slug)
        away = _(
            "The portal’s database cannot be reached right now: your feed was not changed."
            " Try again in a moment."
        )
        return feed_panel_answer(widget, away, "warning")
    except StorageMissing:
        audit(f"{action}_feed", "calendar feed", "no_storage", widget=widget.slug)
        return feed_panel_answer(widget, _("Calendar feeds need the portal’s database."), "warning")
    except HTTPException:
        raise
    except Exception:
        log.exception("feed change failed", extra=_failure(widget))
        audit(f"{action}_feed", "calendar feed", "portal_error", widget=widget.slug)
        notice = _(
            "The portal hit an unexpected error: your feed may or may not have changed. It has been logged."
        )
        return failed_feed_panel(widget, notice)
    audit(f"{action}_feed", "calendar feed", "ok", widget=widget.slug)
    return feed_panel_answer(widget, notice, "success")


def _change_feed(user: User, action: str) -> str:
    """Renew or revoke the user's feed; what the panel says about it."""
    said: str
    if action == "renew":
        had = keeper().feed_token(user) is not None
        keeper().renew_feed_token(user)
        if had:
            said = _("Your feed has a new address: the previous one no longer works.")
        else:
            said = _("Your feed address is ready: add it to your calendar application.")
    else:
        keeper().revoke_feed_token(user)
        said = _("Your feed is switched off: its address no longer works.")
    return said


def _failure(widget: DeadlinesWidget, event: str = "write_failed") -> dict[str, object]:
    """The log line's fields: a change that failed (`write_failed`, as every write's) or the panel."""
    return {"event": event, "widget": widget.slug, "request_id": g.get("request_id")}


def failed_feed_panel(widget: DeadlinesWidget, notice: str) -> Response:
    """500 after an unforeseen error: the panel as it stands now, with `notice`; shown in the
    panel (FAILED_HEADER), never a silent button or an endless "Loading…"."""
    try:
        answer = feed_panel_answer(widget, notice, "danger", 500)
    except Exception:  # the panel cannot be drawn either: the notice and a retry, in its place
        log.exception("feed panel failed", extra=_failure(widget, "feed_panel_failed"))
        html = render_template("widgets/deadlines_feed.html", broken=True, notice=notice, kind="danger")
        answer = Response(html, status=500, content_type="text/html; charset=utf-8")
        answer.headers["Cache-Control"] = "no-store"
    answer.headers[FAILED_HEADER] = "1"
    return answer


def feed_answer(widget: DeadlinesWidget, token: str) -> Response:
    """The feed, or why not, in the subscriber's language (`lang` in its URL, else the calendar
    application's Accept-Language): an application that shows the error shows it in theirs."""
    language = request.args.get("lang")
    with force_locale(language) if language in LANGUAGES else nullcontext():
        return _feed_answer(widget, token)


def _feed_answer(widget: DeadlinesWidget, token: str) -> Response:
    state = portal_state()
    ctx = state.widgets[widget.slug]
    try:
        owner = keeper().feed_owner(token) if ctx.settings.enabled and ctx.configured else None
    except StorageAway:  # a 404 could make a calendar application drop the subscription
        return _unavailable_feed(_("The portal’s database cannot be read right now."))
    settings = settings_of(ctx)
    if owner is None or not settings.feed or not owner.may_see(settings.roles):
        return _no_feed()
    if not owner.still_here(datetime.now(UTC), timedelta(days=settings.feed_idle_days)):
        log.info("calendar feed idle", extra={"event": "feed_idle", "user": owner.subject})
        return _no_feed()
    user = owner.as_user()
    part = board_part(ctx, user)
    result = state.cache.get_or_fetch(
        ctx.part_key(part, user), part.fetch, ctx.part_policy(part), widget.slug
    )
    if result.value is None:
        return _unavailable_feed(_("Taiga cannot be read right now."))
    assert part.select is not None
    work: MyWork = part.select(result.value)
    statuses = catalog_part(ctx, str(get_locale()))  # Taiga's names in the subscriber's language
    named = state.cache.get_or_fetch(
        ctx.part_key(statuses, user), statuses.fetch, ctx.part_policy(statuses), widget.slug
    )
    catalog = named.value if isinstance(named.value, Catalog) else None
    body = calendar(work, taiga_settings(ctx).front, _("Deadlines from Taiga"), catalog=catalog)
    response = Response(body, content_type="text/calendar; charset=utf-8")
    response.headers["Cache-Control"] = "private, max-age=300"
    response.headers["Content-Disposition"] = 'inline; filename="taiga-deadlines.ics"'
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def _no_feed() -> Response:
    """404: no such feed (or no longer): a calendar application may drop the subscription."""
    return Response(_("No such calendar feed.") + "\n", status=404, content_type="text/plain; charset=utf-8")


def _unavailable_feed(text: str) -> Response:
    """503 with a Retry-After: the calendar application tries again later and keeps the feed."""
    answer = Response(text + "\n", status=503, content_type="text/plain; charset=utf-8")
    answer.headers["Retry-After"] = "60"
    answer.headers["Cache-Control"] = "no-store"
    return answer
