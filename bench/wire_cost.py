"""5. Steady-state cost: bytes on the wire per poll, and for a first dashboard load.

Counted over a raw socket (status line, headers and body as they cross it) with the headers
Chromium and htmx send: an unchanged poll sends back the card's version and gets a 204; a
changed poll gets the compressed fragment; a first load fetches the page, each subresource it
names once (empty browser cache) and each card's first fragment.
"""

from __future__ import annotations

from .context import Bench, session_cookie
from .report import at_most
from .wire import BROWSER_HEADERS, fetch, first_load

CARD = "/widgets/status"
POLL_GOAL = 300
FIRST_LOAD_GOAL = 150_000


def measure(bench: Bench) -> None:
    with bench.portal(redis=True) as server:
        cookie = session_cookie(server.url)
        browser = {**BROWSER_HEADERS, "Cookie": cookie}
        htmx = {
            **browser,
            "HX-Request": "true",
            "HX-Current-URL": server.url + "/",
            "HX-Target": "widget-status-body",
        }
        fetch(server.url + CARD, htmx)  # fills the cache
        changed = fetch(server.url + CARD, {**htmx, "X-Widget-Version": "0"})
        unchanged = fetch(
            server.url + CARD, {**htmx, "X-Widget-Version": changed.headers["x-widget-version"]}
        )
        loaded = first_load(server.url, browser)
    section = "9 wire cost"
    bench.add(
        section,
        f"unchanged poll: response bytes (HTTP {unchanged.status}; request {unchanged.sent} B)",
        f"{unchanged.received} B",
        f"≤ {POLL_GOAL} B, a 204",
        unchanged.status == 204 and at_most(unchanged.received, POLL_GOAL),
    )
    bench.add(
        section,
        f"changed poll: response bytes ({changed.headers.get('content-encoding', 'identity')})",
        f"{changed.received:,} B",
    )
    total = sum(exchange.received for _, exchange in loaded)
    bad = [url for url, exchange in loaded if exchange.status != 200]
    bench.add(
        section,
        f"first dashboard load, compressed ({len(loaded)} responses)",
        f"{total / 1000:,.1f} kB",
        f"≤ {FIRST_LOAD_GOAL / 1000:g} kB, all 200",
        at_most(total, FIRST_LOAD_GOAL) and not bad,
    )
    bench.details["wire_cost"] = {
        "unchanged_poll": {"status": unchanged.status, "bytes": unchanged.received, "head": unchanged.head},
        "changed_poll": {
            "status": changed.status,
            "bytes": changed.received,
            "headers": changed.header_sizes,
        },
        "first_load": [
            {
                "url": url,
                "status": exchange.status,
                "bytes": exchange.received,
                "encoding": exchange.headers.get("content-encoding", ""),
            }
            for url, exchange in loaded
        ],
    }
