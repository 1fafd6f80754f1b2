"""Taiga as an upstream: its configuration section (`upstreams.taiga`), secrets and client."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, HttpUrl, field_validator, model_validator

from ...config import UpstreamSection
from ...identity import User
from ...upstreams.upstream import ClientSetup, Secret, Upstream
from .client import UPSTREAM, TaigaClient

DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")


class TaigaSettings(UpstreamSection):
    """upstreams.taiga: the API (`url`, ending in /api/v1/) and how the portal reads it."""

    # The web app the cards link to (https://taiga.example.org); default: `url` without /api/v1.
    front_url: HttpUrl | None = None
    page_size: int = Field(100, ge=1, le=1000, description="items per page (Taiga allows up to 1000)")
    max_pages: int = Field(20, ge=1, le=200, description="pages followed per list before it is cut")
    # The claim of the user's token that holds their Taiga username: Keycloak's
    # preferred_username, or another one (e.g. an attribute a Keycloak mapper adds to the token).
    username_claim: str = Field("preferred_username", pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$")
    # Kept for the configurations that set it: email_local_part finds a user in Taiga by the
    # part of their e-mail address before the @ instead of a claim; only a verified address at
    # one of `email_domains` counts (a person may give Keycloak any address: alice@elsewhere
    # must not read alice's items).
    match_by: Literal["preferred_username", "email_local_part"] = "preferred_username"
    email_domains: tuple[str, ...] = ()
    # Seconds the statuses (names, colours) stay fresh: they rarely change.
    catalog_ttl: int = Field(600, ge=10, le=86400)

    @field_validator("url")
    @classmethod
    def _the_api(cls, value: HttpUrl) -> HttpUrl:
        # Taiga's API lives under /api/v1/ (GitLab and Prometheus take their base URL): without
        # it every call would answer the web app's HTML, read as garbage at the first poll.
        if not (value.path or "").rstrip("/").endswith("/api/v1"):
            raise ValueError(f"Taiga's API address, ending in /api/v1/: {str(value).rstrip('/')}/api/v1/")
        return value

    @field_validator("email_domains")
    @classmethod
    def _domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for domain in value:
            if not DOMAIN.fullmatch(domain):
                raise ValueError(f"not a domain name: {domain[:60]!r} (e.g. example.org)")
        return tuple(domain.lower() for domain in value)

    @model_validator(mode="after")
    def _one_way_to_find_a_user(self) -> TaigaSettings:
        if self.match_by == "email_local_part" and self.username_claim != "preferred_username":
            raise ValueError(
                "username_claim and match_by: email_local_part both say how users are found: keep one"
            )
        if self.match_by == "email_local_part" and not self.email_domains:
            raise ValueError(
                "match_by: email_local_part needs email_domains, the domains of the team's addresses"
                " (e.g. [example.org]): an address at any other domain would find anyone's items"
            )
        return self

    def identity_claims(self) -> tuple[str, ...]:
        """The claim holding the Taiga username, when it is not the username itself (with
        email_local_part: whether Keycloak verified the address)."""
        if self.match_by == "email_local_part":
            return ("email_verified",)
        if self.username_claim == "preferred_username":
            return ()
        return (self.username_claim,)

    @property
    def name_claim(self) -> str:
        """The claim a person is found by: a card lacking it says so."""
        return "email" if self.match_by == "email_local_part" else self.username_claim

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


def match_name(settings: TaigaSettings, user: User) -> str | None:
    """The Taiga username a portal user is looked up by; None when their token has no such claim."""
    if settings.match_by == "email_local_part":
        local, at, domain = user.email.rpartition("@")
        verified = user.claim("email_verified") == "true"
        return local if at and local and verified and domain.lower() in settings.email_domains else None
    return user.claim(settings.username_claim) or None
