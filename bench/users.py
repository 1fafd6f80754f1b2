"""Simulated browsers: each polls its URLs every N seconds the way a dashboard card does.

A user sends back the X-Widget-Version it last received (the server answers 204 when nothing
changed), its session cookie, htmx's headers and the browser's Accept-Encoding. Every answer
is recorded: when, how long, status, and the card's state (`is-ok`, `is-stale`, ...).

Threads rather than locust: the figures these users produce are upstream call counts, statuses
and card states, at a few requests per second per user (not a throughput), and the users must
speak the card's protocol exactly (version header, 204); a thread per user does that in a few
lines and needs no second event loop.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import requests
from markupsafe import escape

from .stats import percentile

STATE = re.compile(rb'class="widget-content is-([a-z]+)"')
VERSION_HEADER = "X-Widget-Version"
FETCHED_HEADER = "X-Widget-Fetched-At"  # when the data a card shows was fetched (sent back on polls)


@dataclass(frozen=True)
class Sample:
    """One answer: path, start (s since the users started), seconds taken, status, card state."""

    path: str
    at: float
    seconds: float
    status: int  # 0: no answer (connection error or client timeout)
    state: str = ""  # the card's state for a 200 fragment, "unchanged" for a 204
    request_id: str = ""  # the X-Request-ID sent (bench/people.py), to find the request in the log


@dataclass
class Users:
    """`count` users, each polling every path in turn every `interval` s (started spread out)."""

    base: str
    cookies: Sequence[str]
    paths: Sequence[str]
    count: int
    interval: float
    timeout: float = 20.0
    keep_bodies: bool = False
    language: str = "fr-FR,fr;q=0.9,en;q=0.8"
    samples: list[Sample] = field(default_factory=list)
    bodies: list[tuple[float, str, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.origin = 0.0

    def start(self) -> Users:
        self.origin = time.monotonic()
        for index in range(self.count):
            offset = self.interval * index / self.count  # users open the page at different times
            thread = threading.Thread(
                target=self._run, args=(index, offset), daemon=True, name=f"user-{index}"
            )
            thread.start()
            self._threads.append(thread)
        return self

    def run_for(self, seconds: float) -> list[Sample]:
        self.start()
        time.sleep(seconds)
        return self.stop()

    def stop(self) -> list[Sample]:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)
        return self.samples

    def now(self) -> float:
        """Seconds since the users started."""
        return time.monotonic() - self.origin

    def wait_until(self, moment: float) -> None:
        """Sleep until `moment` seconds after the users started."""
        time.sleep(max(0.0, moment - self.now()))

    def _run(self, index: int, offset: float) -> None:
        session = requests.Session()
        session.headers.update(
            {
                "Cookie": self.cookies[index % len(self.cookies)],
                "Accept-Encoding": "gzip, br",
                "Accept-Language": self.language,
                "HX-Request": "true",
                "HX-Current-URL": self.base + "/",
            }
        )
        versions: dict[str, str] = {}
        next_tick = self.origin + offset + random.uniform(0, 0.01)
        while not self._stop.wait(max(0.0, next_tick - time.monotonic())):
            for path in self.paths:
                self._poll(session, path, versions)
            next_tick += self.interval
        session.close()

    def _poll(self, session: requests.Session, path: str, versions: dict[str, str]) -> None:
        headers = {VERSION_HEADER: versions[path]} if path in versions else {}
        started = time.monotonic()
        try:
            response = session.get(self.base + path, headers=headers, timeout=self.timeout)
        except requests.RequestException:
            self._record(Sample(path, started - self.origin, time.monotonic() - started, 0))
            return
        seconds = time.monotonic() - started
        state = ""
        if response.status_code == 204:
            state = "unchanged"
        elif response.status_code == 200:
            found = STATE.search(response.content)
            state = found.group(1).decode() if found else ""
            if self.keep_bodies and state not in ("", "ok"):
                with self._lock:
                    self.bodies.append((started - self.origin, path, response.content))
        version = response.headers.get(VERSION_HEADER)
        if version:
            versions[path] = version
        self._record(Sample(path, started - self.origin, seconds, response.status_code, state))

    def _record(self, sample: Sample) -> None:
        with self._lock:
            self.samples.append(sample)


def summary(samples: Sequence[Sample], path: str | None = None) -> dict[str, object]:
    """Count, statuses, states and latency percentiles (ms) of some samples."""
    chosen = [s for s in samples if path is None or s.path == path]
    seconds = sorted(s.seconds for s in chosen)
    statuses: dict[str, int] = {}
    states: dict[str, int] = {}
    for sample in chosen:
        statuses[str(sample.status)] = statuses.get(str(sample.status), 0) + 1
        if sample.state:
            states[sample.state] = states.get(sample.state, 0) + 1
    return {
        "requests": len(chosen),
        "statuses": statuses,
        "states": states,
        "p50_ms": round(percentile(seconds, 50) * 1000, 2),
        "p99_ms": round(percentile(seconds, 99) * 1000, 2),
        "max_ms": round((seconds[-1] if seconds else 0.0) * 1000, 2),
    }


def card_words(msgid: str, **values: object) -> str:
    """What a card says for `msgid` in English, as its HTML holds it (escaped): the longest
    stretch of the message that the `values` given fill and the others (the upstream's name, a
    configured limit) do not interrupt."""
    text = re.sub(r"%\((\w+)\)s", lambda m: str(values[m[1]]) if m[1] in values else "\0", msgid)
    return str(escape(max(text.split("\0"), key=len).strip()))


def failed(samples: Sequence[Sample], allowed: tuple[int, ...] = (200, 204)) -> int:
    """Answers with another status, or none at all."""
    return sum(1 for sample in samples if sample.status not in allowed)


def server_errors(samples: Sequence[Sample]) -> int:
    """5xx answers and no answer at all."""
    return sum(1 for sample in samples if sample.status == 0 or sample.status >= 500)
