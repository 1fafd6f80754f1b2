"""One person's work, cut from the shared board on the server, and what the cards say of dates.

The board holds every open item of every project the service account sees; `cut` keeps only
what is assigned to one person (tasks and issues by `assigned_to`, stories by `assigned_users`
or `assigned_to`) and the sprints of the projects they are a member of. Nothing else of the board
reaches that person's card.
"""

from __future__ import annotations

import colorsys
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo

from .client import Board, Catalog, GradeKind, Person, Sprint, WorkItem

DueState = Literal["overdue", "soon", "later", "none"]
Sort = Literal["due", "status", "severity", "project", "modified"]
SORTS: tuple[str, ...] = get_args(Sort)  # one list: the menu, the route and the kept preference


@dataclass(frozen=True)
class MyWork:
    """What one person's cards show: their open items and their projects' open sprints.

    `person` is None when Taiga has no account by the name the portal looked up (`name`), or
    when the user's token has no claim to look them up by (`missing_claim` names it, `name` is
    ""): states of their own, not an empty list.
    """

    name: str
    person: Person | None
    items: tuple[WorkItem, ...]
    sprints: tuple[Sprint, ...]
    truncated: bool = False
    missing_claim: str = ""


def cut(board: Board, name: str | None, claim: str = "") -> MyWork:
    """The part of the board that is `name`'s, and nothing else; nothing without a name (the
    user's token lacks `claim`, the one that holds it)."""
    if not name:
        return MyWork("", None, (), (), board.truncated, missing_claim=claim)
    person = board.person(name)
    if person is None:
        return MyWork(name, None, (), (), board.truncated)
    items = board.items_of(person)
    projects = {project.id for project in board.projects if person.id in project.members}
    projects |= {item.project for item in items}
    sprints = tuple(sprint for sprint in board.sprints if sprint.project in projects)
    return MyWork(name, person, items, sprints, board.truncated)


# --- dates -----------------------------------------------------------------------------------


def today_in(now: datetime, timezone: str) -> date:
    """The date of `now` in the portal's time zone (Taiga's own due_date_status uses UTC)."""
    return now.astimezone(ZoneInfo(timezone)).date()


def due_state(due: date | None, today: date, soon_days: int) -> DueState:
    """overdue (before today), soon (today up to `soon_days` ahead), later, or none."""
    if due is None:
        return "none"
    if due < today:
        return "overdue"
    if due <= today + timedelta(days=soon_days):
        return "soon"
    return "later"


def days_between(today: date, due: date) -> int:
    return (due - today).days


# --- order and filters -----------------------------------------------------------------------


def _due_key(item: WorkItem) -> tuple[int, date]:
    return (0, item.due_date) if item.due_date else (1, date.max)


def status_places(items: Sequence[WorkItem], catalog: Catalog) -> dict[str, int]:
    """Each status name's earliest place in the workflows (Taiga's order) of `items`' projects."""
    places: dict[str, int] = {}
    for kind, project in {(item.kind, item.project) for item in items}:
        for place, status in enumerate(catalog.of(kind, project)):
            name = status.name.casefold()
            places[name] = min(places.get(name, place), place)
    return places


def sort_items(items: Sequence[WorkItem], sort: str, catalog: Catalog | None = None) -> list[WorkItem]:
    """Due date first (undated last), status (in the workflow's order, as Taiga's board shows
    them; by name until the statuses are read), severity (the issues, most severe then most
    urgent first, before the tasks and stories, which have none), project, or the latest change
    first."""
    if sort == "status":
        places = status_places(items, catalog) if catalog else {}

        def name(item: WorkItem) -> str:  # as the catalogue names it: the card's language
            return (catalog.name_of(item) if catalog else item.status_name).casefold()

        return sorted(items, key=lambda i: (places.get(name(i), len(places)), name(i), *_due_key(i), i.id))
    if sort == "severity":

        def weight(item: WorkItem, kind: GradeKind) -> float:
            standing = catalog.standing_of(item, kind) if catalog else None
            return -1.0 if standing is None else standing

        return sorted(
            items,
            key=lambda i: (-weight(i, "severity"), -weight(i, "priority"), *_due_key(i), i.id),
        )
    if sort == "project":
        return sorted(items, key=lambda i: (i.project_name.casefold(), *_due_key(i), i.id))
    if sort == "modified":
        return sorted(
            items, key=lambda i: (i.modified.timestamp() if i.modified else 0.0, i.id), reverse=True
        )
    return sorted(items, key=lambda i: (*_due_key(i), i.project_name.casefold(), i.id))


# --- Taiga's colours on the portal's palette -------------------------------------------------

