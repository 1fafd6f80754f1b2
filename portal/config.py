"""The portal's configuration: one YAML file for structure, the environment for secrets.

`load_settings()` reads and validates both and raises `ConfigError` whose message names every
offending key (`widgets.status.refresh`, `tiles[2].url`, `PORTAL_SECRET_KEY`, ...).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Protocol
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from .config_errors import clean_location, describe, key_path
from .identity import everyones_role
from .url_credentials import credentials_in, secret_parameter_in

DEFAULT_CONFIG_PATH = "portal.yaml"
LANGUAGES = ("en", "fr")

# The builtin tile icons: vendored simple-icons (CC0) plus the portal's own drawings.
BUILTIN_ICONS = (
    "argo",
    "gitlab",
    "grafana",
    "harbor",
    "keycloak",
    "mattermost",
    "prometheus",
    "sonarqubeserver",
    "uptimekuma",
    "vault",
)


class ConfigError(Exception):
    """The configuration is unusable; the message names each offending key."""


def _check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc
    return name


def _check_slug(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", value):
        raise ValueError("use lower-case letters, digits, '-' or '_' (at most 63)")
    return value


def _check_grant(value: str) -> str:
    if not value or value != value.strip():
        raise ValueError(f"{value!r}: a role or group name without spaces around it")
    if everyones_role(value):
        raise ValueError(
            f"{value!r} is a role Keycloak gives everyone, which the portal does not read:"
            " name a role or group that says who may see it (e.g. portal-admin, /team-a)"
        )
    return value


def refuse_credentials(url: HttpUrl | None, where_they_go: str) -> HttpUrl | None:
    """`url` unless it carries credentials (a password, a token in the query): these go in the
    environment, never in the configuration (a ConfigMap, logs, and for links every browser)."""
    found = credentials_in(str(url)) if url is not None else None
    if found:
        raise ValueError(f"must not carry credentials ({found}): {where_they_go}")
    return url


def _plain_link(url: HttpUrl | None) -> HttpUrl | None:
    return refuse_credentials(url, "a link is sent to every signed-in browser")


Slug = Annotated[str, AfterValidator(_check_slug)]
# A link shown to people (a tile, a tool's public address): no credentials in it.
LinkUrl = Annotated[HttpUrl, AfterValidator(_plain_link)]
Grant = Annotated[str, AfterValidator(_check_grant)]  # a role or a group ("/team-a") of Keycloak
TimeZone = Annotated[str, AfterValidator(_check_timezone)]
# A text shown to users: one string, or one per language ({en: ..., fr: ...}).
LocalizedText = str | dict[Literal["en", "fr"], str]


def localized(text: LocalizedText, language: str) -> str:
    """A configured text in `language`, else its first version."""
    if isinstance(text, str):
        return text
    return text.get(language) or next(iter(text.values()), "")  # type: ignore[call-overload]


class _Section(BaseModel):
    """Every section refuses unknown keys and is immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PortalSection(_Section):
    title: str = "DevSecOps Portal"
    default_language: Literal["en", "fr"] = "fr"
    timezone: TimeZone = "UTC"
    demo: bool = False


