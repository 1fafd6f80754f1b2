"""The tasks card against the Taiga simulator: per-person cuts of one shared board, the status menu
through the write path, each upstream fault and Taiga's throttling, the webhook.

What needs the real Taiga (rotation, versions, the seeded 44 tasks) is in test_taiga_real.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from html import unescape
from typing import Any

import pytest
import requests
import responses
from flask import Flask
from flask.testing import FlaskClient
from pydantic import ValidationError

from portal import create_app
from portal.identity import User
from portal.state import portal_state
from portal.upstreams.errors import UpstreamBadResponse, UpstreamError
from portal.widgets import serving, write_pace
from portal.widgets.contract import upstream_key
from portal.widgets.taiga.client import TaigaClient
from portal.widgets.taiga.upstream import TAIGA, TaigaSettings, match_name
from portal.widgets.taiga.work import MyWork
from portal.widgets.write_pace import WritePace
from simulators import taiga
from simulators.base import FAULT_MODES, SimServer
from simulators.taiga import TaigaWorld

from ..conftest import SECRET
from ..support.clock import StoppedClock, ViewClock
from ..support.keycloak import login
from ..support.live import serve
from ..support.processes import RedisServer
from ..support.spoken import announced
from ..support.taiga_portal import (
    ORIGIN,
    SERVICE,
    card,
    csrf_token,
    row_of,
    status_form,
    status_shown,
    with_taiga,
)

WEBHOOK_KEY = "webhook-key-for-tests"


@pytest.fixture
def tracker() -> Iterator[tuple[SimServer, TaigaWorld]]:
    server, world = taiga.make_server()
    world.on_request(lambda w: None)  # nothing moves unless a test moves it
    server.start()
    yield server, world
    server.stop()


@pytest.fixture
def taiga_app(portal_config: dict[str, Any], tracker: tuple[SimServer, TaigaWorld]) -> Callable[..., Flask]:
    def build(redis_url: str | None = None, changes: Callable[[dict[str, Any]], None] | None = None) -> Flask:
        config = with_taiga(portal_config, f"{tracker[0].url}/api/v1/")
        if redis_url:
            config["cache"]["redis_url"] = redis_url
        if changes:
            changes(config)
        env = {"PORTAL_SECRET_KEY": SECRET, **SERVICE, "PORTAL_TAIGA_WEBHOOK_SECRET": WEBHOOK_KEY}
        return create_app({"TESTING": True, "PORTAL": config, "ENV": env})

    return build


def _as(app: Flask, username: str) -> FlaskClient:
    client = app.test_client()
    assert client.get(f"/auth/demo-user/{username}").status_code == 303
    return client


def _post(client: FlaskClient, action: str, status: str, version: str, **headers: str) -> Any:
    return client.post(
        action, data={"status": status, "version": version}, headers={"Accept-Language": "en", **headers}
    )


def _next_status(client: FlaskClient, item: Any) -> Any:
    """A change of `item` (the simulator's) to the next status id, with the page's token: a change
    the card never offered."""
    token = csrf_token(client.get("/").get_data(as_text=True))
    path = f"/widgets/tasks/{item.kind}/{item.id}/status"
    return _post(
        client, path, str(item.status + 1), str(item.version), Origin=ORIGIN, **{"X-CSRFToken": token}
    )


# --- one board for everyone, cut per person ---------------------------------------------------


def test_two_people_on_one_redis_get_their_own_items_from_one_fetch(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld], redis_server: RedisServer
) -> None:
    server, _ = tracker
    first, second = taiga_app(redis_server.url), taiga_app(redis_server.url)
    for app in (first, second, first):
        camille = card(_as(app, "camille"), "tasks", until="task-row")
        dominique = card(_as(app, "dominique"), "tasks", until="task-row")
        assert "Renouveler les certificats" in camille and "Android 15" not in camille
        assert "Android 15" in dominique and "Renouveler les certificats" not in dominique
        for other in ("Préparer la démo du vendredi", "Auditer les rôles RBAC"):  # sacha's
            assert other not in camille and other not in dominique
        deadlines = card(_as(app, "dominique"), "deadlines", until="upcoming")
        assert "Android 15" in deadlines and "certificats" not in deadlines
    # One board for two people, two apps and both cards: each list read once.
    assert server.count("/api/v1/tasks") == 1 and server.count("/api/v1/userstories") == 1
    assert server.count("/api/v1/auth") == 1  # one login, its tokens shared through Redis


def test_a_person_without_a_taiga_account_is_told_so(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld]
) -> None:
    _, world = tracker
    world.users = {i: u for i, u in world.users.items() if u.username != "dominique"}
    html = card(_as(taiga_app(), "dominique"), "tasks", until="Taiga account")
    assert "You have no Taiga account named “dominique”." in html
    assert "task-row" not in html and "is-empty" not in html


def test_a_person_whose_token_lacks_the_configured_claim_is_told_so_and_changes_nothing(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """With username_claim set, a person without that claim is never looked up by another name
    (their username would find camille's items): the cards say what is missing."""
    _, world = tracker
    app = taiga_app(changes=lambda c: c["upstreams"]["taiga"].update(username_claim="taiga_username"))
    client = _as(app, "camille")  # the demo identities carry no other claim
    for slug in ("tasks", "deadlines"):
        html = unescape(card(client, slug, until="claim"))
        assert (
            "Your account has no “taiga_username” claim: the portal cannot tell your Taiga username." in html
        )
        assert 'class="card-notice is-warning"' in html
        assert "Renouveler les certificats" not in html and "task-row" not in html
        assert "no Taiga account named" not in html  # it is not that the account is missing
    item = next(i for i in world.items["task"].values() if i.subject.startswith("Relire"))  # camille's
    before = (item.status, item.version)
    refused = _next_status(client, item)
    assert refused.status_code == 403 and (item.status, item.version) == before


def test_how_a_person_is_found_in_taiga_keeps_match_by_and_takes_one_way_only() -> None:
    user = User(
        subject="s-1",
        username="cmartin",
        name="Camille Martin",
        email="camille@Example.org",
        claims=(("email_verified", "true"), ("taiga_username", "camille")),
    )
    url = "https://taiga.example.org/api/v1/"
    by_mail = TaigaSettings(url=url, match_by="email_local_part", email_domains=["example.org"])
    assert match_name(TaigaSettings(url=url), user) == "cmartin"  # preferred_username
    assert match_name(TaigaSettings(url=url, username_claim="taiga_username"), user) == "camille"
    assert match_name(TaigaSettings(url=url, username_claim="absent"), user) is None
    assert match_name(by_mail, user) == "camille"
    # An address Keycloak did not verify, or at another domain (anyone may type alice@elsewhere
    # into their Keycloak account): no one's items.
    unverified = replace(user, claims=(("email_verified", "false"),))
    elsewhere = replace(user, email="camille@attacker.example")
    assert match_name(by_mail, unverified) is None and match_name(by_mail, elsewhere) is None
    assert match_name(by_mail, replace(user, email="cmartin")) is None  # no address at all
    assert by_mail.identity_claims() == ("email_verified",) and by_mail.name_claim == "email"
    assert TaigaSettings(url=url, username_claim="taiga_username").identity_claims() == ("taiga_username",)
    assert TaigaSettings(url=url).identity_claims() == ()  # the username itself is always kept
    with pytest.raises(ValidationError, match="keep one"):
        TaigaSettings(url=url, username_claim="taiga_username", match_by="email_local_part")
    with pytest.raises(ValidationError, match="needs email_domains"):
        TaigaSettings(url=url, match_by="email_local_part")
    with pytest.raises(ValidationError, match="not a domain name"):
        TaigaSettings(url=url, match_by="email_local_part", email_domains=["@example.org"])


def test_matched_by_e_mail_a_person_signed_in_is_found_only_by_a_verified_address(
    make_sso_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """Through the provider's real tokens: alice's address is verified (looked up as alice),
    bob's is not (the card says so, and looks up no one)."""
    server, _ = tracker

    def by_mail(config: dict[str, Any]) -> None:
        configured = with_taiga(config, f"{server.url}/api/v1/")
        configured["upstreams"]["taiga"].update(match_by="email_local_part", email_domains=["example.org"])
        config.update(configured)

    app = make_sso_app(by_mail, env=SERVICE)
    with serve(app) as url:
        for person, expected in (
            ("alice", "You have no Taiga account named “alice”."),
            ("bob", "Your account has no verified e-mail address at the team&#39;s domain"),
        ):
            with requests.Session() as browser:
                login(browser, url, person)
                html = card(browser, "tasks", url, until=expected)
                assert expected in html, html[-800:]


def test_rows_say_due_state_blocked_note_link_and_status_colour(taiga_app: Callable[..., Flask]) -> None:
    html = card(_as(taiga_app(), "camille"), "tasks", until="task-row")
    assert 'href="https://taiga.example.org/project/plateforme-k3s/task/1"' in html
    assert "2 days overdue" in html and "Due today" in html and "Due tomorrow" in html
    assert "En attente de la fenêtre de maintenance" in html  # the blocked note
    # its Markdown, as Taiga shows it (the code and its parentheses kept on one line)
    assert '<em>réseau</em> <span class="md-keep">(<code>change-1432</code>)</span>' in html
    assert 'class="status-tag hue-orange"' in html and 'fill="#e47c40"' in html
    assert "/us/" in html  # user stories are there too, linked as stories


def test_a_long_list_shows_fifteen_the_rest_on_demand_and_points_past_its_cap_to_taiga(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """Seventy open items: fifteen in the card, up to the cap (sixty) one click away, the rest
    counted with a link to Taiga, where they all are."""
    _, world = tracker
    camille = next(u for u in world.users.values() if u.username == "camille")
    project = next(iter(world.projects.values()))
    for number in range(70):
        world.add_item("task", project, f"Lot de travail {number:02d}", "New", camille, due=5 + number)
    html = card(_as(taiga_app(), "camille"), "tasks", until="task-row")
    first, _, rest = html.partition('<details class="more-rows" id="tasks-more">')
    assert first.count('<li class="task-row') == 15 and rest.count('<li class="task-row') == 45
    assert "Show 45 more</span>" in rest
    assert re.search(r'and \d+ more items <a href="https://taiga.example.org/"[^>]*>in Taiga</a>', rest)


def test_a_persons_card_over_weeks_keeps_a_bounded_memory(
    taiga_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that runs for weeks: a person's card with a clock ("due in 3 h") is a new view
    and body at each of its steps. Views of past steps are dropped; bodies are kept within a
    budget of characters."""
    app = taiga_app()
    client = _as(app, "camille")
    card(client, "tasks", until="task-row")
    clock = ViewClock()
    monkeypatch.setattr(serving, "time", clock)
    state = portal_state(app)
    views = serving.card_views(state)
    versions = set()
    for _ in range(300):
        clock.ahead += 3600
        versions.add(
            client.get("/widgets/tasks", headers={"Accept-Language": "en"}).headers["X-Widget-Version"]
        )
    assert len(versions) == 300  # a new version at each step ("due in 3 h" moves on)
    assert len(views._memo) == 1  # the current step's alone
    renderer = state.renderer
    assert renderer is not None
    assert 0 < renderer._rendered.weight <= serving.RENDERED_CHARS
    assert len(renderer._rendered) < 300  # the oldest bodies went


def test_the_cuts_and_views_of_superseded_board_reads_are_dropped(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """Each read of the shared board is cut for each person under that read's fingerprint, and
    their card is a new view of that cut. The cuts of reads before the last two, and the view a
    newer one replaces, are never asked again: dropped at once rather than kept until their
    memo is full (16,384 entries each)."""
    _, world = tracker
    app = taiga_app()
    client = _as(app, "camille")
    state = portal_state(app)
    views = serving.card_views(state)
    task = next(iter(world.items["task"]))
    reads: list[str] = []
    for n in range(4):
        world.change("task", task, subject=f"Renamed {n}")
        state.cache.invalidate(upstream_key(TAIGA, "board"))
        assert f"Renamed {n}" in card(client, "tasks", until=f"Renamed {n}")
        kept = {key[2] for key in views._cuts._data if key[:2] == ("tasks", "board")}
        reads.extend(kept - set(reads))  # this read's fingerprint
        assert len(reads) == n + 1  # each read cut for camille
        assert kept == set(reads[-serving.KEPT_READS :])  # the older reads' cuts are gone
        assert [key.locale for key in views._memo._data if key.slug == "tasks"] == ["en"]  # this read's
    french = client.get("/widgets/tasks", headers={"Accept-Language": "fr"})
    assert "Renamed 3" in french.get_data(as_text=True)
    assert sorted(key.locale for key in views._memo._data if key.slug == "tasks") == ["en", "fr"]


def test_sort_and_filters_are_cut_on_the_server(taiga_app: Callable[..., Flask]) -> None:
    client = _as(taiga_app(), "camille")
    blocked = card(client, "tasks", until="task-row", sort="due", blocked="1")
    assert blocked.count('<li class="task-row') == 1 and "Mettre à jour K3s" in blocked
    soon = card(client, "tasks", until="task-row", soon="1")
    assert "Documenter la rotation" not in soon and "Renouveler les certificats" in soon
    by_project = card(client, "tasks", until="task-row", sort="project")
    assert (
        by_project.index("Plateforme K3s") < by_project.index("Portail DevSecOps")
        or "Plateforme" in by_project
    )
    assert '<option value="project" selected>' in by_project


def test_sorted_by_status_the_rows_follow_the_workflow_as_taigas_board_does(
    taiga_app: Callable[..., Flask],
) -> None:
    client = _as(taiga_app(), "camille")
    html = card(client, "tasks", until="status-menu__option", sort="status")
    shown = [unescape(name) for name in re.findall(r'class="status-tag__name"><bdi>([^<]+)</bdi>', html)]
    groups = list(dict.fromkeys(shown))
    # The demo's workflows: tasks New, In progress, Ready for test, Closed, Needs Info; stories
    # New, Ready, In progress, ... Each name at its earliest place; alphabetical would put
    # "In progress" and "Needs Info" before "New".
    workflow = ["New", "In progress", "Ready", "Ready for test", "Closed", "Done", "Needs Info", "Archived"]
    assert len(groups) >= 3 and groups[0] == "New", groups
    assert groups == sorted(groups, key=workflow.index), groups
    assert shown == sorted(shown, key=groups.index), shown  # each status's rows together


def test_in_french_the_statuses_are_taigas_french_ones_in_the_workflows_order(
    taiga_app: Callable[..., Flask],
) -> None:
    """Taiga names its default statuses in the caller's language; the card asks in its own (it
    said "In progress" to a French team whose Taiga says "En cours"), and sorts in that language
    by the workflow still."""
    client = _as(taiga_app(), "camille")
    html = card(client, "tasks", until="status-menu__option", sort="status", language="fr")
    shown = [unescape(name) for name in re.findall(r'class="status-tag__name"><bdi>([^<]+)</bdi>', html)]
    groups = list(dict.fromkeys(shown))
    workflow = [
        "Nouveau",
        "En cours",
        "Prêt",
        "Prêt à tester",
        "Fermé",
        "Fait",
        "Infos manquantes",
        "Archivé",
    ]
    assert len(groups) >= 3 and groups[0] == "Nouveau", groups
    assert groups == sorted(groups, key=workflow.index), groups
    assert "In progress" not in html and "In progress" in card(client, "tasks", until="task-row")


def test_updated_at_dates_the_board_not_the_statuses_read_ten_minutes_apart(
    taiga_app: Callable[..., Flask],
) -> None:
    """The statuses (kept fresh for 10 minutes) do not date a card whose board is a second old."""
    client = _as(taiga_app(changes=lambda c: c["widgets"]["tasks"].update(ttl=1, refresh=5)), "camille")
    card(client, "tasks", until="status-menu__option")
    first = datetime.fromisoformat(client.get("/widgets/tasks").headers["X-Widget-Fetched-At"])
    time.sleep(1.3)  # the board is past its TTL, the statuses are not
    latest = first
    for _ in range(40):
        latest = datetime.fromisoformat(client.get("/widgets/tasks").headers["X-Widget-Fetched-At"])
        if latest > first:
            break
        time.sleep(0.1)
    assert latest - first > timedelta(seconds=1), (first, latest)  # the board's new read


# --- the status menu --------------------------------------------------------------------------


def test_a_status_change_lands_with_the_version_and_answers_with_the_updated_item(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld], caplog: pytest.LogCaptureFixture
) -> None:
    _, world = tracker
    client = _as(taiga_app(), "camille")
    html = card(client, "tasks", until="task-row")
    action, version, statuses = status_form(html, "Relire la politique réseau")
    answer = _post(
        client,
        action,
        statuses["In progress"],
        version,
        Origin=ORIGIN,
        **{"X-CSRFToken": csrf_token(client.get("/").get_data(as_text=True))},
    )
    fresh = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert (
        "is now In progress." in fresh and status_shown(fresh, "Relire la politique réseau") == "In progress"
    )
    # Said in the item's own row, where the person is looking (the card's top may be off screen).
    assert 'class="card-notice is-success task-row__notice"' in row_of(fresh, "Relire la politique réseau")
    assert fresh.count('id="tasks-notice"') == 1  # and only there
    item = next(i for i in world.items["task"].values() if i.subject.startswith("Relire"))
    assert world.statuses["task"][item.status].name == "In progress" and item.version == int(version) + 1
    audits = [r for r in caplog.records if getattr(r, "event", "") == "audit"]
    assert [(r.action, r.outcome) for r in audits] == [("set_status", "ok")]  # type: ignore[attr-defined]


def test_a_status_change_while_taiga_is_slow_shows_on_the_last_board_not_an_empty_card(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """Taiga slow (each call 0.3 s: the board, several calls, takes longer than a request waits):
    the change's answer shows the board the card had, with the changed item in its new status
    and the next version, marked as older data, rather than no items at all; once the board is
    read anew, the card shows it fresh."""
    server, world = tracker
    app = taiga_app(changes=lambda c: c["cache"].update(answer_within=0.5))
    client = _as(app, "camille")
    html = card(client, "tasks", until="task-row")
    action, version, statuses = status_form(html, "Relire la politique réseau")
    row_count = html.count('class="task-row')
    token = csrf_token(client.get("/").get_data(as_text=True))
    server.latency = 0.3
    try:
        answer = _post(
            client, action, statuses["In progress"], version, Origin=ORIGIN, **{"X-CSRFToken": token}
        )
        shown = answer.get_data(as_text=True)
        assert answer.status_code == 200 and "is now In progress." in shown
        assert status_shown(shown, "Relire la politique réseau") == "In progress"
        assert shown.count('class="task-row') == row_count  # every item still listed
        _, next_version, _ = status_form(shown, "Relire la politique réseau")
        assert next_version == str(int(version) + 1)  # a second change would not be a conflict
        assert "is-stale" in shown and "Data unavailable" not in shown  # said to be older data
        fresh = card(client, "tasks", until="is-ok")  # the board read anew lands
        assert status_shown(fresh, "Relire la politique réseau") == "In progress"
    finally:
        server.latency = 0.0
    item = next(i for i in world.items["task"].values() if i.subject.startswith("Relire"))
    assert world.statuses["task"][item.status].name == "In progress"


def test_the_board_takes_a_changed_status_and_drops_an_item_the_change_closed(
    tracker: tuple[SimServer, TaigaWorld],
) -> None:
    """What a change's answer makes of the board a card showed (`Board.with_status_of`): the
    item's new status and version, nothing else moved; closed, it leaves the board of open items."""
    server, world = tracker
    client = TaigaClient(
        requests.Session(),
        f"{server.url}/api/v1/",
        {"username": taiga.SERVICE_ACCOUNT[0], "password": taiga.SERVICE_ACCOUNT[2]},
    )
    board = client.board()
    task = next(i for i in board.items if i.kind == "task" and i.subject.startswith("Relire"))
    statuses = {s.name: s for s in world.statuses["task"].values() if s.project == task.project}
    moved = client.set_status("task", task.id, statuses["In progress"].id, task.version)
    amended = board.with_status_of(moved)
    after = next(i for i in amended.items if i.id == task.id and i.kind == "task")
    assert (after.status, after.status_name, after.version) == (moved.status, "In progress", task.version + 1)
    assert [i for i in amended.items if i is not after] == [i for i in board.items if i is not task]
    person = next(p for p in board.people if p.id in task.assignees)
    assert after in amended.items_of(person)  # the person's cut is made anew

    closing = next(s for s in statuses.values() if s.is_closed)
    closed = client.set_status("task", task.id, closing.id, moved.version)
    assert task.id not in {i.id for i in amended.with_status_of(closed).items if i.kind == "task"}
    assert board.with_status_of(replace(moved, id=-1)) is board  # not on the board: the same board


def test_a_status_sent_again_writes_nothing_and_sets_no_other_page_polling(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld], caplog: pytest.LogCaptureFixture
) -> None:
    """The status the item already has (a change sent twice, or made in Taiga meanwhile): Taiga
    is read, not written, and no other dashboard is told to poll the board again."""
    server, world = tracker
    app = taiga_app()
    client = _as(app, "camille")
    html = card(client, "tasks", until="task-row")
    item = next(i for i in world.items["task"].values() if i.subject.startswith("Relire"))
    before = (item.status, item.version, server.count("PATCH"))
    token = csrf_token(client.get("/").get_data(as_text=True))
    answer = _post(
        client,
        f"/widgets/tasks/task/{item.id}/status",
        str(item.status),
        str(item.version),
        Origin=ORIGIN,
        **{"X-CSRFToken": token},
    )
    shown = status_shown(html, "Relire la politique réseau")
    assert answer.status_code == 200 and f"is now {shown}." in answer.get_data(as_text=True)
    assert (item.status, item.version, server.count("PATCH")) == before
    assert portal_state(app).changes.header() == ""  # no page told to poll
    audits = [r for r in caplog.records if getattr(r, "event", "") == "audit"]
    assert [(r.action, r.outcome) for r in audits] == [("set_status", "unchanged")]  # type: ignore[attr-defined]


def test_a_person_sending_changes_past_the_pace_is_told_to_wait_and_taiga_is_spared(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld], caplog: pytest.LogCaptureFixture
) -> None:
    server, world = tracker
    app = taiga_app()
    portal_state(app).write_pace = WritePace(limit=3)
    client = _as(app, "camille")
    card(client, "tasks", until="task-row")
    item = next(i for i in world.items["task"].values() if i.subject.startswith("Relire"))
    statuses = sorted(world.statuses["task"])
    answers = []
    for turn in range(4):
        changed = _post(
            client,
            f"/widgets/tasks/task/{item.id}/status",
            str(statuses[turn % 2]),
            str(item.version),
            Origin=ORIGIN,
            **{"X-CSRFToken": csrf_token(client.get("/").get_data(as_text=True))},
        )
        answers.append(changed.get_data(as_text=True))
    assert "Too many changes in a minute: this one was not sent." in answers[-1]
    assert all("Too many" not in answer for answer in answers[:-1])
    assert server.count("PATCH") <= 3  # the fourth was never sent
    outcomes = [r.outcome for r in caplog.records if getattr(r, "event", "") == "audit"]  # type: ignore[attr-defined]
    assert outcomes[-1] == "too_many" and "too_many" not in outcomes[:-1]


def test_the_pace_counts_each_person_apart_over_a_sliding_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(write_pace.time, "monotonic", lambda: now[0])
    pace = WritePace(limit=2, window=60)
    assert [pace.allow("a"), pace.allow("a"), pace.allow("a"), pace.allow("b")] == [True, True, False, True]
    now[0] += 59.9
    assert not pace.allow("a")  # the first two are still within the minute
    now[0] += 0.2
    assert pace.allow("a") and pace.allow("a") and not pace.allow("a")


# Taiga fails the change itself (PATCH), after the portal read the item: what the card says.
WRITE_FAULTS = [
    pytest.param("timeout", {"seconds": 4}, "Taiga did not answer within 1.5 s", True, id="timeout"),
    pytest.param("error500", {}, "Taiga answered HTTP 500", True, id="5xx"),
    pytest.param("garbage", {}, "Taiga returned a response that is not valid JSON", True, id="garbage"),
    pytest.param("notfound", {}, "Taiga answered HTTP 404 (not found)", False, id="404"),
]


@pytest.mark.parametrize(("mode", "options", "words", "unsure"), WRITE_FAULTS)
def test_a_status_change_taiga_fails_says_whether_it_may_have_been_made(
    taiga_app: Callable[..., Flask],
    tracker: tuple[SimServer, TaigaWorld],
    mode: str,
    options: dict[str, Any],
    words: str,
    unsure: bool,
) -> None:
    server, world = tracker
    client = _as(taiga_app(changes=lambda c: c["upstreams"]["taiga"].update(timeout=1.5)), "camille")
    action, version, statuses = status_form(
        card(client, "tasks", until="task-row"), "Relire la politique réseau"
    )
    token = csrf_token(client.get("/").get_data(as_text=True))
    server.set_fault(mode, method="PATCH", **options)
    answer = _post(client, action, statuses["In progress"], version, Origin=ORIGIN, **{"X-CSRFToken": token})
    html = unescape(answer.get_data(as_text=True))
    assert answer.status_code == 200 and words in html
    assert ("the change may or may not have been made. Check in Taiga before trying again." in html) is unsure
    item = next(i for i in world.items["task"].values() if i.subject.startswith("Relire"))
    assert world.statuses["task"][item.status].name == "New"  # (the fault answered instead of Taiga)
    assert "task-row" in html  # the card's rows are still there under the notice


@pytest.mark.parametrize("mode", ["error500", "unauthorized", "garbage"])
def test_a_status_change_while_taiga_fails_says_it_was_not_made_and_keeps_everyones_cards(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld], mode: str
) -> None:
    """Taiga fails every call (the item is read before it is changed): nothing is sent, the card
    says so, and the cards keep their last data, shown as stale, for this person and others."""
    server, world = tracker
    app = taiga_app(changes=lambda c: c["widgets"]["tasks"].update(ttl=1, refresh=5))
    camille, dominique = _as(app, "camille"), _as(app, "dominique")
    action, version, statuses = status_form(
        card(camille, "tasks", until="task-row"), "Relire la politique réseau"
    )
    assert "task-row" in card(dominique, "tasks", until="task-row")
    token = csrf_token(camille.get("/").get_data(as_text=True))
    server.set_fault(mode)
    try:
        time.sleep(1.2)  # the board is past its TTL: the next read goes to Taiga
        answer = _post(
            camille, action, statuses["In progress"], version, Origin=ORIGIN, **{"X-CSRFToken": token}
        )
        html = unescape(answer.get_data(as_text=True))
        assert answer.status_code == 200 and "the change was not made." in html, html
        assert "may or may not" not in html
        assert "task-row" in html  # the rows are still there, under the notice
        for person in (camille, dominique):
            again = unescape(card(person, "tasks", until="is-stale"))
            assert "task-row" in again and "Data unavailable" not in again
    finally:
        server.set_fault("none")
    item = next(i for i in world.items["task"].values() if i.subject.startswith("Relire"))
    assert world.statuses["task"][item.status].name == "New"


def test_a_change_reaches_another_worker_at_once(
    taiga_app: Callable[..., Flask], redis_server: RedisServer
) -> None:
    first, second = taiga_app(redis_server.url), taiga_app(redis_server.url)
    here, there = _as(first, "camille"), _as(second, "camille")
    html = card(here, "tasks", until="task-row")
    assert status_shown(card(there, "tasks", until="task-row"), "Relire la politique") == "New"
    action, version, statuses = status_form(html, "Relire la politique réseau")
    token = csrf_token(here.get("/").get_data(as_text=True))
    assert (
        _post(
            here, action, statuses["Needs Info"], version, Origin=ORIGIN, **{"X-CSRFToken": token}
        ).status_code
        == 200
    )
    assert status_shown(card(there, "tasks", until="task-row"), "Relire la politique") == "Needs Info"
    # And the pages open elsewhere (the person's other tabs, teammates') are told to poll their
    # Taiga cards now, by the next answer of any of their cards, as after Taiga's own webhook.
    told = there.get("/widgets/deadlines").headers.get("X-Portal-Changed", "")
    assert re.fullmatch(r"taiga=\d{13}", told), told


def test_a_conflict_says_someone_else_changed_it_and_shows_the_fresh_state(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld]
) -> None:
    _, world = tracker
    client = _as(taiga_app(), "camille")
    html = card(client, "tasks", until="task-row")
    action, version, statuses = status_form(html, "Relire la politique réseau")
    item = next(i for i in world.items["task"].values() if i.subject.startswith("Relire"))
    world.change(
        "task", item.id, status=world.status_id("task", item.project, "Ready for test")
    )  # in Taiga itself
    answer = _post(
        client,
        action,
        statuses["In progress"],
        version,
        Origin=ORIGIN,
        **{"X-CSRFToken": csrf_token(client.get("/").get_data(as_text=True))},
    )
    fresh = answer.get_data(as_text=True)
    assert answer.status_code == 200
    said = "This item was changed in Taiga after your card showed it, so your change was not made"
    assert said in row_of(fresh, "Relire la politique réseau")
    assert status_shown(fresh, "Relire la politique réseau") == "Ready for test"
    assert world.statuses["task"][item.status].name == "Ready for test"


