"""The deadlines card: a month calendar of my due dates and my projects' sprint ends, and a list of
what is due in the next days; overdue and due soon told by colour, icon and word.

The calendar is rendered on the server; the previous and next months are asked through htmx
(the month travels with every poll as the card's choice). Dates are in the portal's time zone,
month and day names in the user's language (Babel). The card also offers a private calendar
feed (.ics) of the same deadlines, subscribable without a browser session.
"""

from __future__ import annotations

import calendar as pycalendar
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from babel import Locale
from babel.dates import format_skeleton
from flask import Blueprint
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from pydantic import Field

from ...config import WidgetSection
from ...identity import User
from ..contract import PER_HOUR, Part, Widget, WidgetContext, WidgetView
from ..taiga.cards import board_part, my_work, taiga_settings, tell_missing_claim, view_today
from ..taiga.client import Sprint
from ..taiga.feed import item_url, sprint_url
from ..taiga.upstream import TAIGA
from ..taiga.work import DueState, MyWork, due_state, hue_of

MONTH = re.compile(r"(\d{4})-(\d{2})")
MONTHS_AWAY = 24  # how far from today the calendar may be moved


class DeadlinesSettings(WidgetSection):
    """widgets.deadlines: what counts as soon, how far the list looks ahead, the feed."""

    due_soon_days: int = Field(2, ge=0, le=30, description="due within this many days: 'due soon'")
    horizon_days: int = Field(14, ge=1, le=90, description="the list shows what is due in this many days")
    feed: bool = True  # offer a private calendar feed (.ics) on the card
    feed_idle_days: int = Field(
        90, ge=1, le=3650, description="a feed stops once its owner has not signed in for this many days"
    )


@dataclass(frozen=True)
class Deadline:
    """One date on the card: an item's due date or a sprint's end."""

    day: date
    kind: str  # task | us | issue | sprint
    title: str
    project: str
    url: str
    state: DueState
    hue: str = "grey"
    ref: int = 0


@dataclass
class Day:
    day: date
    in_month: bool
    today: bool
    deadlines: list[Deadline] = field(default_factory=list)

    @property
    def worst(self) -> str:
        """The most urgent state of the day's items ("" without any): a sprint's end is marked,
        not due."""
        states = {d.state for d in self.deadlines if d.kind != "sprint"}
        for state in ("overdue", "soon", "later"):
            if state in states:
                return state
        return ""


def month_of(text: str, today: date) -> date:
    """The first day of the month `YYYY-MM`, within MONTHS_AWAY of today; today's month otherwise."""
    found = MONTH.fullmatch(text or "")
    if found:
        year, month = int(found.group(1)), int(found.group(2))
        if 1 <= month <= 12 and abs((year - today.year) * 12 + month - today.month) <= MONTHS_AWAY:
            return date(year, month, 1)
    return today.replace(day=1)


