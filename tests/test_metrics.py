"""Metrics: a real Prometheus scrapes the portal under gunicorn; promtool lints the exposition."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
import requests
from flask import Flask
from prometheus_client import generate_latest
from prometheus_client.mmap_dict import MmapedDict
from werkzeug.test import EnvironBuilder

from portal.observability import build
from portal.state import portal_state
from portal.upstreams.breaker import CircuitState
from simulators.base import SimServer

from .support.apps import add_failing_routes
from .support.processes import children, free_port, portal_process, wait_for
from .support.prometheus import PrometheusServer

pytestmark = pytest.mark.peers


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    server = PrometheusServer(tmp_path_factory.mktemp("prometheus")).start()
    yield server
    server.stop()


def _exposition(app: Flask) -> str:
    return generate_latest(app.extensions["portal_metrics"].registry).decode()


def _samples(text: str, name: str) -> dict[str, float]:
    """`{'{labels}': value}` of one metric in an exposition (single-process, in tests)."""
    found = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            labels, _, value = line[len(name) :].rpartition(" ")
            found[labels] = float(value)
    return found


def _promtool_check(exposition: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _worker_totals(metrics_dir: Path) -> dict[int, float]:
    """Requests counted by each process, read from its samples file."""
    totals: dict[int, float] = {}
    for path in metrics_dir.glob("counter_*.db"):
        pid = int(path.stem.split("_")[1])
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(path)):
            if json.loads(key)[1] == "portal_http_request_total":
                totals[pid] = totals.get(pid, 0) + value
    return totals


def _burst(url: str, paths: list[str]) -> int:
    """Send the requests at once, each on its own connection (so both workers take some)."""
    barrier = threading.Barrier(len(paths))

    def one(path: str) -> None:
        barrier.wait()
        requests.get(url + path, timeout=15)

    threads = [threading.Thread(target=one, args=(path,)) for path in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(paths)


# --- in process -----------------------------------------------------------------------------


def test_request_metrics_use_url_rules_and_skip_probes(app: Flask) -> None:
    client = app.test_client()
    for _ in range(3):
        client.get("/widgets/status")
    client.get("/no/such/page/12345")
    client.get("/healthz")
    client.get("/readyz")
    text = _exposition(app)
    durations = _samples(text, "portal_http_request_duration_seconds_count")
    assert durations == {
        '{method="GET",path="/widgets/status",status="200"}': 3.0,
        '{method="GET",path="<unmatched>",status="404"}': 1.0,
    }
    assert "12345" not in text
    assert "demo-0001" not in text  # no per-user label anywhere
    assert 'portal_build_info{commit="' in text


def test_a_failing_request_is_counted_and_any_method_shares_one_label(make_app: Any) -> None:
    app = add_failing_routes(make_app(TESTING=False), "/_fail")
    client = app.test_client()
    assert client.get("/_fail/500").status_code == 500
    assert client.open("/widgets/status", method="BREW").status_code == 405
    assert client.open("/widgets/status", method="SPILL").status_code == 405
    text = _exposition(app)
    assert _samples(text, "portal_http_request_exceptions_total") == {'{method="GET",status="500"}': 1.0}
    durations = _samples(text, "portal_http_request_duration_seconds_count")
    assert durations['{method="GET",path="/_fail/500",status="500"}'] == 1.0
    assert durations['{method="other",path="<unmatched>",status="405"}'] == 2.0
    assert "BREW" not in text and "SPILL" not in text
    assert len(app.extensions["portal_request_metrics"]._bound) == 2  # GET 500 and other 405: no more


def test_the_cpu_a_route_uses_is_counted_apart_from_the_time_it_waits(make_app: Any) -> None:
    """A card that costs the pod its CPU shows in the counter; one that waits on its upstream does not."""
    app = make_app()

    @app.get("/_cpu/busy")
    def busy() -> str:
        until = time.thread_time() + 0.05
        while time.thread_time() < until:
            pass
        return "busy"

    @app.get("/_cpu/waiting")
    def waiting() -> str:
        time.sleep(0.1)
        return "waited"

    client = app.test_client()
    for _ in range(2):
        assert client.get("/_cpu/busy").status_code == 200
        assert client.get("/_cpu/waiting").status_code == 200
    text = _exposition(app)
    cpu = _samples(text, "portal_http_request_cpu_seconds_total")
    durations = _samples(text, "portal_http_request_duration_seconds_sum")
    assert cpu['{method="GET",path="/_cpu/busy"}'] >= 0.1
    assert durations['{method="GET",path="/_cpu/waiting",status="200"}'] >= 0.2
    assert cpu['{method="GET",path="/_cpu/waiting"}'] < 0.05
    assert _promtool_check(text).returncode == 0


def test_the_requests_in_flight_are_counted_from_arrival_to_answer_even_when_they_fail(make_app: Any) -> None:
    """The workers' saturation: requests held now, against the threads (set under gunicorn)."""
    app = add_failing_routes(make_app(TESTING=False), "/_fail")
    entered, release = threading.Event(), threading.Event()

    @app.get("/_stream")
    def stream() -> Any:
        def pieces() -> Iterator[str]:
            yield "one"
            yield "two"

        return app.response_class(pieces())

    @app.get("/_held")
    def held() -> str:
        entered.set()
        release.wait(10)
        return "done"

    def in_flight() -> float:
        return _samples(_exposition(app), "portal_http_requests_in_flight")[""]

    client = app.test_client()
    assert in_flight() == 0
    answers: list[int] = []

    def held_request() -> None:
        with client.get("/_held") as answer:  # closed, as a server closes what it sent
            answers.append(answer.status_code)

    waiting = threading.Thread(target=held_request)
    waiting.start()
    assert entered.wait(10)
    assert in_flight() == 1
    with client.get("/_fail/500") as failed:  # a bug's request ends all the same
        assert failed.status_code == 500
    assert in_flight() == 1
    release.set()
    waiting.join(10)
    assert answers == [200] and in_flight() == 0

    # A streamed answer is in flight until the server has sent its last piece and closed it.
    body = app.wsgi_app({**EnvironBuilder("/_stream").get_environ()}, lambda status, headers, exc=None: None)
    assert next(iter(body)) == b"one" and in_flight() == 1
    body.close()  # type: ignore[attr-defined]
    assert in_flight() == 0


