"""The `deadlines` widget: my due dates and sprint ends in a month calendar, a list and a feed."""

from __future__ import annotations

from .widget import DeadlinesSettings, DeadlinesWidget

__all__ = ["DeadlinesSettings", "DeadlinesWidget"]
