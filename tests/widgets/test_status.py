"""The status widget: its Uptime Kuma client, and its card against the simulator."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import responses
from flask import Flask
from flask.testing import FlaskClient

from portal.upstreams.http import HttpLimits, UpstreamBadResponse
from portal.widgets.status.client import MonitorStatus, UptimeKumaClient
from simulators.base import SimServer
from simulators.uptime_kuma import KumaWorld, SimMonitor, SimPage

BASE = "http://kuma.test"

# --- the client, against recorded payloads -------------------------------------------------


def _client() -> UptimeKumaClient:
    return UptimeKumaClient(requests.Session(), BASE, None, HttpLimits(timeout=2))


@responses.activate
def test_client_reads_a_2x_page_with_incidents_list(fixture_json: Callable[[str], Any]) -> None:
    responses.get(f"{BASE}/api/status-page/main", json=fixture_json("status/page-2.5.json"))
    responses.get(f"{BASE}/api/status-page/heartbeat/main", json=fixture_json("status/heartbeat-2.5.json"))

    page = _client().status_page("main")

    assert page.title == "Services"
    assert [(g.id, g.name) for g in page.groups] == [(1, "Core"), (2, "Chat")]
    by_name = {m.name: m for m in page.monitors}
    assert by_name["GitLab"].status is MonitorStatus.UP
    assert by_name["GitLab"].ping_ms == 43  # the last beat is the latest
    assert by_name["GitLab"].uptime_24h == pytest.approx(0.9931)
    assert by_name["Taiga"].status is MonitorStatus.PENDING
    assert by_name["Taiga"].url == "https://taiga.example.com"
    assert by_name["Harbor"].status is MonitorStatus.DOWN
    assert by_name["Harbor"].ping_ms is None
    assert by_name["Mattermost"].status is MonitorStatus.MAINTENANCE
    assert by_name["Newly added"].status is MonitorStatus.UNKNOWN  # no beat yet
    assert by_name["GitLab"].last_beat == datetime(2026, 8, 22, 10, 1, 0, 118000, tzinfo=UTC)
    assert [i.title for i in page.incidents] == ["DB slow", "Registry down"]
    assert page.incidents[0].created == datetime(2026, 8, 22, 9, 12, tzinfo=UTC)
    assert [m.title for m in page.maintenances] == ["Mattermost upgrade"]
    assert (page.up_count, page.pending_count, page.down_count, page.maintenance_count) == (1, 1, 1, 1)


@responses.activate
def test_client_reads_a_123_page_with_single_incident(fixture_json: Callable[[str], Any]) -> None:
    responses.get(f"{BASE}/api/status-page/legacy", json=fixture_json("status/page-1.23.json"))
    responses.get(f"{BASE}/api/status-page/heartbeat/legacy", json=fixture_json("status/heartbeat-1.23.json"))

    page = _client().status_page("legacy")

    assert [i.title for i in page.incidents] == ["Planned network work"]
    dns = page.monitors[1]
    assert dns.status is MonitorStatus.UP
    assert dns.ping_ms is None  # a non-numeric ping is not shown
    assert page.monitors[0].uptime_24h == pytest.approx(0.99994)


@responses.activate
def test_client_accepts_a_null_legacy_incident(fixture_json: Callable[[str], Any]) -> None:
    payload = fixture_json("status/page-1.23.json")
    payload["incident"] = None
    responses.get(f"{BASE}/api/status-page/legacy", json=payload)
    responses.get(f"{BASE}/api/status-page/heartbeat/legacy", json=fixture_json("status/heartbeat-1.23.json"))

    assert _client().status_page("legacy").incidents == ()


@responses.activate
@pytest.mark.parametrize("missing", ["config", "publicGroupList"])
def test_client_refuses_a_page_without_required_fields(
    fixture_json: Callable[[str], Any], missing: str
) -> None:
    payload = fixture_json("status/page-2.5.json")
    del payload[missing]
    responses.get(f"{BASE}/api/status-page/main", json=payload)
    responses.get(f"{BASE}/api/status-page/heartbeat/main", json=fixture_json("status/heartbeat-2.5.json"))

    with pytest.raises(UpstreamBadResponse) as error:
        _client().status_page("main")
    assert missing in str(error.value)


@responses.activate
def test_client_refuses_a_monitor_without_a_name(fixture_json: Callable[[str], Any]) -> None:
    payload = fixture_json("status/page-2.5.json")
    del payload["publicGroupList"][0]["monitorList"][0]["name"]
    responses.get(f"{BASE}/api/status-page/main", json=payload)
    responses.get(f"{BASE}/api/status-page/heartbeat/main", json=fixture_json("status/heartbeat-2.5.json"))

    with pytest.raises(UpstreamBadResponse):
        _client().status_page("main")


@responses.activate
def test_client_maps_a_json_list_body_to_bad_response() -> None:
    responses.get(f"{BASE}/api/status-page/main", json=[1, 2, 3])
    responses.get(f"{BASE}/api/status-page/heartbeat/main", json={})
    with pytest.raises(UpstreamBadResponse):
        _client().status_page("main")


def test_client_quotes_the_slug(kuma: SimServer) -> None:
    client = UptimeKumaClient(requests.Session(), kuma.url, None, HttpLimits(timeout=2))
    with pytest.raises(UpstreamBadResponse):
        client.status_page("../../heartbeat/platform")
    assert kuma.count("/api/status-page/..%2F") == 0 or kuma.count("heartbeat/platform") == 0


# --- the card, against the simulator -------------------------------------------------------


def _fragment(client: FlaskClient, **headers: str) -> Any:
    return client.get("/widgets/status", headers=headers)


def test_card_shows_every_state_with_icon_and_text(client: FlaskClient, kuma: SimServer) -> None:
    response = _fragment(client, **{"Accept-Language": "en"})

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'class="widget-content is-ok"' in html
    for name in ("GitLab", "Taiga", "Mattermost", "SonarQube", "Prometheus"):
        assert name in html
    # down, with its icon and its word, not only a colour
    row = re.search(r'<li class="status-row is-down"[^>]*>.*?</li>', html, re.S)
    assert row and "#x" in row.group(0) and "Down" in row.group(0) and "SonarQube" in row.group(0)
    maintenance = re.search(r'<li class="status-row is-maintenance"[^>]*>.*?</li>', html, re.S)
    assert maintenance and "#wrench" in maintenance.group(0) and "Mattermost" in maintenance.group(0)
    assert "SonarQube indisponible" in html  # the incident (2.1+ shape)
    # Two pages: each note says which one it is from.
    kind = r'<p class="incident-note__kind">Major incident'
    assert re.search(kind + r'<span class="incident-note__page"> · <bdi>[^<]+</bdi>', html)
    assert "Mise à jour de Mattermost" in html  # the active maintenance
    assert "Forge &amp; livraison" in html and "Supervision" in html  # group headings
    assert re.search(r"\d+ ms", html) and "%" in html  # response time and 24 h uptime
    assert kuma.count("/api/status-page/platform") == 1
    assert kuma.count("/api/status-page/heartbeat/observability") == 1


def test_a_big_group_all_up_is_folded_to_one_line_and_one_with_a_problem_is_not(
    client: FlaskClient, world: KumaWorld
) -> None:
    """Sixty services on a page: what needs an eye stands out, the rest is one click away."""
    quiet = [world.add_monitor(SimMonitor(900 + n, f"Quiet service {n}")).id for n in range(8)]
    noisy = [world.add_monitor(SimMonitor(950 + n, f"Busy service {n}")).id for n in range(7)]
    world.add_monitor(SimMonitor(999, "Broken service", behaviour="down"))
    world.pages["platform"].groups += [("Quiet", quiet), ("Noisy", [*noisy, 999])]
    html = _fragment(client, **{"Accept-Language": "en"}).get_data(as_text=True)
    quiet_group = re.search(r"Quiet</h5>(.*?)</div>", html, re.S)
    noisy_group = re.search(r"Noisy</h5>(.*?)</div>", html, re.S)
    assert quiet_group and noisy_group
    folded = r'<details class="more-rows" id="status-fold-platform-\d+">\s*<summary[^>]*>.*All 8 services up'
    assert re.search(folded, quiet_group.group(1), re.S)
    assert quiet_group.group(1).count('class="status-row is-up"') == 8  # there, behind the toggle
    assert "<details" not in noisy_group.group(1) and "Broken service" in noisy_group.group(1)
    assert "<details" not in html.split("Quiet</h5>")[0]  # the demo's small groups stay open


def test_a_fold_keeps_its_id_when_the_groups_are_reordered(
    make_app: Callable[..., Flask], world: KumaWorld
) -> None:
    """The page keeps a fold open through refreshes by its id: the id must follow the group, not
    its place, or reordering the groups in Uptime Kuma would open another group's fold."""
    first = [world.add_monitor(SimMonitor(800 + n, f"First {n}")).id for n in range(7)]
    second = [world.add_monitor(SimMonitor(850 + n, f"Second {n}")).id for n in range(7)]
    groups = world.pages["platform"].groups
    groups += [("First", first), ("Second", second)]

    def fold_ids() -> dict[str, str]:
        html = make_app().test_client().get("/widgets/status").get_data(as_text=True)  # a cold cache
        found = re.findall(r'([A-Za-z]+)</h5>\s*<details class="more-rows" id="([^"]+)"', html)
        return dict(found)

    before = fold_ids()
    assert set(before) == {"First", "Second"} and before["First"] != before["Second"]
    groups[-2], groups[-1] = groups[-1], groups[-2]
    assert fold_ids() == before


