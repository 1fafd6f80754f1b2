"""Mistakes the chart refuses at `helm install` (its render), each with a message naming the value:
otherwise they would show as a crash-looping pod, an alert firing for ever or a hung node drain."""

from __future__ import annotations

from pathlib import Path

import pytest

from .support.helm import SCENARIOS, Helm, find

pytestmark = pytest.mark.peers

MINIMAL = SCENARIOS["minimal"]
SEVERAL = SCENARIOS["postgresql"]  # two replicas on PostgreSQL
SCALED = SCENARIOS["monitoring"]  # autoscaling from 2 to 4 pods


def test_the_defaults_alone_are_refused_for_want_of_an_address_and_the_keycloak_client_secret(
    helm: Helm,
) -> None:
    # Without an Ingress the portal's address is not guessed from the placeholder ingress.host:
    # Keycloak would send people's sign-ins to it.
    # No default Keycloak either: a placeholder would install a portal nobody can sign in to.
    keycloak = "config.auth.oidc.server_url=https://sso.corp.internal/"
    assert "config.auth.oidc.server_url is required: Keycloak's base URL" in helm.refusal(None)
    message = helm.refusal(None, keycloak)
    assert "config.auth.oidc.public_url is required without an Ingress (ingress.enabled=false)" in message
    assert helm.refusal(None, keycloak, "ingress.host=portal.corp.internal") == message  # still no Ingress
    assert "ingress.host is required with ingress.enabled" in helm.refusal(
        None, keycloak, "ingress.enabled=true"
    )
    address = "config.auth.oidc.public_url=http://127.0.0.1:8080"
    message = helm.refusal(None, keycloak, address)
    assert "secrets.env.PORTAL_OIDC_CLIENT_SECRET is empty while config.auth.mode is oidc" in message
    assert "secrets.existingSecret" in message
    assert helm.manifests(
        None, keycloak, address, "secrets.existingSecret=portal-secrets"
    )  # the Secret's keys are the admin's
    assert helm.manifests(None, "config.auth.mode=demo", "allowDemoAuth=true")


@pytest.mark.parametrize(
    ("upstream", "url", "missing"),
    [
        ("taiga", "https://taiga.example.org/api/v1/", "PORTAL_TAIGA_USERNAME"),
        ("gitlab", "https://gitlab.example.org", "PORTAL_GITLAB_TOKEN"),
    ],
)
def test_an_upstream_without_its_required_secret_is_refused(
    helm: Helm, upstream: str, url: str, missing: str
) -> None:
    message = helm.refusal(MINIMAL, f"config.upstreams.{upstream}.url={url}")
    assert f"secrets.env.{missing} is empty while config.upstreams.{upstream} is set" in message


def test_basic_auth_of_prometheus_needs_its_password_and_never_both_kinds(helm: Helm) -> None:
    prometheus = "config.upstreams.prometheus.url=http://prometheus-operated.monitoring.svc:9090"
    without = helm.refusal(MINIMAL, prometheus, "config.upstreams.prometheus.username=portal")
    assert (
        "config.upstreams.prometheus.username is set but secrets.env.PORTAL_PROMETHEUS_PASSWORD is empty"
        in without
    )
    both = helm.refusal(
        MINIMAL,
        prometheus,
        "secrets.env.PORTAL_PROMETHEUS_PASSWORD=pw",
        "secrets.env.PORTAL_PROMETHEUS_TOKEN=tk",
        "config.upstreams.prometheus.username=portal",
    )
    assert "PORTAL_PROMETHEUS_PASSWORD and PORTAL_PROMETHEUS_TOKEN are both set" in both
    assert helm.manifests(MINIMAL, prometheus, "secrets.env.PORTAL_PROMETHEUS_TOKEN=tk")


