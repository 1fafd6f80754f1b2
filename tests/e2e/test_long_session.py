"""A dashboard left open all day: its cards are swapped thousands of times, and the page keeps
nothing of the swaps (nodes, event listeners, timers, memory).

People keep the page open from morning to evening: six cards polled every 30 s are ~5,000 swaps
a day. Here every card is polled again and again with its version dropped, so that each poll
answers the whole body and the page morphs it in, as after a change (the status card's data
moves too). After a warm-up, the page must hold as many nodes, listeners and timers as before,
and its heap must not grow with the swaps, measured after a forced garbage collection (Chrome
DevTools Protocol: HeapProfiler.collectGarbage, Performance.getMetrics).
"""

from __future__ import annotations

from dataclasses import dataclass

from playwright.sync_api import CDPSession, Page

from simulators.uptime_kuma import KumaWorld

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
})();
"""

# Every polled card asked again without its version (a whole body, morphed in); resolves once
# each has settled. Returns how many cards were asked.
SWAP_EVERY_CARD = """async () => {
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

WARM_UP = 40  # swaps of every card before the first measure (caches, compiled code)
ROUNDS = 80  # then as many more as about 40 minutes of a day's polling


@dataclass(frozen=True)
class Held:
    nodes: int
    listeners: int
    heap: float  # bytes used by the JavaScript heap
    intervals: int
    timeouts: int


def held(page: Page, cdp: CDPSession) -> Held:
    """What the page holds once garbage has been collected."""
    page.wait_for_function(SETTLED)
    for _ in range(2):
        cdp.send("HeapProfiler.collectGarbage")
    found = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    timers: list[str] = page.evaluate("() => [...window.__liveTimers]")
    return Held(
        nodes=int(found["Nodes"]),
        listeners=int(found["JSEventListeners"]),
        heap=float(found["JSHeapUsedSize"]),
        intervals=sum(1 for t in timers if t.startswith("i")),
        timeouts=sum(1 for t in timers if t.startswith("t")),
    )


def swap(page: Page, rounds: int, world: KumaWorld) -> None:
    monitor = next(iter(world.monitors.values()))
    for round_ in range(rounds):
        monitor.base_ping = 20.0 + round_ % 7  # the status card's data moves too
        assert page.evaluate(SWAP_EVERY_CARD) == 6


def test_thousands_of_swaps_leave_nothing_behind(open_page: OpenPage, world: KumaWorld) -> None:
    page = open_page("/", before=lambda p: p.add_init_script(COUNT_TIMERS))
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    swap(page, WARM_UP, world)
    before = held(page, cdp)
    swap(page, ROUNDS, world)
    after = held(page, cdp)
    assert after.listeners <= before.listeners, (before, after)
    assert after.nodes <= before.nodes * 1.02, (before, after)  # the status card's text may wrap otherwise
    assert after.intervals <= before.intervals, (before, after)
    assert after.timeouts <= before.timeouts + 6, (before, after)  # one per card may be pending
    # A leaked card body per swap would be megabytes here; what is left is the engine's noise.
    assert after.heap <= before.heap + 400_000, (before, after)
