"""`make bench`: the arithmetic behind its figures, and a smoke run of every phase (`--quick`).

No timed assertion here: the smoke run must produce every figure, whatever their verdicts.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from markupsafe import escape

from bench import chart
from bench.capacity import per_minute
from bench.faults import FAULTS, cells
from bench.host import CpuTimes, cpu_times, steal_share
from bench.people import from_cache
from bench.pipelines import gitlab_calls
from bench.report import Figure, readme_block, table
from bench.soak import (
    bad_log_lines,
    grown_sockets,
    peer_changes,
    peer_ports,
    sockets_by_peer,
    threads_and_sockets,
)
from bench.stack import IMAGE_ENV
from bench.stats import amplification_limit, calls_per_key, percentile
from bench.users import Sample, card_words
from bench.wire import page_assets
from bench.writes import task_form
from bench.wrk import MARK, parse, run
from portal.observability.logs import json_formatter
from portal.upstreams import http
from portal.widgets.pipelines.client import PROJECT_FORBIDDEN

from .support.image import read_stages
from .support.processes import ROOT


def test_fetches_are_counted_per_key_on_the_page_path() -> None:
    calls = {
        "/api/status-page/platform": 3,
        "/api/status-page/heartbeat/platform": 3,
        "/api/status-page/observability": 2,
        "/api/status-page/heartbeat/observability": 1,  # a fetch that failed after the page
        "/_sim/calls": 5,
    }
    assert calls_per_key(calls) == {"status:platform": 3, "status:observability": 2}


def test_gitlab_calls_are_sorted_by_whom_they_serve() -> None:
    calls = {
        "/api/v4/projects/platform%2Fportal": 2,  # the project (shared)
        "/api/v4/projects/101/pipelines": 2,  # its pipelines, by id (shared)
        "/api/v4/projects/platform%2Fportal/pipelines": 7,  # a person's, by the configured path
        "/api/v4/merge_requests": 6,  # a person's reviews and assignments
        "/api/v4/projects/101/pipelines/5004": 1,  # details
        "/api/v4/projects/101/merge_requests/42": 1,
        "/_sim/calls": 3,
    }
    assert gitlab_calls(calls) == {"projects": 4, "mine": 13, "details": 2, "other": 0}


def test_the_soak_counts_error_lines_as_the_portal_writes_them() -> None:
    def line(level: int) -> str:
        record = logging.getLogger("portal.test").makeRecord("portal.test", level, __file__, 1, "x", (), None)
        return json_formatter().format(record)

    text = "\n".join([line(logging.INFO), line(logging.ERROR), line(logging.WARNING), line(logging.CRITICAL)])
    assert bad_log_lines(text) == 2
    assert bad_log_lines(text + "\nTraceback (most recent call last):\n[]") == 4  # not JSON, or not an object


def test_the_soak_tells_the_sockets_a_worker_opened_from_the_connections_it_accepted() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        _, own_before, served_before = threads_and_sockets(os.getpid(), port)
        with socket.create_connection(("127.0.0.1", port)) as outbound:  # as to Redis
            accepted, _ = listener.accept()  # as a person's connection
            with accepted:
                _, own, served = threads_and_sockets(os.getpid(), port)
                assert outbound.getsockname()[1] != port
    assert (own - own_before, served - served_before) == (1, 1)


def test_the_soak_names_the_peer_at_the_far_end_of_each_socket_a_worker_opened() -> None:
    with (
        socket.create_server(("127.0.0.1", 0)) as redis_like,
        socket.create_server(("127.0.0.1", 0)) as served,
    ):
        redis_port, served_port = redis_like.getsockname()[1], served.getsockname()[1]
        config = {
            "cache": {"redis_url": f"redis://127.0.0.1:{redis_port}/0"},
            "upstreams": {
                "gitlab": {"url": "http://127.0.0.1:1/"},
                "taiga": {"url": "http://127.0.0.1:1/api/"},
            },
            "auth": {"oidc": {"server_url": "http://127.0.0.1:2"}},
        }
        peers = peer_ports(config)
        assert peers == {redis_port: "redis", 1: "gitlab+taiga", 2: "keycloak"}
        before = sockets_by_peer(os.getpid(), served_port, peers)
        with (
            socket.create_connection(("127.0.0.1", redis_port)),
            socket.create_connection(("127.0.0.1", served_port)),
        ):
            during = sockets_by_peer(os.getpid(), served_port, peers)
    assert during["redis"] - before["redis"] == 1
    assert during["other"] - before["other"] == 1  # our end of the connection to the served port
    changes = peer_changes([{7: before}, {7: during}])
    assert f"redis {before['redis']}→{during['redis']}" in changes


def test_steal_is_the_hosts_share_of_the_machines_cpu_time_between_two_readings(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text("cpu  100 0 50 800 10 0 0 40 30 0\ncpu0 1 2 3\n")
    before = cpu_times(stat)
    stat.write_text("cpu  160 0 70 900 10 0 0 60 50 0\ncpu0 1 2 3\n")
    after = cpu_times(stat)
    assert (before.total, before.steal) == (1000, 40)
    assert steal_share(before, after) == 20 / 200  # guest time is inside user: not counted twice
    assert steal_share(after, after) == 0.0
    assert cpu_times(tmp_path / "absent") == CpuTimes(0, 0)


def test_this_machine_reports_its_cpu_times() -> None:
    assert cpu_times().total > 0


def test_a_pool_reaching_what_the_other_worker_held_is_not_growth_a_climb_past_it_is() -> None:
    def readings(first: list[int], second: list[int]) -> list[dict[int, Counter[str]]]:
        return [
            {1: Counter(taiga=a, redis=13), 2: Counter(taiga=b, redis=13)}
            for a, b in zip(first, second, strict=True)
        ]

    # One worker's pool opens its second connection late; its sibling held two from the start.
    assert grown_sockets(readings([1, 1, 1, 1, 2, 2], [2, 2, 2, 2, 2, 2])) == []
    # A leak: one more connection every few readings, past what any worker held.
    assert grown_sockets(readings([2, 2, 3, 3, 4, 5], [2, 2, 2, 2, 2, 2])) == ["taiga (worker 1: 4.5 > 2)"]
    # A peer that appears only late counts from zero.
    late = readings([1] * 6, [1] * 6)
    for reading in late[-2:]:
        reading[2]["other"] = 1
    assert grown_sockets(late) == ["other (worker 2: 1 > 0)"]


def test_the_bench_runs_workers_with_the_images_memory_settings() -> None:
    _, runtime = read_stages(ROOT / "Dockerfile")
    assert IMAGE_ENV and {name: runtime.env[name] for name in IMAGE_ENV} == IMAGE_ENV


def test_cpu_quantities_and_the_people_a_limit_holds() -> None:
    assert chart.cores("2") == 2.0
    assert chart.cores("1500m") == 1.5
    assert chart.people_within(30.0, "2") == 4000  # 2 cores × 60,000 ms / 30 ms per person
    assert chart.people_within(30.0, "500m") == 1000
    assert chart.people_within(0.0, "2") == 0


def test_the_charts_cpu_limit_gives_each_gunicorn_worker_a_core() -> None:
    values = yaml.safe_load(chart.VALUES.read_text(encoding="utf-8"))
    assert chart.cores(chart.cpu_limit()) >= values["gunicorn"]["workers"]
    assert chart.memory_limit() == values["resources"]["limits"]["memory"]


def test_amplification_limit_is_one_fetch_per_ttl_plus_the_first_per_cache() -> None:
    assert amplification_limit(120, 20) == 7
    assert amplification_limit(120, 25) == 6
    assert amplification_limit(120, 20, workers=2) == 14


def test_nearest_rank_percentile() -> None:
    values = sorted(float(n) for n in range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile([], 99) == 0


def test_verdicts_and_table() -> None:
    figures = [
        Figure("1", "ratio", "0.7", "≥ 0.6", True),
        Figure("1", "short one", "0.3", "≥ 0.6", False),
        Figure("1", "informative", "12 req/s"),
    ]
    assert [f.verdict for f in figures] == ["pass", "SHORT", ""]
    lines = table(figures).splitlines()
    assert len(lines) == 5 and all(line.startswith("|") and line.endswith("|") for line in lines)


def test_wrk_summary_line_is_parsed() -> None:
    line = (
        f'{MARK}{{"duration_us": 2000000, "requests": 1000, "bytes": 5000, "p50_us": 1500, "p90_us": 2000, '
        '"p99_us": 9000, "max_us": 12000, "socket_errors": 1, "statuses": {"200": 990, "500": 10}}'
    )
    result = parse("Running 2s test\n" + line + "\n")
    assert result.rps == 500 and result.p99_ms == 9
    assert result.server_errors == 10 and result.errors == 11


def test_wrk_sends_back_what_the_last_answer_said_as_the_page_does() -> None:
    """The unchanged poll of figure 1 follows the card's version: wrk's connections send back the
    latest X-Widget-Version they received, not the one they started with."""
    counter = itertools.count(1)
    received: list[str] = []

    class Versions(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            received.append(self.headers.get("X-Widget-Version", ""))
            self.send_response(200)
            self.send_header("X-Widget-Version", f"v{next(counter)}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Versions)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        follow = ("X-Widget-Version",)
        result = run(url, 1, {"X-Widget-Version": "v0"}, connections=2, threads=1, follow=follow)
    finally:
        server.shutdown()
        server.server_close()
    assert result.statuses.get("200", 0) > 10
    assert received.count("v0") <= 2  # each connection's first request only
    sent = {f"v{n}" for n in range(1, len(received) + 1)}
    assert set(received) - {"v0"} <= sent and len(set(received)) > 10


def test_a_first_load_fetches_every_subresource_once() -> None:
    html = """<link rel="stylesheet" href="/a.css?v=1"><link rel="icon" href="/i.svg">
      <script src="/h.js" defer></script><script src="/h.js"></script>
      <svg><use href="/ui.svg#x"></use></svg><svg><use href="/ui.svg#y"></use></svg>
      <img src="data:image/png;base64,AA"><img src="https://elsewhere.example/x.png">
      <div hx-get="/widgets/status" hx-trigger="load, poll"></div>"""
    urls, fragments = page_assets(html)
    assert urls == ["/a.css?v=1", "/i.svg", "/h.js", "/ui.svg"]
    assert fragments == ["/widgets/status"]


def test_a_task_form_gives_the_item_its_version_and_the_statuses_it_may_move_to() -> None:
    fragment = """<form class="status-menu__list" hx-post="/widgets/tasks/task/42/status?sort=due&amp;soon=1"
            hx-target="closest .widget-card__body" hx-swap="innerHTML" data-focus-after="x-status">
        <input type="hidden" name="version" value="7">
        <p class="status-menu__title">Change the status</p>
        <button type="submit" name="status" value="3" class="status-menu__option hue-1"
          aria-current="true" disabled><span class="status-menu__dot"></span><bdi>In progress</bdi></button>
        <button type="submit" name="status" value="4" class="status-menu__option hue-2">
          <span class="status-menu__dot" aria-hidden="true"></span><bdi>Ready for test</bdi></button>
        <button type="submit" name="status" value="5" class="status-menu__option hue-3">
          <span class="status-menu__dot"></span><bdi>Done</bdi> <span>(closes it)</span></button>
      </form>"""
    form = task_form(fragment)
    assert form is not None
    assert (form.url, form.item, form.version) == ("/widgets/tasks/task/42/status?sort=due&soon=1", 42, 7)
    assert (form.current, form.choices) == (3, [4])
    assert task_form("<p>No task</p>") is None


def test_the_fault_matrix_covers_every_upstream_and_fault_and_the_quick_run_each_fault() -> None:
    full, quick = cells(False), cells(True)
    assert len(full) == len(set(full)) == 5 * 7
    assert sorted(fault for _, fault in quick) == sorted(FAULTS)
    assert len({upstream for upstream, _ in quick}) == 5


def test_the_fault_matrix_looks_for_the_words_the_portal_says() -> None:
    """Its words come from the portal's messages (a rewording cannot make every fault look
    unstated), as a card's HTML holds them."""
    assert card_words(http.ANSWERED_STATUS, status=500) == "answered HTTP 500"
    assert (
        card_words(http.REFUSED_CREDENTIALS, status=401) == "refused the portal&#39;s credentials (HTTP 401)"
    )
    values = {"upstream": "GitLab", "status": 403, "seconds": "2", "kb": 20_000, "project": "platform/portal"}
    messages = [http.TIMED_OUT, http.UNREACHABLE, http.REFUSED_CREDENTIALS, http.NOT_JSON, http.TOO_LARGE]
    messages += [http.REFUSED_WITHOUT_CREDENTIALS]
    messages += [http.TOO_SLOW, http.ANSWERED_STATUS]
    cards = [str(escape(message % values)) for message in (*messages, PROJECT_FORBIDDEN)]
    cards.append(str(escape(http.ANSWERED_STATUS % {**values, "status": 500})))
    for fault, (_, _, words) in FAULTS.items():
        assert all(len(w) >= 12 for w in words), fault
        assert any(w in card for w in words for card in cards), fault


