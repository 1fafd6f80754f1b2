"""The `tasks` widget: my open Taiga tasks, user stories and issues, with a quick status change."""

from __future__ import annotations

from .widget import TasksSettings, TasksWidget

__all__ = ["TasksSettings", "TasksWidget"]
