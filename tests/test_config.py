"""Configuration: a bad config is refused at start with the key named, and nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from portal import create_app
from portal.config import ConfigError, load_settings, read_config_file
from portal.config_errors import as_helm_values
from portal.insecure_settings import insecure_settings
from portal.storage.database import Database

from .conftest import SECRET, example_config
from .support.processes import ROOT, free_port

ENV = {"PORTAL_SECRET_KEY": SECRET, "PORTAL_OIDC_CLIENT_SECRET": "client-secret"}


def _refused(config: dict[str, Any], env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as error:
        load_settings(env=ENV if env is None else env, config=config)
    return str(error.value)


def test_the_example_config_is_valid() -> None:
    settings = load_settings(env=ENV, config=ROOT / "portal.example.yaml")
    assert settings.config.widgets.status.slugs == ("platform", "observability")
    assert len(settings.config.tiles) == 9


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda c: c["widgets"]["status"].update(refesh=30), "widgets.status.refesh: unknown key"),
        (lambda c: c.update(extra_section={}), "extra_section: unknown key"),
        (lambda c: c["upstreams"]["uptime_kuma"].update(timeout="soon"), "upstreams.uptime_kuma.timeout"),
        (lambda c: c["upstreams"]["uptime_kuma"].update(url="not a url"), "upstreams.uptime_kuma.url"),
        (
            lambda c: c["upstreams"]["uptime_kuma"].update(fetch_threads=0),
            "upstreams.uptime_kuma.fetch_threads",
        ),
        (lambda c: c["widgets"]["status"].update(refresh=1), "widgets.status.refresh"),
        (lambda c: c["widgets"]["status"].update(slugs=["Bad Slug!"]), "widgets.status.slugs[0]"),
        (lambda c: c["tiles"][2].pop("url"), "tiles[2].url: required key is missing"),
        (lambda c: c["tiles"][1].update(icon="nope"), "tiles[1].icon"),
        (lambda c: c["tiles"][0].update(description={"de": "Code"}), "tiles[0].description"),
        (lambda c: c["portal"].update(timezone="Mars/Olympus"), "portal.timezone"),
        (lambda c: c["portal"].update(default_language="de"), "portal.default_language"),
        (lambda c: c["auth"].update(mode="none"), "auth.mode"),
        (lambda c: c["cache"].update(redis_url="redis://:pw@redis:6379/0"), "PORTAL_REDIS_PASSWORD"),
        (lambda c: c["tiles"].append(dict(c["tiles"][0])), "tiles[9]: id 'gitlab' is already used"),
        # Roles the portal never grants anyone: the item would be hidden from everyone.
        (
            lambda c: c["tiles"][0].update(roles=["offline_access"]),
            "tiles[0].roles[0]: 'offline_access' is a role",
        ),
        (lambda c: c["widgets"]["status"].update(roles=["default-roles-corp"]), "widgets.status.roles[0]"),
        (
            lambda c: c["tiles"][1].update(roles=[" portal-admin"]),
            "tiles[1].roles[0]: ' portal-admin': a role",
        ),
        (lambda c: c["tiles"][1].update(roles=[""]), "tiles[1].roles[0]: '': a role or group name"),
        (
            lambda c: c["auth"].update(role_labels={"uma_authorization": "x"}),
            "auth.role_labels.uma_authorization",
        ),
    ],
)
def test_a_wrong_key_is_named(change: Any, named: str) -> None:
    config = example_config()
    change(config)
    assert named in _refused(config)


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (
            lambda c: c["widgets"]["status"].update(refesh=30),
            "widgets.status.refesh: unknown key (did you mean 'refresh'?)",
        ),
        (lambda c: c["widgets"].update(statuss={}), "widgets.statuss: unknown key (did you mean 'status'?)"),
        (
            lambda c: c["tiles"][0].update(descriptoin="x"),
            "tiles[0].descriptoin: unknown key (did you mean 'description'?)",
        ),
        (
            lambda c: c["portal"].update(public_url="https://portal.example.org/"),
            "portal.public_url: unknown key here (it belongs under auth.oidc or upstreams.",
        ),
        (
            lambda c: c["portal"].update(colour="red"),
            "portal.colour: unknown key (known here: title, default_language, timezone, demo)",
        ),
        (
            lambda c: c["widgets"]["pipelines"].update(projects="platform/portal"),
            "widgets.pipelines.projects: a list is expected, e.g. [a, b] (got 'platform/portal')",
        ),
        (
            lambda c: c["upstreams"]["uptime_kuma"].update(url="status.example.org"),
            "upstreams.uptime_kuma.url: not a full URL: give its scheme and host, e.g. "
            "https://tool.example.org/ (got 'status.example.org')",
        ),
        (
            lambda c: c["widgets"]["status"].update(enabled="yes please"),
            "widgets.status.enabled: true or false is expected (got 'yes please')",
        ),
    ],
)
def test_a_wrong_key_is_said_in_an_admins_words(change: Any, said: str) -> None:
    """Not pydantic's ("Input should be a valid tuple", "relative URL without a base"): what
    the file should hold, and for a misspelt or misplaced key the one meant."""
    config = example_config()
    change(config)
    message = _refused(config)
    assert said in message
    assert "Input should be" not in message


def test_check_config_for_helm_names_keys_as_the_values_do() -> None:
    """The chart's Job: the file's keys under config., the secrets under secrets.env., once each."""
    config = example_config()
    config["Auth"] = {}
    config["portal"]["timezone"] = "Europe/Pariss"
    config["tiles"].append(dict(config["tiles"][0]))
    with pytest.raises(ConfigError) as error:
        load_settings(env=ENV, config=config)
    said = as_helm_values(str(error.value))
    assert "  config.Auth: unknown key (did you mean 'auth'?)" in said
    assert "  config.portal.timezone: unknown time zone 'Europe/Pariss'" in said
    duplicate = _refused({**example_config(), "tiles": [config["tiles"][0], config["tiles"][0]]})
    assert "  config: tiles[1]: id 'gitlab' is already used by tiles[0]" in as_helm_values(duplicate)
    secrets = _refused(example_config(), env={"PORTAL_SECRET_KEY": "short"})
    assert as_helm_values(secrets).startswith("secrets.env.PORTAL_SECRET_KEY: too short")
    assert "config.config" not in said + as_helm_values(duplicate)


def test_a_mapping_given_where_a_value_goes_is_not_quoted_back() -> None:
    """It may hold anything (here a token pasted at the wrong level): the message names the key."""
    config = example_config()
    config["widgets"]["pipelines"]["projects"] = {"token": "glpat-pasted-here"}
    message = _refused(config)
    assert "widgets.pipelines.projects: a list is expected, e.g. [a, b]" in message
    assert "glpat" not in message


@pytest.mark.parametrize(
    ("change", "named", "secret"),
    [
        (
            lambda c: c["upstreams"]["prometheus"].update(url="http://admin:promPW99@prometheus:9090"),
            "upstreams.prometheus.url: must not carry credentials (a password before the host):"
            " set username here, and the password or token in the environment",
            "promPW99",
        ),
        (
            lambda c: c["upstreams"]["uptime_kuma"].update(
                url="https://kuma.example.org/?private_token=glpat-Q7"
            ),
            "upstreams.uptime_kuma.url: must not carry credentials (private_token= in its query)",
            "glpat-Q7",
        ),
        (  # sent to every signed-in browser
            lambda c: c["tiles"][0].update(url="https://bot:tilePW99@gitlab.example.org"),
            "tiles[0].url: must not carry credentials (a password before the host): a link is sent",
            "tilePW99",
        ),
        (
            lambda c: c["auth"]["oidc"].update(server_url="https://admin:kcPW99@sso.example.org/"),
            "auth.oidc.server_url: must not carry credentials (a password before the host):"
            " the portal's client secret goes in PORTAL_OIDC_CLIENT_SECRET",
            "kcPW99",
        ),
        (  # a token given as the user name
            lambda c: c["upstreams"]["uptime_kuma"].update(url="https://glpat-Q7Q7Q7@kuma.example.org/"),
            "upstreams.uptime_kuma.url: must not carry credentials (a user name before the host)",
            "glpat-Q7Q7Q7",
        ),
        (  # a link's fragment reaches the browser too
            lambda c: c["tiles"][1].update(url="https://harbor.example.org/#access_token=fragTOK99"),
            "tiles[1].url: must not carry credentials (access_token= in its fragment)",
            "fragTOK99",
        ),
        (
            lambda c: c.setdefault("database", {}).update(url="postgresql+psycopg://portal:dbPW99@db/portal"),
            "database.url: must not carry a password: set PORTAL_DATABASE_PASSWORD instead"
            " (got 'postgresql+psycopg://portal:***@db/portal')",
            "dbPW99",
        ),
        (
            lambda c: c["cache"].update(redis_url="redis://:redisPW99@valkey:6379/0"),
            "cache.redis_url: must not carry a password",
            "redisPW99",
        ),
        (  # both redis-py and psycopg honour a password in the query
            lambda c: c["cache"].update(redis_url="redis://valkey:6379/0?password=redisQ99"),
            "cache.redis_url: must not carry a password",
            "redisQ99",
        ),
        (
            lambda c: c.setdefault("database", {}).update(
                url="postgresql+psycopg://portal@db/portal?sslmode=require&password=dbQ99"
            ),
            "database.url: must not carry a password: set PORTAL_DATABASE_PASSWORD instead",
            "dbQ99",
        ),
        (
            lambda c: c.setdefault("database", {}).update(
                url="postgresql+psycopg://portal@db/portal?sslpassword=k99"
            ),
            "database.url: must not carry a password",
            "k99",
        ),
    ],
)
def test_credentials_in_a_url_are_refused_and_never_quoted(change: Any, named: str, secret: str) -> None:
    """The message goes to the pod's, the install hook's and `helm test`'s logs (then Loki)."""
    config = example_config()
    change(config)
    message = _refused(config)
    assert named in message
    assert secret not in message


