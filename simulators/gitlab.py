"""A simulator of GitLab's REST API v4 for the pipelines card (see docs/upstream-apis.md § 4).

    GET /api/v4/projects/:id                       id, name, path_with_namespace, default_branch,
                                                   archived, web_url
    GET /api/v4/projects/<old path>/...            301 to the same URL by id, after `world.rename` (16.7+)
    GET /api/v4/projects/:id/pipelines             the list shape (no user, duration): ref, username,
                                                   status, order_by=id, sort, page, per_page (20, max 100)
    GET /api/v4/projects/:id/pipelines/:pid        the detail: user, started_at, finished_at, duration, ...
    GET /api/v4/merge_requests                     scope=all, state, reviewer_username, assignee_username
    GET /api/v4/projects/:id/merge_requests        the project's: state, reviewer_username, assignee_username
    GET /api/v4/projects/:id/merge_requests/:iid   the detail, with head_pipeline
    GET /api/v4/users?username=                    always a list (case-insensitive match)
    GET /uploads/-/system/user/avatar/:id/avatar.png   a small PNG

`:id` is the numeric id or the URL-encoded path (`group%2Fproject`). Lists carry GitLab's
pagination headers (`X-Page`, `X-Per-Page`, `X-Next-Page` empty on the last page,
`X-Prev-Page`, `X-Total`, `X-Total-Pages`, `Link`) and every answer `RateLimit-*` headers.
Without the token: 401 `{"message":"401 Unauthorized"}`; a project the token may not read: 403;
an unknown project: 404 `{"message":"404 Project Not Found"}`; `world.throttle(seconds)`: 429
`Retry later` (plain text) with `Retry-After` and `RateLimit-ResetTime` until that time.
`world.rename(id, path)` moves a project as GitLab 16.7+ does: a GET that names it by an old
path (not by its id or current path) answers `301 Moved Permanently` with `Location:` the same
URL, the path replaced by the project's id, its query kept (GitLab's `find_project!`: the
access check first, then the redirect).

Pipelines go through their statuses as the clock moves (created, pending, running, then
success, failed, ...): a new one starts on each project every few minutes, so the demo moves.
`world.add_hostile()` adds text with markup, right-to-left marks and great length in a ref, a
title and a user's name.
"""

from __future__ import annotations

import email.utils
import random
import re
import struct
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlencode

from .base import SimRequest, SimResponse, SimServer

TOKEN = "glpat-simulator-token"  # the token the demo and the tests give the portal
RATE_LIMIT = 2000  # requests per minute, as GitLab.com's authenticated API
NEW_PIPELINE_EVERY = 240  # seconds between two pipelines of one project in the demo
# How long each step of a pipeline takes (seconds), from its creation; then its final status.
PLAN: tuple[tuple[str, float], ...] = (("created", 5), ("pending", 15), ("running", 150))


def iso(moment: float | None) -> str | None:
    """GitLab's times: UTC, milliseconds, "Z"."""
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class SimUser:
    id: int
    username: str
    name: str
    avatar: tuple[int, int, int] = (0x6E, 0x49, 0xCB)  # the colour of their avatar

    def json(self, base: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "name": self.name,
            "state": "active",
            "locked": False,
            "avatar_url": f"{base}/uploads/-/system/user/avatar/{self.id}/avatar.png",
            "web_url": f"{base}/{self.username}",
        }


@dataclass
class SimProject:
    id: int
    path: str  # path_with_namespace
    name: str
    default_branch: str | None = "main"
    forbidden: bool = False  # the token may not read it: 403
    former_paths: list[str] = field(default_factory=list)  # before a rename or transfer (redirected)
    archived: bool = False