class OidcSection(_Section):
    """The Keycloak realm and the portal's client in it (its secret: PORTAL_OIDC_CLIENT_SECRET)."""

    # Keycloak's base URL: https://sso.example.org/ (17+), or https://sso.example.org/auth/ (16 and older).
    server_url: HttpUrl
    realm: str = Field(min_length=1, max_length=255)
    client_id: str = Field(min_length=1, max_length=255)
    # The portal's address as browsers reach it, for the redirect URIs; default: the request's own.
    # The portal is served at its host's root (the chart's Ingress routes "/" to it).
    public_url: LinkUrl | None = None
    timeout: float = Field(5.0, gt=0, le=60, description="seconds for one call to Keycloak")
    verify_tls: bool = True
    ca_bundle: Path | None = None
    # Used when Keycloak gives no refresh lifetime (offline tokens): the longest a session lasts.
    session_max_age: int = Field(36000, ge=60, le=30 * 86400)
    # Seconds a back-channel logout token is accepted after it was issued; its id (jti) is
    # remembered that long, so a replayed token is refused.
    logout_token_max_age: int = Field(120, ge=10, le=3600)
    # Without public_url the portal builds its redirect URIs from the request's Host: only the
    # hosts listed here are then served (anything else: 400). One of the two is required.
    allowed_hosts: tuple[str, ...] = ()
    # While the session store (Redis) cannot be reached, existing sessions keep working this long
    # (seconds from the start of the outage); sessions ended meanwhile stay ended. 0: refuse at once.
    outage_grace: int = Field(900, ge=0, le=86400)

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"file not found: {value}")
        return value

    @field_validator("server_url")
    @classmethod
    def _keycloak_base(cls, value: HttpUrl) -> HttpUrl:
        # The realm's URL (the issuer, what admins usually copy) would make every sign-in fail
        # later, at Keycloak, with a 404 the person cannot act on.
        path = value.path or ""
        if "/realms/" in path + "/":
            base = str(value).split("/realms/")[0] + "/"
            raise ValueError(
                f"Keycloak's base URL ({base}), not a realm's: the realm goes in auth.oidc.realm"
            )
        return value

    @field_validator("server_url")
    @classmethod
    def _server_url_plain(cls, value: HttpUrl) -> HttpUrl | None:
        return refuse_credentials(value, "the portal's client secret goes in PORTAL_OIDC_CLIENT_SECRET")

    @field_validator("public_url")
    @classmethod
    def _public_url_at_root(cls, value: HttpUrl | None) -> HttpUrl | None:
        # Sign-in would come back to <path>/auth/callback, which nothing serves: a 404.
        if value is not None and (value.path or "/") != "/":
            raise ValueError(
                f"the portal's address without a path (https://{value.host}/): "
                "it is served at the root of its host, not under a path prefix"
            )
        return value

    @field_validator("realm")
    @classmethod
    def _realm(cls, value: str) -> str:
        if "/" in value or value.strip() != value:
            raise ValueError("a realm name, not a path")
        return value

    @model_validator(mode="after")
    def _public_url_or_hosts(self) -> OidcSection:
        if self.public_url is None and not self.allowed_hosts:
            raise ValueError(
                "auth.oidc.public_url is required (the portal's address as browsers reach it), "
                "or list auth.oidc.allowed_hosts: redirect URIs are never built from an unchecked Host"
            )
        return self

    @property
    def base_url(self) -> str:
        """The server URL ending with "/" (python-keycloak joins paths onto it)."""
        text = str(self.server_url)
        return text if text.endswith("/") else text + "/"


class AuthSection(_Section):
    # oidc: Keycloak single sign-on (production). demo: fixed demo users, for the local demo only.
    mode: Literal["oidc", "demo"] = "oidc"
    oidc: OidcSection | None = None
    # How the user menu names a Keycloak role or group ({portal-admin: Administrator}); the
    # roles and groups it does not name are not shown there.
    role_labels: dict[Grant, LocalizedText] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _oidc_needs_its_section(self) -> AuthSection:
        if self.mode == "oidc" and self.oidc is None:
            raise ValueError("auth.oidc is required when auth.mode is oidc (server_url, realm, client_id)")
        return self


class CacheSection(_Section):
    redis_url: str | None = None
    key_prefix: str = "portal:"
    local_max_entries: int = Field(5000, ge=100, le=1_000_000)
    # How long a failed fetch's outcome is shared before the key may be tried again.
    failure_hold: float = Field(5.0, ge=0.5, le=300)
    # How long a card's request waits for the fetch it started before it answers with what there
    # is ("loading", or the previous data) and polls again soon. Never more than the upstream's timeout.
    answer_within: float = Field(2.0, ge=0.1, le=30)
    # How long a request waits for the refresh of data that is still current (within its TTL and
    # the time a refresh may take) before it answers with that data; the refresh lands for the
    # next poll. Short, so that a slow upstream does not slow each poll of a per-person card.
    refresh_within: float = Field(0.15, ge=0.0, le=30)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must start with redis://, rediss:// or unix://")
        if parts.password or secret_parameter_in(value):
            raise ValueError("must not carry a password: set PORTAL_REDIS_PASSWORD instead")
        return value