def test_a_database_url_with_a_user_and_tls_files_is_no_credential() -> None:
    config = example_config()
    url = "postgresql+psycopg://portal@db:5432/portal?sslmode=verify-full&sslkey=/tls/tls.key"
    config["database"] = {"url": url}
    assert load_settings(env=ENV, config=config).config.database.url == url


def test_the_database_is_described_in_the_logs_without_its_password() -> None:
    database = Database("postgresql+psycopg://portal:dbPW99@db/portal?sslmode=require&password=dbQ99")
    described = database.describe()
    assert "dbPW99" not in described and "dbQ99" not in described
    assert described == "postgresql+psycopg://portal:***@db/portal?password=***&sslmode=require"


def test_a_link_may_have_a_query_that_is_no_credential() -> None:
    config = example_config()
    config["tiles"][0]["url"] = "https://gitlab.example.org/dashboard?sort=updated_desc&page=2"
    assert str(load_settings(env=ENV, config=config).config.tiles[0].url).endswith("page=2")


def test_the_portal_address_with_a_path_is_refused() -> None:
    """Sign-in would come back to /portal/auth/callback, which nothing serves."""
    config = example_config()
    config["auth"]["oidc"]["public_url"] = "https://portal.example.org/portal/"
    assert (
        "auth.oidc.public_url: the portal's address without a path (https://portal.example.org/)"
        in _refused(config)
    )


