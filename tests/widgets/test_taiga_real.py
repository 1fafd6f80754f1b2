"""The Taiga client and both Taiga cards against the real taiga-back 6.10.0 and its seeded data.

The service account is Taiga's `admin`; portal users log in through the Keycloak-shaped provider
as alice and bob, who are Taiga's alice and bob. Every test that changes an item puts it back
(status and all) through Taiga's API, and reads versions afresh: tests share one Taiga.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from html import unescape
from typing import Any

import pytest
import requests
from flask import Flask

from portal import create_app
from portal.caching.codec import Codec
from portal.caching.stores import RedisStore
from portal.upstreams.errors import UpstreamAuthError, UpstreamConflict
from portal.upstreams.http import HttpLimits
from portal.web.bidi import BIDI_CONTROLS
from portal.widgets.taiga.client import TaigaClient, Tokens

from ..conftest import SSO_ENV, sso_config
from ..support.keycloak import KeycloakSim, login
from ..support.live import serve
from ..support.processes import RedisServer
from ..support.taiga import TaigaBack
from ..support.taiga_portal import DAY_CELL, card, csrf_token, row_of, status_form, status_shown, with_taiga

pytestmark = pytest.mark.peers

LIMITS = HttpLimits(20, 5, 10_000_000)


class CountingSession(requests.Session):
    """A session that counts the requests it sends, by method and path."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        with self._lock:
            self.sent.append((str(method), str(url).split("?")[0]))
        return super().request(method, url, *args, **kwargs)

    def count(self, method: str, path_end: str) -> int:
        return sum(1 for m, u in self.sent if m == method and u.endswith(path_end))


def _client(
    taiga_back: TaigaBack, username: str = "admin", session: requests.Session | None = None, **options: Any
) -> TaigaClient:
    user = taiga_back.user(username)
    return TaigaClient(
        session or CountingSession(),
        taiga_back.url,
        {"username": username, "password": user["password"]},
        LIMITS,
        **options,
    )


def _admin(taiga_back: TaigaBack) -> dict[str, str]:
    return {"Authorization": f"Bearer {taiga_back.login('admin')['auth_token']}"}


PATHS = {"task": "tasks", "us": "userstories", "issue": "issues"}


def _task(taiga_back: TaigaBack, task_id: int, kind: str = "task") -> dict[str, Any]:
    """A task (or another kind of item) as Taiga holds it now."""
    answer = requests.get(f"{taiga_back.url}{PATHS[kind]}/{task_id}", headers=_admin(taiga_back), timeout=15)
    answer.raise_for_status()
    found: dict[str, Any] = answer.json()
    return found


def _set(taiga_back: TaigaBack, kind: str, item_id: int, **fields: Any) -> dict[str, Any]:
    """Change an item in Taiga itself (as its admin), with its current version."""
    path = PATHS[kind]
    headers = _admin(taiga_back)
    current = requests.get(f"{taiga_back.url}{path}/{item_id}", headers=headers, timeout=15).json()
    answer = requests.patch(
        f"{taiga_back.url}{path}/{item_id}",
        json={**fields, "version": current["version"]},
        headers=headers,
        timeout=15,
    )
    answer.raise_for_status()
    found: dict[str, Any] = answer.json()
    return found


def _status_id(taiga_back: TaigaBack, project: int, name: str, kind: str = "task") -> int:
    path = "issue-statuses" if kind == "issue" else "task-statuses"
    statuses = requests.get(
        f"{taiga_back.url}{path}", params={"project": project}, headers=_admin(taiga_back), timeout=15
    ).json()
    return int(next(s["id"] for s in statuses if s["name"] == name))


def _seeded(
    taiga_back: TaigaBack, username: str, label: str, project: str = "portal-alpha", kind: str = "tasks"
) -> dict[str, Any]:
    found: dict[str, Any] = next(
        t
        for t in taiga_back.seed[kind]
        if t["assigned_to"] == username and t["project"] == project and t["subject"].endswith(label)
    )
    return found


