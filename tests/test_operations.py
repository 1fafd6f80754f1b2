"""Operations basics: probes, JSON logs with a request id, vendored assets, the demo command."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient
from prometheus_client import generate_latest

from demo.__main__ import metrics_port_for
from demo.running import stop_group
from portal.observability.logs import json_formatter

from .support.processes import ROOT, children, free_port, portal_env, portal_process, wait_for

VENDOR = ROOT / "portal" / "static" / "vendor"


def test_healthz_and_readyz(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json() == {"status": "ready"}  # nothing about the build or the cache, to anyone


def test_a_request_logs_one_json_line_with_its_id(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="portal.access")
    response = client.get("/widgets/status", headers={"X-Request-ID": "abc12345-request"})
    assert response.headers["X-Request-ID"] == "abc12345-request"
    records = [r for r in caplog.records if r.name == "portal.access"]
    assert len(records) == 1
    line = json.loads(json_formatter().format(records[0]))
    assert line["request_id"] == "abc12345-request"
    assert line["route"] == "/widgets/status"
    assert line["status"] == 200
    assert line["widget"] == "status"
    assert line["cache"] == "miss,miss"
    assert line["user"] == "demo-0001"
    assert line["level"] == "INFO"
    assert isinstance(line["duration_ms"], float)
    assert 0 <= line["cpu_ms"] <= line["duration_ms"] + 1  # the thread's CPU within the request


def test_a_poll_that_finds_nothing_new_is_logged_at_debug_and_still_counted(
    app: Any, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Nearly every poll is a 204: at INFO, Loki gets the lines that say something."""
    caplog.set_level(logging.DEBUG, logger="portal.access")
    first = client.get("/widgets/status")
    unchanged = {"X-Widget-Version": first.headers["X-Widget-Version"]}
    assert client.get("/widgets/status", headers=unchanged).status_code == 204
    lines = [(r.status, r.levelname) for r in caplog.records if r.name == "portal.access"]  # type: ignore[attr-defined]
    assert lines == [(200, "INFO"), (204, "DEBUG")]

    caplog.clear()
    caplog.set_level(logging.INFO, logger="portal.access")
    assert client.get("/widgets/status", headers=unchanged).status_code == 204
    assert client.get("/").status_code == 200
    assert [r.route for r in caplog.records if r.name == "portal.access"] == ["/"]  # type: ignore[attr-defined]
    exposition = generate_latest(app.extensions["portal_metrics"].registry).decode()
    assert 'portal_http_request_total{method="GET",status="204"} 2.0' in exposition


def test_log_lines_hold_any_field_and_the_traceback() -> None:
    try:
        raise ValueError("on purpose")
    except ValueError:
        record = logging.getLogger("portal.test").makeRecord(
            "portal.test",
            logging.ERROR,
            __file__,
            1,
            "failed for %s",
            ("ana",),
            sys.exc_info(),
            extra={"when": dt.date(2026, 11, 24), "odd": {1, 2} - {1}, "text": "<b>é</b>"},
        )
    line = json.loads(json_formatter().format(record))
    assert list(line)[:4] == ["time", "level", "logger", "message"]
    assert line["message"] == "failed for ana" and line["level"] == "ERROR"
    # RFC 3339 in UTC, to the millisecond, as Loki's pipelines parse it.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"]), line["time"]
    assert dt.datetime.fromisoformat(line["time"]).utcoffset() == dt.timedelta(0)
    assert line["when"] == "2026-11-24" and line["odd"] == "{2}" and line["text"] == "<b>é</b>"
    assert "ValueError: on purpose" in line["exc_info"]
    assert "args" not in line and "exc_text" not in line  # the record's own attributes stay out


def test_log_lines_take_any_value_json_can_hold() -> None:
    def line(**extra: object) -> tuple[str, dict[str, Any]]:
        record = logging.getLogger("portal.test").makeRecord(
            "portal.test", logging.INFO, __file__, 1, "odd values", (), None, extra=extra
        )
        text = json_formatter().format(record)
        return text, json.loads(text)

    text, found = line(by_code={404: "missing"}, ratio=float("nan"), person="Élodie")
    assert found["by_code"] == {"404": "missing"}
    assert found["ratio"] is None  # strict JSON has no NaN
    assert found["person"] == "Élodie" and "Élodie" in text  # UTF-8, not escaped
    _, found = line(huge=2**70)  # wider than orjson's 64 bits: the standard encoder writes it
    assert found["huge"] == 2**70


