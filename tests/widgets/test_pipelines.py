"""The pipelines widget: its GitLab client, and its card against the GitLab simulator.

Calls are counted at the simulator: the shared projects once for everyone, the per-user parts
once per user, details only for the pipelines shown and only when their status changes, and
nothing while a 429's Retry-After runs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import responses
import yaml
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import CollectorRegistry, generate_latest

from portal import create_app
from portal.auth.claims import from_cookie, to_cookie, user_from_claims
from portal.caching.widget_cache import CacheResult
from portal.identity import DEMO_USER
from portal.observability.metrics import PrometheusObserver
from portal.state import portal_state
from portal.upstreams.breaker import CircuitState
from portal.upstreams.errors import UpstreamAuthError, UpstreamBadResponse, UpstreamUnavailable
from portal.upstreams.http import HttpLimits, Quota, quota_of
from portal.widgets import serving
from portal.widgets.contract import Part, PartResult
from portal.widgets.pipelines import profile
from portal.widgets.pipelines.client import DETAILS_AT_ONCE, STATUSES, GitLabClient, next_page
from portal.widgets.pipelines.mine import cut_for
from portal.widgets.pipelines.profile import MENU_TRIES, avatar_allowed
from portal.widgets.pipelines.widget import GITLAB, PipelinesWidget, duration_text
from simulators import gitlab
from simulators.base import FAULT_MODES, SimServer
from simulators.gitlab import TOKEN, GitLabWorld, SimMergeRequest, SimPipeline, SimProject, demo_world, png

from ..conftest import SECRET
from ..support.clock import ViewClock
from ..support.processes import RedisServer
from ..support.spoken import announced, shown

BASE = "https://gitlab.example.com"
API = f"{BASE}/api/v4"
PROJECTS = ["platform/portal", "platform/infra", "apps/billing"]
Forge = tuple[SimServer, GitLabWorld]


# --- the client, against recorded payloads -------------------------------------------------------


def _client(**options: Any) -> GitLabClient:
    return GitLabClient(requests.Session(), BASE, {"token": "glpat-test"}, HttpLimits(timeout=2), **options)


@responses.activate
def test_client_reads_a_project_its_pipelines_and_their_details(fixture_json: Callable[[str], Any]) -> None:
    token = responses.matchers.header_matcher({"PRIVATE-TOKEN": "glpat-test"})
    responses.get(
        f"{API}/projects/platform%2Fportal", json=fixture_json("pipelines/project.json"), match=[token]
    )
    responses.get(f"{API}/projects/3/pipelines", json=fixture_json("pipelines/pipelines.json"), match=[token])
    responses.get(f"{API}/projects/3/pipelines/47", json=fixture_json("pipelines/pipeline-47.json"))
    responses.get(f"{API}/projects/3/pipelines/48", json=fixture_json("pipelines/pipeline-48.json"))
    responses.get(f"{API}/projects/3/pipelines/49", status=500, body="<html>oops</html>")

    found = _client().project_pipelines("platform/portal", 3)

    assert (found.project.path, found.project.default_branch) == ("platform/portal", "main")
    assert [p.id for p in found.recent] == [49, 48, 47]
    assert found.latest is not None and found.latest.id == 49  # the newest on main: no second list
    unknown, running, passed = found.recent
    assert (unknown.status, unknown.known_status, unknown.detail) == ("exploding", "unknown", None)
    assert running.known_status == "running" and running.detail and running.detail.duration is None
    assert running.detail.user and running.detail.user.username == "camille"
    assert passed.detail and passed.detail.duration == 219 and passed.detail.user
    assert passed.detail.user.name == "Administrator" and passed.project == "platform/portal"
    listed = [c.request for c in responses.calls if c.request.url and "/pipelines?" in c.request.url]
    assert "per_page=3" in (listed[0].url or "") and "order_by=id" in (listed[0].url or "")


@responses.activate
def test_the_teams_work_is_read_once_for_everyone_and_cut_per_person(
    fixture_json: Callable[[str], Any],
) -> None:
    """No call names a person: each project's latest pipelines (with who ran them) and its open
    merge requests (with their reviewers and assignees) are read once, and each person's Mine is
    cut from them."""
    window = responses.matchers.query_param_matcher(
        {"order_by": "id", "sort": "desc", "per_page": "50", "page": "1"}
    )
    responses.get(
        f"{API}/projects/platform%2Fportal/pipelines",
        json=fixture_json("pipelines/pipelines.json"),
        match=[window],
    )
    responses.get(f"{API}/projects/3/pipelines/47", json=fixture_json("pipelines/pipeline-47.json"))
    responses.get(f"{API}/projects/3/pipelines/48", json=fixture_json("pipelines/pipeline-48.json"))
    responses.get(f"{API}/projects/3/pipelines/49", status=500, body="<html>oops</html>")
    opened = responses.matchers.query_param_matcher(
        {"state": "opened", "order_by": "created_at", "sort": "desc", "per_page": "100", "page": "1"}
    )
    responses.get(
        f"{API}/projects/platform%2Fportal/merge_requests",
        json=fixture_json("pipelines/merge-requests.json"),
        match=[opened],
        headers={"X-Next-Page": ""},
    )
    # !12's head commit ran pipeline 48 (read with the list); !9's is not among them: its detail.
    responses.get(f"{API}/projects/3/merge_requests/9", json={"id": 80, "iid": 9, "head_pipeline": None})

    team = _client().team_work(["platform/portal"], 50)

    assert [p.id for p in team.pipelines] == [49, 48, 47] and team.window == 50
    assert not any("username" in (call.request.url or "") for call in responses.calls)
    camille = cut_for(team, "camille", pipelines=8, reviews=10)
    assert [p.id for p in camille.pipelines.pipelines] == [48]  # 47 is root's; 49's detail failed
    assert camille.pipelines.unattributed == 1  # 49: who ran it is not known yet
    first, second = camille.reviews.merge_requests
    assert (first.reference, first.title, first.draft) == (
        "platform/portal!12",
        "Cache the pipelines per status",
        False,
    )
    assert first.reviewer and not first.assignee and first.author and first.author.username == "dominique"
    assert first.pipeline_status == "running"  # from pipeline 48: no detail call for !12
    assert second.draft and second.reviewer and not second.assignee  # GitLab < 14: work_in_progress
    assert second.pipeline_status is None and not camille.reviews.more
    dominique = cut_for(team, "Dominique", pipelines=8, reviews=10)  # GitLab's usernames ignore case
    assert [(m.iid, m.reviewer, m.assignee) for m in dominique.reviews.merge_requests] == [(12, False, True)]
    assert dominique.pipelines.pipelines == ()
    assert not any(call.request.url and "merge_requests/12" in call.request.url for call in responses.calls)


class _Memo(dict[str, Any]):
    """The portal's store, as the client sees it."""

    def set(self, key: str, value: Any, timeout: float) -> None:
        self[key] = value