def test_a_value_already_quoted_is_not_quoted_twice() -> None:
    config = example_config()
    config["portal"]["timezone"] = "Europe/Pariss"
    assert _refused(config).count("Europe/Pariss") == 1


@pytest.mark.parametrize(
    ("username", "secrets", "named"),
    [
        ("portal", {}, "upstreams.prometheus.username: PORTAL_PROMETHEUS_PASSWORD is missing"),
        (
            None,
            {"PORTAL_PROMETHEUS_PASSWORD": "p", "PORTAL_PROMETHEUS_TOKEN": "t"},
            "upstreams.prometheus: give PORTAL_PROMETHEUS_TOKEN or PORTAL_PROMETHEUS_PASSWORD, not both",
        ),
        (None, {"PORTAL_PROMETHEUS_PASSWORD": "p"}, "upstreams.prometheus.username: required with"),
    ],
)
def test_monitoring_credentials_that_do_not_go_together_are_refused_by_check_config(
    tmp_path: Path, username: str | None, secrets: dict[str, str], named: str
) -> None:
    """Checked with the configuration, not when the clients are made: `check-config` (the chart's
    install hook and `helm test`) passed them, and the pods then crash-looped."""
    config = example_config()
    if username:
        config["upstreams"]["prometheus"]["username"] = username
    refused = _check_config(str(_write(tmp_path, config)), _env(**ENV, **secrets))
    assert refused.returncode == 2, refused.stdout
    assert named in refused.stderr


