"""A tiny threaded HTTP server for upstream simulators, with fault injection and call counts.

Every simulator (Uptime Kuma, GitLab, Prometheus and Alertmanager, Taiga) is a `SimServer` with
routes, and the 404 body of its upstream for the `notfound` fault.
Tests and the benchmark switch faults and read counts either in process (`server.faults`,
`server.calls`) or over HTTP on the same port:

    POST /_sim/fault   {"mode": "timeout", "seconds": 30}   modes: see FAULT_MODES
                       ("only": a path's part, "method": "PATCH": the fault hits those alone)
    POST /_sim/latency {"seconds": 0.3}                    added to every normal answer
    POST /_sim/latency {"seconds": 0.05, "max": 0.3}       a delay drawn in [seconds, max] each time
    GET  /_sim/calls   -> {"total": n, "paths": {"/api/...": n}}
    POST /_sim/reset   clears counts and faults

Responses go out in one write with Nagle's algorithm off (otherwise each waits ~40 ms).
"""

from __future__ import annotations

import json
import random
import re
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

FAULT_MODES = (
    "none",  # normal answers
    "timeout",  # accept, then say nothing for `seconds`
    "error500",  # HTTP 500 with an HTML body
    "unauthorized",  # HTTP 401
    "forbidden",  # HTTP 403 (a token without the scope, a proxy refusing the portal)
    "notfound",  # HTTP 404 JSON like the real API
    "garbage",  # HTTP 200 with a body that is not JSON
    "oversize",  # HTTP 200 with a body of `size` bytes
    "slow",  # HTTP 200, the body dripped a few bytes every `interval` seconds
    "refused",  # the port closed for `seconds` (a restarting upstream), connections open dropped
)


