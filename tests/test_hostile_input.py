"""No 5xx from input: every route, malformed headers, cookies and bodies, with and without a session."""

from __future__ import annotations

import itertools
import re
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.web import markdown
from portal.web.markdown import MAX_SOURCE, render_markdown
from simulators.uptime_kuma import KumaWorld

MALFORMED_URLS = [
    "http://[::1",
    "http://[",
    "::::",
    "http://h:99999/x",
    "javascript:alert(1)",
    "\x00",
    "%" * 300,
]
HEADERS: dict[str, list[str]] = {
    "HX-Request": ["true", "false", "", "1" * 5000],
    "HX-Current-URL": MALFORMED_URLS,
    "Accept-Language": ["", ";q=", "fr;q=abc", "x" * 5000, "*;q=0, ,,,", "zz-ZZ;q=1.5"],
    "X-Widget-Version": ["", "\u00e9", "x" * 5000, "' OR 1=1"],
    "X-Request-ID": ["", "\t", "a" * 500, "<script>"],
    "Origin": ["null", "http://[::1", "x" * 3000],
    "X-CSRFToken": ["", "a.b.c", "\u00ff" * 100],
    "Cookie": [
        "portal_session=",
        "portal_session=garbage",
        "portal_session=eyJhIjoxfQ.invalid.sig",
        "portal_session=" + "A" * 5000,
        "portal_lang=\u00e9; portal_theme=<x>",
        "=; ;; portal_session",
    ],
}
CSP_REPORTS: list[Any] = [
    {"csp-report": "str"},
    {"csp-report": None},
    {"csp-report": ["a"]},
    {"csp-report": {"violated-directive": {"nested": 1}, "blocked-uri": ["x"]}},
    [1, 2],
    "just a string",
    None,
    12,
]


def _paths(app: Flask) -> list[tuple[str, str]]:
    """Every route, its parameters filled with plausible and implausible values, with its methods."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            found.append(("/static/css/portal.css", "GET"))
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: "1" if "id" in m.group(1) else "x%00y", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((path, method))
    return found


def _cases() -> Iterator[dict[str, str]]:
    for name, values in HEADERS.items():
        for value in values:
            yield {name: value}
    yield dict(zip(HEADERS, (values[-1] for values in HEADERS.values()), strict=True))  # all at once


def _no_5xx(client: FlaskClient, app: Flask) -> list[str]:
    problems = []
    for (path, method), headers in itertools.product(_paths(app), _cases()):
        cookie = headers.pop("Cookie", None)
        environ = {"HTTP_COOKIE": cookie} if cookie is not None else {}
        response = client.open(
            path, method=method, headers=headers, environ_overrides=environ, data=b"\xff\x00"
        )
        response.close()
        if response.status_code >= 500:
            problems.append(f"{method} {path} {headers or cookie!r}: {response.status_code}")
    for report in CSP_REPORTS:
        response = client.post("/csp-report", json=report)
        if response.status_code >= 500:
            problems.append(f"csp-report {report!r}: {response.status_code}")
    for depth in (1_000, 100_000):  # the standard library's parser recursed out: a 500 for anyone
        deep = "[" * depth + "]" * depth
        response = client.post("/csp-report", data=deep, content_type="application/csp-report")
        if response.status_code >= 500:
            problems.append(f"csp-report nested {depth} deep: {response.status_code}")
    for body in (b"\xff\xfe", b"{", b""):
        response = client.post("/csp-report", data=body, content_type="application/json")
        if response.status_code >= 500:
            problems.append(f"csp-report {body!r}: {response.status_code}")
    return problems


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
def test_no_route_answers_5xx_to_hostile_input(
    signed_in: bool, make_sso_app: Callable[..., Flask], make_app: Callable[..., Flask]
) -> None:
    """Without a session against single sign-on; with one in the demo identity (every route behind it)."""
    app = make_app() if signed_in else make_sso_app()
    client = app.test_client()
    if signed_in:
        assert client.get("/").status_code == 200
    assert _no_5xx(client, app) == []


# --- upstream Markdown ------------------------------------------------------------------------

HOSTILE_MARKDOWN = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(2)">',
    "![pic](https://evil.example/x.png)",
    '![x" onerror="alert(3)](https://evil.example/x.png)',
    "[click](javascript:alert(4))",
    "[click](JaVaScRiPt:alert(5))",
    "[click](jav&#x09;ascript:alert(6))",
    "[click](&#106;avascript:alert(7))",
    "[click](vbscript:msgbox(8))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCg5KTwvc2NyaXB0Pg==)",
    "<javascript:alert(10)>",
    '[click][ref]\n\n[ref]: javascript:alert(11) "t"',
    '<a href="javascript:alert(12)">raw link</a>',
    '<iframe src="https://evil.example"></iframe>',
    '<div style="position:fixed;inset:0">cover</div>',
    '[x](https://ok.example "title\\" onmouseover=\\"alert(13)")',
    "<!-- a comment --><style>body{display:none}</style>",
    "<svg><script>alert(14)</script></svg>",
    "[rel](/admin) and [proto](//evil.example)",
    "*" * 5000 + "a" + "_" * 5000,  # emphasis that never closes: bounded, not a hang
    "\u202eevil\u202c **bold**",
]
ALLOWED = {"p", "br", "strong", "em", "s", "code", "pre", "blockquote", "ul", "ol", "li", "a", "hr"}


class _Markup(HTMLParser):
    """Every tag and attribute of a rendered fragment."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Markup()
    parser.feed(html)
    return parser.tags


