"""Personal layouts, the same tests on SQLite and on a real PostgreSQL: save, load, reset, team
defaults, concurrent saves, isolation between users, every bad input refused with nothing lost,
and the page without its database."""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient

from portal import create_app
from portal.config import ConfigError
from portal.identity import DEMO_MEMBER, DEMO_USER
from portal.layout.model import MAX_BODY_BYTES
from portal.state import portal_state
from portal.storage import Preferences
from portal.storage import database as database_module
from portal.widgets import WIDGETS

from .conftest import SECRET
from .support.layout_widgets import ALPHA, BETA, CHOOSY, DELTA, EPSILON, GAMMA, SORT, STATUS
from .support.postgres import PostgresServer
from .support.processes import free_port

ORIGIN = "http://localhost"
EN = {"Accept-Language": "en"}
# The status card and four test cards: the layout's own subjects, whatever
# other cards the deployment registers.
TEST_WIDGETS = (STATUS, ALPHA, BETA, GAMMA, DELTA)
REGISTRY = [w.slug for w in TEST_WIDGETS]

pytestmark = pytest.mark.peers


@pytest.fixture(params=["sqlite", "postgresql"])
def database_config(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """The `database` section of one test's own database: a SQLite file, or a PostgreSQL database."""
    if request.param == "sqlite":
        return {"data_dir": str(tmp_path / "data")}
    postgres: PostgresServer = request.getfixturevalue("postgres")
    return {"url": postgres.create_database(f"layout_{uuid.uuid4().hex[:12]}")}


def with_layout(portal_config: dict[str, Any], database: dict[str, Any]) -> dict[str, Any]:
    """Four plain widgets beside the registry's; delta only for administrators; a rule per team."""
    config: dict[str, Any] = yaml.safe_load(yaml.safe_dump(portal_config))
    config["database"] = database
    config["widgets"].update(
        {slug: {"refresh": 30} for slug in ("alpha", "beta", "gamma")}
        | {"delta": {"refresh": 30, "roles": ["/admins"]}}
    )
    # The registry's other cards (their tools not configured here) are off: layouts of the status
    # card and the plain ones, whatever widgets the portal gains.
    for widget in WIDGETS:
        if widget.slug != "status":
            config["widgets"].setdefault(widget.slug, {})["enabled"] = False
    config["layout"] = {
        "defaults": [
            {"roles": ["/team-b"], "widgets": ["gamma", "beta"], "hidden": ["alpha"], "pinned": ["Grafana"]},
            {"roles": ["/admins"], "widgets": ["delta"], "collapsed": ["status"], "new_tab": True},
        ]
    }
    return config


@pytest.fixture
def build_app() -> Iterator[Callable[..., Flask]]:
    """Build apps whose database connections are closed at the end of the test."""
    apps: list[Flask] = []

    def build(config: dict[str, Any], widgets: tuple[Any, ...] = TEST_WIDGETS) -> Flask:
        # Only the sections of the cards this app registers (the example configures them all).
        slugs = {w.slug for w in widgets}
        upstreams = {u.name for w in widgets for u in w.upstreams}
        config["widgets"] = {k: v for k, v in config.get("widgets", {}).items() if k in slugs}
        config["upstreams"] = {k: v for k, v in config.get("upstreams", {}).items() if k in upstreams}
        app = create_app(
            {"TESTING": True, "PORTAL": config, "ENV": {"PORTAL_SECRET_KEY": SECRET}, "WIDGETS": widgets}
        )
        apps.append(app)
        return app

    yield build
    for app in apps:
        portal_state(app).database.dispose()


@pytest.fixture
def make_layout_app(
    portal_config: dict[str, Any], database_config: dict[str, Any], build_app: Callable[..., Flask]
) -> Callable[..., Flask]:
    def build(
        changes: Callable[[dict[str, Any]], None] | None = None, widgets: tuple[Any, ...] = TEST_WIDGETS
    ) -> Flask:
        config = with_layout(portal_config, database_config)
        if changes:
            changes(config)
        return build_app(config, widgets)

    return build


@pytest.fixture
def layout_app(make_layout_app: Callable[..., Flask]) -> Flask:
    return make_layout_app()


# --- helpers ------------------------------------------------------------------------------------


@dataclass
class Browser:
    """One browser of one demo user: its own cookies, the page's CSRF token."""

    client: FlaskClient
    token: str = ""
    basis: str = ""  # what the page's layout was drawn from, as portal.js sends it back
    shown: dict[str, Any] | None = None  # the layout the page shows, sent with a change as its base

    def page(self) -> Page:
        html = self.client.get("/", headers=EN).get_data(as_text=True)
        found = re.search(r"X-CSRFToken&#34;: &#34;([^&]+)&#34;", html) or re.search(
            r'"X-CSRFToken": "([^"]+)"', html
        )
        assert found, "the page carries no CSRF token"
        self.token = found.group(1)
        basis = re.search(r'id="layout-bar"[^>]* data-basis="([^"]+)"', html)
        self.basis = basis.group(1) if basis else ""
        page = Page.parse(html)
        self.shown = page.document()
        return page

    def change(
        self, document: dict[str, Any], *, earlier_release: bool = False
    ) -> tuple[int, dict[str, Any]]:
        """Save as the page's script does: based on what the page shows (sent along as the
        change's base, unless the page is of an earlier release), following its own saves and
        showing the layout the portal answers with when it put the change onto another."""
        body = document if earlier_release else {**document, "base": self.shown}
        code, answer = self.save(body, **{"X-Layout-Basis": self.basis})
        if code == 200:
            self.basis = answer["basis"]
            self.shown = answer.get("layout") or document
        return code, answer

    def save(self, document: Any, **headers: str) -> tuple[int, dict[str, Any]]:
        if not self.token:
            self.page()
        body = document if isinstance(document, str | bytes) else json.dumps(document)
        sent = {
            "X-CSRFToken": self.token,
            "Origin": ORIGIN,
            "Content-Type": "application/json",
            **EN,
            **headers,
        }
        response = self.client.post("/layout", data=body, headers={k: v for k, v in sent.items() if v})
        return response.status_code, response.get_json()

    def reset(self) -> tuple[int, dict[str, Any]]:
        if not self.token:
            self.page()
        response = self.client.post(
            "/layout/reset", headers={"X-CSRFToken": self.token, "Origin": ORIGIN, **EN}
        )
        return response.status_code, response.get_json()


def browser(app: Flask, username: str) -> Browser:
    """A fresh browser where `username` (camille: /admins; dominique: /team-b) is logged in."""
    client = app.test_client()
    assert client.get(f"/auth/demo-user/{username}").status_code == 303
    return Browser(client)


@dataclass
class Page:
    """What the dashboard shows of the layout."""

    cards: list[str]
    hidden: set[str]
    collapsed: set[str]
    wide: set[str]
    polling: set[str]
    tiles: list[str]
    pinned: list[str]
    new_tab: bool
    notice: bool
    dots: bool

    @classmethod
    def parse(cls, html: str) -> Page:
        cards = re.findall(
            r'<section class="widget-card([^"]*)" id="widget-[^"]+" data-slug="([^"]+)"'
            r'[^>]*? data-width="(\w+)"',
            html,
        )
        bodies = dict(
            re.findall(r'id="widget-([a-z0-9_-]+)-body"\s+hx-get="[^"]+" hx-trigger="([^"]+)"', html)
        )
        tiles = re.findall(r'<li class="tile-item( is-pinned)?" data-tile="([^"]+)"', html)
        return cls(
            cards=[slug for _, slug, _ in cards],
            hidden={slug for classes, slug, _ in cards if "is-hidden-card" in classes},
            collapsed={slug for classes, slug, _ in cards if "is-collapsed" in classes},
            wide={
                slug for classes, slug, width in cards if width == "wide" and "widget-card--wide" in classes
            },
            polling={slug for slug, trigger in bodies.items() if "load" in trigger},
            tiles=[slug for _, slug in tiles],
            pinned=[slug for pinned, slug in tiles if pinned],
            new_tab='target="_blank"' in html,
            notice="layout-notice" in html,
            dots='id="tile-dot-gitlab"' in html,
        )

    def document(self) -> dict[str, Any]:
        """The layout as the page's script reads it from the page (portal.js, layoutNow)."""
        return {
            "cards": [
                card(
                    slug,
                    hidden=slug in self.hidden,
                    collapsed=slug in self.collapsed,
                    width="wide" if slug in self.wide else "normal",
                )
                for slug in self.cards
            ],
            "pinned": self.pinned,
            "new_tab": self.new_tab,
        }


def card(slug: str, **choices: Any) -> dict[str, Any]:
    return {"slug": slug, **choices}


MINE = {
    "cards": [
        card("gamma", width="wide"),
        card("status", collapsed=True),
        card("alpha", hidden=True),
        card("delta"),
        card("beta"),
    ],
    "pinned": ["vault", "gitlab"],
    "new_tab": True,
}


# --- save, load, reset, defaults ------------------------------------------------------------------


def test_a_saved_layout_is_what_the_next_page_shows_in_another_browser(layout_app: Flask) -> None:
    first = browser(layout_app, "camille")
    code, answer = first.save(MINE)
    assert (code, answer["message"], answer["revision"]) == (200, "Layout saved.", 1)
    page = browser(layout_app, "camille").page()  # a second browser of the same user
    assert page.cards == ["gamma", "status", "alpha", "delta", "beta"]
    assert page.hidden == {"alpha"}
    assert page.collapsed == {"status"}
    assert page.wide == {"gamma", "status"}  # status is wide by its own choice
    assert page.polling == {"gamma", "delta", "beta"}  # hidden and collapsed cards wait
    assert page.pinned == ["vault", "gitlab"]
    assert page.tiles[:3] == ["vault", "gitlab", "harbor"]  # then the others in their order
    assert page.new_tab
    assert not page.notice
    assert page.dots  # the folded status card fills them once unfolded: they wait, "unknown"


def test_a_page_coming_back_asks_for_the_layout_it_would_be_drawn_with_now(layout_app: Flask) -> None:
    """GET /layout: the document and basis a page drawn now would have (portal.js asks when its
    person comes back to it), per person, never cached."""
    camille = browser(layout_app, "camille")
    drawn = camille.page()
    asked = camille.client.get("/layout", headers=EN)
    assert asked.status_code == 200 and asked.headers["Cache-Control"] == "no-store"
    answer = asked.get_json()
    answer_access = answer.pop("access")
    assert answer_access  # the cards and tools she may see, as a short key
    assert answer == {"basis": camille.basis, "layout": drawn.document()}  # the team's default
    assert camille.basis == "none"

    desktop = browser(layout_app, "camille")
    assert desktop.change(MINE)[0] == 200
    now = camille.client.get("/layout", headers=EN).get_json()
    assert now["basis"] == desktop.basis != camille.basis  # the laptop learns it changed
    assert now["layout"] == browser(layout_app, "camille").page().document()  # as a new page draws it

    dominique = browser(layout_app, "dominique")
    theirs = dominique.client.get("/layout", headers=EN).get_json()
    assert theirs.pop("access") != answer_access  # she may not see delta
    assert theirs == {"basis": "none", "layout": dominique.page().document()}  # her team's, not Camille's


def test_team_defaults_first_matching_rule_and_reset(layout_app: Flask) -> None:
    dominique = browser(layout_app, "dominique").page()  # /team-b: the first rule
    assert dominique.cards == ["gamma", "beta", "status", "alpha"]  # no delta: not an admin
    assert dominique.hidden == {"alpha"}
    assert dominique.pinned == ["grafana"]
    assert not dominique.new_tab
    camille = browser(layout_app, "camille")  # /admins and /team-a: the second rule
    default = camille.page()
    assert default.cards == ["delta", "status", "alpha", "beta", "gamma"]
    assert default.collapsed == {"status"}
    assert default.new_tab
    assert camille.save(MINE)[0] == 200
    assert camille.page().cards == ["gamma", "status", "alpha", "delta", "beta"]
    status, answer = camille.reset()
    assert status == 200 and answer["message"] == "Your team's default layout is back."
    # The default comes with the answer, as GET /layout gives it: the page shows it in place.
    assert [card["slug"] for card in answer["layout"]["cards"]] == default.cards
    assert answer["basis"] == camille.client.get("/layout").get_json()["basis"]
    assert camille.page() == default
    assert browser(layout_app, "camille").page() == default


def test_of_two_rules_that_match_a_person_the_first_one_listed_wins(
    make_layout_app: Callable[..., Flask],
) -> None:
    team_a = {"roles": ["/team-a"], "widgets": ["alpha", "gamma"], "hidden": ["beta"]}
    after = make_layout_app(lambda config: config["layout"]["defaults"].append(team_a))
    page = browser(after, "camille").page()  # /admins and /team-a: the /admins rule comes first
    assert page.cards[0] == "delta" and page.collapsed == {"status"} and not page.hidden
    before = make_layout_app(lambda config: config["layout"]["defaults"].insert(0, team_a))
    page = browser(before, "camille").page()
    assert page.cards[:2] == ["alpha", "gamma"] and page.hidden == {"beta"} and not page.collapsed


def test_without_a_rule_the_widgets_own_order(make_layout_app: Callable[..., Flask]) -> None:
    app = make_layout_app(lambda config: config.pop("layout"))
    page = browser(app, "camille").page()
    assert page.cards == REGISTRY
    assert page.hidden == page.collapsed == set()
    assert not page.pinned and not page.new_tab


def test_two_users_never_see_each_others_layout(layout_app: Flask) -> None:
    camille, dominique = browser(layout_app, "camille"), browser(layout_app, "dominique")
    before = dominique.page()
    assert camille.save(MINE)[0] == 200
    assert dominique.page() == before
    theirs = {"cards": [card("beta"), card("status", hidden=True)], "pinned": ["harbor"], "new_tab": False}
    assert dominique.save(theirs)[0] == 200
    assert browser(layout_app, "dominique").page().cards == ["beta", "status", "alpha", "gamma"]
    assert browser(layout_app, "camille").page().cards == ["gamma", "status", "alpha", "delta", "beta"]


def test_concurrent_saves_from_two_browsers_last_one_wins_whole(layout_app: Flask) -> None:
    browsers = [browser(layout_app, "camille") for _ in range(2)]
    orders = [["alpha", "beta", "gamma", "delta", "status"], ["status", "delta", "gamma", "beta", "alpha"]]
    documents = [
        {
            "cards": [card(s, hidden=i == 0 and s == "beta") for s in order],
            "pinned": [["gitlab"], ["vault"]][i],
        }
        for i, order in enumerate(orders)
    ]
    answers: list[int] = []
    errors: list[BaseException] = []

    def hammer(index: int) -> None:
        try:
            for _ in range(15):
                answers.append(browsers[index].save(documents[index])[0])
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert answers == [200] * 30
    page = browser(layout_app, "camille").page()
    whole = [(orders[0], {"beta"}, ["gitlab"]), (orders[1], set(), ["vault"])]
    assert (page.cards, page.hidden, page.pinned) in whole  # one of the two, never a mix
    # The last save, made after both, wins.
    assert browsers[1].save(documents[1])[1]["revision"] == 31
    assert browser(layout_app, "camille").page().cards == orders[1]


def test_a_change_on_a_page_left_open_goes_onto_the_layout_saved_since_elsewhere(
    layout_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """Camille's laptop shows the dashboard since the morning (her team's default). At noon she
    arranges it on her desktop. At three, on the laptop, she folds a card: saving the laptop's
    layout whole would silently undo the desktop's arrangement, and refusing it would make her
    reload and fold again. Her fold goes onto the desktop's layout, and the laptop's page is
    told what to show: the desktop's arrangement with the card folded."""
    laptop, desktop = browser(layout_app, "camille"), browser(layout_app, "camille")
    morning = laptop.page()
    desktop.page()
    assert laptop.basis == desktop.basis == "none"  # nothing saved yet
    assert desktop.change(MINE)[0] == 200
    assert desktop.change({**MINE, "new_tab": False})[0] == 200  # its own saves follow each other
    noon = browser(layout_app, "camille").page()
    folded = morning.document()
    folded["cards"] = [{**c, "collapsed": c["collapsed"] or c["slug"] == "beta"} for c in folded["cards"]]
    code, answer = laptop.change(folded)
    assert code == 200, answer
    assert answer["message"] == (
        "Layout saved, with the changes made to it on another device or in another tab."
    )
    shown = browser(layout_app, "camille").page()
    assert shown.cards == [c["slug"] for c in MINE["cards"]] and shown.pinned == MINE["pinned"]
    assert (shown.hidden, shown.wide, shown.new_tab) == (
        noon.hidden,
        noon.wide,
        noon.new_tab,
    )  # the desktop's
    assert noon.collapsed == {"status"} and shown.collapsed == {"status", "beta"}  # its fold and the laptop's
    assert answer["layout"] == shown.document()  # what the laptop's page shows from now on
    audits = [r for r in caplog.records if getattr(r, "event", "") == "audit"]
    assert (audits[-1].action, audits[-1].outcome) == ("layout_save", "merged")  # type: ignore[attr-defined]

    # The laptop follows the layout it was given: its next change is a plain save of it.
    unfolded = {**answer["layout"], "cards": [{**c, "collapsed": False} for c in answer["layout"]["cards"]]}
    code, answer = laptop.change(unfolded)
    assert code == 200 and "layout" not in answer and answer["message"] == "Layout saved."
    assert browser(layout_app, "camille").page().collapsed == set()
    # A reset elsewhere is a change too: the desktop's fold goes onto the team's default.
    drawn = desktop.page().document()
    assert browser(layout_app, "camille").reset()[0] == 200
    drawn["cards"] = [{**c, "collapsed": c["collapsed"] or c["slug"] == "beta"} for c in drawn["cards"]]
    code, answer = desktop.change(drawn)
    assert code == 200 and "layout" in answer
    after = browser(layout_app, "camille").page()
    assert (after.cards, after.pinned) == (morning.cards, morning.pinned)
    assert after.collapsed == morning.collapsed | {"beta"}


def test_a_page_of_an_earlier_release_does_not_put_its_older_layout_back_over_a_newer_one(
    layout_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """A page drawn by the release before this one sends no base with its change: its change
    cannot be told from the rest of its older layout, so it is refused with a 409 that says why
    and the newer layout stays; once the page is reloaded, the change goes."""
    laptop, desktop = browser(layout_app, "camille"), browser(layout_app, "camille")
    morning = laptop.page()
    desktop.page()
    assert desktop.change(MINE)[0] == 200
    folded = {"cards": [card(s, collapsed=s == "beta") for s in morning.cards], "pinned": morning.pinned}
    code, answer = laptop.change(folded, earlier_release=True)
    assert code == 409
    assert answer["error"].startswith("Your layout was changed on another device or in another tab")
    shown = browser(layout_app, "camille").page()
    assert shown.cards == [c["slug"] for c in MINE["cards"]] and "beta" not in shown.collapsed
    audits = [r for r in caplog.records if getattr(r, "event", "") == "audit"]
    assert (audits[-1].action, audits[-1].outcome) == ("layout_save", "conflict")  # type: ignore[attr-defined]

    reloaded = laptop.page()
    assert reloaded.cards == shown.cards
    code, _ = laptop.change(
        {**MINE, "cards": [*MINE["cards"][:4], card("beta", collapsed=True)]}, earlier_release=True
    )
    assert code == 200 and "beta" in browser(layout_app, "camille").page().collapsed


def test_a_save_sent_again_after_its_answer_was_lost_is_no_conflict(layout_app: Flask) -> None:
    """A fold whose answer never reached the page (the network, a proxy) may have been kept.
    The page sends that layout again, still based on what it showed before: it is the saved
    one, so it is accepted with the basis to follow, and the page's next change goes through.
    Any other layout from that page is still refused as a change from elsewhere."""
    page, other = browser(layout_app, "camille"), browser(layout_app, "camille")
    page.page()
    assert page.change(MINE)[0] == 200
    before = page.basis
    folded = {**MINE, "cards": [*MINE["cards"][:4], card("beta", collapsed=True)]}
    assert page.save(folded, **{"X-Layout-Basis": before})[0] == 200  # kept; the answer is lost
    code, answer = page.save(folded, **{"X-Layout-Basis": before})  # sent again
    assert code == 200 and answer["basis"] != before
    page.basis = answer["basis"]
    assert page.change({**folded, "new_tab": False})[0] == 200
    assert not browser(layout_app, "camille").page().new_tab
    # A page of an earlier release drawn before all this, sending anything but the saved
    # layout: refused as before.
    other.basis = before
    assert other.change(MINE, earlier_release=True)[0] == 409


# --- bad input loses nothing --------------------------------------------------------------------

BAD = [
    pytest.param({"cards": [card("nope")]}, 400, "There is no widget called “nope”.", id="unknown-widget"),
    pytest.param(
        {"cards": [card("beta"), card("beta")]}, 400, "The widget “beta” is listed twice.", id="duplicate"
    ),
    pytest.param({"pinned": ["nope"]}, 400, "There is no tool called “nope”.", id="unknown-tile"),
    pytest.param(
        {"pinned": ["harbor", "harbor"]}, 400, "The tool “Harbor” is pinned twice.", id="duplicate-tile"
    ),
    pytest.param({"cards": [card("beta", width="huge")]}, 400, "could not be read", id="bad-width"),
    pytest.param({"cards": [], "extra": 1}, 400, "could not be read", id="unknown-key"),
    pytest.param("{not json", 400, "could not be read", id="not-json"),
    pytest.param({"cards": [card("beta")] * 201}, 400, "could not be read", id="too-many"),
    pytest.param("x" * (MAX_BODY_BYTES + 1), 413, "This layout is too large to be saved.", id="oversized"),
]


@pytest.mark.parametrize(("document", "status", "message"), BAD)
def test_a_bad_layout_is_refused_and_the_saved_one_stays(
    layout_app: Flask, document: Any, status: int, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    dominique = browser(layout_app, "dominique")
    mine = {"cards": [card("beta"), card("gamma", collapsed=True)], "pinned": ["harbor"]}
    assert dominique.save(mine)[0] == 200
    before = dominique.page()
    caplog.set_level(logging.INFO, logger="portal.audit")
    caplog.clear()
    code, answer = dominique.save(document)
    assert code == status
    assert message in answer["error"]
    assert browser(layout_app, "dominique").page() == before
    audit = [r for r in caplog.records if r.name == "portal.audit"]
    assert [(r.action, r.outcome, r.user) for r in audit] == [("layout_save", "invalid", "demo-0002")]  # type: ignore[attr-defined]


GUARD = [
    pytest.param({"X-CSRFToken": ""}, "security token", id="no-csrf"),
    pytest.param({"X-CSRFToken": "forged"}, "security token", id="forged-csrf"),
    pytest.param({"Origin": "https://evil.example"}, "did not come from the portal", id="other-origin"),
]


@pytest.mark.parametrize(("headers", "message"), GUARD)
def test_a_change_from_elsewhere_is_refused_by_the_guard(
    layout_app: Flask, headers: dict[str, str], message: str
) -> None:
    camille = browser(layout_app, "camille")
    before = camille.page()
    code, answer = camille.save(MINE, **headers)
    assert code == 403
    assert message in answer["error"]
    reset = camille.client.post("/layout/reset", headers={"Origin": ORIGIN, **headers})
    assert reset.status_code == 403
    assert camille.page() == before


# --- the deployment changes under a saved layout ---------------------------------------------------


def test_a_widget_no_longer_visible_goes_and_a_new_one_comes_at_the_end(
    make_layout_app: Callable[..., Flask],
) -> None:
    assert browser(make_layout_app(), "camille").save(MINE)[0] == 200

    def delta_for_nobody(config: dict[str, Any]) -> None:
        config["widgets"]["delta"]["roles"] = ["/nobody"]
        config["widgets"]["epsilon"] = {"refresh": 30}
        config["tiles"] = [t for t in config["tiles"] if t["name"] != "Vault"]

    later = make_layout_app(delta_for_nobody, widgets=(*TEST_WIDGETS, EPSILON))
    page = browser(later, "camille").page()
    assert page.cards == ["gamma", "status", "alpha", "beta", "epsilon"]
    assert page.pinned == ["gitlab"]
    assert browser(later, "camille").client.get("/widgets/delta").status_code == 403


def test_a_page_drawn_before_a_role_was_taken_away_still_saves_and_the_card_comes_back_in_place(
    make_layout_app: Callable[..., Flask],
) -> None:
    """Camille's page shows delta and Vault (she was an admin when it was drawn); her roles
    change (here, the card's): the page still sends them with every change. Refused, no change of
    hers could be saved until she reloaded; kept, they come back where she put them."""
    mine = {
        "cards": [card("gamma"), card("delta", width="wide"), card("alpha")],
        "pinned": ["vault", "gitlab"],
    }

    def delta_for_nobody(config: dict[str, Any]) -> None:
        config["widgets"]["delta"]["roles"] = ["/nobody"]
        next(t for t in config["tiles"] if t["name"] == "Vault")["roles"] = ["/nobody"]

    later = browser(make_layout_app(delta_for_nobody), "camille")
    code, answer = later.save(mine)
    assert code == 200, answer
    page = later.page()
    assert page.cards == ["gamma", "alpha", "status", "beta"] and page.pinned == ["gitlab"]
    assert "delta" not in later.client.get("/layout").get_data(as_text=True)  # nor said to her
    back = browser(make_layout_app(), "camille").page()  # the role given back
    assert back.cards[:3] == ["gamma", "delta", "alpha"] and back.pinned == ["vault", "gitlab"]


def test_the_page_and_the_layout_it_asks_for_name_what_the_person_may_see(
    make_layout_app: Callable[..., Flask],
) -> None:
    """The page's access key is the one GET /layout answers, until the person's roles (here the
    card's) change: then the page, which asks when a card refuses it or when its person comes
    back, learns that it was drawn for other roles and draws itself anew (portal.js)."""

    def access(who: Browser) -> tuple[str, str]:
        html = who.client.get("/", headers=EN).get_data(as_text=True)
        found = re.search(r'id="layout-bar"[^>]* data-access="([0-9a-f]+)"', html)
        assert found
        return found.group(1), who.client.get("/layout").get_json()["access"]

    page, asked = access(browser(make_layout_app(), "camille"))
    assert page == asked
    assert access(browser(make_layout_app(), "dominique"))[0] != page  # not an admin: no delta

    def delta_for_nobody(config: dict[str, Any]) -> None:
        config["widgets"]["delta"]["roles"] = ["/nobody"]

    later = browser(make_layout_app(delta_for_nobody), "camille")
    assert later.client.get("/layout").get_json()["access"] != page
    assert later.client.get("/widgets/delta").status_code == 403  # what makes a page ask


# --- without its database ------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def unreachable(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[dict[str, Any], Callable[[], None]]:
    """A database section nobody answers for, and how to make it answer."""
    if request.param == "sqlite":
        blocker = tmp_path / "blocked"
        blocker.write_text("a file where the data directory should be")
        return {"data_dir": str(blocker / "data")}, blocker.unlink
    postgres: PostgresServer = request.getfixturevalue("postgres")
    name = f"later_{uuid.uuid4().hex[:12]}"
    return {"url": postgres.url(name), "connect_timeout": 2}, lambda: postgres.create_database(name) and None


def test_without_its_database_the_portal_is_unready_but_the_page_and_cards_work(
    portal_config: dict[str, Any],
    unreachable: tuple[dict[str, Any], Callable[[], None]],
    build_app: Callable[..., Flask],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    section, make_reachable = unreachable
    app = build_app(with_layout(portal_config, section))
    client = app.test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json() == {"status": "unready"}  # nothing more to anyone who asks
    camille = browser(app, "camille")
    page = camille.page()
    assert page.notice  # says so, and shows the team's default
    assert page.cards == ["delta", "status", "alpha", "beta", "gamma"]
    assert re.search(r'id="layout-toggle"[^>]* disabled>', camille.client.get("/").get_data(as_text=True))
    assert camille.client.get("/widgets/status").status_code == 200
    code, answer = camille.save(MINE)
    assert code == 503
    assert "cannot be saved right now" in answer["error"]
    asked = camille.client.get("/layout", headers=EN)  # a page coming back: it keeps its own
    assert asked.status_code == 503 and "cannot be saved right now" in asked.get_json()["error"]

    make_reachable()
    monkeypatch.setattr(database_module, "RETRY_AFTER", 0.0)
    assert camille.client.get("/").status_code == 200
    assert client.get("/readyz").status_code == 200  # migrated on the way
    assert camille.save(MINE)[0] == 200
    assert not camille.page().notice


def test_a_database_lost_after_the_start_leaves_the_pod_ready_and_the_page_on_the_default(
    portal_config: dict[str, Any], postgres: PostgresServer, build_app: Callable[..., Flask]
) -> None:
    """A failover or a maintenance takes the database from every replica at once: unready, the
    Service would have no pod left. Ready, the page and cards go on, on the team's default."""
    name = f"lost_{uuid.uuid4().hex[:12]}"
    postgres.create_database(name)
    app = build_app(with_layout(portal_config, {"url": postgres.url(name), "connect_timeout": 2}))
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    camille = browser(app, "camille")
    assert camille.save(MINE)[0] == 200
    postgres.allow_connections(name, False)
    try:
        assert client.get("/readyz").status_code == 200
        page = camille.page()
        assert page.notice and page.cards == ["delta", "status", "alpha", "beta", "gamma"]
        assert camille.client.get("/widgets/status").status_code == 200
        assert camille.save(MINE)[0] == 503
    finally:
        postgres.allow_connections(name, True)


def test_a_database_that_cannot_be_used_at_start_is_logged_in_the_drivers_words(
    portal_config: dict[str, Any],
    postgres: PostgresServer,
    build_app: Callable[..., Flask],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A missing database, a wrong password and a dropped connection read apart in the pod's log
    (they all said "OperationalError")."""
    name = f"missing_{uuid.uuid4().hex[:12]}"
    with caplog.at_level(logging.WARNING):
        build_app(with_layout(portal_config, {"url": postgres.url(name), "connect_timeout": 2}))
    (start,) = [r for r in caplog.records if getattr(r, "event", "") == "database_unreachable"]
    assert f'database "{name}" does not exist' in start.detail  # type: ignore[attr-defined]
    assert "@" not in start.detail  # type: ignore[attr-defined]


def test_readyz_says_ready_and_nothing_else(layout_app: Flask) -> None:
    answer = layout_app.test_client().get("/readyz")
    assert answer.status_code == 200
    assert answer.get_json() == {"status": "ready"}


# --- configuration --------------------------------------------------------------------------------

REFUSED = [
    pytest.param(
        {"widgets": ["status", "nope"]}, "layout.defaults[0].widgets[1]: unknown widget 'nope'", id="widget"
    ),
    pytest.param(
        {"hidden": ["status", "status"]},
        "layout.defaults[0].hidden[1]: widget 'status' is listed twice",
        id="twice",
    ),
    pytest.param(
        {"widths": {"nope": "wide"}}, "layout.defaults[0].widths.nope: unknown widget 'nope'", id="width"
    ),
    pytest.param(
        {"pinned": ["GitLab", "Nope"]}, "layout.defaults[0].pinned[1]: unknown tile 'Nope'", id="tile"
    ),
    pytest.param({"widths": {"status": "huge"}}, "layout.defaults[0].widths.status", id="width-value"),
    pytest.param({"colour": "red"}, "layout.defaults[0].colour: unknown key", id="key"),
]


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        pytest.param(
            [{"pinned": ["GitLab"]}, {"roles": ["/team-b"], "pinned": ["Harbor"]}],
            "layout.defaults[1]: never applies: everyone it is for gets layout.defaults[0] first",
            id="after-everyone",
        ),
        pytest.param(
            [{"roles": ["/team-a"]}, {"roles": ["/team-b"]}, {"roles": ["/team-b", "/team-a"]}],
            "layout.defaults[2]: never applies: everyone it is for gets layout.defaults[1] first",
            id="covered",
        ),
    ],
)
def test_a_layout_rule_that_can_never_apply_is_refused(
    portal_config: dict[str, Any], rules: list[dict[str, Any]], message: str
) -> None:
    """The first rule that matches wins: a rule behind a wider one is a mistake, said at start."""
    config = yaml.safe_load(yaml.safe_dump(portal_config))
    config["layout"] = {"defaults": rules}
    with pytest.raises(ConfigError) as refused:
        create_app({"PORTAL": config, "ENV": {"PORTAL_SECRET_KEY": SECRET}})
    assert message in str(refused.value)
    # Narrower first, then everyone else: taken.
    config["layout"] = {"defaults": [*rules[1:], rules[0]] if len(rules) == 2 else rules[:2]}
    create_app({"PORTAL": config, "ENV": {"PORTAL_SECRET_KEY": SECRET}})


@pytest.mark.parametrize(("rule", "message"), REFUSED)
def test_layout_defaults_are_checked_at_start(
    portal_config: dict[str, Any], rule: dict[str, Any], message: str
) -> None:
    config = yaml.safe_load(yaml.safe_dump(portal_config))
    config["layout"] = {"defaults": [rule]}
    with pytest.raises(ConfigError) as refused:
        create_app({"PORTAL": config, "ENV": {"PORTAL_SECRET_KEY": SECRET}})
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "postgresql+psycopg://portal:secret@db/portal",
            "must not carry a password: set PORTAL_DATABASE_PASSWORD",
        ),
        ("mysql://portal@db/portal", "must start with postgresql+psycopg://"),
        ("not a url", "not a database URL"),
    ],
)
def test_database_url_is_checked_at_start(portal_config: dict[str, Any], url: str, message: str) -> None:
    config = yaml.safe_load(yaml.safe_dump(portal_config))
    config["database"] = {"url": url}
    with pytest.raises(ConfigError) as refused:
        create_app({"PORTAL": config, "ENV": {"PORTAL_SECRET_KEY": SECRET}})
    assert f"database.url: {message}" in str(refused.value)


def test_the_database_password_comes_from_the_environment(
    portal_config: dict[str, Any], postgres: PostgresServer
) -> None:
    config = yaml.safe_load(yaml.safe_dump(portal_config))
    config["database"] = {"url": f"postgresql://portal@127.0.0.1:{free_port()}/portal", "connect_timeout": 1}
    env = {"PORTAL_SECRET_KEY": SECRET, "PORTAL_DATABASE_PASSWORD": "s3cret-from-the-Secret"}
    app = create_app({"PORTAL": config, "ENV": env})
    database = app.extensions["portal"].database
    assert database.url.password == "s3cret-from-the-Secret"
    assert database.url.drivername == "postgresql+psycopg"
    assert "s3cret" not in database.describe()


# --- preferences in a card ----------------------------------------------------------------------


def test_a_card_follows_its_users_preference(make_layout_app: Callable[..., Flask]) -> None:
    """`Widget.choice` reads the preference: the card changes when it does, for that user only."""
    app = make_layout_app(widgets=(*TEST_WIDGETS, CHOOSY))
    camille, dominique = browser(app, "camille").client, browser(app, "dominique").client

    def card(client: FlaskClient) -> tuple[str, str]:
        answer = client.get("/widgets/choosy", headers=EN)
        found = re.search(r"sorted by (\w+)", answer.get_data(as_text=True))
        return (found.group(1) if found else "", answer.headers["X-Widget-Version"])

    before = card(camille)
    assert before[0] == "due"
    state = portal_state(app)
    Preferences(state.database, DEMO_USER.subject, state.preferences).set(SORT, "status")
    after = card(camille)
    assert after[0] == "status" and after[1] != before[1]
    assert card(dominique)[0] == "due"
    assert Preferences(portal_state(app).database, DEMO_MEMBER.subject).get(SORT) == "due"