@responses.activate
def test_a_retried_pipeline_shows_its_new_run_not_the_first_ones_detail() -> None:
    """Retried, a pipeline goes failed, running, failed again: the same id and status, with a new
    update time, finish and duration. Its detail is read again, not the first run's kept one."""

    def run(finished: str, duration: int) -> None:
        listed = {"id": 47, "project_id": 3, "status": "failed", "ref": "main", "updated_at": finished}
        detail = {**listed, "finished_at": finished, "duration": duration}
        responses.replace(responses.GET, f"{API}/projects/platform%2Fportal/pipelines", json=[listed])
        responses.replace(responses.GET, f"{API}/projects/3/pipelines/47", json=detail)

    responses.get(f"{API}/projects/platform%2Fportal/pipelines", json=[])
    responses.get(f"{API}/projects/3/pipelines/47", json={})
    responses.get(f"{API}/projects/platform%2Fportal/merge_requests", json=[])
    client = _client(memo=_Memo())
    run("2026-08-11T11:32:35Z", 219)
    first = client.team_work(["platform/portal"], 5).pipelines[0]
    run("2026-08-11T12:10:02Z", 95)  # the retry, failed again
    again = client.team_work(["platform/portal"], 5).pipelines[0]
    assert first.detail and first.detail.duration == 219
    assert again.detail and again.detail.duration == 95
    assert again.detail.finished_at and again.detail.finished_at.hour == 12
    client.team_work(["platform/portal"], 5)  # unchanged: kept, not read again
    assert sum(1 for c in responses.calls if (c.request.url or "").endswith("/pipelines/47")) == 2


@responses.activate
def test_a_429_among_the_windows_details_stops_the_calls_not_yet_made() -> None:
    """Details are read a few at a time; once GitLab says to wait, no further call is made."""
    listed = [
        {"id": n, "project_id": 3, "status": "success", "ref": "main", "sha": f"{n:040x}"} for n in range(30)
    ]
    responses.get(f"{API}/projects/platform%2Fportal/pipelines", json=listed)
    responses.get(f"{API}/projects/platform%2Fportal/merge_requests", json=[])
    responses.get(
        re.compile(rf"{re.escape(API)}/projects/3/pipelines/\d+"),
        status=429,
        body="Retry later",
        headers={"Retry-After": "30"},
    )
    with pytest.raises(UpstreamUnavailable) as waiting:
        _client().team_work(["platform/portal"], 30)
    assert waiting.value.retry_after == 30
    details = [c for c in responses.calls if re.search(r"/pipelines/\d+$", c.request.url or "")]
    assert 1 <= len(details) <= DETAILS_AT_ONCE  # only those already under way


def test_the_next_page_comes_from_x_next_page_or_link() -> None:
    assert next_page({"X-Next-Page": "3"}) == 3
    assert next_page({"X-Next-Page": ""}) is None  # the last page
    link = '<https://gitlab.example.com/api/v4/merge_requests?page=4&per_page=20>; rel="next"'
    assert next_page({"Link": link}) == 4  # above 10,000 records: Link only
    assert next_page({}) is None


@responses.activate
def test_client_maps_upstream_errors_to_words() -> None:
    responses.get(f"{API}/projects/nope%2Fnope", status=404, json={"message": "404 Project Not Found"})
    responses.get(f"{API}/projects/secret%2Fproject", status=403, json={"message": "403 Forbidden"})
    responses.get(f"{API}/users", status=401, json={"message": "401 Unauthorized"})
    # A project GitLab does not show is an answer (the card says it there), not a failure of GitLab.
    missing = _client().project_pipelines("nope/nope", 5)
    assert str(missing.problem) == "GitLab has no project nope/nope, or the portal's token may not read it"
    assert missing.project is None and missing.recent == ()
    forbidden = _client().project_pipelines("secret/project", 5)
    assert (
        str(forbidden.problem)
        == "GitLab does not let the portal's token read project secret/project (HTTP 403)"
    )
    with pytest.raises(UpstreamAuthError):  # the token itself refused: that is a failure
        _client().user("camille")


@responses.activate
def test_a_redirect_elsewhere_is_that_projects_answer_and_never_followed() -> None:
    """Only GitLab's own answer for a moved project is followed (by id, on GitLab's origin): a
    redirect to another host, or to a page that is not the project by id, is that project's note,
    and the token never leaves GitLab."""
    elsewhere = {"Location": "https://evil.example/api/v4/projects/3"}
    responses.get(f"{API}/projects/platform%2Fportal", status=301, headers=elsewhere)
    responses.get(f"{API}/projects/platform%2Fportal/pipelines", status=301, headers=elsewhere)
    sign_in = {"Location": "/users/sign_in"}  # same origin, but not the project by id
    responses.get(f"{API}/projects/apps%2Fbilling", status=302, headers=sign_in)
    responses.get(f"{API}/projects/apps%2Fbilling/pipelines", status=302, headers=sign_in)
    responses.get(f"{API}/projects/platform%2Finfra/pipelines", json=[])
    responses.get(f"{API}/projects/platform%2Finfra/merge_requests", json=[])

    found = _client().project_pipelines("platform/portal", 5)
    assert found.project is None and not found.moved
    assert str(found.problem) == (
        "GitLab answered project platform/portal with a redirect the portal does not follow (HTTP 301)"
    )
    assert "HTTP 302" in str(_client().project_pipelines("apps/billing", 5).problem)
    team = _client().team_work(["platform/portal", "platform/infra", "apps/billing"], 5)
    assert team.unreadable == ("platform/portal", "apps/billing")  # Mine survives, and says which
    assert all(call.request.url.startswith(BASE) for call in responses.calls)  # type: ignore[union-attr]


def test_a_moved_project_is_read_by_its_id_and_said_moved(
    forge: Forge, caplog: pytest.LogCaptureFixture
) -> None:
    """GitLab 16.7+ answers a project's old path with a 301 to the same call by id: the client
    reads the project by id (once), says it moved (in the log once an hour), and everyone's Mine
    keeps its pipelines."""
    server, world = forge
    world.rename(101, "platform/portal-ng")
    answer = requests.get(
        f"{server.url}/api/v4/projects/platform%2Fportal/pipelines?per_page=5",
        headers={"PRIVATE-TOKEN": TOKEN},
        allow_redirects=False,
        timeout=3,
    )
    assert answer.status_code == 301
    assert answer.headers["Location"] == f"{server.url}/api/v4/projects/101/pipelines?per_page=5"
    client = GitLabClient(requests.Session(), server.url, {"token": TOKEN}, HttpLimits(timeout=3))

    found = client.project_pipelines("platform/portal", 5)

    assert found.moved and found.problem is None and found.project is not None
    assert found.project.path == "platform/portal-ng" and found.recent
    said = [r for r in caplog.records if getattr(r, "event", "") == "gitlab_project_moved"]
    assert said and said[0].levelname == "WARNING" and said[0].path == "platform/portal-ng"  # type: ignore[attr-defined]
    again = client.project_pipelines("platform/portal", 5)  # the card's next refresh, 30 s on
    assert again.moved  # still said on the card, at each refresh
    said = [r for r in caplog.records if getattr(r, "event", "") == "gitlab_project_moved"]
    assert len(said) == 1  # and once an hour in the log, not twice a minute
    team = client.team_work(PROJECTS, 50)
    assert team.unreadable == () and any(p.project_id == 101 for p in team.pipelines)
    assert {m.project_id for m in team.merge_requests} >= {101}
    assert server.count("/api/v4/projects/101/pipelines") >= 2  # followed by id, for both parts