def _warnings(change: Any, **secrets: str) -> list[str]:
    config = example_config()
    change(config)
    settings = load_settings(env={**ENV, **secrets}, config=config)
    return insecure_settings(settings.config, settings.secrets.upstreams)


def test_settings_that_expose_something_are_said_not_refused() -> None:
    def keycloak_over_http(host: str) -> Any:
        return lambda c: c["auth"]["oidc"].update(server_url=f"http://{host}:8080/")

    assert _warnings(lambda c: None) == []
    assert _warnings(keycloak_over_http("sso.example.org")) == [
        "auth.oidc.server_url: plain http to sso.example.org: the client secret and people's tokens"
        " travel unencrypted (use https://, or Keycloak's Service inside the cluster)"
    ]
    for inside in ("keycloak", "keycloak.sso.svc", "keycloak.sso.svc.cluster.local", "127.0.0.1"):
        assert _warnings(keycloak_over_http(inside)) == [], inside
    unchecked = _warnings(lambda c: c["upstreams"]["uptime_kuma"].update(verify_tls=False))
    assert [w.split(":")[0] for w in unchecked] == ["upstreams.uptime_kuma.verify_tls"]
    # Plain http matters where the portal sends credentials: GitLab's token, not Kuma's public pages.
    over_http = _warnings(
        lambda c: c["upstreams"].update(
            uptime_kuma={"url": "http://status.example.org"},
            gitlab={"url": "http://gitlab.example.org"},
        ),
        PORTAL_GITLAB_TOKEN="glpat-x",
    )
    assert [w.split(":")[0] for w in over_http] == ["upstreams.gitlab.url"]


def test_check_config_says_what_exposes_something_and_still_passes(tmp_path: Path) -> None:
    config = example_config()
    config["auth"]["oidc"]["verify_tls"] = False
    done = _check_config(str(_write(tmp_path, config)), _env(**ENV))
    assert done.returncode == 0, done.stderr
    assert "configuration OK" in done.stdout
    assert done.stderr.startswith(
        "warning: auth.oidc.verify_tls: false: Keycloak's certificate is not checked"
    )


