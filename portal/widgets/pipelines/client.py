"""GitLab's REST API v4, as the pipelines card reads it (docs/upstream-apis.md § 4).

Pure Python, no Flask. A service token (scope `read_api`) goes in the `PRIVATE-TOKEN` header.
Project ids or paths are URL-encoded (`group%2Fproject`); lists follow `X-Next-Page` up to
`max_pages`; a 429 raises `UpstreamUnavailable` with the `Retry-After` (or
`RateLimit-ResetTime`) the breaker then waits for; the `RateLimit-*` headers of every answer
go to `on_quota`.

A pipeline in a list has no user nor duration: they come from its detail
(`/projects/:id/pipelines/:pipeline_id`), kept in `memo` (the portal's shared store) under the
pipeline's id, *status and `updated_at`*: a finished pipeline's detail is fetched once, a running
one's again only when it changes, and a retried one's (failed, running, failed again: the same
status) anew, with its new duration. A merge request's pipeline status comes from the pipelines read
with it (the newest of its head commit), else from its detail, kept while it is finished and
for `unsettled_ttl` seconds while it runs.

No call names a person. Everyone's *Mine* tab is cut from `team_work`, read once for everyone:
each project's latest pipelines with who ran each, and its open merge requests with their
reviewers and assignees. A call per person and per project every TTL made GitLab's load grow
with the people who look: 1,000 people were ~8,000 calls a minute, where a self-managed GitLab
that turns its rate limits on allows a user 7,200 an hour by default.

Why not python-gitlab: it reads every body whole (no size cap, and a body dripped slowly is
never cut, since requests' read timeout counts per read), retries 429s and 5xx by sleeping in
the caller's thread by default, and follows redirects; `BoundedJsonClient` gives the bounds
every upstream of the portal has, and the few endpoints used here take a page each.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any, NoReturn, Protocol, TypeVar
from urllib.parse import parse_qs, quote, urlsplit

import requests

from ...upstreams.errors import (
    N_,
    Reason,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRedirected,
    UpstreamRejected,
)
from ...upstreams.http import BoundedJsonClient, HttpLimits, Quota, require

log = logging.getLogger(__name__)

UPSTREAM = "GitLab"
API = "/api/v4"
# Every status GitLab documents, then the two newer ones seen in its source; anything else is
# shown as an unknown status, never as one of these.
STATUSES = (
    "created",
    "waiting_for_resource",
    "preparing",
    "pending",
    "running",
    "success",
    "failed",
    "canceled",
    "skipped",
    "manual",
    "scheduled",
    "canceling",
    "waiting_for_callback",
)
FINISHED = frozenset({"success", "failed", "canceled", "skipped"})  # will not change by itself
# GitLab keeps `status: success` for a pipeline whose allowed-to-fail jobs failed, and says
# "passed with warnings" in its detail (`detailed_status.group`): the card shows it as its own.
WARNINGS_GROUP = "success-with-warnings"
PASSED_WITH_WARNINGS = "success_with_warnings"
SHOWN = (*STATUSES, PASSED_WITH_WARNINGS)  # the states the card draws (besides "unknown")
MAX_PER_PAGE = 100  # GitLab's own maximum
DETAIL_TTL = 86_400.0  # a detail kept under its status and update time: one day (it stays as it is)
# Details of a whole window fetched at once: a cold store (a new install) has a window's worth
# to read, one call each, within one timeout. Four at a time keeps GitLab's load gentle.
DETAILS_AT_ONCE = 4
# Said of a project the token may not read (bench/faults.py looks for these words).
PROJECT_FORBIDDEN = N_("%(upstream)s does not let the portal's token read project %(project)s (HTTP 403)")
MOVED_SAID_EVERY = 3600.0  # seconds between two log lines about the same moved project

# Said of a project whose path GitLab answers with a redirect that is not its own "moved" answer.
PROJECT_REDIRECTED = N_(
    "%(upstream)s answered project %(project)s with a redirect the portal does not follow (HTTP %(status)s)"
)
T = TypeVar("T")
R = TypeVar("R")
AVATAR_TYPES = {  # content types accepted for an avatar, and how their bytes begin
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}


class Memo(Protocol):
    """Where details are kept between fetches (the portal's store: every worker sees them)."""

    def get(self, key: str) -> Any: ...
    def set(self, key: str, value: Any, timeout: float) -> None: ...


# --- what the card shows ---------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    username: str
    name: str
    web_url: str | None = None
    avatar_url: str | None = None


@dataclass(frozen=True)
class PipelineDetail:
    """What only a pipeline's detail says: who triggered it, when it ran, how long it took."""

    user: Person | None
    started_at: datetime | None
    finished_at: datetime | None
    duration: float | None  # seconds; None while it runs
    warnings: bool = False  # passed with warnings (`detailed_status.group`)


@dataclass(frozen=True)
class Pipeline:
    id: int
    project_id: int
    project: str  # the project's path ("group/project"), from its web URL or as configured
    status: str  # as GitLab says it (see `known_status`)
    ref: str
    sha: str
    source: str
    web_url: str | None
    created_at: datetime | None
    updated_at: datetime | None
    detail: PipelineDetail | None = None  # None: not fetched (yet)

    @property
    def shown_status(self) -> str:
        """The status, or "success_with_warnings" when its detail says it passed with warnings."""
        warned = self.status == "success" and self.detail is not None and self.detail.warnings
        return PASSED_WITH_WARNINGS if warned else self.status

    @property
    def known_status(self) -> str:
        """The state the card draws: `shown_status`, or "unknown" for one this portal does not know."""
        return self.shown_status if self.shown_status in SHOWN else "unknown"

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def ref_label(self) -> str:
        """The ref as GitLab's pages name it: a merge request's pipeline runs on
        `refs/merge-requests/42/head` (or `/merge`, `/train`), which GitLab shows as "!42"."""
        found = MERGE_REQUEST_REF.fullmatch(self.ref)
        return f"!{found.group(1)}" if found else self.ref


MERGE_REQUEST_REF = re.compile(r"refs/merge-requests/(\d+)/(?:head|merge|train)")


@dataclass(frozen=True)
class Project:
    id: int
    name: str
    path: str  # path_with_namespace
    web_url: str | None
    default_branch: str | None  # None for an empty repository
    archived: bool = False  # read-only in GitLab: no new pipeline will come


@dataclass(frozen=True)
class ProjectPipelines:
    """One project: the latest pipeline of its default branch and its most recent ones.

    Or, for a project GitLab does not show the portal's token (404, 403, a redirect elsewhere),
    why not (`problem`). `moved`: the configured path is an old one, which GitLab answered with
    the project's id (renamed or transferred); `project.path` is its new one.
    """

    project: Project | None
    latest: Pipeline | None  # of the default branch
    recent: tuple[Pipeline, ...]
    problem: Reason | None = None
    moved: bool = False


@dataclass(frozen=True)
class MyPipelines:
    """Pipelines a user triggered among the latest `window` of each project, newest first."""

    pipelines: tuple[Pipeline, ...]
    unreadable: tuple[str, ...] = ()  # configured projects GitLab did not show (404, 403)
    window: int = 0  # the latest pipelines of each project looked at
    unattributed: int = 0  # of those, how many whose detail (who ran it) is not known yet
    total: int = 0  # the user's among those looked at (the card shows the first ones)
    # The projects of all of them, newest first: each one's path and its page in GitLab.
    projects: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class MergeRequest:
    id: int
    iid: int
    project_id: int
    reference: str  # "group/project!12"
    title: str
    draft: bool
    web_url: str | None
    created_at: datetime | None
    author: Person | None
    sha: str
    reviewers: frozenset[str] = frozenset()  # usernames, casefolded
    assignees: frozenset[str] = frozenset()
    pipeline_status: str | None = None  # of its head pipeline; None: none, or not known
    reviewer: bool = False  # the user it was cut for is one of its reviewers
    assignee: bool = False  # ... one of its assignees

    @property
    def known_pipeline_status(self) -> str | None:
        status = self.pipeline_status
        return None if status is None else status if status in SHOWN else "unknown"


@dataclass(frozen=True)
class Reviews:
    """Open merge requests where the user is a reviewer or an assignee, newest first."""

    merge_requests: tuple[MergeRequest, ...]
    more: bool = False  # there were more than the card shows
    # How many wait for the user among those read (the card shows the first ones); GitLab may
    # hold more (`more` with a project's list cut at its page limit).
    total: int = 0


@dataclass(frozen=True)
class TeamWork:
    """What everyone's *Mine* tab is cut from (`mine.cut_for`), read once for everyone."""

    pipelines: tuple[Pipeline, ...]  # each project's latest `window`, newest first, with details
    merge_requests: tuple[MergeRequest, ...]  # open, with a reviewer or an assignee, newest first
    window: int
    unreadable: tuple[str, ...] = ()  # configured projects GitLab did not show (404, 403)
    more_requests: bool = False  # a project had more open merge requests than were read


@dataclass(frozen=True)
class Avatar:
    content_type: str
    data: bytes


# --- parsing -----------------------------------------------------------------------------------


def parse_time(value: Any) -> datetime | None:
    """GitLab's ISO 8601 times ("2026-08-11T11:28:34.085Z"); anything else is None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _text(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    return value if isinstance(value, str) else ""


def _url(value: Any) -> str | None:
    """A link to show: only http(s)."""
    return value if isinstance(value, str) and value.startswith(("https://", "http://")) else None


def project_of_url(web_url: str | None) -> str:
    """`group/sub/project` from `https://gitlab/group/sub/project/-/pipelines/47`, or ""."""
    if not web_url:
        return ""
    path = urlsplit(web_url).path
    return path.split("/-/", 1)[0].strip("/") if "/-/" in path else ""


def _person(raw: Any) -> Person | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("username"), str):
        return None
    return Person(
        username=raw["username"],
        name=_text(raw, "name") or raw["username"],
        web_url=_url(raw.get("web_url")),
        avatar_url=_url(raw.get("avatar_url")),
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def parse_pipeline(raw: Any, project: str = "") -> Pipeline:
    """A pipeline of a list (or a detail: the same fields and more)."""
    web_url = _url(raw.get("web_url")) if isinstance(raw, dict) else None
    return Pipeline(
        id=require(raw, "id", int, UPSTREAM),
        project_id=require(raw, "project_id", int, UPSTREAM),
        project=project_of_url(web_url) or project,
        status=require(raw, "status", str, UPSTREAM),
        ref=require(raw, "ref", str, UPSTREAM),
        sha=_text(raw, "sha"),
        source=_text(raw, "source"),
        web_url=web_url,
        created_at=parse_time(raw.get("created_at")),
        updated_at=parse_time(raw.get("updated_at")),
    )


def parse_detail(raw: Any) -> PipelineDetail:
    if not isinstance(raw, dict):
        raise UpstreamBadResponse(
            UPSTREAM,
            Reason.of(N_("%(upstream)s returned a malformed '%(key)s'"), upstream=UPSTREAM, key="pipeline"),
        )
    return PipelineDetail(
        user=_person(raw.get("user")),
        started_at=parse_time(raw.get("started_at")),
        finished_at=parse_time(raw.get("finished_at")),
        duration=_number(raw.get("duration")),
        warnings=_warned(raw),
    )


def _warned(raw: Mapping[str, Any]) -> bool:
    """A pipeline's detail says it passed with warnings (`detailed_status.group`)."""
    detailed = raw.get("detailed_status")
    return isinstance(detailed, dict) and detailed.get("group") == WARNINGS_GROUP


def head_pipeline_status(raw: Any) -> str:
    """The status of a merge request's head pipeline (its detail), or "" when it has none;
    "success_with_warnings" when it passed with warnings."""
    head = raw.get("head_pipeline") if isinstance(raw, dict) else None
    if not isinstance(head, dict):
        return ""
    status = _text(head, "status")
    return PASSED_WITH_WARNINGS if status == "success" and _warned(head) else status


def parse_project(raw: Any) -> Project:
    branch = raw.get("default_branch") if isinstance(raw, dict) else None
    return Project(
        id=require(raw, "id", int, UPSTREAM),
        name=require(raw, "name", str, UPSTREAM),
        path=require(raw, "path_with_namespace", str, UPSTREAM),
        web_url=_url(raw.get("web_url")),
        default_branch=branch if isinstance(branch, str) and branch else None,
        archived=raw.get("archived") is True,
    )


def _usernames(raw: Any) -> set[str]:
    people = raw if isinstance(raw, list) else []
    return {
        p["username"].casefold() for p in people if isinstance(p, dict) and isinstance(p.get("username"), str)
    }


def parse_merge_request(raw: Any) -> MergeRequest:
    """A merge request of a list, with who reviews it and who is assigned (no one's view of it)."""
    references = raw.get("references") if isinstance(raw, dict) else None
    reference = _text(references, "full") if isinstance(references, dict) else ""
    # `draft` since GitLab 14.0; `work_in_progress` before (and still sent, deprecated).
    draft = raw.get("draft") if isinstance(raw.get("draft"), bool) else raw.get("work_in_progress") is True
    iid = require(raw, "iid", int, UPSTREAM)
    web_url = _url(raw.get("web_url"))
    return MergeRequest(
        id=require(raw, "id", int, UPSTREAM),
        iid=iid,
        project_id=require(raw, "project_id", int, UPSTREAM),
        reference=reference or f"{project_of_url(web_url)}!{iid}",
        title=require(raw, "title", str, UPSTREAM),
        draft=bool(draft),
        web_url=web_url,
        created_at=parse_time(raw.get("created_at")),
        author=_person(raw.get("author")),
        sha=_text(raw, "sha"),
        reviewers=frozenset(_usernames(raw.get("reviewers"))),
        assignees=frozenset(_usernames(raw.get("assignees")) | _usernames([raw.get("assignee")])),
    )


# --- the client --------------------------------------------------------------------------------


class GitLabClient:
    """Reads projects, pipelines, merge requests and users with a service token."""

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        credentials: Mapping[str, str],
        timeout: HttpLimits | None = None,
        verify: bool | str = True,
        *,
        max_pages: int = 5,
        page_size: int = MAX_PER_PAGE,
        memo: Memo | None = None,
        unsettled_ttl: float = 60.0,
        on_quota: Callable[[Quota], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api = self.base_url + API
        self.limits = timeout or HttpLimits()
        self.max_pages = max_pages
        self.page_size = max(1, min(page_size, MAX_PER_PAGE))
        self.memo = memo
        self.unsettled_ttl = unsettled_ttl
        token = credentials.get("token", "")
        self._http = BoundedJsonClient(
            UPSTREAM,
            session,
            self.limits,
            verify,
            headers={"PRIVATE-TOKEN": token} if token else {},
            throttle_headers=("RateLimit-ResetTime",),
            on_quota=on_quota,
        )
        # When each moved project was last logged: said once an hour per process, not at each
        # of the card's refreshes (two a minute, in the logs every SRE reads).
        self._told_moved: dict[str, float] = {}

    # --- the resources the card reads -------------------------------------------------------

    def project_pipelines(self, project: str, recent: int) -> ProjectPipelines:
        """A project, its `recent` latest pipelines and the latest of its default branch, with details.

        A project GitLab does not show the token (404, 403) is an answer, not a failure: the
        card says so in that project's section, and GitLab's circuit breaker (shared by every
        project and user) does not count it against GitLab.
        """
        deadline = self._deadline()
        try:
            found, moved = self._find_project(project, deadline)
        except UpstreamError as exc:
            if not project_refused(exc):
                raise
            return ProjectPipelines(None, None, (), problem=exc.reason)
        if moved and time.monotonic() - self._told_moved.get(project, -MOVED_SAID_EVERY) >= MOVED_SAID_EVERY:
            self._told_moved[project] = time.monotonic()
            log.warning(
                "GitLab project moved: update widgets.pipelines.projects",
                extra={"event": "gitlab_project_moved", "configured": project, "path": found.path},
            )
        pipelines = self._pipelines(found.id, {}, recent, deadline, found.path)
        latest = None
        if found.default_branch is not None:
            latest = next((p for p in pipelines if p.ref == found.default_branch), None)
            if latest is None:  # not among the most recent: one more (small) list
                on_branch = self._pipelines(found.id, {"ref": found.default_branch}, 1, deadline, found.path)
                latest = on_branch[0] if on_branch else None
        shown = [*pipelines, *([latest] if latest is not None and latest not in pipelines else [])]
        detailed = {p.id: p for p in self.with_details(shown, deadline)}
        return ProjectPipelines(
            project=found,
            latest=detailed[latest.id] if latest is not None else None,
            recent=tuple(detailed[p.id] for p in pipelines),
            moved=moved,
        )

    def team_work(self, projects: Sequence[str], window: int) -> TeamWork:
        """Each project's latest `window` pipelines, with who ran each, and its open merge requests.

        Read once for everyone, whatever the number of people (no call names one); each
        person's *Mine* is cut from it. A merge request nobody reviews nor is assigned is left
        out: it is no one's. A project GitLab does not show (404, 403, a redirect the portal does
        not follow) is named in `unreadable`; a moved one is read by its id.
        """
        deadline = self._deadline()
        pipelines: list[Pipeline] = []
        requests_: list[MergeRequest] = []
        unreadable: list[tuple[str, UpstreamError]] = []  # the projects, and why
        more = False
        # The projects side by side, as their details are: a cold fetch within one timeout.
        read_project = partial(self._project_work, window=window, deadline=deadline)
        reads = self._each(projects, read_project, DETAILS_AT_ONCE)
        for project, read in zip(projects, reads, strict=True):
            if isinstance(read, UpstreamError):
                unreadable.append((project, read))
                continue
            listed, opened, truncated = read
            pipelines += listed
            requests_ += [m for m in map(parse_merge_request, opened) if m.reviewers or m.assignees]
            more = more or truncated
        if projects and len(unreadable) == len(projects):
            # Not one project shown: the token's access, not the projects. The part fails, so
            # the last good Mine stays shown (stale) with why; GitLab itself answered, so its
            # breaker does not count it (UpstreamRejected).
            _, first = unreadable[0]
            raise UpstreamRejected(UPSTREAM, first.reason, first.detail, status=first.status or 403)
        detailed = self.with_details(pipelines, deadline, at_once=DETAILS_AT_ONCE)
        heads = {(p.project_id, p.sha): p.shown_status for p in sorted(detailed, key=lambda p: p.id) if p.sha}
        requests_ = self._each(requests_, lambda m: self._head_status(m, heads, deadline), DETAILS_AT_ONCE)
        return TeamWork(
            pipelines=tuple(sorted(detailed, key=_newest, reverse=True)),
            merge_requests=tuple(sorted(requests_, key=lambda m: m.id, reverse=True)),
            window=window,
            unreadable=tuple(project for project, _ in unreadable),
            more_requests=more,
        )

    def _project_work(
        self, project: str, window: int, deadline: float
    ) -> tuple[list[Pipeline], list[dict[str, Any]], bool] | UpstreamError:
        """A project's latest pipelines, its open merge requests (raw) and whether there were
        more of them; or, for a project GitLab does not show (404, 403, a redirect the portal does
        not follow), why not. A moved project (its old path configured) is read by its id."""
        try:
            try:
                return self._work_of(project, project, window, deadline)
            except ProjectMoved as moved:
                return self._work_of(moved.project_id, project, window, deadline)
        except UpstreamError as exc:
            if not project_refused(exc):  # the others concern every project: the part fails
                raise
            return exc

    def _work_of(
        self, project: str | int, label: str, window: int, deadline: float
    ) -> tuple[list[Pipeline], list[dict[str, Any]], bool]:
        """A project's latest `window` pipelines, its open merge requests and whether there were more."""
        listed = self._pipelines(project, {}, window, deadline, label)
        opened, truncated = self._project_list(
            project,
            "/merge_requests",
            {"state": "opened", "order_by": "created_at", "sort": "desc"},
            self.max_pages * self.page_size,
            deadline,
        )
        return listed, opened, truncated

    def _head_status(
        self, request: MergeRequest, heads: Mapping[tuple[int, str], str], deadline: float
    ) -> MergeRequest:
        """The merge request with its head pipeline's status: the newest pipeline of its head
        commit among those read, else from its detail (kept, see `_with_pipeline`)."""
        status = heads.get((request.project_id, request.sha))
        if status is not None:
            return replace(request, pipeline_status=status)
        return self._with_pipeline(request, deadline)

    def user(self, username: str) -> Person | None:
        """A user by username (`/users?username=`: always a list; case-insensitive), or None."""
        found = self._http.get(f"{self.api}/users", params={"username": username}, deadline=self._deadline())
        if not isinstance(found, list):
            raise self._malformed("users")
        return next((person for raw in found if (person := _person(raw)) is not None), None)

    def avatar(self, url: str, max_bytes: int) -> Avatar:
        """An avatar image: PNG, JPEG, GIF or WebP only, whose bytes say so, within `max_bytes`.

        The portal's token goes with it only to GitLab itself: an avatar from another host
        (Gravatar, for people without a picture of their own) is fetched without credentials."""
        own = origin_of(url) == origin_of(self.base_url)
        answer = self._http.get_bytes(
            url, accept=", ".join(AVATAR_TYPES), max_bytes=max_bytes, credentials=own
        )
        content_type = answer.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        magic = AVATAR_TYPES.get(content_type)
        if magic is None or not answer.body.startswith(magic):
            raise UpstreamBadResponse(
                UPSTREAM,
                Reason.of(N_("%(upstream)s sent an avatar that is not an image"), upstream=UPSTREAM),
                f"avatar: {content_type or 'no content type'}",
            )
        return Avatar(content_type, answer.body)

    # --- details, kept under their status and update time -------------------------------------

    def with_details(
        self, pipelines: Sequence[Pipeline], deadline: float, at_once: int = 1
    ) -> list[Pipeline]:
        """The pipelines with their detail: from the memo, else one call each (while time is left),
        `at_once` calls at a time.

        A detail GitLab will not give (a pipeline deleted meanwhile, a 500) is left out: the
        card shows the pipeline without it, and the next fetch tries again. A 429 or refused
        credentials stop the fetch: they concern every call.
        """

        def detailed(pipeline: Pipeline) -> Pipeline:
            # Under its update time too: a retried pipeline ends in the same status, with another detail.
            updated = pipeline.updated_at.isoformat() if pipeline.updated_at else ""
            detail = self._detail(
                f"gitlab:pipeline:{pipeline.project_id}:{pipeline.id}:{pipeline.status}:{updated}",
                f"/projects/{pipeline.project_id}/pipelines/{pipeline.id}",
                deadline,
                parse_detail,
                lambda _: DETAIL_TTL,
            )
            return replace(pipeline, detail=detail) if isinstance(detail, PipelineDetail) else pipeline

        return self._each(pipelines, detailed, at_once)

    @staticmethod
    def _each(items: Iterable[T], call: Callable[[T], R], at_once: int) -> list[R]:
        """`call` on each item, in order, `at_once` at a time (each call keeps to the fetch's deadline)."""
        items = list(items)
        if at_once <= 1 or len(items) <= 1:
            return [call(item) for item in items]
        stopped: list[BaseException] = []  # what stopped the fetch (a 429, refused credentials)

        def guarded(item: T) -> R:
            if stopped:  # no call after it: only those already under way finish
                raise stopped[0]
            try:
                return call(item)
            except BaseException as exc:
                stopped.append(exc)
                raise

        pool = ThreadPoolExecutor(max_workers=min(at_once, len(items)), thread_name_prefix="gitlab")
        try:
            return list(pool.map(guarded, items))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _with_pipeline(self, request: MergeRequest, deadline: float) -> MergeRequest:
        """The merge request with its head pipeline's status (kept: long once finished)."""
        status = self._detail(
            f"gitlab:mr:{request.project_id}:{request.iid}:{request.sha}",
            f"/projects/{request.project_id}/merge_requests/{request.iid}",
            deadline,
            head_pipeline_status,
            lambda status: DETAIL_TTL
            if status in FINISHED | {PASSED_WITH_WARNINGS} or not status
            else self.unsettled_ttl,
        )
        return replace(request, pipeline_status=status or None) if isinstance(status, str) else request

    def _detail(
        self,
        key: str,
        path: str,
        deadline: float,
        parse: Callable[[Any], Any],
        ttl: Callable[[Any], float],
    ) -> Any:
        """A detail from the memo, else fetched (while time is left) and kept `ttl(value)` seconds.

        None when GitLab would not give it (the next fetch tries again); a 429 or a refused
        token raise.
        """
        found = self._remembered(key)
        if found is not None or deadline - time.monotonic() <= self.limits.timeout / 3:
            return found
        try:
            value = parse(self._http.get(f"{self.api}{path}", deadline=deadline))
        except UpstreamError as exc:
            if stops_the_fetch(exc):
                raise
            log.info("detail left out", extra={"event": "detail_skipped", "error": exc.message})
            return None
        self._remember(key, value, ttl(value))
        return value

    def _remembered(self, key: str) -> Any:
        if self.memo is None:
            return None
        try:
            return self.memo.get(key)
        except Exception:  # an unreadable entry is a miss (the store logs what it can)
            return None

    def _remember(self, key: str, value: Any, timeout: float) -> None:
        if self.memo is not None:
            self.memo.set(key, value, timeout)

    # --- lists and projects -------------------------------------------------------------------

    def _find_project(self, project: str, deadline: float) -> tuple[Project, bool]:
        """The project, and whether it moved: GitLab answered its path with its id, which is
        then read (once: never a second redirect, and only on GitLab's own origin)."""
        try:
            return self._project(project, deadline), False
        except ProjectMoved as moved:
            return self._project(moved.project_id, deadline), True

    def _project(self, project: str | int, deadline: float) -> Project:
        url = f"{self.api}/projects/{quote(str(project), safe='')}"
        try:
            raw = self._http.get(url, deadline=deadline)
        except UpstreamError as exc:
            self._reraise_for_project(str(project), exc, "")
        return parse_project(raw)

    def _pipelines(
        self, project: str | int, params: Mapping[str, Any], limit: int, deadline: float, label: str
    ) -> list[Pipeline]:
        params = {"order_by": "id", "sort": "desc", **params}
        items, _ = self._project_list(project, "/pipelines", params, limit, deadline)
        return [parse_pipeline(raw, label) for raw in items]

    def _project_list(
        self, project: str | int, rest: str, params: Mapping[str, Any], limit: int, deadline: float
    ) -> tuple[list[dict[str, Any]], bool]:
        """A list under a project (`rest`: "/pipelines"); its failures said of the project."""
        url = f"{self.api}/projects/{quote(str(project), safe='')}{rest}"
        try:
            return self._list(url, params, limit, deadline)
        except UpstreamError as exc:
            self._reraise_for_project(str(project), exc, rest)

    def _reraise_for_project(self, project: str, error: UpstreamError, rest: str) -> NoReturn:
        """Raise what a project's call failing says: moved (`ProjectMoved`, GitLab's answer to an
        old path), not shown (403, 404, another redirect: `_no_project`), or the error itself
        (which concerns every project)."""
        moved = self._moved_id(project, error, rest)
        if moved is not None:
            raise ProjectMoved(project, moved, error.status or 301) from error
        if project_refused(error):
            raise self._no_project(project, error.status or 404) from error
        raise error

    def _moved_id(self, project: str, error: UpstreamError, rest: str) -> int | None:
        """The project's id when `error` is GitLab's answer to an old path of it (16.7+): a 3xx
        to the same call by id (`/api/v4/projects/<id><rest>`), on GitLab's own origin. Only a
        path can have moved, as in GitLab (`project_moved?`)."""
        if not isinstance(error, UpstreamRedirected) or "/" not in project:
            return None
        if origin_of(error.location) != origin_of(self.base_url):
            return None  # credentials never leave GitLab's origin
        api = re.escape(urlsplit(self.api).path)
        found = re.fullmatch(rf"{api}/projects/([1-9][0-9]*){re.escape(rest)}", urlsplit(error.location).path)
        return int(found.group(1)) if found else None

    def _list(
        self, url: str, params: Mapping[str, Any], limit: int, deadline: float
    ) -> tuple[list[dict[str, Any]], bool]:
        """Up to `limit` items, following `X-Next-Page` (or `Link: rel="next"`) up to `max_pages`.

        Also says whether there were more than that.
        """
        items: list[dict[str, Any]] = []
        page: int | None = 1
        per_page = min(limit, self.page_size)
        pages = 0
        while page is not None and len(items) < limit and pages < self.max_pages:
            answer = self._http.request(
                "GET", url, params={**params, "per_page": per_page, "page": page}, deadline=deadline
            )
            if not isinstance(answer.data, list):
                raise self._malformed("list")
            items += [raw for raw in answer.data if isinstance(raw, dict)]
            page = next_page(answer.headers)
            pages += 1
        return items[:limit], page is not None or len(items) > limit

    # --- errors --------------------------------------------------------------------------------

    def _deadline(self) -> float:
        return time.monotonic() + self.limits.timeout

    @staticmethod
    def _no_project(project: str, status: int = 404) -> UpstreamBadResponse:
        if status == 403:
            message = PROJECT_FORBIDDEN
        elif 300 <= status < 400:
            message = PROJECT_REDIRECTED
        else:
            message = N_("%(upstream)s has no project %(project)s, or the portal's token may not read it")
        return UpstreamBadResponse(
            UPSTREAM,
            Reason.of(message, upstream=UPSTREAM, project=project, status=status),
            f"project {project!r}: HTTP {status}",
            status=status,
        )

    @staticmethod
    def _malformed(key: str) -> UpstreamBadResponse:
        return UpstreamBadResponse(
            UPSTREAM,
            Reason.of(N_("%(upstream)s returned a malformed '%(key)s'"), upstream=UPSTREAM, key=key),
            f"malformed {key}",
        )


class ProjectMoved(UpstreamBadResponse):
    """GitLab's answer to a project's old path (16.7+, after a rename or a transfer): the same
    call by the project's id (`project_id`), which the client makes itself."""

    def __init__(self, project: str, project_id: int, status: int = 301) -> None:
        super().__init__(
            UPSTREAM,
            Reason.of(N_("%(upstream)s moved project %(project)s"), upstream=UPSTREAM, project=project),
            f"project {project!r}: HTTP {status} to project {project_id}",
            status=status,
        )
        self.project_id = project_id


def project_refused(error: UpstreamError) -> bool:
    """GitLab does not show the project (403, 404) or answers it with a redirect the portal does
    not follow: that project's own answer, not a failure of GitLab."""
    status = error.status or 0
    return status in (403, 404) or 300 <= status < 400


def origin_of(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port (the default one written out), as browsers compare origins."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:  # not a port: no origin matches it
        return (scheme, "", -1)
    return (scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme))


def _newest(pipeline: Pipeline) -> tuple[bool, datetime | None, int]:
    """Newest first by creation time (a pipeline without one last), then by id."""
    return (pipeline.created_at is not None, pipeline.created_at, pipeline.id)


def stops_the_fetch(error: UpstreamError) -> bool:
    """A 429 or a refused token concern every call: the fetch stops (and the breaker waits).

    A 403 on one detail concerns that project only (the list showed the item): it is left out.
    """
    return error.retry_after is not None or error.status in (401, 429)


def next_page(headers: Mapping[str, str]) -> int | None:
    """The next page from `X-Next-Page` (empty on the last page), else from `Link: rel="next"`."""
    value = (headers.get("X-Next-Page") or "").strip()
    if value:
        return int(value) if value.isdigit() else None
    if "X-Next-Page" in headers:
        return None
    for link in requests.utils.parse_header_links(headers.get("Link", "")):
        if link.get("rel") == "next":
            pages = parse_qs(urlsplit(link.get("url", "")).query).get("page", [])
            return int(pages[0]) if pages and pages[0].isdigit() else None
    return None