@pytest.fixture
def restore(taiga_back: TaigaBack) -> Iterator[Callable[..., None]]:
    """Remember tasks (or issues: kind="issue") a test changes; put their status and subject back
    afterwards."""
    saved: dict[tuple[str, int], dict[str, Any]] = {}

    def remember(task_id: int, kind: str = "task") -> None:
        task = _task(taiga_back, task_id, kind)
        saved.setdefault((kind, task_id), {"status": task["status"], "subject": task["subject"]})

    yield remember
    for (kind, task_id), fields in saved.items():
        _set(taiga_back, kind, task_id, **fields)


# --- the client -------------------------------------------------------------------------------


def test_login_checks_the_token_and_a_refresh_rotates(taiga_back: TaigaBack) -> None:
    client = _client(taiga_back)
    board = client.board()
    assert client.me is not None and client.me.username == "admin"
    assert {p.slug for p in board.projects} >= {"portal-alpha", "portal-beta", "bob-private"}
    first = client._read_store()
    assert first is not None
    renewed = client._renew(first, None)  # the token is refused: refreshed once
    assert renewed.refresh != first.refresh and renewed.access != first.access
    reuse = requests.post(f"{taiga_back.url}auth/refresh", json={"refresh": first.refresh}, timeout=15)
    assert reuse.status_code == 401 and reuse.json()["code"] == "token_not_valid"  # the old one works no more
    assert client.board().items  # and the new one does


def test_a_401_mid_session_is_recovered_once(taiga_back: TaigaBack) -> None:
    session = CountingSession()
    client = _client(taiga_back, session=session)
    client.catalog()
    good = client._read_store()
    assert good is not None
    broken = Tokens("not-a-jwt", good.refresh, good.obtained)
    client._write_store(broken)
    client._tokens = broken
    assert client.catalog().statuses  # 401, refreshed, repeated
    assert session.count("POST", "auth/refresh") == 1 and session.count("POST", "/auth") == 1


def test_a_refused_refresh_falls_back_to_a_fresh_login(taiga_back: TaigaBack) -> None:
    session = CountingSession()
    client = _client(taiga_back, session=session)
    client.catalog()
    good = client._read_store()
    assert good is not None
    requests.post(
        f"{taiga_back.url}auth/refresh", json={"refresh": good.refresh}, timeout=15
    )  # spent elsewhere
    spent = Tokens("not-a-jwt", good.refresh, good.obtained)
    client._write_store(spent)
    client._tokens = spent
    assert client.catalog().statuses
    assert session.count("POST", "auth/refresh") == 1 and session.count("POST", "/auth") == 2


def test_wrong_credentials_are_reported_not_retried(taiga_back: TaigaBack) -> None:
    client = TaigaClient(
        CountingSession(), taiga_back.url, {"username": "admin", "password": "wrong"}, LIMITS
    )
    with pytest.raises(UpstreamAuthError) as raised:
        client.board()
    assert str(raised.value) == "Taiga refused the portal's service account"


def test_a_refresh_is_made_once_for_every_worker(taiga_back: TaigaBack, redis_server: RedisServer) -> None:
    """Four "workers" (clients on one Redis) find the token refused at once: one refresh in all."""
    store = RedisStore.from_url(
        redis_server.url, None, "taiga-test:", Codec("a-test-secret-of-32-characters!!")
    )
    sessions = [CountingSession() for _ in range(4)]
    clients = [_client(taiga_back, session=s, store=store) for s in sessions]
    clients[0].catalog()
    good = clients[0]._read_store()
    assert good is not None
    stale = Tokens("not-a-jwt", good.refresh, good.obtained)
    clients[0]._write_store(stale)
    for client in clients:
        client._tokens = stale
    barrier = threading.Barrier(len(clients))
    failures: list[BaseException] = []

    def work(client: TaigaClient) -> None:
        barrier.wait()
        try:
            client.catalog()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures
    raw = store.client.get(store._key(clients[0].token_key))
    assert raw and good.refresh.encode() not in raw and b"not-a-jwt" not in raw  # encrypted at rest
    assert sum(s.count("POST", "auth/refresh") for s in sessions) == 1
    assert sum(s.count("POST", "/auth") for s in sessions) == 1  # the first login only