class DatabaseSection(_Section):
    """The portal's own database: layouts and preferences (see portal/storage/).

    SQLite by default, a file in `data_dir` (one replica only); PostgreSQL when `url` is set
    (several replicas). The password never goes in the URL: PORTAL_DATABASE_PASSWORD.
    """

    url: str | None = None
    data_dir: Path = Path("data")
    connect_timeout: float = Field(5.0, gt=0, le=60, description="seconds to reach the database")
    pool_size: int = Field(5, ge=1, le=100)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from sqlalchemy.engine import make_url  # noqa: PLC0415 - only when a URL is set
        from sqlalchemy.exc import ArgumentError  # noqa: PLC0415

        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("not a database URL (postgresql+psycopg://user@host:5432/name)") from None
        if url.get_backend_name() not in ("postgresql", "sqlite"):
            raise ValueError("must start with postgresql+psycopg:// (or sqlite:///path for one replica)")
        if url.get_backend_name() == "postgresql" and url.get_driver_name() not in ("psycopg", "psycopg2"):
            raise ValueError("use the psycopg driver: postgresql+psycopg://")
        if url.password or secret_parameter_in(value):
            raise ValueError("must not carry a password: set PORTAL_DATABASE_PASSWORD instead")
        return value


Width = Literal["normal", "wide"]


class LayoutDefault(_Section):
    """A starting layout for the users holding one of `roles` (roles or groups; empty: everyone)."""

    roles: tuple[Grant, ...] = ()
    widgets: tuple[str, ...] = ()  # these cards first, in this order; the others follow
    hidden: tuple[str, ...] = ()
    collapsed: tuple[str, ...] = ()
    widths: dict[str, Width] = Field(default_factory=dict)
    pinned: tuple[str, ...] = ()  # tiles shown first (their name or id)
    new_tab: bool = False  # tiles open in a new tab


class LayoutSection(_Section):
    """Personal layouts: each user arranges the dashboard; these rules give the starting one."""

    # The first rule whose roles match the user wins; no match: the widgets' own order.
    defaults: tuple[LayoutDefault, ...] = ()


class UpstreamSection(_Section):
    # Where this upstream's credentials go, said when its URL carries some.
    credentials_go: ClassVar[str] = "its credentials go in the environment (its PORTAL_* keys, in the Secret)"

    url: HttpUrl
    # Total budget of one call in seconds (a slow drip is cut at this deadline).
    timeout: float = Field(5.0, gt=0, le=60)
    connect_timeout: float = Field(2.0, gt=0, le=30)
    verify_tls: bool = True
    ca_bundle: Path | None = None
    max_bytes: int = Field(2_000_000, ge=1024, le=50_000_000)
    # Consecutive failures that open the circuit, and its first and longest pause.
    breaker_threshold: int = Field(3, ge=1, le=100)
    breaker_backoff: float = Field(10.0, ge=1, le=3600)
    breaker_backoff_max: float = Field(60.0, ge=1, le=86400)
    # Calls to this upstream each worker makes at once. Each person's own parts (GitLab's "mine"
    # and "reviews") are fetched one per thread, so this bounds how many people a worker keeps
    # fresh; a hung upstream holds at most these threads (never a request's).
    fetch_threads: int = Field(16, ge=1, le=64)

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"file not found: {value}")
        return value

    @field_validator("url")
    @classmethod
    def _url_plain(cls, value: HttpUrl) -> HttpUrl | None:
        return refuse_credentials(value, cls.credentials_go)

    def credential_problems(self, name: str, credentials: Mapping[str, str]) -> list[str]:
        """What is wrong with this upstream's secrets taken together (each was read alone):
        checked with the configuration, so that `check-config` refuses what the start would."""
        return []

    def identity_claims(self) -> tuple[str, ...]:
        """Claims of the user's token this section names besides the identity (the claim that
        holds a person's name in the tool): the session carries them (`User.claims`)."""
        return ()