_HEX = re.compile(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")

# Taiga lets anyone pick any colour for a status, and the CSP forbids style attributes: a tag
# takes the nearest hue of a fixed palette whose text and background pairs are readable in both
# themes (tests/widgets/test_taiga_palette.py checks 4.5:1), and a small swatch in Taiga's exact
# colour (an SVG `fill`, which is not a style) sits beside the name.
HUES: tuple[tuple[str, float], ...] = (
    ("red", 0),
    ("orange", 25),
    ("amber", 42),
    ("yellow", 56),
    ("lime", 80),
    ("green", 130),
    ("teal", 168),
    ("cyan", 190),
    ("blue", 215),
    ("indigo", 238),
    ("violet", 265),
    ("purple", 290),
    ("pink", 328),
)
GREY = "grey"
# Each hue's text and background: light theme, then dark (generated into portal.css § Taiga).
PALETTE: dict[str, tuple[str, str, str, str]] = {
    "red": ("#730d0d", "#fcd5d5", "#fa9e9e", "#461b1b"),
    "orange": ("#73370d", "#fce5d5", "#fac49e", "#462d1b"),
    "amber": ("#73540d", "#fcf0d5", "#fade9e", "#46391b"),
    "yellow": ("#736c0d", "#fcf9d5", "#faf49e", "#46431b"),
    "lime": ("#51730d", "#effcd5", "#dbfa9e", "#38461b"),
    "green": ("#0d731e", "#d5fcdb", "#9efaad", "#1b4622"),
    "teal": ("#0d735e", "#d5fcf4", "#9efae8", "#1b463e"),
    "cyan": ("#0d6273", "#d5f5fc", "#9eebfa", "#1b3f46"),
    "blue": ("#0d3773", "#d5e5fc", "#9ec4fa", "#1b2d46"),
    "indigo": ("#0d1073", "#d5d6fc", "#9ea1fa", "#1b1c46"),
    "violet": ("#370d73", "#e5d5fc", "#c49efa", "#2d1b46"),
    "purple": ("#620d73", "#f5d5fc", "#eb9efa", "#3f1b46"),
    "pink": ("#730d43", "#fcd5e9", "#fa9ecf", "#461b32"),
    "grey": ("#383d47", "#e5e7eb", "#c6cad2", "#2b2f36"),
}


def palette_rules(theme: Literal["light", "dark"]) -> list[str]:
    """The palette's CSS declarations for one theme, as portal.css holds them (a test checks)."""
    first = 0 if theme == "light" else 2
    return [f".hue-{n}{{--hue-fg:{c[first]};--hue-bg:{c[first + 1]}}}" for n, c in PALETTE.items()]


def safe_color(value: str) -> str | None:
    """`#rrggbb` when `value` is a hex colour, else None (never put upstream text in markup)."""
    found = _HEX.fullmatch(value.strip())
    if not found:
        return None
    digits = found.group(1)
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return f"#{digits.lower()}"


def hue_of(color: str) -> str:
    """The palette hue nearest to a Taiga colour (grey for greys and anything unreadable)."""
    safe = safe_color(color)
    if safe is None:
        return GREY
    r, g, b = (int(safe[i : i + 2], 16) / 255 for i in (1, 3, 5))
    hue, lightness, saturation = colorsys.rgb_to_hls(r, g, b)
    if saturation < 0.18 or lightness < 0.08 or lightness > 0.95:
        return GREY
    degrees = hue * 360

    def distance(entry: tuple[str, float]) -> float:
        delta = abs(degrees - entry[1]) % 360
        return min(delta, 360 - delta)

    return min(HUES, key=distance)[0]


# --- an issue's grades ------------------------------------------------------------------------


@dataclass(frozen=True)
class Mark:
    """An issue's severity or priority that stands above the middle of its project's scale."""

    kind: GradeKind
    name: str  # as Taiga names it in the card's language ("Critique")
    hue: str
    swatch: str | None


def issue_grades(item: WorkItem, catalog: Catalog | None) -> tuple[str, tuple[Mark, ...]]:
    """An issue's type name and the severity or priority worth pointing out (a "Normal" one, or
    a lower one, is not: most issues have it, and every row saying so would hide the rest)."""
    if catalog is None or not item.grades:
        return "", ()
    type_name = ""
    marks: list[Mark] = []
    for grade, high in catalog.grades_of(item):
        if grade.kind == "type":
            type_name = grade.name
        elif high:
            marks.append(Mark(grade.kind, grade.name, hue_of(grade.color), safe_color(grade.color)))
    return type_name, tuple(marks)