def test_alices_44_tasks_come_over_two_pages(taiga_back: TaigaBack) -> None:
    session = CountingSession()
    client = _client(taiga_back, "alice", session=session, page_size=30)
    alice = taiga_back.user("alice")["id"]
    tasks, truncated = client._pages("tasks", {"assigned_to": str(alice)}, deadline=time.monotonic() + 30)
    assert len(tasks) == 44 == taiga_back.seed["counts"]["alice"] and not truncated
    assert len({t["id"] for t in tasks}) == 44
    assert session.count("GET", "/tasks") == 2
    capped, cut = _client(taiga_back, "alice", page_size=30, max_pages=1)._pages(
        "tasks", {"assigned_to": str(alice)}, deadline=time.monotonic() + 30
    )
    assert len(capped) == 30 and cut


def test_users_are_found_by_username(taiga_back: TaigaBack) -> None:
    client = _client(taiga_back)
    alice = client.user_by_username("alice")
    assert alice is not None and alice.id == taiga_back.user("alice")["id"]
    assert client.user_by_username("nobody-here") is None


# --- through the portal -----------------------------------------------------------------------


@pytest.fixture
def taiga_apps(
    portal_config: dict[str, Any], keycloak: KeycloakSim, taiga_back: TaigaBack, redis_server: RedisServer
) -> Callable[..., Flask]:
    """Apps (workers) on one Redis, single sign-on, reading the real Taiga as its admin."""
    config = with_taiga(
        sso_config(portal_config, keycloak.url), taiga_back.url, taiga_back.front_url.rstrip("/")
    )
    config["cache"]["redis_url"] = redis_server.url
    # A change answers with the card read afresh from Taiga: the board's six lists took more than
    # the default 2 s on a machine at load 17 (the answer then says "loading", as it should).
    config["cache"]["answer_within"] = 5
    admin = taiga_back.user("admin")
    env = {**SSO_ENV, "PORTAL_TAIGA_USERNAME": "admin", "PORTAL_TAIGA_PASSWORD": admin["password"]}

    def build(key_prefix: str = "") -> Flask:
        """An app; with `key_prefix`, one that shares nothing cached with the others."""
        own = {**config, "cache": {**config["cache"], "key_prefix": key_prefix}} if key_prefix else config
        return create_app({"TESTING": True, "PORTAL": own, "ENV": env})

    return build


@pytest.fixture
def served(taiga_apps: Callable[..., Flask]) -> Iterator[list[str]]:
    with ExitStack() as stack:
        yield [stack.enter_context(serve(taiga_apps())) for _ in range(2)]


def _browser(base: str, username: str) -> requests.Session:
    browser = requests.Session()
    assert login(browser, base, username).status_code == 200
    return browser


def _change(
    browser: requests.Session,
    base: str,
    action: str,
    status: str,
    version: str,
    token: str | None,
    language: str = "en",
) -> requests.Response:
    headers = {"Origin": base, "Accept-Language": language}
    if token:
        headers["X-CSRFToken"] = token
    return browser.post(
        f"{base}{action}", data={"status": status, "version": version}, headers=headers, timeout=30
    )