@dataclass
class SimPipeline:
    id: int
    iid: int
    project_id: int
    ref: str
    user: str  # username of who triggered it
    created: float  # epoch seconds
    final: str = "success"  # its status once its plan has run (or at once with `fixed`)
    source: str = "push"
    sha: str = ""
    fixed: str | None = None  # a status it keeps whatever the time (manual, scheduled, ...)
    warnings: bool = False  # an allowed-to-fail job failed: "passed with warnings" once it succeeds
    plan: tuple[tuple[str, float], ...] = PLAN

    def timeline(self, now: float) -> tuple[str, float | None, float | None]:
        """Its status at `now`, when it started running and when it finished."""
        if self.fixed is not None:
            return self.fixed, None, None
        moment = self.created
        started = None
        for status, seconds in self.plan:
            if status == "running":
                started = moment
            if now < moment + seconds:
                return status, started, None
            moment += seconds
        return self.final, started, moment


@dataclass
class SimMergeRequest:
    id: int
    iid: int
    project_id: int
    title: str
    author: str
    source_branch: str
    reviewers: list[str] = field(default_factory=list)
    assignees: list[str] = field(default_factory=list)
    draft: bool = False
    created: float = 0.0
    pipeline: int | None = None  # the head pipeline's id
    state: str = "opened"
    sha: str = ""


def _detailed_status(status: str, warnings: bool) -> dict[str, str]:
    """A detail's `detailed_status`: as GitLab's, "passed with warnings" in its group and label only
    (the status stays `success`)."""
    if status == "success" and warnings:
        return {
            "icon": "status_warning",
            "text": "passed",
            "label": "passed with warnings",
            "group": "success-with-warnings",
            "tooltip": "passed",
        }
    return {"icon": f"status_{status}", "text": status, "label": status, "group": status, "tooltip": status}


def _sha(seed: str) -> str:
    return f"{zlib.crc32(seed.encode()):08x}" * 5