@pytest.mark.parametrize(
    ("setting", "value_path"),
    [
        ("config.auth.oidc.server_url=sso.example.org", "config.auth.oidc.server_url"),
        ("config.auth.oidc.public_url=portal.example.org", "config.auth.oidc.public_url"),
        ("config.upstreams.uptime_kuma.url=status.example.org:3001", "config.upstreams.uptime_kuma.url"),
        ("config.upstreams.gitlab.url=ftp://gitlab.example.org", "config.upstreams.gitlab.url"),
    ],
)
def test_a_url_without_its_scheme_is_refused(helm: Helm, setting: str, value_path: str) -> None:
    """Without a scheme the policy would open port 80 and the portal refuse to start."""
    message = helm.refusal(MINIMAL, setting)
    assert f"{value_path}: not an http:// or https:// URL: the scheme is required" in message


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ("database.url=mysql://portal@db/portal", "database.url: the portal's shared database is PostgreSQL"),
        ("database.url=postgresql://db:5432/portal", "database.url: expected postgresql+psycopg://USER@HOST"),
        ("database.url=postgresql://portal:pw@db/portal", "password in secrets.env.PORTAL_DATABASE_PASSWORD"),
        ("database.url=postgresql://portal@db/portal?password=pw", "database.url holds a password"),
        ("redis.url=redis://:pw@redis:6379/0", "give the password in secrets.env.PORTAL_REDIS_PASSWORD"),
        ("redis.url=redis.cache.svc:6379", "redis.url: expected redis://HOST[:PORT][/DB]"),
        ("config.upstreams.gitlab.url=https://bot:tk@gitlab.example.org", "the credentials in secrets.env"),
        ("config.upstreams.taiga.url=https://taiga.example.org/api v1", "HOST[:PORT][/PATH], without spaces"),
    ],
)
def test_an_address_of_the_wrong_form_is_refused_in_words_without_quoting_it(
    helm: Helm, setting: str, words: str
) -> None:
    """The values schema would answer with its regular expression; a URL may carry a secret."""
    message = helm.refusal(SCENARIOS["redis"], setting)
    assert words in message
    assert "pattern" not in message
    assert "pw" not in message and "tk@" not in message


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ("config.tiles[0].url=https://bot:tilePW99@gitlab.example.org", "a user or password in the URL"),
        ("config.tiles[0].url=https://gitlab.example.org/?private_token=tilePW99", "a credential in the URL"),
        ("config.tiles[0].url=https://gitlab.example.org/#access_token=tilePW99", "a credential in the URL"),
        ("config.upstreams.gitlab.url=https://gitlab.example.org/?private_token=tilePW99", "a credential in"),
    ],
)
def test_a_link_with_credentials_is_refused_without_quoting_it(helm: Helm, setting: str, words: str) -> None:
    """A tile's link reaches every signed-in browser; either would sit in the chart's ConfigMaps."""
    message = helm.refusal(MINIMAL, "config.tiles[0].name=GitLab", setting)
    key = setting.partition("=")[0]
    assert f"{key}: {words}" in message
    assert "tilePW99" not in message
    assert helm.manifests(
        MINIMAL, "config.tiles[0].name=GitLab", "config.tiles[0].url=https://x.example.org/?tab=2"
    )


def test_an_autoscaler_whose_minimum_is_above_its_maximum_is_refused(helm: Helm) -> None:
    message = helm.refusal(SCALED, "autoscaling.minReplicas=5")
    assert "autoscaling.minReplicas (5) is above autoscaling.maxReplicas (4)" in message


@pytest.mark.parametrize(
    ("values", "sets", "expected"),
    [
        (
            SEVERAL,
            ("podDisruptionBudget.minAvailable=2",),
            "podDisruptionBudget.minAvailable 2 keeps 2 of replicaCount 2",
        ),
        (
            SEVERAL,
            ("podDisruptionBudget.minAvailable=100%",),
            "podDisruptionBudget.minAvailable 100% keeps 2",
        ),
        (SEVERAL, ("podDisruptionBudget.minAvailable=60%",), "podDisruptionBudget.minAvailable 60% keeps 2"),
        (
            SCALED,
            ("autoscaling.minReplicas=1",),
            "podDisruptionBudget.minAvailable 1 keeps 1 of autoscaling.minReplicas 1",
        ),
        (SEVERAL, ("podDisruptionBudget.maxUnavailable=0",), "podDisruptionBudget.maxUnavailable is 0"),
        (SEVERAL, ("podDisruptionBudget.maxUnavailable=0%",), "podDisruptionBudget.maxUnavailable is 0%"),
    ],
)
def test_a_disruption_budget_that_blocks_every_drain_is_refused(
    helm: Helm, values: Path, sets: tuple[str, ...], expected: str
) -> None:
    message = helm.refusal(values, *sets)
    assert expected in message and "node drain" in message