def test_a_moved_project_says_so_on_the_card_and_mine_is_whole(
    make_gitlab_app: Callable[..., Flask], forge: Forge
) -> None:
    _, world = forge
    world.rename(101, "platform/portal-ng")
    html = _card(_as(make_gitlab_app()), until="Merge requests")
    assert "HTTP 301" not in html and 'class="widget-content is-ok"' in html
    section = re.search(r"<bdi>platform/portal-ng</bdi></a></h4>.*?</section>", html, re.S)
    assert section and (
        "GitLab moved this project from platform/portal to platform/portal-ng: write its new path in"
        " widgets.pipelines.projects of the portal configuration." in section.group(0)
    )
    mine = _mine(html)
    assert "Not shown" not in mine and "Cache Redis partagé entre les réplicas" in mine  # !42, in 101
    assert "platform/portal-ng" in mine  # camille's pipelines there


def test_an_archived_project_says_so_on_the_card_in_both_languages(
    make_gitlab_app: Callable[..., Flask], forge: Forge
) -> None:
    """A project archived in GitLab keeps its last pipelines on the card, which looked like a
    quiet project: it now says it is read-only and that no pipeline will come."""
    _, world = forge
    world.projects[102].archived = True
    client = _as(make_gitlab_app())
    html = _card(client, until="Merge requests")
    archived = re.search(r"<bdi>platform/infra</bdi></a></h4>.*?</section>", html, re.S)
    assert archived and "Archived in GitLab: read-only, no new pipeline will come." in archived.group(0)
    assert "#archive" in archived.group(0)
    others = re.search(r"<bdi>platform/portal</bdi></a></h4>.*?</section>", html, re.S)
    assert others and "Archived" not in others.group(0)
    french = _card(client, "fr", until="fusion")
    assert "Archivé dans GitLab\u00a0: en lecture seule" in french


@responses.activate
def test_an_avatar_must_be_an_image_whose_bytes_agree_and_small() -> None:
    url = f"{BASE}/uploads/avatar.png"
    responses.get(url, body=png((10, 20, 30)), content_type="image/png")
    assert _client().avatar(url, 10_000).content_type == "image/png"
    for body, kind in [
        (b"<svg onload=alert(1)>", "image/svg+xml"),
        (b"<html>", "image/png"),
        (b"x", "text/html"),
    ]:
        responses.replace(responses.GET, url, body=body, content_type=kind)
        with pytest.raises(UpstreamBadResponse):
            _client().avatar(url, 10_000)
    responses.replace(responses.GET, url, body=png((1, 2, 3), size=200), content_type="image/png")
    with pytest.raises(UpstreamBadResponse, match="larger than"):
        _client().avatar(url, 1_000)
    assert avatar_allowed(f"{BASE}/uploads/a.png", BASE, ())
    assert not avatar_allowed("https://evil.example/a.png", BASE, ())
    assert not avatar_allowed("http://secure.gravatar.com/a.png", BASE, ("secure.gravatar.com",))
    assert avatar_allowed("https://secure.gravatar.com/a.png", BASE, ("secure.gravatar.com",))
    # Origins compared as the client compares them before sending its token: the host's case and
    # a default port written out do not matter; another port or scheme is another origin.
    assert avatar_allowed("https://Secure.Gravatar.com:443/a.png", BASE, ("secure.gravatar.com",))
    assert avatar_allowed("https://secure.gravatar.com/a.png", BASE, ("Secure.Gravatar.com",))
    assert not avatar_allowed("https://secure.gravatar.com:8443/a.png", BASE, ("secure.gravatar.com",))


# --- the client, against the simulator -------------------------------------------------------------


@pytest.fixture
def forge() -> Iterator[Forge]:
    """The demo's GitLab, its clock pinned (`world.moment["t"]` moves it)."""
    moment = {"t": time.time()}
    world = demo_world(clock=lambda: moment["t"])
    world.moment = moment  # type: ignore[attr-defined]
    server, _ = gitlab.make_server(world)
    server.start()
    yield server, world
    server.stop()


def test_lists_are_followed_page_by_page_up_to_the_cap(forge: Forge) -> None:
    server, world = forge
    for number in range(45):
        change = SimMergeRequest(
            1000 + number, 500 + number, 101, f"Change {number}", "alex", "b", ["camille"]
        )
        world.add_merge_request(change)
    client = GitLabClient(
        requests.Session(), server.url, {"token": TOKEN}, HttpLimits(timeout=3), page_size=20
    )
    team = client.team_work(["platform/portal"], 5)
    reviews = cut_for(team, "camille", pipelines=8, reviews=100).reviews
    assert len(team.merge_requests) == 47 and not team.more_requests  # the 45 and the demo's 2 there
    assert len(reviews.merge_requests) == 46 and not reviews.more  # 45 + one the demo has her review
    assert server.count("/api/v4/projects/platform%2Fportal/merge_requests") == 3  # 20 + 20 + 7

    server.reset()
    capped = GitLabClient(
        requests.Session(), server.url, {"token": TOKEN}, HttpLimits(timeout=3), page_size=20, max_pages=2
    )
    team = capped.team_work(["platform/portal"], 5)
    reviews = cut_for(team, "camille", pipelines=8, reviews=100).reviews
    assert len(team.merge_requests) == 40 and team.more_requests  # 2 pages: there are more in GitLab
    assert len(reviews.merge_requests) == 39 and reviews.more
    assert server.count("/api/v4/projects/platform%2Fportal/merge_requests") == 2


def test_a_429_says_how_long_to_wait_and_its_quota_is_reported(forge: Forge) -> None:
    server, world = forge
    quotas: list[Quota] = []
    client = GitLabClient(
        requests.Session(), server.url, {"token": TOKEN}, HttpLimits(timeout=3), on_quota=quotas.append
    )
    assert client.user("camille") is not None
    assert quotas[-1].limit == gitlab.RATE_LIMIT and quotas[-1].remaining == gitlab.RATE_LIMIT - 1
    world.throttle(7)
    with pytest.raises(UpstreamUnavailable) as throttled:
        client.user("camille")
    assert throttled.value.status == 429 and throttled.value.retry_after == 7
    assert throttled.value.outcome == "throttled"
    assert str(throttled.value) == "GitLab is limiting the portal's requests (HTTP 429)"
    assert quotas[-1].remaining == 0


def test_rate_limit_headers_become_metrics() -> None:
    assert quota_of({"RateLimit-Limit": "2000", "RateLimit-Remaining": "1999"}) == Quota(2000, 1999)
    assert quota_of({"Content-Type": "application/json"}) is None
    registry = CollectorRegistry()
    PrometheusObserver(registry, widgets=["pipelines"], upstreams=["gitlab"]).upstream_quota(
        "gitlab", Quota(2000, 12)
    )
    text = generate_latest(registry).decode()
    assert 'portal_upstream_ratelimit_remaining{upstream="gitlab"} 12.0' in text
    assert 'portal_upstream_ratelimit_limit{upstream="gitlab"} 2000.0' in text


