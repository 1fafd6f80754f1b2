"""A person's *Mine* tab, cut on the server from what GitLab says of the whole team.

`GitLabClient.team_work` reads each project's latest pipelines (with who ran each) and its open
merge requests (with their reviewers and assignees) once for everyone; `cut_for` keeps what is
one person's. The card never receives anyone else's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from .client import MyPipelines, Pipeline, Reviews, TeamWork


@dataclass(frozen=True)
class Mine:
    """The pipelines a person ran and the merge requests waiting for them."""

    pipelines: MyPipelines
    reviews: Reviews


def cut_for(team: TeamWork, username: str, pipelines: int, reviews: int) -> Mine:
    """`username`'s pipelines (at most `pipelines`, newest first, with how many there were and
    their projects) and the open merge requests
    where they are a reviewer or an assignee (at most `reviews`, newest first). GitLab's
    usernames are matched without regard to case, as its own filters do."""
    me = username.casefold()
    own = [
        p for p in team.pipelines if p.detail and p.detail.user and p.detail.user.username.casefold() == me
    ]
    waiting = [
        replace(m, reviewer=me in m.reviewers, assignee=me in m.assignees)
        for m in team.merge_requests
        if me in m.reviewers or me in m.assignees
    ]
    unattributed = sum(1 for p in team.pipelines if p.detail is None)
    return Mine(
        MyPipelines(
            tuple(own[:pipelines]), team.unreadable, team.window, unattributed, len(own), _projects_of(own)
        ),
        Reviews(tuple(waiting[:reviews]), team.more_requests or len(waiting) > reviews, len(waiting)),
    )


def _projects_of(pipelines: Sequence[Pipeline]) -> tuple[tuple[str, str], ...]:
    """Each project of these pipelines once, in their order: its path and its page in GitLab
    (from a pipeline's own link, `<project>/-/pipelines/<id>`)."""
    found: dict[str, str] = {}
    for pipeline in pipelines:
        if pipeline.project and pipeline.web_url and "/-/" in pipeline.web_url:
            found.setdefault(pipeline.project, pipeline.web_url.split("/-/", 1)[0])
    return tuple(found.items())
