"""The page is served a Bulma cut to what it uses (scripts/trim_bulma.mjs): every element of the
dashboard, its menus open, must be styled exactly as the full Bulma styles it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page

from .helpers import ANIMATIONS_DONE, SETTLED, OpenPage

FULL = "/static/vendor/bulma-1.0.4/bulma.min.css"
# Every element's computed style and its ::before and ::after, kept in the page (the lists are too
# big to carry over the wire twice); DIFFER compares the page's styles now with the kept ones.
STYLES = """() => [...document.querySelectorAll('*')].flatMap((el) =>
  [null, '::before', '::after'].map((pseudo) => {
    const style = getComputedStyle(el, pseudo);
    if (pseudo && style.content === 'none') return 'none';  // not drawn
    return [...style].filter((name) => !name.startsWith('--'))
      .map((name) => name + ':' + style.getPropertyValue(name)).join(';');
  }))"""
KEEP = f"() => {{ window.__styles = ({STYLES})(); return window.__styles.length; }}"
DIFFER = f"""() => {{
  const now = ({STYLES})(), kept = window.__styles, elements = document.querySelectorAll('*'), out = [];
  for (let i = 0; i < kept.length; i++) if (kept[i] !== now[i]) {{
    const before = new Set(kept[i].split(';')), el = elements[Math.floor(i / 3)];
    const changed = now[i].split(';').filter((p) => !before.has(p)).slice(0, 4).join('; ');
    out.push(`${{el.tagName}}.${{el.className}}${{['', '::before', '::after'][i % 3]}}: ${{changed}}`);
  }}
  return out;
}}"""
FREEZABLE = """document.addEventListener('htmx:beforeRequest', (e) => {
  if (window.__frozen) e.preventDefault();
})"""
SWAP = """(href) => new Promise((resolve) => {
  const link = [...document.querySelectorAll('link[rel=stylesheet]')].find((l) => l.href.includes('/bulma'));
  link.addEventListener('load', () => resolve(), { once: true });
  link.href = href;
})"""


def _frozen(page: Page) -> None:
    """No more polls, nor the page's clock (its durations are rewritten every 30 s): the DOM
    must stay the same between two readings. Every menu open."""
    page.evaluate("() => { window.__frozen = true; }")
    page.wait_for_function(SETTLED)  # a poll already on its way lands first
    page.clock.pause_at(datetime.fromtimestamp(page.evaluate("Date.now()") / 1000 + 1, tz=UTC))
    page.evaluate("() => document.querySelectorAll('details').forEach((d) => { d.open = true; })")
    page.evaluate(ANIMATIONS_DONE)


@pytest.mark.parametrize(
    ("language", "scheme", "width"),
    [("fr", "dark", 390), ("en", "light", 1440)],
    ids=["phone-fr-dark", "wide-en-light"],
)
def test_every_element_is_styled_as_the_full_bulma_styles_it(
    open_page: OpenPage, language: str, scheme: str, width: int
) -> None:
    page = open_page(
        "/",
        language=language,
        scheme=scheme,
        width=width,
        height=900,
        before=lambda p: (p.add_init_script(FREEZABLE), p.clock.install()),
    )
    served = page.evaluate(
        "() => [...document.styleSheets].map((s) => s.href || '').filter((h) => h.includes('/bulma'))"
    )
    assert len(served) == 1 and "bulma.portal.min.css" in served[0], served
    _frozen(page)
    assert page.evaluate(KEEP) > 1000
    page.evaluate(SWAP, FULL)
    page.evaluate(ANIMATIONS_DONE)
    assert page.evaluate(DIFFER) == []
    # The comparison sees a difference when there is one: without Bulma at all, many elements change.
    page.evaluate("() => { document.querySelector(\"link[href*='/bulma']\").disabled = true; }")
    assert len(page.evaluate(DIFFER)) > 100
