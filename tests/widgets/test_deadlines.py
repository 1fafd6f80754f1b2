"""The deadlines card and its calendar feed, against the Taiga simulator.

The month is rendered on the server (and moved through the card's choice); due states are the
portal's own (its time zone, its "soon"); the feed parses with `icalendar` and with `ics`, an
independent parser; a revoked feed URL answers 404. The feed tokens are kept by an in-memory
keeper here: the portal's database (issue 12) is not part of this branch yet, and the tests of
the database-backed keeper wait for it (test_keeping_in_the_database_*).
"""

from __future__ import annotations

import calendar
import gc
import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from html import unescape
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import ics
import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from icalendar import Calendar
from sqlalchemy import select

from portal import create_app
from portal.identity import DEMO_USERS, User
from portal.state import portal_state
from portal.storage import Database, Preference, Preferences, record_sign_in, user_preferences
from portal.storage import database as database_module
from portal.storage.models import UserPreference
from portal.widgets import serving
from portal.widgets.deadlines.widget import month_of, shift
from portal.widgets.taiga import keeping
from portal.widgets.taiga.work import PALETTE, SORTS, due_state, hue_of, palette_rules
from simulators import taiga
from simulators.base import SimServer
from simulators.taiga import TaigaWorld

from ..conftest import SECRET
from ..support.clock import ViewClock
from ..support.keycloak import USERS, LoginTrip, authenticate
from ..support.postgres import PostgresServer
from ..support.processes import ROOT
from ..support.taiga_portal import (
    DAY_CELL,
    ORIGIN,
    SERVICE,
    card,
    csrf_token,
    status_form,
    status_shown,
    with_taiga,
)


@pytest.fixture
def tracker() -> Iterator[tuple[SimServer, TaigaWorld]]:
    server, world = taiga.make_server()
    world.on_request(lambda w: None)
    server.start()
    yield server, world
    server.stop()


@pytest.fixture
def taiga_app(portal_config: dict[str, Any], tracker: tuple[SimServer, TaigaWorld]) -> Callable[..., Flask]:
    def build(
        keeper: keeping.Keeper | None = None,
        database: dict[str, Any] | None = None,
        deadlines_roles: list[str] | None = None,
        timezone: str | None = None,
    ) -> Flask:
        config = with_taiga(portal_config, f"{tracker[0].url}/api/v1/")
        if timezone is not None:
            config["portal"]["timezone"] = timezone
        if database is not None:
            config["database"] = database
        if deadlines_roles is not None:
            config["widgets"]["deadlines"]["roles"] = deadlines_roles
        app = create_app({"TESTING": True, "PORTAL": config, "ENV": {"PORTAL_SECRET_KEY": SECRET, **SERVICE}})
        if keeper is not None:
            keeping.install(app, keeper)
        return app

    return build


def _as(app: Flask, username: str) -> FlaskClient:
    client = app.test_client()
    assert client.get(f"/auth/demo-user/{username}").status_code == 303
    return client


FRENCH_MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip


def _day_class(html: str, day: date) -> str:
    """The class of a day's cell in the month shown (the day's number, inside the month)."""
    cells = DAY_CELL.findall(html)
    found = [css for css, number in cells if int(number) == day.day and "is-outside" not in css]
    assert found, f"no cell for {day}"
    return found[0]


# --- the month and the list -------------------------------------------------------------------