def test_the_token_is_sent_and_never_shown(forge: Forge) -> None:
    server, _ = forge
    wrong = GitLabClient(requests.Session(), server.url, {"token": "glpat-wrong"}, HttpLimits(timeout=3))
    with pytest.raises(UpstreamAuthError) as refused:
        wrong.user("camille")
    assert "glpat" not in str(refused.value) and "glpat" not in refused.value.detail


# --- the card ----------------------------------------------------------------------------------------


@pytest.fixture
def make_gitlab_app(portal_config: dict[str, Any], forge: Forge) -> Callable[..., Flask]:
    """The example configuration with GitLab pointed at the simulator; `widget` changes its card."""

    def build(
        changes: Callable[[dict[str, Any]], None] | None = None, redis_url: str | None = None, **widget: Any
    ) -> Flask:
        config = yaml.safe_load(yaml.safe_dump(portal_config))
        config["upstreams"]["gitlab"] = {"url": forge[0].url, "timeout": 1.5, "breaker_backoff": 1}
        config["widgets"]["pipelines"].update({"ttl": 30, "refresh": 30, **widget})
        if redis_url:
            config["cache"]["redis_url"] = redis_url
        if changes:
            changes(config)
        env = {"PORTAL_SECRET_KEY": SECRET, "PORTAL_GITLAB_TOKEN": TOKEN}
        return create_app({"TESTING": True, "PORTAL": config, "ENV": env})

    return build


def _as(app: Flask, username: str = "camille") -> FlaskClient:
    client = app.test_client()
    assert client.get(f"/auth/demo-user/{username}").status_code == 303
    return client


def _card(client: FlaskClient, language: str = "en", until: str = "") -> str:
    """The card as the browser gets it, polled again while a part is still loading."""
    html = ""
    for _ in range(60):
        html = client.get("/widgets/pipelines", headers={"Accept-Language": language}).get_data(as_text=True)
        if 'data-poll="soon"' not in html and until in html:
            return html
        time.sleep(0.1)
    return html


def _mine(html: str) -> str:
    """The Mine panel of a card."""
    found = re.search(r'id="pipelines-panel-mine".*', html, re.S)
    assert found, "no Mine panel"
    return found.group(0)


def _details(server: SimServer) -> int:
    """Detail calls of pipelines so far."""
    return sum(n for path, n in server.calls.items() if re.search(r"/pipelines/\d+$", path))


def test_a_merge_requests_pipeline_is_named_as_gitlab_names_it_and_a_nightly_run_says_so(
    make_gitlab_app: Callable[..., Flask], forge: Forge
) -> None:
    """GitLab runs a merge request's pipeline on refs/merge-requests/42/head and shows it as
    "!42"; a run of a schedule is on its branch like a push, and only its source tells them apart."""
    _, world = forge
    world.add_project(SimProject(105, "qa/sources", "sources"))
    now = world.clock()
    for number, (ref, source) in enumerate(
        [("refs/merge-requests/42/head", "merge_request_event"), ("main", "schedule"), ("main", "push")]
    ):
        world.add_pipeline(
            SimPipeline(800 + number, number, 105, ref, "alex", now - 60 * number, source=source)
        )
    html = _card(_as(make_gitlab_app(projects=["qa/sources"], recent=5)))
    rows = dict(re.findall(r'data-key="(pipeline-\d+)">(.*?)</li>', html, re.S))
    assert (
        "<bdi>!42</bdi>" in rows["pipeline-800"]
        and 'title="refs/merge-requests/42/head"' in rows["pipeline-800"]
    )
    assert "for a merge request" in rows["pipeline-800"]
    assert "from a schedule" in rows["pipeline-801"] and "<bdi>main</bdi>" in rows["pipeline-801"]
    assert "schedule" not in rows["pipeline-802"] and "merge request" not in rows["pipeline-802"]
    french = _card(_as(make_gitlab_app(projects=["qa/sources"], recent=5)), language="fr")
    assert "lancé par une planification" in french and "pour une demande de fusion" in french


def test_every_status_and_an_unknown_one_by_icon_colour_and_word(
    make_gitlab_app: Callable[..., Flask], forge: Forge
) -> None:
    _, world = forge
    world.add_project(SimProject(104, "qa/statuses", "statuses"))
    now = world.clock()
    for index, status in enumerate([*STATUSES, "exploding"]):
        world.add_pipeline(
            SimPipeline(600 + index, index, 104, f"ref-{status}", "alex", now - 600 + index, fixed=status)
        )
    # GitLab's status stays "success"; its detail says "passed with warnings".
    warned = SimPipeline(700, 99, 104, "ref-warned", "alex", now - 700, fixed="success", warnings=True)
    world.add_pipeline(warned)
    html = _card(_as(make_gitlab_app(projects=["qa/statuses"], recent=20)))
    expected = {
        "created": ("neutral", "circle", "Created"),
        "waiting_for_resource": ("pending", "hourglass", "Waiting for resource"),
        "preparing": ("pending", "loader", "Preparing"),
        "pending": ("pending", "clock", "Pending"),
        "running": ("running", "loader", "Running"),
        "success": ("success", "check", "Passed"),
        "failed": ("failed", "x", "Failed"),
        "canceled": ("neutral", "ban", "Canceled"),
        "canceling": ("neutral", "ban", "Canceling"),
        "skipped": ("neutral", "skip", "Skipped"),
        "manual": ("manual", "play", "Manual"),
        "scheduled": ("manual", "calendar", "Scheduled"),
        "waiting_for_callback": ("pending", "hourglass", "Waiting for callback"),
        "exploding": ("unknown", "question", "Unknown status"),
        "warned": ("warning", "alert", "Passed with warnings"),
    }
    for status, (css, glyph, word) in expected.items():
        row = re.search(rf'<li class="pipeline-row is-{css}"[^>]*>(?:(?!</li>).)*ref-{status}<', html, re.S)
        assert row, f"{status}: no row of class is-{css}"
        assert f"#{glyph}" in row.group(0) and f"<span>{word}</span>" in row.group(0), status
    assert "GitLab says: exploding" in html  # the unknown status says what GitLab said


def test_passed_with_warnings_shows_on_a_branch_a_row_and_a_merge_request(
    make_gitlab_app: Callable[..., Flask], forge: Forge
) -> None:
    """A success whose detail says "passed with warnings" is drawn as such wherever a pipeline's
    state shows: the default branch, the rows, a merge request's head pipeline; in French too."""
    _, world = forge
    world.add_project(SimProject(105, "qa/warned", "warned"))
    world.add_pipeline(SimPipeline(710, 1, 105, "main", "alex", world.clock() - 600, warnings=True))
    world.pipelines[5003].warnings = True  # the head pipeline of !42, which camille reviews
    app = make_gitlab_app(projects=[*PROJECTS, "qa/warned"])
    html = _card(_as(app), until="Merge requests")
    branch = re.search(r"<bdi>qa/warned</bdi></a></h4>.*?</p>", html, re.S)  # its default branch
    assert branch and '<span class="pipeline-badge is-warning">' in branch.group(0)
    assert "<span>Passed with warnings</span>" in branch.group(0)
    assert re.search(r'<li class="pipeline-row is-warning" data-key="pipeline-710">', html)
    review = re.search(r'<li class="review-row"[^>]*>(?:(?!</li>).)*Cache Redis partagé', _mine(html), re.S)
    assert review and "<span>Passed with warnings</span>" in review.group(0)
    french = _card(_as(app), "fr", until="Demandes de fusion")
    assert "<span>Réussi avec avertissements</span>" in french