def test_a_budget_that_lets_a_pod_go_is_accepted(helm: Helm) -> None:
    assert helm.manifests(SEVERAL, "podDisruptionBudget.minAvailable=50%")
    assert helm.manifests(SCALED, "autoscaling.minReplicas=1", "podDisruptionBudget.maxUnavailable=1")


@pytest.mark.parametrize(
    ("sets", "words"),
    [
        (("replicaCount=2",), "replicaCount is 2 but the database is SQLite (database.url is empty)"),
        (("replicaCount=2", "database.sqlite.persistence.enabled=false"), "replicaCount is 2 but"),
        (("autoscaling.enabled=true",), "autoscaling.enabled is true but the database is SQLite"),
    ],
)
def test_more_than_one_pod_on_sqlite_is_refused_in_words(
    helm: Helm, sets: tuple[str, ...], words: str
) -> None:
    """Not the values schema's `Must validate "then" as "if" was valid`: what to change."""
    message = helm.refusal(MINIMAL, *sets)
    assert words in message
    assert "set database.url to a PostgreSQL (postgresql+psycopg://USER@HOST:5432/DATABASE)" in message


def test_the_database_url_takes_libpq_parameters_but_never_a_password(helm: Helm) -> None:
    password = helm.refusal(MINIMAL, "database.url=postgresql+psycopg://portal:pw@db/portal")
    assert "database.url" in password
    # TLS to an external PostgreSQL (libpq's parameters), a database name with a dot: taken; a
    # password in the query string is not.
    tls = "postgresql+psycopg://portal@pg.corp.internal:5432/portal.prod?sslmode=verify-full&sslrootcert=/etc/pg/ca.crt"
    rendered = helm.manifests(SCENARIOS["postgresql"], f"database.url={tls}")
    assert f"url: {tls}" in find(rendered, "ConfigMap", "portal")["data"]["portal.yaml"]
    assert "database.url" in helm.refusal(
        SCENARIOS["postgresql"], "database.url=postgresql+psycopg://portal@db/portal?password=pw"
    )


def test_a_ca_bundle_outside_the_mounted_volumes_is_refused(helm: Helm) -> None:
    message = helm.refusal(MINIMAL, "config.auth.oidc.ca_bundle=/etc/portal/keycloak-ca.pem")
    assert (
        "config.auth.oidc.ca_bundle: /etc/portal/keycloak-ca.pem is not in a volume of extraVolumeMounts"
        in message
    )
    ca = SCENARIOS["ca-bundle"]
    elsewhere = helm.refusal(ca, "config.upstreams.uptime_kuma.ca_bundle=/etc/ssl/corp.pem")
    assert "config.upstreams.uptime_kuma.ca_bundle: /etc/ssl/corp.pem is not in a volume" in elsewhere
    inside = helm.refusal(ca, "extraVolumeMounts[0].mountPath=/etc/portal/ca")
    assert "extraVolumeMounts: /etc/portal/ca is inside /etc/portal" in inside


def test_alerts_without_a_scrape_are_refused(helm: Helm) -> None:
    message = helm.refusal(SCALED, "metrics.serviceMonitor.enabled=false")
    assert "metrics.prometheusRule.enabled needs metrics.serviceMonitor.enabled" in message
    own_job = helm.manifests(
        SCALED,
        "metrics.serviceMonitor.enabled=false",
        'metrics.prometheusRule.selector=job="portal"\\, namespace="tools"',
    )
    assert [m for m in own_job if m["kind"] == "PrometheusRule"]


def test_the_demo_identity_is_refused_unless_allowed(helm: Helm) -> None:
    message = helm.refusal(MINIMAL, "config.auth.mode=demo")
    assert "allowDemoAuth" in message


