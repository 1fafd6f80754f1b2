"""A dashboard left open all day: its cards are swapped thousands of times, and the page keeps
nothing of the swaps (nodes, event listeners, timers, memory).

People keep the page open from morning to evening: six cards polled every 30 s are ~5,000 swaps
a day. Here every card is polled again and again with its version dropped, so that each poll
answers the whole body, and in English and French in turn, so that each body differs from the
one on the page in every word: the page morphs it in, as after a change. (The upstreams' data
is left alone: other tests share it.) After a warm-up, the page must hold as many nodes,
listeners and timers as before, and its heap must not grow with the swaps, measured after a
forced garbage collection (Chrome DevTools Protocol: HeapProfiler.collectGarbage,
Performance.getMetrics).
"""

from __future__ import annotations

from dataclasses import dataclass

from playwright.sync_api import CDPSession, Page

from .helpers import SETTLED, OpenPage

# Timers the page has set and not yet cleared or run (added before the page's own scripts).
COUNT_TIMERS = """
(() => {
  const live = new Set();
  window.__liveTimers = live;
  window.__ownTimeout = window.setTimeout.bind(window);
  const [setI, clearI, setT, clearT] = [setInterval, clearInterval, setTimeout, clearTimeout];
  window.setInterval = (f, ms, ...a) => { const id = setI(f, ms, ...a); live.add("i" + id); return id; };
  window.clearInterval = (id) => { live.delete("i" + id); clearI(id); };
  window.setTimeout = (f, ms, ...a) => {
    const id = setT((...b) => { live.delete("t" + id); if (typeof f === "function") f(...b); }, ms, ...a);
    live.add("t" + id);
    return id;
  };
  window.clearTimeout = (id) => { live.delete("t" + id); clearT(id); };
  // The language each card is asked in (no language cookie: the portal follows the header).
  document.addEventListener("htmx:configRequest", (event) => {
    if (window.__askIn) event.detail.headers["Accept-Language"] = window.__askIn;
  });
})();
"""

# Every polled card asked again without its version (a whole body, morphed in); resolves once
# each has settled. Returns how many cards were asked.
SWAP_EVERY_CARD = """async (language) => {
  window.__askIn = language;
  const bodies = [...document.querySelectorAll(".widget-card [hx-trigger*=poll]")];
  const settled = bodies.map((body) => new Promise((done) => {
    body.addEventListener("htmx:afterSettle", done, { once: true });
    window.__ownTimeout(done, 5000);
  }));
  for (const body of bodies) {
    body.querySelector("[data-version]")?.removeAttribute("data-version");
    htmx.trigger(body, "poll");
  }
  await Promise.all(settled);
  return bodies.length;
}"""

WARM_UP = 30  # swaps of every card before the first measure (caches, compiled code)
ROUNDS = 60  # then as many more as half an hour of a day's polling
# A request of the page's own polling may be in flight as it is measured: htmx listens to its
# XMLHttpRequest and its upload (four events each) until the request ends.
IN_FLIGHT = 2 * 8
READINGS = 3  # reads of what the page holds, the least of each counting


@dataclass(frozen=True)
class Held:
    nodes: int
    listeners: int
    heap: float  # bytes used by the JavaScript heap
    intervals: int
    timeouts: int


def held(page: Page, cdp: CDPSession) -> Held:
    """What the page holds once garbage has been collected, read while no request of the page is
    on its way (a card whose data is late asks again soon: its poll may start meanwhile, and its
    request's listeners are not kept). The least of READINGS such reads: a request that started
    and ended between a read and its check would count its listeners; what leaks is in every read."""
    readings: list[dict[str, float]] = []
    for _ in range(10 * READINGS):
        page.wait_for_function(SETTLED)
        for _ in range(2):
            cdp.send("HeapProfiler.collectGarbage")
        found = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        if page.evaluate(SETTLED):
            readings.append(found)
            if len(readings) == READINGS:
                break
        page.wait_for_timeout(200)
    assert readings, "the page never settled"
    found = {
        name: min(reading[name] for reading in readings)
        for name in ("Nodes", "JSEventListeners", "JSHeapUsedSize")
    }
    timers: list[str] = page.evaluate("() => [...window.__liveTimers]")
    return Held(
        nodes=int(found["Nodes"]),
        listeners=int(found["JSEventListeners"]),
        heap=float(found["JSHeapUsedSize"]),
        intervals=sum(1 for t in timers if t.startswith("i")),
        timeouts=sum(1 for t in timers if t.startswith("t")),
    )


def swap(page: Page, rounds: int) -> None:
    for round_ in range(rounds):
        assert page.evaluate(SWAP_EVERY_CARD, ("fr", "en")[round_ % 2]) == 6


def test_thousands_of_swaps_leave_nothing_behind(open_page: OpenPage) -> None:
    page = open_page("/", before=lambda p: p.add_init_script(COUNT_TIMERS))
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    swap(page, WARM_UP)
    assert "in all" in page.inner_text("#widget-incidents")  # the last round asked in English
    before = held(page, cdp)
    swap(page, ROUNDS)
    after = held(page, cdp)
    assert after.listeners <= before.listeners + IN_FLIGHT, (before, after)
    assert after.nodes <= before.nodes * 1.02, (before, after)
    # A card's first turn is a timeout that becomes its interval (portal.js, schedule): no more.
    assert after.intervals <= before.intervals + before.timeouts, (before, after)
    assert after.timeouts <= before.timeouts + 6, (before, after)  # one per card may be pending
    # A leaked card body per swap would be megabytes here; what is left is the engine's noise.
    assert after.heap <= before.heap + 400_000, (before, after)
