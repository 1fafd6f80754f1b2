"""A simulator of Taiga's REST API (taiga-back 6.10), answering as the real responses in
tests/peers/taiga-back/samples/ show (docs/upstream-apis.md § 1):

    POST /api/v1/auth            {"type": "normal", username, password} -> user + auth_token + refresh
    POST /api/v1/auth/refresh    {"refresh"} -> {auth_token, refresh}; the old refresh is denylisted
    GET  /api/v1/users/me, /users, /users/by_username?username=
    GET  /api/v1/projects, /tasks, /userstories, /issues, /milestones
    GET  /api/v1/task-statuses, /userstory-statuses, /issue-statuses
    GET  /api/v1/issue-types, /severities, /priorities
    GET  /api/v1/tasks/{id}, /userstories/{id}, /issues/{id}
    PATCH /api/v1/tasks/{id}, /userstories/{id}, /issues/{id}   {"status", "version"} (Taiga's
         optimistic locking)

- Lists are paginated (30 by default, `page_size` up to 1000, `x-pagination-*` headers, a page
  past the end is 404); `x-disable-pagination` returns everything.
- Without a token, lists answer 200 `[]` and `/users/me` 401 (§ 1.12); a bad token is 401.
- Access tokens expire (`access_lifetime`, 24 h by default); refresh tokens work once.
- A stale `version` that changes a field changed since is 400 `{"version": "The version doesn't
  match with the current one"}`; a missing or future one 400 `{"version": "The version parameter
  is not valid"}`.
- Besides the faults of simulators/base.py, `throttle(seconds)` answers 429 with
  `X-Throttle-Wait-Seconds` for that long, like Taiga's throttling.

Demo data: projects of the demo users camille and dominique (portal/identity.py), each with
different tasks, stories and issues whose due dates are relative to today, sprints ending soon,
and a teammate who moves one of camille's tasks along every few minutes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import urlencode

from .base import SimRequest, SimResponse, SimServer

API = "/api/v1"
PAGE_SIZE = 30
MAX_PAGE_SIZE = 1000
THROTTLE_HEADER = "X-Throttle-Wait-Seconds"
KINDS = ("task", "us", "issue")
PATHS = {"task": "tasks", "us": "userstories", "issue": "issues"}
STATUS_PATHS = {"task": "task-statuses", "us": "userstory-statuses", "issue": "issue-statuses"}
GRADE_PATHS = {"type": "issue-types", "severity": "severities", "priority": "priorities"}
# The scrum template's issue types, severities and priorities (name, colour, order), as taiga-back
# 6.10 creates them with a project; a new issue is a Bug of Normal severity and priority.
DEFAULT_GRADES = {
    "type": (("Bug", "#E44057", 1), ("Question", "#5178D3", 2), ("Enhancement", "#40E4CE", 3)),
    "severity": (
        ("Wishlist", "#70728F", 1),
        ("Minor", "#40A8E4", 2),
        ("Normal", "#40E47C", 3),
        ("Important", "#E4A240", 4),
        ("Critical", "#D35450", 5),
    ),
    "priority": (("Low", "#A8E440", 1), ("Normal", "#E4CE40", 3), ("High", "#E47C40", 5)),
}
Answer = Callable[[SimRequest, "re.Match[str]", "SimUser | None"], SimResponse]  # a route that knows who asks


def _slug(text: str) -> str:
    """Taiga's slugs: ASCII, lower-case, words joined by "-"."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


# Taiga translates the names of its default statuses, issue types, severities and priorities into
# the caller's Accept-Language (Django's LocaleMiddleware; `_(obj.status.name)` and I18NField in
# its serializers), as taiga-back 6.10's French catalogue does; a team's own names pass as they are.
FRENCH_NAMES = {
    "New": "Nouveau",
    "Ready": "Prêt",
    "In progress": "En cours",
    "Ready for test": "Prêt à tester",
    "Done": "Fait",
    "Archived": "Archivé",
    "Closed": "Fermé",
    "Needs Info": "Infos manquantes",
    "Rejected": "Rejeté",  # issues' own
    "Postponed": "Repoussé",
    # issue types, priorities and severities (taiga/projects/translations.py)
    "Bug": "Bug",
    "Question": "Question",
    "Enhancement": "Amélioration",
    "Low": "Faible",
    "Normal": "Normal",
    "High": "Fort",
    "Wishlist": "Souhaits",
    "Minor": "Mineur",
    "Important": "Important",
    "Critical": "Critique",
}