def test_the_card_shows_projects_and_mine_with_details(
    make_gitlab_app: Callable[..., Flask], forge: Forge
) -> None:
    server, _ = forge
    html = _card(_as(make_gitlab_app()), until="Merge requests")
    assert 'role="tablist"' in html and 'aria-selected="true"' in html and 'id="pipelines-panel-mine"' in html
    for path in PROJECTS:
        assert f"<bdi>{path}</bdi>" in html
    assert "Camille Demo" in html and "2 min 30 sec" in html  # from the details: who, how long
    # Its moments as they are, for the page to write relative to its clock ("5 min ago").
    assert re.search(r'<time datetime="2\d{3}-[^"]+" title="[^"]+" data-ago>', html)
    assert 'data-label="opened {time}"' in html
    # A finished pipeline says when it finished, as GitLab does (its creation read "1 h ago" for a
    # run that had ended a minute before); one with no detail yet, when it was created.
    finished = re.search(
        r'<time datetime="([^"]+)" title="[^"]+" data-ago data-label="finished \{time\}">', html
    )
    assert finished and finished.group(1).startswith("2")
    mine = _mine(html)
    assert "Cache Redis partagé entre les réplicas" in mine and "Factures en PDF" in mine
    assert "Draft" in mine and "reviewer" in mine and "assignee" in mine  # camille is assigned the Helm one
    assert "Journal d&#39;audit" not in mine  # dominique's review, not camille's
    # A long project path gives way, never the merge request's number nor the pipeline's ref.
    assert (
        '<span class="review-row__path">platform/portal</span><span class="review-row__iid">!42</span>'
        in mine
    )
    assert re.search(r'<span class="pipeline-row__title"><a [^>]*><bdi>main</bdi></a>', mine)
    assert server.count("/api/v4/projects/platform%2Fportal/pipelines") == 1  # the team's, read once


def test_more_merge_requests_than_shown_are_counted_and_found_in_gitlab(
    make_gitlab_app: Callable[..., Flask], forge: Forge
) -> None:
    """Thirteen wait for camille (the demo's three and ten more) and the card shows two: its tab
    says thirteen, the list says which it shows, and GitLab's own lists are one click away (the
    reviewer's and the assignee's)."""
    _, world = forge
    for number in range(10):
        change = SimMergeRequest(
            2000 + number, 600 + number, 101, f"Change {number}", "alex", "b", ["camille"]
        )
        world.add_merge_request(change)
    html = _card(_as(make_gitlab_app(reviews=2)), until="Merge requests")
    mine = _mine(html)
    assert "13 merge requests for you" in html and ">13 for you</span>" in html
    assert mine.count('class="review-row" data-key=') == 2 and "The latest 2 of 13." in mine
    gitlab = world.base_url
    assert f'href="{gitlab}/dashboard/merge_requests?state=opened&amp;reviewer_username=camille"' in mine
    assert f'href="{gitlab}/dashboard/merge_requests?state=opened&amp;assignee_username=camille"' in mine


def test_more_of_my_pipelines_than_shown_are_counted_and_found_in_gitlab(
    make_gitlab_app: Callable[..., Flask], forge: Forge
) -> None:
    """Past the card's cap, My pipelines says how many more there are and links to GitLab's
    pipelines of each of the person's projects, filtered by who ran them."""
    _, world = forge
    now = world.clock()
    for number in range(6):  # six more of camille's, on apps/billing
        world.add_pipeline(SimPipeline(6_100 + number, 700 + number, 103, "develop", "camille", now - 5000))
    mine = _mine(_card(_as(make_gitlab_app(mine=3)), until="Merge requests"))
    listed = re.search(r'<ul class="pipeline-list">.*?</ul>', mine.split("My pipelines", 1)[1], re.S)
    assert listed and listed.group(0).count("<li ") == 3
    counted = re.search(r"(\d+) more not shown: the latest 3 of (\d+)\.", mine)
    assert counted and int(counted.group(2)) >= 3 + 6 and int(counted.group(1)) == int(counted.group(2)) - 3
    for path in ("platform/portal", "apps/billing"):
        page = f"{world.base_url}/{path}/-/pipelines?username=camille"
        assert f'<a href="{page}" rel="noopener"><bdi>{path}</bdi></a>' in mine
    french = _mine(_card(_as(make_gitlab_app(mine=3)), "fr", until="Demandes de fusion"))
    assert (
        "autres non affichés\u00a0: les 3 plus récents sur" in french
        and "Tous les vôtres dans GitLab" in french
    )
    assert "more not shown" not in _mine(_card(_as(make_gitlab_app(mine=50)), until="Merge requests"))


def test_many_projects_show_the_first_eight_and_every_failing_one_the_rest_on_demand(
    make_gitlab_app: Callable[..., Flask], forge: Forge
) -> None:
    """Twelve projects, the tenth failing on its default branch: ten shown, two behind the toggle."""
    _, world = forge
    paths = []
    for number in range(12):
        project = world.add_project(
            SimProject(300 + number, f"team/service-{number:02d}", f"service-{number:02d}")
        )
        final = "failed" if number == 9 else "success"
        world.add_pipeline(
            SimPipeline(8_000 + number, 1, project.id, "main", "camille", world.clock() - 900, final)
        )
        paths.append(project.path)
    html = _card(_as(make_gitlab_app(projects=paths)), until="Merge requests")
    first, _, rest = html.partition('<details class="more-rows" id="pipelines-more-projects">')
    assert first.count('<section class="pipeline-project') == 10 and "team/service-09" in first
    assert rest.count('<section class="pipeline-project') == 2 and "Show 2 more projects</span>" in rest
    # Said to a screen reader by name: which default branch fails.
    assert announced(html).startswith("Pipelines: 1 default branch failing (team/service-09), ")


def test_a_missing_project_shows_its_own_problem_and_the_others_show(
    make_gitlab_app: Callable[..., Flask], forge: Forge
) -> None:
    _, world = forge
    world.projects[102].forbidden = True
    app = make_gitlab_app(projects=["platform/portal", "nope/missing", "platform/infra", "apps/billing"])
    html = _card(_as(app), until="Merge requests")
    assert 'class="widget-content is-ok"' in html  # GitLab answered: not a failure of GitLab
    section = re.search(r"<bdi>nope/missing</bdi></h4>.*?</section>", html, re.S)
    assert (
        section
        and "GitLab has no project nope/missing, or the portal&#39;s token may not read it"
        in section.group(0)
    )
    forbidden = re.search(r"<bdi>platform/infra</bdi></h4>.*?</section>", html, re.S)
    assert (
        forbidden
        and "does not let the portal&#39;s token read project platform/infra (HTTP 403)" in forbidden.group(0)
    )
    assert "pipeline-7000" in html and "apps/billing" in html  # the others are there
    assert "Not shown: nope/missing, platform/infra" in _mine(html)  # Mine skips them, and says so