def test_alice_and_bob_never_see_each_others_items(served: list[str], taiga_back: TaigaBack) -> None:
    first, second = served
    alice, bob = _browser(first, "alice"), _browser(first, "bob")
    for base in (first, second, first):
        mine = unescape(card(alice, "tasks", base, until="task-row"))
        theirs = unescape(card(bob, "tasks", base, until="task-row"))
        assert "Task for alice" in mine and "for bob" not in mine and "Bob Private" not in mine
        assert "Task for bob" in theirs and "for alice" not in theirs and "Bob Private" in theirs
        calendar = unescape(card(alice, "deadlines", base, until="upcoming"))
        assert "for bob" not in calendar and "Private Sprint" not in calendar
    tasks = sum(
        1 for t in taiga_back.seed["tasks"] if t["assigned_to"] == "alice" and t["status"] != "Closed"
    )
    stories = sum(
        1 for s in taiga_back.seed["userstories"] if s["assigned_to"] == "alice" and s["status"] != "Done"
    )
    issues = sum(
        1 for i in taiga_back.seed["issues"] if i["assigned_to"] == "alice" and i["status"] != "Closed"
    )
    assert issues == 8  # four open issues in each of her two projects, now on her card too
    assert mine.count('<li class="task-row') == tasks + 26 + stories + issues  # with her 26 undated chores


def test_a_status_change_lands_in_taiga_with_the_right_version(
    served: list[str], taiga_back: TaigaBack, restore: Callable[[int], None]
) -> None:
    base = served[0]
    browser = _browser(base, "alice")
    seeded = _seeded(taiga_back, "alice", "due in 10 days")
    restore(seeded["id"])
    before = _task(taiga_back, seeded["id"])
    html = card(browser, "tasks", base, until="task-row")
    action, version, statuses = status_form(html, seeded["subject"])
    assert int(version) == before["version"]
    token = csrf_token(browser.get(f"{base}/", timeout=15).text)
    answer = _change(browser, base, action, statuses["Ready for test"], version, token)
    assert answer.status_code == 200 and "is now Ready for test." in answer.text
    assert status_shown(answer.text, seeded["subject"]) == "Ready for test"  # the card, fresh
    after = _task(taiga_back, seeded["id"])
    assert (
        after["status_extra_info"]["name"] == "Ready for test" and after["version"] == before["version"] + 1
    )
    there = card(browser, "tasks", served[1], until="task-row")  # the other worker, at once
    assert status_shown(there, seeded["subject"]) == "Ready for test"


def test_a_french_reader_sees_taigas_own_french_names_of_its_statuses(
    served: list[str], taiga_back: TaigaBack, restore: Callable[[int], None]
) -> None:
    """Taiga names its default statuses in the caller's language (the French Taiga says "En
    cours"); the card said "In progress" to a French team. Each language has its own catalogue,
    on one shared Redis, and neither reaches the other's readers."""
    first, second = served
    alice = _browser(first, "alice")
    seeded = _seeded(taiga_back, "alice", "due in 10 days")
    restore(seeded["id"])
    french = card(alice, "tasks", first, until="task-row", language="fr")
    action, version, statuses = status_form(french, seeded["subject"])
    assert {"Nouveau", "En cours", "Prêt à tester", "Fermé", "Infos manquantes"} <= set(statuses)
    assert status_shown(french, seeded["subject"]) == "Nouveau"
    english = card(_browser(second, "alice"), "tasks", second, until="task-row")
    assert status_shown(english, seeded["subject"]) == "New" and "En cours" not in english
    token = csrf_token(alice.get(f"{first}/", timeout=15).text)
    answer = _change(alice, first, action, statuses["Prêt à tester"], version, token, "fr")
    assert answer.status_code == 200 and "statut «\u00a0Prêt à tester\u00a0»." in unescape(answer.text)
    assert status_shown(answer.text, seeded["subject"]) == "Prêt à tester"
    assert _task(taiga_back, seeded["id"])["status_extra_info"]["name"] == "Ready for test"  # as stored
    # Sorted by status, the card keeps Taiga's workflow order in French too.
    by_status = card(alice, "tasks", first, until="task-row", language="fr", sort="status")
    shown = re.findall(r'class="status-tag__name"><bdi>(.*?)</bdi>', by_status)
    order = ["Nouveau", "En cours", "Prêt à tester", "Infos manquantes"]
    assert [order.index(name) for name in dict.fromkeys(shown)] == sorted(order.index(n) for n in set(shown))


