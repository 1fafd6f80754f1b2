"""Every widget of the portal: the registry. To add one, create its package and list it here.

The order is the dashboard's default order. See README.md beside this file for what a widget
is made of and ships with.
"""

from __future__ import annotations

from .contract import Widget
from .deadlines import DeadlinesWidget
from .incidents import IncidentsWidget
from .metrics import MetricsWidget
from .pipelines import PipelinesWidget
from .status import StatusWidget
from .tasks import TasksWidget

# What is down or firing first, then one's own work, then the rest: the first screen holds
# what is most urgent.
WIDGETS: tuple[Widget, ...] = (
    StatusWidget(),
    IncidentsWidget(),
    TasksWidget(),
    DeadlinesWidget(),
    MetricsWidget(),
    PipelinesWidget(),
)

__all__ = ["WIDGETS"]