def test_a_hostile_request_id_is_replaced(client: FlaskClient) -> None:
    for hostile in ("<script>alert(1)</script>", "x" * 500, "short"):
        response = client.get("/healthz", headers={"X-Request-ID": hostile})
        assert response.headers["X-Request-ID"] != hostile
        assert len(response.headers["X-Request-ID"]) == 32


def test_upstream_failures_are_logged_at_warning_without_secrets(
    make_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Credentials in the URL are refused by the configuration (test_config.py); a query the
    # configuration takes may still hold what should not be logged: the log drops it.
    app = make_app(
        lambda c: c["upstreams"]["uptime_kuma"].update(
            url=f"http://127.0.0.1:{free_port()}/kuma?session=s3cret"
        )
    )
    app.test_client().get("/widgets/status")
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and r.name == "portal.caching.widget_cache"
    ]
    assert warnings
    line = json_formatter().format(warnings[0])
    assert json.loads(line)["upstream"] == "uptime_kuma"
    assert "s3cret" not in line


def test_vendored_assets_match_their_recorded_checksums() -> None:
    manifest = json.loads((VENDOR / "vendor.json").read_text())
    names = {p["name"]: p["version"] for p in manifest["packages"]}
    assert names == {"bulma": "1.0.4", "htmx.org": "2.0.11", "simple-icons": "16.37.0"}
    for package in manifest["packages"]:
        for relative, meta in package["files"].items():
            digest = hashlib.sha256((VENDOR / relative).read_bytes()).hexdigest()
            assert digest == meta["sha256"], relative