def test_card_reads_the_legacy_incident_shape(client: FlaskClient, world: KumaWorld) -> None:
    world.pages["observability"].incidents.append(
        {
            "id": 9,
            "style": "warning",
            "title": "Old-style incident",
            "content": "From a 1.23 server",
            "pin": True,
            "createdDate": "2026-11-24 06:00:00",
            "lastUpdatedDate": None,
        }
    )
    html = _fragment(client).get_data(as_text=True)
    assert "Old-style incident" in html


def test_flapping_monitor_shows_degraded_then_down(make_app: Callable[..., Flask], world: KumaWorld) -> None:
    moments = {"t": 1_800_000_000.0}
    world.clock = lambda: moments["t"]

    def taiga_state() -> str:
        html = make_app().test_client().get("/widgets/status").get_data(as_text=True)  # a cold cache
        match = re.search(r'<li class="status-row is-(\w+)"[^>]*>(?:(?!</li>).)*Taiga', html, re.S)
        assert match
        return match.group(1)

    moments["t"] = 1_800_000_000 - 1_800_000_000 % 180 + 30
    assert taiga_state() == "up"
    moments["t"] += 90
    assert taiga_state() == "degraded"
    moments["t"] += 40
    assert taiga_state() == "down"


def test_the_card_tells_the_page_when_a_service_is_down_or_degraded(
    make_app: Callable[..., Flask], world: KumaWorld
) -> None:
    """data-attention: the tab's icon gets a red dot while a service is down, amber while one is
    degraded (portal.js); nothing while all are up or in maintenance."""

    def attention() -> str | None:
        html = make_app().test_client().get("/widgets/status").get_data(as_text=True)  # a cold cache
        found = re.search(r'<div class="widget-content is-ok"[^>]*>', html)
        assert found, html[:400]
        said = re.search(r' data-attention="(\w+)"', found.group(0))
        return said.group(1) if said else None

    assert attention() == "critical"  # SonarQube is down
    for monitor in world.monitors.values():
        if monitor.behaviour == "down":
            monitor.behaviour = "pending"
    assert attention() == "warning"
    for monitor in world.monitors.values():
        if monitor.behaviour == "pending":
            monitor.behaviour = "up"
    assert attention() is None  # Mattermost in maintenance: planned, nobody has to act