@pytest.mark.parametrize(
    ("kind", "subject"), [("task", "Corriger le plantage"), ("issue", "L’appli se ferme")]
)
def test_someone_elses_item_is_refused_with_403_and_stays_as_it_was(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld], kind: str, subject: str
) -> None:
    _, world = tracker
    client = _as(taiga_app(), "camille")
    card(client, "tasks", until="task-row")
    theirs = next(i for i in world.items[kind].values() if i.subject.startswith(subject))  # dominique's
    before = (theirs.status, theirs.version)
    forged = _next_status(client, theirs)
    assert forged.status_code == 403
    assert "Only items assigned to you can be changed here." in forged.get_data(as_text=True)
    assert (theirs.status, theirs.version) == before


def test_a_change_without_the_pages_token_is_refused(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld]
) -> None:
    _, world = tracker
    client = _as(taiga_app(), "camille")
    html = card(client, "tasks", until="task-row")
    action, version, statuses = status_form(html, "Relire la politique réseau")
    item = next(i for i in world.items["task"].values() if i.subject.startswith("Relire"))
    refused = _post(client, action, statuses["In progress"], version, Origin=ORIGIN)
    assert refused.status_code == 403 and "security token had expired" in refused.get_data(as_text=True)
    assert item.version == int(version) and world.statuses["task"][item.status].name == "New"


