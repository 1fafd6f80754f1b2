"""Thousands of simulated people with the whole dashboard open, from one thread.

Each person has their own session and polls every card at the card's refresh interval, as htmx
does: the card's last `X-Widget-Version` sent back (a 204 when nothing changed), htmx's headers,
the browser's Accept-Encoding. A person arriving loads every card at once (the page's
`hx-trigger="load"`), then each card every `refresh` seconds.

One asyncio event loop in a thread of its own drives them all over raw HTTP/1.1 (no client
library: a request costs the generator ~0.2 ms of CPU, so 2,000 people, ~370 requests a
second, take a small part of one core; a thread per person would not fit on two cores). Requests
share a pool of keep-alive connections, as the ingress in front of a pod keeps (a connection per
person would exceed gunicorn's `worker_connections`, and is not what the pod sees).

Latency is counted from the moment a poll was due, so a request that waits for a connection
(the generator or the pod falling behind) counts its wait: no coordinated omission.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import os
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .users import FETCHED_HEADER, STATE, VERSION_HEADER, Sample
from .wire import decode

IDLE_CLOSE = 4.0  # s: gunicorn closes a keep-alive connection idle for `keepalive` (5 s)


@dataclass(frozen=True)
class Card:
    """A card's endpoint and how often the page polls it."""

    path: str
    refresh: float


@dataclass
class Person:
    cookie: str
    versions: dict[str, str] = field(default_factory=dict)
    fetched: dict[str, str] = field(default_factory=dict)  # when each card's data was fetched
    states: dict[str, str] = field(default_factory=dict)  # each card's state as last shown


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes  # decoded from its Content-Encoding


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.used = time.monotonic()

    def close(self) -> None:
        self.writer.close()