def _translated(name: str, request: SimRequest | None) -> str:
    """A default status or grade name in the language the request asks for, as Taiga writes it."""
    wanted = request.headers.get("accept-language", "") if request is not None else ""
    return FRENCH_NAMES.get(name, name) if wanted.lower().startswith("fr") else name


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _jwt(kind: str, user_id: int, expires: float) -> str:
    """A JWT-shaped token (header.payload.signature) whose payload says its type, user and expiry."""

    def part(data: dict[str, Any]) -> str:
        import base64  # noqa: PLC0415

        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    header = part({"alg": "HS256", "typ": "JWT"})
    payload = part(
        {"token_type": kind, "exp": int(expires), "jti": secrets.token_hex(16), "user_id": user_id}
    )
    return f"{header}.{payload}.{secrets.token_urlsafe(32)}"


@dataclass
class SimUser:
    id: int
    username: str
    full_name: str
    password: str
    superuser: bool = False

    def brief(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "full_name_display": self.full_name,
            "photo": None,
            "big_photo": None,
            "gravatar_id": hashlib.md5(self.username.encode()).hexdigest(),
            "is_active": True,
            "id": self.id,
        }

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "full_name": self.full_name,
            "full_name_display": self.full_name,
            "color": "#d66adc",
            "bio": "",
            "lang": "",
            "theme": "",
            "timezone": "",
            "is_active": True,
            "photo": None,
            "big_photo": None,
            "gravatar_id": self.brief()["gravatar_id"],
            "roles": ["Back"],
        }

    def private(self) -> dict[str, Any]:
        return {
            **self.public(),
            "email": f"{self.username}@example.test",
            "uuid": hashlib.md5(self.username.encode()).hexdigest(),
            "verified_email": True,
            "accepted_terms": True,
        }


@dataclass
class SimProject:
    id: int
    name: str
    slug: str
    members: list[int]


@dataclass
class SimStatus:
    id: int
    project: int
    name: str
    slug: str
    color: str
    is_closed: bool
    order: int


@dataclass
class SimGrade:
    """An issue type, severity or priority of one project."""

    id: int
    project: int
    name: str
    color: str
    order: int


@dataclass
class SimItem:
    kind: str  # task | us | issue
    id: int
    ref: int
    project: int
    subject: str
    status: int
    assigned_to: int | None
    assigned_users: list[int] = field(default_factory=list)
    due_offset: int | None = None  # days from today
    milestone: int | None = None
    is_blocked: bool = False
    blocked_note: str = ""
    version: int = 1
    modified: float = field(default_factory=time.time)
    history: list[tuple[int, set[str]]] = field(default_factory=list)  # (version it made, fields changed)
    # an issue's type, severity and priority, by name (ids in the project's grades)
    grades: dict[str, str] = field(
        default_factory=lambda: {"type": "Bug", "severity": "Normal", "priority": "Normal"}
    )


@dataclass
class SimSprint:
    id: int
    project: int
    name: str
    slug: str
    start_offset: int
    finish_offset: int
    closed: bool = False


