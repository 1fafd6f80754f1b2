"""Taiga's REST API (taiga-back 6.x, `/api/v1/`): a service account reads and changes work items.

Pure Python, no Flask. Every call goes through `BoundedJsonClient` (deadline, size cap, no
redirects, errors mapped onto `UpstreamError`). What Taiga does that a client must know
(docs/upstream-apis.md § 1, checked against a real taiga-back in § 1.12):

- The service account logs in (`POST /auth`) and sends `Authorization: Bearer <auth_token>`.
  Without a token Taiga answers lists with 200 and `[]`: this client never sends a request
  without one, and checks `/users/me` after each login.
- Refresh tokens rotate and each works once (the old one is denylisted). The tokens live in the
  store every worker and replica shares; a refresh is single-flight across all of them (the
  store's lock, a thread lock within the process), and a refused refresh falls back to a fresh
  login. A 401 mid-session is recovered once (the token renewed, the call repeated); a second
  401 is reported.
- Lists are paginated (`x-pagination-next`); pages are followed to the end, up to a cap.
- A 429 says how long to wait in `X-Throttle-Wait-Seconds`: the error carries it, and the
  circuit breaker waits that long before the next call.
- A stale `version` on a PATCH that changes the same field is a 400 `{"version": ...}`: it
  becomes an `UpstreamConflict`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import requests
from cryptography.fernet import Fernet, InvalidToken

from ...caching.codec import derive_key
from ...caching.stores import LocalStore, Store
from ...upstreams.errors import (
    N_,
    Reason,
    UpstreamAuthError,
    UpstreamBadResponse,
    UpstreamConflict,
    UpstreamError,
    UpstreamRejected,
    UpstreamUnavailable,
    conflict_reason,
)
from ...upstreams.http import BoundedJsonClient, HttpLimits, JsonResponse, require

log = logging.getLogger(__name__)

UPSTREAM = "Taiga"
THROTTLE_HEADER = "X-Throttle-Wait-Seconds"
TOKEN_TTL = 7 * 86400  # seconds the stored tokens are kept (Taiga's refresh tokens live 8 days)
EXPIRY_MARGIN = 60.0  # renew an access token this long before it expires
# What a card says when Taiga refuses the service account's login (a 401 or 403 to auth).
SERVICE_ACCOUNT_REFUSED = N_("%(upstream)s refused the portal's service account")
Kind = Literal["task", "us", "issue"]
GradeKind = Literal["type", "severity", "priority"]  # what Taiga grades an issue by, per project


# --- what the client returns -------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """A Taiga user as the service account sees them (no e-mail: Taiga shows it only to admins)."""

    id: int
    username: str
    full_name: str


@dataclass(frozen=True)
class Project:
    id: int
    name: str
    slug: str
    members: tuple[int, ...]


@dataclass(frozen=True)
class Status:
    """A task, user-story or issue status of one project, with Taiga's colour ("#E47C40")."""

    kind: Kind
    id: int
    project: int
    name: str
    color: str
    is_closed: bool
    order: int


@dataclass(frozen=True)
class Grade:
    """An issue type, severity or priority of one project ("Critical", "#D35450", order 5)."""

    kind: GradeKind
    id: int
    project: int
    name: str
    color: str
    order: int


@dataclass(frozen=True)
class WorkItem:
    """An open task, user story or issue, as the cards need it."""

    kind: Kind
    id: int
    ref: int
    subject: str
    project: int
    project_name: str
    project_slug: str
    status: int
    status_name: str
    status_color: str
    is_closed: bool
    assignees: tuple[int, ...]  # a task's or issue's assigned_to; a story's assigned_users and assigned_to
    due_date: date | None
    is_blocked: bool
    blocked_note: str
    modified: datetime | None
    version: int
    milestone: int | None  # the sprint's id
    sprint: str  # the sprint's name when Taiga gives it (stories), else its slug, or ""
    # An issue's type, severity and priority (ids of its project's Grades); empty for the others.
    grades: tuple[tuple[GradeKind, int], ...] = ()

    @property
    def uid(self) -> str:
        """Stable across fetches: "task-5", "us-12", "issue-7"."""
        return f"{self.kind}-{self.id}"


