"""A scrape target whose metric values the test sets: `ControlledTarget.set("portal_test_value", 0.93)`."""

from __future__ import annotations

import math
import re
import threading

from simulators.base import SimRequest, SimResponse, SimServer

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
EXPOSITION = "text/plain; version=0.0.4; charset=utf-8"


def _sample(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _escape(label_value: str) -> str:
    return label_value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class ControlledTarget(SimServer):
    """`GET /metrics` on a free loopback port: gauges as the test last set them.

    A gauge that was never set, or was cleared, is absent from the exposition, so Prometheus marks
    its series stale at the next scrape.
    """

    def __init__(self) -> None:
        super().__init__("controlled-target")
        self._values: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
        self._values_lock = threading.Lock()
        self.route("GET", "/metrics")(self._metrics)

    def start(self) -> ControlledTarget:
        super().start()
        return self

    @property
    def address(self) -> str:
        """host:port, as Prometheus's targets are written."""
        return f"127.0.0.1:{self.port}"

    def set(self, name: str, value: float, **labels: str) -> None:
        """Set gauge `name{labels}` to `value` (it is exposed from the next scrape on)."""
        if not _NAME.fullmatch(name) or not all(_NAME.fullmatch(k) for k in labels):
            raise ValueError(f"not a metric or label name: {name} {sorted(labels)}")
        with self._values_lock:
            self._values.setdefault(name, {})[tuple(sorted(labels.items()))] = value

    def clear(self, name: str | None = None) -> None:
        """Stop exposing gauge `name` (every gauge when None)."""
        with self._values_lock:
            if name is None:
                self._values.clear()
            else:
                self._values.pop(name, None)

    def exposition(self) -> str:
        """The text format (0.0.4) of the gauges set now."""
        lines: list[str] = []
        with self._values_lock:
            for name, series in sorted(self._values.items()):
                lines.append(f"# TYPE {name} gauge")
                for labels, value in sorted(series.items()):
                    pairs = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                    selector = f"{{{pairs}}}" if labels else ""
                    lines.append(f"{name}{selector} {_sample(value)}")
        return "".join(line + "\n" for line in lines)

    def _metrics(self, request: SimRequest, match: object) -> SimResponse:
        return SimResponse(200, self.exposition().encode(), {"Content-Type": EXPOSITION})
