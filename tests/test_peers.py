"""The real peers the widgets are tested against answer as the widgets will expect.

Each test talks to a real server started by tests/support/peer_fixtures.py: taiga-back 6.10.0,
PostgreSQL, Prometheus evaluating rules and Alertmanager receiving them.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
import yaml

from .support.alertmanager import AlertmanagerServer
from .support.keycloak import KeycloakSim
from .support.metrics_target import ControlledTarget
from .support.postgres import PostgresServer
from .support.processes import wait_for
from .support.prometheus import PrometheusServer
from .support.taiga import TaigaBack

pytestmark = pytest.mark.peers


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- Taiga --------------------------------------------------------------------------------------


def test_taiga_login_as_alice_gives_a_token_that_users_me_knows_as_alice(taiga_back: TaigaBack) -> None:
    session = taiga_back.login("alice")
    assert session["auth_token"] and session["refresh"]

    me = requests.get(f"{taiga_back.url}users/me", headers=_bearer(session["auth_token"]), timeout=15)

    assert me.status_code == 200
    assert me.json()["username"] == "alice"
    assert me.json()["id"] == taiga_back.user("alice")["id"]


def test_taiga_refuses_a_wrong_password(taiga_back: TaigaBack) -> None:
    body = {"type": "normal", "username": "alice", "password": "not-her-password"}
    answer = requests.post(f"{taiga_back.url}auth", json=body, timeout=15)
    assert answer.status_code == 401


def test_alices_tasks_open_and_closed_come_in_two_pages_of_thirty(taiga_back: TaigaBack) -> None:
    token = taiga_back.login("alice")["auth_token"]
    alice = taiga_back.user("alice")["id"]
    url = f"{taiga_back.url}tasks"

    first = requests.get(url, params={"assigned_to": alice}, headers=_bearer(token), timeout=30)
    second = requests.get(url, params={"assigned_to": alice, "page": 2}, headers=_bearer(token), timeout=30)

    assert first.status_code == second.status_code == 200
    assert first.headers["x-paginated-by"] == "30"
    assert first.headers["x-pagination-count"] == str(taiga_back.seed["counts"]["alice"]) == "44"
    assert "page=2" in first.headers["x-pagination-next"]
    assert "x-pagination-next" not in second.headers
    tasks = first.json() + second.json()
    assert (len(first.json()), len(second.json())) == (30, 14)
    assert len({task["id"] for task in tasks}) == 44
    assert {task["assigned_to"] for task in tasks} == {alice}
    seeded = {t["id"]: t for t in taiga_back.seed["tasks"] if t["assigned_to"] == "alice"}
    listed = {task["id"]: task for task in tasks}
    assert seeded.keys() <= listed.keys()
    for task_id, seeded_task in seeded.items():
        assert listed[task_id]["ref"] == seeded_task["ref"]
        assert listed[task_id]["due_date"] == seeded_task["due_date"]
        assert listed[task_id]["status_extra_info"]["is_closed"] == (seeded_task["status"] == "Closed")


def test_a_refresh_rotates_the_refresh_token(taiga_back: TaigaBack) -> None:
    first = taiga_back.login("alice")["refresh"]
    refresh = f"{taiga_back.url}auth/refresh"

    rotated = requests.post(refresh, json={"refresh": first}, timeout=15)
    assert rotated.status_code == 200
    second = rotated.json()["refresh"]
    assert second != first
    me = requests.get(f"{taiga_back.url}users/me", headers=_bearer(rotated.json()["auth_token"]), timeout=15)
    assert me.json()["username"] == "alice"

    reused = requests.post(refresh, json={"refresh": first}, timeout=15)
    assert reused.status_code == 401
    assert reused.json()["code"] == "token_not_valid"
    assert requests.post(refresh, json={"refresh": second}, timeout=15).status_code == 200


# --- PostgreSQL ---------------------------------------------------------------------------------


def test_postgres_databases_are_separate(postgres: PostgresServer) -> None:
    first = sa.create_engine(postgres.create_database("peers_first"))
    second = sa.create_engine(postgres.create_database("peers_second"))
    try:
        with first.begin() as connection:
            connection.execute(sa.text("CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)"))
            connection.execute(sa.text("INSERT INTO notes (body) VALUES ('only in the first')"))
        with first.connect() as connection:
            assert connection.execute(sa.text("SELECT body FROM notes")).scalars().all() == [
                "only in the first"
            ]
            assert connection.execute(sa.text("SELECT current_database()")).scalar() == "peers_first"

        assert sa.inspect(second).get_table_names() == []
        with second.connect() as connection:
            assert connection.execute(sa.text("SELECT to_regclass('notes')")).scalar() is None
    finally:
        first.dispose()
        second.dispose()


# --- Prometheus and Alertmanager ----------------------------------------------------------------

ALERT = "PortalTestValueHigh"
GAUGE = "portal_test_value"


@pytest.fixture
def high_value_rule(
    prometheus_with_rules: PrometheusServer, controlled_target: ControlledTarget
) -> Iterator[PrometheusServer]:
    """An alert when the controlled gauge is above 0.9, evaluated every second; removed after."""
    controlled_target.set(GAUGE, 0.5)
    rule = {
        "alert": ALERT,
        "expr": f'{GAUGE}{{target="controlled"}} > 0.9',
        "labels": {"severity": "warning"},
        "annotations": {"summary": "portal_test_value is {{ $value }}"},
    }
    prometheus_with_rules.add_rules("high-value", [{"name": "high-value", "interval": "1s", "rules": [rule]}])
    yield prometheus_with_rules
    prometheus_with_rules.remove_rules("high-value")
    controlled_target.clear(GAUGE)


def _received(alertmanager: AlertmanagerServer) -> list[dict[str, Any]]:
    return alertmanager.alerts(alertname=ALERT)


def test_an_alert_on_a_controlled_gauge_fires_reaches_alertmanager_then_resolves(
    high_value_rule: PrometheusServer, controlled_target: ControlledTarget, alertmanager: AlertmanagerServer
) -> None:
    prometheus = high_value_rule
    wait_for(lambda: prometheus.value(f'{GAUGE}{{target="controlled"}}') == 0.5, timeout=10, what="a scrape")
    assert prometheus.alert_state(ALERT) is None
    assert _received(alertmanager) == []

    controlled_target.set(GAUGE, 0.93)
    wait_for(lambda: _received(alertmanager), timeout=20, interval=0.2, what="the alert in Alertmanager")
    assert prometheus.alert_state(ALERT) == "firing"
    (alert,) = _received(alertmanager)
    assert alert["labels"]["severity"] == "warning"
    assert alert["labels"]["target"] == "controlled"
    assert alert["annotations"]["summary"] == "portal_test_value is 0.93"
    assert alert["status"]["state"] == "active"

    controlled_target.set(GAUGE, 0.42)
    wait_for(lambda: not _received(alertmanager), timeout=20, interval=0.2, what="the alert to resolve")
    assert prometheus.alert_state(ALERT) is None


def test_prometheus_loads_the_rule_files_it_is_started_with(tmp_path: Path) -> None:
    rules = tmp_path / "always.yml"
    always = {"alert": "PortalAlwaysFiring", "expr": "vector(1)"}
    rules.write_text(yaml.safe_dump({"groups": [{"name": "always", "interval": "1s", "rules": [always]}]}))
    (tmp_path / "prometheus").mkdir()
    prometheus = PrometheusServer(tmp_path / "prometheus", rule_files=[rules]).start()
    try:
        assert prometheus.rule_groups() == {"always"}
        firing = 'ALERTS{alertname="PortalAlwaysFiring", alertstate="firing"}'
        wait_for(lambda: prometheus.value(firing) == 1, timeout=10, what="the alert to fire")
        assert prometheus.alert_state("PortalAlwaysFiring") == "firing"
    finally:
        prometheus.stop()


def test_a_silence_created_through_the_api_is_listed_and_silences(alertmanager: AlertmanagerServer) -> None:
    labels = {"alertname": "PortalSilencedByTest", "severity": "critical"}
    silence_id = alertmanager.create_silence(labels, comment="maintenance window")
    try:
        (listed,) = [s for s in alertmanager.silences() if s["id"] == silence_id]
        assert listed["status"]["state"] == "active"
        assert listed["comment"] == "maintenance window"
        assert {(m["name"], m["value"]) for m in listed["matchers"]} == set(labels.items())

        alertmanager.post_alert(labels)
        wait_for(
            lambda: [a["status"]["state"] for a in alertmanager.alerts(alertname=labels["alertname"])]
            == ["suppressed"],
            timeout=10,
            what="the posted alert, silenced",
        )
        (alert,) = alertmanager.alerts(alertname=labels["alertname"])
        assert alert["status"]["silencedBy"] == [silence_id]
    finally:
        alertmanager.resolve_alert(labels)  # a live critical alert in other tests' cards otherwise
        alertmanager.expire_silence(silence_id)
    assert not alertmanager.alerts(alertname=labels["alertname"])
    (expired,) = [s for s in alertmanager.silences() if s["id"] == silence_id]
    assert expired["status"]["state"] == "expired"


def test_the_keycloak_simulator_starts_on_another_port_when_its_own_is_taken(tmp_path: Path) -> None:
    """Its port was free when chosen, and taken before it listened (another process of the run):
    the start that fails is tried once more, on another port, instead of failing the test."""
    simulator = KeycloakSim(tmp_path)
    taken = simulator.port
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        simulator.start()
        try:
            assert simulator.port != taken
            assert requests.get(f"{simulator.url}health/ready", timeout=5).ok
        finally:
            simulator.stop()