def test_in_a_zone_half_an_hour_off_today_turns_at_local_midnight(
    taiga_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An hourly card's steps begin on the zone's hours: ten minutes after midnight in Kolkata
    (UTC+5:30), today is the new day, not the one that ended (steps on UTC's hours said so for
    half an hour)."""
    zone = ZoneInfo("Asia/Kolkata")
    local_now = datetime.now(zone)
    midnight = datetime.combine(local_now.date() + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    moment = midnight + timedelta(minutes=10)
    monkeypatch.setattr(serving, "time", ViewClock(ahead=moment.timestamp() - time.time()))
    app = taiga_app(timezone="Asia/Kolkata")
    html = card(_as(app, "camille"), "deadlines", until="upcoming")
    assert "is-today" in _day_class(html, moment.date())


def test_due_states_on_the_calendar_and_in_the_list(taiga_app: Callable[..., Flask]) -> None:
    html = card(_as(taiga_app(), "camille"), "deadlines", until="upcoming")
    today = datetime.now(UTC).date()
    assert "is-today" in _day_class(html, today) and html.count('aria-current="date"') == 1
    # Today is said where the keyboard's focus lands: on its button, when its day has deadlines.
    button = re.search(rf'<button [^>]*popovertarget="deadlines-day-{today.isoformat()}"[^>]*>', html)
    assert button is None or 'aria-current="date"' in button.group(0)
    if (today - timedelta(days=2)).month == today.month:
        assert "is-overdue" in _day_class(html, today - timedelta(days=2))  # renewing the certificates
    if (today + timedelta(days=1)).month == today.month:
        assert "is-soon" in _day_class(html, today + timedelta(days=1))
    assert "Overdue" in html and "Due soon" in html  # said in words, beside colour and icon
    # A day with only a sprint's end has its diamond, and no due colour: a sprint is not due
    # (the list gives it no due badge either). Sprint 15 ends in 16 days, when nothing is due
    # (its month asked for: in the second half of a month that day is in the next one).
    sprint_day = today + timedelta(days=16)
    month = card(
        _as(taiga_app(), "camille"), "deadlines", until="upcoming", month=sprint_day.strftime("%Y-%m")
    )
    cells = {
        int(number): (classes, inside)
        for classes, number, inside in re.findall(
            r'<td class="(day[^"]*)"[^>]*>.*?class="day__number"[^>]*>(\d+)<(.*?)</td>', month, re.S
        )
        if "is-outside" not in classes
    }
    classes, inside = cells[sprint_day.day]
    assert "is-sprint" in inside and not re.search(r'day__mark is-\w+"', inside), inside
    assert not re.search(r"is-(overdue|soon|later)", classes), classes
    upcoming = html[html.index('id="deadlines-upcoming"') :]  # the list, not a day's details
    assert "Renouveler les certificats" in upcoming and "2 days overdue" in upcoming
    # The list holds what is overdue too, and its heading says so.
    assert re.search(r'id="deadlines-upcoming">\s*Overdue, and the next 14 days</h4>', html)
    assert "End of Itération 7" in upcoming  # a sprint of camille's project ends within 14 days
    sprint = upcoming[upcoming.index("End of Itération 7") :].split("</li>")[0]
    assert re.search(r">Ends (today|tomorrow|in \d+ days?)<", sprint) and "Due" not in sprint  # it is not due
    assert "Documenter la rotation" in upcoming  # due in 11 days
    assert "Alerte quand un certificat" not in upcoming  # due in 20 days: beyond the list


def test_a_day_with_deadlines_opens_its_details_beyond_the_list(taiga_app: Callable[..., Flask]) -> None:
    """A day's marks told what is due only on hover (a title): on a phone, or from the keyboard,
    a mark past the list's 14 days could not be read. The day is a button; its details (a
    popover) list that day's items as the list does."""
    today = datetime.now(UTC).date()
    later = today + timedelta(days=20)  # "Alerte quand un certificat…": beyond the list
    client = _as(taiga_app(), "camille")
    html = card(client, "deadlines", until="upcoming", month=later.strftime("%Y-%m"))
    key = f"deadlines-day-{later.isoformat()}"
    cell = re.search(
        rf'<td class="day[^"]*"[^>]*>\s*<button type="button" class="day__open" popovertarget="{key}">', html
    )
    assert cell, "the day is not a button"
    details = re.search(rf'<div class="day-details" id="{key}" popover role="dialog".*?</ul>', html, re.S)
    assert details and "Alerte quand un certificat" in details.group(0)
    assert f'id="{key}-title">' in details.group(0) and 'popovertargetaction="hide"' in details.group(0)
    assert html.count('class="day-details"') == html.count('class="day__open"')  # one per day with deadlines
    upcoming = html[html.index('id="deadlines-upcoming"') :]
    assert "Alerte quand un certificat" not in upcoming
    french = card(client, "deadlines", until="upcoming", month=later.strftime("%Y-%m"), language="fr")
    assert 'aria-label="Fermer"' in french


def test_the_previous_and_next_months_come_from_the_server(taiga_app: Callable[..., Flask]) -> None:
    client = _as(taiga_app(), "camille")
    today = datetime.now(UTC).date()
    later = shift(today.replace(day=1), 1)
    html = card(client, "deadlines", until="upcoming", month=later.strftime("%Y-%m"))
    assert f'name="month" value="{later.strftime("%Y-%m")}"' in html
    assert later.strftime("%B") in html and "This month" in html
    assert month_of("1999-01", today) == today.replace(day=1)  # too far: today's month
    assert month_of("nonsense", today) == today.replace(day=1)
    # Today's month is no choice the polls carry: a page left open past its end moves on.
    current = card(client, "deadlines", until="upcoming", month=today.strftime("%Y-%m"))
    assert 'name="month"' not in current and "This month" not in current


def test_french_month_and_weekdays(taiga_app: Callable[..., Flask]) -> None:
    client = _as(taiga_app(), "camille")
    later = shift(datetime.now(UTC).date().replace(day=1), 3)  # a month chosen, within MONTHS_AWAY
    asked = {"month": later.strftime("%Y-%m")}
    html = client.get("/widgets/deadlines", query_string=asked, headers={"Accept-Language": "fr"}).get_data(
        as_text=True
    )
    for _ in range(30):
        if 'data-poll="soon"' not in html:
            break
        html = client.get(
            "/widgets/deadlines", query_string=asked, headers={"Accept-Language": "fr"}
        ).get_data(as_text=True)
    assert f"{FRENCH_MONTHS[later.month - 1]} {later.year}" in html
    assert re.search(r'<th scope="col"><abbr title="lundi">', html)  # the week starts on Monday in French


def _tracked_from(root: object) -> int:
    """The objects the garbage collector tracks that `root` reaches (itself included)."""
    seen: set[int] = set()
    todo = [root]
    while todo:
        found = todo.pop()
        if id(found) in seen or not gc.is_tracked(found) or isinstance(found, type | ModuleType):
            continue
        seen.add(id(found))
        todo.extend(gc.get_referents(found))
    return len(seen)


def test_a_kept_view_holds_its_month_not_a_grid_of_days(taiga_app: Callable[..., Flask]) -> None:
    """A worker keeps every person's view; each day of a grid kept in it was an object the
    garbage collector goes through at every full collection (which stops the worker): the grid
    is drawn while rendering, and the view keeps the month and its deadlines alone."""
    app = taiga_app()
    html = card(_as(app, "camille"), "deadlines", until="upcoming")
    today = datetime.now(UTC).date()
    weeks = calendar.Calendar(calendar.MONDAY).monthdatescalendar(today.year, today.month)
    assert len(re.findall(r'<td class="day', html)) == 7 * len(weeks)  # the whole grid is drawn
    kept = [
        v for v in serving.card_views(portal_state(app))._memo._data.values() if v.widget.slug == "deadlines"
    ]
    assert kept
    for view in kept:
        assert _tracked_from(view.extra) < 35  # fewer than the grid's days (89 when it was kept)