@responses.activate
def test_a_status_change_made_but_answered_unreadably_may_have_been_made() -> None:
    """Taiga changes the status but answers with an item the portal cannot read: that failure
    says the change may have been made; a login refused on the way says it was not."""
    base = "http://taiga.test/api/v1/"
    responses.post(f"{base}auth", json={"auth_token": "a", "refresh": "r"})
    responses.get(f"{base}users/me", json={"id": 7, "username": "portal-bot"})
    responses.patch(f"{base}tasks/1", json={"id": 1})  # the change made; the item lacks its fields
    client = TaigaClient(requests.Session(), base, {"username": "portal-bot", "password": "pw"})
    with pytest.raises(UpstreamBadResponse) as unreadable:
        client.set_status("task", 1, 3, 1)
    assert unreadable.value.may_have_acted
    responses.replace(responses.POST, f"{base}auth", status=500)  # a login's failure: nothing asked
    with pytest.raises(UpstreamError) as login:
        TaigaClient(requests.Session(), base, {"username": "portal-bot", "password": "pw"}).set_status(
            "task", 1, 3, 1
        )
    assert not login.value.may_have_acted


# --- faults -----------------------------------------------------------------------------------


# Each fault of the simulators' list (simulators/base.py), in the card's words. With every path
# failing, the service account's login meets the fault first (403 and 401 alike: it is refused).
FAULT_WORDS: dict[str, tuple[dict[str, Any], str]] = {
    "timeout": ({"seconds": 4}, "Taiga did not answer within 1.5 s"),
    "error500": ({}, "Taiga answered HTTP 500"),
    "unauthorized": ({}, "Taiga refused the portal's service account"),
    "forbidden": ({}, "Taiga refused the portal's service account"),
    "notfound": ({}, "Taiga answered HTTP 404 (not found)"),
    "garbage": ({}, "Taiga returned a response that is not valid JSON"),
    "oversize": ({"size": 300_000}, "Taiga sent a response larger than 200 kB"),
    "slow": ({"interval": 0.3}, "Taiga is too slow"),
    "refused": ({"seconds": 4}, "Taiga cannot be reached"),
}


