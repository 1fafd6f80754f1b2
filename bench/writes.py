"""5. Writes under load: 20 people change a task's status through the card's quick action.

The dashboard stack of figure 1 (configured refresh, real Prometheus) with half of figure 1's
people polling the six cards. Meanwhile 20 of them, at once, each change the status of their own
task as the browser does: the CSRF token from the page's `hx-headers`, the card's form (the
item's version, a status that does not close it), a POST with htmx's headers and the page's
Origin. For a quarter of them a teammate changes the same task in Taiga first (the service
account, through Taiga's API), so that their change must come back as a conflict.

Then, from Taiga's own data, each change landed exactly once (the item's version moved by one,
the status is the one asked for; for a conflict, only the teammate's change is there) and from
the portal the card each person ends up with shows the task's new status: the write's answer
(at once: while the board is read anew, the last one is shown with the change made to it), then
the quicker polls the page makes while it is read (after 2, 4, 8 s); and the next polls (with that card's
version, each on a new connection, three times: any worker may answer) show it, or a 204.
"""

from __future__ import annotations

import html
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests

from portal.upstreams.errors import CONFLICT_TEXT
from simulators.taiga import SERVICE_ACCOUNT

from .context import Bench
from .dashboard import Dashboard, dashboard
from .people import Crowd
from .users import VERSION_HEADER, card_words, failed

SECTION = "5 writes"
WRITERS = 20
CONFLICTS = 5  # of the writers, whose task a teammate changes first
NEXT_POLLS = 3
SOON_TRIES = 5  # a loading card's quicker polls followed at most
CSRF = re.compile(r'"X-CSRFToken": "([^"]+)"')
FORM = re.compile(r'hx-post="(/widgets/tasks/task/(\d+)/status[^"]*)"(.*?)</form>', re.S)
VERSION = re.compile(r'name="version" value="(\d+)"')
OPTION = re.compile(r'name="status" value="(\d+)"([^>]*)>(.*?)</button>', re.S)
CURRENT = 'aria-current="true"'
CONFLICT_WORDS = card_words(CONFLICT_TEXT, upstream="Taiga").encode()


@dataclass
class TaskForm:
    url: str
    item: int
    version: int
    current: int
    choices: list[int]  # statuses it may move to, without closing it


def task_form(fragment: str) -> TaskForm | None:
    """The first task's quick-action form in a tasks card."""
    found = FORM.search(fragment)
    if found is None:
        return None
    body = found.group(3)
    version = VERSION.search(body)
    options = OPTION.findall(body)
    current = next((int(value) for value, attributes, _ in options if CURRENT in attributes), -1)
    choices = [
        int(value)
        for value, attributes, text in options
        if CURRENT not in attributes and "closes it" not in text
    ]
    if version is None or not choices:
        return None
    return TaskForm(
        html.unescape(found.group(1)), int(found.group(2)), int(version.group(1)), current, choices
    )


class Taiga:
    """Taiga's API as the service account: the truth the changes are checked against."""

    def __init__(self, api: str) -> None:
        self.api = api.rstrip("/")
        auth = {"type": "normal", "username": SERVICE_ACCOUNT[0], "password": SERVICE_ACCOUNT[2]}
        token = requests.post(f"{self.api}/auth", json=auth, timeout=10).json()["auth_token"]
        self.headers = {"Authorization": f"Bearer {token}"}

    def task(self, item: int) -> dict[str, Any]:
        found: dict[str, Any] = requests.get(
            f"{self.api}/tasks/{item}", headers=self.headers, timeout=10
        ).json()
        return found

    def change(self, item: int, status: int, version: int) -> None:
        body = {"status": status, "version": version}
        requests.patch(
            f"{self.api}/tasks/{item}", json=body, headers=self.headers, timeout=10
        ).raise_for_status()