def test_the_application_port_does_not_serve_metrics(client: Any) -> None:
    assert client.get("/metrics").status_code == 404


def test_cache_results_by_widget(app: Flask) -> None:
    client = app.test_client()
    client.get("/widgets/status")  # two status pages: two misses
    client.get("/widgets/status")  # then two hits
    text = _exposition(app)
    results = _samples(text, "portal_widget_cache_results_total")
    untouched = {  # every widget's series exist from the start (these two are not configured here)
        f'{{result="{result}",widget="{widget}"}}': 0.0
        for widget in ("metrics", "incidents", "pipelines", "tasks", "deadlines")
        for result in ("hit", "miss", "coalesced", "stale", "error", "pending")
    }
    assert results == {
        '{result="hit",widget="status"}': 2.0,
        '{result="miss",widget="status"}': 2.0,
        '{result="coalesced",widget="status"}': 0.0,
        '{result="stale",widget="status"}': 0.0,
        '{result="error",widget="status"}': 0.0,
        '{result="pending",widget="status"}': 0.0,
        **untouched,
    }
    calls = _samples(text, "portal_upstream_request_duration_seconds_count")
    assert calls == {'{outcome="ok",upstream="uptime_kuma"}': 2.0}


def test_upstream_failures_and_the_open_circuit(app: Flask, kuma: SimServer) -> None:
    kuma.set_fault("error500")
    client = app.test_client()
    for _ in range(3):  # failure_hold is shared per key; each request tries both pages
        client.get("/widgets/status")
    portal_state(app).cache.breaker("uptime_kuma").record_failure("down")
    text = _exposition(app)
    assert _samples(text, "portal_widget_cache_results_total")['{result="error",widget="status"}'] >= 2
    calls = _samples(text, "portal_upstream_request_duration_seconds_count")
    assert calls['{outcome="server_error",upstream="uptime_kuma"}'] >= 2
    assert portal_state(app).cache.breaker("uptime_kuma").state is CircuitState.OPEN
    assert _samples(text, "portal_upstream_circuit_state") == {
        '{upstream="gitlab"}': 0.0,  # every registered upstream's, configured or not
        '{upstream="uptime_kuma"}': 2.0,
        '{upstream="prometheus"}': 0.0,
        '{upstream="alertmanager"}': 0.0,
        '{upstream="taiga"}': 0.0,
    }
    checked = _promtool_check(text)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_shared_cache_fallback_is_a_gauge(make_app: Any) -> None:
    app = make_app(lambda c: c["cache"].update(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    assert _samples(_exposition(app), "portal_cache_fallback_active") == {"": 0.0}
    app.test_client().get("/widgets/status")  # Redis is not there: the in-process cache serves
    assert _samples(_exposition(app), "portal_cache_fallback_active") == {"": 1.0}


def test_the_database_lost_is_a_gauge_set_by_the_readiness_probe(make_app: Any, tmp_path: Path) -> None:
    """The pods stay ready without their database (the page falls back on the default layout):
    portal_database_up is how an SRE sees it (PortalDatabaseUnreachable)."""
    blocker = tmp_path / "blocked"
    app = make_app(lambda c: c.setdefault("database", {}).update(data_dir=str(tmp_path / "data")))
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    assert _samples(_exposition(app), "portal_database_up") == {"": 1.0}
    blocker.write_text("a file where the data directory should be")
    broken = make_app(lambda c: c.setdefault("database", {}).update(data_dir=str(blocker / "data")))
    broken.test_client().get("/readyz")
    assert _samples(_exposition(broken), "portal_database_up") == {"": 0.0}


# --- under gunicorn -------------------------------------------------------------------------


def _start(portal_config: dict[str, Any], tmp_path: Path, metrics_dir: Path, **env: str) -> Any:
    metrics_port = free_port()
    extra = {
        "PORTAL_METRICS_BIND": f"127.0.0.1:{metrics_port}",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        **env,
    }
    return portal_process(portal_config, tmp_path, workers=2, extra_env=extra), metrics_port


def test_prometheus_scrapes_totals_equal_to_the_requests_sent_across_two_workers(
    prometheus: PrometheusServer, portal_config: dict[str, Any], tmp_path: Path
) -> None:
    metrics_dir = tmp_path / "metrics"
    process, metrics_port = _start(portal_config, tmp_path, metrics_dir)
    with process as url:
        prometheus.scrape("totals", f"127.0.0.1:{metrics_port}")
        sent = {"/widgets/status": 0, "/": 0, "/nope": 0}
        for _ in range(20):  # until both workers have served some (usually the first burst)
            sent["/widgets/status"] += _burst(url, ["/widgets/status"] * 12)
            sent["/"] += _burst(url, ["/"] * 4)
            sent["/nope"] += _burst(url, ["/nope"] * 2)
            if len([n for n in _worker_totals(metrics_dir).values() if n > 0]) >= 2:
                break
        workers = {pid: n for pid, n in _worker_totals(metrics_dir).items() if n > 0}
        assert len(workers) == 2, workers
        total = sum(sent.values())

        wait_for(
            lambda: prometheus.value('sum(portal_http_request_total{target="totals"})') == total,
            timeout=30,
            interval=0.5,
            what="the scraped total",
        )
        by_path = {
            r["metric"]["path"]: float(r["value"][1])
            for r in prometheus.query(
                'sum by (path) (portal_http_request_duration_seconds_count{target="totals"})'
            )
        }
        # Two status pages per widget request: each request made two cache lookups.
        lookups = prometheus.value('sum(portal_widget_cache_results_total{target="totals"})')
        build = prometheus.query('portal_build_info{target="totals"}')
        # Two workers of portal_process's 8 threads each; no request is held between the bursts.
        threads = prometheus.value('sum(portal_worker_threads{target="totals"})')
        held = prometheus.value('sum(portal_http_requests_in_flight{target="totals"})')
        exposition = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    assert sum(workers.values()) == total
    assert by_path == {
        "/widgets/status": sent["/widgets/status"],
        "/": sent["/"],
        "<unmatched>": sent["/nope"],
    }
    assert lookups == 2 * sent["/widgets/status"]
    assert len(build) == 1 and build[0]["value"][1] == "1"
    assert threads == 16 and held == 0
    checked = _promtool_check(exposition)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_restart_empties_the_directory_dead_workers_keep_their_counts_a_reload_keeps_all(
    portal_config: dict[str, Any], tmp_path: Path
) -> None:
    metrics_dir = tmp_path / "metrics"
    pidfile = tmp_path / "gunicorn.pid"
    first, _ = _start(portal_config, tmp_path, metrics_dir)
    with first as url:
        _burst(url, ["/"] * 5)
    assert sum(_worker_totals(metrics_dir).values()) == 5  # left behind, like an emptyDir

    second, metrics_port = _start(portal_config, tmp_path, metrics_dir, GUNICORN_CMD_ARGS=f"--pid {pidfile}")
    with second as url:
        assert sum(_worker_totals(metrics_dir).values()) == 0  # the old run's files are gone
        _burst(url, ["/"] * 6)
        master = int(pidfile.read_text())
        victim = next(
            pid for pid, n in _worker_totals(metrics_dir).items() if n > 0 and pid in children(master)
        )
        os.kill(victim, signal.SIGKILL)
        wait_for(
            lambda: not (metrics_dir / f"gauge_livemax_{victim}.db").exists(),
            timeout=15,
            what="the dead worker's live gauges to be dropped",
        )
        wait_for(lambda: requests.get(f"{url}/readyz", timeout=2).ok, timeout=15, what="the portal")
        _burst(url, ["/"] * 4)
        # A reload (SIGHUP) replaces the workers in the same master: nothing is emptied.
        workers = children(master)
        os.kill(master, signal.SIGHUP)
        wait_for(
            lambda: not workers & children(master),
            timeout=30,
            what="the reload to replace the workers",
        )
        _burst(url, ["/"] * 2)
        text = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    totals = _samples(text, "portal_http_request_total")
    assert totals == {'{method="GET",status="200"}': 12.0}
    assert _samples(text, "portal_upstream_circuit_state") == {
        '{upstream="gitlab"}': 0.0,
        '{upstream="uptime_kuma"}': 0.0,
        '{upstream="prometheus"}': 0.0,
        '{upstream="alertmanager"}': 0.0,
        '{upstream="taiga"}': 0.0,
    }
    assert len(_samples(text, "portal_build_info")) == 1


def test_the_circuit_reads_open_once_every_worker_has_paused_and_closed_once_back(
    portal_config: dict[str, Any], kuma: SimServer, tmp_path: Path
) -> None:
    """The values the app set in the master (loaded before any worker) are no worker's: with them
    in the live minimum the circuit read closed whatever the workers' breakers said, and
    PortalUpstreamCircuitOpen could never fire."""
    portal_config["upstreams"]["uptime_kuma"].update(breaker_threshold=1)
    portal_config["widgets"]["status"].update(ttl=2, refresh=5)
    kuma.set_fault("error500")
    process, metrics_port = _start(portal_config, tmp_path, tmp_path / "metrics")

    def circuit() -> float:
        text = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        return _samples(text, "portal_upstream_circuit_state")['{upstream="uptime_kuma"}']

    def polled_until(value: float) -> bool:
        _burst(url, ["/widgets/status"] * 8)  # both workers take some
        return circuit() == value

    with process as url:
        assert circuit() == 0.0  # closed before anything failed
        wait_for(lambda: polled_until(2.0), timeout=30, interval=0.5, what="the circuit to read open")
        kuma.set_fault("none")
        wait_for(lambda: polled_until(0.0), timeout=30, interval=0.5, what="the circuit to read closed")


def test_metrics_are_served_without_a_directory_given(portal_config: dict[str, Any], tmp_path: Path) -> None:
    """`make run` and any start outside the image: gunicorn makes a private directory. When the
    package was imported before it was set, prometheus_client counted in each process's memory
    and /metrics answered an empty page."""
    metrics_port = free_port()
    env = {"PORTAL_METRICS_BIND": f"127.0.0.1:{metrics_port}"}
    with patch.dict(os.environ):
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with portal_process(portal_config, tmp_path, workers=2, extra_env=env) as url:
            _burst(url, ["/"] * 6)
            text = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    assert sum(_samples(text, "portal_http_request_total").values()) == 6


def test_a_release_that_changes_only_a_stylesheet_has_another_build_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An open page learns of a release by the build id its polls bring back: a new portal.css
    alone must change it, whatever the image's commit says (often "unknown")."""
    for folder in ("templates", "static/css"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "templates" / "base.html").write_text("<html></html>")
    stylesheet = tmp_path / "static" / "css" / "portal.css"
    stylesheet.write_text("body { color: black; }")
    monkeypatch.setattr(build, "PACKAGE_DIR", tmp_path)
    monkeypatch.setattr(build, "_commit", lambda: "unknown")
    before = build.build_info().build_id
    assert build.build_info().build_id == before  # the same files: the same id
    stylesheet.write_text("body { color: navy; }")
    assert build.build_info().build_id != before