def test_the_status_menu_says_the_statuses_are_being_read_then_that_taiga_failed_to_give_them(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """The board lands before the statuses (hung here): the menu does not call that a failure."""
    server, _ = tracker
    # 3 s: the board (six lists since the issues are read) must land before the statuses' read
    # gives up, on a loaded machine too (1.5 s was missed twice with a load average of 17).
    app = taiga_app(changes=lambda c: c["upstreams"]["taiga"].update(timeout=3))
    client = _as(app, "camille")
    server.set_fault("timeout", only="-statuses", seconds=20)
    first = ""
    for _ in range(30):
        answer = client.get("/widgets/tasks", headers={"Accept-Language": "en"})
        first = unescape(answer.get_data(as_text=True))
        if "task-row" in first:
            break
        time.sleep(0.1)
    assert 'data-poll="soon"' in first  # the card asks again soon
    assert "Reading the statuses from Taiga…" in first and "cannot be read" not in first

    later = unescape(card(client, "tasks", until="cannot be read"))  # once the read timed out
    assert "The statuses cannot be read from Taiga right now." in later and "Reading the" not in later


def test_every_fault_of_the_simulators_has_its_words() -> None:
    assert set(FAULT_WORDS) == set(FAULT_MODES) - {"none"}


@pytest.mark.parametrize("mode", [m for m in FAULT_MODES if m != "none"])
def test_each_fault_is_said_in_words_and_leaves_the_page_alone(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld], mode: str
) -> None:
    server, _ = tracker
    options, words = FAULT_WORDS[mode]

    def changes(config: dict[str, Any]) -> None:
        config["upstreams"]["taiga"].update(timeout=1.5, max_bytes=200_000)
        # The status card must be unaffected by Taiga's fault, not by a busy machine: its simulator
        # runs in this process, and once took 2.4 s to answer (1.5 s in the shared configuration).
        config["upstreams"]["uptime_kuma"]["timeout"] = 10

    client = _as(taiga_app(changes=changes), "camille")
    server.set_fault(mode, **options)
    html = unescape(card(client, "tasks", until="Taiga"))
    assert words in html and "is-error" in html, html[:1500]
    answer = client.get("/widgets/tasks", headers={"Accept-Language": "en"})
    assert answer.status_code == 200  # a fault is a state of the card, never a 5xx
    assert client.get("/").status_code == 200  # the shell never waits on Taiga
    assert "is-error" not in card(client, "status")  # nor do the other cards


