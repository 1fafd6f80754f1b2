"""The `pipelines` widget: the team's GitLab pipelines, mine, and merge requests waiting for me."""

from __future__ import annotations

from .widget import GITLAB, GitLabSection, PipelinesSettings, PipelinesWidget

__all__ = ["GITLAB", "GitLabSection", "PipelinesSettings", "PipelinesWidget"]