def test_single_sign_on_is_the_default_and_needs_its_section() -> None:
    config = example_config()
    config["auth"] = {}
    assert "auth: auth.oidc is required when auth.mode is oidc" in _refused(config)
    config.pop("auth")
    assert "auth: required key is missing" in _refused(config)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda o: o.update(server_url="sso"), "auth.oidc.server_url"),
        (lambda o: o.update(realm="a/b"), "auth.oidc.realm"),
        (lambda o: o.pop("client_id"), "auth.oidc.client_id: required key is missing"),
        (lambda o: o.update(timeout=0), "auth.oidc.timeout"),
        (lambda o: o.update(ca_bundle="/nonexistent/ca.pem"), "auth.oidc.ca_bundle"),
        (lambda o: o.update(client_secret="s3cret"), "auth.oidc.client_secret: unknown key"),
        (  # the issuer's URL, which admins usually copy: sign-ins would fail at Keycloak
            lambda o: o.update(server_url="https://sso.example.fr/realms/equipe"),
            "auth.oidc.server_url: Keycloak's base URL (https://sso.example.fr/), not a realm's:"
            " the realm goes in auth.oidc.realm",
        ),
    ],
)
def test_a_wrong_oidc_key_is_named(change: Any, named: str) -> None:
    config = example_config()
    change(config["auth"]["oidc"])
    assert named in _refused(config)


def test_a_taiga_url_without_its_api_path_is_refused_with_the_right_one() -> None:
    """GitLab and Prometheus take their base URL, Taiga its API's: the admin is told which."""
    config = example_config()
    config["upstreams"]["taiga"] = {"url": "https://taiga.example.org/"}
    env = {**ENV, "PORTAL_TAIGA_USERNAME": "portal-bot", "PORTAL_TAIGA_PASSWORD": "pw"}
    message = _refused(config, env=env)
    assert (
        "upstreams.taiga.url: Taiga's API address, ending in /api/v1/: https://taiga.example.org/api/v1/"
        in message
    )
    config["upstreams"]["taiga"] = {"url": "https://taiga.example.org/api/v1"}
    assert load_settings(env=env, config=config)


def test_single_sign_on_without_public_url_or_allowed_hosts_is_refused_at_start() -> None:
    """Redirect URIs are never built from an unchecked Host: one of the two keys is required."""
    config = example_config()
    config["auth"]["oidc"].pop("public_url")
    config["auth"]["oidc"].pop("allowed_hosts", None)
    message = _refused(config)
    assert "auth.oidc.public_url is required" in message and "auth.oidc.allowed_hosts" in message
    with pytest.raises(ConfigError, match=r"auth\.oidc\.public_url is required"):
        create_app({"PORTAL": config, "ENV": ENV})
    config["auth"]["oidc"]["allowed_hosts"] = ["portal.example.org"]
    oidc = load_settings(env=ENV, config=config).config.auth.oidc
    assert oidc is not None and oidc.public_url is None and oidc.allowed_hosts == ("portal.example.org",)


def test_the_client_secret_is_required_with_single_sign_on() -> None:
    message = _refused(example_config(), env={"PORTAL_SECRET_KEY": SECRET})
    assert "PORTAL_OIDC_CLIENT_SECRET: required secret is missing" in message
    demo = example_config()
    demo["auth"] = {"mode": "demo"}
    assert load_settings(env={"PORTAL_SECRET_KEY": SECRET}, config=demo).secrets.oidc_client_secret is None


def test_the_server_url_always_ends_with_a_slash() -> None:
    config = example_config()
    config["auth"]["oidc"]["server_url"] = "https://sso.example.org/auth"
    oidc = load_settings(env=ENV, config=config).config.auth.oidc
    assert oidc is not None
    assert oidc.base_url == "https://sso.example.org/auth/"


def test_every_wrong_key_is_named_at_once() -> None:
    config = example_config()
    config["widgets"]["status"]["refesh"] = 30
    config["portal"]["timezone"] = "Nowhere"
    message = _refused(config)
    assert "widgets.status.refesh" in message
    assert "portal.timezone" in message


def test_a_missing_secret_is_named() -> None:
    assert "PORTAL_SECRET_KEY: required secret is missing" in _refused(example_config(), env={})
    assert "PORTAL_SECRET_KEY: too short" in _refused(example_config(), env={"PORTAL_SECRET_KEY": "short"})


