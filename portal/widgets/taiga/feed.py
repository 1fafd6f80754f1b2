"""A person's deadlines as an iCalendar feed (RFC 5545), made with the `icalendar` library.

Every event is all-day (DTSTART;VALUE=DATE, DTEND the day after), has a UID stable across
fetches (`taiga-task-5@taiga.example.org`: the kind, Taiga's id and the Taiga host; tasks, stories
and issues number their ids apart, hence the kind), and links
back to Taiga (URL, and the description's last line). The description's first line says what
the tasks card says: kind, an issue's type, project, status, a severity or priority worth it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from flask_babel import gettext as _
from icalendar import Calendar, Event

from ...web.bidi import BIDI_CONTROLS
from .client import Catalog, Kind, Sprint, WorkItem
from .work import Mark, MyWork, issue_grades

PRODID = "-//DevSecOps Portal//Taiga deadlines//EN"


def plain(text: str) -> str:
    """Taiga's text without bidi controls, as the pages show it (web/bidi.py)."""
    return text.translate(BIDI_CONTROLS)


def item_url(front: str, item: WorkItem) -> str:
    """The item in Taiga's web app: /project/<slug>/task/<ref>, .../us/<ref> or .../issue/<ref>."""
    return f"{front}/project/{item.project_slug}/{item.kind}/{item.ref}"


def kind_name(kind: Kind) -> str:
    """What Taiga's web app calls an item of this kind, in the request's language."""
    names: dict[str, str] = {"task": _("Task"), "us": _("User story"), "issue": _("Issue")}
    return names[kind]


def mark_words(mark: Mark) -> str:
    """ "Severity: Critical", "Priorité : Fort": as the tasks card says it."""
    words: str = (
        _("Severity: %(name)s", name=mark.name)
        if mark.kind == "severity"
        else _("Priority: %(name)s", name=mark.name)
    )
    return words


def sprint_url(front: str, sprint: Sprint) -> str:
    return f"{front}/project/{sprint.project_slug}/taskboard/{sprint.slug}"


def calendar(
    work: MyWork,
    front: str,
    name: str,
    now: datetime | None = None,
    catalog: Catalog | None = None,
) -> bytes:
    """The .ics body: the person's dated open items and their projects' open sprint ends.

    Texts are in the language of the request (a calendar application sends Accept-Language),
    statuses as `catalog` names them (Taiga's, in that language), else as the board does.
    """
    host = urlsplit(front).hostname or "taiga"
    stamp = (now or datetime.now(UTC)).astimezone(UTC)
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", name)
    cal.add("x-published-ttl", "PT1H")
    cal.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    for item in work.items:
        if item.due_date is None:
            continue
        url = item_url(front, item)
        kind = kind_name(item.kind)
        event = Event()
        event.add("uid", f"taiga-{item.kind}-{item.id}@{host}")
        event.add("dtstamp", stamp)
        event.add("dtstart", item.due_date)
        event.add("dtend", item.due_date + timedelta(days=1))
        event.add("summary", plain(f"{item.subject} ({item.project_name} #{item.ref})"))
        status = catalog.name_of(item) if catalog else item.status_name
        type_name, marks = issue_grades(item, catalog)
        parts = [kind, type_name, item.project_name, status, *map(mark_words, marks)]
        event.add("description", plain(" · ".join(part for part in parts if part) + f"\n{url}"))
        event.add("url", url)
        event.add("categories", [kind])
        event.add("transp", "TRANSPARENT")
        cal.add_component(event)
    for sprint in work.sprints:
        url = sprint_url(front, sprint)
        event = Event()
        event.add("uid", f"taiga-sprint-{sprint.id}@{host}")
        event.add("dtstamp", stamp)
        event.add("dtstart", sprint.finish)
        event.add("dtend", sprint.finish + timedelta(days=1))
        summary = _("End of %(sprint)s (%(project)s)", sprint=sprint.name, project=sprint.project_name)
        event.add("summary", plain(summary))
        event.add("description", plain(f"{sprint.project_name}\n{url}"))
        event.add("url", url)
        event.add("categories", [_("Sprint")])
        event.add("transp", "TRANSPARENT")
        cal.add_component(event)
    body: bytes = cal.to_ical()
    return body
