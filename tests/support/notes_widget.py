"""A widget made only for testing the contract: every kind of part, a clock, and a write.

"notes" reads one upstream (a tiny simulator): the list of every note, fetched once and cut for
each user on the server (`select`), and a per-user part (the user's own greeting). Each note can
be renamed by its owner through the write path. The real widgets use the same machinery; this
one lets the contract be tested on its own, and served by gunicorn (`tests.support.notes_app`).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests
from flask import Blueprint, Response, request

from portal.identity import User
from portal.upstreams.errors import N_, Reason, UpstreamConflict, conflict_reason
from portal.upstreams.http import BoundedJsonClient, HttpLimits
from portal.upstreams.upstream import Upstream
from portal.widgets.contract import PER_MINUTE, Part, Widget, WidgetContext
from portal.widgets.writes import WriteRefused, widget_write
from simulators.base import SimRequest, SimResponse, SimServer

TEMPLATES = str(__import__("pathlib").Path(__file__).parent / "templates")


@dataclass(frozen=True)
class Note:
    id: int
    owner: str
    title: str
    version: int


class NotesClient:
    def __init__(self, session: requests.Session, base_url: str, limits: HttpLimits) -> None:
        self.base_url = base_url
        self._http = BoundedJsonClient("Notes", session, limits)

    def notes(self) -> tuple[Note, ...]:
        return tuple(Note(**raw) for raw in self._http.get(f"{self.base_url}/notes"))

    def greeting(self, username: str) -> str:
        return str(self._http.get(f"{self.base_url}/greeting", params={"user": username})["text"])

    def rename(self, note_id: int, title: str, version: int) -> Note:
        answer = self._http.request(
            "PATCH", f"{self.base_url}/notes/{note_id}", json_body={"title": title, "version": version}
        )
        return Note(**answer.data)


NOTES: Upstream[NotesClient] = Upstream(
    "notes", "Notes", lambda setup: NotesClient(setup.session, setup.base_url, setup.limits)
)


class NotesWidget(Widget):
    slug = "notes"
    title = "Notes"
    icon = "inbox"
    scope = "mixed"
    upstreams = (NOTES,)
    clock = PER_MINUTE
    template_folder = TEMPLATES

    def parts(self, ctx: WidgetContext, user: User) -> Sequence[Part[Any]]:
        client = ctx.client(NOTES)
        mine = user.username
        return [
            Part("all", "", NOTES, client.notes, select=lambda notes: [n for n in notes if n.owner == mine]),
            Part("greeting", "", NOTES, lambda: client.greeting(mine), per_user=True),
        ]

    def register_routes(self, blueprint: Blueprint) -> None:
        blueprint.add_url_rule("/widgets/notes/<int:note_id>", "rename", self.rename, methods=["POST"])

    def rename(self, note_id: int) -> Response:
        """Rename one of my notes (the owner is checked against the upstream's data)."""
        title = request.form.get("title", "")
        version = int(request.form.get("version", "0"))

        def change(ctx: WidgetContext, user: User) -> Reason | None:
            client = ctx.client(NOTES)
            note = next((n for n in client.notes() if n.id == note_id), None)
            if note is None or note.owner != user.username:
                raise WriteRefused(Reason.of(N_("You are not allowed to make this change.")))
            client.rename(note_id, title, version)
            return None

        return widget_write(
            self,
            action="rename",
            target=f"note {note_id}",
            upstream=NOTES,
            touches=[f"widget:{self.slug}:shared:all"],
            change=change,
        )


class NotesWorld:
    """The simulator's data: notes of camille and dominique (the demo users)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.notes = {
            1: {"id": 1, "owner": "camille", "title": "Camille's plan", "version": 1},
            2: {"id": 2, "owner": "dominique", "title": "Dominique's secret", "version": 1},
            3: {"id": 3, "owner": "camille", "title": "<script>alert(1)</script>", "version": 1},
        }
        self.unforeseen: dict[str, Any] = {}  # fields a rename's answer adds (a newer upstream's)
        self.answer_after = 0.0  # seconds a rename waits, once made, before it answers

    def rename_directly(self, note_id: int, title: str) -> None:
        """Someone changes a note in the upstream itself."""
        with self.lock:
            note = self.notes[note_id]
            note.update(title=title, version=note["version"] + 1)


def make_server() -> tuple[SimServer, NotesWorld]:
    world = NotesWorld()
    server = SimServer("notes")

    @server.route("GET", r"/notes")
    def notes(request: SimRequest, match: re.Match[str]) -> SimResponse:
        with world.lock:
            return SimResponse.json(list(world.notes.values()))

    @server.route("GET", r"/greeting")
    def greeting(request: SimRequest, match: re.Match[str]) -> SimResponse:
        return SimResponse.json({"text": f"Hello {request.arg('user')}"})

    @server.route("PATCH", r"/notes/(?P<id>\d+)")
    def rename(request: SimRequest, match: re.Match[str]) -> SimResponse:
        body = request.json()
        with world.lock:
            note = world.notes[int(match["id"])]
            if body.get("version") != note["version"]:
                return SimResponse.json({"detail": "version mismatch"}, status=409)
            note.update(title=body["title"], version=note["version"] + 1)
            answer = SimResponse.json({**note, **world.unforeseen})
        time.sleep(world.answer_after)
        return answer

    return server, world


def notes_config(base: dict[str, Any], url: str) -> dict[str, Any]:
    """`base` (a portal configuration) with the notes widget pointed at `url`."""
    base.setdefault("upstreams", {})["notes"] = {"url": url, "timeout": 2}
    base.setdefault("widgets", {})["notes"] = {"ttl": 30, "refresh": 30}
    return base


__all__ = ["NOTES", "Note", "NotesWidget", "NotesWorld", "UpstreamConflict", "conflict_reason", "make_server"]