def test_hostile_upstream_text_is_shown_as_text(client: FlaskClient, world: KumaWorld) -> None:
    world.add_monitor(SimMonitor(66, '<script>alert("kuma")</script>', url="javascript:alert(1)"))
    world.pages["platform"].groups[0][1].append(66)
    world.pages["platform"].incidents[0]["title"] = '<img src=x onerror="alert(2)">'
    world.pages["platform"].groups.append(('<b onmouseover="x()">Group</b>', [1]))

    html = _fragment(client).get_data(as_text=True)

    assert "<script>alert" not in html and "<img src=x" not in html and "<b onmouseover" not in html
    assert "&lt;script&gt;alert(&#34;kuma&#34;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;" in html
    assert 'href="javascript:' not in html  # a non-http monitor URL is not linked


def test_unchanged_poll_gets_204_and_a_change_gets_the_new_fragment(
    make_app: Callable[..., Flask], world: KumaWorld
) -> None:
    app = make_app(lambda c: c["widgets"]["status"].update(ttl=1))
    client = app.test_client()
    frozen = {"t": time.time()}
    world.clock = lambda: frozen["t"]

    first = _fragment(client)
    version = first.headers["X-Widget-Version"]
    assert f'data-version="{version}"' in first.get_data(as_text=True)

    again = _fragment(client, **{"X-Widget-Version": version})
    assert again.status_code == 204 and again.data == b""

    time.sleep(1.1)  # past the TTL: refetched, but the data did not change
    refetched = _fragment(client, **{"X-Widget-Version": version})
    assert refetched.status_code == 204

    world.monitors[1].behaviour = "down"  # GitLab goes down
    time.sleep(1.1)
    changed = _fragment(client, **{"X-Widget-Version": version})
    # On a busy machine the refresh may outlast the moment a poll waits for it: that poll is
    # answered from the data at hand (unchanged: 204), a later one gets the change (a clean run).
    deadline = time.monotonic() + 5
    while changed.status_code == 204 and time.monotonic() < deadline:
        time.sleep(0.2)
        changed = _fragment(client, **{"X-Widget-Version": version})
    assert changed.status_code == 200
    assert changed.headers["X-Widget-Version"] != version
    assert re.search(r'status-row is-down"[^>]*>(?:(?!</li>).)*GitLab', changed.get_data(as_text=True), re.S)


