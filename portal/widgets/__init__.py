"""Every widget of the portal. To add one, create its package and list it here."""

from __future__ import annotations

from types import ModuleType

from . import status

WIDGET_MODULES: tuple[ModuleType, ...] = (status,)

__all__ = ["WIDGET_MODULES"]
