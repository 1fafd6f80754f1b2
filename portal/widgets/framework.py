"""The widget contract: authorise, fetch through the cache, render a fragment or answer 204.

A widget package declares a `Widget` and a blueprint whose view calls `serve(...)` with one
`Part` per cache key (most widgets have one; the status widget has one per status page).
The fragment's version is a hash of what it renders; when the card sends the same version
back, the answer is 204 and nothing is swapped. Because equal versions render equal HTML, a
worker renders each version once and keeps it (and its compressed forms, see compression.py):
anything a fragment shows besides the cached data must go into the version through `decorate`.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from flask import Response, current_app, render_template, request
from flask_babel import gettext as _
from werkzeug.datastructures import Headers

from ..caching.memo import Memo
from ..caching.widget_cache import CacheResult, FetchPolicy, WidgetCache, user_scope, widget_key
from ..config import WidgetSection
from ..identity import User, current_user
from ..observability.logs import log_fields
from ..upstreams.http import Reason
from ..web.compression import encoded_fragment, mark_encoded
from ..web.i18n import select_locale

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

T = TypeVar("T")
VERSION_HEADER = "X-Widget-Version"
VERSION_ENVIRON = "HTTP_X_WIDGET_VERSION"  # the header as the WSGI environ holds it
HTML = "text/html; charset=utf-8"
State = Literal["loading", "ok", "empty", "stale", "error", "unconfigured", "forbidden"]


@dataclass(frozen=True)
class Widget:
    """What a widget is: its slug names folder, route, template, config key and metric label."""

    slug: str
    title: Any  # a lazy translatable string
    icon: str  # a symbol of static/icons/ui.svg
    scope: Literal["shared", "user"]
    upstream: str  # key in the `upstreams` config section
    upstream_label: str  # the upstream's name in messages
    wide: bool = False  # spans two columns of the dashboard grid when there is room

    @property
    def template(self) -> str:
        return f"widgets/{self.slug}.html"

    @property
    def endpoint(self) -> str:
        return f"{self.slug}.view"


@dataclass(frozen=True)
class WidgetRuntime:
    """A widget as configured in this deployment (built once at start-up)."""

    widget: Widget
    settings: WidgetSection
    configured: bool
    policy: FetchPolicy


@dataclass(frozen=True)
class Part(Generic[T]):
    """One cached piece of a widget: a key suffix, a label for messages and its fetch."""

    key: str
    label: str
    fetch: Callable[[], T]


@dataclass(frozen=True)
class Problem:
    """Why part of a card is not fresh, in words."""

    label: str
    reason: Reason
    stale_since: datetime | None


@dataclass(frozen=True)
class PartResult(Generic[T]):
    label: str
    result: CacheResult[T]


@dataclass
class WidgetView:
    """What a card template renders."""

    widget: Widget
    state: State
    parts: tuple[PartResult[Any], ...] = ()
    problems: tuple[Problem, ...] = ()
    version: str = ""
    announcement: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def values(self) -> list[Any]:
        """The data of every part that has some (fresh or stale)."""
        return [p.result.value for p in self.parts if p.result.value is not None]

    @property
    def polling(self) -> bool:
        """Unconfigured or forbidden cards have nothing to wait for."""
        return self.state not in ("unconfigured", "forbidden")


def runtimes() -> dict[str, WidgetRuntime]:
    """Every widget of this deployment, by slug."""
    found: dict[str, WidgetRuntime] = current_app.extensions["portal"].widgets
    return found


def widget_cache() -> WidgetCache:
    found: WidgetCache = current_app.extensions["portal"].cache
    return found


def visible_widgets(user: User | None) -> list[WidgetRuntime]:
    """The enabled widgets this user may see, in configuration order."""
    if user is None:
        return []
    return [rt for rt in runtimes().values() if rt.settings.enabled and user.may_see(rt.settings.roles)]


def loading_view(widget: Widget) -> WidgetView:
    """The skeleton state the shell renders before the first answer."""
    return WidgetView(widget=widget, state="loading", announcement="")


def _epoch_to_datetime(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, tz=UTC) if epoch is not None else None


def build_view(
    widget: Widget,
    parts: Sequence[PartResult[Any]],
    is_empty: Callable[[list[Any]], bool],
) -> WidgetView:
    """Combine the parts' results into one card state."""
    problems = tuple(
        Problem(p.label, p.result.error, _epoch_to_datetime(p.result.fetched_at))
        for p in parts
        if p.result.error is not None
    )
    with_data = [p for p in parts if p.result.value is not None]
    if not with_data:
        state: State = "error"
    elif problems:
        state = "stale"
    elif is_empty([p.result.value for p in with_data]):
        state = "empty"
    else:
        state = "ok"
    return WidgetView(
        widget=widget,
        state=state,
        parts=tuple(parts),
        problems=problems,
    )