def test_tile_dots_come_from_the_same_data(client: FlaskClient) -> None:
    html = _fragment(client).get_data(as_text=True)

    found = re.findall(r'class="tile-dot is-(\w+)" id="tile-dot-([\w-]+)" hx-swap-oob="true"', html)
    by_tile = {tile: state for state, tile in found}
    assert by_tile["gitlab"] == "up"
    assert by_tile["sonarqube"] == "down"
    assert by_tile["mattermost"] == "maintenance"
    assert "argo-cd" in by_tile  # the demo user is an admin and sees the Argo CD tile


def test_tile_dots_skip_tiles_the_user_may_not_see(make_app: Callable[..., Flask]) -> None:
    def restrict(config: dict[str, Any]) -> None:
        config["tiles"][0]["roles"] = ["nobody-has-this-role"]

    html = _fragment(make_app(restrict).test_client()).get_data(as_text=True)
    assert 'id="tile-dot-gitlab"' not in html
    assert 'id="tile-dot-harbor"' in html


def test_each_user_and_language_gets_their_own_card_from_the_same_data(client: FlaskClient) -> None:
    """A worker keeps each card it built: who asks and in which language are part of what it keeps."""
    admin = _fragment(client, **{"Accept-Language": "en"})
    assert 'id="tile-dot-argo-cd"' in admin.get_data(as_text=True)  # an admin tile

    client.get("/auth/demo-user/dominique")  # a team member, same worker, same cached data
    member = _fragment(client, **{"Accept-Language": "en"})
    assert 'id="tile-dot-argo-cd"' not in member.get_data(as_text=True)
    assert 'id="tile-dot-gitlab"' in member.get_data(as_text=True)
    assert member.headers["X-Widget-Version"] != admin.headers["X-Widget-Version"]

    french = _fragment(client, **{"Accept-Language": "fr"})
    assert french.headers["X-Widget-Version"] != member.headers["X-Widget-Version"]
    assert "Opérationnel" in french.get_data(as_text=True)
    assert "Opérationnel" not in member.get_data(as_text=True)

    client.get("/auth/demo-user/camille")
    again = _fragment(client, **{"Accept-Language": "en"})
    assert again.headers["X-Widget-Version"] == admin.headers["X-Widget-Version"]
    assert again.get_data() == admin.get_data()


def test_a_page_without_monitors_is_empty(make_app: Callable[..., Flask], world: KumaWorld) -> None:
    world.add_page(SimPage(slug="quiet", title="Quiet", groups=[("Nothing", [])]))
    app = make_app(lambda c: c["widgets"]["status"].update(slugs=["quiet"]))
    html = _fragment(app.test_client(), **{"Accept-Language": "en"}).get_data(as_text=True)
    assert 'class="widget-content is-empty"' in html
    assert "No monitors are published" in html


def test_unconfigured_upstream_says_so(make_app: Callable[..., Flask]) -> None:
    app = make_app(lambda c: c["upstreams"].pop("uptime_kuma"))
    client = app.test_client()
    response = _fragment(client, **{"Accept-Language": "en"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "is-unconfigured" in html and "Not configured" in html and 'data-poll="stop"' in html
    page = client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'id="widget-status"' in page  # the card stays on the dashboard


def test_forbidden_widget_is_refused_server_side(make_app: Callable[..., Flask], kuma: SimServer) -> None:
    app = make_app(lambda c: c["widgets"]["status"].update(roles=["sre-only"]))
    client = app.test_client()
    response = _fragment(client, **{"Accept-Language": "en"})
    assert response.status_code == 403
    assert "You do not have access" in response.get_data(as_text=True)
    assert kuma.count() == 0
    page = client.get("/").get_data(as_text=True)
    assert 'id="widget-status"' not in page and "tile-dot-" not in page


def test_disabled_widget_leaves_the_dashboard(make_app: Callable[..., Flask]) -> None:
    app = make_app(lambda c: c["widgets"]["status"].update(enabled=False))
    client = app.test_client()
    assert 'id="widget-status"' not in client.get("/").get_data(as_text=True)
    assert _fragment(client).status_code == 403