def test_a_change_sent_again_after_its_answer_was_lost_is_done_not_a_conflict(
    served: list[str], taiga_back: TaigaBack, restore: Callable[[int], None]
) -> None:
    """The first change reached Taiga but its answer never reached the page; the person tries
    again, with the version the card still shows. The item already has that status: it is
    said done, not "someone else changed it", and Taiga was written once."""
    base = served[0]
    browser = _browser(base, "alice")
    seeded = _seeded(taiga_back, "alice", "due in 10 days")
    restore(seeded["id"])
    before = _task(taiga_back, seeded["id"])
    action, version, statuses = status_form(card(browser, "tasks", base, until="task-row"), seeded["subject"])
    token = csrf_token(browser.get(f"{base}/", timeout=15).text)
    assert _change(browser, base, action, statuses["Ready for test"], version, token).status_code == 200
    again = _change(browser, base, action, statuses["Ready for test"], version, token)
    assert again.status_code == 200 and "is now Ready for test." in again.text
    assert "was changed in Taiga after" not in again.text
    assert status_shown(again.text, seeded["subject"]) == "Ready for test"
    assert _task(taiga_back, seeded["id"])["version"] == before["version"] + 1


def test_a_change_made_in_taiga_first_is_a_conflict_shown_clearly(
    served: list[str], taiga_back: TaigaBack, restore: Callable[[int], None]
) -> None:
    base = served[0]
    browser = _browser(base, "alice")
    seeded = _seeded(taiga_back, "alice", "due in 2 days", "portal-beta")
    restore(seeded["id"])
    html = card(browser, "tasks", base, until="task-row")
    action, version, statuses = status_form(html, seeded["subject"])
    project = _task(taiga_back, seeded["id"])["project"]
    _set(
        taiga_back, "task", seeded["id"], status=_status_id(taiga_back, project, "Needs Info")
    )  # someone, in Taiga
    token = csrf_token(browser.get(f"{base}/", timeout=15).text)
    answer = _change(browser, base, action, statuses["In progress"], version, token)
    assert answer.status_code == 200
    assert "This item was changed in Taiga after your card showed it" in answer.text
    assert status_shown(answer.text, seeded["subject"]) == "Needs Info"
    assert _task(taiga_back, seeded["id"])["status_extra_info"]["name"] == "Needs Info"


@pytest.mark.parametrize(
    ("kind", "label", "project", "status"),
    [
        ("task", "due today", "portal-alpha", "In progress"),
        ("issue", "overdue by 2 days", "portal-alpha", "Rejected"),  # a project alice is in
        ("issue", "overdue by 2 days", "bob-private", "Rejected"),  # one she is not
    ],
)
def test_alice_forging_a_change_of_bobs_item_is_refused_and_taiga_unchanged(
    served: list[str], taiga_back: TaigaBack, kind: str, label: str, project: str, status: str
) -> None:
    base = served[0]
    browser = _browser(base, "alice")
    card(browser, "tasks", base, until="task-row")
    bobs = _seeded(taiga_back, "bob", label, project, kind=f"{kind}s")
    before = _task(taiga_back, bobs["id"], kind)
    token = csrf_token(browser.get(f"{base}/", timeout=15).text)
    other = _status_id(taiga_back, before["project"], status, kind)
    forged = _change(
        browser, base, f"/widgets/tasks/{kind}/{bobs['id']}/status", str(other), str(before["version"]), token
    )
    assert forged.status_code == 403 and "Only items assigned to you can be changed here." in forged.text
    after = _task(taiga_back, bobs["id"], kind)
    assert (after["status"], after["version"]) == (before["status"], before["version"])


def test_a_change_without_the_csrf_token_is_refused(served: list[str], taiga_back: TaigaBack) -> None:
    base = served[0]
    browser = _browser(base, "alice")
    seeded = _seeded(taiga_back, "alice", "due in 1 day")
    before = _task(taiga_back, seeded["id"])
    html = card(browser, "tasks", base, until="task-row")
    action, version, statuses = status_form(html, seeded["subject"])
    refused = _change(browser, base, action, statuses["Ready for test"], version, None)
    assert refused.status_code == 403 and "security token had expired" in refused.text
    assert _task(taiga_back, seeded["id"])["version"] == before["version"]


