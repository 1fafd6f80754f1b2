"""What the Taiga cards (`tasks`, `deadlines`) share: the client, the upstream, the board cut per
person, dates and colours, the calendar feed, the webhook, and what is kept per person."""

from __future__ import annotations

from .client import TaigaClient
from .upstream import TAIGA, TaigaSettings

__all__ = ["TAIGA", "TaigaClient", "TaigaSettings"]
