"""The widget contract, as every widget relies on it, through the test-only notes widget.

Per-user data on a shared real Redis, nothing of one session in another's answer, text that
stays true as time passes, the write path (guard, audit, conflict, invalidation) and
invalidation reaching every gunicorn worker.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from flask import Flask
from flask.testing import FlaskClient
from jinja2 import UndefinedError

from portal import create_app
from portal.state import portal_state
from portal.upstreams.errors import Reason
from portal.widgets import WIDGETS, serving
from portal.widgets.contract import Problem, said_once
from portal.widgets.serving import FragmentRenderer
from simulators.base import SimServer
from simulators.uptime_kuma import KumaWorld

from .conftest import SECRET
from .support import notes_widget
from .support.clock import StoppedClock
from .support.notes_widget import NotesWidget, NotesWorld
from .support.processes import RedisServer, portal_process

ORIGIN = "http://localhost"


@pytest.fixture
def notes() -> Iterator[tuple[SimServer, NotesWorld]]:
    server, world = notes_widget.make_server()
    server.start()
    yield server, world
    server.stop()


@pytest.fixture
def notes_app(portal_config: dict[str, Any], notes: tuple[SimServer, NotesWorld]) -> Callable[..., Flask]:
    """Build the portal with the notes widget, optionally on a Redis."""

    def build(redis_url: str | None = None) -> Flask:
        config = notes_widget.notes_config(yaml.safe_load(yaml.safe_dump(portal_config)), notes[0].url)
        if redis_url:
            config["cache"]["redis_url"] = redis_url
        return create_app(
            {
                "TESTING": True,
                "PORTAL": config,
                "ENV": {"PORTAL_SECRET_KEY": SECRET},
                "WIDGETS": (*WIDGETS, NotesWidget()),
            }
        )

    return build


def _as(app: Flask, username: str) -> FlaskClient:
    """A browser session of one demo user (camille: admin; dominique: team member)."""
    client = app.test_client()
    assert client.get(f"/auth/demo-user/{username}").status_code == 303
    return client


def _card(client: FlaskClient, slug: str = "notes", until: str = "") -> str:
    """A card as the browser gets it, polled again while it says loading."""
    for _ in range(30):
        html = client.get(f"/widgets/{slug}", headers={"Accept-Language": "en"}).get_data(as_text=True)
        if 'data-poll="soon"' not in html and until in html:
            return html
        time.sleep(0.1)
    return html


def _token(client: FlaskClient) -> str:
    """The CSRF token the page carries once, in `hx-headers` (htmx sends it with every request)."""
    page = client.get("/").get_data(as_text=True)
    found = re.search(r"hx-headers='\{&#34;X-CSRFToken&#34;: &#34;([^&]+)&#34;\}'", page)
    found = found or re.search(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', page)
    assert found, "the page carries no CSRF token"
    return found.group(1)


# --- per-user data ---------------------------------------------------------------------------


def test_two_users_on_one_redis_never_receive_each_others_notes(
    notes_app: Callable[..., Flask], redis_server: RedisServer, notes: tuple[SimServer, NotesWorld]
) -> None:
    """Two "workers" (apps) on one real Redis; each user on each: only their own notes."""
    first, second = notes_app(redis_server.url), notes_app(redis_server.url)
    for app in (first, second, first):
        camille = _card(_as(app, "camille"), until="Camille")
        dominique = _card(_as(app, "dominique"), until="Dominique")
        assert "Camille&#39;s plan" in camille and "Hello camille" in camille
        assert "Dominique" not in camille and "dominique" not in camille
        assert "Dominique&#39;s secret" in dominique and "Hello dominique" in dominique
        assert "Camille" not in dominique and "camille" not in dominique
    server, _ = notes
    assert server.count("/notes") == 1  # the notes were fetched once for everyone, and cut per user
    assert server.count("/greeting") == 2  # the per-user part: once per user


def test_hostile_text_from_an_upstream_is_shown_as_text(notes_app: Callable[..., Flask]) -> None:
    html = _card(_as(notes_app(), "camille"), until="Camille")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html


# --- nothing of one session in another's answer ----------------------------------------------


def test_no_card_holds_the_token_name_or_email_of_another_session(notes_app: Callable[..., Flask]) -> None:
    """Every widget, rendered for two sessions of two users: no token, name or e-mail crosses."""
    app = notes_app()
    sessions = {name: _as(app, name) for name in ("camille", "dominique")}
    secrets: dict[str, set[str]] = {}
    for name, client in sessions.items():
        page = client.get("/").get_data(as_text=True)
        person, email = f"{name.capitalize()} Demo", f"{name}@demo.invalid"
        assert person in page and email in page  # the page's user menu shows them; cards must not
        secrets[name] = {_token(client), person, email}
    slugs = [ctx.widget.slug for ctx in portal_state(app).widgets.values()]
    assert "status" in slugs and "notes" in slugs
    for slug in slugs:
        for name, client in sessions.items():
            html = _card(client, slug)
            other = "dominique" if name == "camille" else "camille"
            for secret in secrets[other] | secrets[name]:  # not even one's own: a card is shared by version
                assert secret not in html, f"the {slug} card of {name} holds {secret!r}"


def test_a_card_template_cannot_reach_the_user_or_the_request(notes_app: Callable[..., Flask]) -> None:
    app = notes_app()
    renderer = FragmentRenderer(app)
    for name in ("user", "request", "session", "csrf_token", "g"):
        template = renderer.env.from_string(f"{{{{ {name} }}}}")
        with app.test_request_context(), pytest.raises(UndefinedError):
            template.render()


# --- time stays true ---------------------------------------------------------------------------


def test_clock_relative_text_is_rendered_anew_each_step_with_unchanged_data(
    notes_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = StoppedClock()
    monkeypatch.setattr(serving, "time", clock)
    client = _as(notes_app(), "camille")
    first = client.get("/widgets/notes")
    html = _card(client, until="Camille")
    version = client.get("/widgets/notes").headers["X-Widget-Version"]
    assert client.get("/widgets/notes", headers={"X-Widget-Version": version}).status_code == 204
    assert first.status_code == 200
    written = re.search(r"Written for (\S+)</p>", html)
    assert written
    clock.at += 120
    later = client.get("/widgets/notes", headers={"X-Widget-Version": version})
    assert later.status_code == 200  # same data, two minutes on: a new version
    moved = re.search(r"Written for (\S+)</p>", later.get_data(as_text=True))
    assert moved and moved.group(1) != written.group(1)


def test_updated_at_is_the_latest_fetch_even_when_the_data_and_its_view_stay_the_same(
    make_app: Callable[..., Flask],
) -> None:
    """A view is kept for every poll that shows the same data; "Updated at" moves on regardless."""
    client = make_app(lambda c: c["widgets"]["status"].update(ttl=1)).test_client()
    first = client.get("/widgets/status")
    time.sleep(1.2)  # past the TTL: fetched again, the same data
    again = client.get("/widgets/status", headers={"X-Widget-Version": first.headers["X-Widget-Version"]})
    assert again.status_code == 204
    assert again.headers["X-Widget-Fetched-At"] > first.headers["X-Widget-Fetched-At"]


# --- never back in time -------------------------------------------------------------------------


def test_a_poll_reaching_a_worker_with_older_data_keeps_the_newer_card(
    make_app: Callable[..., Flask], world: KumaWorld, kuma: SimServer
) -> None:
    """Two workers of a pod without Redis, each caching on its own: the card on screen came from
    the one that fetched last; a poll reaching the other keeps it rather than going back."""
    earlier, later = make_app().test_client(), make_app().test_client()
    old = earlier.get("/widgets/status")  # this worker fetched while GitLab was up
    world.monitors[1].behaviour = "down"
    time.sleep(0.01)
    new = later.get("/widgets/status")  # this one after GitLab went down: the card on screen
    shown = {
        "X-Widget-Version": new.headers["X-Widget-Version"],
        "X-Widget-Fetched-At": new.headers["X-Widget-Fetched-At"],
    }
    assert new.headers["X-Widget-Fetched-At"] > old.headers["X-Widget-Fetched-At"]

    kept = earlier.get("/widgets/status", headers=shown)
    assert (kept.status_code, kept.data) == (204, b"")
    assert kept.headers["X-Widget-Fetched-At"] == shown["X-Widget-Fetched-At"]  # the time on screen stays
    assert "X-Widget-Version" not in kept.headers  # the card's own version stands

    # Anything else gets this worker's card: a first load, a request that does not say when its
    # data was fetched (a person's own, not a poll), data on screen older than this worker's,
    # past its TTL, or a time that cannot be believed.
    assert earlier.get("/widgets/status").status_code == 200
    assert (
        earlier.get("/widgets/status", headers={"X-Widget-Version": shown["X-Widget-Version"]}).status_code
        == 200
    )
    seconds = datetime.fromisoformat(old.headers["X-Widget-Fetched-At"])
    for said in (
        (seconds - timedelta(seconds=1)).isoformat(),  # older than this worker's
        (datetime.now(UTC) - timedelta(seconds=31)).isoformat(),  # past the card's TTL (30 s)
        (datetime.now(UTC) + timedelta(minutes=5)).isoformat(),  # in the future
        datetime.now().replace(tzinfo=None).isoformat(),  # no zone
        "yesterday",
    ):
        answer = earlier.get("/widgets/status", headers={**shown, "X-Widget-Fetched-At": said})
        assert answer.status_code == 200, said
        assert answer.headers["X-Widget-Fetched-At"] == old.headers["X-Widget-Fetched-At"]
    # The worker that holds the newer data answers as before: 204 for its own version.
    assert later.get("/widgets/status", headers=shown).status_code == 204
    assert "X-Widget-Poll" not in kept.headers  # nothing under way: the card polls at its interval

    # A worker with nothing yet, its fetch under way (a new worker, or one whose data a pushed
    # change invalidated): the card keeps its data and asks again soon, not at its interval.
    kuma.set_fault("timeout", seconds=3)
    waiting = make_app(lambda c: c["cache"].update(answer_within=0.2)).test_client()
    pending = waiting.get("/widgets/status", headers=shown)
    assert (pending.status_code, pending.headers.get("X-Widget-Poll")) == (204, "soon")


def test_the_fetch_time_is_utc_with_a_z_and_a_page_from_before_still_is_understood(
    make_app: Callable[..., Flask], world: KumaWorld
) -> None:
    """The header says UTC as "Z" (five bytes fewer than "+00:00" on every unchanged poll); a
    page opened before that change sends "+00:00" back, and its newer card is kept all the same."""
    earlier, later = make_app().test_client(), make_app().test_client()
    earlier.get("/widgets/status")
    world.monitors[1].behaviour = "down"
    time.sleep(0.01)
    new = later.get("/widgets/status")
    said = new.headers["X-Widget-Fetched-At"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", said), said
    assert datetime.fromisoformat(said).utcoffset() == timedelta(0)
    for form in (said, said.removesuffix("Z") + "+00:00"):
        kept = earlier.get(
            "/widgets/status",
            headers={"X-Widget-Version": new.headers["X-Widget-Version"], "X-Widget-Fetched-At": form},
        )
        assert kept.status_code == 204, form
        assert kept.headers["X-Widget-Fetched-At"] == said


def test_a_card_polled_across_two_workers_without_redis_never_goes_back_in_time(
    portal_config: dict[str, Any], world: KumaWorld, tmp_path: Path
) -> None:
    """The chart's default pod: two gunicorn workers, no Redis (one cache in the pod's files since
    2026-12-04; each worker cached on its own before, which this test was written against). The page
    polls as portal.js does (its version and when its data was fetched), each poll on a new
    connection as an ingress spreads them; GitLab goes up and down all along (with a cache in each
    worker, the two held different data). The card's data only ever moves forward (it went back
    at 15 of 36 changes in the demo before)."""
    portal_config["widgets"]["status"].update(ttl=1)
    stop = threading.Event()

    def flap() -> None:
        while not stop.wait(0.3):
            world.monitors[1].behaviour = "down" if world.monitors[1].behaviour == "up" else "up"

    with portal_process(portal_config, tmp_path, workers=2) as url:
        session = requests.Session()
        session.headers["Connection"] = "close"
        session.get(f"{url}/auth/demo-user/camille", timeout=10)
        flapping = threading.Thread(target=flap, daemon=True)
        flapping.start()
        try:
            shown: dict[str, str] = {}
            times: list[str] = []
            changes = 0
            for _ in range(60):
                answer = session.get(
                    f"{url}/widgets/status", headers={"HX-Request": "true", **shown}, timeout=10
                )
                assert answer.status_code in (200, 204)
                fetched = answer.headers["X-Widget-Fetched-At"]
                if answer.status_code == 200:
                    changes += 1
                    shown = {"X-Widget-Version": answer.headers["X-Widget-Version"]}
                shown["X-Widget-Fetched-At"] = fetched
                times.append(fetched)
                time.sleep(0.1)
        finally:
            stop.set()
            flapping.join(2)
    assert changes >= 5, "the data hardly changed: the test shows nothing"
    assert times == sorted(times), f"the card went back in time: {times}"


# --- the write path ---------------------------------------------------------------------------


def _rename(client: FlaskClient, note: int, title: str, version: int, **headers: str) -> Any:
    return client.post(
        f"/widgets/notes/{note}",
        data={"title": title, "version": str(version)},
        headers={"Accept-Language": "en", **headers},
    )


def test_a_change_needs_the_pages_token_and_origin(
    notes_app: Callable[..., Flask], notes: tuple[SimServer, NotesWorld], caplog: pytest.LogCaptureFixture
) -> None:
    server, world = notes
    client = _as(notes_app(), "camille")
    _card(client, until="Camille")
    token = _token(client)

    missing = _rename(client, 1, "no token", 1, Origin=ORIGIN)
    assert missing.status_code == 403
    assert "security token had expired: it has been renewed. Make your change again." in missing.get_data(
        as_text=True
    )
    # The page of a person who signed in again in another tab (a new session, a new token): the
    # refusal brings the session's token, and the next try with it goes through.
    renewed = missing.headers["X-Portal-CSRF"]
    foreign = _rename(client, 1, "from elsewhere", 1, Origin="https://evil.example", **{"X-CSRFToken": token})
    assert foreign.status_code == 403 and "X-Portal-CSRF" not in foreign.headers  # never to another site
    assert "did not come from the portal&#39;s page" in foreign.get_data(as_text=True)
    assert server.count("PATCH") == 0 and world.notes[1]["title"] == "Camille's plan"
    audits = [r for r in caplog.records if getattr(r, "event", "") == "audit"]
    assert [r.outcome for r in audits] == ["refused", "refused"]  # type: ignore[attr-defined]
    again = _rename(client, 1, "with the renewed token", 1, Origin=ORIGIN, **{"X-CSRFToken": renewed})
    assert again.status_code == 200 and world.notes[1]["title"] == "with the renewed token"


def test_a_change_lands_once_is_audited_and_answers_with_the_fresh_card(
    notes_app: Callable[..., Flask], notes: tuple[SimServer, NotesWorld], caplog: pytest.LogCaptureFixture
) -> None:
    _, world = notes
    client = _as(notes_app(), "camille")
    assert "Camille&#39;s plan" in _card(client, until="Camille")
    answer = _rename(client, 1, "Camille's new plan", 1, Origin=ORIGIN, **{"X-CSRFToken": _token(client)})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert "Saved." in html and "Camille&#39;s new plan" in html  # the card, fresh, with the notice
    assert world.notes[1]["title"] == "Camille's new plan" and world.notes[1]["version"] == 2
    patches = [r for r in caplog.records if getattr(r, "event", "") == "audit"]
    assert [(r.action, r.target, r.outcome, r.user) for r in patches] == [  # type: ignore[attr-defined]
        ("rename", "note 1", "ok", "demo-0001")
    ]


def test_someone_elses_item_is_refused_and_stays_as_it_was(
    notes_app: Callable[..., Flask], notes: tuple[SimServer, NotesWorld]
) -> None:
    _, world = notes
    client = _as(notes_app(), "camille")
    _card(client, until="Camille")
    forged = _rename(client, 2, "taken over", 1, Origin=ORIGIN, **{"X-CSRFToken": _token(client)})
    assert forged.status_code == 403
    assert "You are not allowed to make this change." in forged.get_data(as_text=True)
    assert world.notes[2]["title"] == "Dominique's secret"


def test_a_conflict_says_someone_else_changed_it_and_shows_the_current_state(
    notes_app: Callable[..., Flask], notes: tuple[SimServer, NotesWorld]
) -> None:
    _, world = notes
    client = _as(notes_app(), "camille")
    _card(client, until="Camille")
    world.rename_directly(1, "Changed in the tool itself")  # the card still shows version 1
    answer = _rename(client, 1, "Mine", 1, Origin=ORIGIN, **{"X-CSRFToken": _token(client)})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert "This item was changed in Notes after your card showed it" in html
    assert "Changed in the tool itself" in html  # the fresh state, not the stale one
    assert world.notes[1]["title"] == "Changed in the tool itself"


def test_a_change_that_fails_unforeseen_says_it_may_have_landed_and_shows_the_fresh_card(
    notes_app: Callable[..., Flask], notes: tuple[SimServer, NotesWorld], caplog: pytest.LogCaptureFixture
) -> None:
    """The rename lands, then the upstream's answer has a field the client does not know: the
    card says the change may have been made, and shows what the upstream now holds."""
    _, world = notes
    world.unforeseen = {"colour": "red"}
    client = _as(notes_app(), "camille")
    assert "Camille&#39;s plan" in _card(client, until="Camille")
    answer = _rename(client, 1, "Landed anyway", 1, Origin=ORIGIN, **{"X-CSRFToken": _token(client)})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 500 and answer.headers["X-Portal-Card-Failed"] == "1"
    assert "the change may or may not have been made. Check in Notes before trying again." in html
    assert "Landed anyway" in html  # invalidated all the same: the card shows what Notes holds
    assert world.notes[1]["title"] == "Landed anyway" and "colour" not in html
    audits = [r for r in caplog.records if getattr(r, "event", "") == "audit"]
    assert [(r.action, r.outcome) for r in audits] == [("rename", "portal_error")]  # type: ignore[attr-defined]
    failed = [r for r in caplog.records if getattr(r, "event", "") == "write_failed"]
    assert failed and failed[0].exc_info is not None and failed[0].widget == "notes"  # type: ignore[attr-defined]


def test_a_change_made_but_answered_too_late_says_it_may_have_been_made_and_shows_it(
    notes_app: Callable[..., Flask], notes: tuple[SimServer, NotesWorld]
) -> None:
    """Notes renames, then answers after the portal stopped waiting (2 s): the card cannot say
    the change failed, nor that it was made. It says so, in the person's language, with the
    upstream's problem, and shows what Notes now holds."""
    _, world = notes
    world.answer_after = 3
    client = _as(notes_app(), "camille")
    _card(client, until="Camille")
    token = _token(client)
    html = unescape(
        _rename(client, 1, "Late but made", 1, Origin=ORIGIN, **{"X-CSRFToken": token}).get_data(as_text=True)
    )
    assert (
        "Notes did not answer within 2 s: the change may or may not have been made."
        " Check in Notes before trying again." in html
    )
    assert "Late but made" in html and world.notes[1]["title"] == "Late but made"
    french = _rename(client, 1, "Encore", 2, Origin=ORIGIN, **{"X-CSRFToken": token, "Accept-Language": "fr"})
    said = re.sub(r"[\u00a0\u202f]", " ", unescape(french.get_data(as_text=True)))
    assert (
        "Notes n’a pas répondu en moins de 2 s : la modification a peut-être été faite, peut-être pas."
        in said
    )


