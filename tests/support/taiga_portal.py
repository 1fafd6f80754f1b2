"""Helpers for the Taiga cards' tests: the portal pointed at a Taiga (simulated or real), cards as a
browser gets them, the page's CSRF token, and a change sent from a card."""

from __future__ import annotations

import re
import time
from typing import Any

import requests
import yaml
from flask.testing import FlaskClient

from simulators import taiga

SERVICE = {
    "PORTAL_TAIGA_USERNAME": taiga.SERVICE_ACCOUNT[0],
    "PORTAL_TAIGA_PASSWORD": taiga.SERVICE_ACCOUNT[2],
}
ORIGIN = "http://localhost"


def with_taiga(
    base: dict[str, Any], api_url: str, front_url: str = "https://taiga.example.org", **more: Any
) -> dict[str, Any]:
    """`base` (a portal configuration) with upstreams.taiga at `api_url` and short cache times."""
    config: dict[str, Any] = yaml.safe_load(yaml.safe_dump(base))
    config.setdefault("upstreams", {})["taiga"] = {
        "url": api_url,
        "front_url": front_url,
        "timeout": 5,
        "breaker_backoff": 1,
        **more,
    }
    config["portal"]["timezone"] = "UTC"
    for slug in ("tasks", "deadlines"):
        config.setdefault("widgets", {}).setdefault(slug, {}).update(ttl=30, refresh=30)
    return config


def card(
    client: FlaskClient | requests.Session,
    slug: str,
    base: str = "",
    until: str = "",
    *,
    language: str = "en",
    **params: str,
) -> str:
    """A card as the browser gets it (in `language`), asked again while it says loading."""
    html = ""
    headers = {"Accept-Language": language}
    for _ in range(60):
        if isinstance(client, FlaskClient):
            html = client.get(f"/widgets/{slug}", query_string=params, headers=headers).get_data(as_text=True)
        else:
            html = client.get(f"{base}/widgets/{slug}", params=params, headers=headers, timeout=15).text
        if 'data-poll="soon"' not in html and until in html:
            return html
        time.sleep(0.1)
    return html


# A day's cell in the deadlines card's month: its classes and its number (a day with deadlines
# holds them in a button that opens its details).
DAY_CELL = re.compile(
    r'<td class="(day[^"]*)"[^>]*>\s*(?:<button[^>]*class="day__open"[^>]*>\s*)?'
    r'<span class="day__number"[^>]*>(\d+)</span>'
)


def csrf_token(page: str) -> str:
    """The CSRF token the page carries once, in `hx-headers`."""
    found = re.search(r"X-CSRFToken&#34;: &#34;([^&]+)&#34;", page) or re.search(
        r'"X-CSRFToken": "([^"]+)"', page
    )
    assert found, "the page carries no CSRF token"
    return found.group(1)


def status_form(html: str, subject_part: str) -> tuple[str, str, dict[str, str]]:
    """The status form of the row whose subject contains `subject_part`: (action, version, {name: id})."""
    rows = re.findall(r'<li class="task-row.*?</li>', html, flags=re.S)
    row = next(r for r in rows if subject_part in r)
    action = re.search(r'hx-post="([^"]+)"', row)
    version = re.search(r'name="version" value="(\d+)"', row)
    assert action and version, "the row has no status menu"
    statuses = {
        re.sub(r"<[^>]+>|\(.*?\)", "", label).strip(): value
        for value, label in re.findall(r'name="status" value="(\d+)"[^>]*>(.*?)</button>', row, flags=re.S)
    }
    return action.group(1).replace("&amp;", "&"), version.group(1), statuses


def row_of(html: str, subject_part: str) -> str:
    rows = re.findall(r'<li class="task-row.*?</li>', html, flags=re.S)
    return next((r for r in rows if subject_part in r), "")


def status_shown(html: str, subject_part: str) -> str:
    found = re.search(r'class="status-tag__name">(.*?)</span>', row_of(html, subject_part))
    return re.sub(r"<[^>]+>", "", found.group(1)) if found else ""