def test_throttling_is_waited_out_as_taiga_asks(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """Taiga's X-Throttle-Wait-Seconds holds every call back for as long as it says, and no
    longer: the wait is longer than both the data's TTL and the cache's failure hold, so only
    the header can be what keeps the portal quiet."""
    server, world = tracker
    wait = 5.0

    def changes(config: dict[str, Any]) -> None:
        config["widgets"]["tasks"].update(ttl=1)
        config["cache"]["failure_hold"] = 1  # a failed fetch alone holds the key back 1 s

    client = _as(taiga_app(changes=changes), "camille")
    assert "task-row" in card(client, "tasks", until="task-row")
    world.throttle(wait)  # 429 with X-Throttle-Wait-Seconds until then
    until = time.monotonic() + wait
    time.sleep(1.1)  # the data is past its TTL: the next poll asks Taiga
    before = server.count()
    throttled = card(client, "tasks", until="limiting")
    asked = time.monotonic()
    assert (
        "Taiga is limiting the portal&#39;s requests (HTTP 429)" in throttled and "task-row" in throttled
    )  # stale, kept
    calls = server.count()
    assert calls == before + 1  # the one call that met the 429
    while time.monotonic() < until - 0.4:  # polls during the wait Taiga asked for: no call reaches it
        card(client, "tasks")
        assert server.count() == calls, "a call reached Taiga before its throttle wait was over"
        time.sleep(0.1)
    # The TTL (1 s) and the failure hold (1 s) were long over during those polls.
    assert time.monotonic() - asked > 2.0
    while server.count() == calls and time.monotonic() < until + 2.0:
        card(client, "tasks")
        time.sleep(0.1)
    assert server.count() > calls, "no call to Taiga soon after its throttle wait"
    assert time.monotonic() >= until - 0.4
    assert "limiting" not in card(client, "tasks", until="is-ok")


def test_a_401_that_a_fresh_login_does_not_cure_is_reported_not_retried_in_a_loop(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """A 401 mid-session renews the token once (the refused refresh falls back to a fresh login),
    repeats the call once, then the card says it: every later fetch the same, never a loop."""
    server, world = tracker

    def changes(config: dict[str, Any]) -> None:
        config["upstreams"]["taiga"]["timeout"] = 1.5
        config["widgets"]["tasks"].update(ttl=1)
        config["cache"]["failure_hold"] = 1

    client = _as(taiga_app(changes=changes), "camille")
    assert "task-row" in card(client, "tasks", until="task-row")
    logins, refreshes, listed = world.logins, world.refreshes, server.count("/api/v1/projects")
    assert (logins, refreshes, listed) == (1, 0, 1)
    with world.lock:  # Taiga forgets the portal's tokens (its secret rotated, its sessions flushed)
        world.access.clear()
        world.refresh.clear()
    server.set_fault("unauthorized", only="/api/v1/projects")  # and refuses even fresh ones there
    time.sleep(1.1)
    began = time.monotonic()
    client.get("/widgets/tasks")  # past the TTL: this poll's refresh meets the 401
    while server.count("/api/v1/projects") < listed + 2 and time.monotonic() < began + 5:
        time.sleep(0.05)
    time.sleep(0.3)  # without another poll, nothing more reaches Taiga
    # Recovered once: the refused refresh fell back to one fresh login, the call was repeated once.
    assert server.count("/api/v1/auth/refresh") == 1 and world.refreshes == refreshes
    assert world.logins == logins + 1
    assert server.count("/api/v1/projects") == listed + 2
    html = unescape(card(client, "tasks", until="refused"))
    assert "Taiga refused the portal's credentials (HTTP 401)" in html
    assert "task-row" in html  # the last good items stay, marked stale
    assert re.fullmatch(
        r"My tasks: [^.]*\. Data from [^,]+, Taiga refused the portal's credentials \(HTTP 401\)",
        announced(html),
    )
    for _ in range(30):  # 3 s of polls: past the TTL, the failure hold and the breaker's pause
        card(client, "tasks")
        time.sleep(0.1)
    time.sleep(0.3)  # the last fetch lands
    refused = server.count("/api/v1/projects") - listed
    renewals = (world.logins - logins) + (world.refreshes - refreshes)
    assert refused == 2 * renewals  # each fetch: one call, one renewal, one more call, reported
    # Fetches are at least the failure hold (1 s) apart, and the breaker spaces them out more.
    assert world.logins - logins <= renewals <= 1 + (time.monotonic() - began)
    assert server.count("/api/v1/auth") <= 1 + 2 * renewals  # no login or refresh beyond those
    assert "Taiga refused the portal&#39;s credentials (HTTP 401)" in card(client, "tasks")
    server.set_fault("none")  # Taiga takes the tokens again: the card recovers by itself
    assert "refused" not in card(client, "tasks", until="is-ok")


# --- webhook ----------------------------------------------------------------------------------


def _hook(client: FlaskClient, body: bytes, signature: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-TAIGA-WEBHOOK-SIGNATURE"] = signature
    return client.post("/hooks/taiga", data=body, headers=headers)


def test_a_signed_webhook_makes_a_change_in_taiga_show_at_once(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld]
) -> None:
    _, world = tracker
    app = taiga_app()
    client = _as(app, "camille")
    assert status_shown(card(client, "tasks", until="task-row"), "Relire la politique") == "New"
    item = next(i for i in world.items["task"].values() if i.subject.startswith("Relire"))
    world.change("task", item.id, status=world.status_id("task", item.project, "Needs Info"))
    assert status_shown(card(client, "tasks"), "Relire la politique") == "New"  # cached for its TTL
    body = json.dumps({"action": "change", "type": "task", "data": {"id": item.id}}).encode()
    anonymous = app.test_client()  # Taiga has no session
    assert _hook(anonymous, body, None).status_code == 403
    assert _hook(anonymous, body, "0" * 40).status_code == 403
    assert status_shown(card(client, "tasks"), "Relire la politique") == "New"  # nothing changed
    good = hmac.new(WEBHOOK_KEY.encode(), body, hashlib.sha1).hexdigest()
    assert _hook(anonymous, body, good).status_code == 204
    assert status_shown(card(client, "tasks", until="task-row"), "Relire la politique") == "Needs Info"


def test_a_status_renamed_in_taiga_shows_in_every_language_at_once_through_the_webhook(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld]
) -> None:
    _, world = tracker
    app = taiga_app()
    client = _as(app, "camille")
    for language in ("en", "fr"):
        card(client, "tasks", until="status-menu__option", language=language)
    status = next(s for s in world.statuses["task"].values() if s.name == "Needs Info")
    status.name = "Blocked on review"  # a team's own name: Taiga translates none
    body = json.dumps({"action": "change", "type": "taskstatus", "data": {"id": status.id}}).encode()
    good = hmac.new(WEBHOOK_KEY.encode(), body, hashlib.sha1).hexdigest()
    assert _hook(app.test_client(), body, good).status_code == 204
    for language in ("en", "fr"):  # both catalogues dropped, not only the one last read
        html = card(client, "tasks", until="status-menu__option", language=language)
        assert "Blocked on review" in html, language


def test_a_teammates_change_gives_a_new_card_to_the_people_it_concerns_only(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The board is read for everyone, but a person's version is that of their own cut: when a
    teammate moves one of camille's tasks, dominique's cards answer 204 (nothing drawn again,
    nothing sent), camille's the new status."""
    server, world = tracker
    monkeypatch.setattr(serving, "time", StoppedClock())  # an hour turning would change versions too
    app = taiga_app()
    camille, dominique = _as(app, "camille"), _as(app, "dominique")
    versions = {}
    for who, client in (("camille", camille), ("dominique", dominique)):
        for slug, until in (("tasks", "task-row"), ("deadlines", "upcoming")):
            card(client, slug, until=until)
            answer = client.get(f"/widgets/{slug}", headers={"Accept-Language": "en"})
            versions[who, slug] = answer.headers["X-Widget-Version"]
    item = next(i for i in world.items["task"].values() if i.subject.startswith("Relire"))
    world.change("task", item.id, status=world.status_id("task", item.project, "Needs Info"))
    body = json.dumps({"action": "change", "type": "task", "data": {"id": item.id}}).encode()
    good = hmac.new(WEBHOOK_KEY.encode(), body, hashlib.sha1).hexdigest()
    assert _hook(app.test_client(), body, good).status_code == 204
    assert status_shown(card(camille, "tasks", until="task-row"), "Relire la politique") == "Needs Info"
    assert server.count("/api/v1/tasks") == 2  # the board was read again, with the change
    for slug in ("tasks", "deadlines"):
        headers = {"Accept-Language": "en", "X-Widget-Version": versions["dominique", slug]}
        assert dominique.get(f"/widgets/{slug}", headers=headers).status_code == 204, slug
    headers = {"Accept-Language": "en", "X-Widget-Version": versions["camille", "tasks"]}
    mine = camille.get("/widgets/tasks", headers=headers)
    assert mine.status_code == 200 and mine.headers["X-Widget-Version"] != versions["camille", "tasks"]
    # The views outlive the reads they were built from: each keeps the person's cut, never a board.
    views = list(serving.card_views(portal_state(app))._memo._data.values())
    kept = [p.result.value for v in views for p in v.parts if p.part.select is not None]
    assert kept and all(isinstance(value, MyWork) for value in kept)


def test_the_bench_crowds_team_moves_one_task_every_few_seconds_each_in_turn() -> None:
    """`crowd_world(moves_every=5)`: the busy team of the bench's figure 1 (a board that differs
    at each read); the moves due are made before an answer, none more."""
    now = [1_000_000.0]
    world = taiga.crowd_world(20, moves_every=5, clock=lambda: now[0])
    tasks = world.items["task"]
    before = {item_id: item.status for item_id, item in tasks.items()}
    teammates = world._teammate  # what the simulator runs before each answer
    assert teammates is not None
    teammates(world)
    assert {i: t.status for i, t in tasks.items()} == before  # none due yet
    now[0] += 12  # two moves due
    teammates(world)
    moved = sorted(i for i, t in tasks.items() if t.status != before[i])
    assert moved == sorted(tasks)[:2]
    assert {world.statuses["task"][tasks[i].status].name for i in moved} == {"Ready for test"}
    assert all(tasks[i].version == 2 for i in moved)
    now[0] += 10 * 5 * len(tasks)  # a long quiet spell: each task moves once, not ten times
    teammates(world)
    assert max(t.version for t in tasks.values()) <= 3


def test_without_a_webhook_key_every_hook_is_refused(
    portal_config: dict[str, Any], tracker: tuple[SimServer, TaigaWorld]
) -> None:
    config = with_taiga(portal_config, f"{tracker[0].url}/api/v1/")
    app = create_app({"TESTING": True, "PORTAL": config, "ENV": {"PORTAL_SECRET_KEY": SECRET, **SERVICE}})
    body = b'{"type": "task"}'
    signature = hmac.new(b"", body, hashlib.sha1).hexdigest()
    assert _hook(app.test_client(), body, signature).status_code == 403
    assert upstream_key(TAIGA, "board") == "widget:@taiga:shared:board"
    assert portal_state(app).widgets["tasks"].configured


def test_both_taiga_cards_say_when_taigas_lists_were_cut(taiga_app: Callable[..., Flask]) -> None:
    """Past `max_pages`, what the cards show is incomplete: both say so (the deadlines card was
    silent: fifteen dated items missing from its list and its calendar, not a word)."""

    def cut(config: dict[str, Any]) -> None:
        config["upstreams"]["taiga"].update(page_size=2, max_pages=1)

    missing = "some may be missing"
    whole, cut_short = _as(taiga_app(), "camille"), _as(taiga_app(changes=cut), "camille")
    for slug, until in (("tasks", "task-row"), ("deadlines", "upcoming__row")):
        assert missing not in card(whole, slug, until=until), slug
        assert missing in card(cut_short, slug, until="some may be"), slug


# --- issues: the third kind of work item -------------------------------------------------------


def _issue(world: TaigaWorld, subject_start: str) -> Any:
    return next(i for i in world.items["issue"].values() if i.subject.startswith(subject_start))


def test_my_issues_are_listed_with_their_kind_and_link_and_nobody_elses(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """A bug assigned to me, due in two days, is on my card as an issue ("Ticket" in French, as
    Taiga's French says), linked to the issue in Taiga; a teammate's issues are not."""
    _, world = tracker
    client = _as(taiga_app(), "camille")
    html = unescape(card(client, "tasks", until="task-row"))
    wildcard = row_of(html, "Le certificat wildcard")
    assert "Issue #6" in wildcard and "2 days overdue" not in wildcard and "3 days overdue" in wildcard
    assert 'href="https://taiga.example.org/project/plateforme-k3s/issue/6"' in wildcard
    question = row_of(html, "quelle rétention pour les journaux")
    assert "Issue #8" in question and "Due in 2 days" in question
    assert "La recherche ignore les accents" in html  # undated: listed, not on the calendar
    for theirs in ("L’appli se ferme", "Le lien de réinitialisation", "Les notifications arrivent"):
        assert theirs not in html
    # The issue's own workflow in its menu (Taiga's issues have "Postponed"; its tasks do not).
    _, _, statuses = status_form(html, "Le certificat wildcard")
    assert "Postponed" in statuses and "Rejected" in statuses
    _, _, task_statuses = status_form(html, "Relire la politique réseau")
    assert "Postponed" not in task_statuses
    french = unescape(client.get("/widgets/tasks", headers={"Accept-Language": "fr"}).get_data(as_text=True))
    assert "Ticket #6" in row_of(french, "Le certificat wildcard")
    french = card(client, "tasks", until="Repoussé", language="fr")  # the statuses, once read in French
    _, _, french_statuses = status_form(unescape(french), "Le certificat wildcard")
    assert "Repoussé" in french_statuses and "Rejeté" in french_statuses  # as Taiga's French names them
    # Overdue and soon filters count issues like the rest.
    soon = unescape(card(client, "tasks", until="task-row", soon="1"))
    assert "Le certificat wildcard" in soon and "La recherche ignore" not in soon
    assert _issue(world, "Le certificat").id == 1 == next(iter(world.items["task"]))  # ids shared by kinds


def test_an_issues_status_changes_with_its_version_and_a_stale_one_is_a_conflict(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld]
) -> None:
    _, world = tracker
    client = _as(taiga_app(), "camille")
    issue = _issue(world, "Le certificat wildcard")
    task = world.items["task"][issue.id]  # a task with the same id stays as it was
    task_before = (task.status, task.version)
    action, version, statuses = status_form(card(client, "tasks", until="task-row"), "Le certificat wildcard")
    assert action.startswith(f"/widgets/tasks/issue/{issue.id}/status?")
    token = csrf_token(client.get("/").get_data(as_text=True))
    answer = _post(
        client, action, statuses["Ready for test"], version, Origin=ORIGIN, **{"X-CSRFToken": token}
    )
    fresh = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "is now Ready for test." in fresh
    assert status_shown(fresh, "Le certificat wildcard") == "Ready for test"
    assert (
        world.statuses["issue"][issue.status].name == "Ready for test" and issue.version == int(version) + 1
    )
    assert (task.status, task.version) == task_before
    # Someone moves it in Taiga; the card's older version is refused as a conflict, fresh state shown.
    world.change("issue", issue.id, status=world.status_id("issue", issue.project, "Needs Info"))
    stale = _post(client, action, statuses["In progress"], version, Origin=ORIGIN, **{"X-CSRFToken": token})
    html = stale.get_data(as_text=True)
    said = "This item was changed in Taiga after your card showed it, so your change was not made"
    assert stale.status_code == 200 and said in row_of(html, "Le certificat wildcard")
    assert status_shown(html, "Le certificat wildcard") == "Needs Info"
    assert world.statuses["issue"][issue.status].name == "Needs Info"


def test_a_signed_webhook_about_an_issue_makes_its_change_show_at_once(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """Taiga's webhook for an issue (type "issue") invalidated nothing: the card showed the old
    status for its whole TTL."""
    _, world = tracker
    app = taiga_app()
    client = _as(app, "camille")
    assert status_shown(card(client, "tasks", until="task-row"), "Le certificat wildcard") == "In progress"
    issue = _issue(world, "Le certificat wildcard")
    world.change("issue", issue.id, status=world.status_id("issue", issue.project, "Postponed"))
    assert status_shown(card(client, "tasks"), "Le certificat wildcard") == "In progress"  # cached
    body = json.dumps({"action": "change", "type": "issue", "data": {"id": issue.id}}).encode()
    good = hmac.new(WEBHOOK_KEY.encode(), body, hashlib.sha1).hexdigest()
    assert _hook(app.test_client(), body, good).status_code == 204
    assert status_shown(card(client, "tasks", until="task-row"), "Le certificat wildcard") == "Postponed"


def test_a_cut_list_of_issues_alone_says_the_card_is_incomplete(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """Every other list fits in one page; the issues do not: what is shown is incomplete."""
    _, world = tracker
    camille = next(u for u in world.users.values() if u.username == "camille")
    project = next(iter(world.projects.values()))
    for number in range(30):
        world.add_item("issue", project, f"Anomalie {number:02d}", "New", camille, due=5 + number)
    app = taiga_app(changes=lambda c: c["upstreams"]["taiga"].update(page_size=30, max_pages=1))
    assert "some may be missing" in card(_as(app, "camille"), "tasks", until="some may be")


# --- an issue's type, severity and priority -----------------------------------------------------


def _marks(row: str) -> list[str]:
    """The severity and priority tags of a row, as text."""
    return [
        unescape(re.sub(r"<[^>]+>", "", tag)) for tag in re.findall(r'<span class="grade-tag.*?</span>', row)
    ]


def test_a_critical_bug_says_so_and_a_normal_one_says_nothing_more(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """A critical bug of high priority looked like any question in the list: its severity and
    priority are said when they stand above the middle of the project's scale (Taiga's names and
    colours, in the card's language); "Normal" and below add nothing to a row."""
    client = _as(taiga_app(), "camille")
    html = card(client, "tasks", until="grade-tag")
    wildcard = row_of(html, "Le certificat wildcard")
    assert _marks(wildcard) == ["Severity: Critical", "Priority: High"]
    assert 'class="grade-tag hue-red"' in wildcard and 'fill="#d35450"' in wildcard  # Taiga's colour
    assert '<bdi class="task-row__type">Bug</bdi>' in wildcard
    question = row_of(html, "quelle rétention")
    assert _marks(question) == [] and '<bdi class="task-row__type">Question</bdi>' in question  # low priority
    assert _marks(row_of(html, "La recherche ignore les accents")) == []  # a minor bug
    assert _marks(row_of(html, "Renouveler les certificats")) == []  # a task has none
    assert "task-row__type" not in row_of(html, "Renouveler les certificats")
    french = card(client, "tasks", until="Critique", language="fr")
    assert _marks(row_of(french, "Le certificat wildcard")) == [
        "Gravité\u00a0: Critique",
        "Priorité\u00a0: Fort",
    ]
    assert '<bdi class="task-row__type">Question</bdi>' in row_of(french, "quelle rétention")


def test_sorted_by_severity_the_most_severe_issues_come_first_then_the_rest_by_date(
    taiga_app: Callable[..., Flask],
) -> None:
    """Camille's issues, most severe first (Critical, Normal, Minor: each project's own scale),
    then her tasks and stories, which have no severity, by due date as usual."""
    client = _as(taiga_app(), "camille")
    html = card(client, "tasks", until="grade-tag", sort="severity", language="fr")
    rows = re.findall(r'<li class="task-row.*?</li>', html, flags=re.S)
    issues = ["Le certificat wildcard", "quelle rétention", "La recherche ignore les accents"]
    placed = [next(at for at, row in enumerate(rows) if subject in unescape(row)) for subject in issues]
    assert placed == [0, 1, 2], placed
    due = [re.search(r'<time datetime="(\d{4}-\d\d-\d\d)"', row) for row in rows[3:]]
    dates = [found.group(1) for found in due if found]
    assert len(dates) >= 3 and dates == sorted(dates), dates  # the rest by due date
    assert '<option value="severity" selected>Gravité</option>' in html


def test_a_teams_own_scale_marks_its_upper_half_and_its_names_are_text(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """A team's own severities (two, one named with markup, one coloured with garbage): the upper
    one is said, as text, in grey without a swatch; a grade made after the catalogue was read is
    left out rather than guessed."""
    _, world = tracker
    issue = _issue(world, "La recherche ignore les accents")
    for grade in [g for g in world.grades["severity"].values() if g.project == issue.project]:
        del world.grades["severity"][grade.id]
    world.grades["severity"][90] = taiga.SimGrade(90, issue.project, "Later", "#A8E440", 1)
    world.grades["severity"][91] = taiga.SimGrade(91, issue.project, '<img src=x onerror="boom">', "red;x", 2)
    world.change("issue", issue.id, grades={**issue.grades, "severity": '<img src=x onerror="boom">'})
    client = _as(taiga_app(), "camille")
    html = card(client, "tasks", until="grade-tag")
    row = row_of(html, "La recherche ignore les accents")
    assert _marks(row) == ['Severity: <img src=x onerror="boom">'] and "<img" not in row
    assert (
        'class="grade-tag hue-grey"' in row and "<svg" not in row.split("grade-tag", 1)[1].split("</span>")[0]
    )
    world.grades["severity"][92] = taiga.SimGrade(92, issue.project, "Blocker", "#FF0000", 3)
    world.change("issue", issue.id, grades={**issue.grades, "severity": "Blocker"})
    body = json.dumps({"action": "change", "type": "issue", "data": {"id": issue.id}}).encode()
    assert (
        _hook(client, body, hmac.new(WEBHOOK_KEY.encode(), body, hashlib.sha1).hexdigest()).status_code == 204
    )
    fresh = card(client, "tasks", until="task-row")
    assert _marks(row_of(fresh, "La recherche ignore les accents")) == []  # not in the catalogue read before
    body = json.dumps({"action": "change", "type": "severity", "data": {"id": 92}}).encode()
    assert (
        _hook(client, body, hmac.new(WEBHOOK_KEY.encode(), body, hashlib.sha1).hexdigest()).status_code == 204
    )
    renamed = card(client, "tasks", until="Blocker")
    assert _marks(row_of(renamed, "La recherche ignore les accents")) == ["Severity: Blocker"]


@pytest.mark.parametrize(("fault", "path"), [("notfound", "/severities"), ("garbage", "/issue-types")])
def test_grades_taiga_cannot_give_leave_the_statuses_and_their_menus_alone(
    taiga_app: Callable[..., Flask], tracker: tuple[SimServer, TaigaWorld], fault: str, path: str
) -> None:
    """A Taiga without one of the lists (an older one: 404) or answering it unreadably: the
    issues are shown without what that list names, and the status menus, which need the
    statuses only, still work."""
    server, _ = tracker
    server.set_fault(fault, only=path)
    client = _as(taiga_app(), "camille")
    html = card(client, "tasks", until="status-menu__option")
    wildcard = row_of(html, "Le certificat wildcard")
    _, _, statuses = status_form(html, "Le certificat wildcard")
    assert "Postponed" in statuses and "cannot be read from Taiga" not in html and "Data from" not in html
    if path == "/severities":
        assert _marks(wildcard) == ["Priority: High"] and ">Bug</bdi>" in wildcard
    else:
        assert (
            _marks(wildcard) == ["Severity: Critical", "Priority: High"] and "task-row__type" not in wildcard
        )