class WidgetSection(_Section):
    """Settings every widget has; each widget's section adds its own."""

    enabled: bool = True
    refresh: int = Field(30, ge=5, le=3600, description="seconds between two polls")
    ttl: int = Field(30, ge=1, le=86400, description="seconds a fetched result is fresh")
    stale_ttl: int = Field(3600, ge=0, le=7 * 86400, description="seconds last good data is kept")
    roles: tuple[Grant, ...] = ()


class Tile(_Section):
    id: Slug | None = None
    name: str = Field(min_length=1, max_length=60)
    url: LinkUrl
    description: LocalizedText = ""
    icon: str | None = None
    monitor: str | None = None
    roles: tuple[Grant, ...] = ()

    @field_validator("icon")
    @classmethod
    def _icon(cls, value: str | None) -> str | None:
        if value is None or value in BUILTIN_ICONS:
            return value
        if re.fullmatch(r"/static/[A-Za-z0-9_./-]+\.(svg|png|webp)", value) and ".." not in value:
            return value
        raise ValueError(
            "a builtin icon (" + ", ".join(BUILTIN_ICONS) + ") or a path like /static/icons/x.svg"
        )

    @property
    def slug(self) -> str:
        """Stable identifier used in HTML ids and CSS classes."""
        if self.id:
            return self.id
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-") or "tile"


class PortalConfig(_Section):
    """The whole YAML file. `upstreams` and `widgets` hold one section per registered upstream
    and widget: the model that validates a file is made by `config_model()` from the registry."""

    portal: PortalSection = PortalSection()
    auth: AuthSection  # required: single sign-on unless the demo identity is chosen explicitly
    cache: CacheSection = CacheSection()
    database: DatabaseSection = DatabaseSection()
    layout: LayoutSection = LayoutSection()
    upstreams: Any = None
    widgets: Any = None
    tiles: tuple[Tile, ...] = ()

    @model_validator(mode="after")
    def _unique_tiles(self) -> PortalConfig:
        seen: dict[str, int] = {}
        for index, tile in enumerate(self.tiles):
            if tile.slug in seen:
                raise ValueError(
                    f"tiles[{index}]: id {tile.slug!r} is already used by tiles[{seen[tile.slug]}]"
                )
            seen[tile.slug] = index
        return self

    @property
    def widget_slugs(self) -> tuple[str, ...]:
        """Every registered widget's slug, in the registry's order."""
        return tuple(type(self.widgets).model_fields) if self.widgets is not None else ()

    def tile(self, reference: str) -> Tile | None:
        """The tile with this name or id, or None."""
        return next((t for t in self.tiles if reference in (t.name, t.slug)), None)

    def upstream(self, name: str) -> UpstreamSection | None:
        """The section of one upstream, or None when it is not configured."""
        section: UpstreamSection | None = getattr(self.upstreams, name, None)
        return section

    def widget(self, slug: str) -> WidgetSection:
        """The settings of one widget (its defaults when the file says nothing of it)."""
        section: WidgetSection = getattr(self.widgets, slug)
        return section


class UpstreamSpec(Protocol):
    """What the configuration needs to know of an upstream (see upstreams/upstream.py)."""

    @property
    def name(self) -> str: ...
    @property
    def settings(self) -> type[UpstreamSection]: ...
    @property
    def secrets(self) -> tuple[Any, ...]: ...  # each with env, key, required, help


class WidgetSpec(Protocol):
    """What the configuration needs to know of a widget (see widgets/contract.py)."""

    @property
    def slug(self) -> str: ...
    @property
    def settings_model(self) -> type[WidgetSection]: ...
    @property
    def upstreams(self) -> tuple[UpstreamSpec, ...]: ...


def _registry() -> tuple[WidgetSpec, ...]:
    from .widgets import WIDGETS  # noqa: PLC0415 - the widgets import this module's sections

    return WIDGETS


def upstreams_of(widgets: Sequence[WidgetSpec]) -> dict[str, UpstreamSpec]:
    """Every upstream the widgets name, once, by name."""
    found: dict[str, UpstreamSpec] = {}
    for widget in widgets:
        for upstream in widget.upstreams:
            found.setdefault(upstream.name, upstream)
    return found