def _cell(html: str, day: date) -> str:
    cells = DAY_CELL.findall(html)
    return next(css for css, number in cells if int(number) == day.day and "is-outside" not in css)


def test_due_states_on_the_calendar_match_the_seeded_dates(served: list[str], taiga_back: TaigaBack) -> None:
    base = served[0]
    browser = _browser(base, "alice")
    seeded = date.fromisoformat(taiga_back.seed["today_utc"])
    # The portal's today (its zone is UTC here), not the seed's: a run just after midnight reads
    # data seeded the day before, when "due today" has become overdue.
    today = datetime.now(UTC).date()
    html = card(browser, "deadlines", base, until="upcoming", month=today.strftime("%Y-%m"))
    if datetime.now(UTC).date() != today:  # midnight passed during the read: read again
        today = datetime.now(UTC).date()
        html = card(browser, "deadlines", base, until="upcoming", month=today.strftime("%Y-%m"))
    for seed_offset in (-3, -1, 0, 1, 2, 10):  # days of alice's seeded items, from seed.py
        day = seeded + timedelta(days=seed_offset)
        offset = (day - today).days
        state = "is-overdue" if offset < 0 else "is-soon" if offset <= 2 else "is-later"
        if day.month != today.month:
            continue
        css = _cell(html, day)
        if state == "is-later":
            assert "is-overdue" not in css and "is-soon" not in css
        else:
            assert state in css, f"{day}: {css}"
    upcoming = unescape(html[html.index('id="deadlines-upcoming"') :])  # the list, not a day's details
    for task in taiga_back.seed["tasks"] + taiga_back.seed["issues"]:
        if task["assigned_to"] != "alice" or task["status"] == "Closed" or not task["due_date"]:
            continue
        offset = (date.fromisoformat(task["due_date"]) - today).days
        subject = task["subject"].translate(BIDI_CONTROLS)  # the card drops them (web/bidi.py)
        row = re.search(
            rf'<li class="upcoming__row is-(\w+)[^"]*">(?:(?!</li>).)*{re.escape(subject)}',
            upcoming,
            re.S,
        )
        if offset > 14:
            assert row is None
            continue
        assert row, task["subject"]
        assert row.group(1) == ("overdue" if offset < 0 else "soon" if offset <= 2 else "later")


def test_hostile_text_in_subjects_and_project_names_is_shown_as_text(
    served: list[str], taiga_back: TaigaBack, restore: Callable[[int], None]
) -> None:
    base = served[0]
    browser = _browser(base, "alice")
    seeded = _seeded(taiga_back, "alice", "due in 30 days")
    restore(seeded["id"])
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)> \u202eRTL\u202c ' + "long " * 60
    _set(taiga_back, "task", seeded["id"], subject=hostile)
    project = taiga_back.project("portal-alpha")
    headers = _admin(taiga_back)
    requests.patch(
        f"{taiga_back.url}projects/{project['id']}",
        json={"name": "<b>Alpha</b>&amp;\u05e9\u05dc\u05d5\u05dd"},
        headers=headers,
        timeout=15,
    ).raise_for_status()
    try:
        html = card(browser, "tasks", base, until="&lt;script&gt;")
        assert "&lt;script&gt;alert(" in html and "<script>" not in html and "<img src=x" not in html
        assert "&lt;b&gt;Alpha&lt;/b&gt;&amp;amp;" in html and "<b>Alpha" not in html
        calendar = card(browser, "deadlines", base, until="upcoming")
        assert "<script>" not in calendar and "<b>Alpha" not in calendar
    finally:
        requests.patch(
            f"{taiga_back.url}projects/{project['id']}",
            json={"name": project["name"]},
            headers=headers,
            timeout=15,
        ).raise_for_status()


# --- issues -------------------------------------------------------------------------------------