def test_secrets_can_come_from_files(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    settings = load_settings(
        env={"PORTAL_SECRET_KEY_FILE": str(secret_file), "PORTAL_OIDC_CLIENT_SECRET_FILE": str(secret_file)},
        config=example_config(),
    )
    assert settings.secrets.secret_key == SECRET
    assert settings.secrets.oidc_client_secret == SECRET
    missing = {**ENV, "PORTAL_SECRET_KEY": "", "PORTAL_SECRET_KEY_FILE": str(tmp_path / "absent")}
    assert "PORTAL_SECRET_KEY_FILE: cannot read" in _refused(example_config(), env=missing)


def test_yaml_errors_give_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("portal:\n  title: [unclosed\nauth:\n  mode: demo\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: line \d+, column \d+"):
        read_config_file(bad)
    with pytest.raises(ConfigError, match="configuration file not found"):
        read_config_file(tmp_path / "absent.yaml")


def test_secrets_never_live_in_the_yaml() -> None:
    config = example_config()
    config["secret_key"] = SECRET
    assert "secret_key: unknown key" in _refused(config)


def test_create_app_raises_config_error() -> None:
    config = example_config()
    config["widgets"]["status"]["refesh"] = 1
    with pytest.raises(ConfigError, match=r"widgets\.status\.refesh"):
        create_app({"PORTAL": config, "ENV": ENV})


# --- the commands a person runs ------------------------------------------------------------


def _write(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "portal.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    return {**env, **extra}


def _check_config(file: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m portal check-config FILE`, as an admin (or the chart's hook) runs it."""
    return subprocess.run(
        [sys.executable, "-m", "portal", "check-config", file],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_check_config_command_gives_the_verdict(tmp_path: Path) -> None:
    good = _write(tmp_path, example_config())
    ok = _check_config(str(good), _env(**ENV))
    assert ok.returncode == 0, ok.stderr
    assert "configuration OK" in ok.stdout

    config = example_config()
    config["upstreams"]["uptime_kuma"]["timeout"] = "soon"
    bad = _write(tmp_path, config)
    refused = _check_config(str(bad), _env(**ENV))
    assert refused.returncode == 2
    assert "upstreams.uptime_kuma.timeout" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_check_config_names_the_cards_that_will_say_not_configured(tmp_path: Path) -> None:
    """Only Prometheus: the metrics and incidents cards are ready; the others are enabled (by
    default) but their card will say "Not configured", each for want of what is named."""
    config = example_config()
    config["upstreams"] = {"prometheus": {"url": "http://127.0.0.1:9090"}}
    for slug in ("status", "tasks", "deadlines", "pipelines"):
        config["widgets"].pop(slug, None)
    done = _check_config(str(_write(tmp_path, config)), _env(**ENV))
    assert done.returncode == 0, done.stderr
    assert "(2 widgets ready to show: incidents, metrics;" in done.stdout
    assert (
        "enabled but not configured (their card says so): status: upstreams.uptime_kuma; "
        "tasks: upstreams.taiga; deadlines: upstreams.taiga; pipelines: upstreams.gitlab"
    ) in done.stderr


def test_gunicorn_refuses_to_start_with_a_bad_config(tmp_path: Path) -> None:
    config = example_config()
    config["widgets"]["status"]["refesh"] = 30
    env = _env(
        PORTAL_CONFIG=str(_write(tmp_path, config)),
        PORTAL_SECRET_KEY=SECRET,
        PORTAL_BIND=f"127.0.0.1:{free_port()}",
    )
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "portal.wsgi:app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "widgets.status.refesh: unknown key" in output
    assert "Traceback" not in output


def test_gunicorn_refuses_to_start_without_the_secret(tmp_path: Path) -> None:
    env = _env(PORTAL_CONFIG=str(_write(tmp_path, example_config())), PORTAL_BIND=f"127.0.0.1:{free_port()}")
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "portal.wsgi:app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "PORTAL_SECRET_KEY" in output
    assert "Traceback" not in output