class Crowd:
    """People polling `cards` on `base`; `join` adds people while it runs, `stop` ends it."""

    def __init__(
        self,
        base: str,
        cards: Sequence[Card],
        *,
        connections: int = 64,
        timeout: float = 10.0,
        language: str = "en",
        keep_bodies: bool = False,
        htmx: bool = True,
    ) -> None:
        self.base = base
        self.cards = list(cards)
        self.timeout = timeout
        self.keep_bodies = keep_bodies
        self.samples: list[Sample] = []
        self.bodies: list[tuple[float, str, int, bytes]] = []  # (at, path, person, body) of each 200
        self.people: list[Person] = []
        host_port = base.split("://", 1)[1]
        self._host, _, port = host_port.partition(":")
        self._port = int(port or 80)
        self._fixed = (
            f"Host: {host_port}\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n"
            f"Accept-Language: {language}\r\n"
        )
        if htmx:  # a card's poll; without: a page load
            self._fixed += f"HX-Request: true\r\nHX-Current-URL: {base}/\r\n"
        self._size = connections
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True, name="crowd")
        self._heap: list[tuple[float, int, int]] = []  # (due, person, card)
        self._wake: asyncio.Event | None = None
        self._pool: asyncio.Queue[_Connection | None] | None = None
        self._stopping = False
        self._sent = 0
        self._inflight: dict[str, float] = {}  # request id -> when it was due
        self.origin = time.monotonic()

    # --- from the calling thread -----------------------------------------------------------

    def start(self) -> Crowd:
        self.origin = time.monotonic()
        self._thread.start()
        while self._pool is None:
            time.sleep(0.01)
        return self

    def join(self, cookies: Sequence[str], ramp: float) -> None:
        """People arriving over `ramp` seconds from now, each loading every card on arrival."""

        def add() -> None:
            now = time.monotonic()
            for cookie in cookies:
                index = len(self.people)
                self.people.append(Person(cookie))
                arrival = now + random.uniform(0, ramp)
                for card_index in range(len(self.cards)):
                    heapq.heappush(self._heap, (arrival, index, card_index))
            assert self._wake is not None
            self._wake.set()

        self._loop.call_soon_threadsafe(add)

    def stop(self) -> list[Sample]:
        self._loop.call_soon_threadsafe(self._halt)
        self._thread.join(self.timeout + 10)
        return self.samples

    def thread_cpu(self) -> float:
        """CPU seconds the generator's thread has used so far."""
        native = self._thread.native_id
        fields = Path(f"/proc/self/task/{native}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def now(self) -> float:
        """Seconds since the crowd started."""
        return time.monotonic() - self.origin

    def wait_until(self, moment: float) -> None:
        time.sleep(max(0.0, moment - self.now()))

    def drain(self, moment: float) -> None:
        """Until every poll due before `moment` has its answer (or timed out)."""
        deadline = time.monotonic() + self.timeout + 1
        while time.monotonic() < deadline:
            try:
                dues = list(self._inflight.values())
            except RuntimeError:  # changed by the loop's thread meanwhile
                continue
            if all(due - self.origin >= moment for due in dues):
                return
            time.sleep(0.05)

    def showing(self, *states: str) -> int:
        """How many of the people's cards show one of `states` now (as their last answer left them)."""
        return sum(1 for person in self.people for state in list(person.states.values()) if state in states)

    def wait_all_fresh(self, limit: float) -> float:
        """Until every person's every card shows data that is not stale (ok or empty); the seconds
        it took. Raises TimeoutError after `limit`."""
        began = time.monotonic()
        while time.monotonic() - began < limit:
            answered = all(len(person.states) == len(self.cards) for person in self.people)
            if answered and self.showing("ok", "empty") == len(self.people) * len(self.cards):
                return time.monotonic() - began
            time.sleep(0.5)
        behind = self.showing("stale", "error", "pending", "loading")
        raise TimeoutError(f"{behind} cards not fresh after {limit} s")

    def window(self, start: float, end: float, path: str | None = None) -> list[Sample]:
        """Samples of polls due between two moments (of one path)."""
        return [s for s in list(self.samples) if start <= s.at < end and (path is None or s.path == path)]

    # --- in the loop's thread -------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._schedule())
        finally:
            self._loop.close()

    def _halt(self) -> None:
        self._stopping = True
        if self._wake is not None:
            self._wake.set()

    async def _schedule(self) -> None:
        self._wake = asyncio.Event()
        self._pool = asyncio.Queue()
        for _ in range(self._size):
            self._pool.put_nowait(None)  # a slot: connected on first use
        tasks: set[asyncio.Task[None]] = set()
        while not self._stopping:
            now = time.monotonic()
            while self._heap and self._heap[0][0] <= now:
                due, person, card = heapq.heappop(self._heap)
                task = asyncio.create_task(self._poll(person, card, due))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                heapq.heappush(self._heap, (due + self.cards[card].refresh, person, card))
            delay = (self._heap[0][0] - now) if self._heap else 1.0
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, delay))
        if tasks:
            await asyncio.wait(tasks, timeout=self.timeout + 2)
        while not self._pool.empty():
            connection = self._pool.get_nowait()
            if connection is not None:
                connection.close()

    async def _poll(self, index: int, card_index: int, due: float) -> None:
        person = self.people[index]
        path = self.cards[card_index].path
        headers = {VERSION_HEADER: person.versions[path]} if path in person.versions else {}
        if headers and path in person.fetched:  # as portal.js says it on a poll
            headers[FETCHED_HEADER] = person.fetched[path]
        self._sent += 1
        request_id = f"bench-{self._sent:08x}"
        headers["X-Request-ID"] = request_id
        self._inflight[request_id] = due
        try:
            answer = await asyncio.wait_for(
                self._request("GET", path, person.cookie, b"", headers), self.timeout
            )
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            self.samples.append(Sample(path, due - self.origin, time.monotonic() - due, 0, "", request_id))
            return
        finally:
            self._inflight.pop(request_id, None)
        seconds = time.monotonic() - due
        state = ""
        if answer.status == 204:
            state = "unchanged"
        elif answer.status == 200:
            found = STATE.search(answer.body)
            state = found.group(1).decode() if found else ""
            person.states[path] = state
            if self.keep_bodies:
                self.bodies.append((due - self.origin, path, index, answer.body))
        version = answer.headers.get(VERSION_HEADER.lower())
        if version:
            person.versions[path] = version
        if answer.status in (200, 204):
            fetched = answer.headers.get(FETCHED_HEADER.lower())
            if fetched:
                person.fetched[path] = fetched
            else:
                person.fetched.pop(path, None)
        self.samples.append(Sample(path, due - self.origin, seconds, answer.status, state, request_id))

    async def _request(
        self, method: str, path: str, cookie: str, body: bytes, headers: dict[str, str]
    ) -> Answer:
        assert self._pool is not None
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        if body:
            extra += f"Content-Length: {len(body)}\r\n"
        request = f"{method} {path} HTTP/1.1\r\n{self._fixed}Cookie: {cookie}\r\n{extra}\r\n".encode() + body
        connection = await self._pool.get()
        try:
            reused = connection is not None and time.monotonic() - connection.used < IDLE_CLOSE
            if connection is not None and not reused:
                connection.close()
            if not reused:
                connection = await self._connect()
            assert connection is not None
            try:
                answer, keep = await self._exchange(connection, request)
            except (OSError, asyncio.IncompleteReadError):
                if not reused:
                    raise
                connection.close()  # closed by the server meanwhile: once more on a new one
                connection = await self._connect()
                answer, keep = await self._exchange(connection, request)
            if not keep:
                connection.close()
                connection = None
            else:
                connection.used = time.monotonic()
        except BaseException:
            if connection is not None:
                connection.close()
            self._pool.put_nowait(None)
            raise
        self._pool.put_nowait(connection)
        return answer

    async def _connect(self) -> _Connection:
        reader, writer = await asyncio.open_connection(self._host, self._port, limit=2**22)
        return _Connection(reader, writer)

    @staticmethod
    async def _exchange(connection: _Connection, request: bytes) -> tuple[Answer, bool]:
        connection.writer.write(request)
        reader = connection.reader
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        lines = head.split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if status in (204, 304):
            raw = b""
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            raw = await _chunked(reader)
        else:
            raw = await reader.readexactly(int(headers.get("content-length", "0")))
        keep = headers.get("connection", "").lower() != "close"
        return Answer(status, headers, decode(raw, headers.get("content-encoding", ""))), keep


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        body += (await reader.readexactly(size + 2))[:-2]  # the chunk, then its CRLF
        if size == 0:  # no trailers: the last chunk's CRLF ended the body
            return bytes(body)


def cache_sources(log: Path) -> dict[str, str]:
    """The portal log's cache outcome of each request ("hit,hit,miss"), by request id."""
    found: dict[str, str] = {}
    with log.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if '"cache"' not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            found[str(record.get("request_id"))] = str(record.get("cache", ""))
    return found


def from_cache(samples: Sequence[Sample], sources: dict[str, str]) -> list[Sample]:
    """The polls the portal answered from its cache alone (every part a hit: no upstream wait)."""
    return [
        s for s in samples if s.request_id in sources and set(sources[s.request_id].split(",")) == {"hit"}
    ]
