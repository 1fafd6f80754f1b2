"""Sessions across processes: gunicorn workers share them, and replicas share them through Redis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from .conftest import SSO_ENV, sso_config
from .support.keycloak import KeycloakSim, login
from .support.processes import RedisServer, portal_process

pytestmark = pytest.mark.peers


def test_back_channel_logout_reaches_the_other_replica(
    portal_config: dict[str, Any], keycloak: KeycloakSim, redis_server: RedisServer, tmp_path: Path
) -> None:
    config = sso_config(portal_config, keycloak.url)
    config["cache"]["redis_url"] = redis_server.url
    with (
        portal_process(config, tmp_path, extra_env=SSO_ENV) as first,
        portal_process(config, tmp_path, extra_env=SSO_ENV) as second,
        requests.Session() as alice,
    ):
        keycloak.backchannel(f"{second}/auth/backchannel-logout")
        assert "Alice Admin" in login(alice, first, "alice").text
        # Behind a load balancer the next request may reach the other replica: same session.
        assert alice.get(f"{second}/", allow_redirects=False).status_code == 200
        assert alice.get(f"{second}/widgets/status").status_code == 200
        assert keycloak.sign_out("alice") >= 1
        # Keycloak told the second replica; the first one learns it from the shared store.
        assert alice.get(f"{first}/", allow_redirects=False).status_code == 302
        assert alice.get(f"{second}/", allow_redirects=False).status_code == 302


def test_workers_of_one_process_share_sessions_without_redis(
    portal_config: dict[str, Any], keycloak: KeycloakSim, tmp_path: Path
) -> None:
    config = sso_config(portal_config, keycloak.url)
    with (
        portal_process(config, tmp_path, workers=2, threads=4, extra_env=SSO_ENV) as url,
        requests.Session() as bob,
    ):
        keycloak.backchannel(f"{url}/auth/backchannel-logout")
        login(bob, url, "bob")
        # New connections spread over both workers; each must know the session.
        statuses = {
            requests.get(f"{url}/", cookies=bob.cookies, allow_redirects=False).status_code for _ in range(12)
        }
        assert statuses == {200}
        assert keycloak.sign_out("bob") >= 1
        statuses = {
            requests.get(f"{url}/", cookies=bob.cookies, allow_redirects=False).status_code for _ in range(12)
        }
        assert statuses == {302}
