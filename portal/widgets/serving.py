"""Serving a card: authorise, fetch the parts through the cache, build the view, answer.

`GET /widgets/<slug>` answers 200 with the card's body for every upstream outcome (the card
says what went wrong), or 204 when the card already shows this version. A version is a hash of
everything the body shows: the data of each part (of a part read once for everyone and cut per
person, that person's cut), what went wrong and since when, the language, the clock step, who
asks (roles and groups, and the subject for a per-user card), the notice and what the card
asked to see (`Widget.choice`, from the values it sends). Because a
body is rendered from its view alone (no user, request or session in the template's reach: see
`FragmentRenderer`), equal versions render equal HTML, and a worker renders each version once.

A card's own bug stays in the card. Should building or drawing a card raise (its code tripping
on data nobody foresaw), the page is drawn with that card loading, and its poll answers 500
with a body that says so in the card (`X-Portal-Card-Failed`): the page shows it there and keeps
polling every card, rather than taking the whole portal for unreachable.

A card never goes back in time. Without Redis each worker of a pod caches on its own, so a
poll may reach a worker that fetched before the one that drew the card: a poll says when the
data on screen was fetched (`X-Widget-Fetched-At`), and while that data is newer than this
worker's and still within its TTL, the answer is 204 (keep it) rather than the older data.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import traceback
from collections.abc import Callable, Hashable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, Response, current_app, g, render_template, request
from jinja2 import Environment, StrictUndefined
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

from ..caching.changes import CHANGED_HEADER
from ..caching.memo import Memo
from ..caching.widget_cache import CacheResult, Request, fingerprint
from ..identity import User, current_user
from ..observability.logs import log_fields, routine_request
from ..state import PortalState, portal_state
from ..upstreams.errors import Reason
from ..web.compression import encoded_fragment, mark_encoded
from ..web.i18n import select_locale
from .contract import NoticeKind, Part, PartResult, State, Widget, WidgetContext, WidgetView

log = logging.getLogger(__name__)

VERSION_HEADER = "X-Widget-Version"
FETCHED_HEADER = "X-Widget-Fetched-At"  # when the oldest data shown was fetched (ISO 8601, UTC)
POLL_HEADER = "X-Widget-Poll"  # "soon" on a kept card while this worker fetches anew
BUILD_HEADER = "X-Portal-Build"  # the release that answered (observability/build.py)
FAILED_HEADER = "X-Portal-Card-Failed"  # on a 500 whose body is the card's: the page shows it there
CLOCK_SKEW = timedelta(seconds=5)  # a time from a poll later than now by more is not believed
HTML = "text/html; charset=utf-8"
KEPT_READS = 2  # of a shared part: the cuts of older reads are dropped
RENDERED_CHARS = 4 * 2**20  # card bodies kept per worker, in characters (up to 2 bytes each)
PIECES_CHARS = 2**20  # shared pieces of per-person cards kept per worker
# What a card's template must never reach: it is rendered once and served to everyone whose
# version matches, so anything of a request or session would leak from one person to another.
PER_REQUEST_GLOBALS = frozenset({"request", "session", "g", "csrf_token", "get_flashed_messages", "user"})


class FragmentRenderer:
    """Renders card bodies from their view alone, once per version and script root.

    A Jinja environment laid over the app's, without the per-request globals, and strict: a
    template that reaches for `user` or `request` fails at once instead of leaking.
    """

    def __init__(self, app: Flask, size: int = 512) -> None:
        env: Environment = app.jinja_env.overlay(cache_size=400, undefined=StrictUndefined)
        env.globals = {k: v for k, v in app.jinja_env.globals.items() if k not in PER_REQUEST_GLOBALS}
        env.globals["shared_piece"] = self.shared_piece
        self.env = env
        # Bounded in characters too: a person's card is a new body at each of its versions, tens
        # of kB each, and a worker keeps these for as long as it runs.
        self._rendered: Memo[tuple[str, str], Markup] = Memo(size, RENDERED_CHARS, len)
        self._pieces: Memo[tuple[Hashable, str, str], Markup] = Memo(size, PIECES_CHARS, len)

    def shared_piece(self, key: Hashable, macro: Callable[[], str]) -> Markup:
        """A piece of a per-person card that shows shared data only (the pipelines card's projects),
        rendered once per `key`, language and script root rather than once per person.

        `key` must name everything the piece shows (its parts' `PartResult.shown`, the view's
        clock step); the macro must read nothing of the person's parts.
        """
        full = (key, str(select_locale()), request.script_root)
        piece = self._pieces.get(full)
        if piece is None:
            piece = Markup(macro())
            self._pieces.put(full, piece)
        return piece

    def render(self, view: WidgetView) -> Markup:
        key = (view.version, request.script_root)
        body = self._rendered.get(key)
        if body is None:
            html = self.env.get_template(view.widget.template).render(view=view, settings=view.settings)
            body = Markup(html)
            self._rendered.put(key, body)
        return body


def render_card(view: WidgetView) -> Markup:
    """A card's body, as the shell includes it and as the endpoint answers it."""
    renderer = portal_state().renderer
    assert renderer is not None, "the renderer is set up by create_app"
    return renderer.render(view)


# --- views --------------------------------------------------------------------------------------


def visible_widgets(user: User | None) -> list[WidgetContext]:
    """The enabled widgets this user may see, in the registry's order."""
    if user is None:
        return []
    return [
        ctx
        for ctx in portal_state().widgets.values()
        if ctx.settings.enabled and user.may_see(ctx.settings.roles)
    ]


def _hash(pieces: Sequence[object]) -> str:
    return hashlib.blake2b("\x1f".join(map(str, pieces)).encode(), digest_size=10).hexdigest()


def plain_view(ctx: WidgetContext, state: State, notice: Reason | None = None) -> WidgetView:
    """A view without data (loading, forbidden, unconfigured), versioned."""
    view = WidgetView(widget=ctx.widget, state=state, settings=ctx.settings, notice=notice)
    view.version = _hash(
        [current_app.config["PORTAL_BUILD_ID"], ctx.widget.slug, state, select_locale(), notice or ""]
    )
    return view


def loading_view(ctx: WidgetContext) -> WidgetView:
    """The skeleton the shell renders before the card's first answer."""
    return plain_view(ctx, "loading")


def _zone_offset(zone: str, at: float) -> int:
    """Seconds the portal's zone is ahead of UTC at `at` (DST included)."""
    offset = datetime.fromtimestamp(at, tz=ZoneInfo(zone)).utcoffset()
    return int(offset.total_seconds()) if offset else 0


def _who(ctx: WidgetContext, user: User, parts: Sequence[Part[Any]]) -> tuple[Hashable, ...]:
    """What of the user a card may depend on: grants always, the subject when anything is theirs."""
    grants = (tuple(sorted(user.roles)), tuple(sorted(user.groups)))
    personal = ctx.widget.scope != "shared" or any(p.per_user or p.select for p in parts)
    return (*grants, user.subject) if personal else grants


class Cut(NamedTuple):
    """A person's cut of a part read once for everyone (`Part.select`), and its fingerprint."""

    value: Any
    fingerprint: str


def _shown(results: Sequence[tuple[Part[Any], CacheResult[Any]]]) -> tuple[Hashable, ...]:
    """What a card shows of its parts' results: the same tuple gives the same view and version."""
    return tuple(
        (
            part.key,
            result.fingerprint,
            result.state,
            result.error,
            result.fetched_at if result.error is not None else None,  # "stale since HH:MM"
            result.fetching,  # data-poll="soon"
        )
        for part, result in results
    )


def build_view(
    ctx: WidgetContext, results: Sequence[tuple[Part[Any], CacheResult[Any]]], now: datetime | None
) -> WidgetView:
    """Combine the parts' results (a selected part's already cut for the person) into one card state."""
    parts = tuple(PartResult(part, result, result.value) for part, result in results)
    with_data = [p for p in parts if p.result.value is not None]
    # Still loading, or late and still being fetched: the card asks again soon.
    pending = any(p.result.state == "pending" or p.result.fetching for p in parts)
    view = WidgetView(widget=ctx.widget, state="ok", parts=parts, settings=ctx.settings, now=now)
    view.pending = pending
    if with_data:
        view.fetched_at = fetched_at([p.part for p in parts], [p.result for p in parts])
    if not with_data:
        view.state = "loading" if pending and not view.problems else "error"
    elif view.problems:
        view.state = "stale"
    elif ctx.widget.is_empty(view):
        view.state = "empty"
    return view


class ViewKey(NamedTuple):
    """Everything a card view depends on: the same key, the same view and version."""

    slug: str
    shown: tuple[Hashable, ...]  # its parts' results (_shown)
    who: tuple[Hashable, ...]  # what of the user it may show (_who)
    locale: str
    step: int  # the widget's clock step (0 without a clock)
    notice: Reason | None
    notice_kind: NoticeKind
    notice_at: str | None
    choice: Hashable

    def holder(self) -> tuple[Hashable, ...]:
        """Whose card this is, as its poll asks for it: the same holder asks again with newer
        data, a new step or no notice, never for an older view (see `CardViews._supersede`)."""
        return (self.slug, self.who, self.locale, self.choice)


class CardViews:
    """The card views of one app, by what they show and who asks: built once per combination."""

    def __init__(self, size: int = 16_384) -> None:
        self._memo: Memo[ViewKey, WidgetView] = Memo(size)
        self._latest: Memo[tuple[Hashable, ...], ViewKey] = Memo(size)  # each holder's last view
        self._cuts: Memo[tuple[str, str, str | None, str], Cut] = Memo(size)
        self._reads: dict[tuple[str, str], list[str | None]] = {}  # each cut part's latest reads
        self._reads_lock = threading.Lock()
        self._steps: dict[str, int] = {}  # each clocked widget's latest step

    def view(
        self,
        ctx: WidgetContext,
        user: User,
        notice: Reason | None = None,
        notice_kind: NoticeKind = "info",
        notice_at: str | None = None,
    ) -> tuple[WidgetView, list[CacheResult[Any]], datetime | None]:
        """The card as its upstreams' data stands (fetching what is missing, waiting a bounded
        time), each part's result, and when the card's data was fetched."""
        parts = list(ctx.widget.parts(ctx, user))
        results = portal_state().cache.get_many(_requests(ctx, user, parts))
        view = self._view(ctx, user, parts, results, notice, notice_kind, notice_at)
        return view, results, fetched_at(parts, results)

    def ready(self, ctx: WidgetContext, user: User) -> tuple[WidgetView, datetime | None] | None:
        """The card with its data and when that was fetched, when every part is fresh in the
        cache now; else None. Nothing is fetched and nothing waits: the page never does."""
        parts = list(ctx.widget.parts(ctx, user))
        results = portal_state().cache.peek_fresh(_requests(ctx, user, parts))
        if results is None:
            return None
        view = self._view(ctx, user, parts, results, None, "info", None)
        return (view, fetched_at(parts, results)) if view.state in ("ok", "empty") else None

    def _view(
        self,
        ctx: WidgetContext,
        user: User,
        parts: Sequence[Part[Any]],
        results: Sequence[CacheResult[Any]],
        notice: Reason | None,
        notice_kind: NoticeKind,
        notice_at: str | None,
    ) -> WidgetView:
        widget = ctx.widget
        paired = [(p, self._cut(ctx, user, p, r)) for p, r in zip(parts, results, strict=True)]
        locale = str(select_locale())
        # Steps begin on the portal zone's hours, not UTC's: in a zone half an hour off (India,
        # Iran) an hourly card's "today" turns at local midnight, not 30 minutes after it.
        now_s = time.time()
        shift = _zone_offset(ctx.config.portal.timezone, now_s) if widget.clock else 0
        step = int((now_s + shift) // widget.clock) if widget.clock else 0
        if step > self._steps.get(widget.slug, step - 1):
            self._forget_before(widget.slug, step)
        who = _who(ctx, user, parts)
        choice = widget.choice(ctx, user, request.args)
        key = ViewKey(widget.slug, _shown(paired), who, locale, step, notice, notice_kind, notice_at, choice)
        view = self._memo.get(key)
        if view is None:
            now = datetime.fromtimestamp(step * widget.clock - shift, tz=UTC) if widget.clock else None
            view = build_view(ctx, paired, now)
            view.notice, view.notice_kind, view.notice_at = notice, notice_kind, notice_at
            view.choice = choice
            extra = widget.decorate(view, ctx, user)
            build = current_app.config["PORTAL_BUILD_ID"]
            view.version = _hash([build, *key, view.state, extra])
            self._memo.put(key, view)
            self._supersede(key)
        return view

    def _supersede(self, key: ViewKey) -> None:
        """Drop the view this one replaces for the same holder. A person's card is a new view
        at each change of their data (a moved task, a finished pipeline), and the older one is
        never asked for again. While such views were kept until the memo was full, a worker at
        1,500 people held all 16,384 after a ten-minute soak where 4,500 are current, and ended
        at 351 MiB; dropping them, it ends at 285 MiB."""
        holder = key.holder()
        previous = self._latest.get(holder)
        self._latest.put(holder, key)
        if previous is not None and previous != key:
            self._memo.pop(previous)

    def _cut(
        self, ctx: WidgetContext, user: User, part: Part[Any], result: CacheResult[Any]
    ) -> CacheResult[Any]:
        """The part's result as this person's card shows it: of a part read once for everyone,
        their cut, with the cut's fingerprint (cut once per person and data).

        A person's version is then that of their cut, not of what was read for everyone: a
        teammate's change on Taiga's board gives a new board, but only the cards of the people
        whose items changed get a new version (everyone else's poll stays a 204, and no card is
        drawn again for them). And a view keeps the cut alone: views outlive many reads (a
        person's tasks card is one view per hour while nothing of theirs moves), and each
        keeping the whole board it was built from would keep a board per read.
        """
        if result.value is None or part.select is None:
            return result
        # Like the view's own key, this takes a person's claims as fixed for their subject.
        key = (ctx.widget.slug, part.key, result.fingerprint, user.subject)
        cut = self._cuts.get(key)
        if cut is None:
            value = part.select(result.value)
            cut = Cut(value, fingerprint(value))
            self._cuts.put(key, cut)
            self._forget_superseded(ctx.widget.slug, part.key, result.fingerprint)
        return replace(result, value=cut.value, fingerprint=cut.fingerprint)

    def _forget_superseded(self, slug: str, part_key: str, read: str | None) -> None:
        """Keep the cuts of a part's last KEPT_READS reads only. Every new read (a busy team's
        board, every TTL) keys a new cut for each person, never asked for again once a newer
        read is there; kept until the memo was full, a worker at 1,500 people held 10,000 of them
        after three minutes. The read before the latest stays: a worker's threads may still
        hold it for a moment."""
        with self._reads_lock:
            reads = self._reads.setdefault((slug, part_key), [])
            if read in reads:
                return
            reads.append(read)
            if len(reads) <= KEPT_READS:
                return
            gone = reads.pop(0)
        self._cuts.pop_where(lambda key: key[2] == gone and key[0] == slug and key[1] == part_key)

    def _forget_before(self, slug: str, step: int) -> None:
        """A clocked widget's views of past steps are never asked for again (a person's card
        is a new view at each step): dropped when its clock moves on, not kept until the memo
        is full."""
        self._steps[slug] = step
        self._memo.pop_where(lambda key: key.slug == slug and key.step < step)


def _requests(ctx: WidgetContext, user: User, parts: Sequence[Part[Any]]) -> list[Request[Any]]:
    return [Request(ctx.part_key(p, user), p.fetch, ctx.part_policy(p), ctx.widget.slug) for p in parts]


def fetched_at(parts: Sequence[Part[Any]], results: Sequence[CacheResult[Any]]) -> datetime | None:
    """When the oldest data the card is about was fetched ("Updated at"; the view is kept for
    every poll that shows the same data: this comes from the request's results, not from the
    view's first build). A part kept fresh longer than the card (Taiga's statuses, read every
    10 minutes) counts only when nothing else has data: it would date a card refreshed a
    minute ago from ten minutes back."""
    shown = [(part, r.fetched_at) for part, r in zip(parts, results, strict=True) if r.value is not None]
    dated = [at for part, at in shown if at is not None and part.ttl is None]
    dated = dated or [at for _, at in shown if at is not None]
    return datetime.fromtimestamp(min(dated), tz=UTC) if dated else None


class FirstCard(NamedTuple):
    """What the shell draws in a card: its view, when its data was fetched, and its body."""

    view: WidgetView
    fetched: datetime | None
    body: Markup


def first_card(ctx: WidgetContext, user: User, polls: bool) -> FirstCard:
    """The card as the page is drawn with it (see first_view). Should the card's own code or
    template raise, the page is drawn all the same: that card with its skeleton (it loads itself,
    and its poll says what failed), or when even that cannot be drawn, with the failure."""
    try:
        view, fetched = first_view(ctx, user, polls)
        return FirstCard(view, fetched, render_card(view))
    except Exception as error:
        reference = _log_failure(ctx.widget, error)
    loading = loading_view(ctx)
    try:
        return FirstCard(loading, None, render_card(loading))
    except Exception:  # the same bug: logged once
        return FirstCard(loading, None, failed_body(ctx, reference))


def first_view(ctx: WidgetContext, user: User, polls: bool) -> tuple[WidgetView, datetime | None]:
    """What the shell draws in a card: its data when it is all fresh in the cache (the card then
    only polls at its interval), "not configured" when it is not, else the skeleton (the card
    loads itself at once)."""
    if not (ctx.settings.enabled and user.may_see(ctx.settings.roles)):
        return loading_view(ctx), None  # the layout leaves such cards out; the endpoint says 403
    if polls and not ctx.configured:
        return plain_view(ctx, "unconfigured"), None
    if polls:
        ready = card_views(portal_state()).ready(ctx, user)
        if ready is not None:
            return ready
    return loading_view(ctx), None


def serve_card(
    widget: Widget,
    notice: Reason | None = None,
    notice_kind: NoticeKind = "info",
    status: int = 200,
    notice_at: str | None = None,
) -> Response:
    """The whole card request: authz, cache, state, version, body (or 204). `notice_at`: the
    key of the row the notice is about (WidgetView.notice_at)."""
    state = portal_state()
    ctx = state.widgets[widget.slug]
    user = current_user()
    if user is None or not ctx.settings.enabled or not user.may_see(ctx.settings.roles):
        log_fields(widget=widget.slug, cache="forbidden")
        return answer(plain_view(ctx, "forbidden"), status=403)
    if not ctx.configured:
        log_fields(widget=widget.slug, cache="unconfigured")
        return answer(plain_view(ctx, "unconfigured"))
    try:
        view, results, fetched = card_views(state).view(ctx, user, notice, notice_kind, notice_at)
        log_fields(widget=widget.slug, cache=",".join(r.source for r in results))
        newer = newer_on_screen(ctx, view, fetched) if status == 200 else None
        if newer is not None:
            log_fields(kept="newer")
            routine_request()
            return keep_answer(newer, soon=view.pending)
        card = answer(view, status, fetched)
        if card.status_code == 204:
            routine_request()
        return card
    except HTTPException:
        raise
    except Exception as error:
        return failed_answer(ctx, _log_failure(widget, error))


def failure_reference(widget: Widget, error: Exception) -> str:
    """The same every time the same bug strikes the same card, in every worker: the card's text
    stays put from one poll to the next, and one reference finds every log line of that bug.
    Made of the card, the error's type and where it was raised (not its message, which may
    hold an address or a time)."""
    where = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
    place = f"{where[0].filename}:{where[0].lineno}" if where else ""
    said = f"{widget.slug}\x1f{type(error).__module__}.{type(error).__qualname__}\x1f{place}"
    return hashlib.blake2b(said.encode(), digest_size=5).hexdigest()


def _log_failure(widget: Widget, error: Exception) -> str:
    """Log the error with its traceback, its reference and the request's id; the reference."""
    reference = failure_reference(widget, error)
    portal_state().cache.observer.card_failed(widget.slug)
    log.exception(
        "card could not be drawn",
        extra={
            "event": "card_failed",
            "widget": widget.slug,
            "reference": reference,
            "request_id": g.get("request_id"),
        },
    )
    return reference


def failed_body(ctx: WidgetContext, reference: str) -> Markup:
    """The card's body when it could not be drawn, with the reference of the logged error.
    Rendered apart from the widget's template, which may be what failed."""
    return Markup(render_template("widgets/_card_failed.html", widget=ctx.widget, reference=reference))


def failed_answer(ctx: WidgetContext, reference: str) -> Response:
    """500, with a body the page shows in the card (FAILED_HEADER)."""
    body = failed_body(ctx, reference)
    failed = Response(body, status=500, headers=_headers(None, None), content_type=HTML)
    failed.headers[FAILED_HEADER] = "1"
    return failed


def fetched_text(moment: datetime) -> str:
    """A fetch time as the header and the page carry it: ISO 8601 in UTC with a "Z", which both
    `datetime.fromisoformat` and the browser's `Date` read (5 bytes fewer than "+00:00" on every
    unchanged poll), in milliseconds so that two workers' fetches of the same second are told
    apart."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").removesuffix("+00:00") + "Z"


def newer_on_screen(ctx: WidgetContext, view: WidgetView, fetched: datetime | None) -> datetime | None:
    """When a poll's card shows data fetched after this worker's, and still within its TTL: that
    time (the card keeps what it shows, and its time, even when this worker's data is the same);
    else None. Only a poll sends it (portal.js), never a request a person made: theirs always
    gets this worker's answer."""
    shown_version = request.headers.get(VERSION_HEADER)
    said = request.headers.get(FETCHED_HEADER)
    if request.method != "GET" or not shown_version or not said:
        return None
    try:
        shown = datetime.fromisoformat(said)
    except ValueError:
        return None
    now = datetime.now(UTC)
    if shown.tzinfo is None or shown > now + CLOCK_SKEW or shown + timedelta(seconds=ctx.settings.ttl) <= now:
        return None
    if fetched is not None and fetched >= shown:
        return None
    return shown


def keep_answer(shown: datetime, soon: bool) -> Response:
    """204: the card keeps its version and its time (newer than what this worker holds).

    `soon`: this worker is fetching anew (after an invalidation, say: a change pushed by the
    tool), so the page asks again soon rather than at the card's interval."""
    kept = Response(status=204, headers=_headers(None, shown))  # the card's own version stands
    if soon:
        kept.headers[POLL_HEADER] = "soon"
    del kept.headers["Content-Type"]
    return kept


def card_views(state: PortalState) -> CardViews:
    found: CardViews | None = state.card_views
    if found is None:
        found = state.card_views = CardViews()
    return found


def answer(view: WidgetView, status: int = 200, fetched_at: datetime | None = None) -> Response:
    """The card body of a versioned view, or 204 when the card already shows this version.

    `fetched_at`: when the oldest data shown was fetched (X-Widget-Fetched-At, "Updated at").
    """
    headers = _headers(view.version, fetched_at)
    if status == 200 and request.headers.get(VERSION_HEADER) == view.version:
        unchanged = Response(status=204, headers=headers)  # nothing changed: a few bytes
        del unchanged.headers["Content-Type"]
        return unchanged
    # Compressed once per version and Accept-Encoding: every page load asks for each card's body.
    body, encoding = encoded_fragment((view.version, request.script_root), lambda: render_card(view).encode())
    headers["Vary"] = "Accept-Language, Accept-Encoding"
    response = Response(body, status=status, headers=headers, content_type=HTML)
    if encoding:
        response.headers["Content-Encoding"] = encoding
    if status >= 500:  # a write the portal failed: the card shows it (portal.js)
        response.headers[FAILED_HEADER] = "1"
    return mark_encoded(response)


def _headers(version: str | None, fetched_at: datetime | None) -> dict[str, str]:
    """The headers of every card answer, body or not."""
    # The page compares it with its own: after an upgrade, it offers to reload (portal.js).
    headers = {"Cache-Control": "no-store", BUILD_HEADER: current_app.config["PORTAL_BUILD_ID"]}
    if version is not None:
        headers[VERSION_HEADER] = version
    changed = portal_state().changes.header()
    if changed:  # a tool pushed a change lately: the page polls its cards (caching/changes.py)
        headers[CHANGED_HEADER] = changed
    if fetched_at is not None:
        headers[FETCHED_HEADER] = fetched_text(fetched_at)
    return headers


def widget_blueprint(widget: Widget) -> Blueprint:
    """The widget's blueprint: `GET /widgets/<slug>` and the widget's own routes."""
    blueprint = Blueprint(widget.slug, __name__, template_folder=widget.template_folder)

    def view() -> Response:
        return serve_card(widget)

    view.__doc__ = f"The {widget.slug} card's body (polled by the card)."
    blueprint.add_url_rule(f"/widgets/{widget.slug}", "view", view, methods=["GET"])
    widget.register_routes(blueprint)
    return blueprint