def shift(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def deadlines_of(work: MyWork, front: str, today: date, soon_days: int) -> list[Deadline]:
    found = []
    for item in work.items:
        if item.due_date is None:
            continue
        found.append(
            Deadline(
                day=item.due_date,
                kind=item.kind,
                title=item.subject,
                project=item.project_name,
                url=item_url(front, item),
                state=due_state(item.due_date, today, soon_days),
                hue=hue_of(item.status_color),
                ref=item.ref,
            )
        )
    for sprint in work.sprints:
        found.append(sprint_deadline(sprint, front, today, soon_days))
    return sorted(found, key=lambda d: (d.day, d.kind != "sprint", d.project.casefold(), d.title.casefold()))


def sprint_deadline(sprint: Sprint, front: str, today: date, soon_days: int) -> Deadline:
    return Deadline(
        day=sprint.finish,
        kind="sprint",
        title=sprint.name,
        project=sprint.project_name,
        url=sprint_url(front, sprint),
        state=due_state(sprint.finish, today, soon_days),
    )


def weeks_of(first: date, today: date, first_weekday: int, deadlines: Sequence[Deadline]) -> list[list[Day]]:
    """The month's weeks, each of seven days (days of the months around it included)."""
    by_day: dict[date, list[Deadline]] = {}
    for deadline in deadlines:
        by_day.setdefault(deadline.day, []).append(deadline)
    weeks = pycalendar.Calendar(first_weekday).monthdatescalendar(first.year, first.month)
    return [[Day(d, d.month == first.month, d == today, by_day.get(d, [])) for d in week] for week in weeks]


@dataclass(frozen=True)
class Month:
    """The month the calendar shows; its grid of days is drawn when the card is rendered.

    A worker keeps each person's view (a thousand people, some 35,000 days): kept as days, they
    were the largest group of objects the garbage collector goes through at each full
    collection, which stops the whole worker. The grid is needed only while rendering.
    """

    first: date
    today: date
    first_weekday: int
    deadlines: tuple[Deadline, ...]

    @property
    def weeks(self) -> list[list[Day]]:
        return weeks_of(self.first, self.today, self.first_weekday, self.deadlines)


class DeadlinesWidget(Widget):
    """My due dates and my projects' sprint ends: a month calendar and the next days' list."""

    slug = "deadlines"
    title = _l("Deadlines")
    icon = "clock"
    scope = "user"
    upstreams = (TAIGA,)
    settings_model = DeadlinesSettings
    clock = PER_HOUR

    def parts(self, ctx: WidgetContext, user: User) -> Sequence[Part[Any]]:
        return [board_part(ctx, user)]

    def is_empty(self, view: WidgetView) -> bool:
        return False  # an empty month is still a calendar

    def choice(self, ctx: WidgetContext, user: User, args: Mapping[str, str]) -> str:
        month = args.get("month", "")
        return f"month={month}" if MONTH.fullmatch(month) else ""

    def decorate(self, view: WidgetView, ctx: WidgetContext, user: User) -> str:
        """The month's weeks, the list of the next days and the navigation, as of the clock step."""
        settings = ctx.settings
        assert isinstance(settings, DeadlinesSettings)
        today = view_today(view, ctx)
        first = month_of(str(view.choice or "").removeprefix("month="), today)
        locale = Locale.parse(str(get_locale() or "en"))
        work = my_work(view)
        deadlines: list[Deadline] = []
        if work is not None and work.person is not None:
            deadlines = deadlines_of(work, taiga_settings(ctx).front, today, settings.due_soon_days)
        horizon = today + timedelta(days=settings.horizon_days)
        view.extra.update(
            today=today,
            first=first,
            month_label=format_skeleton("yMMMM", first, locale=locale),
            weekdays=[
                (
                    locale.days["stand-alone"]["abbreviated"][(locale.first_week_day + i) % 7],
                    locale.days["stand-alone"]["wide"][(locale.first_week_day + i) % 7],
                )
                for i in range(7)
            ],
            month=Month(first, today, locale.first_week_day, tuple(deadlines)),
            upcoming=[d for d in deadlines if d.day <= horizon and (d.day >= today or d.kind != "sprint")],
            previous=shift(first, -1).strftime("%Y-%m"),
            following=shift(first, 1).strftime("%Y-%m"),
            can_go_back=month_of(shift(first, -1).strftime("%Y-%m"), today) == shift(first, -1),
            can_go_on=month_of(shift(first, 1).strftime("%Y-%m"), today) == shift(first, 1),
            current=first == today.replace(day=1),
            counts={
                s: sum(1 for d in deadlines if d.state == s and d.kind != "sprint")
                for s in ("overdue", "soon")
            },
        )
        return f"{today.isoformat()}{tell_missing_claim(view)}"

    def register_routes(self, blueprint: Blueprint) -> None:
        from . import routes  # noqa: PLC0415 - its views read the portal's state, which imports the widgets

        routes.register(self, blueprint)