class GitLabWorld:
    """The users, projects, pipelines and merge requests the simulator serves; tests change them."""

    def __init__(self, clock: Callable[[], float] = time.time, token: str = TOKEN) -> None:
        self.clock = clock
        self.token = token
        self.users: dict[str, SimUser] = {}
        self.projects: dict[int, SimProject] = {}
        self.pipelines: dict[int, SimPipeline] = {}
        self.merge_requests: dict[int, SimMergeRequest] = {}
        self.lock = threading.Lock()
        self.throttled_until = 0.0  # real time (time.time()), not the world's clock
        self.spawn: dict[int, tuple[float, Sequence[str], int]] = {}  # project -> start, users, base id
        self.base_url = ""  # set by the server: where web_url and avatar_url point

    # --- building -----------------------------------------------------------------------------

    def add_user(self, user: SimUser) -> SimUser:
        self.users[user.username.casefold()] = user
        return user

    def add_project(self, project: SimProject) -> SimProject:
        self.projects[project.id] = project
        return project

    def add_pipeline(self, pipeline: SimPipeline) -> SimPipeline:
        pipeline.sha = pipeline.sha or _sha(f"{pipeline.project_id}:{pipeline.id}")
        self.pipelines[pipeline.id] = pipeline
        return pipeline

    def add_merge_request(self, request: SimMergeRequest) -> SimMergeRequest:
        head = self.pipelines.get(request.pipeline) if request.pipeline else None
        # As in GitLab: the head pipeline ran on the merge request's head commit.
        request.sha = request.sha or (head.sha if head else _sha(f"mr:{request.id}"))
        self.merge_requests[request.id] = request
        return request

    def rename(self, project_id: int, path: str) -> SimProject:
        """Move a project to `path` (a rename or a transfer): its old path is redirected to its id."""
        project = self.projects[project_id]
        project.former_paths.append(project.path)
        project.path, project.name = path, path.rsplit("/", 1)[-1]
        return project

    def throttle(self, seconds: float) -> None:
        """Answer 429 with Retry-After until `seconds` from now."""
        self.throttled_until = time.time() + seconds

    def add_hostile(self) -> None:
        """Text with markup, right-to-left overrides and great length, in a ref, a title and a name."""
        evil = self.add_user(
            SimUser(
                666,
                "mallory",
                "<img src=x onerror=\"alert('name')\"> \u202eetihw\u202c " + "Mallory-" * 40,
                (0xC0, 0x20, 0x20),
            )
        )
        project = next(iter(self.projects.values()))
        now = self.clock()
        pipeline = self.add_pipeline(
            SimPipeline(
                9_000_001,
                999,
                project.id,
                '<script>alert("ref")</script>/\u202egnp.exe' + "-very-long-branch" * 12,
                evil.username,
                now - 3600,
                final="failed",
            )
        )
        for username in ("camille", "dominique"):
            if username in self.users:
                self.add_pipeline(
                    SimPipeline(
                        9_000_002 + len(self.pipelines),
                        998,
                        project.id,
                        "<b>bold</b>-ref",
                        username,
                        now - 1800,
                        final="success",
                    )
                )
        self.add_merge_request(
            SimMergeRequest(
                9_100,
                900,
                project.id,
                '<a href="javascript:alert(1)">click</a> \u202eRTL title\u202c ' + "long " * 60,
                evil.username,
                "<i>branch</i>",
                reviewers=[u for u in ("camille", "dominique") if u in self.users],
                created=now - 7200,
                pipeline=pipeline.id,
            )
        )

    # --- what the API answers -------------------------------------------------------------------

    def project(self, ref: str) -> SimProject | None:
        ref = unquote(ref)
        if ref.isdigit():
            return self.projects.get(int(ref))
        return next((p for p in self.projects.values() if p.path.casefold() == ref.casefold()), None)

    def moved(self, ref: str) -> SimProject | None:
        """The project an old path named, when no project has that path now."""
        ref = unquote(ref).casefold()
        if self.project(ref) is not None:
            return None
        return next((p for p in self.projects.values() if ref in map(str.casefold, p.former_paths)), None)

    def _spawned(self) -> None:
        """Add the pipelines the demo starts every few minutes, up to now."""
        now = self.clock()
        for project_id, (start, users, base) in self.spawn.items():
            count = int(max(0.0, now - start) // NEW_PIPELINE_EVERY) + 1
            for k in range(count):
                pipeline_id = base + k
                if pipeline_id in self.pipelines:
                    continue
                chance = random.Random(pipeline_id)
                self.add_pipeline(
                    SimPipeline(
                        pipeline_id,
                        pipeline_id % 10_000,
                        project_id,
                        chance.choice(
                            ["main", "main", f"feature/{chance.choice(['cache', 'login', 'i18n'])}"]
                        ),
                        users[k % len(users)],
                        start + k * NEW_PIPELINE_EVERY,
                        final=chance.choice(["success", "success", "success", "failed", "canceled"]),
                        warnings=chance.random() < 0.25,  # shown only if it succeeds
                    )
                )

    def pipeline_json(self, pipeline: SimPipeline, detail: bool) -> dict[str, Any]:
        project = self.projects[pipeline.project_id]
        now = self.clock()
        status, started, finished = pipeline.timeline(now)
        body: dict[str, Any] = {
            "id": pipeline.id,
            "iid": pipeline.iid,
            "project_id": pipeline.project_id,
            "sha": pipeline.sha,
            "ref": pipeline.ref,
            "status": status,
            "source": pipeline.source,
            "created_at": iso(pipeline.created),
            "updated_at": iso(finished or started or pipeline.created),
            "web_url": f"{self.base_url}/{project.path}/-/pipelines/{pipeline.id}",
            "name": None,
        }
        if detail:
            user = self.users.get(pipeline.user.casefold())
            body.update(
                before_sha="0" * 40,
                tag=False,
                yaml_errors=None,
                user=user.json(self.base_url) if user else None,
                started_at=iso(started),
                finished_at=iso(finished),
                committed_at=None,
                duration=round(finished - started) if finished and started else None,
                queued_duration=20.0 if started else None,
                coverage=None,
                detailed_status=_detailed_status(status, pipeline.warnings),
            )
        return body

    def list_pipelines(self, project: SimProject, request: SimRequest) -> list[dict[str, Any]]:
        self._spawned()
        now = self.clock()
        chosen = [p for p in self.pipelines.values() if p.project_id == project.id]
        ref = request.arg("ref")
        username = request.arg("username")
        status = request.arg("status")
        if ref is not None:
            chosen = [p for p in chosen if p.ref == ref]
        if username is not None:
            chosen = [p for p in chosen if p.user.casefold() == username.casefold()]
        if status is not None:
            chosen = [p for p in chosen if p.timeline(now)[0] == status]
        chosen.sort(key=lambda p: p.id, reverse=request.arg("sort", "desc") != "asc")
        return [self.pipeline_json(p, detail=False) for p in chosen]

    def merge_request_json(self, request: SimMergeRequest, detail: bool) -> dict[str, Any]:
        project = self.projects[request.project_id]

        def person(username: str) -> dict[str, Any]:
            user = self.users.get(username.casefold())
            return user.json(self.base_url) if user else {"username": username, "name": username}

        assignees = [person(u) for u in request.assignees]
        body: dict[str, Any] = {
            "id": request.id,
            "iid": request.iid,
            "project_id": request.project_id,
            "title": request.title,
            "description": "",
            "state": request.state,
            "created_at": iso(request.created),
            "updated_at": iso(request.created),
            "target_branch": project.default_branch or "main",
            "source_branch": request.source_branch,
            "author": person(request.author),
            "assignee": assignees[0] if assignees else None,
            "assignees": assignees,
            "reviewers": [person(u) for u in request.reviewers],
            "source_project_id": request.project_id,
            "target_project_id": request.project_id,
            "labels": [],
            "draft": request.draft,
            "work_in_progress": request.draft,
            "merge_when_pipeline_succeeds": False,
            "detailed_merge_status": "mergeable",
            "sha": request.sha,
            "user_notes_count": 2,
            "web_url": f"{self.base_url}/{project.path}/-/merge_requests/{request.iid}",
            "references": {
                "short": f"!{request.iid}",
                "relative": f"!{request.iid}",
                "full": f"{project.path}!{request.iid}",
            },
        }
        if detail:
            pipeline = self.pipelines.get(request.pipeline) if request.pipeline else None
            body["head_pipeline"] = self.pipeline_json(pipeline, detail=True) if pipeline else None
        return body

    def list_merge_requests(
        self, request: SimRequest, project: SimProject | None = None
    ) -> list[dict[str, Any]]:
        chosen = [m for m in self.merge_requests.values() if project is None or m.project_id == project.id]
        state = request.arg("state", "all")
        if state != "all":
            chosen = [m for m in chosen if m.state == state]
        reviewer = request.arg("reviewer_username")
        assignee = request.arg("assignee_username")
        if reviewer is not None:
            chosen = [m for m in chosen if reviewer.casefold() in {u.casefold() for u in m.reviewers}]
        if assignee is not None:
            chosen = [m for m in chosen if assignee.casefold() in {u.casefold() for u in m.assignees}]
        chosen.sort(key=lambda m: m.created, reverse=True)
        return [self.merge_request_json(m, detail=False) for m in chosen]


# --- the server ------------------------------------------------------------------------------------


def _message(status: int, text: str, headers: dict[str, str] | None = None) -> SimResponse:
    return SimResponse.json({"message": text}, status=status, headers=headers)


def _moved(
    request: SimRequest, match: re.Match[str], project: SimProject, base: str, headers: dict[str, str]
) -> SimResponse:
    """GitLab's answer to a moved project's old path: the same URL by id, its query kept."""
    path = f"{request.path[: match.start('id')]}{project.id}{request.path[match.end('id') :]}"
    query = urlencode(request.query, doseq=True)
    location = f"{base}{path}{'?' + query if query else ''}"
    body = f"This resource has been moved permanently to {location}".encode()
    return SimResponse(301, body, {"Content-Type": "text/plain", **headers, "Location": location})


def _page(
    items: list[dict[str, Any]], request: SimRequest, base: str, headers: dict[str, str]
) -> SimResponse:
    """One page of a list, with GitLab's pagination headers."""
    try:
        page = max(1, int(request.arg("page", "1") or 1))
        per_page = min(100, max(1, int(request.arg("per_page", "20") or 20)))
    except ValueError:
        return SimResponse.json({"error": "page is invalid"}, status=400)
    total = len(items)
    pages = max(1, -(-total // per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    query = {k: v[0] for k, v in request.query.items()}

    def link(number: int, rel: str) -> str:
        target = urlencode({**query, "page": number, "per_page": per_page})
        return f'<{base}{request.path}?{target}>; rel="{rel}"'

    links = [link(page - 1, "prev")] if page > 1 else []
    links += [link(page + 1, "next")] if page < pages else []
    links += [link(1, "first"), link(pages, "last")]
    return SimResponse.json(
        chunk,
        headers={
            **headers,
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Next-Page": str(page + 1) if page < pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
            "X-Total": str(total),
            "X-Total-Pages": str(pages),
            "Link": ", ".join(links),
        },
    )


def png(color: tuple[int, int, int], size: int = 48) -> bytes:
    """A small square PNG of one colour with a lighter diagonal (an avatar)."""
    red, green, blue = color
    light = (min(255, red + 70), min(255, green + 70), min(255, blue + 70))
    rows = b"".join(
        b"\x00" + b"".join(bytes(light if abs(x - y) < size // 6 else color) for x in range(size))
        for y in range(size)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


class _Guard:
    """Before each API handler: the token, the rate limit (429 while throttled), the world's lock."""

    def __init__(self, world: GitLabWorld) -> None:
        self.world = world
        self.window_start = 0.0
        self.used = 0
        self.lock = threading.Lock()

    def quota(self) -> dict[str, str]:
        """GitLab's RateLimit-* headers, over one-minute windows."""
        with self.lock:
            now = time.time()
            if now - self.window_start >= 60:
                self.window_start, self.used = now - now % 60, 0
            self.used += 1
            return {
                "RateLimit-Name": "throttle_authenticated_api",
                "RateLimit-Limit": str(RATE_LIMIT),
                "RateLimit-Observed": str(self.used),
                "RateLimit-Remaining": str(max(0, RATE_LIMIT - self.used)),
                "RateLimit-Reset": str(int(self.window_start + 60)),
            }

    def __call__(self, handler: Callable[[SimRequest, re.Match[str], dict[str, str]], SimResponse]) -> Any:
        world = self.world

        def wrapped(request: SimRequest, match: re.Match[str]) -> SimResponse:
            bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
            if world.token and world.token not in (request.headers.get("private-token"), bearer):
                return _message(401, "401 Unauthorized")
            headers = self.quota()
            wait = world.throttled_until - time.time()
            if wait > 0:
                throttled = {
                    **headers,
                    "RateLimit-Remaining": "0",
                    "Retry-After": str(int(wait + 0.999)),
                    "RateLimit-ResetTime": email.utils.formatdate(world.throttled_until, usegmt=True),
                }
                return SimResponse(429, b"Retry later\n", {"Content-Type": "text/plain", **throttled})
            with world.lock:
                return handler(request, match, headers)

        return wrapped


_ID = r"(?P<id>[^/]+)"


def make_server(world: GitLabWorld | None = None, port: int = 0) -> tuple[SimServer, GitLabWorld]:
    """A GitLab simulator on 127.0.0.1 (port 0: any free port)."""
    world = world or demo_world()
    server = SimServer("gitlab", port=port, not_found=SimResponse.json({"message": "404 Not Found"}, 404))
    world.base_url = server.url
    guarded = _Guard(world)

    ProjectHandler = Callable[[SimRequest, re.Match[str], dict[str, str], SimProject], SimResponse]

    def on_project(
        handler: ProjectHandler,
    ) -> Callable[[SimRequest, re.Match[str], dict[str, str]], SimResponse]:
        """The project of the path's `:id` (404 unknown, 403 not readable), then the handler."""

        def wrapped(request: SimRequest, match: re.Match[str], headers: dict[str, str]) -> SimResponse:
            project = world.project(match["id"]) or world.moved(match["id"])
            if project is None:
                return _message(404, "404 Project Not Found")
            if project.forbidden:
                return _message(403, "403 Forbidden")
            if world.project(match["id"]) is None:  # named by an old path
                return _moved(request, match, project, world.base_url, headers)
            return handler(request, match, headers, project)

        return wrapped

    @server.route("GET", rf"/api/v4/projects/{_ID}")
    @guarded
    @on_project
    def project(
        request: SimRequest, match: re.Match[str], headers: dict[str, str], found: SimProject
    ) -> SimResponse:
        return SimResponse.json(
            {
                "id": found.id,
                "name": found.name,
                "name_with_namespace": found.path.replace("/", " / "),
                "path": found.path.rsplit("/", 1)[-1],
                "path_with_namespace": found.path,
                "default_branch": found.default_branch,
                "archived": found.archived,
                "web_url": f"{world.base_url}/{found.path}",
                "visibility": "internal",
                "last_activity_at": iso(world.clock()),
            },
            headers=headers,
        )

    @server.route("GET", rf"/api/v4/projects/{_ID}/pipelines")
    @guarded
    @on_project
    def pipelines(
        request: SimRequest, match: re.Match[str], headers: dict[str, str], found: SimProject
    ) -> SimResponse:
        return _page(world.list_pipelines(found, request), request, world.base_url, headers)

    @server.route("GET", rf"/api/v4/projects/{_ID}/pipelines/(?P<pipeline>\d+)")
    @guarded
    @on_project
    def pipeline(
        request: SimRequest, match: re.Match[str], headers: dict[str, str], found: SimProject
    ) -> SimResponse:
        world._spawned()
        item = world.pipelines.get(int(match["pipeline"]))
        if item is None or item.project_id != found.id:
            return _message(404, "404 Not found")
        return SimResponse.json(world.pipeline_json(item, detail=True), headers=headers)

    @server.route("GET", r"/api/v4/merge_requests")
    @guarded
    def merge_requests(request: SimRequest, match: re.Match[str], headers: dict[str, str]) -> SimResponse:
        if request.arg("scope") != "all":  # the default scope is created_by_me: the token's own
            return _page([], request, world.base_url, headers)
        return _page(world.list_merge_requests(request), request, world.base_url, headers)

    @server.route("GET", rf"/api/v4/projects/{_ID}/merge_requests")
    @guarded
    @on_project
    def project_merge_requests(
        request: SimRequest, match: re.Match[str], headers: dict[str, str], found: SimProject
    ) -> SimResponse:
        return _page(world.list_merge_requests(request, found), request, world.base_url, headers)

    @server.route("GET", rf"/api/v4/projects/{_ID}/merge_requests/(?P<iid>\d+)")
    @guarded
    @on_project
    def merge_request(
        request: SimRequest, match: re.Match[str], headers: dict[str, str], found: SimProject
    ) -> SimResponse:
        iid = int(match["iid"])
        item = next(
            (m for m in world.merge_requests.values() if m.project_id == found.id and m.iid == iid), None
        )
        if item is None:
            return _message(404, "404 Not found")
        return SimResponse.json(world.merge_request_json(item, detail=True), headers=headers)

    @server.route("GET", r"/api/v4/users")
    @guarded
    def users(request: SimRequest, match: re.Match[str], headers: dict[str, str]) -> SimResponse:
        wanted = (request.arg("username") or "").casefold()
        found = world.users.get(wanted)
        return SimResponse.json([found.json(world.base_url)] if found else [], headers=headers)

    @server.route("GET", r"/uploads/-/system/user/avatar/(?P<id>\d+)/avatar\.png")
    def avatar(request: SimRequest, match: re.Match[str]) -> SimResponse:
        user = next((u for u in world.users.values() if u.id == int(match["id"])), None)
        if user is None:
            return SimResponse(404, b"Not Found", {"Content-Type": "text/plain"})
        return SimResponse(200, png(user.avatar), {"Content-Type": "image/png"})

    return server, world


# --- the demo's data ----------------------------------------------------------------------------


def demo_world(clock: Callable[[], float] = time.time) -> GitLabWorld:
    """Three projects of the team, pipelines of camille and dominique, reviews waiting for both."""
    world = GitLabWorld(clock)
    for user in (
        SimUser(1, "camille", "Camille Demo", (0x2E, 0x7D, 0x32)),
        SimUser(2, "dominique", "Dominique Demo", (0x15, 0x65, 0xC0)),
        SimUser(3, "alex", "Alex Martin", (0xAD, 0x14, 0x57)),
        SimUser(4, "sam", "Sam Nguyen", (0xEF, 0x6C, 0x00)),
        SimUser(5, "renovate-bot", "Renovate Bot", (0x37, 0x47, 0x4F)),
    ):
        world.add_user(user)
    world.add_project(SimProject(101, "platform/portal", "portal"))
    world.add_project(SimProject(102, "platform/infra", "infra", default_branch="main"))
    world.add_project(SimProject(103, "apps/billing", "billing", default_branch="develop"))
    now = clock()
    history: list[tuple[int, str, str, float, str, str | None]] = [
        # project, ref, who, minutes ago, final status, fixed status
        (101, "main", "camille", 190, "success", None),
        (101, "feature/redis-cache", "dominique", 150, "failed", None),
        (101, "main", "alex", 95, "success", None),
        (101, "feature/redis-cache", "dominique", 62, "success", None),
        (101, "main", "camille", 33, "failed", None),
        (101, "release/1.4", "camille", 20, "", "manual"),
        (102, "main", "sam", 300, "success", None),
        (102, "renovate/helm-3.x", "renovate-bot", 240, "skipped", None),
        (102, "main", "camille", 120, "canceled", None),
        (102, "main", "dominique", 45, "success", None),
        (102, "nightly", "sam", 30, "", "scheduled"),
        (103, "develop", "alex", 400, "success", None),
        (103, "feature/invoices-pdf", "dominique", 80, "failed", None),
        (103, "develop", "dominique", 25, "", "waiting_for_resource"),
        (103, "main", "sam", 12, "", "preparing"),
        (101, "refs/merge-requests/42/head", "dominique", 10, "success", None),  # 5015: a merge request's
        (102, "main", "sam", 8, "success", None),  # 5016: an hourly schedule's
    ]
    for index, (project, ref, who, ago, final, fixed) in enumerate(history):
        world.add_pipeline(
            SimPipeline(
                5000 + index,
                300 + index,
                project,
                ref,
                who,
                now - ago * 60,
                final=final or "success",
                fixed=fixed,
            )
        )
    # Passed with warnings (an allowed-to-fail job failed): one of camille's, and infra's main.
    for pipeline_id in (5000, 5009):
        world.pipelines[pipeline_id].warnings = True
    world.pipelines[5015].source = "merge_request_event"
    world.pipelines[5016].source = "schedule"
    # A new pipeline on each project every few minutes, by turns: the demo's pipelines move.
    world.spawn = {
        101: (now - 100, ("camille", "dominique", "alex"), 7000),
        102: (now - 200, ("dominique", "sam", "camille"), 8000),
        103: (now - 20, ("alex", "dominique"), 9000),
    }
    reviews: list[tuple[int, int, int, str, str, str, list[str], list[str], bool, float, int | None]] = [
        # id, iid, project, title, author, branch, reviewers, assignees, draft, hours ago, head pipeline
        (401, 42, 101, "Cache Redis partagé entre les réplicas", "dominique", "feature/redis-cache",
         ["camille"], ["dominique"], False, 3, 5003),
        (402, 17, 102, "Mettre à jour le chart Helm de Traefik", "renovate-bot", "renovate/helm-3.x",
         ["dominique"], ["camille"], False, 26, 5007),
        (403, 8, 103, "Factures en PDF", "dominique", "feature/invoices-pdf",
         ["camille", "alex"], [], True, 0.8, 5012),
        (404, 43, 101, "Journal d'audit des écritures", "alex", "feature/audit-log",
         ["dominique"], [], False, 120, None),
    ]  # fmt: skip
    for mr_id, iid, project, title, author, branch, reviewers, assignees, draft, hours, head in reviews:
        world.add_merge_request(
            SimMergeRequest(
                mr_id,
                iid,
                project,
                title,
                author,
                branch,
                reviewers,
                assignees,
                draft,
                now - hours * 3600,
                head,
            )
        )
    return world