def measure(bench: Bench, people: int) -> None:
    people = max(WRITERS, people // 2)
    refresh = 5 if bench.quick else None
    with dashboard(bench, people, refresh=refresh) as board:
        cookies = board.login(people)
        crowd = Crowd(board.server.url, board.cards()).start()
        try:
            crowd.join(cookies, 3 if bench.quick else 30)
            crowd.wait_until(6 if bench.quick else 45)
            taiga = Taiga(board.config["upstreams"]["taiga"]["url"])
            start = crowd.now()
            with ThreadPoolExecutor(WRITERS) as pool:
                outcomes = list(
                    pool.map(lambda i: _write(board, taiga, cookies[i], i < CONFLICTS), range(WRITERS))
                )
            crowd.wait_until(crowd.now() + (3 if bench.quick else 5))
            load = crowd.window(start, crowd.now())
        finally:
            crowd.stop()
    _figures(bench, outcomes, people, load)


def _write(board: Dashboard, taiga: Taiga, cookie: str, conflict: bool) -> dict[str, Any]:
    base = board.server.url
    browser = {"Cookie": cookie, "Accept-Language": "en"}
    page = requests.get(base + "/", headers=browser, timeout=30).text
    token = CSRF.search(page)
    htmx = {**browser, "HX-Request": "true", "HX-Current-URL": base + "/"}
    card = requests.get(base + "/widgets/tasks", headers=htmx, timeout=30)
    form = task_form(_settled(base, htmx, card)[0])  # (still loading after someone's write: its data)
    if token is None or form is None:
        return {"ready": False}
    wanted = form.choices[0]
    expected, expected_version = wanted, form.version + 1
    if conflict:  # a teammate moves it to another status first, in Taiga itself
        other = form.choices[1] if len(form.choices) > 1 else form.current
        taiga.change(form.item, other, form.version)
        expected = other
    answer = requests.post(
        base + form.url,
        data={"status": wanted, "version": form.version},
        headers={**htmx, "X-CSRFToken": token.group(1), "Origin": base, "Referer": base + "/"},
        timeout=30,
    )
    truth = taiga.task(form.item)
    settled, soon, version = _settled(base, htmx, answer)
    shown_after = _current(settled, form.item)
    polls = [_shown(base, htmx, version, form.item) for _ in range(NEXT_POLLS)]
    return {
        "ready": True,
        "conflict": conflict,
        "item": form.item,
        "status": answer.status_code,
        "said_conflict": CONFLICT_WORDS in answer.content,
        "once": truth.get("version") == expected_version and truth.get("status") == expected,
        "answer_shows": shown_after == expected,
        # What the person sees at once: the write's own answer, before any quicker poll (the
        # board read anew may still be on its way: the last one, with the change, is shown).
        "answer_itself_shows": _current(answer.text, form.item) == expected,
        "loading_answers": soon,
        "next_polls": polls,
        "next_polls_show": all(p in (expected, "unchanged") for p in polls) and shown_after == expected,
    }


def _settled(base: str, htmx: dict[str, str], answer: requests.Response) -> tuple[str, int, str]:
    """The card as the browser ends up showing it after the write's answer.

    While the card is still loading (the data was invalidated and is being read again), it
    says `data-poll="soon"` and the page asks again after 2, 4, 8 s: the first answer with data
    is what the person sees. Returns that fragment, how many loading answers came first, and its
    version.
    """
    fragment, version, loading = answer.text, answer.headers.get(VERSION_HEADER, ""), 0
    delay = 1.0
    while 'data-poll="soon"' in fragment and loading < SOON_TRIES:
        loading += 1
        delay *= 2
        time.sleep(delay)
        headers = {**htmx, VERSION_HEADER: version} if version else htmx
        again = requests.get(base + "/widgets/tasks", headers=headers, timeout=30)
        if again.status_code == 200:
            fragment, version = again.text, again.headers.get(VERSION_HEADER, version)
    return fragment, loading, version


def _current(fragment: str, item: int) -> int | None:
    """The status a tasks card shows as current for one task."""
    for found in FORM.finditer(fragment):
        if int(found.group(2)) == item:
            return next(
                (int(v) for v, attributes, _ in OPTION.findall(found.group(3)) if CURRENT in attributes), None
            )
    return None


def _shown(base: str, htmx: dict[str, str], version: str, item: int) -> int | str | None:
    """The next poll, on a new connection: "unchanged" (a 204) or the status it shows once loaded."""
    headers = {**htmx, VERSION_HEADER: version} if version else htmx
    answer = requests.get(base + "/widgets/tasks", headers=headers, timeout=30)
    if answer.status_code == 204:
        return "unchanged"
    return _current(_settled(base, htmx, answer)[0], item) if answer.status_code == 200 else None


def _figures(bench: Bench, outcomes: list[dict[str, Any]], people: int, load: list[Any]) -> None:
    ready = [o for o in outcomes if o["ready"]]
    plain = [o for o in ready if not o["conflict"]]
    conflicts = [o for o in ready if o["conflict"]]
    bench.add(
        SECTION,
        f"changes that reached Taiga exactly once ({len(plain)} changes, {people:,} people polling)",
        f"{sum(o['once'] for o in plain)} / {len(plain)}",
        "all",
        len(ready) == len(outcomes) and all(o["once"] for o in plain),
    )
    bench.add(
        SECTION,
        "conflicts reported as conflicts (Taiga holding the teammate's change only)",
        f"{sum(o['said_conflict'] and o['once'] for o in conflicts)} / {len(conflicts)}",
        "all",
        all(o["said_conflict"] and o["once"] for o in conflicts) and bool(conflicts),
    )
    bench.add(
        SECTION,
        f"people seeing the new state in the answer and on their next poll ({NEXT_POLLS}, new connections)",
        f"{sum(o['next_polls_show'] for o in ready)} / {len(ready)}",
        "all",
        bool(ready) and all(o["next_polls_show"] for o in ready),
    )
    bench.add(
        SECTION,
        "changes shown in their own answer, before any quicker poll",
        f"{sum(o['answer_itself_shows'] for o in plain)} / {len(plain)}",
        "all",
        bool(plain) and all(o["answer_itself_shows"] for o in plain),
    )
    errors = failed(load)
    loading = sum(1 for o in ready if o.get("loading_answers"))
    bench.add(
        SECTION,
        "writes answered while the board was still being read anew (then a quicker poll)",
        f"{loading} / {len(ready)}",
    )
    bench.add(SECTION, "errors in the polls meanwhile", f"{errors} of {len(load)}", "0", errors == 0)
    bench.details["writes"] = {"people": people, "outcomes": outcomes}
