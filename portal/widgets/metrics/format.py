"""Numbers, units, durations and small inline SVG drawings, in the user's language.

Called while a card's view is built (in a request, so Flask-Babel knows the language): values
with their unit (`1.5 GiB` / `1,5 Gio`, `93.5%` / `93,5 %`), durations (`2 hr 5 min` /
`2 h 5 min`), and the geometry of gauges, bars, sparklines and ribbons as SVG attributes (the
Content-Security-Policy forbids `style` attributes: sizes and positions are SVG attributes, the
colours are classes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from babel.numbers import format_decimal
from babel.units import format_unit
from flask_babel import get_locale, gettext

from ...upstreams.errors import N_

Unit = Literal["percent", "bytes", "bytes_per_second", "per_second", "count", "seconds"]

# Binary prefixes (IEC): "GiB" in English, "Gio" in French, through the catalogue.
_BYTES = (
    N_("%(value)s B"),
    N_("%(value)s KiB"),
    N_("%(value)s MiB"),
    N_("%(value)s GiB"),
    N_("%(value)s TiB"),
    N_("%(value)s PiB"),
)
_RATES = (
    N_("%(value)s B/s"),
    N_("%(value)s KiB/s"),
    N_("%(value)s MiB/s"),
    N_("%(value)s GiB/s"),
    N_("%(value)s TiB/s"),
    N_("%(value)s PiB/s"),
)


def number(value: float, decimals: int = 0) -> str:
    """A number in the user's language with exactly `decimals` decimals (grouped thousands)."""
    pattern = "#,##0" + ("." + "0" * decimals if decimals > 0 else "")
    return str(format_decimal(value, format=pattern, locale=get_locale()))


def _scaled(value: float, templates: Sequence[str], decimals: int) -> str:
    index = 0
    magnitude = abs(value)
    while magnitude >= 1024 and index < len(templates) - 1:
        magnitude /= 1024
        value /= 1024
        index += 1
    places = 0 if index == 0 else decimals
    return str(gettext(templates[index], value=number(value, places)))


