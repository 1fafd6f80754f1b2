"""Who the tokens say the user is, and how that identity travels in the signed session cookie."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from ..identity import User, everyones_role

log = logging.getLogger(__name__)

# Roles and groups together stay under this many bytes of JSON, so the cookie stays well under 4 KB.
MAX_GRANTS_BYTES = 2000
MAX_CLAIM_CHARS = 100  # each extra claim a widget asks for (a username, an id)


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def roles_from_claims(claims: Mapping[str, Any], client_id: str) -> frozenset[str]:
    """Realm roles (`realm_access.roles`) and this client's roles (`resource_access.<client>.roles`)."""
    realm = claims.get("realm_access")
    resources = claims.get("resource_access")
    roles = set(_strings(realm.get("roles")) if isinstance(realm, dict) else [])
    if isinstance(resources, dict) and isinstance(resources.get(client_id), dict):
        roles.update(_strings(resources[client_id].get("roles")))
    return frozenset(r for r in roles if not everyones_role(r))


def kept_claims(profile: Mapping[str, Any], names: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """The claims the configuration asks for, as short strings ("true"/"false" for a boolean
    such as email_verified; absent or structured: left out)."""
    kept = []
    for name in sorted(set(names)):
        value = profile.get(name)
        if isinstance(value, bool):
            kept.append((name, "true" if value else "false"))
        elif isinstance(value, str | int) and str(value):
            kept.append((name, str(value)[:MAX_CLAIM_CHARS]))
    return tuple(kept)


def user_from_claims(
    id_claims: Mapping[str, Any], access_claims: Mapping[str, Any], client_id: str, keep: Iterable[str] = ()
) -> User:
    """The portal's user: profile from the ID token (or the access token), roles from the access token.

    `keep` names other claims to carry (see `User.claims`).
    """
    profile = {**access_claims, **id_claims}
    subject = str(profile.get("sub", ""))
    username = str(profile.get("preferred_username") or profile.get("email") or subject)
    name = str(
        profile.get("name")
        or " ".join(str(profile[k]) for k in ("given_name", "family_name") if profile.get(k))
        or username
    )
    return User(
        subject=subject,
        username=username[:100],
        name=name[:100],
        email=str(profile.get("email") or "")[:200],
        roles=roles_from_claims(access_claims, client_id),
        groups=frozenset(_strings(access_claims.get("groups"))),
        claims=kept_claims(profile, keep),
    )


def fit_grants(user: User, relevant: Iterable[str]) -> User:
    """Bound the roles and groups a cookie carries; when too many, keep those the config names."""
    size = len(json.dumps(sorted(user.roles)) + json.dumps(sorted(user.groups)))
    if size <= MAX_GRANTS_BYTES:
        return user
    wanted = set(relevant)
    log.warning(
        "too many roles and groups for the session cookie: keeping those the configuration names",
        extra={"event": "identity_trimmed", "grants": len(user.roles) + len(user.groups)},
    )
    return replace(user, roles=user.roles & wanted, groups=user.groups & wanted)


def to_cookie(user: User, session_id: str, expires_at: float, keycloak_sid: str = "") -> dict[str, object]:
    """The identity as stored in the signed cookie (never a token).

    `ks`, Keycloak's session id, lets a back-channel logout received while the session store is
    away end this session too (see sessions.OutageLedger).
    """
    data: dict[str, object] = {
        "sid": session_id,
        "ks": keycloak_sid,
        "sub": user.subject,
        "usr": user.username,
        "name": user.name,
        "email": user.email,
        "roles": sorted(user.roles),
        "groups": sorted(user.groups),
        "exp": int(expires_at),
    }
    if user.claims:
        data["claims"] = dict(user.claims)
    return data


def from_cookie(data: Any) -> tuple[User, str, float] | None:
    """The user, portal session id and expiry from the cookie; None when it is not ours."""
    if not isinstance(data, dict):
        return None
    try:
        user = User(
            subject=str(data["sub"]),
            username=str(data["usr"]),
            name=str(data["name"]),
            email=str(data.get("email", "")),
            roles=frozenset(_strings(data.get("roles"))),
            groups=frozenset(_strings(data.get("groups"))),
            claims=kept_claims(claims, claims) if isinstance(claims := data.get("claims"), dict) else (),
        )
        return user, str(data["sid"]), float(data["exp"])
    except (KeyError, TypeError, ValueError):
        return None


def keycloak_sid_of(data: Any) -> str:
    """The Keycloak session id the cookie names ("" when none)."""
    found = data.get("ks") if isinstance(data, dict) else None
    return found if isinstance(found, str) else ""
