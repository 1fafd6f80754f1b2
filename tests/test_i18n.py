"""French as a professional writes it, in the catalogue and on the rendered pages.

The rules (portal/widgets/README.md, "French and English"): a no-break space (U+00A0, the one
kind the catalogue uses) before : ; ? ! and inside « », the typographic apostrophe, and every
message that holds a count goes through ngettext (plural forms), never "1 dégradé(s)".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po
from flask import Flask
from flask.testing import FlaskClient

from portal.web.i18n import format_day
from simulators.base import SimServer

TRANSLATIONS = Path(__file__).resolve().parent.parent / "portal" / "translations"
NBSP = "\u00a0"
# A colon that is punctuation: not in a URL ("https://"), nor a clock time ("14:05", "%(h)s:%(m)s").
PUNCTUATION = re.compile(r"(?<![\d)])[:](?!//|\d)|[;?!]")
# A placeholder that holds a number of things: it needs plural forms.
COUNT = re.compile(r"%\((?:num|count|n|total)\)[sd]|%\(\w+\)d")


def _catalog(language: str) -> Catalog:
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=language)


def _strings(message: Message) -> tuple[str, ...]:
    string = message.string
    return tuple(string) if isinstance(string, (tuple, list)) else (string,)


def french_typography_problems(text: str, catalogue: bool = True) -> list[str]:
    """What a French proofreader would mark in `text` (empty when it is right). On a rendered page
    (`catalogue=False`) numbers come from Babel (CLDR: U+202F groups thousands) and names from
    the configuration: only the punctuation is checked there."""
    problems = []
    for found in PUNCTUATION.finditer(text):
        at = found.start()
        before = text[at - 1] if at else ""
        if before != NBSP:
            problems.append(
                f"{text[max(0, at - 12) : at + 2]!r}: {found.group()!r} needs a no-break space before it"
            )
    for at in (m.start() for m in re.finditer("«", text)):
        if text[at + 1 : at + 2] != NBSP:
            problems.append(f"{text[at : at + 12]!r}: « needs a no-break space after it")
    for at in (m.start() for m in re.finditer("»", text)):
        if text[at - 1 : at] != NBSP:
            problems.append(f"{text[max(0, at - 12) : at + 1]!r}: » needs a no-break space before it")
    if not catalogue:
        return problems
    if "\u202f" in text:
        problems.append(f"{text!r}: a narrow no-break space, where the catalogue uses U+00A0")
    if "'" in text:
        problems.append(f"{text!r}: a straight apostrophe (’)")
    return problems


@pytest.mark.parametrize(
    ("text", "right"),
    [
        ("Thème\u00a0: sombre", True),
        ("Thème : sombre", False),
        ("Thème: sombre", False),
        ("Thème\u202f: sombre", False),
        ("Réessayez\u00a0; si cela persiste", True),
        ("Réessayez ; si cela persiste", False),
        ("Vraiment ?", False),
        ("« %(tile)s »", False),
        ("«\u00a0%(tile)s\u00a0»", True),
        ("n'a pas", False),
        ("De 14:05 à 15:10, voir https://example.org", True),
        ("%(widget)s\u00a0: %(status)s", True),
    ],
)
def test_the_proofreader_itself(text: str, right: bool) -> None:
    assert (french_typography_problems(text) == []) is right


def test_french_messages_follow_french_typography() -> None:
    problems = [
        f"{message.id!r}: {problem}"
        for message in _catalog("fr")
        if message.id
        for string in _strings(message)
        for problem in french_typography_problems(string)
    ]
    assert problems == []


def test_english_messages_have_no_space_before_punctuation() -> None:
    ids = [message.id for message in _catalog("en") if message.id]
    texts = [text for found in ids for text in (found if isinstance(found, tuple) else (found,))]
    assert [text for text in texts if re.search(r"\s[:;?!]", text)] == []


def test_every_message_with_a_count_has_plural_forms() -> None:
    singular = [
        message.id
        for message in _catalog("en")
        if message.id and not message.pluralizable and COUNT.search(message.id)
    ]
    assert singular == []
    french = _catalog("fr")
    for message in french:
        if message.pluralizable:
            assert len(_strings(message)) == french.num_plurals and all(_strings(message)), message.id


# --- the rendered pages -----------------------------------------------------------------------


class _Text(HTMLParser):
    """Text people read or hear: text nodes and the attributes that show or say something."""

    SPOKEN = ("title", "aria-label", "placeholder", "alt", "data-announce")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if value and (name in self.SPOKEN or name.startswith("data-label")):
                self.found.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.found.append(data)


def shown_text(html: str) -> list[str]:
    parser = _Text()
    parser.feed(html)
    return parser.found


def _french_pages(client: FlaskClient) -> Iterator[tuple[str, str]]:
    headers = {"Accept-Language": "fr"}
    for path in ("/", "/no-such-page", "/widgets/status"):
        yield path, client.get(path, headers=headers).get_data(as_text=True)


def test_rendered_french_pages_follow_french_typography(client: FlaskClient, kuma: SimServer) -> None:
    """The shell, an error page and the status card (a Markdown incident), as French users get them."""
    problems = []
    for path, html in _french_pages(client):
        assert 'lang="fr"' in html or "widget-content" in html
        problems += [
            f"{path}: {problem}"
            for text in shown_text(html)
            for problem in french_typography_problems(text, catalogue=False)
        ]
    assert problems == []


def test_the_status_card_says_what_each_number_is(client: FlaskClient, kuma: SimServer) -> None:
    english = client.get("/widgets/status", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert re.search(r"\d+ ms response<", english)
    assert re.search(r"[\d.]+% uptime \(24 h\)<", english)
    assert re.search(r'<span class="status-pill__count">\d+</span> up<', english)
    french = client.get("/widgets/status", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert re.search(r"réponse en \d+\u00a0ms<", french)
    assert re.search(r"disponible à [\d,]+\u00a0% \(24\u00a0h\)<", french)
    # "10 opérationnels", "1 en panne": the word agrees with the number, in lower case.
    assert re.search(r'<span class="status-pill__count">(?:[2-9]|\d\d+)</span> opérationnels<', french)
    assert re.search(r'<span class="status-pill__count">1</span> en panne<', french)
    assert "dégradé(s)" not in french
    assert re.search(r"Depuis le \d{1,2} [a-zéû]+\.? \d{4} à \d\d:\d\d<", french)


@pytest.mark.parametrize(
    ("language", "day", "today", "said"),
    [
        ("en", date(2026, 12, 5), date(2026, 12, 6), "Dec 5"),
        ("fr", date(2026, 12, 5), date(2026, 12, 6), "5 déc."),
        ("en", date(2028, 1, 3), date(2026, 12, 6), "Jan 3, 2028"),
        ("fr", date(2028, 1, 3), date(2026, 12, 6), "3 janv. 2028"),
        ("en", date(2026, 12, 5), None, "Dec 5"),
    ],
)
def test_a_day_is_written_in_words_in_the_languages_order_never_in_digits(
    app: Flask, language: str, day: date, today: date | None, said: str
) -> None:
    """Every card writes a day alike: "12/5/26" is the 12th of May to half of a bilingual team."""
    with app.test_request_context(headers={"Accept-Language": language}):
        assert format_day(day, today) == said