@dataclass(frozen=True)
class Sprint:
    """An open milestone: its end date is a deadline for everyone in its project."""

    id: int
    name: str
    slug: str
    project: int
    project_name: str
    project_slug: str
    start: date | None
    finish: date
    closed: bool


@dataclass(frozen=True)
class Board:
    """Everything open the service account sees, fetched once for every user of the portal."""

    items: tuple[WorkItem, ...]
    sprints: tuple[Sprint, ...]
    people: tuple[Person, ...]
    projects: tuple[Project, ...]
    truncated: bool = False  # a list had more pages than the cap: what is shown is incomplete

    # Built from the fields above as the board is made (fetched or read from the store), not
    # stored: a worker cuts the board for every person who polls, and a board changes at each
    # read while a team works; going through all of it for each person made those cuts grow
    # with the square of the team. Positions, not copies: orjson writes them into the board's
    # fingerprint too (they follow from the fields, so equal boards still hash alike), and a
    # property cached on the instance would have entered it only once computed.
    person_at: dict[str, int] = field(init=False, repr=False, compare=False)
    items_at: dict[int, tuple[int, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name = {person.username.casefold(): at for at, person in enumerate(self.people)}
        found: dict[int, list[int]] = {}
        for at, item in enumerate(self.items):
            for person in dict.fromkeys(item.assignees):
                found.setdefault(person, []).append(at)
        object.__setattr__(self, "person_at", by_name)  # frozen: set once, here
        object.__setattr__(self, "items_at", {person: tuple(ats) for person, ats in found.items()})

    def person(self, username: str) -> Person | None:
        """The person with this username (case-folded), or None."""
        at = self.person_at.get(username.casefold())
        return None if at is None else self.people[at]

    def items_of(self, person: Person) -> tuple[WorkItem, ...]:
        """The items assigned to `person`, in the board's order."""
        return tuple(self.items[at] for at in self.items_at.get(person.id, ()))

    def with_status_of(self, changed: WorkItem) -> Board:
        """This board with `changed`'s status and version (as Taiga answered a change), or
        without it once closed (the board holds open items); the same board if it lacks it."""
        items: list[WorkItem] = []
        for item in self.items:
            if (item.kind, item.id) != (changed.kind, changed.id):
                items.append(item)
            elif not changed.is_closed:
                items.append(
                    replace(
                        item,
                        status=changed.status,
                        status_name=changed.status_name,
                        status_color=changed.status_color,
                        version=changed.version,
                        modified=changed.modified or item.modified,
                    )
                )
        if len(items) == len(self.items) and all(a is b for a, b in zip(items, self.items, strict=True)):
            return self
        return replace(self, items=tuple(items))


@dataclass(frozen=True)
class Catalog:
    """Statuses per project (tasks, user stories, issues) and the issues' types, severities and
    priorities: they rarely change, so kept longer."""

    statuses: tuple[Status, ...]
    grades: tuple[Grade, ...] = ()
    # Built as the catalogue is made, not stored (as Board's positions): "task-3" -> its name.
    names: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = {f"{status.kind}-{status.id}": status.name for status in self.statuses}
        object.__setattr__(self, "names", names)  # frozen: set once, here

    def grades_of(self, item: WorkItem) -> tuple[tuple[Grade, bool], ...]:
        """The item's type, severity and priority as this catalogue names them, each with whether
        it stands above the middle of its project's scale ("Important" and "Critical" of Taiga's
        five severities, "High" of its three priorities): what a card points out. Grades the
        catalogue does not hold (created since it was read) are left out."""
        return tuple((grade, place > (length - 1) / 2) for grade, place, length in self._placed(item))

    def standing_of(self, item: WorkItem, kind: GradeKind) -> float | None:
        """Where the item's grade of `kind` stands on its project's scale, from 0 (the lowest) to
        1 (the highest), so that projects with scales of their own compare; None without one."""
        for grade, place, length in self._placed(item):
            if grade.kind == kind:
                return place / (length - 1) if length > 1 else 0.5
        return None

    def _placed(self, item: WorkItem) -> Iterator[tuple[Grade, int, int]]:
        """Each of the item's grades the catalogue holds, its place on its project's scale (in
        Taiga's order) and the scale's length."""
        for kind, grade_id in item.grades:
            scale = sorted(
                (g for g in self.grades if g.kind == kind and g.project == item.project),
                key=lambda g: (g.order, g.id),
            )
            place = next((at for at, grade in enumerate(scale) if grade.id == grade_id), None)
            if place is not None:
                yield scale[place], place, len(scale)

    def name_of(self, item: WorkItem) -> str:
        """The item's status as this catalogue names it (in its language), else as the item does."""
        return self.names.get(f"{item.kind}-{item.status}", item.status_name)

    def of(self, kind: Kind, project: int) -> tuple[Status, ...]:
        return tuple(
            sorted(
                (s for s in self.statuses if s.kind == kind and s.project == project), key=lambda s: s.order
            )
        )


@dataclass(frozen=True)
class Tokens:
    access: str
    refresh: str
    obtained: float

    @property
    def expires(self) -> float:
        """When the access token expires (from its `exp` claim; far away when unreadable)."""
        return jwt_expiry(self.access) or self.obtained + 86400


def jwt_expiry(token: str) -> float | None:
    """The `exp` of a JWT, read without verifying it (only to renew in time)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        exp = claims.get("exp")
        return float(exp) if isinstance(exp, int | float) else None
    except (IndexError, ValueError, AttributeError):
        return None


# --- parsing -----------------------------------------------------------------------------------


def _bad(key: str) -> UpstreamBadResponse:
    return UpstreamBadResponse(
        UPSTREAM,
        Reason.of(N_("%(upstream)s returned a malformed '%(key)s'"), upstream=UPSTREAM, key=key),
        f"malformed field {key!r}",
    )


def parse_date(value: Any, key: str = "due_date") -> date | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _bad(key)
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise _bad(key) from None


def parse_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _int(raw: Any, key: str) -> int:
    value: int = require(raw, key, int, UPSTREAM)
    return value


def _extra(raw: dict[str, Any], key: str) -> dict[str, Any]:
    found = raw.get(key)
    return found if isinstance(found, dict) else {}


def parse_item(kind: Kind, raw: Any) -> WorkItem:
    """A task, user story or issue from a list or detail answer; missing required fields raise."""
    item_id = _int(raw, "id")
    project = _extra(raw, "project_extra_info")
    status = _extra(raw, "status_extra_info")
    assigned = raw.get("assigned_to")
    assignees = [assigned] if isinstance(assigned, int) else []
    if kind == "us":
        users = raw.get("assigned_users")
        assignees += [u for u in users if isinstance(u, int)] if isinstance(users, list) else []
    closed = raw.get("is_closed", status.get("is_closed", False))
    return WorkItem(
        kind=kind,
        id=item_id,
        ref=_int(raw, "ref"),
        subject=str(require(raw, "subject", str, UPSTREAM)),
        project=_int(raw, "project"),
        project_name=str(project.get("name") or ""),
        project_slug=str(project.get("slug") or ""),
        status=_int(raw, "status"),
        status_name=str(status.get("name") or ""),
        status_color=str(status.get("color") or ""),
        is_closed=bool(closed),
        assignees=tuple(dict.fromkeys(assignees)),
        due_date=parse_date(raw.get("due_date")),
        is_blocked=bool(raw.get("is_blocked")),
        blocked_note=str(raw.get("blocked_note") or ""),
        modified=parse_datetime(raw.get("modified_date")),
        version=_int(raw, "version"),
        milestone=raw.get("milestone") if isinstance(raw.get("milestone"), int) else None,
        sprint=str(raw.get("milestone_name") or raw.get("milestone_slug") or ""),
        grades=_grades(raw) if kind == "issue" else (),
    )


def _grades(raw: Mapping[str, Any]) -> tuple[tuple[GradeKind, int], ...]:
    """An issue's type, severity and priority ids (Taiga may give null for one: left out)."""
    kinds: tuple[GradeKind, ...] = ("type", "severity", "priority")
    return tuple((kind, raw[kind]) for kind in kinds if type(raw.get(kind)) is int)


def parse_sprint(raw: Any, projects: Mapping[int, Project]) -> Sprint:
    project_id = _int(raw, "project")
    extra = _extra(raw, "project_extra_info")
    known = projects.get(project_id)
    finish = parse_date(require(raw, "estimated_finish", str, UPSTREAM), "estimated_finish")
    assert finish is not None
    return Sprint(
        id=_int(raw, "id"),
        name=str(require(raw, "name", str, UPSTREAM)),
        slug=str(raw.get("slug") or ""),
        project=project_id,
        project_name=str(extra.get("name") or (known.name if known else "")),
        project_slug=str(extra.get("slug") or (known.slug if known else "")),
        start=parse_date(raw.get("estimated_start"), "estimated_start"),
        finish=finish,
        closed=bool(raw.get("closed")),
    )


def parse_person(raw: Any) -> Person:
    return Person(
        id=_int(raw, "id"),
        username=str(require(raw, "username", str, UPSTREAM)),
        full_name=str(raw.get("full_name_display") or raw.get("full_name") or ""),
    )


def parse_project(raw: Any) -> Project:
    members = raw.get("members")
    ids: list[int] = []
    if isinstance(members, list):  # ids in lists, objects in a project's detail
        for member in members:
            if isinstance(member, int):
                ids.append(member)
            elif isinstance(member, dict) and isinstance(member.get("id"), int):
                ids.append(member["id"])
    return Project(
        id=_int(raw, "id"),
        name=str(require(raw, "name", str, UPSTREAM)),
        slug=str(require(raw, "slug", str, UPSTREAM)),
        members=tuple(ids),
    )


def _setting(raw: Any) -> dict[str, Any]:
    """What a project's status, issue type, severity and priority all have (`order` 0 if unknown)."""
    return {
        "id": _int(raw, "id"),
        "project": _int(raw, "project"),
        "name": str(require(raw, "name", str, UPSTREAM)),
        "color": str(raw.get("color") or ""),
        "order": raw.get("order") if isinstance(raw.get("order"), int) else 0,
    }


def parse_status(kind: Kind, raw: Any) -> Status:
    return Status(kind=kind, is_closed=bool(raw.get("is_closed")), **_setting(raw))


def parse_grade(kind: GradeKind, raw: Any) -> Grade:
    return Grade(kind=kind, **_setting(raw))


def _list(data: Any, what: str) -> list[Any]:
    if not isinstance(data, list):
        raise UpstreamBadResponse(
            UPSTREAM,
            Reason.of(N_("%(upstream)s returned a malformed '%(key)s'"), upstream=UPSTREAM, key=what),
            f"{what}: not a list",
        )
    return data


# --- the client --------------------------------------------------------------------------------


class TaigaClient:
    """Reads the open work of every project the service account sees, and sets a status.

    `credentials` holds `username` and `password` (the service account); `store` is shared by
    every worker (and replica, with Redis): the tokens live there, and its lock makes a token
    refresh single-flight.
    """

    ENDPOINTS: Mapping[Kind, str] = {"task": "tasks", "us": "userstories", "issue": "issues"}
    STATUS_ENDPOINTS: Mapping[Kind, str] = {
        "task": "task-statuses",
        "us": "userstory-statuses",
        "issue": "issue-statuses",
    }
    GRADE_ENDPOINTS: Mapping[GradeKind, str] = {
        "type": "issue-types",
        "severity": "severities",
        "priority": "priorities",
    }

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        credentials: Mapping[str, str],
        limits: HttpLimits | None = None,
        verify: bool | str = True,
        store: Store | None = None,
        page_size: int = 100,
        max_pages: int = 20,
        language: str = "en",
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.limits = limits or HttpLimits()
        self.username = credentials.get("username", "")
        self._password = credentials.get("password", "")
        self.store: Store = store if store is not None else LocalStore()
        self.page_size = page_size
        self.max_pages = max_pages
        self._http = BoundedJsonClient(
            UPSTREAM,
            session,
            self.limits,
            verify,
            headers={"Accept-Language": language},
            throttle_headers=(THROTTLE_HEADER,),
        )
        account = hashlib.blake2b(f"{self.base_url}\x1f{self.username}".encode(), digest_size=8).hexdigest()
        self.token_key = f"taiga:tokens:{account}"
        # The tokens act as the service account: encrypted at rest in the shared store, under a
        # key every worker and replica derives from the account's password (and nobody else has).
        self._sealer = Fernet(base64.urlsafe_b64encode(derive_key(self._password or "-", "taiga-tokens")))
        self._tokens: Tokens | None = None
        self._renewing = threading.Lock()
        self._people: dict[str, tuple[float, Person | None]] = {}
        self.me: Person | None = None  # the service account, once logged in

    # --- reading -----------------------------------------------------------------------------

    def board(self) -> Board:
        """Open tasks, user stories and issues, open sprints, people and projects: one shared snapshot."""
        deadline = time.monotonic() + self.limits.timeout
        projects, cut_projects = self._pages("projects", {}, deadline)
        known = {p.id: p for p in map(parse_project, projects)}
        items: list[WorkItem] = []
        cut_items = False
        for kind, path in self.ENDPOINTS.items():
            found, cut_list = self._pages(path, {"status__is_closed": "false"}, deadline)
            items += [parse_item(kind, raw) for raw in found]
            cut_items = cut_items or cut_list
        sprints, cut_sprints = self._pages("milestones", {"closed": "false"}, deadline)
        people, cut_people = self._pages("users", {}, deadline)
        return Board(
            items=tuple(item for item in items if not item.is_closed),
            sprints=tuple(parse_sprint(raw, known) for raw in sprints),
            people=tuple(parse_person(raw) for raw in people),
            projects=tuple(known.values()),
            truncated=cut_projects or cut_items or cut_sprints or cut_people,
        )

    def catalog(self, language: str | None = None) -> Catalog:
        """Every task, user-story and issue status of the projects the account sees, and every
        issue type, severity and priority, with colours, named in `language` (Taiga translates
        its default names: "In progress" is "En cours", "Critical" "Critique")."""
        deadline = time.monotonic() + self.limits.timeout
        statuses: list[Status] = []
        for kind, path in self.STATUS_ENDPOINTS.items():
            found, _ = self._pages(path, {}, deadline, language)
            statuses += [parse_status(kind, raw) for raw in found]
        grades: list[Grade] = []
        for grade_kind, path in self.GRADE_ENDPOINTS.items():
            try:
                found, _ = self._pages(path, {}, deadline, language)
                grades += [parse_grade(grade_kind, raw) for raw in found]
            except UpstreamBadResponse as error:
                # What the cards point out of an issue, not what they need: a Taiga that has no
                # such list (404) or answers it unreadably still gives its statuses, and the
                # status menus work.
                log.warning(
                    "Taiga's %s could not be read: issues are shown without them",
                    path,
                    extra={"event": "taiga_grades_unread", "path": path, "detail": error.detail},
                )
        return Catalog(tuple(statuses), tuple(grades))

    def item(self, kind: Kind, item_id: int, language: str | None = None) -> WorkItem:
        """One task, user story or issue, fresh (to check who it is assigned to before a change),
        its status named in `language`."""
        answer = self._call("GET", f"{self.ENDPOINTS[kind]}/{int(item_id)}", language=language)
        return parse_item(kind, answer.data)

    def user_by_username(self, username: str, cache_for: float = 300.0) -> Person | None:
        """The Taiga user with this username (None: no such account), cached `cache_for` s."""
        key = username.casefold()
        cached = self._people.get(key)
        if cached is not None and time.monotonic() - cached[0] < cache_for:
            return cached[1]
        try:
            answer = self._call("GET", "users/by_username", params={"username": username})
            person: Person | None = parse_person(answer.data)
        except UpstreamBadResponse as error:
            if not error.detail.endswith("HTTP 404"):
                raise
            person = None
        self._people[key] = (time.monotonic(), person)
        return person

    # --- changing ---------------------------------------------------------------------------

    def set_status(
        self, kind: Kind, item_id: int, status: int, version: int, language: str | None = None
    ) -> WorkItem:
        """PATCH the status with the version the user saw; a stale one is UpstreamConflict. The
        item comes back with its status named in `language`."""
        try:
            answer = self._call(
                "PATCH",
                f"{self.ENDPOINTS[kind]}/{int(item_id)}",
                json_body={"status": int(status), "version": int(version)},
                language=language,
            )
        except UpstreamRejected as error:
            body = error.body
            if isinstance(body, dict) and "version" in body:
                raise UpstreamConflict(
                    UPSTREAM, conflict_reason(UPSTREAM), f"{error.detail}: {body['version']}"
                ) from error
            raise
        try:
            return parse_item(kind, answer.data)
        except UpstreamError as error:  # made, but its answer cannot be read
            error.changing = True
            raise

    # --- pages ------------------------------------------------------------------------------

    def _pages(
        self, path: str, params: Mapping[str, str], deadline: float, language: str | None = None
    ) -> tuple[list[Any], bool]:
        """Every page of a list, following `x-pagination-next`, up to `max_pages` (then truncated)."""
        found: list[Any] = []
        page = 1
        while True:
            query = {**params, "page_size": str(self.page_size), "page": str(page)}
            try:
                answer = self._call("GET", path, params=query, deadline=deadline, language=language)
            except UpstreamBadResponse as error:
                if page > 1 and error.detail.endswith("HTTP 404"):  # the list shrank between two pages
                    return found, False
                raise
            found += _list(answer.data, path)
            following = next_page(answer)
            if following is None:
                return found, False
            if page >= self.max_pages:
                log.warning(
                    "Taiga list longer than the page cap: truncated",
                    extra={"event": "taiga_truncated", "path": path, "pages": page},
                )
                return found, True
            page = following if following > page else page + 1

    # --- authentication ------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        deadline: float | None = None,
        language: str | None = None,
    ) -> JsonResponse:
        """One API call with the service account's token; a 401 renews the token once, then reports.
        `language` is sent as Accept-Language (Taiga's names of its default statuses follow it)."""
        tokens = self._current_tokens(deadline)
        headers = {"Accept-Language": language} if language else {}
        try:
            return self._send(method, path, tokens, params, json_body, deadline, headers)
        except UpstreamAuthError as error:
            if not error.detail.endswith("HTTP 401"):
                raise  # a 403 is about the item, not the token
            log.info("Taiga refused the access token: renewing it", extra={"event": "taiga_token_refused"})
        tokens = self._renew(tokens, deadline)
        return self._send(method, path, tokens, params, json_body, deadline, headers)

    def _send(
        self,
        method: str,
        path: str,
        tokens: Tokens,
        params: Mapping[str, str] | None,
        json_body: Any,
        deadline: float | None,
        headers: Mapping[str, str],
    ) -> JsonResponse:
        assert tokens.access, "never call Taiga without a token: its lists answer [] then"
        return self._http.request(
            method,
            self.base_url + path,
            params=params,
            json_body=json_body,
            deadline=deadline,
            headers={**headers, "Authorization": f"Bearer {tokens.access}"},
        )

    def _current_tokens(self, deadline: float | None) -> Tokens:
        """The tokens to use: this process's, else the shared store's, else a login; renewed near expiry."""
        tokens = self._tokens
        if tokens is None or tokens.expires - time.time() < EXPIRY_MARGIN:
            stored = self._read_store()
            if stored is not None:
                tokens = self._tokens = stored
        if tokens is None:
            return self._renew(None, deadline)
        if tokens.expires - time.time() < EXPIRY_MARGIN:
            return self._renew(tokens, deadline)
        return tokens

    def _renew(self, stale: Tokens | None, deadline: float | None) -> Tokens:
        """New tokens, made once for every worker and replica.

        Under the store's lock (and a thread lock): if another process already replaced the
        stale tokens, use theirs; else refresh (the refresh token works once), and log in
        afresh when the refresh is refused. Without the lock, wait for whoever holds it.
        """
        give_up = deadline if deadline is not None else time.monotonic() + self.limits.timeout
        with self._renewing:
            while True:
                stored = self._read_store()
                if stored is not None and (stale is None or stored.access != stale.access):
                    self._tokens = stored
                    return stored
                lock = self.store.try_lock(self.token_key, ttl=self.limits.timeout + 2)
                if lock is not None:
                    try:
                        stored = self._read_store()
                        if stored is not None and (stale is None or stored.access != stale.access):
                            self._tokens = stored
                            return stored
                        tokens = self._refresh_or_login(stored or stale, deadline)
                        self._write_store(tokens)
                        self._tokens = tokens
                        return tokens
                    finally:
                        lock.release()
                if time.monotonic() > give_up:
                    raise UpstreamUnavailable(
                        UPSTREAM,
                        Reason.of(N_("%(upstream)s is taking too long to answer"), upstream=UPSTREAM),
                        "waited too long for another process renewing the Taiga token",
                        cause="timeout",
                    )
                time.sleep(0.05)

    def _refresh_or_login(self, previous: Tokens | None, deadline: float | None) -> Tokens:
        if previous is not None and previous.refresh:
            try:
                answer = self._http.request(
                    "POST",
                    self.base_url + "auth/refresh",
                    json_body={"refresh": previous.refresh},
                    deadline=deadline,
                    changes=False,
                )
                data = answer.data
                return Tokens(
                    str(require(data, "auth_token", str, UPSTREAM)),
                    str(require(data, "refresh", str, UPSTREAM)),
                    time.time(),
                )
            except (UpstreamAuthError, UpstreamRejected) as error:
                log.info(
                    "Taiga refused the refresh token: logging in again",
                    extra={"event": "taiga_refresh_refused", "detail": error.detail},
                )
        return self.login(deadline)

    def login(self, deadline: float | None = None) -> Tokens:
        """Log the service account in and check that Taiga knows the token (/users/me)."""
        if not self.username or not self._password:
            raise UpstreamAuthError(
                UPSTREAM,
                Reason.of(
                    N_("%(upstream)s: the portal's service account is not configured"), upstream=UPSTREAM
                ),
                "no username or password",
            )
        try:
            answer = self._http.request(
                "POST",
                self.base_url + "auth",
                json_body={"type": "normal", "username": self.username, "password": self._password},
                deadline=deadline,
                changes=False,
            )
        except (UpstreamAuthError, UpstreamRejected) as error:
            raise UpstreamAuthError(
                UPSTREAM,
                Reason.of(SERVICE_ACCOUNT_REFUSED, upstream=UPSTREAM),
                error.detail,
            ) from error
        data = answer.data
        tokens = Tokens(
            str(require(data, "auth_token", str, UPSTREAM)),
            str(require(data, "refresh", str, UPSTREAM)),
            time.time(),
        )
        me = self._send("GET", "users/me", tokens, None, None, deadline, {})
        self.me = parse_person(me.data)
        log.info("logged in to Taiga", extra={"event": "taiga_login", "account": self.me.username})
        return tokens

    def _read_store(self) -> Tokens | None:
        try:
            sealed = self.store.get(self.token_key)
            if not isinstance(sealed, str):
                return None
            access, refresh, obtained = json.loads(self._sealer.decrypt(sealed.encode()))
            return Tokens(str(access), str(refresh), float(obtained))
        except (InvalidToken, ValueError, TypeError):  # not ours, or from another password
            return None
        except Exception:  # an unreadable entry: log in again
            log.warning("Taiga tokens unreadable in the store", extra={"event": "taiga_tokens_unreadable"})
            return None

    def _write_store(self, tokens: Tokens) -> None:
        sealed = self._sealer.encrypt(json.dumps([tokens.access, tokens.refresh, tokens.obtained]).encode())
        self.store.set(self.token_key, sealed.decode(), TOKEN_TTL)

    def forget_tokens(self) -> None:
        """Drop this process's tokens (tests: the next call reads the store or logs in)."""
        self._tokens = None


def next_page(answer: JsonResponse) -> int | None:
    """The page number `x-pagination-next` points to, or None on the last page."""
    link = answer.headers.get("x-pagination-next")
    if not link:
        return None
    values = parse_qs(urlsplit(link).query).get("page") or []
    try:
        return int(values[0])
    except (IndexError, ValueError):
        return None


__all__ = [
    "UPSTREAM",
    "Board",
    "Catalog",
    "Grade",
    "GradeKind",
    "Kind",
    "Person",
    "Project",
    "Sprint",
    "Status",
    "TaigaClient",
    "Tokens",
    "UpstreamError",
    "WorkItem",
]