def test_the_cache_and_database_given_in_config_are_sent_to_the_charts_own_keys(helm: Helm) -> None:
    """Given under config, Redis or PostgreSQL would be used with no NetworkPolicy opened to it
    (the portal silently caching on its own) nor its password passed."""
    redis = helm.refusal(MINIMAL, "config.cache.redis_url=redis://redis.cache.svc:6379/0")
    assert "config.cache.redis_url: set redis.enabled=true and redis.url instead" in redis
    database = helm.refusal(MINIMAL, "config.database.url=postgresql+psycopg://portal@db/portal")
    assert "set database.url (PostgreSQL) or database.sqlite instead" in database
    assert helm.manifests(MINIMAL, "config.cache.failure_hold=10")  # the rest of the section is the portal's


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        ("ingress.host=https://portal.example.org", "ingress.host"),
        ("ingress.host=portal.example.org/portal", "ingress.host"),
        ("ingress.host=Portal.Example.org", "ingress.host"),
        ("ingress.extraHosts={portal.corp.internal,http://portal.corp.internal}", "ingress.extraHosts[1]"),
    ],
)
def test_an_ingress_host_with_a_scheme_or_a_path_is_refused_in_words(
    helm: Helm, setting: str, key: str
) -> None:
    host = "ingress.host=portal.corp.internal"
    message = helm.refusal(MINIMAL, "ingress.enabled=true", host, setting)
    assert f"{key}: expected a host name without scheme or path, e.g. portal.example.org" in message
    assert "pattern" not in message
    aliases = helm.manifests(MINIMAL, "ingress.enabled=true", host, "ingress.extraHosts={*.corp.internal}")
    assert find(aliases, "Ingress")["spec"]["rules"][1]["host"] == "*.corp.internal"


@pytest.mark.parametrize(
    ("setting", "env"),
    [
        ("config.upstreams.gitlab.token", "PORTAL_GITLAB_TOKEN"),
        ("config.upstreams.gitlab.private_token", "PORTAL_GITLAB_TOKEN"),
        ("config.auth.oidc.client_secret", "PORTAL_OIDC_CLIENT_SECRET"),
        ("config.auth.oidc.clientSecret", "PORTAL_OIDC_CLIENT_SECRET"),
        ("config.upstreams.taiga.password", "PORTAL_TAIGA_PASSWORD"),
        ("config.upstreams.taiga.webhook_secret", "PORTAL_TAIGA_WEBHOOK_SECRET"),
        ("config.upstreams.prometheus.token", "PORTAL_PROMETHEUS_TOKEN"),
        ("config.upstreams.alertmanager.password", "PORTAL_ALERTMANAGER_PASSWORD"),
        ("config.cache.redis_password", "PORTAL_REDIS_PASSWORD"),
        ("config.database.password", "PORTAL_DATABASE_PASSWORD"),
        ("config.portal.secret_key", "PORTAL_SECRET_KEY"),
        ("config.upstreams.uptime_kuma.api_key", None),
        ("config.widgets.pipelines.gitlab.private_token", None),
        ("config.tiles[0].token", None),
    ],
)
def test_a_secret_under_config_is_refused_naming_where_it_goes_never_its_value(
    helm: Helm, setting: str, env: str | None
) -> None:
    """Rendered, it would sit in the ConfigMap and the check's hook ConfigMap (kept when the hook
    fails on the portal's `unknown key`)."""
    message = helm.refusal(MINIMAL, f"{setting}=hunter2-value")
    assert f"{setting}: a secret under config would be written into the ConfigMap" in message
    if env:
        assert f"give the value as secrets.env.{env} (or the key {env} of the Secret" in message
    else:
        assert "secrets go in secrets.env / secrets.existingSecret" in message
    assert "hunter2" not in message


def test_keys_under_config_that_only_mention_a_token_are_taken(helm: Helm) -> None:
    assert helm.manifests(MINIMAL, "config.auth.oidc.logout_token_max_age=300")


@pytest.mark.parametrize(
    ("key", "meant"),
    [
        ("PORTAL_REDIS_PASSWROD", "PORTAL_REDIS_PASSWORD"),
        ("portal_gitlab_token", "PORTAL_GITLAB_TOKEN"),
        ("GITLAB_TOKEN", "PORTAL_GITLAB_TOKEN"),
        ("PORTAL_OIDC_SECRET", "PORTAL_OIDC_CLIENT_SECRET"),
        ("PORTAL_DATABASE_PASS", "PORTAL_DATABASE_PASSWORD"),
        ("PORTAL_TAIGA_PASWORD_FILE", "PORTAL_TAIGA_PASSWORD_FILE"),
    ],
)
def test_a_misspelt_secret_key_is_refused_with_the_key_meant(helm: Helm, key: str, meant: str) -> None:
    """Taken, it would reach the pods under a name the portal never reads: a failure at run time."""
    message = helm.refusal(MINIMAL, f"secrets.env.{key}=hunter2")
    assert f"secrets.env.{key} is not a key the portal reads: did you mean {meant}?" in message
    assert "hunter2" not in message