@functools.cache
def _config_model(widgets: tuple[WidgetSpec, ...]) -> type[PortalConfig]:
    upstream_fields: dict[str, Any] = {
        name: (spec.settings | None, None) for name, spec in upstreams_of(widgets).items()
    }
    widget_fields: dict[str, Any] = {w.slug: (w.settings_model, w.settings_model()) for w in widgets}
    upstreams = create_model("UpstreamsSection", __base__=_Section, **upstream_fields)
    sections = create_model("WidgetsSection", __base__=_Section, **widget_fields)
    model: type[PortalConfig] = create_model(
        "PortalConfig",
        __base__=PortalConfig,
        upstreams=(upstreams, upstreams()),
        widgets=(sections, sections()),
    )
    return model


def config_model(widgets: Sequence[WidgetSpec] | None = None) -> type[PortalConfig]:
    """The model of the whole file for these widgets (the registry's by default)."""
    return _config_model(tuple(widgets) if widgets is not None else _registry())


@dataclass(frozen=True)
class Secrets:
    """Values that never live in the YAML file."""

    secret_key: str
    redis_password: str | None = None
    oidc_client_secret: str | None = None
    database_password: str | None = None
    upstreams: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # name -> key -> value

    def of(self, upstream: str) -> Mapping[str, str]:
        """The credentials of one upstream, by their keys."""
        return self.upstreams.get(upstream, {})


@dataclass(frozen=True)
class Settings:
    """Everything the application needs to start."""

    config: PortalConfig
    secrets: Secrets
    source: str


def _secret(env: Mapping[str, str], name: str) -> str | None:
    """Read a secret from NAME, or from the file named by NAME_FILE (Kubernetes Secret mounts)."""
    if env.get(name):
        return env[name]
    file_name = env.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise ConfigError(f"{name}_FILE: cannot read {file_name}: {exc.strerror}") from exc
    return None


def _missing(name: str, when: str = "", what: str = "") -> str:
    """ "NAME: required secret is missing[ when ...] ([what; ]set it, or NAME_FILE ...)"."""
    return f"{name}: required secret is missing{when} ({what}set it, or {name}_FILE to a file holding it)"


def load_secrets(
    config: PortalConfig, env: Mapping[str, str], widgets: Sequence[WidgetSpec] | None = None
) -> Secrets:
    """Collect the secrets the configuration needs from the environment."""
    problems: list[str] = []
    secret_key = _secret(env, "PORTAL_SECRET_KEY")
    if not secret_key:
        problems.append(_missing("PORTAL_SECRET_KEY", ""))
    elif len(secret_key) < 16:
        problems.append("PORTAL_SECRET_KEY: too short (at least 16 characters)")
    client_secret = _secret(env, "PORTAL_OIDC_CLIENT_SECRET")
    if config.auth.mode == "oidc" and not client_secret:
        problems.append(
            _missing("PORTAL_OIDC_CLIENT_SECRET", " when auth.mode is oidc", "the Keycloak client's secret; ")
        )
    upstreams: dict[str, dict[str, str]] = {}
    for name, spec in upstreams_of(widgets if widgets is not None else _registry()).items():
        section = config.upstream(name)
        if section is None:
            continue
        found: dict[str, str] = {}
        for secret in spec.secrets:
            value = _secret(env, secret.env)
            if value:
                found[secret.key] = value
            elif secret.required:
                what = f"{secret.help}; " if secret.help else ""
                problems.append(_missing(secret.env, f" when upstreams.{name} is configured", what))
        problems += section.credential_problems(name, found)
        upstreams[name] = found
    if problems:
        raise ConfigError("\n".join(problems))
    assert secret_key is not None
    return Secrets(
        secret_key=secret_key,
        redis_password=_secret(env, "PORTAL_REDIS_PASSWORD"),
        oidc_client_secret=client_secret,
        database_password=_secret(env, "PORTAL_DATABASE_PASSWORD"),
        upstreams=upstreams,
    )