@dataclass
class SimRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class SimResponse:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> SimResponse:
        body = json.dumps(data, ensure_ascii=False).encode()
        return cls(status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


Handler = Callable[[SimRequest, re.Match[str]], SimResponse]


@dataclass
class Faults:
    mode: str = "none"
    seconds: float = 30.0  # timeout: how long to hang
    interval: float = 0.25  # slow: pause between drips
    size: int = 5_000_000  # oversize: body bytes
    only: str | None = None  # apply only to paths containing this text
    method: str | None = None  # apply only to this HTTP method ("PATCH": a change, its read answered)

    def applies_to(self, path: str, method: str = "GET") -> bool:
        return (
            self.mode != "none"
            and (self.only is None or self.only in path)
            and (self.method is None or self.method.upper() == method)
        )


class SimServer:
    """Routes plus faults plus counters, served on 127.0.0.1."""

    def __init__(
        self, name: str, host: str = "127.0.0.1", port: int = 0, not_found: SimResponse | None = None
    ) -> None:
        self.name = name
        # What the `notfound` fault answers: the upstream's own 404 (each tool words it its way).
        self.not_found = not_found or SimResponse.json({"message": "404 Not Found"}, 404)
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.faults = Faults()
        self.latency = 0.0  # seconds added to every normal answer (a slow but working upstream)
        self.latency_max = 0.0  # above `latency`: each answer waits a time drawn between the two
        self.calls: Counter[str] = Counter()
        self.parameters: Counter[str] = Counter()  # query parameter names asked, over every call
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd = _SimHTTPServer((host, port), _RequestHandler, self)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        """Register a handler for METHOD and a full-match path regex."""

        def register(handler: Handler) -> Handler:
            self.routes.append((method, re.compile(pattern), handler))
            return handler

        return register

    def set_fault(self, mode: str, **options: Any) -> None:
        if mode not in FAULT_MODES:
            raise ValueError(f"unknown fault mode {mode!r}")
        with self._lock:
            self.faults = Faults(mode=mode, **options)
        if mode == "refused":
            # Closed now (the next connection is refused); listening again after `seconds`:
            # the control paths share the port, so the closing ends by itself.
            old = self._httpd
            old.shutdown()
            old.socket.close()
            threading.Thread(target=self._reopen, args=(old, self.faults), daemon=True).start()

    def _reopen(self, old: _SimHTTPServer, faults: Faults) -> None:
        self._stop.wait(faults.seconds)
        if self._stop.is_set():
            return
        with self._lock:
            if self.faults is faults:
                self.faults = Faults()
        host, port = old.server_address[:2]
        self._httpd = _SimHTTPServer((str(host), int(port)), _RequestHandler, self)
        self.start()

    def reset(self) -> None:
        with self._lock:
            self.faults = Faults()
            self.latency = self.latency_max = 0.0
            self.calls.clear()
            self.parameters.clear()

    def count(self, path_part: str = "") -> int:
        """Calls whose path contains `path_part` (all calls when empty)."""
        with self._lock:
            return sum(n for path, n in self.calls.items() if path_part in path)

    def start(self) -> SimServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(STOP_POLL,), name=self.name, daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def stop(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    # --- request handling --------------------------------------------------------------

    def handle(self, request: SimRequest, send: Callable[[bytes], None]) -> None:
        if request.path.startswith("/_sim/"):
            send(_encode(self._control(request)))
            return
        with self._lock:
            self.calls[request.path] += 1
            self.parameters.update(request.query.keys())
            faults = self.faults
        if faults.applies_to(request.path, request.method):
            self._misbehave(faults, request, send)
            return
        if self.latency or self.latency_max:
            self._stop.wait(random.uniform(self.latency, max(self.latency, self.latency_max)))
        send(_encode(self._dispatch(request)))

    def _dispatch(self, request: SimRequest) -> SimResponse:
        for method, pattern, handler in self.routes:
            if method != request.method:
                continue
            match = pattern.fullmatch(request.path)
            if match:
                return handler(request, match)
        return SimResponse.json({"detail": "Not found."}, status=404)

    def _control(self, request: SimRequest) -> SimResponse:
        if request.path == "/_sim/calls":
            with self._lock:
                return SimResponse.json({"total": sum(self.calls.values()), "paths": dict(self.calls)})
        if request.path == "/_sim/reset" and request.method == "POST":
            self.reset()
            return SimResponse.json({"ok": True})
        if request.path == "/_sim/fault" and request.method == "POST":
            options = request.json() or {}
            try:
                self.set_fault(options.pop("mode", "none"), **options)
            except (TypeError, ValueError) as exc:
                return SimResponse.json({"error": str(exc)}, status=400)
            return SimResponse.json({"ok": True, "mode": self.faults.mode})
        if request.path == "/_sim/latency" and request.method == "POST":
            options = request.json() or {}
            self.latency = float(options.get("seconds", 0))
            self.latency_max = float(options.get("max", 0))
            return SimResponse.json({"ok": True, "latency": self.latency, "max": self.latency_max})
        return SimResponse.json({"error": "unknown control path"}, status=404)

    def _misbehave(self, faults: Faults, request: SimRequest, send: Callable[[bytes], None]) -> None:
        mode = faults.mode
        if mode == "refused":
            return  # a connection opened before the port closed: dropped without a word
        if mode == "timeout":
            self._stop.wait(faults.seconds)
            return  # then close without a word
        if mode == "error500":
            send(
                _encode(
                    SimResponse(
                        500, b"<html><body>Internal Server Error</body></html>", {"Content-Type": "text/html"}
                    )
                )
            )
        elif mode == "unauthorized":
            send(_encode(SimResponse.json({"detail": "Authentication credentials were not provided."}, 401)))
        elif mode == "forbidden":
            denied = {"detail": "You do not have permission to perform this action."}
            send(_encode(SimResponse.json(denied, 403)))
        elif mode == "notfound":
            send(_encode(self.not_found))
        elif mode == "garbage":
            send(_encode(SimResponse(200, b'<html>\x00{"half": [1, 2', {"Content-Type": "application/json"})))
        elif mode == "oversize":
            body = b'{"padding": "' + b"x" * faults.size + b'"}'
            send(_encode(SimResponse(200, body, {"Content-Type": "application/json"})))
        elif mode == "slow":
            # The real answer, dripped: each read gets a few bytes, so only a deadline stops it.
            real = self._dispatch(request)
            send(_encode(SimResponse(real.status, b"", real.headers), len(real.body)))
            for index in range(0, len(real.body), 8):
                if self._stop.wait(faults.interval):
                    return
                send(real.body[index : index + 8])


def _encode(response: SimResponse, content_length: int | None = None) -> bytes:
    reason = HTTPStatus(response.status).phrase
    length = len(response.body) if content_length is None else content_length
    headers = {"Content-Length": str(length), "Connection": "keep-alive", **response.headers}
    lines = [f"HTTP/1.1 {response.status} {reason}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body


# How often a serving loop looks whether it is asked to stop: `shutdown()` waits for that look,
# and socketserver's default of 0.5 s made each stop (several per test) wait 0.25 s on average.
STOP_POLL = 0.05


class _SimHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type, sim: SimServer) -> None:
        self.sim = sim
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client hanging up (the portal giving up on a slow answer) is expected, not news."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _SimHTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = SimRequest(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        sent = False

        def send(data: bytes) -> None:
            nonlocal sent
            sent = True
            self.wfile.write(data)
            self.wfile.flush()

        try:
            self.server.sim.handle(request, send)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        if not sent:
            self.close_connection = True

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return


def wait_until(check: Callable[[], bool], timeout: float = 5.0, interval: float = 0.02) -> bool:
    """Poll `check` until it is true or `timeout` passes (helper for tests and scripts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()
