"""Sessions across processes: gunicorn workers share them, and replicas share them through Redis."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from .conftest import SSO_ENV, sso_config
from .support.keycloak import KeycloakSim, login
from .support.live import serve
from .support.processes import RedisServer, portal_process
from .test_auth import _logout_claims

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


def test_a_logout_token_accepted_by_one_replica_is_a_replay_for_the_other(
    make_sso_app: Callable[..., Flask], keycloak: KeycloakSim, redis_server: RedisServer
) -> None:
    """The token ids are remembered in the shared Redis, not in each replica's own files."""

    def with_redis(config: dict[str, Any]) -> None:
        config["cache"]["redis_url"] = redis_server.url

    first, second = make_sso_app(with_redis), make_sso_app(with_redis)
    alone = make_sso_app()  # no Redis: remembers only what it saw itself
    token = keycloak.mint(_logout_claims(keycloak))
    path = "/auth/backchannel-logout"
    assert first.test_client().post(path, data={"logout_token": token}).status_code == 200
    with serve(second) as url, requests.Session() as alice:
        login(alice, url, "alice")  # signed in on the other replica afterwards: the old token must not end it
        replayed = requests.post(f"{url}{path}", data={"logout_token": token}, timeout=10)
        assert replayed.status_code == 400 and replayed.json() == {"error": "invalid_request"}
        assert alice.get(f"{url}/", allow_redirects=False).status_code == 200
    assert alone.test_client().post(path, data={"logout_token": token}).status_code == 200
    assert second.test_client().post(path, data={"logout_token": token}).status_code == 400


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