def _version(view: WidgetView, extra: str, locale: str) -> str:
    """A hash of everything the fragment shows; equal versions render equal HTML."""
    pieces = [current_app.config["PORTAL_BUILD_ID"], view.widget.slug, view.state, locale, extra]
    for part in view.parts:
        result = part.result
        # The fetch time is shown (and versioned) only when data is stale: "stale since HH:MM".
        since = str(result.fetched_at) if result.error is not None else ""
        pieces += [part.label, result.fingerprint or "-", str(result.error or ""), since]
    return hashlib.blake2b("\x1f".join(pieces).encode(), digest_size=10).hexdigest()


def _shown(parts: Sequence[PartResult[Any]]) -> tuple[Hashable, ...]:
    """What a card shows of its parts' results: the same tuple gives the same view and version."""
    return tuple(
        (
            part.label,
            part.result.fingerprint,
            part.result.value is None,
            part.result.error,
            part.result.fetched_at if part.result.error is not None else None,
        )
        for part in parts
    )


def _cards() -> Memo[Hashable, WidgetView]:
    """This app's card views (with their versions) by what they show and who asks."""
    memo: Memo[Hashable, WidgetView] = current_app.extensions.setdefault("portal_cards", Memo(4096))
    return memo


def card_view(
    widget: Widget,
    parts: Sequence[PartResult[Any]],
    is_empty: Callable[[list[Any]], bool],
    decorate: Callable[[WidgetView], str] | None,
    user: User,
) -> WidgetView:
    """The card's state, decoration and version, worked out once per worker for each combination.

    A dashboard polls the same unchanged data all day: the view is built again only when the
    data, the user's roles and groups, or the language differ. That is sound because the
    view depends on nothing else: `decorate` must depend only on the view's data and the
    user's roles and groups (see `serve`).
    """
    locale = str(select_locale())  # what Flask-Babel will use, without its per-request machinery
    key = (widget.slug, _shown(parts), user.roles, user.groups, locale)
    memo = _cards()
    view = memo.get(key)
    if view is None:
        view = build_view(widget, parts, is_empty)
        extra = decorate(view) if decorate else ""
        view.version = _version(view, extra, locale)
        memo.put(key, view)
    return view


def _rendered() -> Memo[tuple[str, str], bytes]:
    """This app's rendered fragments by (version, script root): the version says what they show."""
    memo: Memo[tuple[str, str], bytes] = current_app.extensions.setdefault("portal_fragments", Memo(256))
    return memo


def _render(view: WidgetView) -> bytes:
    """The card's HTML, rendered once per version and script root."""
    key = (view.version, request.script_root)
    rendered = _rendered()
    body = rendered.get(key)
    if body is None:
        body = render_template(view.widget.template, view=view).encode()
        rendered.put(key, body)
    return body


class FragmentResponse(Response):
    """A widget's answer, whose headers are final when the view returns it.

    As a response leaves, Werkzeug copies and checks its headers again, to make a Location
    absolute and to add a missing Content-Length. A fragment has no Location and gets its
    length with its body, so its headers go out as they are (a few µs on every poll).
    """

    def get_wsgi_headers(self, environ: WSGIEnvironment) -> Headers:
        return self.headers


def render_fragment(view: WidgetView, status: int = 200, version_extra: str = "") -> Response:
    """Version the view, then answer with its body, or 204 when the card already shows it."""
    view.version = _version(view, version_extra, str(select_locale()))
    return _answer(view, status)