class TaigaWorld:
    """The simulator's data; tests and the demo may change it at will."""

    def __init__(
        self, clock: Callable[[], float] = time.time, access_lifetime: float = 86400.0, zone: tzinfo = UTC
    ) -> None:
        self.clock = clock
        self.zone = zone  # the team's: items are dated from today there, as people set them
        self.access_lifetime = access_lifetime
        self.lock = threading.RLock()
        self.users: dict[int, SimUser] = {}
        self.projects: dict[int, SimProject] = {}
        self.statuses: dict[str, dict[int, SimStatus]] = {kind: {} for kind in KINDS}
        self.grades: dict[str, dict[int, SimGrade]] = {kind: {} for kind in GRADE_PATHS}
        self.items: dict[str, dict[int, SimItem]] = {kind: {} for kind in KINDS}
        self.sprints: dict[int, SimSprint] = {}
        self.access: dict[str, tuple[int, float]] = {}  # token -> (user, expires)
        self.refresh: dict[str, int] = {}  # live refresh tokens -> user
        self.denylisted: set[str] = set()
        self.throttled_until = 0.0
        self.logins = 0
        self.refreshes = 0
        self._ids = itertools.count(1)
        self._teammate: Callable[[TaigaWorld], None] | None = None

    # --- building ---------------------------------------------------------------------------

    def add_user(self, username: str, full_name: str, password: str, superuser: bool = False) -> SimUser:
        user = SimUser(len(self.users) + 1, username, full_name, password, superuser)
        self.users[user.id] = user
        return user

    def add_project(self, name: str, slug: str, members: list[SimUser]) -> SimProject:
        project = SimProject(len(self.projects) + 1, name, slug, [m.id for m in members])
        self.projects[project.id] = project
        task_statuses = [
            ("New", "#70728F", False),
            ("In progress", "#E47C40", False),
            ("Ready for test", "#E4CE40", False),
            ("Closed", "#A8E440", True),
            ("Needs Info", "#5178D3", False),
        ]
        story_statuses = [
            ("New", "#70728F", False),
            ("Ready", "#E44057", False),
            ("In progress", "#E47C40", False),
            ("Ready for test", "#E4CE40", False),
            ("Done", "#A8E440", True),
            ("Archived", "#A9AABC", True),
        ]
        issue_statuses = [  # the scrum template's, as taiga-back 6.10 makes them
            ("New", "#70728F", False),
            ("In progress", "#40A8E4", False),
            ("Ready for test", "#E4CE40", False),
            ("Closed", "#A8E440", True),
            ("Needs Info", "#E44057", False),
            ("Rejected", "#A9AABC", True),
            ("Postponed", "#5178D3", False),
        ]
        tables = (("task", task_statuses), ("us", story_statuses), ("issue", issue_statuses))
        for kind, table in tables:
            for order, (name_, color, closed) in enumerate(table, start=1):
                status_id = len(self.statuses[kind]) + 1
                slug_ = _slug(name_)
                self.statuses[kind][status_id] = SimStatus(
                    status_id, project.id, name_, slug_, color, closed, order
                )
        for grade_kind, grades in DEFAULT_GRADES.items():
            for name_, color, order in grades:
                grade_id = len(self.grades[grade_kind]) + 1
                self.grades[grade_kind][grade_id] = SimGrade(grade_id, project.id, name_, color, order)
        return project

    def grade_id(self, kind: str, project: int, name: str) -> int | None:
        """The id of the project's issue type, severity or priority of that name (None: gone)."""
        return next(
            (g.id for g in self.grades[kind].values() if g.project == project and g.name == name), None
        )

    def status_id(self, kind: str, project: int, name: str) -> int:
        return next(s.id for s in self.statuses[kind].values() if s.project == project and s.name == name)

    def add_item(
        self,
        kind: str,
        project: SimProject,
        subject: str,
        status: str,
        assignee: SimUser | None,
        due: int | None = None,
        sprint: SimSprint | None = None,
        blocked: str | None = None,
        also: list[SimUser] | None = None,
        severity: str = "Normal",
        priority: str = "Normal",
        issue_type: str = "Bug",
    ) -> SimItem:
        # One sequence of refs per project for every kind, as Taiga numbers them.
        refs = [i.ref for k in KINDS for i in self.items[k].values() if i.project == project.id]
        item = SimItem(
            kind=kind,
            id=len(self.items[kind]) + 1,
            ref=max(refs, default=0) + 1,
            project=project.id,
            subject=subject,
            status=self.status_id(kind, project.id, status),
            assigned_to=assignee.id if assignee else None,
            assigned_users=([assignee.id] if assignee else []) + [u.id for u in also or []],
            due_offset=due,
            milestone=sprint.id if sprint else None,
            is_blocked=blocked is not None,
            blocked_note=blocked or "",
            modified=self.clock() - 3600 * (len(self.items[kind]) % 17),
            grades={"type": issue_type, "severity": severity, "priority": priority},
        )
        self.items[kind][item.id] = item
        return item

    def add_sprint(
        self, project: SimProject, name: str, start: int, finish: int, closed: bool = False
    ) -> SimSprint:
        sprint = SimSprint(len(self.sprints) + 1, project.id, name, _slug(name), start, finish, closed)
        self.sprints[sprint.id] = sprint
        return sprint

    def on_request(self, teammate: Callable[[TaigaWorld], None]) -> None:
        """Something that moves the data as time passes, run before each answer."""
        self._teammate = teammate

    # --- changes, as Taiga's UI would make them ----------------------------------------------

    def change(self, kind: str, item_id: int, **fields: Any) -> SimItem:
        """Someone changes an item in Taiga itself: the version moves, the history records the fields."""
        with self.lock:
            item = self.items[kind][item_id]
            for name, value in fields.items():
                setattr(item, name, value)
            item.version += 1
            item.modified = self.clock()
            item.history.append((item.version, set(fields)))
            return item

    def throttle(self, seconds: float) -> None:
        """Answer 429 with X-Throttle-Wait-Seconds until `seconds` from now."""
        self.throttled_until = self.clock() + seconds

    # --- answers ----------------------------------------------------------------------------

    def today(self) -> date:
        return datetime.fromtimestamp(self.clock(), tz=self.zone).date()

    def day(self, offset: int | None) -> str | None:
        return None if offset is None else (self.today() + timedelta(days=offset)).isoformat()

    def due_status(self, item: SimItem, closed: bool) -> str:
        if item.due_offset is None:
            return "not_set"
        if closed:
            return "no_longer_applicable"
        if item.due_offset < 0:
            return "past_due"
        return "due_soon" if item.due_offset <= 14 else "set"

    def project_info(self, project_id: int) -> dict[str, Any]:
        project = self.projects[project_id]
        return {"name": project.name, "slug": project.slug, "logo_small_url": None, "id": project.id}

    def item_json(self, item: SimItem, request: SimRequest | None = None) -> dict[str, Any]:
        status = self.statuses[item.kind][item.status]
        assignee = self.users.get(item.assigned_to) if item.assigned_to else None
        sprint = self.sprints.get(item.milestone) if item.milestone else None
        owner = next(iter(self.users.values()))
        body: dict[str, Any] = {
            "due_date": self.day(item.due_offset),
            "due_date_reason": "",
            "due_date_status": self.due_status(item, status.is_closed),
            "total_comments": 0,
            "tags": [],
            "attachments": [],
            "project": item.project,
            "project_extra_info": self.project_info(item.project),
            "status": status.id,
            "status_extra_info": {
                "name": _translated(status.name, request),
                "color": status.color,
                "is_closed": status.is_closed,
            },
            "assigned_to": item.assigned_to,
            "assigned_to_extra_info": assignee.brief() if assignee else None,
            "owner": owner.id,
            "owner_extra_info": owner.brief(),
            "is_watcher": False,
            "total_watchers": 0,
            "is_voter": False,
            "total_voters": 0,
            "id": item.id,
            "ref": item.ref,
            "milestone": item.milestone,
            "created_date": _iso(item.modified - 86400),
            "modified_date": _iso(item.modified),
            "subject": item.subject,
            "external_reference": None,
            "version": item.version,
            "watchers": [],
            "is_blocked": item.is_blocked,
            "blocked_note": item.blocked_note,
            "is_closed": status.is_closed,
        }
        if item.kind == "issue":  # IssueListSerializer: no sprint's slug, the issue's own kinds
            body.update(
                finished_date=None,
                # ids of the project's grades, as Taiga gives them
                **{
                    kind: self.grade_id(kind, item.project, item.grades.get(kind, "")) for kind in GRADE_PATHS
                },
            )
            return body
        body["milestone_slug"] = sprint.slug if sprint else None
        if item.kind == "task":
            body.update(
                finished_date=None,
                us_order=int(item.modified * 1000),
                taskboard_order=int(item.modified * 1000),
                is_iocaine=False,
                user_story=None,
                user_story_extra_info=None,
            )
        else:
            body.update(
                milestone_name=sprint.name if sprint else None,
                finish_date=None,
                points={},
                total_points=None,
                tasks=[],
                epics=None,
                swimlane=None,
                assigned_users=list(item.assigned_users),
            )
        return body

    def sprint_json(self, sprint: SimSprint) -> dict[str, Any]:
        stories = [self.item_json(i) for i in self.items["us"].values() if i.milestone == sprint.id]
        return {
            "project": sprint.project,
            "project_extra_info": self.project_info(sprint.project),
            "id": sprint.id,
            "name": sprint.name,
            "slug": sprint.slug,
            "owner": 1,
            "estimated_start": self.day(sprint.start_offset),
            "estimated_finish": self.day(sprint.finish_offset),
            "created_date": _iso(self.clock() - 30 * 86400),
            "modified_date": _iso(self.clock() - 86400),
            "closed": sprint.closed,
            "disponibility": 0.0,
            "order": 1,
            "user_stories": stories,
            "total_points": None,
            "closed_points": None,
        }

    def visible_projects(self, user: SimUser) -> list[SimProject]:
        return [p for p in self.projects.values() if user.superuser or user.id in p.members]

    # --- tokens -----------------------------------------------------------------------------

    def issue_tokens(self, user: SimUser) -> dict[str, str]:
        access = _jwt("access", user.id, self.clock() + self.access_lifetime)
        refresh = _jwt("refresh", user.id, self.clock() + 8 * 86400)
        self.access[access] = (user.id, self.clock() + self.access_lifetime)
        self.refresh[refresh] = user.id
        return {"auth_token": access, "refresh": refresh}

    def user_of(self, request: SimRequest) -> tuple[SimUser | None, bool]:
        """The token's user (None without a token), and whether the token is acceptable."""
        header = request.headers.get("authorization", "")
        if not header:
            return None, True
        if not header.startswith("Bearer "):
            return None, False
        found = self.access.get(header[7:])
        if found is None or found[1] <= self.clock():
            return None, False
        user = self.users.get(found[0])
        return user, user is not None

    def expire_access_tokens(self) -> None:
        """Every access token stops working (as after their lifetime), refresh tokens still work."""
        with self.lock:
            self.access.clear()


