"""The tasks card: my open tasks, user stories and issues across Taiga projects, with a quick status
change.

The board (every open item the service account sees) is fetched once per cache period for every
user and both Taiga cards, and cut on the server for the person asking (`select`): Taiga's load
does not grow with the portal's users, and nobody receives another person's items. A status
change goes through the write path with the version the card showed; the server checks against
Taiga's own data that the item is assigned to the person (403 otherwise), a stale version is a
conflict shown as such with the fresh state, and the shared board is invalidated everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Blueprint
from flask_babel import lazy_gettext as _l
from pydantic import Field

from ...config import WidgetSection
from ...identity import User
from ...web.i18n import select_locale
from ..contract import PER_HOUR, Part, Widget, WidgetContext, WidgetView
from ..taiga.cards import (
    board_part,
    catalog_of,
    catalog_part,
    catalog_read,
    my_work,
    taiga_settings,
    tell_missing_claim,
    view_today,
)
from ..taiga.client import Kind, Status, WorkItem
from ..taiga.feed import item_url
from ..taiga.keeping import keeper
from ..taiga.upstream import TAIGA
from ..taiga.work import (
    SORTS,
    DueState,
    Mark,
    days_between,
    due_state,
    hue_of,
    issue_grades,
    safe_color,
    sort_items,
)

KINDS: tuple[Kind, ...] = ("task", "us", "issue")


class TasksSettings(WidgetSection):
    """widgets.tasks: how many items the card lists and when a due date counts as soon."""

    due_soon_days: int = Field(2, ge=0, le=30, description="due within this many days: 'due soon'")
    max_items: int = Field(60, ge=5, le=500, description="items listed at most (the rest counted)")


@dataclass(frozen=True)
class Choice:
    """What the card asked to see: an order and two filters."""

    sort: str = "due"
    blocked: bool = False
    soon: bool = False

    def encode(self) -> str:
        text = f"sort={self.sort}"
        if self.blocked:
            text += "&blocked=1"
        if self.soon:
            text += "&soon=1"
        return text

    @classmethod
    def decode(cls, text: str) -> Choice:
        values = dict(pair.split("=", 1) for pair in text.split("&") if "=" in pair)
        return cls(values.get("sort", "due"), values.get("blocked") == "1", values.get("soon") == "1")


@dataclass(frozen=True)
class Row:
    """One item as the card shows it."""

    item: WorkItem
    status: str  # its status's name in the card's language (Taiga's own French for its defaults)
    url: str
    due: DueState
    days: int | None  # due date minus today
    hue: str  # the palette hue nearest Taiga's status colour
    swatch: str | None  # Taiga's exact colour, checked to be #rrggbb
    sprint: str  # the open sprint's name, or ""
    statuses: tuple[tuple[Status, str], ...]  # the item's project's statuses and their hues
    type_name: str = ""  # an issue's type ("Bug"), when the catalogue knows it
    marks: tuple[Mark, ...] = ()


class TasksWidget(Widget):
    """My open Taiga tasks, user stories and issues: status, due date, blocked, link; a status menu each."""

    slug = "tasks"
    title = _l("My tasks")
    icon = "check"
    scope = "user"
    upstreams = (TAIGA,)
    settings_model = TasksSettings
    clock = PER_HOUR  # "due tomorrow" becomes "due today" at midnight in the portal's zone

    def parts(self, ctx: WidgetContext, user: User) -> Sequence[Part[Any]]:
        return [board_part(ctx, user), catalog_part(ctx, str(select_locale()))]

    def is_empty(self, view: WidgetView) -> bool:
        work = my_work(view)
        return work is not None and work.person is not None and not work.items

    def choice(self, ctx: WidgetContext, user: User, args: Mapping[str, str]) -> str:
        """sort (due, status, project, modified), blocked=1, soon=1; the saved sort by default."""
        sort = args.get("sort") or keeper().sort_of(user) or "due"
        return Choice(
            sort if sort in SORTS else "due", args.get("blocked") == "1", args.get("soon") == "1"
        ).encode()

    def decorate(self, view: WidgetView, ctx: WidgetContext, user: User) -> str:
        """The rows in the chosen order and filter, with due states as of the view's clock step."""
        work = my_work(view)
        settings = ctx.settings
        assert isinstance(settings, TasksSettings)
        choice = Choice.decode(str(view.choice or Choice().encode()))
        view.extra["choice"] = choice
        view.extra["sorts"] = SORTS
        view.extra["keeps_sort"] = keeper().available
        if work is None or work.person is None:
            return tell_missing_claim(view)
        today = view_today(view, ctx)
        front = taiga_settings(ctx).front
        catalog = catalog_of(view)
        read = catalog_read(view)
        # Not read yet (the card asks again soon): said as such, not as Taiga failing.
        pending = read is not None and read.result.state == "pending"
        view.extra["statuses_pending"] = catalog is None and pending
        sprints = {sprint.id: sprint.name for sprint in work.sprints}
        rows = []
        counts = {"overdue": 0, "soon": 0, "blocked": 0}
        for item in sort_items(work.items, choice.sort, catalog):
            state = due_state(item.due_date, today, settings.due_soon_days)
            if state in ("overdue", "soon"):
                counts[state] += 1
            counts["blocked"] += item.is_blocked
            if choice.blocked and not item.is_blocked:
                continue
            if choice.soon and state not in ("overdue", "soon"):
                continue
            statuses = catalog.of(item.kind, item.project) if catalog else ()
            type_name, marks = issue_grades(item, catalog)
            rows.append(
                Row(
                    item=item,
                    status=catalog.name_of(item) if catalog else item.status_name,
                    url=item_url(front, item),
                    due=state,
                    days=days_between(today, item.due_date) if item.due_date else None,
                    hue=hue_of(item.status_color),
                    swatch=safe_color(item.status_color),
                    sprint=sprints.get(item.milestone or 0, ""),
                    statuses=tuple((s, hue_of(s.color)) for s in statuses),
                    type_name=type_name,
                    marks=marks,
                )
            )
        view.extra["rows"] = rows[: settings.max_items]
        view.extra["hidden"] = max(0, len(rows) - settings.max_items)
        view.extra["taiga_home"] = f"{front}/"  # Taiga's own home: what the person works on
        view.extra["counts"] = counts
        view.extra["today"] = today
        return f"{today.isoformat()}"

    def register_routes(self, blueprint: Blueprint) -> None:
        from . import routes  # noqa: PLC0415 - its views read the portal's state, which imports the widgets

        routes.register(self, blueprint)
