"""The widget contract: what a widget declares, and what the framework hands it.

A widget is a subclass of `Widget` in its own package (`portal/widgets/<slug>/`), listed once in
`portal/widgets/__init__.py`. It declares its slug, title, icon, scope, settings model, the
upstreams it reads, how its text depends on the clock, and returns its `Part`s for a user; the
framework (serving.py) does authorisation, caching, versions, rendering and 204s, and
writes.py the guarded write path. See portal/widgets/README.md for the whole list of what a
widget ships.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from flask_babel import LazyString

from ..caching.widget_cache import CacheResult, FetchPolicy, user_scope, widget_key
from ..config import PortalConfig, WidgetSection
from ..identity import User
from ..upstreams.errors import Reason
from ..upstreams.upstream import Upstream

if TYPE_CHECKING:
    from flask import Blueprint

T = TypeVar("T")
C = TypeVar("C")
Scope = Literal["shared", "user", "mixed"]
State = Literal["loading", "ok", "empty", "stale", "error", "unconfigured", "forbidden"]
NoticeKind = Literal["info", "success", "warning", "danger"]

# How a widget's text moves with the clock ("due in 3 h", "5 min ago"): the version holds the
# current step, so a card is rendered anew at most once per step even when its data stays put.
PER_MINUTE = 60.0
PER_HOUR = 3600.0


@dataclass(frozen=True)
class Part(Generic[T]):
    """One cached piece of a card: where it is cached, what fetches it, from which upstream.

    `per_user` parts are cached under the user's subject (the framework puts it in the key).
    `select`, for a part fetched once for everyone, cuts what this user may see out of the
    shared data on the server (a closure over the user): the card never receives the rest.
    `ttl` keeps this part fresh for longer (or shorter) than the widget's `ttl` (a catalogue
    that rarely changes). `upstream_wide` caches the part under its upstream instead of the
    widget (`widget:@<upstream>:<scope>:<key>`): every widget that declares the same key on the
    same upstream shares one entry and one fetch (two cards cut from the same data).
    """

    key: str  # unique within the widget; the cache key's last segment
    label: str  # what the card calls this part in messages ("platform", a project), or ""
    upstream: Upstream[Any]
    fetch: Callable[[], T]
    per_user: bool = False
    select: Callable[[T], Any] | None = None
    ttl: float | None = None  # seconds fresh, when not the widget's
    upstream_wide: bool = False  # shared by every widget of the upstream that names this key


def upstream_key(upstream: Upstream[Any], part_key: str, user: User | None = None) -> str:
    """The cache key of an `upstream_wide` part (shared, or the user's): for invalidation too."""
    scope = "shared" if user is None else user_scope(user.subject)
    return widget_key(f"@{upstream.name}", scope, part_key)


@dataclass(frozen=True)
class WidgetContext:
    """A widget as this deployment configures it: settings, clients and cache policies.

    Built once at start-up; the same for every request. A widget keeps nothing per request on
    itself (the app may be built several times in one process, as tests do).
    """

    widget: Widget
    settings: WidgetSection
    configured: bool
    config: PortalConfig
    clients: Mapping[str, Any]  # by upstream name; only the configured ones
    policies: Mapping[str, FetchPolicy]  # by upstream name

    def client(self, upstream: Upstream[C]) -> C:
        """The client of one of this widget's upstreams (configured: see `configured`)."""
        found: C = self.clients[upstream.name]
        return found

    def policy(self, upstream: Upstream[Any]) -> FetchPolicy:
        return self.policies[upstream.name]

    def key(self, part_key: str, user: User | None = None) -> str:
        """The cache key of a part: shared, or the user's when `user` is given."""
        scope = "shared" if user is None else user_scope(user.subject)
        return widget_key(self.widget.slug, scope, part_key)

    def part_key(self, part: Part[Any], user: User) -> str:
        """Where `part` is cached for `user`: the widget's key, or its upstream's (`upstream_wide`)."""
        if part.upstream_wide:
            return upstream_key(part.upstream, part.key, user if part.per_user else None)
        return self.key(part.key, user if part.per_user else None)

    def part_policy(self, part: Part[Any]) -> FetchPolicy:
        """The cache policy of `part`: its upstream's, with the part's own `ttl` when it has one."""
        policy = self.policies[part.upstream.name]
        return policy if part.ttl is None else replace(policy, ttl=part.ttl)

    @property
    def prefix(self) -> str:
        """Every cache key of this widget starts with this (for invalidation)."""
        return f"widget:{self.widget.slug}:"


@dataclass(frozen=True)
class Problem:
    """Why part of a card is not fresh, in words: which upstream, what happened, since when."""

    label: str  # the part's label ("" for a card of one part)
    upstream: str  # the upstream's name for users
    reason: Reason
    stale_since: datetime | None  # when the data shown was fetched (None: no data)


def _minute(moment: datetime | None) -> datetime | None:
    """The minute a card shows for `moment` ("Data from 15:59")."""
    return moment.replace(second=0, microsecond=0) if moment is not None else None


def said_once(problems: Sequence[Problem], parts: int) -> tuple[Problem, ...]:
    """One line, without a part's name, when every one of the card's `parts` failed alike with
    data of the same minute (its upstream is down); else one line per failing part, named.

    Parts without a name that failed alike are one line too (two lines a person could not tell
    apart), dated by the oldest data shown: "Data from 15:59 — Taiga refused ...", not that line
    and "Unavailable — Taiga refused ..." for a part whose data the card does not show."""
    first = problems[0] if problems else None
    if first is None or len(problems) == 1:
        return tuple(problems)
    minute = _minute(first.stale_since)
    if len(problems) >= parts and all(
        p.reason == first.reason and _minute(p.stale_since) == minute for p in problems
    ):
        return (Problem("", first.upstream, first.reason, first.stale_since),)
    lines: list[Problem] = []
    for problem in problems:
        alike = next(
            (
                i
                for i, line in enumerate(lines)
                if not (line.label or problem.label) and line.reason == problem.reason
            ),
            None,
        )
        if alike is None:
            lines.append(problem)
            continue
        times = [t for t in (lines[alike].stale_since, problem.stale_since) if t is not None]
        lines[alike] = replace(lines[alike], stale_since=min(times) if times else None)
    return tuple(lines)


@dataclass(frozen=True)
class PartResult(Generic[T]):
    """A part's outcome: the cache result, and the value the card shows (cut for the user)."""

    part: Part[T]
    result: CacheResult[T]
    value: Any = None  # `result.value` (of a selected part, the result is already the person's cut)

    @property
    def label(self) -> str:
        return self.part.label

    @property
    def stale(self) -> bool:
        """Data is shown, but it is not fresh (the template mutes it)."""
        return self.result.state == "stale"

    @property
    def shown(self) -> tuple[Hashable, ...]:
        """What the card shows of this shared part: equal tuples render alike (a shared piece's key).

        Refused for a personal part (per user, or cut per user): its fingerprint is not the person's.
        """
        if self.part.per_user or self.part.select is not None:
            raise ValueError(f"part {self.part.key!r} is personal: it cannot key a shared piece")
        result = self.result
        since = result.fetched_at if result.error is not None else None
        return (self.part.key, result.fingerprint, result.state, str(result.error or ""), since)

    @property
    def problem(self) -> Problem | None:
        """Why this part is not fresh, or None."""
        error = self.result.error
        if error is None:
            return None
        fetched = self.result.fetched_at
        since = datetime.fromtimestamp(fetched, tz=UTC) if fetched is not None else None
        return Problem(self.part.label, self.part.upstream.label, error, since)


@dataclass
class WidgetView:
    """Everything a card template renders, and nothing else (no user, no request, no session)."""

    widget: Widget
    state: State
    parts: tuple[PartResult[Any], ...] = ()
    settings: WidgetSection | None = None
    version: str = ""
    notice: Reason | None = None  # said at the top of the card (after a write, say)
    notice_kind: NoticeKind = "info"
    # The row the notice is about (its item's key, after a write on it): said in that row,
    # where the person is looking, when the card shows it (see `shows_notice_at`).
    notice_at: str | None = None
    now: datetime | None = None  # the clock step the text is written for (widgets with a clock)
    fetched_at: datetime | None = None  # when the oldest data shown was fetched
    pending: bool = False  # a part is still loading (or late, its fetch under way): poll again soon
    choice: Hashable = None  # what the card shows of its data (Widget.choice): a filter, a sort
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def problems(self) -> tuple[Problem, ...]:
        """Each part's problem, in the order of the parts."""
        return tuple(problem for part in self.parts if (problem := part.problem) is not None)

    @property
    def problem_lines(self) -> tuple[Problem, ...]:
        """The problems as the card says them (see `said_once`)."""
        return said_once(self.problems, len(self.parts))

    @property
    def values(self) -> list[Any]:
        """The data of every part that has some (fresh or stale)."""
        return [p.value for p in self.parts if p.result.value is not None]

    def part(self, key: str) -> PartResult[Any] | None:
        """The part with this key (to show its data, or its own problem), or None."""
        for part in self.parts:
            if part.part.key == key:
                return part
        return None

    @property
    def polling(self) -> bool:
        """Unconfigured or forbidden cards have nothing to wait for."""
        return self.state not in ("unconfigured", "forbidden")


class Widget(ABC):
    """A card of the dashboard. Subclass it in `portal/widgets/<slug>/`, list it in the registry.

    The slug names the package, the route (/widgets/<slug>), the template
    (templates/widgets/<slug>.html), the configuration section (widgets.<slug>), the cache-key
    prefix and the metrics label.
    """

    slug: ClassVar[str]
    title: ClassVar[LazyString]  # translated when shown: _l("...") (flask_babel.lazy_gettext)
    icon: ClassVar[str]  # a symbol of static/icons/ui.svg
    # shared: the same card for everyone who may see it; user: every part is the user's own;
    # mixed: both. A per-user part's cache key always holds the subject (see Part.per_user).
    scope: ClassVar[Scope]
    upstreams: ClassVar[tuple[Upstream[Any], ...]]
    # Those of `upstreams` the card does without (it shows less): not needed to be configured.
    optional_upstreams: ClassVar[frozenset[str]] = frozenset()
    settings_model: ClassVar[type[WidgetSection]] = WidgetSection
    # Seconds between two renderings of clock-relative text (PER_MINUTE, PER_HOUR), or None.
    clock: ClassVar[float | None] = None
    wide: ClassVar[bool] = False  # spans two columns of the dashboard grid when there is room
    # Its body carries the tiles' live status dots (out-of-band swaps): the shell draws them.
    fills_tile_dots: ClassVar[bool] = False
    # It keeps polling, once a minute, while the page is hidden (a tab in the background), where
    # the others wait for the person to come back: its `attention` and data-alarm rows are what
    # the tab's icon and notifications tell them meanwhile.
    polls_in_background: ClassVar[bool] = False
    # A folder of templates of its own (templates/widgets/<slug>.html inside), or None for the app's.
    template_folder: ClassVar[str | None] = None
    # Adds a line to the user menu: the menu loads its blueprint's `user_menu` route (a fragment
    # for the current user) once the page is shown, when the widget is configured and visible.
    user_menu: ClassVar[bool] = False

    @property
    def template(self) -> str:
        return f"widgets/{self.slug}.html"

    @property
    def endpoint(self) -> str:
        return f"{self.slug}.view"

    def is_configured(self, settings: WidgetSection, config: PortalConfig) -> bool:
        """Whether this deployment configured what the card needs (by default: every upstream
        but the optional ones)."""
        return not self.missing_upstreams(config)

    def missing_upstreams(self, config: PortalConfig) -> tuple[str, ...]:
        """The names of the upstreams the card needs that the configuration lacks."""
        return tuple(
            u.name
            for u in self.upstreams
            if u.name not in self.optional_upstreams and config.upstream(u.name) is None
        )

    @abstractmethod
    def parts(self, ctx: WidgetContext, user: User) -> Sequence[Part[Any]]:
        """The pieces this user's card is made of, each fetched and cached on its own."""

    def is_empty(self, view: WidgetView) -> bool:
        """True when the data says there is nothing to show (an "empty" card, not an error)."""
        return not any(view.values)

    def choice(self, ctx: WidgetContext, user: User, args: Mapping[str, str]) -> Hashable:
        """What the card is asked to show of its data (a filter, a sort), or None for the default.

        Two sources: the values the card sends with each poll (a `<form data-card-choice>` in its
        body: the page sends its fields as query parameters with every poll, and polls at once
        when one changes), and what the user chose for good (their preferences, read with
        `portal.storage.user_preferences(user)`; a choice is saved through a guarded write route
        of the widget's own). Return it checked and normalised (unknown values dropped) and
        small and hashable: it joins the view's key and version (a card is rendered anew when it
        changes), and `decorate` and the template read it as `view.choice`. The data shown is cut
        on the server from it. Read once per request, before the view is looked up.
        """
        return None

    def decorate(self, view: WidgetView, ctx: WidgetContext, user: User) -> str:
        """Add to `view.extra` what the template needs besides the parts' data.

        Returns a string mixed into the version. It may depend on the view's data, the
        widget's settings, the card's choice (`view.choice`) and the user's roles and groups
        (and subject, for a per-user or mixed widget), nothing else: the view is kept for every
        later poll with those.
        """
        return ""

    def identity_claims(self, settings: WidgetSection) -> tuple[str, ...]:
        """Claims of the user's token this widget reads (`User.claim`), besides the identity.

        The session cookie carries them (short strings): e.g. the claim holding the user's
        name in another tool, when the configuration names one.
        """
        return ()

    def register_routes(self, blueprint: Blueprint) -> None:  # noqa: B027 - optional, empty by default
        """Add this widget's own routes (writes, other views) to its blueprint."""

    def __repr__(self) -> str:
        return f"<Widget {self.slug}>"