# A change that fails, by what its failure says of it: (fault, options, the card's words, whether
# the card says it may have been made all the same). The faults hit the rename (PATCH /notes/1)
# only, after the change has read the notes; "refused" closes the whole port (the read fails
# first: nothing was sent).
WRITE_FAILURES = [
    pytest.param(
        "timeout", {"seconds": 4, "only": "/notes/"}, "Notes did not answer within 2 s", True, id="timeout"
    ),
    pytest.param("error500", {"only": "/notes/"}, "Notes answered HTTP 500", True, id="5xx"),
    pytest.param(
        "garbage", {"only": "/notes/"}, "Notes returned a response that is not valid JSON", True, id="garbage"
    ),
    pytest.param(
        "unauthorized", {"only": "/notes/"}, "Notes asks for a login the portal does not", False, id="401"
    ),
    pytest.param("refused", {"seconds": 4}, "Notes cannot be reached", False, id="refused"),
]


@pytest.mark.parametrize(("mode", "options", "words", "unsure"), WRITE_FAILURES)
def test_a_failed_change_says_whether_it_may_have_been_made(
    notes_app: Callable[..., Flask],
    notes: tuple[SimServer, NotesWorld],
    mode: str,
    options: dict[str, Any],
    words: str,
    unsure: bool,
) -> None:
    """Only a change never sent (a read before it failed, no connection made), or refused, is
    said for sure not to have been made."""
    server, world = notes
    client = _as(notes_app(), "camille")
    token = _token(client)  # the page: no call to Notes
    server.set_fault(mode, **options)
    answer = _rename(client, 1, "Maybe", 1, Origin=ORIGIN, **{"X-CSRFToken": token})
    html = unescape(answer.get_data(as_text=True))
    assert words in html
    assert ("the change may or may not have been made" in html) is unsure
    assert world.notes[1]["title"] == "Camille's plan"  # (the faults answer instead of Notes)