def test_a_429_is_waited_out_no_call_before_retry_after(
    make_gitlab_app: Callable[..., Flask], forge: Forge
) -> None:
    server, world = forge
    app = make_gitlab_app(lambda c: c["cache"].update(failure_hold=0.5), ttl=1)
    client = _as(app)
    world.throttle(3)
    started = time.monotonic()
    first = _card(client)
    assert "GitLab is limiting the portal&#39;s requests (HTTP 429)" in first
    calls = server.count("/api/v4/")
    while time.monotonic() - started < 2.6:  # polls during the wait: not one call
        assert "HTTP 429" in _card(client)
        time.sleep(0.2)
    assert server.count("/api/v4/") == calls
    time.sleep(max(0.0, 3.3 - (time.monotonic() - started)))
    after = _card(client, until="pipeline-7000")
    assert server.count("/api/v4/") > calls and "pipeline-7000" in after


def test_details_are_fetched_once_per_pipeline_and_status_for_everyone(
    make_gitlab_app: Callable[..., Flask], forge: Forge
) -> None:
    """Who ran a pipeline and how long it took are in its detail only: read once per status for
    the whole team (each project's window), not per person, and again only when it moves."""
    server, world = forge
    # A timeout long enough that no detail is left for a later fetch on a busy machine.
    app = make_gitlab_app(lambda c: c["upstreams"]["gitlab"].update(timeout=5), ttl=1)
    client = _as(app)
    html = _card(client, until="Merge requests")
    first = _details(server)

    def windowed() -> dict[int, str]:
        now = world.clock()
        return {p.id: p.timeline(now)[0] for p in world.pipelines.values() if p.project_id in (101, 102, 103)}

    known = windowed()
    projects = set(re.findall(r'id="pipeline-(\d+)"', html))
    # Each once; a pipeline both in a project's recent ones and in the team's window may be read
    # by both parts when they start at once, cold.
    assert len(known) <= first <= len(known) + len(projects)
    _card(_as(app, "dominique"), until="Merge requests")  # someone else: nothing more
    for _ in range(10):  # polls within the TTL: nothing at all
        _card(client)
    assert _details(server) == first
    # Past the TTL: the lists again, no detail (no status changed). Polled until the lists are
    # read: a poll whose data is still current waits only `refresh_within` (0.15 s) for the
    # refresh, which on a busy machine may not have reached GitLab by then.
    time.sleep(1.1)
    lists = server.count("/api/v4/projects/101/pipelines")
    deadline = time.monotonic() + 5
    while server.count("/api/v4/projects/101/pipelines") == lists and time.monotonic() < deadline:
        _card(client)
        time.sleep(0.1)
    assert server.count("/api/v4/projects/101/pipelines") > lists and _details(server) == first
    world.moment["t"] += 200  # type: ignore[attr-defined]  # the running pipelines finish, new ones start
    time.sleep(1.1)

    def moved() -> set[int]:
        """The pipelines whose status the card has not read yet: GitLab adds the new ones when
        its lists are next read, so this grows once the refresh has begun."""
        return {i for i, status in windowed().items() if known.get(i) != status}

    # As above, the poll that starts the refresh may be answered before its details are read.
    deadline = time.monotonic() + 5
    while _details(server) < first + len(moved()) and time.monotonic() < deadline:
        _card(client, until="Merge requests")
        time.sleep(0.1)
    assert moved() and first + len(moved()) <= _details(server) <= first + 2 * len(moved())


def test_when_gitlab_shows_no_project_at_all_mine_keeps_its_last_data_and_says_why(
    make_gitlab_app: Callable[..., Flask], forge: Forge
) -> None:
    """One project refused is that project's answer; all of them is the token's access (a scope
    taken away, a proxy): Mine keeps what it last showed, muted, with why, and GitLab, which
    answered, is not paused for it."""
    _, world = forge
    app = make_gitlab_app(lambda c: c["cache"].update(failure_hold=0.5), ttl=1)
    client = _as(app)
    assert "Factures en PDF" in _mine(_card(client, until="Merge requests"))
    for project in world.projects.values():
        project.forbidden = True
    for _ in range(5):  # past the TTL, more times than the breaker's threshold
        time.sleep(1.1)
        html = _card(client)
    mine = _mine(html)
    assert "does not let the portal&#39;s token read project platform/portal (HTTP 403)" in mine
    assert "Factures en PDF" in mine and '<ul class="review-list is-stale">' in mine
    assert portal_state(app).cache.breaker("gitlab").state == CircuitState.CLOSED


def test_when_gitlab_fails_the_card_says_why_once_and_each_project_when_its_data_is_from(
    make_gitlab_app: Callable[..., Flask], forge: Forge
) -> None:
    """Every project stale for one reason: the banner says it once, and each project's title the
    time of its data (it said the whole reason again under each title: four times for three
    projects)."""
    server, _ = forge
    client = _as(make_gitlab_app(lambda c: c["cache"].update(failure_hold=0.5), ttl=1))
    assert "Factures en PDF" in _mine(_card(client, until="Merge requests"))
    server.set_fault("error500")
    time.sleep(1.1 + 1.5 + 1)  # past the TTL and the grace of a refresh (the timeout + 1 s)
    html = _card(client)
    projects = _projects(html)
    assert 'class="widget-content is-stale"' in html
    # Said to a screen reader too (the banner says it to the eye).
    # Said to a screen reader too (the banner says it to the eye): from when, and why.
    assert re.fullmatch(r"Pipelines: [^.]*\. Data from [^,]+, GitLab answered HTTP 500", announced(html))
    assert shown(html).count("GitLab answered HTTP 500") == 2  # the banner, and Mine's own panel
    assert "pipeline-project__problem" not in projects
    assert projects.count('<section class="pipeline-project is-stale">') == 3
    assert projects.count('<span class="pipeline-project__since">(data from ') == 3


@pytest.mark.parametrize("mode", [m for m in FAULT_MODES if m != "none"])
def test_each_fault_gives_a_card_that_says_it_and_the_page_is_fine(
    make_gitlab_app: Callable[..., Flask], forge: Forge, mode: str
) -> None:
    server, _ = forge
    words = {
        "timeout": "GitLab did not answer within 1.5 s",
        "error500": "GitLab answered HTTP 500",
        "unauthorized": "GitLab refused the portal&#39;s credentials (HTTP 401)",
        "forbidden": "GitLab does not let the portal&#39;s token read project platform/portal (HTTP 403)",
        "refused": "GitLab cannot be reached",
        "notfound": "GitLab has no project platform/portal",
        "garbage": "GitLab returned a response that is not valid JSON",
        "oversize": "GitLab sent a response larger than",
        "slow": "GitLab is too slow",
    }[mode]
    server.set_fault(mode, **({"seconds": 4} if mode in ("timeout", "refused") else {}))
    client = _as(make_gitlab_app())
    html = _card(client)
    # Nothing to show but the reason; with every path 404 (403), the projects' sections say it
    # each, and Mine, which has no project to show, fails (its last data would stay, stale).
    state = "stale" if mode in ("notfound", "forbidden") else "error"
    assert f'class="widget-content is-{state}"' in html and words in html, html[:1500]
    assert client.get("/", headers={"Accept-Language": "en"}).status_code == 200
    status = client.get("/widgets/status", headers={"Accept-Language": "en"})
    assert status.status_code == 200 and "is-ok" in status.get_data(as_text=True)