def validate_config(raw: Any, source: str, widgets: Sequence[WidgetSpec] | None = None) -> PortalConfig:
    """Validate a parsed YAML document, naming every wrong key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections")
    try:
        config = config_model(widgets).model_validate(raw)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            lines.append(f"  {key_path(clean_location(error))}: {describe(error, config_model(widgets))}")
        unique = list(dict.fromkeys(lines))
        raise ConfigError(f"{source}: invalid configuration\n" + "\n".join(unique)) from None
    problems = _layout_problems(config)
    if problems:
        raise ConfigError(f"{source}: invalid configuration\n" + "\n".join(f"  {p}" for p in problems))
    return config


def _layout_problems(config: PortalConfig) -> list[str]:
    """The layout rules name only registered widgets and configured tiles, each once."""
    slugs = config.widget_slugs
    known = ", ".join(slugs) or "none"
    problems = []
    earlier: dict[str, int] = {}  # each role or group of the rules before, and its first rule
    for index, rule in enumerate(config.layout.defaults):
        where = f"layout.defaults[{index}]"
        catch_all = earlier.get("")
        shadowing = catch_all if catch_all is not None else _first_covering(rule.roles, earlier)
        if shadowing is not None:
            problems.append(
                f"{where}: never applies: everyone it is for gets layout.defaults[{shadowing}] first"
                " (the first rule that matches wins: put the narrower rules before the wider ones)"
            )
        for grant in rule.roles or ("",):
            earlier.setdefault(grant, index)
        for key in ("widgets", "hidden", "collapsed"):
            seen: set[str] = set()
            for position, slug in enumerate(getattr(rule, key)):
                if slug not in slugs:
                    problems.append(f"{where}.{key}[{position}]: unknown widget {slug!r} (known: {known})")
                elif slug in seen:
                    problems.append(f"{where}.{key}[{position}]: widget {slug!r} is listed twice")
                seen.add(slug)
        for slug in rule.widths:
            if slug not in slugs:
                problems.append(f"{where}.widths.{slug}: unknown widget {slug!r} (known: {known})")
        seen_tiles: set[str] = set()
        for position, name in enumerate(rule.pinned):
            tile = config.tile(name)
            if tile is None:
                names = ", ".join(t.name for t in config.tiles) or "none"
                problems.append(f"{where}.pinned[{position}]: unknown tile {name!r} (tiles: {names})")
            elif tile.slug in seen_tiles:
                problems.append(f"{where}.pinned[{position}]: tile {name!r} is listed twice")
            else:
                seen_tiles.add(tile.slug)
    return problems


def _first_covering(roles: Sequence[str], earlier: Mapping[str, int]) -> int | None:
    """The last of the earlier rules needed to cover every one of `roles`, or None when one of
    them is in no earlier rule (or `roles` is empty: everyone else)."""
    if not roles or any(grant not in earlier for grant in roles):
        return None
    return max(earlier[grant] for grant in roles)


def read_config_file(path: str | Path, widgets: Sequence[WidgetSpec] | None = None) -> PortalConfig:
    """Read and validate one YAML configuration file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: configuration file not found (set PORTAL_CONFIG to its path)") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the configuration file: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"{source}:{where}: {problem}") from None
    return validate_config(raw, source, widgets)


def load_settings(
    env: Mapping[str, str] | None = None,
    config: PortalConfig | Mapping[str, Any] | str | Path | None = None,
    widgets: Sequence[WidgetSpec] | None = None,
) -> Settings:
    """Load the configuration (from `config` or PORTAL_CONFIG) and its secrets from `env`.

    `widgets` are the widgets whose sections the file may hold (the registry's by default).
    """
    env = os.environ if env is None else env
    if isinstance(config, PortalConfig):
        parsed, source = config, "test configuration"
    elif isinstance(config, Mapping):
        parsed, source = validate_config(dict(config), "test configuration", widgets), "test configuration"
    else:
        path = config or env.get("PORTAL_CONFIG") or DEFAULT_CONFIG_PATH
        parsed, source = read_config_file(path, widgets), str(path)
    return Settings(config=parsed, secrets=load_secrets(parsed, env, widgets), source=source)