def test_due_state_uses_the_portals_own_thresholds() -> None:
    today = date(2026, 12, 1)
    assert due_state(date(2026, 11, 30), today, 2) == "overdue"
    assert due_state(today, today, 2) == "soon"
    assert due_state(date(2026, 12, 3), today, 2) == "soon"
    assert due_state(date(2026, 12, 4), today, 2) == "later"
    assert due_state(None, today, 2) == "none"


# --- colours ----------------------------------------------------------------------------------


def _luminance(color: str) -> float:
    channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_every_palette_pair_is_readable_and_in_the_stylesheet() -> None:
    css = (ROOT / "portal" / "static" / "css" / "portal.css").read_text(encoding="utf-8")
    for name, (light_fg, light_bg, dark_fg, dark_bg) in PALETTE.items():
        assert _contrast(light_fg, light_bg) >= 4.5, name
        assert _contrast(dark_fg, dark_bg) >= 4.5, name
    for rule in palette_rules("light") + palette_rules("dark"):
        assert rule in css


def test_taigas_colours_map_to_the_nearest_hue() -> None:
    assert hue_of("#E47C40") == "orange"
    assert hue_of("#70728F") == "grey"  # a greyish blue: too little colour
    assert hue_of("#A8E440") == "lime"
    assert hue_of("#5178D3") == "blue"
    assert hue_of("#E44057") == "red"
    assert hue_of("red; background:url(x)") == "grey"  # never upstream text in markup


# --- the calendar feed ------------------------------------------------------------------------


def _renew(client: FlaskClient) -> str:
    token = csrf_token(client.get("/").get_data(as_text=True))
    panel = client.post(
        "/widgets/deadlines/feed/renew",
        headers={"Origin": ORIGIN, "X-CSRFToken": token, "Accept-Language": "en"},
    )
    assert panel.status_code == 200
    found = re.search(r'value="(http[^"]+\.ics\?lang=en)"', panel.get_data(as_text=True))
    assert found, panel.get_data(as_text=True)
    return found.group(1).replace("http://localhost", "")


def test_the_feed_parses_with_two_parsers_and_has_stable_all_day_events(
    taiga_app: Callable[..., Flask],
) -> None:
    app = taiga_app(keeping.MemoryKeeper())
    client = _as(app, "camille")
    card(client, "deadlines", until="upcoming")
    path = _renew(client)
    anonymous = app.test_client()  # a calendar application: no session
    first = anonymous.get(path)
    assert first.status_code == 200 and first.mimetype == "text/calendar"
    body = first.get_data()
    calendar = Calendar.from_ical(body)
    events = list(calendar.walk("VEVENT"))
    summaries = [str(e["SUMMARY"]) for e in events]
    assert any("Renouveler les certificats" in s for s in summaries)
    assert any("Itération 7" in s for s in summaries)  # a sprint end
    assert not any("Android 15" in s for s in summaries)  # dominique's
    assert not any("Nettoyer les anciennes images" in s for s in summaries)  # no due date
    for event in events:
        start, end = event.decoded("DTSTART"), event.decoded("DTEND")
        assert type(start) is date and end - start == timedelta(days=1)  # all-day
        assert str(event["URL"]).startswith("https://taiga.example.org/project/")
        assert str(event["UID"]).endswith("@taiga.example.org")
    second = Calendar.from_ical(anonymous.get(path).get_data())
    assert sorted(str(e["UID"]) for e in second.walk("VEVENT")) == sorted(str(e["UID"]) for e in events)
    parsed = ics.Calendar(body.decode())  # an independent parser
    assert len(parsed.events) == len(events)
    assert all(event.all_day for event in parsed.events)
    assert {event.uid for event in parsed.events} == {str(e["UID"]) for e in events}