def duration(seconds: float) -> str:
    """A duration in its two largest units: "2 hr 5 min" / "2 h 5 min", "45 sec", "3 days 4 hr"."""
    locale = get_locale()
    total = max(0, round(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    units = [(days, "duration-day"), (hours, "duration-hour"), (minutes, "duration-minute")]
    if total < 3600:
        units.append((secs, "duration-second"))
    shown = [(n, unit) for n, unit in units if n]
    if not shown:
        return str(format_unit(0, "duration-second", length="short", locale=locale))
    first = next(i for i, (n, _) in enumerate(units) if n)
    chosen = [(n, unit) for n, unit in units[first : first + 2] if n]
    return " ".join(str(format_unit(n, unit, length="short", locale=locale)) for n, unit in chosen)


def value_text(value: float, unit: Unit, decimals: int) -> str:
    """A finite value with its unit, in the user's language."""
    if unit == "percent":
        return str(gettext("%(value)s%%", value=number(value, decimals)))
    if unit == "bytes":
        return _scaled(value, _BYTES, decimals)
    if unit == "bytes_per_second":
        return _scaled(value, _RATES, decimals)
    if unit == "per_second":
        return str(gettext("%(value)s/s", value=number(value, decimals)))
    if unit == "seconds":
        if abs(value) < 1:
            return str(gettext("%(value)s ms", value=number(value * 1000, max(0, decimals - 1))))
        if abs(value) < 60:
            return str(gettext("%(value)s s", value=number(value, decimals)))
        return duration(value)
    return number(value, decimals)


# Up to this many decimals more than the gauge's own, where fewer would mislead (below).
MORE_DECIMALS = 3
_PLAIN_UNITS = ("percent", "per_second", "count")  # written as the number itself


def limit_text(limit: float, unit: Unit, decimals: int) -> str:
    """A threshold written exactly (0.5 at 0 decimals was "0": "critical ≤ 0" for 0.4), up to
    MORE_DECIMALS more than the gauge's."""
    places = decimals
    if unit in _PLAIN_UNITS:
        while places < decimals + MORE_DECIMALS and round(limit, places) != limit:
            places += 1
    return value_text(limit, unit, places)


def reading_text(value: float, unit: Unit, decimals: int, limits: Sequence[float]) -> str:
    """A value written so that it never reads as a threshold it has not reached: 89.96 against
    90 is "89.96 %", not "90.0 %" tagged Warning beside "critical ≥ 90.0 %"."""
    places = decimals
    while places < decimals + MORE_DECIMALS and any(
        limit != value and value_text(value, unit, places) == value_text(limit, unit, places)
        for limit in limits
    ):
        places += 1
    return value_text(value, unit, places)


def special_text(value: float) -> str:
    """How Prometheus writes a value that is not a finite number."""
    if math.isnan(value):
        return "NaN"
    return "+Inf" if value > 0 else "-Inf"


# --- drawings ----------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def fraction(value: float, low: float, high: float) -> float:
    """Where `value` sits between `low` and `high`, clamped to 0..1."""
    if not high > low:
        return 0.0
    return min(1.0, max(0.0, (value - low) / (high - low)))


ARC_RADIUS = 40.0
ARC_CENTRE = (50.0, 48.0)


def arc_point(part: float) -> tuple[float, float]:
    """The point of the gauge's half circle at `part` (0: left end, 1: right end)."""
    angle = math.pi * (1 - part)
    cx, cy = ARC_CENTRE
    return cx + ARC_RADIUS * math.cos(angle), cy - ARC_RADIUS * math.sin(angle)


def arc_path(start: float, end: float) -> str:
    """The `d` of the half circle's arc from `start` to `end` (fractions 0..1, in a 100×56 box)."""
    if end - start <= 0.0005:
        return ""
    x1, y1 = arc_point(start)
    x2, y2 = arc_point(end)
    r = _fmt(ARC_RADIUS)
    return f"M{_fmt(x1)} {_fmt(y1)}A{r} {r} 0 0 1 {_fmt(x2)} {_fmt(y2)}"


def arc_tick(part: float) -> tuple[str, str, str, str]:
    """A short radial tick across the arc at `part`: x1, y1, x2, y2."""
    angle = math.pi * (1 - part)
    cx, cy = ARC_CENTRE
    inner, outer = ARC_RADIUS - 7, ARC_RADIUS + 7
    return (
        _fmt(cx + inner * math.cos(angle)),
        _fmt(cy - inner * math.sin(angle)),
        _fmt(cx + outer * math.cos(angle)),
        _fmt(cy - outer * math.sin(angle)),
    )


SPARK_WIDTH = 200.0
SPARK_HEIGHT = 40.0


def sparkline(
    points: Sequence[tuple[float, float]], start: float, end: float, step: float
) -> tuple[tuple[str, ...], float | None, float | None]:
    """Polylines (`points` attributes) of a series in a 200×40 box, broken at gaps; its min and max."""
    finite = [(t, v) for t, v in points if math.isfinite(v) and start <= t <= end]
    if not finite or end <= start:
        return (), None, None
    low = min(v for _, v in finite)
    high = max(v for _, v in finite)
    pad = 3.0
    span = high - low

    def y(v: float) -> float:
        if span == 0:
            return SPARK_HEIGHT / 2
        return pad + (SPARK_HEIGHT - 2 * pad) * (1 - (v - low) / span)

    lines: list[list[str]] = []
    previous: float | None = None
    for t, v in finite:
        if previous is None or t - previous > step * 1.5:
            lines.append([])
        x = SPARK_WIDTH * (t - start) / (end - start)
        lines[-1].append(f"{_fmt(x)},{_fmt(y(v))}")
        previous = t
    # A lone point is drawn as a tiny segment so that it shows.
    drawn = tuple(" ".join(line if len(line) > 1 else [line[0], line[0]]) for line in lines)
    return drawn, low, high


RIBBON_WIDTH = 1440.0  # one unit per minute of the day


def ribbon(intervals: Sequence[tuple[float, float]], start: float, end: float) -> tuple[tuple[str, str], ...]:
    """`x` and `width` of each interval on a 1440-wide ribbon from `start` to `end` (at least 2 wide)."""
    if end <= start:
        return ()
    scale = RIBBON_WIDTH / (end - start)
    found = []
    for begin, finish in intervals:
        left = max(start, begin)
        right = min(end, finish)
        if right < left:
            continue
        x = (left - start) * scale
        width = max(2.0, (right - left) * scale)
        x = min(x, RIBBON_WIDTH - width)
        found.append((_fmt(x), _fmt(width)))
    return tuple(found)
