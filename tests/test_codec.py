"""Stored values as signed JSON: every kind of typed result round-trips; nothing else is read."""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from dataclasses import dataclass, make_dataclass

import pytest
import requests
import responses

from portal.caching.codec import FORMAT, Codec, ValueRefused
from portal.caching.widget_cache import Entry, Failure
from portal.upstreams.errors import Reason
from portal.upstreams.http import HttpLimits
from portal.widgets.status.client import MonitorStatus, UptimeKumaClient

CODEC = Codec("a-secret-of-the-portal-0123456789")


@responses.activate
def test_a_status_page_round_trips(fixture_json) -> None:  # type: ignore[no-untyped-def]
    base = "http://kuma.test"
    responses.get(f"{base}/api/status-page/main", json=fixture_json("status/page-2.5.json"))
    responses.get(f"{base}/api/status-page/heartbeat/main", json=fixture_json("status/heartbeat-2.5.json"))
    page = UptimeKumaClient(requests.Session(), base, None, HttpLimits()).status_page("main")
    entry = Entry(page, "fp", 1.5)
    again = CODEC.loads(CODEC.dumps(entry))
    assert again == entry
    assert again.value.monitors[0].status is MonitorStatus.UP


def test_every_kind_of_value_round_trips() -> None:
    value = {
        "tuple": (1, "a", None),
        "set": {1, 2},
        "frozen": frozenset({"x"}),
        "when": dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC),
        "day": dt.date(2026, 12, 1),
        "span": dt.timedelta(minutes=3),
        "big": 2**80,
        "bytes": b"\x00\xff",
        3: "an int key",
        "failure": Failure(Reason.of("%(upstream)s failed", upstream="Taiga"), 2.0),
    }
    assert CODEC.loads(CODEC.dumps(value)) == value
    nan = CODEC.loads(CODEC.dumps([math.nan, math.inf, -math.inf]))
    assert math.isnan(nan[0]) and nan[1:] == [math.inf, -math.inf]


def test_a_value_signed_elsewhere_or_changed_is_refused() -> None:
    stored = CODEC.dumps({"ok": True})
    with pytest.raises(ValueRefused):
        Codec("another secret").loads(stored)
    with pytest.raises(ValueRefused):
        CODEC.loads(stored.replace(b"true", b"false"))
    with pytest.raises(ValueRefused):
        CODEC.loads(b"\x80\x04pickle")


def test_only_dataclasses_and_enums_the_portal_imported_can_be_named() -> None:
    forged = json.dumps({"$c": "os:system", "f": {}}).encode()
    signature = CODEC._sign(forged)
    with pytest.raises(ValueRefused):
        CODEC.loads(FORMAT + b":" + signature + b":" + forged)
    with pytest.raises(TypeError):
        CODEC.dumps(object())


@dataclass(frozen=True)
class Shipment:
    """A stored kind of value, as one release defines it."""

    name: str
    due: dt.date


def test_a_value_of_another_releases_shape_is_a_miss(monkeypatch: pytest.MonkeyPatch) -> None:
    """A release that changed a stored dataclass (here `due` became a datetime, same name) reads
    the older release's entries as misses, never as values of the wrong types; a release that
    did not change it reads them as they are."""
    stored = CODEC.dumps([Shipment("kit", dt.date(2026, 12, 4))])
    module = sys.modules[__name__]
    same = make_dataclass("Shipment", [("name", "str"), ("due", "dt.date")], frozen=True)
    changed = make_dataclass("Shipment", [("name", "str"), ("due", "dt.datetime")], frozen=True)
    for kind in (same, changed):
        kind.__module__, kind.__qualname__ = __name__, "Shipment"
    monkeypatch.setattr(module, "Shipment", same)
    assert CODEC.loads(stored) == [same("kit", dt.date(2026, 12, 4))]
    monkeypatch.setattr(module, "Shipment", changed)
    with pytest.raises(ValueRefused, match="another shape"):
        CODEC.loads(stored)
