"""The client reads the 64 real taiga-back answers in tests/peers/taiga-back/samples/, and the
simulator answers in the same shape (the same fields, headers and error bodies)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests

from portal.caching.codec import Codec
from portal.caching.widget_cache import fingerprint
from portal.upstreams.http import JsonResponse
from portal.widgets.taiga.client import (
    Board,
    Catalog,
    next_page,
    parse_grade,
    parse_item,
    parse_person,
    parse_project,
    parse_sprint,
    parse_status,
)
from portal.widgets.taiga.work import cut
from simulators import taiga
from simulators.base import SimServer
from simulators.taiga import TaigaWorld

from ..support.processes import ROOT

SAMPLES = ROOT / "tests" / "peers" / "taiga-back" / "samples"


def sample(name: str) -> tuple[int, dict[str, str], Any]:
    """(status, headers, decoded body) of a captured `curl -i` answer."""
    text = next(SAMPLES.glob(f"{name}*.txt")).read_text(encoding="utf-8")
    head, _, body = text[text.index("HTTP/1.1") :].partition("\n\n")
    lines = head.splitlines()
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, json.loads(body) if body.strip() else None


@pytest.fixture(scope="module")
def tracker() -> Iterator[tuple[SimServer, TaigaWorld]]:
    server, world = taiga.make_server()
    world.on_request(lambda w: None)
    server.start()
    yield server, world
    server.stop()


def test_every_recorded_list_parses() -> None:
    for name in ("10", "11", "16", "52"):
        _, _, tasks = sample(name)
        assert all(parse_item("task", raw).subject for raw in tasks)
    _, _, stories = sample("21")
    story = parse_item("us", stories[0])
    assert story.assignees == (6,) and story.sprint == "Alpha Sprint 2"
    _, _, sprints = sample("24")
    assert [parse_sprint(raw, {}).finish.isoformat() for raw in sprints] == [
        "2026-12-17",
        "2026-12-03",
        "2026-11-26",
    ]
    _, _, statuses = sample("26")
    assert [parse_status("task", raw).color for raw in statuses][:2] == ["#70728F", "#E47C40"]
    _, _, projects = sample("28")
    assert parse_project(projects[0]).members == (6, 7, 5)
    _, _, me = sample("08")
    assert parse_person(me).username == "alice"
    _, _, issues = sample("56")
    parsed = [parse_item("issue", raw) for raw in issues]
    assert {i.kind for i in parsed} == {"issue"} and all(i.assignees == (6,) for i in parsed)
    blocked = next(i for i in parsed if i.is_blocked)
    assert blocked.blocked_note == "seeded: waiting for the **ops** team" and blocked.sprint == ""
    assert blocked.uid == f"issue-{blocked.id}" and blocked.due_date is not None
    _, _, changed = sample("58")
    assert parse_item("issue", changed).status_name == "Ready for test"
    _, _, issue_statuses = sample("57")
    assert [parse_status("issue", raw).name for raw in issue_statuses][-2:] == ["Rejected", "Postponed"]
    grades = tuple(
        parse_grade(kind, raw)
        for kind, name in (("type", "61"), ("severity", "62"), ("priority", "63"))
        for raw in sample(name)[2]
    )
    catalog = Catalog(tuple(parse_status("issue", raw) for raw in issue_statuses), grades)
    alphas = [issue for issue in parsed if issue.project == grades[0].project]  # the grades read
    marked = {str([(grade.name, high) for grade, high in catalog.grades_of(issue)]) for issue in alphas}
    assert alphas and marked == {"[('Bug', False), ('Normal', False), ('Normal', False)]"}  # Taiga's defaults
    named = {(grade.kind, grade.name): grade.id for grade in grades}
    critical = replace(
        parsed[0],
        grades=(("severity", named["severity", "Critical"]), ("priority", named["priority", "High"])),
    )
    assert [(g.name, high) for g, high in catalog.grades_of(critical)] == [("Critical", True), ("High", True)]
    french = [parse_grade("severity", raw).name for raw in sample("64")[2]]  # Taiga's own French
    assert french == ["Souhaits", "Mineur", "Normal", "Important", "Critique"]
    assert french == [taiga.FRENCH_NAMES[g.name] for g in grades if g.kind == "severity"]


def test_a_boards_indexes_follow_its_fields_and_leave_its_fingerprint_and_stored_form_alone() -> None:
    """A board indexes its people and their items as it is made, so that each person's cut does
    not go through all of it; the index neither changes its fingerprint once cuts are made nor
    is stored (another worker rebuilds it as it reads the board)."""
    _, _, tasks = sample("10")
    _, _, stories = sample("21")
    _, _, projects = sample("28")
    _, _, me = sample("08")
    items = tuple(parse_item("task", raw) for raw in tasks) + tuple(parse_item("us", raw) for raw in stories)
    alice = parse_person(me)
    board = Board(items, (), (alice,), tuple(parse_project(raw) for raw in projects))
    assert board.person("ALICE") == alice and board.person("bob") is None
    mine = tuple(item for item in items if alice.id in item.assignees)
    assert mine and board.items_of(alice) == mine
    before = fingerprint(board)
    assert cut(board, "alice").items == mine
    assert fingerprint(board) == before
    codec = Codec("a-secret-of-the-portal-0123456789")
    stored = codec.dumps(board)
    assert b"items_at" not in stored and b"person_at" not in stored
    again = codec.loads(stored)  # as another worker reads it from Redis
    assert again == board and fingerprint(again) == before and again.items_of(alice) == mine


def test_pagination_headers_are_followed_by_page_number() -> None:
    _, first, _ = sample("10")
    _, last, _ = sample("11")
    assert next_page(JsonResponse(200, first, [])) == 2
    assert next_page(JsonResponse(200, last, [])) is None


def _login(base: str) -> dict[str, Any]:
    answer = requests.post(
        f"{base}/api/v1/auth",
        json={"type": "normal", "username": taiga.SERVICE_ACCOUNT[0], "password": taiga.SERVICE_ACCOUNT[2]},
        timeout=5,
    )
    answer.raise_for_status()
    found: dict[str, Any] = answer.json()
    return found


def test_the_simulator_answers_with_the_recorded_fields(tracker: tuple[SimServer, TaigaWorld]) -> None:
    server, _ = tracker
    login = _login(server.url)
    _, _, recorded_login = sample("01")
    assert {"auth_token", "refresh", "id", "username"} <= set(login) and set(login) - {"email"} <= set(
        recorded_login
    )
    bearer = {"Authorization": f"Bearer {login['auth_token']}"}
    recorded_lists = (
        ("tasks", "10"),
        ("userstories", "21"),
        ("issues", "56"),
        ("milestones", "24"),
        ("task-statuses", "26"),
        ("issue-statuses", "57"),
        ("issue-types", "61"),
        ("severities", "62"),
        ("priorities", "63"),
    )
    for path, name in recorded_lists:
        answer = requests.get(
            f"{server.url}/api/v1/{path}", headers=bearer, params={"page_size": 2}, timeout=5
        )
        _, _, recorded = sample(name)
        simulated = answer.json()[0]
        missing = set(recorded[0]) - set(simulated)
        assert not missing - {
            "user_stories",
            "points",
            "attachments",
            "client_requirement",
            "team_requirement",
            "generated_from_issue",
            "generated_from_task",
            "from_task_ref",
            "tribe_gig",
            "comment",
            "origin_issue",
            "origin_task",
            "epic_order",
            "total_attachments",
            "backlog_order",
            "sprint_order",
            "kanban_order",
        }, (path, missing)
        assert {"x-paginated", "x-paginated-by", "x-pagination-current"} <= {
            k.lower() for k in answer.headers
        }
    nothing = requests.get(f"{server.url}/api/v1/tasks", timeout=5)  # without a token: 200 and []
    assert nothing.status_code == 200 and nothing.json() == []
    me = requests.get(f"{server.url}/api/v1/users/me", timeout=5)
    assert me.status_code == 401 and me.json() == sample("44")[2]
    garbage = requests.get(f"{server.url}/api/v1/users/me", headers={"Authorization": "Bearer x"}, timeout=5)
    assert garbage.status_code == 401 and garbage.json() == sample("40")[2]
    past = requests.get(f"{server.url}/api/v1/tasks", headers=bearer, params={"page": 99}, timeout=5)
    assert past.status_code == 404 and past.json() == sample("12")[2]


def test_the_simulators_refresh_rotates_and_versions_conflict_as_recorded(
    tracker: tuple[SimServer, TaigaWorld],
) -> None:
    server, world = tracker
    login = _login(server.url)
    rotated = requests.post(
        f"{server.url}/api/v1/auth/refresh", json={"refresh": login["refresh"]}, timeout=5
    )
    assert rotated.status_code == 200 and set(rotated.json()) == set(sample("04")[2])
    reused = requests.post(f"{server.url}/api/v1/auth/refresh", json={"refresh": login["refresh"]}, timeout=5)
    assert (reused.status_code, reused.json()) == (401, sample("05")[2])
    bearer = {"Authorization": f"Bearer {rotated.json()['auth_token']}"}
    item = world.items["task"][2]
    url = f"{server.url}/api/v1/tasks/{item.id}"
    other = world.status_id("task", item.project, "In progress")
    assert requests.patch(url, json={"status": other, "version": item.version}, headers=bearer, timeout=5).ok
    stale = requests.patch(
        url, json={"status": other, "version": item.version - 1}, headers=bearer, timeout=5
    )
    assert (stale.status_code, stale.json()) == (400, sample("34")[2])
    merged = requests.patch(
        url, json={"subject": "other field", "version": item.version - 1}, headers=bearer, timeout=5
    )
    assert merged.status_code == 200  # a stale version on another field is merged, as Taiga does
    missing = requests.patch(url, json={"status": other}, headers=bearer, timeout=5)
    assert (missing.status_code, missing.json()) == (400, sample("36")[2])
    future = requests.patch(
        url, json={"status": other, "version": item.version + 5}, headers=bearer, timeout=5
    )
    assert (future.status_code, future.json()) == (400, sample("37")[2])


def test_the_simulators_issues_change_and_conflict_as_recorded(tracker: tuple[SimServer, TaigaWorld]) -> None:
    """Issues take a status with the version as tasks do; a status of another project is a 403
    for an issue (a 400 for a task), as the real taiga-back answers."""
    server, world = tracker
    bearer = {"Authorization": f"Bearer {_login(server.url)['auth_token']}"}
    issue = world.items["issue"][1]
    url = f"{server.url}/api/v1/issues/{issue.id}"
    ready = world.status_id("issue", issue.project, "Ready for test")
    changed = requests.patch(url, json={"status": ready, "version": issue.version}, headers=bearer, timeout=5)
    assert changed.ok and set(sample("58")[2]) - set(changed.json()) <= {
        "comment",
        "generated_user_stories",
        "blocked_note_html",
        "description",
        "description_html",
    }
    assert changed.json()["status_extra_info"]["name"] == "Ready for test"
    stale = requests.patch(
        url, json={"status": ready, "version": issue.version - 1}, headers=bearer, timeout=5
    )
    assert (stale.status_code, stale.json()) == (400, sample("59")[2])
    foreign = next(s.id for s in world.statuses["issue"].values() if s.project != issue.project)
    refused = requests.patch(
        url, json={"status": foreign, "version": issue.version}, headers=bearer, timeout=5
    )
    assert (refused.status_code, refused.json()) == (403, sample("60")[2])
    listed = requests.get(
        f"{server.url}/api/v1/issues", params={"status__is_closed": "false"}, headers=bearer, timeout=5
    ).json()
    assert {i["id"] for i in listed} == {i.id for i in world.items["issue"].values()}
    assert Path(SAMPLES).is_dir()