def test_upstream_calls_per_minute_split_gitlab_by_whom_they_serve() -> None:
    calls = {
        "uptime_kuma": {"/api/status-page/platform": 4, "/api/status-page/heartbeat/platform": 4},
        "gitlab": {"/api/v4/projects/101/pipelines": 3, "/api/v4/merge_requests": 10},
    }
    assert per_minute(calls, 30) == {
        "uptime_kuma": 16,
        "gitlab projects": 6,
        "gitlab mine": 20,
        "gitlab details": 0,
    }


def test_polls_answered_from_the_cache_alone_are_those_whose_every_part_was_a_hit() -> None:
    samples = [Sample("/widgets/status", 0, 0.01, 204, "unchanged", f"bench-{n}") for n in range(4)]
    sources = {"bench-0": "hit,hit", "bench-1": "hit,miss", "bench-2": "coalesced"}  # bench-3: not logged
    assert [s.request_id for s in from_cache(samples, sources)] == ["bench-0"]


@pytest.mark.peers
@pytest.mark.timeout(620)
def test_a_quick_bench_produces_every_figure(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--results", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (result,) = tmp_path.glob("*-quick.json")
    document = json.loads(result.read_text())
    sections = {figure["section"] for figure in document["figures"]}
    assert sections == {
        "1 capacity",
        "2 upstream load",
        "2b Taiga load",
        "3 isolation",
        "4 faults",
        "5 writes",
        "6 first load",
        "7 soak",
        "8 stampede",
        "9 wire cost",
    }
    assert all(figure["value"] for figure in document["figures"])
    assert document["machine"]["cores"]
    assert 0 <= document["details"]["host_steal"] < 1
    assert "the host took" in readme_block(document)
    assert document["details"]["soak"]["sockets_by_peer"][0]  # each worker's sockets, by peer
    (within_limit,) = (
        f["value"] for f in document["figures"] if f["name"].startswith("people the chart's CPU")
    )
    assert int(within_limit.replace(",", "")) > 0
    print(done.stdout[done.stdout.index("| ") :])  # the table, in the test log


@pytest.mark.peers
@pytest.mark.timeout(200)
@pytest.mark.parametrize(
    "tool",
    [
        ["bench.inprocess", "--calls", "200"],
        ["bench.cpu", "--runs", "1", "--seconds", "1"],
        ["bench.cpu", "--runs", "1", "--seconds", "1", "--no-redis"],
    ],
)
def test_the_profiling_tools_measure_the_portal_and_the_ceiling(tool: list[str]) -> None:
    """The tools bench/README.md gives for comparing two versions of the hot path still run."""
    done = subprocess.run(
        [sys.executable, "-m", *tool], cwd=ROOT, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = re.findall(r"^(portal |ceiling): +(\d+) µs", done.stdout, re.M)
    assert [name for name, _ in figures] == ["portal ", "ceiling"]
    assert all(int(us) > 0 for _, us in figures)
