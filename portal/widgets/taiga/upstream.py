"""Taiga as an upstream: its configuration section (`upstreams.taiga`), secrets and client."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, HttpUrl

from ...config import UpstreamSection
from ...upstreams.upstream import ClientSetup, Secret, Upstream
from .client import UPSTREAM, TaigaClient


class TaigaSettings(UpstreamSection):
    """upstreams.taiga: the API (`url`, ending in /api/v1/) and how the portal reads it."""

    # The web app the cards link to (https://taiga.example.org); default: `url` without /api/v1.
    front_url: HttpUrl | None = None
    page_size: int = Field(100, ge=1, le=1000, description="items per page (Taiga allows up to 1000)")
    max_pages: int = Field(20, ge=1, le=200, description="pages followed per list before it is cut")
    # How a portal user is found in Taiga: their Keycloak preferred_username, or the part of
    # their e-mail address before the @.
    match_by: Literal["preferred_username", "email_local_part"] = "preferred_username"
    # Seconds the statuses (names, colours) stay fresh: they rarely change.
    catalog_ttl: int = Field(600, ge=10, le=86400)

    @property
    def front(self) -> str:
        """The web app's base URL, without a trailing slash."""
        if self.front_url is not None:
            return str(self.front_url).rstrip("/")
        base = str(self.url).rstrip("/")
        return base.removesuffix("/api/v1").rstrip("/")


def _client(setup: ClientSetup) -> TaigaClient:
    section = setup.section
    assert isinstance(section, TaigaSettings)
    return TaigaClient(
        setup.session,
        setup.base_url,
        setup.credentials,
        setup.limits,
        setup.verify,
        store=setup.store,
        page_size=section.page_size,
        max_pages=section.max_pages,
    )


TAIGA: Upstream[TaigaClient] = Upstream(
    "taiga",
    UPSTREAM,
    _client,
    settings=TaigaSettings,
    secrets=(
        Secret("PORTAL_TAIGA_USERNAME", "username", help="the Taiga service account's username"),
        Secret("PORTAL_TAIGA_PASSWORD", "password", help="the Taiga service account's password"),
        Secret(
            "PORTAL_TAIGA_WEBHOOK_SECRET",
            "webhook_secret",
            required=False,
            help="the key Taiga signs its webhooks with (optional: POST /hooks/taiga)",
        ),
    ),
)


def match_name(settings: TaigaSettings, username: str, email: str) -> str:
    """The Taiga username a portal user is looked up by."""
    if settings.match_by == "email_local_part" and "@" in email:
        return email.split("@", 1)[0]
    return username
