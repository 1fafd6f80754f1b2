"""No 5xx from input: every route, malformed headers, cookies and bodies, with and without a session."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

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
