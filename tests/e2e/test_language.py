"""The language switch translates the whole page: no English left in French, nor the reverse."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from simulators.uptime_kuma import KumaWorld

from ..test_i18n import french_typography_problems
from .helpers import SETTLED, OpenPage, PageProblems

# Upstream and configuration data, shown as it comes: not the interface's words.
DATA = ", ".join(
    [
        ".tool-tile__name",
        ".status-row__name",
        ".status-group__title",
        ".status-page__title",
        ".incident-note__title",
        ".incident-note__content",
        ".user-chip__name",
        ".user-chip__avatar",
        ".user-menu__name",  # the user's own name, username, e-mail, roles and groups
        ".user-menu__detail",
        ".user-menu__tags .tag",
        ".user-menu__switch-option",
        ".portal-brand__name",
        "bdi",  # the pipelines and Taiga cards isolate upstream text (refs, titles, subjects) in <bdi>
        ".pipeline-row__title a",  # its title: the whole ref or title
        ".pipeline-row__meta [title^='@']",  # a GitLab username
        ".pipeline-mine__who",
        ".user-menu__extra .user-menu__label",  # "GitLab", over the user's GitLab account
        ".alert-row__name",  # alerts as Prometheus and Alertmanager give them
        ".alert-row__summary",
        ".alert-row__description",
        ".alert-label",
        ".alert-mute q",
        ".day__marks",  # a calendar day's deadlines, named in its title
    ]
)
# Every piece of interface text: text nodes and the attributes people hear or see.
INTERFACE_TEXT = """(data) => {
  const found = [];
  // Elements that declare their own language (the language switch) are in that language. What
  // a <noscript> holds is its markup as text while scripts run (test_first_paint.py reads its
  // words with scripts off).
  const skip = (el) => el.closest(data) || el.closest("body [lang]") || el.closest("noscript");
  const path = (el) => {
    const parts = [];
    for (; el && el !== document.documentElement; el = el.parentElement) {
      parts.unshift(el.tagName + ":" + Array.prototype.indexOf.call(el.parentElement.children, el));
    }
    return parts.join("/");
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.replace(/\\s+/g, " ").trim();
    if (text && !skip(node.parentElement)) found.push([path(node.parentElement) + "#text", text]);
  }
  for (const el of document.querySelectorAll("[title], [aria-label], [placeholder], [alt], [data-label]")) {
    if (skip(el)) continue;
    for (const name of ["title", "aria-label", "placeholder", "alt", "data-label"]) {
      const value = el.getAttribute(name);
      if (value) found.push([path(el) + "@" + name, value.replace(/\\s+/g, " ").trim()]);
    }
  }
  found.push(["title", document.title]);
  found.push(["description", document.querySelector('meta[name="description"]').content]);
  return found;
}"""
# The same in both languages by nature: numbers, units, codes, names.
NEUTRAL = re.compile(
    r"^#?[\d\s.,:%·/+-]*(ms)?$"  # numbers and units, a pipeline's number
    r"|^(EN|FR|v[\d.]+|DevSecOps Portal)$"  # language codes, version, the configured title
    r"|^(.+: )?(Information|Maintenance|Pipelines)$"  # words spelt alike (a tile dot: "<monitor>: <state>")
    r"|^(.+: )?(Information|Maintenance|OK|Info|info)$"  # spelt alike (a tile dot: "<monitor>: <state>")
    r"|^(min|max) [\d\s.,%]*$"  # a sparkline's lowest and highest values
)


def _interface_text(page: Page) -> dict[str, str]:
    return dict(page.evaluate(INTERFACE_TEXT, DATA))


_CLOCK = re.compile(r"\b\d{1,2}:\d{2}(\s?[AP]M)?")


def _clock_free(texts: dict[str, str]) -> dict[str, str]:
    """The texts with times of day and numbers blanked: a card may refresh meanwhile (a new
    "Updated at") and a minute pass ("27 min ago" becomes "28 min ago", "running for 4 min"
    becomes "running for 4 min 30 sec", "just now" becomes "1 min ago"): the words must stay."""
    return {
        key: _AGO.sub("AGO", _DURATION.sub(r"\1", re.sub(r"\d+", "N", _CLOCK.sub("HH:MM", text))))
        for key, text in texts.items()
    }


_DURATION = re.compile(r"(N \w+)(?: N \w+)+")  # "N min N sec": one amount, whatever its units
_AGO = re.compile(r"\bjust now\b|\bN [\w.]+ ago\b")  # a moment the page words against its clock


# A card still completing a part (the tasks card reads Taiga's statuses in each language once)
# says so and asks again soon: the words are compared once every card has all its parts.
COMPLETE = """() => !document.querySelector('.widget-content[data-poll="soon"]')"""


def _switch_language(page: Page, code: str) -> None:
    page.locator(f".lang-switch__option[hreflang={code}]").click()
    page.wait_for_function(f"() => document.documentElement.lang === '{code}'")
    page.wait_for_load_state("load")  # the new page's script has run: SETTLED means something
    page.wait_for_function(SETTLED)  # the cards and the user menu's lines too
    page.wait_for_function(COMPLETE, timeout=20_000)
    page.wait_for_function(SETTLED)


@pytest.mark.parametrize("path", ["/", "/no-such-page"])
def test_the_switch_translates_every_word(open_page: OpenPage, problems: PageProblems, path: str) -> None:
    problems.allow_console("status of 404")
    page = open_page(path, language="en")
    page.wait_for_function(COMPLETE, timeout=20_000)
    page.wait_for_function(SETTLED)
    english = _interface_text(page)
    _switch_language(page, "fr")
    french = _interface_text(page)
    assert english.keys() == french.keys(), "the page has a different shape in French"
    same = {key: text for key, text in english.items() if french[key] == text and not NEUTRAL.match(text)}
    assert same == {}, f"the same in both languages: {same}"
    _switch_language(page, "en")
    assert _clock_free(_interface_text(page)) == _clock_free(english)


# The same text, its spaces as they are (no-break spaces kept): the French proofreader reads it.
RAW_TEXT = INTERFACE_TEXT.replace('.replace(/\\s+/g, " ").trim()', "")


def test_french_typography_on_every_card(open_page: OpenPage) -> None:
    """No-break spaces before : ; ? ! and inside « », on the whole page with every card loaded."""
    page = open_page("/", language="fr")
    page.wait_for_function("() => document.querySelectorAll('.widget-content.is-loading').length === 0")
    texts = dict(page.evaluate(RAW_TEXT, DATA))
    assert any("Échéances" in text for text in texts.values())  # the cards are there
    problems = {
        where: problem
        for where, text in texts.items()
        for problem in french_typography_problems(text, catalogue=False)
    }
    assert problems == {}


# CLDR's abbreviated French months, as "medium" dates write them.
FRENCH_MONTHS = [
    "janv.",
    "févr.",
    "mars",
    "avr.",
    "mai",
    "juin",
    "juil.",
    "août",
    "sept.",
    "oct.",
    "nov.",
    "déc.",
]


def test_french_dates_numbers_and_times(open_page: OpenPage, incident_start: datetime) -> None:
    page = open_page("/", language="fr", timezone_id="Pacific/Auckland")
    status = page.locator("#widget-status")
    # Each number says what it is, in words (a phone has no tooltips).
    assert re.fullmatch(r"réponse en \d+\s+ms", status.locator(".status-row__ping").first.inner_text())
    assert re.fullmatch(
        r"disponible à 99,9\s%\s\(24\sh\)", status.locator(".status-row__uptime").first.inner_text()
    )
    since = status.locator(".incident-note.is-danger .incident-note__meta").inner_text()
    # Dates are written as everywhere else on the page ("3 déc. 2026"), not "03/12/2026".
    month = FRENCH_MONTHS[incident_start.month - 1]
    assert since == f"Depuis le {incident_start.day} {month} {incident_start:%Y} à {incident_start:%H:%M}"
    checked = status.locator(".widget-card__checked").inner_text()
    assert checked in {f"Mis à jour à {t:%H:%M}" for t in _paris_now()}, checked
    assert (
        _words(status.locator(".status-pill").first.inner_text()) == "11 opérationnels"
    )  # agreed, in lower case
    # The incident's Markdown, rendered (a safe subset): bold, a list, a link, code.
    content = status.locator(".incident-note.is-danger .incident-note__content")
    assert content.locator("strong").first.inner_text() == "10.7"
    assert content.locator("li").count() == 2 and content.locator("code").inner_text() == "sonar-scan"
    assert content.locator("a").get_attribute("rel") == "noopener noreferrer"
    assert "**" not in content.inner_text()
    # The browser is in Auckland: the page says whose clock its times are on.
    assert page.locator("#zone-note").inner_text() == "Heures du fuseau Europe/Paris"


def test_english_dates_numbers_and_times(open_page: OpenPage, incident_start: datetime) -> None:
    page = open_page("/", language="en", timezone_id="Pacific/Auckland")
    status = page.locator("#widget-status")
    assert re.fullmatch(r"\d+ ms response", status.locator(".status-row__ping").first.inner_text())
    assert status.locator(".status-row__uptime").first.inner_text() == "99.9% uptime (24 h)"
    since = _words(status.locator(".incident-note.is-danger .incident-note__meta").inner_text())
    assert since == f"Since {incident_start:%b %-d, %Y} at {incident_start:%-I:%M %p}"
    checked = _words(status.locator(".widget-card__checked").inner_text())
    assert checked in {f"Updated at {t:%-I:%M %p}" for t in _paris_now()}, checked
    assert _words(status.locator(".status-pill").first.inner_text()) == "11 up"
    assert page.locator("#zone-note").inner_text() == "Times in the Europe/Paris time zone"


@pytest.mark.parametrize("zone", ["Europe/Paris", "Europe/Brussels"])
def test_a_browser_on_the_portals_clock_is_told_nothing_of_zones(open_page: OpenPage, zone: str) -> None:
    """Brussels is another name for the same time as Paris's: nothing to say."""
    page = open_page("/", language="fr", timezone_id=zone)
    expect(page.locator("#widget-status .status-row").first).to_be_visible()
    expect(page.locator("#zone-note")).to_be_hidden()


@pytest.fixture
def incident_start(world: KumaWorld) -> datetime:
    """When the demo's SonarQube incident began (2 h 17 before the simulator's clock), in Paris."""
    started = math.floor(world.clock()) - 2 * 3600 - 17 * 60
    return datetime.fromtimestamp(started, tz=ZoneInfo("Europe/Paris"))


def _paris_now() -> list[datetime]:
    """The minutes "Updated at" may say: when the data shown was fetched, in the portal's zone
    (whatever the browser's): within the last few minutes (the suite's portal shares its cache
    between tests, and the data is fetched again only when its TTL is over)."""
    now = datetime.now(UTC)  # minutes taken off in UTC: a wall clock's are off by one across DST
    return [
        (now - timedelta(minutes=minutes)).astimezone(ZoneInfo("Europe/Paris")) for minutes in range(-1, 6)
    ]


def _words(text: str) -> str:
    """Text as read: any run of spaces (line breaks between flex items, no-break spaces) is one."""
    return " ".join(text.split())