@pytest.mark.peers
def test_the_trimmed_bulma_is_what_the_trim_writes_from_todays_sources(tmp_path: Path) -> None:
    """A template that starts using a Bulma class must come with `make css` (the page is served
    the trimmed file); the check fails on a file one byte off."""
    script = ROOT / "scripts" / "trim_bulma.mjs"
    check = subprocess.run(
        ["node", str(script), "--check"], check=False, capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 0, check.stderr
    # The same check against a copy of the tree with one byte changed in the trimmed file.
    copy = tmp_path / "tree"
    for part in ("scripts", "portal"):
        shutil.copytree(ROOT / part, copy / part, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    (copy / "tests" / "e2e").mkdir(parents=True)
    for name in ("package.json", "node_modules"):
        (copy / "tests" / "e2e" / name).symlink_to(ROOT / "tests" / "e2e" / name)
    trimmed = copy / "portal" / "static" / "vendor" / "bulma-1.0.4" / "bulma.portal.min.css"
    trimmed.write_text(trimmed.read_text() + " ")
    stale = subprocess.run(
        ["node", str(copy / "scripts" / "trim_bulma.mjs"), "--check"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert stale.returncode == 1 and "make css" in stale.stderr


def test_gunicorn_serves_json_logs(tmp_path: Path, portal_config: dict[str, Any]) -> None:
    with portal_process(portal_config, tmp_path, workers=2) as url:
        assert requests.get(f"{url}/readyz", timeout=5).json()["status"] == "ready"
        assert requests.get(f"{url}/", timeout=5).status_code == 200
    log = next(tmp_path.glob("portal-*.log")).read_text().splitlines()
    parsed = [json.loads(line) for line in log if line.strip()]  # every line is JSON
    assert any(p.get("logger") == "gunicorn.error" and "Booting worker" in p["message"] for p in parsed)
    assert any(p.get("event") == "request" and p.get("route") == "/" for p in parsed)
    # One line per request: gunicorn's access log stays off without PORTAL_ACCESS_LOG.
    assert not any(p.get("logger") == "gunicorn.access" for p in parsed)
    # Each worker's collector skips the app the master loaded, and runs less often.
    tuned = [
        re.fullmatch(r"Worker \d+: (\d+) objects frozen, collector thresholds (.*)", p["message"])
        for p in parsed
    ]
    found = [match.groups() for match in tuned if match]
    assert len(found) == 2, found
    assert all(int(frozen) > 50_000 and thresholds == "(20000, 50, 20)" for frozen, thresholds in found), (
        found
    )


def _start_demo(output: Path, **extra_env: str) -> tuple[subprocess.Popen[bytes], str]:
    """`python -m demo` in a session of its own, writing to `output`; its base URL once ready."""
    port = free_port()
    env = {**os.environ, "DEMO_PORT": str(port), "DEMO_METRICS_PORT": str(free_port()), **extra_env}
    env.pop("PORTAL_CONFIG", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "demo"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(f"{base}/readyz", timeout=1).ok, timeout=60, what="the demo")
    except BaseException:
        stop_group(process, grace=45)
        raise
    return process, base


def _workers_of_a_clean_stop(process: subprocess.Popen[bytes], output: Path) -> set[str]:
    """The process (the demo, or gunicorn's master) exited 0 and every gunicorn worker booted
    said it exited (none was killed at the master's graceful timeout); the workers' pids."""
    said = output.read_text(encoding="utf-8", errors="replace")
    tail = "\n".join(said.splitlines()[-30:])
    assert process.returncode == 0, tail
    assert "Shutting down: Master" in said, tail
    booted = set(re.findall(r"Booting worker with pid: (\d+)", said))
    assert booted, tail
    assert set(re.findall(r"Worker exiting \(pid: (\d+)\)", said)) == booted, tail
    return booted


def test_make_run_serves_the_demo(tmp_path: Path) -> None:
    """`python -m demo` (what `make run` runs): simulators and portal, every widget alive, its
    metrics served; stopped, it ends cleanly, its workers never killed for outliving gunicorn's
    graceful timeout, and its scratch directories (configuration, database, metrics) gone."""
    output = tmp_path / "demo.log"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    process, base = _start_demo(output, TMPDIR=str(scratch))
    try:
        page = requests.get(base, timeout=5, headers={"Accept-Language": "en"}).text
        assert "Demo" in page
        card = requests.get(f"{base}/widgets/status", timeout=10, headers={"Accept-Language": "en"})
        assert card.status_code == 200
        assert 'class="widget-content is-ok"' in card.text
        assert "SonarQube indisponible" in card.text
        said = output.read_text(encoding="utf-8")
        metrics = re.search(r"Its Prometheus metrics on (\S+)", said)
        assert metrics, said
        counted = requests.get(metrics[1], timeout=5).text
        assert 'portal_http_request_total{method="GET",status="200"}' in counted, counted[:500]
        assert any(scratch.iterdir())
    finally:
        # Past gunicorn's graceful timeout (20 s) the master kills its workers: wait longer
        # than that, so that a slow stop is reported below rather than left running.
        stop_group(process, grace=45)
    _workers_of_a_clean_stop(process, output)
    assert list(scratch.iterdir()) == []


def test_a_stop_reaching_the_demo_while_gunicorns_master_is_busy_kills_no_worker(tmp_path: Path) -> None:
    """Ctrl-C or a `kill` of the demo's group, while gunicorn's master cannot run (a loaded
    machine): the master hears of it when it can, and stops its workers in order. Reached by the
    signal directly, the workers used to exit first; the master started new ones, one of which
    missed the stop and was killed 20 s later."""
    output = tmp_path / "demo.log"
    process, _ = _start_demo(output)
    try:
        (master,) = children(process.pid)
        wait_for(lambda: len(children(master)) == 2, timeout=30, what="both workers")
        workers = {str(pid) for pid in children(master)}
        os.kill(master, signal.SIGSTOP)
        try:
            os.killpg(process.pid, signal.SIGTERM)
            time.sleep(1.5)  # long enough for a worker that heard it to be gone (it wakes each second)
        finally:
            os.kill(master, signal.SIGCONT)
    finally:
        stop_group(process, grace=45)
    assert _workers_of_a_clean_stop(process, output) == workers  # none started after the stop


SLOW_BOOT_CONFIG = """
import time

exec(compile(open({conf!r}).read(), "gunicorn.conf.py", "exec"))
_post_fork = post_fork


def post_fork(server, worker):
    _post_fork(server, worker)
    time.sleep(3)  # a slow boot, before gunicorn installs the worker's own signal handlers
"""


def test_a_stop_while_the_workers_boot_is_taken_not_lost(
    tmp_path: Path, portal_config: dict[str, Any]
) -> None:
    """The master is stopped while its workers are still booting: each worker takes the stop
    once it has booted and exits, instead of living on until the graceful timeout kills it."""
    conf = tmp_path / "slow-boot.conf.py"
    conf.write_text(SLOW_BOOT_CONFIG.format(conf=str(ROOT / "gunicorn.conf.py")), encoding="utf-8")
    env = portal_env(portal_config, tmp_path, free_port(), workers=2)
    output = tmp_path / "gunicorn.log"
    with output.open("wb") as sink:
        master = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(conf), "portal.wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(
            lambda: output.read_text().count("Booting worker with pid") == 2,
            timeout=60,
            what="two booting workers",
        )
        master.terminate()  # as Kubernetes stops a pod: TERM to the master alone
        master.wait(45)
    finally:
        stop_group(master, grace=45)
    booted = _workers_of_a_clean_stop(master, output)
    said = output.read_text(encoding="utf-8")
    assert len(booted) == 2
    assert said.count("SIGTERM received while booting, taken now") == 2, said[-3000:]


@pytest.mark.parametrize("variable", ["DEMO_PORT", "DEMO_METRICS_PORT"])
def test_make_run_on_a_busy_port_says_which_in_one_line(variable: str) -> None:
    """A port already listened on: one line naming it and the variable to change, nothing started."""
    ports = {"DEMO_PORT": str(free_port()), "DEMO_METRICS_PORT": str(free_port())}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports[variable] = str(taken.getsockname()[1])
        done = subprocess.run(
            [sys.executable, "-m", "demo"],
            cwd=ROOT,
            env={**os.environ, **ports, "DEMO_HOST": "127.0.0.1"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert done.stdout == ""  # no simulator and no "Portal demo on ..." before the refusal
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert f"Port {ports[variable]} on 127.0.0.1 is already in use" in lines[0]
    assert f"make run {variable}=" in lines[0]
    assert "Address already in use" not in done.stderr


def test_the_demos_metrics_port_moves_with_its_port() -> None:
    """So that `make run DEMO_PORT=8001` alone runs beside a first demo (both ports taken before)."""
    assert [metrics_port_for(port) for port in ("8000", "8001", "8300")] == ["9100", "9101", "9400"]
    assert metrics_port_for("65000") == "9100" and metrics_port_for("x") == "9100"


def test_the_readme_says_how_to_move_the_demo() -> None:
    first_screen = "\n".join((ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:20])
    assert "make run" in first_screen and "make test" in first_screen and "DEMO_PORT" in first_screen


def test_gunicorn_access_error_and_upstream_failure_lines_are_json_without_tokens(
    tmp_path: Path, portal_config: dict[str, Any], kuma: Any
) -> None:
    kuma.set_fault("error500")
    env = {"PORTAL_ACCESS_LOG": "1", "PORTAL_METRICS_BIND": f"127.0.0.1:{free_port()}"}
    with portal_process(portal_config, tmp_path, workers=2, extra_env=env) as url:
        assert requests.get(f"{url}/?token=s3cret-token", timeout=5).status_code == 200
        assert requests.get(f"{url}/widgets/status?access_token=s3cret-token", timeout=10).status_code == 200
        # A calendar feed's token is its path (no such feed here: 404, logged all the same).
        assert requests.get(f"{url}/feeds/taiga/s3cret-token.ics", timeout=5).status_code == 404
    text = next(tmp_path.glob("portal-*.log")).read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is JSON
    assert "s3cret-token" not in text
    access = [e for e in lines if e["logger"] == "gunicorn.access" and "/readyz" not in e["message"]]
    assert len(access) == 3 and all({"time", "level", "message"} <= line.keys() for line in access)
    assert any('"GET /feeds/taiga/<token>.ics HTTP/1.1" 404' in line["message"] for line in access)
    assert any('"GET /widgets/status HTTP/1.1" 200' in line["message"] for line in access)
    requests_logged = [line for line in lines if line.get("event") == "request"]
    assert {line["route"] for line in requests_logged} == {"/", "/widgets/status", "/feeds/taiga/<token>.ics"}
    failures = [line for line in lines if line.get("event") == "upstream_error"]
    assert failures and all(f["level"] == "WARNING" and f["upstream"] == "uptime_kuma" for f in failures)
    assert any(line["logger"] == "gunicorn.error" and "Metrics on" in line["message"] for line in lines)
