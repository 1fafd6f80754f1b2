"""TLS to an upstream: its certificate is verified, against `ca_bundle` when one is configured.

The simulators are served over HTTPS on 127.0.0.1 with a certificate signed by a throwaway CA
(trustme). Without `ca_bundle` the portal refuses that certificate: no request reaches the
upstream and the card says, in words, that the tool's certificate could not be verified (no
address, no 500). With `ca_bundle` naming the CA's PEM, the same upstream is read and the card shows its data.
Every upstream's client takes the setting the same way (`ClientSetup.verify`).
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme
from flask import Flask

from portal.caching.stores import LocalStore
from portal.upstreams.errors import UpstreamUnavailable
from portal.upstreams.upstream import AnyUpstream, ClientSetup
from portal.widgets.incidents.upstream import ALERTMANAGER
from portal.widgets.metrics.upstream import PROMETHEUS
from portal.widgets.pipelines.widget import GITLAB
from portal.widgets.status.widget import UPTIME_KUMA
from portal.widgets.taiga.upstream import TAIGA
from simulators import gitlab, taiga, uptime_kuma
from simulators import prometheus as monitoring
from simulators.base import SimServer

from .support.monitoring import card
from .test_i18n import shown_text


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A certificate authority made for these tests, that no system trusts."""
    return trustme.CA()


@pytest.fixture
def ca_pem(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def serve_tls(server: SimServer, ca: trustme.CA) -> str:
    """Start `server` behind TLS, its certificate for 127.0.0.1 signed by `ca`; its https URL."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    httpd = server._httpd
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    server.start()
    return f"https://127.0.0.1:{server.port}"


# --- one card end to end: the status card on Uptime Kuma ---------------------------------------


@pytest.fixture
def tls_kuma(ca: trustme.CA) -> Iterator[tuple[SimServer, str]]:
    """The Uptime Kuma simulator over HTTPS, and its URL."""
    server, _ = uptime_kuma.make_server()
    url = serve_tls(server, ca)
    yield server, url
    server.stop()


def _status_app(make_app: Callable[..., Flask], url: str, ca_bundle: Path | None = None) -> Flask:
    def changes(config: dict[str, Any]) -> None:
        config["upstreams"]["uptime_kuma"].update(url=url)
        if ca_bundle is not None:
            config["upstreams"]["uptime_kuma"]["ca_bundle"] = str(ca_bundle)

    return make_app(changes)


def test_without_ca_bundle_the_certificate_is_refused_and_the_card_says_so_in_words(
    make_app: Callable[..., Flask], tls_kuma: tuple[SimServer, str]
) -> None:
    server, url = tls_kuma
    client = _status_app(make_app, url).test_client()

    html = card(client, "status", "Data unavailable", timeout=10)

    assert 'class="widget-content is-error"' in html
    assert "Uptime Kuma&#39;s certificate could not be verified" in html
    shown = " ".join(shown_text(html))
    assert not re.search(r"https?://|127\.0\.0\.1|/api/|certificate verify failed", shown), shown
    assert server.count() == 0  # refused at the handshake: no request reached the upstream
    page = client.get("/", headers={"Accept-Language": "en"})
    assert page.status_code == 200 and 'id="widget-status"' in page.get_data(as_text=True)


def test_with_ca_bundle_the_same_upstream_is_read_and_the_card_shows_its_data(
    make_app: Callable[..., Flask], tls_kuma: tuple[SimServer, str], ca_pem: Path
) -> None:
    server, url = tls_kuma
    client = _status_app(make_app, url, ca_bundle=ca_pem).test_client()

    html = card(client, "status", "SonarQube", timeout=10)

    assert 'class="widget-content is-ok"' in html
    assert "GitLab" in html and "SonarQube" in html  # monitors of the status pages, read over TLS
    assert server.count("/api/status-page/") > 0


# --- every upstream's client takes the same setting ----------------------------------------------


@dataclass(frozen=True)
class Case:
    """An upstream, its simulator (the first server; others it needs follow) and one read."""

    upstream: AnyUpstream
    servers: Callable[[], list[SimServer]]
    read: Callable[[Any], Any]
    credentials: dict[str, str] = field(default_factory=dict)
    path: str = ""  # after the server's URL: the `url` the section gives


def _monitoring(first: str) -> list[SimServer]:
    prometheus, alertmanager, _ = monitoring.make_servers()
    return [prometheus, alertmanager] if first == "prometheus" else [alertmanager, prometheus]


ACCOUNT, _, PASSWORD = taiga.SERVICE_ACCOUNT
CASES = [
    Case(UPTIME_KUMA, lambda: [uptime_kuma.make_server()[0]], lambda c: c.status_page("platform").monitors),
    Case(PROMETHEUS, lambda: _monitoring("prometheus"), lambda c: c.alerts()),
    Case(ALERTMANAGER, lambda: _monitoring("alertmanager"), lambda c: c.state().alerts),
    Case(GITLAB, lambda: [gitlab.make_server()[0]], lambda c: c.user("camille"), {"token": gitlab.TOKEN}),
    Case(
        TAIGA,
        lambda: [taiga.make_server()[0]],
        lambda c: c.login().access,
        {"username": ACCOUNT, "password": PASSWORD},
        "/api/v1/",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.upstream.name for case in CASES])
def test_each_upstream_client_verifies_against_its_ca_bundle(
    ca: trustme.CA, ca_pem: Path, case: Case
) -> None:
    started = case.servers()
    url = serve_tls(started[0], ca)
    for other in started[1:]:
        other.start()
    try:

        def client(**tls: Any) -> Any:
            section = case.upstream.settings(url=url + case.path, timeout=3, **tls)
            setup = ClientSetup(section, requests.Session(), case.credentials, LocalStore())
            return case.upstream.make_client(setup)

        with pytest.raises(UpstreamUnavailable) as refused:
            case.read(client())
        assert str(refused.value) == f"{case.upstream.label}'s certificate could not be verified"
        assert "SSLError" in refused.value.detail  # the cause is in the log line, not on the card
        assert started[0].count() == 0

        assert case.read(client(ca_bundle=ca_pem))  # the same upstream, its CA given: read
        assert started[0].count() > 0
    finally:
        for server in started:
            server.stop()