def test_the_board_holds_open_issues_and_their_statuses(taiga_back: TaigaBack) -> None:
    """The service account reads issues with the rest: open ones only, their workflow in the
    catalogue, and a stale version on an issue's status is a conflict."""
    client = _client(taiga_back)
    board = client.board()
    issues = [item for item in board.items if item.kind == "issue"]
    open_ones = [i for i in taiga_back.seed["issues"] if i["status"] != "Closed"]
    assert {i.id for i in issues} == {i["id"] for i in open_ones} and not board.truncated
    blocked = next(
        i for i in issues if i.subject.endswith("alice: due in 1 day") and i.project_slug == "portal-alpha"
    )
    assert blocked.is_blocked and blocked.blocked_note == "seeded: waiting for the **ops** team"
    assert blocked.due_date is not None and blocked.assignees == (taiga_back.user("alice")["id"],)
    names = [s.name for s in client.catalog().of("issue", blocked.project)]
    assert names == ["New", "In progress", "Ready for test", "Closed", "Needs Info", "Rejected", "Postponed"]
    french = [s.name for s in client.catalog("fr").of("issue", blocked.project)]  # as the simulator says
    assert french == [
        "Nouveau",
        "En cours",
        "Prêt à tester",
        "Fermé",
        "Infos manquantes",
        "Rejeté",
        "Repoussé",
    ]
    seeded = _seeded(taiga_back, "bob", "no due date", "portal-beta", kind="issues")
    fresh = client.item("issue", seeded["id"])
    other = _status_id(taiga_back, fresh.project, "Postponed", "issue")
    changed = client.set_status("issue", fresh.id, other, fresh.version)
    try:
        assert changed.version == fresh.version + 1 and changed.status_name == "Postponed"
        with pytest.raises(UpstreamConflict):
            client.set_status("issue", fresh.id, fresh.status, fresh.version)  # the version it had
    finally:
        _set(taiga_back, "issue", fresh.id, status=fresh.status)


def test_alice_never_sees_bobs_issues_and_her_own_show_as_issues(
    served: list[str], taiga_back: TaigaBack
) -> None:
    base = served[0]
    alice, bob = _browser(base, "alice"), _browser(base, "bob")
    mine = card(alice, "tasks", base, until="task-row")
    text = unescape(mine)
    assert "Issue for alice: overdue by 2 days" in text and "Issue for bob" not in text
    theirs = unescape(card(bob, "tasks", base, until="task-row"))
    assert "[Private] Issue for bob: due in 1 day" in theirs and "Issue for alice" not in theirs
    seeded = _seeded(taiga_back, "alice", "due in 1 day", kind="issues")
    row = row_of(mine, seeded["subject"])
    front = taiga_back.front_url.rstrip("/")
    assert (
        f'href="{front}/project/portal-alpha/issue/{seeded["ref"]}"' in row
        and f"Issue #{seeded['ref']}" in row
    )
    assert "<strong>ops</strong>" in row  # the blocked note, as Taiga renders its Markdown
    # The hostile subject is text: escaped, its bidi override dropped.
    assert "&lt;script&gt;alert(" in mine and "<script>" not in mine and "<img src=x" not in mine
    assert "\u202e" not in mine
    calendar = unescape(card(alice, "deadlines", base, until="upcoming"))
    assert seeded["subject"] in calendar and "Issue for bob" not in calendar


def _grade_ids(taiga_back: TaigaBack, path: str, project: int) -> dict[str, int]:
    """A project's issue types, severities or priorities, by their English names."""
    answer = requests.get(
        f"{taiga_back.url}{path}", params={"project": project}, headers=_admin(taiga_back), timeout=15
    )
    return {grade["name"]: grade["id"] for grade in answer.json()}


