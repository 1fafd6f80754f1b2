"""Settings that work but expose something: said at start (a log warning) and by `check-config`.

Not refused: plain http to Keycloak's in-cluster Service is the usual, safe set-up, and a test
installation may knowingly skip certificate checks. Said, so that nobody ships them unaware.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from .config import PortalConfig

# Host names that stay inside the cluster (a Service), or on the machine.
IN_CLUSTER_SUFFIXES = (".svc", ".svc.cluster.local", ".cluster.local", ".localhost")


def stays_inside(host: str) -> bool:
    """Whether plain http to `host` stays within the cluster or the machine."""
    if host == "localhost" or "." not in host or host.endswith(IN_CLUSTER_SUFFIXES):
        return True  # "keycloak", "keycloak.sso", "keycloak.sso.svc"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def insecure_settings(config: PortalConfig, credentials: Mapping[str, Mapping[str, str]]) -> list[str]:
    """One sentence per exposing setting, naming its key; `credentials`: each upstream's secrets."""
    found: list[str] = []
    oidc = config.auth.oidc if config.auth.mode == "oidc" else None
    if oidc is not None:
        host = oidc.server_url.host or ""
        if oidc.server_url.scheme == "http" and not stays_inside(host):
            found.append(
                f"auth.oidc.server_url: plain http to {host}: the client secret and people's tokens"
                " travel unencrypted (use https://, or Keycloak's Service inside the cluster)"
            )
        if not oidc.verify_tls:
            found.append(
                "auth.oidc.verify_tls: false: Keycloak's certificate is not checked, anyone on the way"
                " can pose as it (give its CA in auth.oidc.ca_bundle instead)"
            )
    upstreams = config.upstreams
    for name in type(upstreams).model_fields if upstreams is not None else ():
        section = config.upstream(name)
        if section is None:
            continue
        host = section.url.host or ""
        if section.url.scheme == "http" and credentials.get(name) and not stays_inside(host):
            found.append(
                f"upstreams.{name}.url: plain http to {host}: the portal's credentials for it travel"
                " unencrypted (use https://, or its Service inside the cluster)"
            )
        if not section.verify_tls:
            found.append(
                f"upstreams.{name}.verify_tls: false: its certificate is not checked, anyone on the way"
                f" can pose as it (give its CA in upstreams.{name}.ca_bundle instead)"
            )
    return found