# --- invalidation across gunicorn workers -------------------------------------------------------


@pytest.mark.parametrize("with_redis", [True, False], ids=["redis", "files"])
def test_a_change_reaches_every_gunicorn_worker_at_once(
    with_redis: bool,
    notes: tuple[SimServer, NotesWorld],
    portal_config: dict[str, Any],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    """Both workers keep the notes; a rename through one shows on both at once.

    With Redis, each worker keeps a copy of the shared entry, dropped by the Redis channel;
    without it, each worker has a store of its own, invalidated through the pod's shared file.
    """
    server, world = notes
    config = notes_widget.notes_config(yaml.safe_load(yaml.safe_dump(portal_config)), server.url)
    if with_redis:
        config["cache"]["redis_url"] = request.getfixturevalue("redis_server").url
    with portal_process(config, tmp_path, workers=2, app_module="tests.support.notes_app:app") as url:
        session = requests.Session()
        # A new connection for every request: gunicorn's two workers each accept some of them.
        session.headers["Connection"] = "close"
        session.get(f"{url}/auth/demo-user/camille", timeout=10)

        def card() -> str:
            return session.get(f"{url}/widgets/notes", timeout=10).text

        deadline = time.monotonic() + 10
        while "Camille&#39;s plan" not in card() and time.monotonic() < deadline:
            time.sleep(0.1)
        for _ in range(20):  # enough polls for both workers to keep their copy
            assert "Camille&#39;s plan" in card()
        page = session.get(f"{url}/", timeout=10).text
        token = re.search(r"X-CSRFToken&#34;: &#34;([^&]+)&#34;", page) or re.search(
            r'"X-CSRFToken": "([^"]+)"', page
        )
        assert token
        changed = session.post(
            f"{url}/widgets/notes/1",
            data={"title": "Renamed", "version": "1"},
            headers={"X-CSRFToken": token.group(1), "Origin": url},
            timeout=10,
        )
        assert changed.status_code == 200 and "Renamed" in changed.text
        polls = [card() for _ in range(20)]
    assert all("Renamed" in html and "Camille&#39;s plan" not in html for html in polls)
    assert world.notes[1]["title"] == "Renamed"


# --- parts shared between cards, and kept longer ------------------------------------------------


def test_an_upstream_wide_part_has_one_key_for_every_widget_and_its_own_ttl(
    notes_app: Callable[..., Flask],
) -> None:
    from portal.identity import DEMO_USER
    from portal.widgets.contract import Part, upstream_key

    app = notes_app()
    state = portal_state(app)
    ctx = state.widgets["notes"]
    shared = Part("all", "", notes_widget.NOTES, lambda: (), upstream_wide=True, ttl=600)
    plain = Part("all", "", notes_widget.NOTES, lambda: ())
    assert (
        ctx.part_key(shared, DEMO_USER)
        == upstream_key(notes_widget.NOTES, "all")
        == "widget:@notes:shared:all"
    )
    assert ctx.part_key(plain, DEMO_USER) == "widget:notes:shared:all"
    assert ctx.part_policy(shared).ttl == 600 and ctx.part_policy(plain).ttl == ctx.settings.ttl
    mine = Part("greeting", "", notes_widget.NOTES, lambda: "", per_user=True, upstream_wide=True)
    assert ctx.part_key(mine, DEMO_USER) == "widget:@notes:user:demo-0001:greeting"


def test_a_public_view_is_reached_without_a_session(notes_app: Callable[..., Flask]) -> None:
    from portal.auth.guard import is_public

    app = notes_app()
    assert is_public(app, "tasks.taiga_webhook") and is_public(app, "deadlines.feed")
    assert not is_public(app, "tasks.set_status") and not is_public(app, "notes.rename")


def test_parts_that_failed_alike_are_said_once_and_others_each() -> None:
    down = Reason.of("%(upstream)s answered HTTP %(status)s", upstream="GitLab", status=500)
    other = Reason.of("%(upstream)s did not answer within %(seconds)s s", upstream="GitLab", seconds=5)
    at = datetime(2026, 12, 2, 15, 59, 10, tzinfo=UTC)
    later_that_minute, another_minute = at.replace(second=50), at.replace(minute=58)

    alike = [Problem("a", "GitLab", down, at), Problem("b", "GitLab", down, later_that_minute)]
    assert said_once(alike, parts=2) == (Problem("", "GitLab", down, at),)  # no name: every part's
    assert said_once(alike, parts=3) == tuple(alike)  # a third part is fine: the two are named

    for problems in (
        [Problem("a", "GitLab", down, at), Problem("b", "GitLab", other, at)],  # not the same problem
        [Problem("a", "GitLab", down, at), Problem("b", "GitLab", down, another_minute)],  # data of two times
        [Problem("a", "GitLab", down, at), Problem("b", "GitLab", down, None)],  # one has no data at all
    ):
        assert said_once(problems, parts=2) == tuple(problems)
    one = [Problem("a", "GitLab", down, at)]
    assert said_once(one, parts=1) == tuple(one) and said_once([], parts=2) == ()


def test_unnamed_parts_that_failed_alike_are_one_line_dated_by_the_oldest_data() -> None:
    """The tasks card with Taiga refusing the service account read "Data from 01:29 — Taiga
    refused ..." and "Unavailable — Taiga refused ..." (its statuses, never read): two lines that
    said the same thing, the second wrong about the tasks on screen."""
    refused = Reason.of("Taiga refused the portal's service account")
    down = Reason.of("%(upstream)s answered HTTP %(status)s", upstream="Taiga", status=500)
    at = datetime(2026, 12, 3, 1, 29, 10, tzinfo=UTC)
    earlier = at.replace(minute=12)

    assert said_once([Problem("", "Taiga", refused, at), Problem("", "Taiga", refused, None)], parts=3) == (
        Problem("", "Taiga", refused, at),
    )
    assert said_once(
        [Problem("", "Taiga", refused, at), Problem("", "Taiga", refused, earlier)], parts=2
    ) == (Problem("", "Taiga", refused, earlier),)
    assert said_once([Problem("", "Taiga", refused, None), Problem("", "Taiga", refused, None)], parts=3) == (
        Problem("", "Taiga", refused, None),
    )
    different = [Problem("", "Taiga", refused, at), Problem("", "Taiga", down, at)]
    assert said_once(different, parts=3) == tuple(different)
    named = [Problem("statuses", "Taiga", refused, None), Problem("", "Taiga", refused, at)]
    assert said_once(named, parts=3) == tuple(named)
