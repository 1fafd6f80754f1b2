"""wrk (apt `wrk`) with a Lua script: headers, optional pacing, and a JSON summary with status counts."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

MARK = "BENCH-JSON "

_SCRIPT = """
wrk.method = "GET"
{headers}
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args)
  statuses = {{}}
  sent = {{}}
  for name, value in pairs(wrk.headers) do sent[name] = value end
end
{follow_names}
function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
{follow}
end
{request}
{delay}
function done(summary, latency, requests)
  local counts = {{}}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do counts[status] = (counts[status] or 0) + n end
  end
  local parts = {{}}
  for status, n in pairs(counts) do table.insert(parts, string.format('"%s": %d', status, n)) end
  local e = summary.errors
  io.write(string.format(
    '{mark}{{"duration_us": %d, "requests": %d, "bytes": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "socket_errors": %d, "statuses": {{%s}}}}\\n',
    summary.duration, summary.requests, summary.bytes, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect + e.read + e.write + e.timeout, table.concat(parts, ", ")))
end
"""


_FOLLOW = """  for name, value in pairs(headers) do
    local sent_as = follow[string.lower(name)]
    if sent_as then sent[sent_as] = value end
  end"""


@dataclass
class WrkResult:
    """One wrk run: rate, latency percentiles (ms) and what came back."""

    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    bytes: int
    socket_errors: int
    statuses: dict[str, int] = field(default_factory=dict)
    runs_rps: list[float] = field(default_factory=list)  # when the best of several runs
    lopsided_runs: int = 0  # of those, the runs set aside: one worker nearly idle (throughput.best_of)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status.startswith("5"))

    @property
    def errors(self) -> int:
        """Anything but 200 and 204, and broken connections."""
        return self.socket_errors + sum(n for s, n in self.statuses.items() if s not in ("200", "204"))

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string for header values


def script(headers: dict[str, str], delay_ms: float | None = None, follow: tuple[str, ...] = ()) -> str:
    """The Lua script. `follow`: response headers whose last value each connection sends back
    on its next request, as the page sends back its card's version (then every request is
    built anew, which costs wrk a little)."""
    lines = "\n".join(f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items())
    delay = f"function delay() return {max(0, round(delay_ms))} end" if delay_ms else ""
    # Only when asked: the loop over each answer's headers costs wrk CPU on the cores it shares
    # with the server, and more on a faster server (the ceiling), which would favour the portal.
    request, names, followed = "", "", ""
    if follow:
        names = ", ".join(f"[{lua_string(name.lower())}] = {lua_string(name)}" for name in follow)
        names = f"local follow = {{{names}}}"
        followed = _FOLLOW
        request = "function request() return wrk.format(nil, nil, sent) end"
    return _SCRIPT.format(
        headers=lines, delay=delay, follow_names=names, follow=followed, request=request, mark=MARK
    )


def parse(output: str) -> WrkResult:
    """The summary line the script's done() printed."""
    line = next(line for line in output.splitlines() if line.startswith(MARK))
    data = json.loads(line[len(MARK) :])
    seconds = data["duration_us"] / 1e6
    return WrkResult(
        requests=data["requests"],
        seconds=round(seconds, 2),
        rps=round(data["requests"] / seconds, 1) if seconds else 0.0,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        bytes=data["bytes"],
        socket_errors=data["socket_errors"],
        statuses=data["statuses"],
    )


@dataclass
class Running:
    """A wrk run under way."""

    process: subprocess.Popen[str]
    script: Path
    seconds: float

    def finish(self) -> WrkResult:
        try:
            stdout, stderr = self.process.communicate(timeout=self.seconds + 60)
        finally:
            self.script.unlink(missing_ok=True)
        if self.process.returncode != 0:
            raise RuntimeError(f"wrk failed: {stderr}")
        return parse(stdout)


def start(
    url: str,
    seconds: float,
    headers: dict[str, str] | None = None,
    connections: int = 32,
    threads: int = 2,
    delay_ms: float | None = None,
    follow: tuple[str, ...] = (),
) -> Running:
    """`wrk -t2 -c32 -dNs --latency URL` with the headers (REAL_PEERS.md § Load), in the background."""
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed: run `make test-deps`")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script(headers or {}, delay_ms, follow))
    command = [binary, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
    command += ["--timeout", "10s", "--latency", "-s", handle.name, url]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return Running(process, Path(handle.name), seconds)


def run(
    url: str,
    seconds: float,
    headers: dict[str, str] | None = None,
    connections: int = 32,
    threads: int = 2,
    delay_ms: float | None = None,
    follow: tuple[str, ...] = (),
) -> WrkResult:
    """One wrk run to its end."""
    return start(url, seconds, headers, connections, threads, delay_ms, follow).finish()