def test_a_variable_the_portal_does_not_read_is_sent_to_extra_env(helm: Helm) -> None:
    for key in ("HTTPS_PROXY", "PORTAL_TAIGA_TOKEN"):
        message = helm.refusal(MINIMAL, f"secrets.env.{key}=hunter2")
        assert f"secrets.env.{key} is not a key the portal reads, which are PORTAL_SECRET_KEY, " in message
        assert "other environment variables go in extraEnv or extraEnvFrom" in message
        assert "did you mean" not in message and "hunter2" not in message
    level = helm.refusal(MINIMAL, "secrets.env.PORTAL_LOG_LEVEL=DEBUG")
    assert "secrets.env.PORTAL_LOG_LEVEL is not a secret the portal reads: the chart sets" in level
    assert "from logLevel" in level
    assert helm.manifests(MINIMAL, "extraEnv[0].name=HTTPS_PROXY", "extraEnv[0].value=http://proxy:3128")


def test_a_secret_may_be_given_as_the_path_of_a_file(helm: Helm) -> None:
    rendered = helm.manifests(
        MINIMAL,
        "config.upstreams.gitlab.url=https://gitlab.example.org",
        "secrets.env.PORTAL_GITLAB_TOKEN_FILE=/etc/portal-gitlab/token",
    )
    assert "PORTAL_GITLAB_TOKEN_FILE" in find(rendered, "Secret", "portal")["data"]


def test_metrics_on_the_portals_own_port_are_refused(helm: Helm) -> None:
    """The metrics server could not bind it: /metrics would never answer and PortalDown fire."""
    message = helm.refusal(MINIMAL, "metrics.port=8000")
    assert "metrics.port is 8000, the portal's own container port (8000, its pages and probes)" in message
    assert "e.g. 9100" in message


@pytest.mark.parametrize(
    ("interval", "timeout"),
    [("30s", "1m"), ("1m", "1m30s"), ("500ms", "1s"), ("1h", "1h0m1s")],
)
def test_a_scrape_timeout_longer_than_the_interval_is_refused(
    helm: Helm, interval: str, timeout: str
) -> None:
    """Prometheus refuses such a scrape configuration."""
    message = helm.refusal(
        SCALED,
        f"metrics.serviceMonitor.interval={interval}",
        f"metrics.serviceMonitor.scrapeTimeout={timeout}",
    )
    said = f"scrapeTimeout {timeout} is longer than metrics.serviceMonitor.interval {interval}"
    assert f"metrics.serviceMonitor.{said}" in message


def test_scrape_durations_are_prometheus_durations(helm: Helm) -> None:
    for interval, timeout in (("1m30s", "1m"), ("1m", "1m"), ("15s", "500ms")):
        rendered = helm.manifests(
            SCALED,
            f"metrics.serviceMonitor.interval={interval}",
            f"metrics.serviceMonitor.scrapeTimeout={timeout}",
        )
        endpoint = find(rendered, "ServiceMonitor")["spec"]["endpoints"][0]
        assert (endpoint["interval"], endpoint["scrapeTimeout"]) == (interval, timeout)
    for wrong in ("30sec", "1m30", "30 s", "0s"):
        message = helm.refusal(SCALED, f"metrics.serviceMonitor.interval={wrong}")
        assert "metrics.serviceMonitor.interval: expected a Prometheus duration above zero" in message


@pytest.mark.parametrize(
    ("sets", "sleep", "grace"),
    [
        (("preStopSleepSeconds=30",), 30, 30),
        (("preStopSleepSeconds=45",), 45, 30),
        (("terminationGracePeriodSeconds=5",), 5, 5),
    ],
)
def test_a_pre_stop_sleep_that_outlasts_the_grace_period_is_refused(
    helm: Helm, sets: tuple[str, ...], sleep: int, grace: int
) -> None:
    """The pod would be killed before gunicorn is sent SIGTERM."""
    message = helm.refusal(MINIMAL, *sets)
    assert f"preStopSleepSeconds ({sleep}) is not below terminationGracePeriodSeconds ({grace})" in message
