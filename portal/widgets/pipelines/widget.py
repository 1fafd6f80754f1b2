"""The pipelines card: the team's projects (shared) and mine (per user), from GitLab.

*Projects*: one part per configured project, shared by everyone (a project GitLab does not show
says so in its own section; the others still show). *Mine*: one part read once for everyone
(each project's latest `window` pipelines with who ran each, and its open merge requests) and
cut per person on the server (`mine.cut_for`): the pipelines they ran and the merge requests
where they are a reviewer or an assignee. So GitLab's load does not grow with the people who
look. Their GitLab username is the token claim `username_claim` (Keycloak's
`preferred_username` by default).

The user menu shows the user's GitLab avatar and a link to their GitLab profile: the avatar is
fetched by the portal, checked (an image type whose bytes agree, size-capped) and served from
the portal itself, so the page's `img-src 'self' data:` policy stays as it is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import partial
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from babel.units import format_unit
from flask import Blueprint
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from pydantic import AfterValidator, BeforeValidator, Field

from ...config import PortalConfig, UpstreamSection, WidgetSection
from ...identity import User
from ...upstreams.upstream import ClientSetup, Secret, Upstream
from ..contract import Part, Widget, WidgetContext, WidgetView
from .client import UPSTREAM, GitLabClient, MyPipelines, ProjectPipelines, Reviews
from .mine import Mine, cut_for


class GitLabSection(UpstreamSection):
    """upstreams.gitlab: the GitLab base URL (the API is under /api/v4) and its bounds."""

    max_pages: int = Field(5, ge=1, le=50, description="pages of a list followed at most")
    # Hosts besides GitLab's own an avatar may be fetched from (e.g. secure.gravatar.com).
    avatar_hosts: tuple[str, ...] = ()
    avatar_max_bytes: int = Field(200_000, ge=1000, le=2_000_000)


def _client(setup: ClientSetup) -> GitLabClient:
    section = setup.section
    assert isinstance(section, GitLabSection)
    return GitLabClient(
        setup.session,
        setup.base_url,
        setup.credentials,
        setup.limits,
        setup.verify,
        max_pages=section.max_pages,
        memo=setup.store,
        on_quota=setup.report_quota,
    )


GITLAB: Upstream[GitLabClient] = Upstream(
    "gitlab",
    UPSTREAM,
    _client,
    settings=GitLabSection,
    secrets=(Secret("PORTAL_GITLAB_TOKEN", "token", help="a GitLab access token with the read_api scope"),),
)


def _as_text(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _check_project(value: str) -> str:
    value = value.strip()
    segment = r"[A-Za-z0-9_.][A-Za-z0-9_.-]*"
    if re.fullmatch(r"[1-9][0-9]*", value) or re.fullmatch(rf"{segment}(/{segment})+", value):
        return value
    raise ValueError("a project id (42) or path (group/project)")


ProjectRef = Annotated[str, BeforeValidator(_as_text), AfterValidator(_check_project)]


class PipelinesSettings(WidgetSection):
    """widgets.pipelines: the team's projects, how many pipelines to show, whose they are."""

    projects: tuple[ProjectRef, ...] = ()
    recent: int = Field(5, ge=1, le=20, description="recent pipelines per project")
    mine: int = Field(8, ge=1, le=50, description="pipelines of mine shown")
    # Mine is found among each project's latest `window` pipelines (one page of GitLab's list).
    window: int = Field(50, ge=5, le=100, description="latest pipelines of each project searched for mine")
    reviews: int = Field(10, ge=1, le=100, description="merge requests shown")
    # The token claim holding the user's GitLab username.
    username_claim: str = Field("preferred_username", pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$")


# --- the template's helpers -------------------------------------------------------------------


PROJECTS_SHOWN = 8  # projects shown before "Show N more projects"


def _in_gitlab(reviews: Reviews, username: str) -> tuple[str, str] | None:
    """Where GitLab lists every merge request the user reviews, and every one assigned to them
    (on the host of the merge requests' own links), when the card shows only the first ones."""
    if not reviews.more:
        return None
    link = next((m.web_url for m in reviews.merge_requests if m.web_url), None)
    if link is None:
        return None
    parts = urlsplit(link)
    dashboard = f"{parts.scheme}://{parts.netloc}/dashboard/merge_requests?state=opened"
    name = quote(username, safe="")
    return f"{dashboard}&reviewer_username={name}", f"{dashboard}&assignee_username={name}"


def _my_pipelines_in_gitlab(pipelines: MyPipelines, username: str) -> tuple[tuple[str, str], ...]:
    """Where GitLab lists the user's pipelines of each of their projects (its pipelines page
    filtered by who ran them, `?username=`), when the card shows only the first ones."""
    if pipelines.total <= len(pipelines.pipelines):
        return ()
    name = quote(username, safe="")
    return tuple((path, f"{page}/-/pipelines?username={name}") for path, page in pipelines.projects)


def duration_text(seconds: float | None) -> str:
    """ "2 min 30 s", "1 h 5 min", "40 s"."""
    if seconds is None:
        return ""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    locale = get_locale()
    parts = []
    if hours:
        parts.append(format_unit(hours, "duration-hour", length="short", locale=locale))
    if minutes:
        parts.append(format_unit(minutes, "duration-minute", length="short", locale=locale))
    if (secs and not hours) or not parts:
        parts.append(format_unit(secs, "duration-second", length="short", locale=locale))
    return " ".join(parts)


# --- the widget -----------------------------------------------------------------------------------


class PipelinesWidget(Widget):
    """Latest pipelines of the team's projects; mine, and merge requests waiting for me."""

    slug = "pipelines"
    title = _l("Pipelines")
    icon = "pipeline"
    scope = "mixed"
    upstreams = (GITLAB,)
    settings_model = PipelinesSettings
    # No clock: its times are written relative to now by the page (`ago` and `since` in
    # widgets/_macros.html), so a person's card is the same HTML until their data changes.
    wide = True

    def is_configured(self, settings: WidgetSection, config: PortalConfig) -> bool:
        assert isinstance(settings, PipelinesSettings)
        return super().is_configured(settings, config) and bool(settings.projects)

    def identity_claims(self, settings: WidgetSection) -> tuple[str, ...]:
        assert isinstance(settings, PipelinesSettings)
        return () if settings.username_claim == "preferred_username" else (settings.username_claim,)

    def parts(self, ctx: WidgetContext, user: User) -> Sequence[Part[Any]]:
        """One shared part per project; the user's pipelines and reviews, when their username is known."""
        client = ctx.client(GITLAB)
        settings = ctx.settings
        assert isinstance(settings, PipelinesSettings)
        parts: list[Part[Any]] = [
            Part(f"project:{ref}", ref, GITLAB, partial(client.project_pipelines, ref, settings.recent))
            for ref in settings.projects
        ]
        username = user.claim(settings.username_claim)
        if username:
            team = partial(client.team_work, settings.projects, settings.window)
            mine = partial(cut_for, username=username, pipelines=settings.mine, reviews=settings.reviews)
            # Labels are written in the request's language: the card's view is kept per language.
            parts.append(Part("team", _("Mine"), GITLAB, team, select=mine))
        return parts

    def is_empty(self, view: WidgetView) -> bool:
        return False  # each tab says what it has, or that it has nothing

    def decorate(self, view: WidgetView, ctx: WidgetContext, user: User) -> str:
        """The projects in order, the user's two parts, and their GitLab username (or why none)."""
        settings = ctx.settings
        assert isinstance(settings, PipelinesSettings)
        projects: list[tuple[str, ProjectPipelines | None, Any]] = []
        for ref in settings.projects:
            part = view.part(f"project:{ref}")
            if part is not None:
                projects.append((ref, part.value, part))
        username = user.claim(settings.username_claim)
        mine = view.part("team")
        cut: Mine | None = mine.value if mine is not None else None
        failing_at = [index for index, (_, found, _) in enumerate(projects) if _failing(found)]
        view.extra.update(
            projects=projects,
            # The first projects, and every one whose default branch fails; the others on demand.
            projects_shown=max(PROJECTS_SHOWN, failing_at[-1] + 1 if failing_at else 0),
            # The projects' panel is the same for everyone who sees these projects' data: rendered
            # once for all of them (FragmentRenderer.shared_piece).
            projects_key=("pipelines:projects", tuple(part.shown for _, _, part in projects)),
            mine=mine,
            my_pipelines=cut.pipelines if cut is not None else None,
            my_reviews=cut.reviews if cut is not None else None,
            username=username,
            claim=settings.username_claim,
            failing=len(failing_at),
            # Said to screen readers by name: "2 default branches failing" did not say which.
            failing_names=[_path(*projects[index][:2]) for index in failing_at],
            waiting=cut.reviews.total if cut is not None else 0,
            elsewhere=_in_gitlab(cut.reviews, username) if cut is not None and username else None,
            mine_elsewhere=_my_pipelines_in_gitlab(cut.pipelines, username)
            if cut is not None and username
            else (),
        )
        return f"{settings.username_claim}={username or ''}"

    # --- the user menu: GitLab avatar and profile link ---------------------------------------------

    user_menu = True

    def register_routes(self, blueprint: Blueprint) -> None:
        """The user menu's GitLab line and the avatar it shows; the card's duration helper."""
        from . import profile  # noqa: PLC0415 - its views read the portal's state, which imports the widgets

        blueprint.add_url_rule(f"/widgets/{self.slug}/me", "user_menu", partial(profile.user_menu, self))
        blueprint.add_url_rule(f"/widgets/{self.slug}/avatar", "avatar", partial(profile.avatar, self))
        blueprint.add_app_template_global(duration_text, "duration_text")


def _path(ref: str, found: ProjectPipelines | None) -> str:
    """The project's path as the card shows it (its configured one until GitLab has said)."""
    return found.project.path if found is not None and found.project is not None else ref


def _failing(found: ProjectPipelines | None) -> bool:
    """The latest pipeline of the project's default branch failed."""
    return found is not None and found.latest is not None and found.latest.status == "failed"


__all__ = ["GITLAB", "GitLabSection", "PipelinesSettings", "PipelinesWidget"]