def test_a_critical_issue_of_high_priority_says_so_in_taigas_words(
    taiga_apps: Callable[..., Flask], taiga_back: TaigaBack
) -> None:
    """An issue made critical and of high priority in Taiga: alice's card says its severity and
    priority in Taiga's names and colours, in English and in Taiga's own French, and its type; a
    Normal one (Taiga's default) says neither."""
    seeded = _seeded(taiga_back, "alice", "no due date", kind="issues")
    normal = _seeded(taiga_back, "alice", "overdue by 2 days", kind="issues")
    before = _task(taiga_back, seeded["id"], "issue")
    severities = _grade_ids(taiga_back, "severities", before["project"])
    priorities = _grade_ids(taiga_back, "priorities", before["project"])
    _set(taiga_back, "issue", seeded["id"], severity=severities["Critical"], priority=priorities["High"])
    try:
        with serve(taiga_apps("portal:grades:")) as base:  # its own keys: no board read before
            alice = _browser(base, "alice")
            english = card(alice, "tasks", base, until="grade-tag")
            row = unescape(row_of(english, seeded["subject"]))
            assert "Severity: Critical" in row and "Priority: High" in row and ">Bug</bdi>" in row
            assert 'fill="#d35450"' in row  # Taiga's colour for Critical
            assert "grade-tag" not in row_of(english, normal["subject"])
            french = unescape(
                row_of(card(alice, "tasks", base, until="Critique", language="fr"), seeded["subject"])
            )
            assert "Gravité\u00a0: Critique" in french and "Priorité\u00a0: Fort" in french
    finally:
        _set(taiga_back, "issue", seeded["id"], severity=before["severity"], priority=before["priority"])


def _alices_issue(
    base: str, taiga_back: TaigaBack, restore: Callable[..., None], label: str, project: str
) -> tuple[requests.Session, dict[str, Any], str, str, dict[str, str], str]:
    """alice's browser, her seeded issue (put back after the test), its status form as her card
    shows it (action, version, statuses) and the page's CSRF token."""
    browser = _browser(base, "alice")
    seeded = _seeded(taiga_back, "alice", label, project, kind="issues")
    restore(seeded["id"], "issue")
    action, version, statuses = status_form(card(browser, "tasks", base, until="task-row"), seeded["subject"])
    token = csrf_token(browser.get(f"{base}/", timeout=15).text)
    return browser, seeded, action, version, statuses, token


def test_an_issues_status_change_lands_in_taiga_with_the_right_version(
    served: list[str], taiga_back: TaigaBack, restore: Callable[..., None]
) -> None:
    base = served[0]
    browser, seeded, action, version, statuses, token = _alices_issue(
        base, taiga_back, restore, "overdue by 2 days", "portal-beta"
    )
    before = _task(taiga_back, seeded["id"], "issue")
    assert (
        action.startswith(f"/widgets/tasks/issue/{seeded['id']}/status") and int(version) == before["version"]
    )
    assert "Postponed" in statuses  # the issue's own workflow
    answer = _change(browser, base, action, statuses["Postponed"], version, token)
    assert answer.status_code == 200 and "is now Postponed." in answer.text
    assert status_shown(answer.text, seeded["subject"]) == "Postponed"
    after = _task(taiga_back, seeded["id"], "issue")
    assert after["status_extra_info"]["name"] == "Postponed" and after["version"] == before["version"] + 1
    assert status_shown(card(browser, "tasks", served[1], until="task-row"), seeded["subject"]) == "Postponed"


def test_an_issue_changed_in_taiga_first_is_a_conflict_shown_clearly(
    served: list[str], taiga_back: TaigaBack, restore: Callable[..., None]
) -> None:
    base = served[0]
    browser, seeded, action, version, statuses, token = _alices_issue(
        base, taiga_back, restore, "no due date", "portal-alpha"
    )
    project = _task(taiga_back, seeded["id"], "issue")["project"]
    _set(taiga_back, "issue", seeded["id"], status=_status_id(taiga_back, project, "In progress", "issue"))
    answer = _change(browser, base, action, statuses["Ready for test"], version, token)
    assert answer.status_code == 200
    assert "This item was changed in Taiga after your card showed it" in answer.text
    assert status_shown(answer.text, seeded["subject"]) == "In progress"
    assert _task(taiga_back, seeded["id"], "issue")["status_extra_info"]["name"] == "In progress"