# --- HTTP -------------------------------------------------------------------------------------

_TOKEN_INVALID = {
    "detail": "Given token not valid for any token type",
    "code": "token_not_valid",
    "messages": [
        {"token_class": "AccessToken", "token_type": "access", "message": "Token is invalid or expired"}
    ],
}
_NOT_AUTHENTICATED = {
    "_error_message": "Authentication credentials were not provided.",
    "_error_type": "taiga.base.exceptions.NotAuthenticated",
}


def _paginate(request: SimRequest, rows: list[Any], base: str) -> SimResponse:
    if "x-disable-pagination" in request.headers:
        return SimResponse.json(rows)
    try:
        size = min(MAX_PAGE_SIZE, max(1, int(request.arg("page_size") or PAGE_SIZE)))
    except ValueError:
        size = PAGE_SIZE
    raw_page = request.arg("page") or "1"
    pages = max(1, -(-len(rows) // size))
    try:
        page = pages if raw_page == "last" else int(raw_page)
    except ValueError:
        page = 0
    if page < 1 or page > pages:
        return SimResponse.json(
            {"_error_message": "Page is not 'last', nor can it be converted to an int."}, 404
        )
    headers = {"x-paginated": "true", "x-paginated-by": str(size), "x-pagination-current": str(page)}
    if "x-lazy-pagination" not in request.headers:
        headers["x-pagination-count"] = str(len(rows))
    query = {k: v[0] for k, v in request.query.items() if k != "page"}
    if page < pages:
        headers["X-Pagination-Next"] = f"{base}{request.path}?{urlencode({**query, 'page': page + 1})}"
    if page > 1:
        headers["X-Pagination-Prev"] = f"{base}{request.path}?{urlencode({**query, 'page': page - 1})}"
    return SimResponse.json(rows[(page - 1) * size : page * size], headers=headers)


def _false(value: str | None) -> bool | None:
    return {"true": True, "false": False}.get((value or "").lower())


def make_server(world: TaigaWorld | None = None, port: int = 0) -> tuple[SimServer, TaigaWorld]:  # noqa: PLR0915 - one route each
    """A Taiga simulator on 127.0.0.1 (port 0: any free port); its API is under /api/v1/."""
    world = world or demo_world()
    not_found = SimResponse.json({"_error_message": "No Task matches the given query."}, 404)  # Django's
    server = SimServer("taiga", port=port, not_found=not_found)
    base = f"http://127.0.0.1:{server.port}"

    def guarded(handler: Answer, auth: str = "list") -> Callable[[SimRequest, re.Match[str]], SimResponse]:
        """auth: "list" (no token: []), "required" (no token: 401), "none"."""

        def wrapped(request: SimRequest, match: re.Match[str]) -> SimResponse:
            with world.lock:
                if world.throttled_until > world.clock():
                    wait = max(1, int(world.throttled_until - world.clock() + 0.999))
                    return SimResponse.json(
                        {
                            "_error_message": f"Request was throttled. Expected available in {wait} seconds.",
                            "_error_type": "taiga.base.exceptions.Throttled",
                        },
                        429,
                        headers={THROTTLE_HEADER: str(wait)},
                    )
                if world._teammate is not None:
                    world._teammate(world)
                user, valid = world.user_of(request) if auth != "none" else (None, True)
                if not valid:
                    return SimResponse.json(
                        _TOKEN_INVALID, 401, headers={"WWW-Authenticate": 'Bearer realm="api"'}
                    )
                if user is None and auth == "required":
                    return SimResponse.json(
                        _NOT_AUTHENTICATED, 401, headers={"WWW-Authenticate": 'Bearer realm="api"'}
                    )
                if user is None and auth == "list":
                    return _paginate(request, [], base)
                return handler(request, match, user)

        return wrapped

    def route(method: str, pattern: str, auth: str = "list") -> Callable[[Answer], Answer]:
        def register(handler: Answer) -> Answer:
            server.route(method, API + pattern)(guarded(handler, auth))
            return handler

        return register

    @route("GET", r"/?", auth="none")
    def root(request: SimRequest, match: re.Match[str], user: SimUser | None) -> SimResponse:
        return SimResponse.json(
            {
                name: f"{base}{API}/{name}"
                for name in ("auth", "users", "projects", "tasks", "userstories", "issues", "milestones")
            }
        )

    @route("POST", r"/auth", auth="none")
    def login(request: SimRequest, match: re.Match[str], user: SimUser | None) -> SimResponse:
        body = request.json() or {}
        if body.get("type") != "normal":
            return SimResponse.json(
                {"_error_message": "invalid login type", "_error_type": "taiga.base.exceptions.BadRequest"},
                400,
            )
        found = next((u for u in world.users.values() if u.username == body.get("username")), None)
        if found is None or not secrets.compare_digest(found.password, str(body.get("password", ""))):
            return SimResponse.json(
                {
                    "detail": "No active account found with the given credentials",
                    "code": "invalid_credentials",
                },
                401,
            )
        world.logins += 1
        return SimResponse.json({**found.private(), **world.issue_tokens(found)})

    @route("POST", r"/auth/refresh", auth="none")
    def refresh(request: SimRequest, match: re.Match[str], user: SimUser | None) -> SimResponse:
        token = str((request.json() or {}).get("refresh", ""))
        owner = world.refresh.pop(token, None)
        if owner is None or token in world.denylisted:
            return SimResponse.json({"detail": "Token is invalid or expired", "code": "token_not_valid"}, 401)
        world.denylisted.add(token)
        world.refreshes += 1
        return SimResponse.json(world.issue_tokens(world.users[owner]))

    @route("GET", r"/users/me", auth="required")
    def me(request: SimRequest, match: re.Match[str], user: SimUser | None) -> SimResponse:
        assert user is not None
        return SimResponse.json(user.private())

    @route("GET", r"/users/by_username")
    def by_username(request: SimRequest, match: re.Match[str], user: SimUser | None) -> SimResponse:
        found = next((u for u in world.users.values() if u.username == request.arg("username")), None)
        if found is None:
            return SimResponse.json({"_error_message": "No User matches the given query."}, 404)
        return SimResponse.json(found.private() if user and user.superuser else found.public())

    @route("GET", r"/users")
    def users(request: SimRequest, match: re.Match[str], user: SimUser | None) -> SimResponse:
        assert user is not None
        shared = {m for p in world.visible_projects(user) for m in p.members}
        rows = [u.public() for u in world.users.values() if user.superuser or u.id in shared]
        return _paginate(request, rows, base)

    @route("GET", r"/projects")
    def projects(request: SimRequest, match: re.Match[str], user: SimUser | None) -> SimResponse:
        assert user is not None
        rows = [
            {
                "id": p.id,
                "name": p.name,
                "slug": p.slug,
                "description": "",
                "members": p.members,
                "is_private": True,
                "owner": world.users[1].brief(),
            }
            for p in world.visible_projects(user)
        ]
        return _paginate(request, rows, base)

    def items(kind: str) -> Callable[[SimRequest, re.Match[str], SimUser | None], SimResponse]:
        def handler(request: SimRequest, match: re.Match[str], user: SimUser | None) -> SimResponse:
            assert user is not None
            visible = {p.id for p in world.visible_projects(user)}
            closed = _false(request.arg("status__is_closed"))
            if closed is None:
                closed = _false(request.arg("is_closed"))
            assigned = request.arg("assigned_users" if kind == "us" else "assigned_to") or request.arg(
                "assigned_to"
            )
            wanted = {int(a) for a in assigned.split(",") if a.isdigit()} if assigned else None
            project = request.arg("project")
            rows = []
            for item in sorted(world.items[kind].values(), key=lambda i: i.id):
                status = world.statuses[kind][item.status]
                if item.project not in visible or (closed is not None and status.is_closed != closed):
                    continue
                if project and str(item.project) != project:
                    continue
                people = set(item.assigned_users) | ({item.assigned_to} if item.assigned_to else set())
                if wanted is not None and not (people & wanted):
                    continue
                rows.append(world.item_json(item, request))
            return _paginate(request, rows, base)

        return handler

    def detail(kind: str) -> Callable[[SimRequest, re.Match[str], SimUser | None], SimResponse]:
        def handler(request: SimRequest, match: re.Match[str], user: SimUser | None) -> SimResponse:
            assert user is not None
            item = world.items[kind].get(int(match["id"]))
            if item is None:
                return SimResponse.json({"_error_message": "No Task matches the given query."}, 404)
            if item.project not in {p.id for p in world.visible_projects(user)}:
                return SimResponse.json(
                    {
                        "_error_message": "You do not have permission to perform this action.",
                        "_error_type": "taiga.base.exceptions.PermissionDenied",
                    },
                    403,
                )
            if request.method == "PATCH":
                return patch(item, request)
            return SimResponse.json(world.item_json(item, request))

        return handler

    def patch(item: SimItem, request: SimRequest) -> SimResponse:
        body = request.json() or {}
        version = body.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            message = (
                "The version must be an integer"
                if version is not None
                else "The version parameter is not valid"
            )
            return SimResponse.json({"version": message}, 400)
        if version < 0 or version > item.version:
            return SimResponse.json({"version": "The version parameter is not valid"}, 400)
        fields = {k for k in body if k != "version"}
        changed_since = (
            set().union(*(f for v, f in item.history if v > version)) if version < item.version else set()
        )
        if fields & changed_since:
            return SimResponse.json({"version": "The version doesn't match with the current one"}, 400)
        if "status" in body:
            status = world.statuses[item.kind].get(int(body["status"]))
            if (status is None or status.project != item.project) and item.kind == "issue":
                return SimResponse.json(
                    {
                        "_error_message": "You don't have permissions to set this status to this issue.",
                        "_error_type": "taiga.base.exceptions.PermissionDenied",
                    },
                    403,
                )
            if status is None or status.project != item.project:
                return SimResponse.json(
                    {
                        "_error_message": "You don't have permissions to set this status to this task.",
                        "_error_type": "taiga.base.exceptions.WrongArguments",
                    },
                    400,
                )
        updated = world.change(
            item.kind,
            item.id,
            **{k: body[k] for k in fields if k in ("status", "subject", "is_blocked", "blocked_note")},
        )
        return SimResponse.json(world.item_json(updated, request))

    def per_project(table: dict[int, SimStatus] | dict[int, SimGrade]) -> Answer:
        """A project setting's list (statuses, issue types, severities, priorities), `project` filter."""

        def handler(request: SimRequest, match: re.Match[str], user: SimUser | None) -> SimResponse:
            assert user is not None
            visible = {p.id for p in world.visible_projects(user)}
            project = request.arg("project")
            rows = [
                {**asdict(row), "name": _translated(row.name, request)}
                for row in table.values()
                if row.project in visible and (not project or str(row.project) == project)
            ]
            return _paginate(request, rows, base)

        return handler

    @route("GET", r"/milestones")
    def milestones(request: SimRequest, match: re.Match[str], user: SimUser | None) -> SimResponse:
        assert user is not None
        visible = {p.id for p in world.visible_projects(user)}
        closed = _false(request.arg("closed"))
        rows = [
            world.sprint_json(s)
            for s in sorted(world.sprints.values(), key=lambda s: -s.start_offset)
            if s.project in visible and (closed is None or s.closed == closed)
        ]
        return _paginate(request, rows, base)

    for kind, path in PATHS.items():
        server.route("GET", rf"{API}/{path}")(guarded(items(kind)))
        server.route("GET", rf"{API}/{path}/(?P<id>\d+)")(guarded(detail(kind), auth="required"))
        server.route("PATCH", rf"{API}/{path}/(?P<id>\d+)")(guarded(detail(kind), auth="required"))
        server.route("GET", rf"{API}/{STATUS_PATHS[kind]}")(guarded(per_project(world.statuses[kind])))
    for grade_kind, path in GRADE_PATHS.items():
        server.route("GET", rf"{API}/{path}")(guarded(per_project(world.grades[grade_kind])))
    return server, world


# --- the demo's data ----------------------------------------------------------------------------

SERVICE_ACCOUNT = ("portal-bot", "Portal (service account)", "portal-bot-demo-password")


def demo_world(clock: Callable[[], float] = time.time, zone: tzinfo = UTC) -> TaigaWorld:
    """Two teams' projects; camille and dominique each with their own open work, dated from today
    in `zone` (the portal's: else its "due today" is overdue at night, once UTC's day is over)."""
    world = TaigaWorld(clock, zone=zone)
    bot = world.add_user(*SERVICE_ACCOUNT, superuser=True)
    camille = world.add_user("camille", "Camille Demo", "camille-demo")
    dominique = world.add_user("dominique", "Dominique Demo", "dominique-demo")
    sacha = world.add_user("sacha", "Sacha Martin", "sacha-demo")
    del bot
    portal = world.add_project("Portail DevSecOps", "portail-devsecops", [camille, dominique, sacha])
    platform = world.add_project("Plateforme K3s", "plateforme-k3s", [camille, sacha])
    mobile = world.add_project("Appli mobile", "appli-mobile", [dominique, sacha])
    p_now = world.add_sprint(portal, "Sprint 14", -9, 2)
    world.add_sprint(portal, "Sprint 15", 3, 16)
    k_now = world.add_sprint(platform, "Itération 7", -5, 6)
    m_now = world.add_sprint(mobile, "Sprint 3", -2, 12)

    add = world.add_item
    # camille: platform and portal work
    add(
        "task", platform, "Renouveler les certificats de l’ingress Traefik", "In progress", camille, -2, k_now
    )
    add("task", portal, "Relire la politique réseau du chart Helm", "New", camille, 0, p_now)
    add(
        "task",
        platform,
        "Mettre à jour K3s en 1.31 sur le nœud de préproduction",
        "Needs Info",
        camille,
        1,
        k_now,
        # Markdown, as Taiga renders it (blocked_note_html)
        blocked="En attente de la fenêtre de maintenance validée par l’équipe *réseau* (`change-1432`)",
    )
    add("task", portal, "Ajouter les sondes readiness à Harbor", "Ready for test", camille, 4, p_now)
    add("task", platform, "Documenter la rotation des secrets Vault", "New", camille, 11)
    add("task", portal, "Nettoyer les anciennes images du registre", "New", camille, None)
    add(
        "us",
        portal,
        "En tant qu’admin, je vois l’état des sauvegardes",
        "In progress",
        camille,
        6,
        p_now,
        also=[sacha],
    )
    add("us", platform, "Alerte quand un certificat expire dans moins de 14 jours", "Ready", camille, 20)
    # dominique: mobile and portal work
    add(
        "task",
        mobile,
        "Corriger le plantage au démarrage sur Android 15",
        "In progress",
        dominique,
        -1,
        m_now,
    )
    add("task", mobile, "Traduire l’écran de connexion en allemand", "New", dominique, 2, m_now)
    add("task", portal, "Maquette de la carte « Mes tâches »", "Ready for test", dominique, 3, p_now)
    add(
        "task",
        mobile,
        "Mesurer le temps de démarrage à froid",
        "New",
        dominique,
        9,
        m_now,
        blocked="Le téléphone de test est parti en réparation",
    )
    add(
        "us",
        mobile,
        "En tant qu’utilisateur, je reçois une notification de rappel",
        "New",
        dominique,
        8,
        m_now,
    )
    add("us", portal, "En tant que développeur, je filtre mes tâches bloquées", "Ready", dominique, 15)
    # someone else's work, in the same projects: never on camille's or dominique's cards
    add("task", portal, "Préparer la démo du vendredi", "New", sacha, 1, p_now)
    add("task", platform, "Auditer les rôles RBAC du cluster", "In progress", sacha, -4, k_now)
    # issues (bugs, questions): one overdue and one due soon each, and one of sacha's
    add(
        "issue",
        platform,
        "Le certificat wildcard n’est pas servi sur le port 8443",
        "In progress",
        camille,
        -3,
        severity="Critical",
        priority="High",
    )
    add(
        "issue",
        portal,
        "Question\u00a0: quelle rétention pour les journaux d’audit\u00a0?",
        "New",
        camille,
        2,
        priority="Low",
        issue_type="Question",
    )
    add("issue", portal, "La recherche ignore les accents", "Needs Info", camille, None, severity="Minor")
    add(
        "issue",
        mobile,
        "L’appli se ferme quand le téléphone est en arabe",
        "In progress",
        dominique,
        -1,
        m_now,
        severity="Important",
    )
    add("issue", portal, "Le lien de réinitialisation du mot de passe expire trop vite", "New", dominique, 1)
    add("issue", mobile, "Les notifications arrivent en double", "New", sacha, 0)

    mover = world.items["task"][4]  # "Ajouter les sondes readiness à Harbor"
    steps = ("In progress", "Ready for test", "In progress", "Ready for test")

    last = {"step": int(clock() // 300)}

    def teammate(w: TaigaWorld) -> None:
        """Every five minutes a teammate moves one of camille's tasks along (demo data that moves)."""
        step = int(w.clock() // 300)
        if step == last["step"]:
            return
        last["step"] = step
        wanted = w.status_id("task", mover.project, steps[step % len(steps)])
        if mover.status != wanted and not w.statuses["task"][mover.status].is_closed:
            w.change("task", mover.id, status=wanted)

    world.on_request(teammate)
    return world


def crowd_world(
    people: int, projects: int = 10, clock: Callable[[], float] = time.time, moves_every: float = 0.0
) -> TaigaWorld:
    """A Taiga of `people` users (user0001, ...), each with a task, a story and an issue in one of
    `projects` projects, dated from today: what the bench's portal users are cut from.

    `moves_every` > 0: a team at work. Every that many seconds one task moves between "In
    progress" and "Ready for test", each task in turn, so that the board differs at each read.
    """
    world = TaigaWorld(clock)
    world.add_user(*SERVICE_ACCOUNT, superuser=True)
    users = [world.add_user(f"user{n:04d}", f"User {n:04d}", f"pw-user{n:04d}") for n in range(1, people + 1)]
    teams = [users[i::projects] for i in range(projects)]
    for index, team in enumerate(teams, start=1):
        project = world.add_project(f"Project {index:02d}", f"project-{index:02d}", team)
        sprint = world.add_sprint(project, f"Sprint {index}", -3, 4 + index % 5)
        for number, user in enumerate(team):
            world.add_item(
                "task", project, f"Task of {user.username}", "In progress", user, number % 20 - 5, sprint
            )
            world.add_item("us", project, f"Story of {user.username}", "New", user, number % 30, sprint)
            world.add_item("issue", project, f"Bug of {user.username}", "New", user, number % 10 - 2)
    if moves_every > 0:
        world.on_request(_moving_tasks(world, moves_every))
    return world


def _moving_tasks(world: TaigaWorld, every: float) -> Callable[[TaigaWorld], None]:
    """Run before each answer: the moves due since the last answer (at most one per task)."""
    tasks = itertools.cycle(sorted(world.items["task"]))
    last = {"step": int(world.clock() // every)}
    lock = threading.Lock()  # the simulator answers from several threads

    def teammates(w: TaigaWorld) -> None:
        step = int(w.clock() // every)
        with lock:
            due, last["step"] = min(step - last["step"], len(w.items["task"])), step
        for _ in range(due):
            item = w.items["task"][next(tasks)]
            current = w.statuses["task"][item.status].name
            wanted = "Ready for test" if current == "In progress" else "In progress"
            w.change("task", item.id, status=w.status_id("task", item.project, wanted))

    return teammates