def test_an_issues_due_date_is_a_deadline_on_the_card_and_in_the_feed(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """A bug assigned to me and due in two days was nowhere: it is on the calendar and in the
    list (as an issue, linked to it in Taiga), and in the feed as an all-day event whose UID
    differs from the task's that has the same id in Taiga."""
    _, world = tracker
    issue = next(i for i in world.items["issue"].values() if i.subject.startswith("Question"))
    assert issue.id in world.items["task"]  # a task of camille's has the same id
    app = taiga_app(keeping.MemoryKeeper())
    client = _as(app, "camille")
    html = unescape(card(client, "deadlines", until="upcoming"))
    today = datetime.now(UTC).date()
    if (today + timedelta(days=2)).month == today.month:
        assert "is-soon" in _day_class(html, today + timedelta(days=2))
    upcoming = html[html.index('id="deadlines-upcoming"') :]  # the list, not a day's details
    row = next(r for r in upcoming.split("</li>") if "quelle rétention" in r)
    assert 'href="https://taiga.example.org/project/portail-devsecops/issue/8"' in row
    assert "Issue #8" in row and "Due in 2 days" in row
    wildcard = next(r for r in upcoming.split("</li>") if "Le certificat wildcard" in r)
    assert "upcoming__row is-overdue" in wildcard and "3 days overdue" in wildcard
    assert "Le lien de réinitialisation" not in html  # dominique's
    events = list(Calendar.from_ical(app.test_client().get(_renew(client)).get_data()).walk("VEVENT"))
    mine = next(e for e in events if "quelle rétention" in str(e["SUMMARY"]))
    assert str(mine["UID"]) == f"taiga-issue-{issue.id}@taiga.example.org"
    assert f"taiga-task-{issue.id}@taiga.example.org" in {str(e["UID"]) for e in events}
    assert str(mine["URL"]) == "https://taiga.example.org/project/portail-devsecops/issue/8"
    assert mine.decoded("DTSTART") == today + timedelta(days=2) and str(mine["DESCRIPTION"]).startswith(
        "Issue"
    )
    assert not any("La recherche ignore" in str(e["SUMMARY"]) for e in events)  # no due date
    critical = next(e for e in events if "Le certificat wildcard" in str(e["SUMMARY"]))
    assert str(critical["DESCRIPTION"]).splitlines()[0] == (
        "Issue · Bug · Plateforme K3s · In progress · Severity: Critical · Priority: High"
    )
    french = Calendar.from_ical(
        app.test_client().get(_renew(client).replace("lang=en", "lang=fr")).get_data()
    )
    found = next(e for e in french.walk("VEVENT") if "quelle rétention" in str(e["SUMMARY"]))
    assert str(found["DESCRIPTION"]).startswith("Ticket ·")
    critical = next(e for e in french.walk("VEVENT") if "Le certificat wildcard" in str(e["SUMMARY"]))
    assert str(critical["DESCRIPTION"]).splitlines()[0] == (
        "Ticket · Bug · Plateforme K3s · En cours · Gravité\u00a0: Critique · Priorité\u00a0: Fort"
    )


def test_the_feed_and_the_card_drop_the_bidi_controls_of_taigas_text(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """A subject "Relire \u202egnp.exe" would be drawn "Relire exe.png" in a calendar too."""
    _, world = tracker
    camille = next(u for u in world.users.values() if u.username == "camille")
    world.add_item("task", next(iter(world.projects.values())), "Relire \u202egnp.exe", "New", camille, due=2)
    app = taiga_app(keeping.MemoryKeeper())
    client = _as(app, "camille")
    html = card(client, "deadlines", until="Relire gnp.exe")
    body = app.test_client().get(_renew(client)).get_data().decode()
    assert "Relire gnp.exe" in body.replace("\r\n ", "")  # unfolded
    assert "\u202e" not in html and "\u202e" not in body


def test_a_long_list_shows_its_first_twelve_and_the_rest_on_demand(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """Forty items due within the horizon: the card stays a card (the calendar above counts them
    all), and the others are one click away, in date order."""
    _, world = tracker
    camille = next(u for u in world.users.values() if u.username == "camille")
    project = next(iter(world.projects.values()))
    for number in range(40):
        world.add_item("task", project, f"Lot de travail {number:02d}", "New", camille, due=3 + number % 10)
    html = card(_as(taiga_app(keeping.MemoryKeeper()), "camille"), "deadlines", until="upcoming")
    upcoming = html.split('id="deadlines-upcoming"', 1)[1]
    first, _, rest = upcoming.partition('<details class="more-rows" id="deadlines-more">')
    assert first.count('<li class="upcoming__row') == 12 and rest
    shown = first.count('<li class="upcoming__row') + rest.count('<li class="upcoming__row')
    assert re.search(rf"Show {shown - 12} more</span>", rest)
    assert '<ol class="upcoming__list" start="13">' in rest


def test_the_feed_speaks_the_language_its_address_was_made_in(taiga_app: Callable[..., Flask]) -> None:
    """A calendar service fetching the feed sends no Accept-Language (or its own): the address
    carries the language the person used the portal in."""
    app = taiga_app(keeping.MemoryKeeper())
    client = _as(app, "camille")
    card(client, "deadlines", until="upcoming")
    path = _renew(client)  # made in English, on a portal whose default language is French
    anonymous = app.test_client()

    def name(url: str, **headers: str) -> str:
        return str(Calendar.from_ical(anonymous.get(url, headers=headers).get_data())["X-WR-CALNAME"])

    assert name(path) == "Deadlines from Taiga"
    assert name(path, **{"Accept-Language": "fr"}) == "Deadlines from Taiga"  # the address's language
    assert name(path.replace("lang=en", "lang=fr")) == "Échéances Taiga"
    bare = path.split("?", 1)[0]  # an address given out before it carried one
    assert name(bare) == "Échéances Taiga"
    assert name(bare, **{"Accept-Language": "en"}) == "Deadlines from Taiga"
    assert name(path.replace("lang=en", "lang=xx")) == "Échéances Taiga"

    def descriptions(url: str) -> str:
        feed = Calendar.from_ical(anonymous.get(url).get_data())
        return " ".join(str(event["DESCRIPTION"]) for event in feed.walk("VEVENT"))

    # Statuses as Taiga's own French names them, in a French feed ("En cours", not "In progress").
    assert "· In progress\n" in descriptions(path) and "· En cours\n" not in descriptions(path)
    assert "· En cours\n" in descriptions(bare) and "· In progress\n" not in descriptions(bare)


@pytest.mark.parametrize("kept", ["database", "memory"])
def test_a_feed_answers_only_while_its_owner_may_see_the_card(
    taiga_app: Callable[..., Flask], kept: str
) -> None:
    """The feed is the card's: restricted to a team its owner was not in, it answers 404 (a
    person who was let go of the card keeps no feed of it), as a revoked one does."""
    keeper = keeping.MemoryKeeper() if kept == "memory" else None
    path = _renew(_as(taiga_app(keeper, deadlines_roles=["/team-b"]), "dominique"))
    for roles, status in ((["/team-b"], 200), (["portal-user"], 200), (["/admins"], 404), ([], 200)):
        later = taiga_app(keeper, deadlines_roles=roles)  # the configuration changed, and restarted
        assert later.test_client().get(path).status_code == status, roles


def test_a_feed_stops_once_its_owner_has_not_signed_in_for_the_idle_days(
    taiga_app: Callable[..., Flask],
) -> None:
    """Someone who left the team keeps no working feed: it answers while its owner signed in (or
    made it) within `feed_idle_days`, 90 by default, and again once they sign in."""
    app = taiga_app()  # the tokens in the portal's database
    client = _as(app, "camille")
    path = _renew(client)
    panel = client.get("/widgets/deadlines/feed", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "It stops working after 90 days without signing in to the portal." in panel
    anonymous = app.test_client()
    assert anonymous.get(path).status_code == 200  # made today
    camille, now = DEMO_USERS["camille"], datetime.now(UTC)
    feed_owner = Preference("deadlines", "feed_owner", dict[str, str], {})
    with app.app_context():
        owner = user_preferences(camille)  # through the worker's kept copy, as a change is
        owner.set(feed_owner, {**owner.get(feed_owner), "created": (now - timedelta(days=100)).isoformat()})
    assert anonymous.get(path).status_code == 404  # made 100 days ago, no sign-in since
    for days_ago, status in ((91, 404), (89, 200)):
        with app.app_context():
            record_sign_in(camille, now - timedelta(days=days_ago))
        assert anonymous.get(path).status_code == status, days_ago


def test_a_revoked_or_renewed_feed_url_answers_404(taiga_app: Callable[..., Flask]) -> None:
    app = taiga_app()  # the tokens in the portal's database
    client = _as(app, "camille")
    card(client, "deadlines", until="upcoming")
    first = _renew(client)
    anonymous = app.test_client()
    assert anonymous.get(first).status_code == 200
    second = _renew(client)
    assert (
        second != first
        and anonymous.get(first).status_code == 404
        and anonymous.get(second).status_code == 200
    )
    token = csrf_token(client.get("/").get_data(as_text=True))
    revoked = client.post(
        "/widgets/deadlines/feed/revoke",
        headers={"Origin": ORIGIN, "X-CSRFToken": token, "Accept-Language": "en"},
    )
    assert revoked.status_code == 200 and "no longer works" in revoked.get_data(as_text=True)
    assert anonymous.get(second).status_code == 404
    assert anonymous.get("/feeds/taiga/not-a-token.ics").status_code == 404
    unknown = anonymous.get("/feeds/taiga/not-a-token.ics?lang=fr")
    assert unknown.get_data(as_text=True) == "Ce flux de calendrier n’existe pas.\n"


def test_feed_changes_need_the_pages_token(taiga_app: Callable[..., Flask]) -> None:
    app = taiga_app(keeping.MemoryKeeper())
    client = _as(app, "camille")
    assert client.post("/widgets/deadlines/feed/renew", headers={"Origin": ORIGIN}).status_code == 403
    assert "Create my feed address" in client.get(
        "/widgets/deadlines/feed", headers={"Accept-Language": "en"}
    ).get_data(as_text=True)


def test_the_feed_url_is_never_in_the_card(taiga_app: Callable[..., Flask]) -> None:
    app = taiga_app(keeping.MemoryKeeper())
    client = _as(app, "camille")
    path = _renew(client)
    token = path.rsplit("/", 1)[1].removesuffix(".ics?lang=en")
    assert len(token) >= 32
    assert token not in card(client, "deadlines", until="upcoming")
    assert token not in card(client, "tasks", until="task-row")


def test_without_the_database_the_panel_says_feeds_need_it(taiga_app: Callable[..., Flask]) -> None:
    client = _as(taiga_app(keeping.Unavailable()), "camille")
    panel = client.get("/widgets/deadlines/feed", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Calendar feeds need the portal’s database" in panel


def _feed_post(client: FlaskClient, action: str) -> Any:
    token = csrf_token(client.get("/").get_data(as_text=True))
    headers = {"Origin": ORIGIN, "X-CSRFToken": token, "Accept-Language": "en"}
    return client.post(f"/widgets/deadlines/feed/{action}", headers=headers)


def _panel(client: FlaskClient) -> Any:
    return client.get("/widgets/deadlines/feed", headers={"Accept-Language": "en"})


def test_while_the_database_is_away_the_panel_never_offers_a_new_feed_over_the_one_in_use(
    taiga_app: Callable[..., Flask],
    postgres: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Camille's calendar reads her feed; the portal's database goes away. Another worker (one
    that has not read her choices yet) must not show her panel as "no feed yet" with a button
    that would replace the address her calendar uses: it says the database is not answering,
    a change says it was not made, her calendar is told to try later (503), and her feed is
    the same once the database is back."""
    name = f"feeds_{uuid.uuid4().hex[:12]}"
    section = {"url": postgres.create_database(name), "connect_timeout": 1}
    apps = [taiga_app(database=section), taiga_app(database=section)]
    first = _as(apps[0], "camille")
    path = _renew(first)
    another_worker = _as(apps[1], "camille")
    monkeypatch.setattr(database_module, "RETRY_AFTER", 0.0)
    postgres.allow_connections(name, False)
    try:
        panel = _panel(another_worker)
        html = panel.get_data(as_text=True)
        assert panel.status_code == 200
        assert "the portal’s database is not answering right now" in html and "Try again" in html
        assert "Create my feed address" not in html and "New address" not in html
        renewed = _feed_post(another_worker, "renew")
        said = renewed.get_data(as_text=True)
        assert "cannot be reached right now: your feed was not changed" in said
        assert "Your feed address is ready" not in said
        audits = [(r.action, r.outcome) for r in caplog.records if getattr(r, "event", "") == "audit"]
        assert audits[-1] == ("renew_feed", "storage_away")
        # Her calendar application, polling meanwhile: "try later", never "no such feed" (a 404
        # can make it drop the subscription).
        calendar = apps[1].test_client().get(path)
        assert calendar.status_code == 503 and calendar.headers["Retry-After"] == "60"
        assert calendar.get_data(as_text=True) == "The portal’s database cannot be read right now.\n"
        assert "lang=en" in path  # the language of the one who made the address: said in it
        french = apps[1].test_client().get(path.replace("lang=en", "lang=fr"))
        assert french.get_data(as_text=True).startswith("La base de données du portail ne peut pas")
    finally:
        postgres.allow_connections(name, True)
    again = _panel(another_worker).get_data(as_text=True)
    assert f'value="http://localhost{path}"' in again  # the same address: nothing was replaced
    assert b"BEGIN:VCALENDAR" in first.application.test_client().get(path).get_data()
    for app in apps:  # the connections the outage broke are closed here, not by a later test's GC
        portal_state(app).database.dispose()
    del first, another_worker, apps
    gc.collect()


class _BrokenKeeper(keeping.MemoryKeeper):
    """A keeper with a bug: changes raise, and reads too once `reads_fail` is set."""

    reads_fail = False

    def feed_token(self, user: User) -> keeping.FeedToken | None:
        if self.reads_fail:
            raise KeyError("owner")
        return super().feed_token(user)

    def renew_feed_token(self, user: User) -> keeping.FeedToken:
        super().renew_feed_token(user)  # it lands, then the bug strikes
        raise RuntimeError("after the write")


def test_a_feed_change_that_fails_unforeseen_says_so_in_the_panel(
    taiga_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    """Never a silent button: the panel answers 500 with its own body (the page shows it, like
    a failed card's), says the feed may or may not have changed, and shows where it stands."""
    broken = _BrokenKeeper()
    client = _as(taiga_app(broken), "camille")
    answer = _feed_post(client, "renew")
    html = answer.get_data(as_text=True)
    assert answer.status_code == 500 and answer.headers["X-Portal-Card-Failed"] == "1"
    assert 'id="deadlines-feed"' in html
    assert "your feed may or may not have changed" in html
    assert "deadlines-feed-url" in html  # it had landed: the panel shows the address as it is now
    assert "RuntimeError" not in html and "after the write" not in html
    audits = [(r.action, r.outcome) for r in caplog.records if getattr(r, "event", "") == "audit"]
    assert audits == [("renew_feed", "portal_error")]
    failed = [r for r in caplog.records if getattr(r, "event", "") == "write_failed"]
    assert failed and failed[0].exc_info is not None

    broken.reads_fail = True  # not even the panel draws: the notice and a way to try again
    panel = _panel(client)
    html = panel.get_data(as_text=True)
    assert panel.status_code == 500 and panel.headers["X-Portal-Card-Failed"] == "1"
    assert "The calendar feed could not be shown" in html and "Try again" in html
    assert 'hx-get="/widgets/deadlines/feed"' in html and "KeyError" not in html
    assert any(getattr(r, "event", "") == "feed_panel_failed" and r.exc_info for r in caplog.records)


@pytest.fixture
def database(tmp_path: Path) -> Any:
    """The portal's own database on SQLite, migrated."""
    found = Database(f"sqlite:///{tmp_path / 'portal.sqlite'}")
    found.upgrade()
    yield found
    found.dispose()


def test_keeping_in_the_database_feed_tokens_are_found_by_another_process_and_revocation_holds(
    database: Any,
) -> None:
    camille = User(subject="sub-camille", username="camille", name="Camille", email="camille@example.org")
    first, second = keeping.DatabaseKeeper(database), keeping.DatabaseKeeper(database)
    token = first.renew_feed_token(camille)
    owner = second.feed_owner(token.token)  # another worker, another replica: the same database
    assert owner is not None and (owner.subject, owner.username) == ("sub-camille", "camille")
    assert second.feed_token(camille) == token
    renewed = second.renew_feed_token(camille)
    assert first.feed_owner(token.token) is None and first.feed_owner(renewed.token) is not None
    first.revoke_feed_token(camille)
    assert second.feed_owner(renewed.token) is None and second.feed_token(camille) is None


def _stored_values(database: Any) -> str:
    """Every preference value in the database, as one text (what a backup would hold)."""
    with database.session() as session:
        return " ".join(str(value) for value in session.execute(select(UserPreference.value)).scalars())


def test_the_database_holds_no_feed_token_in_the_clear(database: Any) -> None:
    """A backup, or whoever reads the database, opens no feed: the token is sealed under a key
    from the portal's secret (its owner may see their address again) and found by its digest."""
    camille = User(subject="sub-camille", username="camille", name="Camille", email="camille@example.org")
    keeper = keeping.DatabaseKeeper(database, secret=SECRET)
    token = keeper.renew_feed_token(camille).token
    assert token not in _stored_values(database)
    assert keeping.digest_of(token) in _stored_values(database)
    assert keeper.feed_token(camille).token == token  # type: ignore[union-attr]
    # Another secret (rotated): the feed still answers, its address can no longer be shown.
    rotated = keeping.DatabaseKeeper(database, secret="another-secret-0123456789abcdef0123456789")
    assert rotated.feed_owner(token) is not None and rotated.feed_token(camille) is None


def test_a_feed_token_kept_in_the_clear_by_an_older_release_is_sealed_at_first_use(database: Any) -> None:
    camille = User(subject="sub-camille", username="camille", name="Camille", email="camille@example.org")
    dominique = User(subject="sub-dominique", username="dominique", name="Dominique")
    keeper = keeping.DatabaseKeeper(database, secret=SECRET)
    for person, plain in (
        (camille, "plain-token-of-camille-0123456789"),
        (dominique, "plain-token-of-dominique-01234"),
    ):
        made = keeper.renew_feed_token(person)
        prefs = Preferences(database, person.subject)
        prefs.set(keeper.token, plain)  # as an older release kept it: no digest, the token itself
        prefs.clear(keeper.digest)
        assert made.token not in _stored_values(database)
    assert "plain-token-of-camille" in _stored_values(database)
    owner = keeper.feed_owner("plain-token-of-camille-0123456789")  # a calendar fetches the feed
    assert owner is not None and owner.subject == "sub-camille"
    assert "plain-token-of-camille" not in _stored_values(database)
    assert keeper.feed_owner("plain-token-of-camille-0123456789") is not None  # by its digest now
    assert keeper.feed_token(dominique).token == "plain-token-of-dominique-01234"  # type: ignore[union-attr]
    assert "plain-token-of-dominique" not in _stored_values(database)  # its owner opened the panel
    assert keeper.feed_owner("plain-token-of-dominique-01234") is not None


def test_keeping_in_the_database_the_sort_follows_the_person(database: Any) -> None:
    camille = User(subject="sub-camille", username="camille", name="Camille")
    dominique = User(subject="sub-dominique", username="dominique", name="Dominique")
    keeper = keeping.DatabaseKeeper(database)
    assert keeper.sort_of(camille) == "due"
    keeper.save_sort(camille, "project")
    assert keeping.DatabaseKeeper(database).sort_of(camille) == "project"
    assert keeper.sort_of(dominique) == "due"


@pytest.mark.parametrize("sort", [s for s in SORTS if s != "due"])
def test_a_kept_sort_is_the_next_browsers_order(taiga_app: Callable[..., Flask], sort: str) -> None:
    """Through the card, kept in the portal's database (the app's own SQLite): each sort the
    card's menu offers (the severity sort was offered and refused with a 500 once)."""
    app = taiga_app()
    client = _as(app, "camille")
    html = card(client, "tasks", until="task-row")
    assert 'hx-post="/widgets/tasks/sort"' in html
    assert f'<option value="{sort}"' in html
    token = csrf_token(client.get("/").get_data(as_text=True))
    assert (
        client.post("/widgets/tasks/sort", data={"sort": sort}, headers={"Origin": ORIGIN}).status_code == 403
    )
    saved = client.post(
        "/widgets/tasks/sort", data={"sort": sort}, headers={"Origin": ORIGIN, "X-CSRFToken": token}
    )
    assert saved.status_code == 204
    assert (
        client.post(
            "/widgets/tasks/sort", data={"sort": "nonsense"}, headers={"Origin": ORIGIN, "X-CSRFToken": token}
        ).status_code
        == 403
    )
    other_browser = _as(app, "camille")
    assert f'<option value="{sort}" selected>' in card(other_browser, "tasks", until="task-row")
    assert '<option value="due" selected>' in card(_as(app, "dominique"), "tasks", until="task-row")


def test_the_cards_keep_what_they_keep_in_the_portals_database(
    portal_config: dict[str, Any], tracker: tuple[SimServer, TaigaWorld]
) -> None:
    config = with_taiga(portal_config, f"{tracker[0].url}/api/v1/")
    app = create_app({"TESTING": True, "PORTAL": config, "ENV": {"PORTAL_SECRET_KEY": SECRET, **SERVICE}})
    with app.app_context():
        assert isinstance(keeping.keeper(), keeping.DatabaseKeeper)


def test_with_single_sign_on_the_feed_and_the_webhook_need_no_session_and_the_rest_does(
    portal_config: dict[str, Any], tracker: tuple[SimServer, TaigaWorld], keycloak: Any
) -> None:
    from ..conftest import SSO_ENV, sso_config

    config = with_taiga(sso_config(portal_config, keycloak.url), f"{tracker[0].url}/api/v1/")
    app = create_app({"TESTING": True, "PORTAL": config, "ENV": {**SSO_ENV, **SERVICE}})
    keeper = keeping.MemoryKeeper()
    keeping.install(app, keeper)
    owner = keeper.renew_feed_token(User(subject="s-1", username="camille", name="Camille"))
    anonymous = app.test_client()
    feed = anonymous.get(f"/feeds/taiga/{owner.token}.ics")
    assert feed.status_code == 200 and b"BEGIN:VCALENDAR" in feed.get_data()
    assert anonymous.get("/feeds/taiga/wrong.ics").status_code == 404
    assert anonymous.post("/hooks/taiga", data=b"{}").status_code == 403  # the signature, not a login
    assert anonymous.get("/widgets/deadlines/feed").status_code == 302  # the panel: log in first
    assert anonymous.post("/widgets/tasks/task/1/status").status_code == 401


def _signed_in_through_the_provider(app: Flask, username: str = "alice") -> FlaskClient:
    """A test client signed in through the Keycloak-shaped provider, on http://localhost."""
    client = app.test_client()
    started = client.get("/auth/login")
    assert started.status_code == 302
    trip = LoginTrip(authorization_url=started.headers["Location"])
    with requests.Session() as browser:
        authenticate(browser, trip, username, USERS[username])
    assert trip.callback_url.startswith("http://localhost/auth/callback?")
    assert client.get(trip.callback_url).status_code == 303
    return client


@pytest.mark.parametrize("public_url", [None, "http://localhost"], ids=["allowed-hosts", "public-url"])
def test_the_feed_url_is_never_built_on_a_foreign_host(
    portal_config: dict[str, Any],
    tracker: tuple[SimServer, TaigaWorld],
    keycloak: Any,
    public_url: str | None,
) -> None:
    """The feed URL is the credential: it is built on `public_url`, else on a listed Host only;
    alice's own session and page token sent with `Host: evil.example` never get one on that host."""
    from ..conftest import SSO_ENV, sso_config

    config = with_taiga(sso_config(portal_config, keycloak.url), f"{tracker[0].url}/api/v1/")
    if public_url is not None:
        config["auth"]["oidc"].update(public_url=public_url, allowed_hosts=[])
    app = create_app({"TESTING": True, "PORTAL": config, "ENV": {**SSO_ENV, **SERVICE}})
    keeping.install(app, keeping.MemoryKeeper())
    alice = _signed_in_through_the_provider(app)
    token = csrf_token(alice.get("/").get_data(as_text=True))
    url = _renew(alice)  # on the listed host: the path of http://localhost/feeds/taiga/<token>.ics
    secret = url.rsplit("/", 1)[1].split("?", 1)[0]

    session_cookie = alice.get_cookie("portal_session")
    assert session_cookie is not None
    foreign = app.test_client(use_cookies=False)  # alice's cookie, sent to another Host
    headers = {"Cookie": f"portal_session={session_cookie.value}", "Accept-Language": "en"}
    panel = foreign.get("/widgets/deadlines/feed", base_url="http://evil.example", headers=headers)
    renewed = foreign.post(
        "/widgets/deadlines/feed/renew",
        base_url="http://evil.example",
        headers={**headers, "Origin": "http://evil.example", "X-CSRFToken": token},
    )
    for answer in (panel, renewed):
        assert "evil.example" not in answer.get_data(as_text=True)
    if public_url is None:
        assert panel.status_code == 400 and renewed.status_code == 400
        assert secret not in panel.get_data(as_text=True)
        # Refused before the address changed: the one alice has still works.
        english = {"Accept-Language": "en"}  # the address carries the panel's language
        assert f'value="http://localhost{url}"' in alice.get(
            "/widgets/deadlines/feed", headers=english
        ).get_data(as_text=True)
        assert app.test_client().get(url).status_code == 200
    else:
        assert panel.status_code == 200 and f'value="http://localhost{url}"' in panel.get_data(as_text=True)
        assert renewed.status_code == 200
        assert 'value="http://localhost/feeds/taiga/' in renewed.get_data(as_text=True)


def test_a_claim_the_configuration_names_finds_the_person_in_taiga(
    portal_config: dict[str, Any], tracker: tuple[SimServer, TaigaWorld], keycloak: Any
) -> None:
    """upstreams.taiga.username_claim: alice signs in as "alice", and her token's family_name
    ("Admin") is her Taiga username. Her session keeps that claim; both cards, a status change and
    the calendar feed (no session: its owner is kept in the portal's database) find her by it."""
    from ..conftest import SSO_ENV, sso_config

    server, world = tracker
    camille = next(u for u in world.users.values() if u.username == "camille")
    camille.username = "Admin"  # these items are alice's in Taiga, under her family name
    config = with_taiga(
        sso_config(portal_config, keycloak.url), f"{server.url}/api/v1/", username_claim="family_name"
    )
    app = create_app({"TESTING": True, "PORTAL": config, "ENV": {**SSO_ENV, **SERVICE}})
    alice = _signed_in_through_the_provider(app)
    tasks = card(alice, "tasks", until="task-row")
    assert "Renouveler les certificats" in tasks and "Android 15" not in tasks
    deadlines = card(alice, "deadlines", until="upcoming")
    assert "Renouveler les certificats" in deadlines and "Android 15" not in deadlines
    action, version, statuses = status_form(tasks, "Relire la politique réseau")
    changed = alice.post(
        action,
        data={"status": statuses["In progress"], "version": version},
        headers={
            "Origin": ORIGIN,
            "X-CSRFToken": csrf_token(alice.get("/").get_data(as_text=True)),
            "Accept-Language": "en",
        },
    )
    assert changed.status_code == 200
    assert status_shown(changed.get_data(as_text=True), "Relire la politique réseau") == "In progress"
    feed = app.test_client().get(_renew(alice))  # a calendar application, without a session
    summaries = [str(e["SUMMARY"]) for e in Calendar.from_ical(feed.get_data()).walk("VEVENT")]
    assert any("Renouveler les certificats" in s for s in summaries)
    assert not any("Android 15" in s for s in summaries)
    bob = _signed_in_through_the_provider(app, "bob")  # family_name "User": nobody in Taiga
    nobody = unescape(card(bob, "tasks", until="Taiga account"))
    assert "You have no Taiga account named “User”." in nobody and "task-row" not in nobody