def _harmless(html: str) -> None:
    for tag, attrs in _tags(html):
        assert tag in ALLOWED, (tag, html[:200])
        assert set(attrs) <= {"href", "title", "rel", "start"}, (tag, attrs)
        if tag == "a" and "href" in attrs:
            assert re.match(r"(https?|mailto):", attrs["href"] or ""), attrs
            assert attrs["rel"] == "noopener noreferrer" and "target" not in attrs


@pytest.mark.parametrize("text", HOSTILE_MARKDOWN, ids=range(len(HOSTILE_MARKDOWN)))
@pytest.mark.parametrize("inline", [False, True], ids=["block", "inline"])
def test_hostile_markdown_comes_out_as_harmless_text(text: str, inline: bool) -> None:
    html = str(render_markdown(text, inline=inline))
    _harmless(html)
    if inline:
        assert not {tag for tag, _ in _tags(html)} - {"strong", "em", "s", "code", "a", "br"}
    assert len(html) < 2 * MAX_SOURCE + 2000  # a huge text is cut before it is parsed


def test_raw_html_is_shown_as_the_text_it_is() -> None:
    html = str(render_markdown('<script>alert(1)</script> and <img src=x onerror="alert(2)">'))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=" in html
    assert str(render_markdown("![the diagram](https://evil.example/x.png)")) == "<p>the diagram</p>"


def test_the_safe_subset_survives() -> None:
    html = str(
        render_markdown(
            "**bold** *em* ~~gone~~ `code`\n\n- one\n- two\n\n1. first\n\n[docs](https://docs.example/a?b=1)"
        )
    )
    assert "<strong>bold</strong>" in html and "<em>em</em>" in html and "<s>gone</s>" in html
    assert "<code>code</code>" in html and "<ul>" in html and "<li>two</li>" in html and "<ol>" in html
    assert '<a href="https://docs.example/a?b=1" rel="noopener noreferrer">docs</a>' in html
    assert (
        str(render_markdown("# Title")) == "<p><strong>Title</strong></p>"
    )  # the card keeps its own outline


def test_a_short_code_is_glued_to_the_punctuation_it_touches_and_stays_text() -> None:
    """(The glue keeps "(change-1432)" on one line; tests/e2e/test_taiga.py measures it.)"""
    assert str(render_markdown("wait (`change-1432`).", inline=True)) == (
        'wait <span class="md-keep">(<code>change-1432</code>).</span>'
    )
    hostile = str(render_markdown('(`<script>alert(1)</script>`) and (`" onmouseover="x`)', inline=True))
    assert "<script" not in hostile and "&lt;script&gt;" in hostile
    assert [tag for tag, _ in _tags(hostile)] == ["code", "span", "code"]  # the first is long
    assert {tuple(attrs) for tag, attrs in _tags(hostile) if tag == "span"} == {("class",)}
    long = "see `kubectl rollout restart deployment/portal`."  # a long one wraps as it needs
    assert "md-keep" not in str(render_markdown(long, inline=True))


def test_hostile_incident_and_maintenance_text_on_the_status_card(
    client: FlaskClient, world: KumaWorld
) -> None:
    page = world.pages["platform"]
    page.incidents[0]["content"] = (
        "\n\n".join(HOSTILE_MARKDOWN[:19]) + "\n\n**still** [here](https://ok.example)"
    )
    page.maintenances[0]["description"] = '<img src=x onerror="alert(2)"> [x](javascript:alert(1)) *calm*'
    html = client.get("/widgets/status", headers={"Accept-Language": "en"}).get_data(as_text=True)
    notes = re.findall(r'<div class="incident-note__content rich-text" dir="auto">(.*?)</div>\n', html, re.S)
    assert len(notes) == 2
    for note in notes:
        _harmless(note)
    assert "<strong>still</strong>" in notes[0] and 'href="https://ok.example"' in notes[0]
    assert "&lt;script&gt;" in notes[0] and "<em>calm</em>" in notes[1]
    links = [attrs["href"] or "" for tag, attrs in _tags(html) if tag == "a" and "href" in attrs]
    assert links and not [link for link in links if not re.match(r"https?:", link)]  # every link of the card


def test_markdown_is_rendered_safely_by_many_threads_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """markdown-it-py builds its rule lists on first use and mdurl its escape tables: a worker's
    threads rendering together a card's first texts (after a refresh, say) once met half-built
    ones (a 500: "none of the block rules matched", an IndexError in mdurl)."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads hand over often: the race shows at once
    try:
        _render_together(monkeypatch)
    finally:
        sys.setswitchinterval(previous)


def _render_together(monkeypatch: pytest.MonkeyPatch) -> None:
    for attempt in range(5):
        monkeypatch.setattr(markdown, "_PARSER", markdown._parser())  # rules not yet compiled
        monkeypatch.setattr(markdown, "_rendered", markdown.Memo(256))
        start = threading.Barrier(32)

        def render(n: int, attempt: int = attempt, start: threading.Barrier = start) -> str:
            start.wait()
            text = f"**Incident {attempt}-{n}**: see [the runbook](https://example.org/r/{n}?q=é) and `x`"
            return str(markdown.render_markdown(text, inline=n % 2 == 0))

        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(render, range(32)))
        assert all("the runbook</a>" in html for html in answers)


def test_right_to_left_overrides_cannot_turn_a_name_round(client: FlaskClient, world: KumaWorld) -> None:
    """ "build/\u202egnp.exe" is drawn "build/exe.png": the bidi controls of an upstream's text
    are dropped from every value a page writes (in text and in attributes alike)."""
    page = world.pages["platform"]
    page.incidents[0]["title"] = "Release build/\u202egnp.exe \u2067ready\u2069"
    html = client.get("/widgets/status", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Release build/gnp.exe ready" in html
    assert not re.search("[\u202a-\u202e\u2066-\u2069]", html)