def test_hostile_text_is_shown_as_text(make_gitlab_app: Callable[..., Flask], forge: Forge) -> None:
    _, world = forge
    world.add_hostile()
    html = _card(_as(make_gitlab_app()), until="RTL title")
    assert "<script>" not in html and "<img src=x" not in html and '<a href="javascript:' not in html
    assert "<b>bold</b>" not in html and "<i>branch</i>" not in html
    assert "&lt;script&gt;alert(&#34;ref&#34;)&lt;/script&gt;" in html  # the ref
    assert "&lt;a href=&#34;javascript:alert(1)&#34;&gt;click&lt;/a&gt;" in html  # the merge request's title
    assert "&lt;img src=x onerror=&#34;alert(&#39;name&#39;)&#34;&gt;" in html  # the user's name
    assert "<bdi>&lt;b&gt;bold&lt;/b&gt;-ref</bdi>" in html  # isolated: right-to-left text stays inside


def test_two_users_on_one_redis_never_see_each_others_mine(
    make_gitlab_app: Callable[..., Flask], forge: Forge, redis_server: RedisServer
) -> None:
    server, _ = forge
    first, second = make_gitlab_app(redis_url=redis_server.url), make_gitlab_app(redis_url=redis_server.url)
    for app in (first, second, first):
        camille = _mine(_card(_as(app, "camille"), until="Merge requests"))
        dominique = _mine(_card(_as(app, "dominique"), until="Merge requests"))
        # "Factures en PDF" waits for camille's review, "Journal d'audit" for dominique's.
        assert "<bdi>@camille</bdi>)" in camille and "Factures en PDF" in camille
        assert 'title="@camille"><bdi>Camille Demo' in camille  # her pipelines
        assert "<bdi>@dominique</bdi>)" not in camille and "Journal d&#39;audit" not in camille
        assert 'title="@dominique"><bdi>Dominique Demo</bdi></span><time' not in camille
        assert "<bdi>@dominique</bdi>)" in dominique and "Journal d&#39;audit" in dominique
        assert "<bdi>@camille</bdi>)" not in dominique and "Factures en PDF" not in dominique
        assert 'title="@camille"><bdi>Camille Demo' not in dominique
    # Everything was read once for everyone: no call names a person, none is made per person.
    assert server.count("/api/v4/projects/platform%2Fportal/pipelines") == 1  # the team's window
    assert server.count("/api/v4/projects/platform%2Fportal/merge_requests") == 1
    assert server.count("/api/v4/merge_requests") == 0
    assert server.parameters["per_page"] > 0 and not [n for n in server.parameters if "username" in n]


def _projects(html: str) -> str:
    """The Projects panel of a card."""
    found = re.search(
        r'<div class="pipeline-panel" role="tabpanel" id="pipelines-panel-projects"'
        r'.*?(?=<div class="pipeline-panel")',
        html,
        re.S,
    )
    assert found, "no Projects panel"
    return found.group(0)


def test_the_projects_panel_is_rendered_once_for_everyone_in_a_language(
    make_gitlab_app: Callable[..., Flask],
) -> None:
    """Each person's card is their own (their pipelines, their reviews), but its projects panel
    shows shared data only: rendered once per data, clock step and language, not per person."""
    app = make_gitlab_app()
    pieces = portal_state(app).renderer._pieces  # type: ignore[union-attr]
    camille = _card(_as(app, "camille"), until="Merge requests")
    dominique = _card(_as(app, "dominique"), until="Merge requests")
    assert _mine(camille) != _mine(dominique)
    assert _projects(camille) == _projects(dominique) and "platform/portal" in _projects(camille)
    assert len(pieces) == 1
    french = _card(_as(app, "dominique"), "fr", until="Demandes de fusion")
    assert "Branche par défaut" in _projects(french)
    assert len(pieces) == 2


def test_a_personal_part_cannot_key_a_shared_piece() -> None:
    part = Part("mine", "", GITLAB, lambda: None, per_user=True)
    with pytest.raises(ValueError, match="personal"):
        _ = PartResult(part, CacheResult("x", "fp", 0.0, "hit")).shown