def _answer(view: WidgetView, status: int = 200) -> Response:
    """The card body of a versioned view, or 204 when the card already shows this version."""
    headers = [(VERSION_HEADER, view.version), ("Cache-Control", "no-store")]
    asked = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup
    if status == 200 and asked.environ.get(VERSION_ENVIRON) == view.version:
        # Nothing but the status and the version: an unchanged poll costs a few bytes.
        response = FragmentResponse(status=204, headers=headers)
        response.headers.remove("Content-Type")
        return response
    if status != 200:  # a refusal: rare, compressed (or not) as any other answer
        return FragmentResponse(_render(view), status=status, headers=[*headers, ("Vary", "Accept-Language")])
    body, encoding = encoded_fragment((view.version, asked.script_root), lambda: _render(view))
    headers.append(("Vary", "Accept-Language, Accept-Encoding"))
    if encoding:
        headers.append(("Content-Encoding", encoding))
    return mark_encoded(FragmentResponse(body, headers=headers, content_type=HTML))


_fetch_pool: ThreadPoolExecutor | None = None
_fetch_pool_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """Threads for fetching several parts at once, created in the worker (not before fork)."""
    global _fetch_pool  # noqa: PLW0603 - one pool per process
    with _fetch_pool_lock:
        if _fetch_pool is None:
            _fetch_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="portal-fetch")
        return _fetch_pool


def _results(
    widget: Widget, runtime: WidgetRuntime, keyed: list[tuple[str, Part[Any]]]
) -> list[PartResult[Any]]:
    """Every part's result: fresh hits read at once, the misses fetched concurrently.

    A card with several parts on a hung upstream then answers within one timeout, not one
    per part.
    """
    cache = widget_cache()
    policy = runtime.policy
    hits = [cache.fresh(key, policy, widget.slug) for key, _ in keyed]
    misses = [i for i, hit in enumerate(hits) if hit is None]
    fetched: dict[int, CacheResult[Any]] = {}
    if len(misses) == 1:
        key, part = keyed[misses[0]]
        fetched[misses[0]] = cache.get_or_fetch(key, part.fetch, policy, widget.slug)
    elif misses:
        futures = {
            i: _pool().submit(cache.get_or_fetch, keyed[i][0], keyed[i][1].fetch, policy, widget.slug)
            for i in misses
        }
        fetched = {i: future.result() for i, future in futures.items()}
    return [PartResult(part.label, hits[i] or fetched[i]) for i, (_, part) in enumerate(keyed)]


def serve(
    widget: Widget,
    parts: Callable[[WidgetRuntime], Sequence[Part[Any]]],
    is_empty: Callable[[list[Any]], bool] = lambda values: not any(values),
    decorate: Callable[[WidgetView], str] | None = None,
) -> Response:
    """The whole widget request: authz, cache, state, version, fragment.

    `decorate(view)` may add `view.extra` for the template and returns a string that is
    mixed into the version (for what the fragment shows besides the cached data). It must
    depend only on the view's data and the user's roles and groups: its result is kept for
    every later poll with the same data and grants (see `card_view`).
    """
    runtime = runtimes()[widget.slug]
    user = current_user()
    if user is None or not user.may_see(runtime.settings.roles) or not runtime.settings.enabled:
        log_fields(widget=widget.slug, cache="forbidden")
        view = WidgetView(widget=widget, state="forbidden")
        view.announcement = _("You do not have access to this widget.")
        return render_fragment(view, status=403)
    if not runtime.configured:
        log_fields(widget=widget.slug, cache="unconfigured")
        view = WidgetView(widget=widget, state="unconfigured")
        return render_fragment(view)

    scope = "shared" if widget.scope == "shared" else user_scope(user.subject)
    results = _results(widget, runtime, [(widget_key(widget.slug, scope, p.key), p) for p in parts(runtime)])
    log_fields(widget=widget.slug, cache=",".join(r.result.source for r in results))
    return _answer(card_view(widget, results, is_empty, decorate, user))