def test_a_persons_unchanged_card_stays_the_same_as_the_clock_moves(
    make_gitlab_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its times are written relative to now by the page: hours later, the same data is the same
    card (a 204), not a new body for each person each minute."""
    client = _as(make_gitlab_app())
    html = _card(client, until="Merge requests")
    assert not re.search(r">[^<]*\b(ago|running for)\b", html)  # no text written from the clock
    version = client.get("/widgets/pipelines").headers["X-Widget-Version"]
    assert client.get("/widgets/pipelines", headers={"X-Widget-Version": version}).status_code == 204
    monkeypatch.setattr(serving, "time", ViewClock(ahead=3 * 3600))  # the cache's data stays as it is
    later = client.get("/widgets/pipelines", headers={"X-Widget-Version": version})
    assert later.status_code == 204


def test_french_card_and_plural_counts(make_gitlab_app: Callable[..., Flask]) -> None:
    html = _card(_as(make_gitlab_app()), language="fr", until="Demandes de fusion")
    assert "Projets" in html and "Mes pipelines" in html and "Réussi" in html
    assert 'data-label="ouverte {time}"' in html  # "ouverte il y a 3 j" once the page writes it
    assert "3 demandes de fusion pour vous" in html
    # Each number says what it is: the tabs' counts and a pipeline's duration.
    assert re.search(r'class="pipeline-tab__count"[^>]*>3 pour vous<', html)
    assert re.search(r"</svg> durée\u00a0: \d+\u00a0min", html)


def test_durations_are_short_and_localised(make_gitlab_app: Callable[..., Flask]) -> None:
    with make_gitlab_app().test_request_context(headers={"Accept-Language": "en"}):
        assert duration_text(150) == "2 min 30 sec" and duration_text(3900) == "1 hr 5 min"
        assert duration_text(0) == "0 sec" and duration_text(None) == ""


# --- the GitLab username, and the user menu ------------------------------------------------------------


def test_another_claim_can_carry_the_gitlab_username_in_the_cookie() -> None:
    user = user_from_claims(
        {"sub": "s-1", "preferred_username": "cmartin", "gitlab_user": "camille", "roles": ["x"]},
        {"realm_access": {"roles": ["portal-user"]}},
        "portal",
        keep=["gitlab_user", "absent", "roles"],
    )
    assert user.claims == (("gitlab_user", "camille"),)  # absent or structured claims are left out
    parsed = from_cookie(to_cookie(user, "sid", 1e10))
    assert (
        parsed
        and parsed[0].claim("gitlab_user") == "camille"
        and parsed[0].claim("preferred_username") == "cmartin"
    )
    widget = PipelinesWidget()
    settings = widget.settings_model(username_claim="gitlab_user")
    assert widget.identity_claims(settings) == ("gitlab_user",)
    assert widget.identity_claims(widget.settings_model()) == ()  # preferred_username: the username itself


def test_a_user_without_the_claim_is_told_why_mine_is_empty(
    make_gitlab_app: Callable[..., Flask], forge: Forge
) -> None:
    server, _ = forge
    html = _card(_as(make_gitlab_app(username_claim="gitlab_user")))
    assert "Your account has no “gitlab_user” claim" in _mine(html) and "pipeline-7000" in html
    assert server.count("/merge_requests") == 0  # nothing is read for a Mine no one can see


@responses.activate
def test_the_token_goes_with_an_avatar_to_gitlab_only_never_to_another_host() -> None:
    """GitLab answers a Gravatar URL for whoever has no picture: Gravatar must not get the token."""
    own = f"{BASE}/uploads/-/system/user/avatar/7/avatar.png"
    own_port = "https://gitlab.example.com:443/uploads/b.png"  # the same origin, port written out
    foreign = "https://secure.gravatar.com/avatar/0123abcd?s=80&d=identicon"
    for url in (own, own_port, foreign):
        responses.get(url, body=png((10, 20, 30)), content_type="image/png")
    for url in (own, own_port, foreign):
        _client().avatar(url, 10_000)
    sent = {call.request.url: call.request.headers for call in responses.calls}
    assert sent[own]["PRIVATE-TOKEN"] == "glpat-test" and sent[own_port]["PRIVATE-TOKEN"] == "glpat-test"
    assert not {"PRIVATE-TOKEN", "Authorization", "Cookie"} & set(sent[foreign])
    assert sent[foreign]["Accept"].startswith("image/")


def test_the_user_menu_shows_the_gitlab_avatar_and_profile(
    make_gitlab_app: Callable[..., Flask], forge: Forge
) -> None:
    server, world = forge
    client = _as(make_gitlab_app())
    page = client.get("/").get_data(as_text=True)
    assert 'hx-get="/widgets/pipelines/me"' in page and 'id="user-chip-avatar"' in page
    menu = client.get("/widgets/pipelines/me", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert f'href="{server.url}/camille"' in menu and "GitLab profile" in menu
    found = re.search(r'src="(/widgets/pipelines/avatar\?v=[0-9a-f]+)"', menu)
    assert found and 'hx-swap-oob="true"' in menu  # the chip shows the avatar too
    image = client.get(found.group(1))
    assert (
        image.status_code == 200 and image.content_type == "image/png" and image.data.startswith(b"\x89PNG")
    )
    assert (
        "sandbox" in image.headers["Content-Security-Policy"]
        and "max-age=2592000" in image.headers["Cache-Control"]
    )
    for _ in range(3):
        client.get("/widgets/pipelines/me")
    assert server.count("/api/v4/users") == 1 and server.count("/uploads/") == 1  # kept an hour
    del world.users["dominique"]
    nobody = _as(make_gitlab_app(), "dominique").get(
        "/widgets/pipelines/me", headers={"Accept-Language": "en"}
    )
    assert "No GitLab account named dominique." in nobody.get_data(as_text=True)


def test_an_avatar_asked_of_a_worker_that_has_not_read_the_profile_yet_is_served(
    make_gitlab_app: Callable[..., Flask], forge: Forge
) -> None:
    """The menu came from one worker, the image is asked of another (its own cache, without
    Redis), while GitLab is slower than a request waits for a fetch: the image, not a 404."""
    server, _ = forge
    menu = _as(make_gitlab_app()).get("/widgets/pipelines/me").get_data(as_text=True)
    found = re.search(r'src="(/widgets/pipelines/avatar\?v=[0-9a-f]+)"', menu)
    assert found
    other = make_gitlab_app()
    policy = portal_state(other).widgets["pipelines"].policy(GITLAB)
    server.latency = policy.answer_within / 2 + 0.1  # two calls: longer than a request waits
    image = _as(other).get(found.group(1))
    assert image.status_code == 200 and image.data.startswith(b"\x89PNG")
    assert server.count("/api/v4/users") == 2  # once per worker


def test_an_avatar_with_gitlab_failing_is_a_404_at_once_not_a_thread_held(
    make_gitlab_app: Callable[..., Flask], forge: Forge, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a fetch under way is worth waiting for: GitLab answering 500 (then its breaker open)
    is a 404 without a pause, so a burst of avatar requests cannot hold every worker thread."""
    server, _ = forge
    waits: list[float] = []

    class CountingClock:
        monotonic = staticmethod(time.monotonic)

        @staticmethod
        def sleep(seconds: float) -> None:
            waits.append(seconds)
            time.sleep(seconds)

    monkeypatch.setattr(profile, "time", CountingClock)
    server.set_fault("error500", seconds=60)
    client = _as(make_gitlab_app())
    for _ in range(6):  # the failures, then the breaker open
        assert client.get("/widgets/pipelines/avatar?v=0").status_code == 404
    assert waits == []


def test_a_menu_asked_before_gitlab_answered_asks_again_until_it_has_the_profile(
    make_gitlab_app: Callable[..., Flask], forge: Forge
) -> None:
    """GitLab slower than a request waits: the line asks again a second later, then shows the
    profile, without a reload; the asks are bounded."""
    server, _ = forge
    app = make_gitlab_app()
    policy = portal_state(app).widgets["pipelines"].policy(GITLAB)
    server.latency = policy.answer_within / 2 + 0.1  # two calls: longer than a request waits
    client = _as(app)
    first = client.get("/widgets/pipelines/me", headers={"Accept-Language": "en"}).get_data(as_text=True)
    again = re.search(r'hx-get="(/widgets/pipelines/me\?attempt=1)" hx-trigger="load delay:(\d+)ms"', first)
    assert again and int(again.group(2)) >= 500 and "GitLab profile" not in first
    deadline = time.monotonic() + 2 * policy.timeout + 1
    menu = first
    while "GitLab profile" not in menu and time.monotonic() < deadline:
        time.sleep(0.2)
        menu = client.get(again.group(1), headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "GitLab profile" in menu and "attempt=" not in menu
    last = client.get(f"/widgets/pipelines/me?attempt={MENU_TRIES}").get_data(as_text=True)
    assert "attempt=" not in last  # landed, and in any case the last ask asks no more


def test_no_gitlab_no_menu_line_and_the_card_says_not_configured(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    assert "/widgets/pipelines/me" not in client.get("/").get_data(as_text=True)
    html = client.get("/widgets/pipelines", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Not configured" in html and "upstreams.gitlab" in html
    assert client.get("/widgets/pipelines/me").get_data(as_text=True).strip() == ""
    assert client.get("/widgets/pipelines/avatar").status_code == 404


def test_demo_user_is_known_to_the_demo_gitlab() -> None:
    world = demo_world()
    assert DEMO_USER.username in world.users
    assert any(DEMO_USER.username in m.reviewers for m in world.merge_requests.values())
