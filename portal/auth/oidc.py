"""Keycloak through python-keycloak: the discovery document and keys cached, every token checked.

python-keycloak fetches the discovery document and the keys on every call unless given them, does
not URL-encode `auth_url`, and mutates its connection's shared headers in `token()`; so this module
caches both documents itself, builds the browser URLs with `urlencode`, and lends each call a
`KeycloakOpenID` of its own from a small pool per process (created lazily, after gunicorn forks)
with no retries, so that a reset connection cannot send one authorization code twice.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlencode

import requests
from jwcrypto import jwk, jwt
from jwcrypto.common import JWException
from keycloak import KeycloakOpenID
from keycloak.exceptions import KeycloakConnectionError, KeycloakError
from keycloak.pkce_utils import generate_code_challenge, generate_code_verifier

from ..config import OidcSection
from .client_pool import ClientPool

log = logging.getLogger(__name__)

SCOPE = "openid profile email"
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
# Asymmetric algorithms only: a token "signed" with the client secret or with "none" is refused.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
LEEWAY = 30  # seconds of clock difference tolerated on exp / iat
DISCOVERY_TTL = 3600.0
KEYS_TTL = 3600.0
# An unknown `kid` refetches the keys, but not more often than this (anyone can send a token).
KEYS_MIN_REFRESH = 1.0
# Keycloak is called at a login or a token refresh, rarely at once: a few clients per process
# serve them (one per thread cost each thread its own HTTP sessions, about 0.8 MiB, measured).
CLIENTS_PER_PROCESS = 4


class OidcError(Exception):
    """A step of the login failed; `kind` says whose fault it is, for the status and the page."""

    kind: ClassVar[str] = "misbehaving"
    status: ClassVar[int] = 502

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ProviderUnavailable(OidcError):
    """Keycloak cannot be reached, times out or answers 5xx."""

    kind = "unavailable"
    status = 503


class ProviderMisbehaving(OidcError):
    """Keycloak answered something unusable: not JSON, a bad signature, a wrong issuer, ..."""


class LoginRejected(OidcError):
    """The answer does not belong to the login this browser started (state, nonce)."""

    kind = "rejected"
    status = 400


class GrantRefused(LoginRejected):
    """Keycloak refused the code or the refresh token (used, expired, or its session ended)."""


@dataclass(frozen=True)
class Discovery:
    """The parts of the discovery document the portal uses."""

    issuer: str
    authorization_endpoint: str
    end_session_endpoint: str | None
    fetched_at: float


@dataclass(frozen=True)
class LoginRequest:
    """What the browser is sent to Keycloak with, and what the callback must find again."""

    url: str
    state: str
    nonce: str
    code_verifier: str


@dataclass(frozen=True)
class Tokens:
    """A checked token response: claims of the ID and access tokens, and what to keep server-side."""

    id_claims: dict[str, Any]
    access_claims: dict[str, Any]
    id_token: str
    refresh_token: str
    expires_in: float
    refresh_expires_in: float


def _random(length: int = 32) -> str:
    # The verifier generator is a URL-safe random string: fine for state and nonce too.
    return str(generate_code_verifier(length))


class OidcClient:
    """One per process: Keycloak's endpoints and keys, cached, and the token checks."""

    def __init__(
        self,
        settings: OidcSection,
        client_secret: str,
        observe: Callable[[str, float], None] | None = None,
    ) -> None:
        self.settings = settings
        # Told each call's outcome and seconds: the metrics' upstream "keycloak" (SREs see a
        # Keycloak that fails the portal's sign-ins and refreshes, as any other upstream).
        self._observe = observe or (lambda outcome, seconds: None)
        self.client_id = settings.client_id
        self.logout_token_max_age = float(settings.logout_token_max_age)
        self._secret = client_secret
        self._clients: ClientPool[KeycloakOpenID] = ClientPool(
            self._make_openid,
            CLIENTS_PER_PROCESS,
            wait=settings.timeout,
            busy=lambda: ProviderUnavailable("too many calls to Keycloak at once in this process"),
        )
        self._lock = threading.Lock()
        self._discovery: Discovery | None = None
        self._keys: jwk.JWKSet | None = None
        self._keys_fetched_at = 0.0

    # --- python-keycloak, lent one call at a time -------------------------------------------

    def _make_openid(self) -> KeycloakOpenID:
        settings = self.settings
        verify: bool | str = str(settings.ca_bundle) if settings.ca_bundle else settings.verify_tls
        return KeycloakOpenID(
            server_url=settings.base_url,
            realm_name=settings.realm,
            client_id=settings.client_id,
            client_secret_key=self._secret,
            verify=verify,
            timeout=max(1, math.ceil(settings.timeout)),
            max_retries=0,
        )

    @contextmanager
    def _calling(self) -> Iterator[KeycloakOpenID]:
        """A python-keycloak client for one call, whose outcome and time are told to `observe`."""
        with self._clients.lend() as openid:
            began = time.monotonic()
            outcome = "ok"
            try:
                yield openid
            except Exception as exc:
                outcome = _outcome(exc)
                raise
            finally:
                self._observe(outcome, time.monotonic() - began)

    @staticmethod
    def _failure(exc: Exception, what: str) -> OidcError:
        """Map python-keycloak's exceptions onto the portal's."""
        if isinstance(exc, KeycloakConnectionError):
            return ProviderUnavailable(f"{what}: Keycloak cannot be reached")
        if isinstance(exc, KeycloakError):
            code = exc.response_code or 0
            if code >= 500:
                return ProviderUnavailable(f"{what}: Keycloak answered HTTP {code}")
            error = _oauth_error(exc.response_body)
            if code == 400 and error == "invalid_grant":
                return GrantRefused(f"{what}: Keycloak refused the grant ({error})")
            return ProviderMisbehaving(f"{what}: Keycloak answered HTTP {code} {error}".rstrip())
        # python-keycloak 7 raises TypeError when the body is not the JSON object it expects.
        return ProviderMisbehaving(f"{what}: unusable answer ({type(exc).__name__})")

    # --- cached documents -----------------------------------------------------------------

    def discovery(self) -> Discovery:
        """The discovery document, fetched once an hour at most (and at first use)."""
        cached = self._discovery
        if cached is not None and time.time() - cached.fetched_at < DISCOVERY_TTL:
            return cached
        with self._lock:
            cached = self._discovery
            if cached is not None and time.time() - cached.fetched_at < DISCOVERY_TTL:
                return cached
            try:
                with self._calling() as openid:
                    document = openid.well_known()
            except (KeycloakError, TypeError, ValueError) as exc:
                if cached is not None:  # keep using the last good one while Keycloak is away
                    log.warning("keeping the cached discovery document", extra={"event": "oidc_stale"})
                    return cached
                raise self._failure(exc, "discovery") from exc
            self._discovery = _parse_discovery(document)
            return self._discovery

    def _key_set(self, refresh: bool = False) -> jwk.JWKSet:
        """The realm's public keys; `refresh` refetches them (a `kid` we do not know yet)."""
        now = time.time()
        with self._lock:
            keys = self._keys
            fresh = keys is not None and now - self._keys_fetched_at < KEYS_TTL
            if fresh and not (refresh and now - self._keys_fetched_at >= KEYS_MIN_REFRESH):
                assert keys is not None
                return keys
            try:
                with self._calling() as openid:
                    document = openid.certs()
                keys = _parse_keys(document)
            except (KeycloakError, TypeError, ValueError, JWException) as exc:
                if self._keys is not None:
                    return self._keys
                raise self._failure(exc, "keys") from exc
            self._keys, self._keys_fetched_at = keys, now
            return keys

    # --- the browser's trip to Keycloak and back --------------------------------------------

    def login_request(self, redirect_uri: str, language: str) -> LoginRequest:
        """The authorization URL with PKCE (S256), state and nonce, and the values to keep."""
        discovery = self.discovery()
        state, nonce, verifier = _random(32), _random(32), _random(64)
        challenge, method = generate_code_challenge(verifier, "S256")
        query = urlencode(
            {
                "client_id": self.client_id,
                "response_type": "code",
                "redirect_uri": redirect_uri,
                "scope": SCOPE,
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": method,
                "ui_locales": language,
            }
        )
        endpoint = discovery.authorization_endpoint
        return LoginRequest(f"{endpoint}{'&' if '?' in endpoint else '?'}{query}", state, nonce, verifier)

    def exchange(self, code: str, redirect_uri: str, code_verifier: str, nonce: str) -> Tokens:
        """Trade the authorization code for tokens and check them (nonce included)."""
        try:
            with self._calling() as openid:
                response = openid.token(
                    grant_type="authorization_code",
                    code=code,
                    redirect_uri=redirect_uri,
                    code_verifier=code_verifier,
                )
        except (KeycloakError, TypeError, ValueError) as exc:
            raise self._failure(exc, "code exchange") from exc
        return self._check_response(response, nonce=nonce)

    def refresh(self, refresh_token: str) -> Tokens:
        """New tokens for a session; GrantRefused when Keycloak's session is over."""
        try:
            with self._calling() as openid:
                response = openid.refresh_token(refresh_token)
        except (KeycloakError, TypeError, ValueError) as exc:
            raise self._failure(exc, "refresh") from exc
        return self._check_response(response, nonce=None, previous_refresh=refresh_token)

    def end_session_url(self, id_token: str | None, post_logout_redirect_uri: str, language: str) -> str:
        """Keycloak's RP-initiated logout URL (None when Keycloak has no end_session_endpoint)."""
        endpoint = self.discovery().end_session_endpoint
        if not endpoint:
            raise ProviderMisbehaving("logout: the discovery document has no end_session_endpoint")
        params = {"post_logout_redirect_uri": post_logout_redirect_uri, "client_id": self.client_id}
        if id_token:
            params["id_token_hint"] = id_token
        params["ui_locales"] = language
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"

    # --- token checks -----------------------------------------------------------------------

    def _check_response(
        self, response: dict[str, Any], nonce: str | None, previous_refresh: str | None = None
    ) -> Tokens:
        id_token = response.get("id_token")
        access_token = response.get("access_token")
        refresh_token = response.get("refresh_token") or previous_refresh
        if not isinstance(access_token, str) or not isinstance(refresh_token, str):
            raise ProviderMisbehaving("token response without access or refresh token")
        if nonce is not None and not isinstance(id_token, str):
            raise ProviderMisbehaving("token response without an ID token (is the openid scope allowed?)")
        id_claims: dict[str, Any] = {}
        if isinstance(id_token, str):
            id_claims = self.verify_id_token(id_token, nonce)
        access_claims = self.verify_access_token(access_token)
        if id_claims and access_claims.get("sub") != id_claims.get("sub"):
            raise ProviderMisbehaving("the ID and access tokens name different users")
        return Tokens(
            id_claims=id_claims,
            access_claims=access_claims,
            id_token=id_token if isinstance(id_token, str) else "",
            refresh_token=refresh_token,
            expires_in=_seconds(response.get("expires_in"), 300),
            refresh_expires_in=_seconds(response.get("refresh_expires_in"), 0),
        )

    def verify_id_token(self, token: str, nonce: str | None) -> dict[str, Any]:
        """Signature, iss, aud, azp, exp, iat, and the nonce this login sent."""
        claims = self._verify(token, {"iss": self.discovery().issuer, "aud": self.client_id, "exp": None})
        self._check_azp(claims, required=False)
        if nonce is not None and not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise LoginRejected("the ID token's nonce is not the one this login sent")
        return claims

    def verify_access_token(self, token: str) -> dict[str, Any]:
        """Keycloak's access token is a JWT for "account": check it was issued to this client."""
        claims = self._verify(token, {"iss": self.discovery().issuer, "exp": None, "sub": None})
        self._check_azp(claims, required=True)
        return claims

    def verify_logout_token(self, token: str) -> dict[str, Any]:
        """A back-channel logout token: signature, iss, aud, iat, the logout event, sid or sub."""
        claims = self._verify(token, {"iss": self.discovery().issuer, "aud": self.client_id, "iat": None})
        events = claims.get("events")
        if not isinstance(events, dict) or BACKCHANNEL_EVENT not in events:
            raise ProviderMisbehaving("logout token without the back-channel logout event")
        if "nonce" in claims:
            raise ProviderMisbehaving("logout token with a nonce (an ID token?)")
        if not claims.get("sid") and not claims.get("sub"):
            raise ProviderMisbehaving("logout token names neither a session nor a user")
        expires = claims.get("exp")
        if expires is not None and (not isinstance(expires, int | float) or expires + LEEWAY < time.time()):
            raise ProviderMisbehaving("logout token expired")
        issued = claims.get("iat")
        age = (
            time.time() - issued if isinstance(issued, int | float) and not isinstance(issued, bool) else None
        )
        if age is None or not -LEEWAY <= age <= self.logout_token_max_age + LEEWAY:
            raise ProviderMisbehaving("logout token issued too long ago (or in the future)")
        if not isinstance(claims.get("jti"), str) or not claims["jti"]:
            raise ProviderMisbehaving("logout token without an id (jti)")
        return claims

    def _check_azp(self, claims: dict[str, Any], required: bool) -> None:
        azp = claims.get("azp")
        audience = claims.get("aud")
        several = isinstance(audience, list) and len(audience) > 1
        if (azp is not None or required or several) and azp != self.client_id:
            raise ProviderMisbehaving("the token was issued to another client (azp)")

    def _verify(self, token: str, check_claims: dict[str, Any]) -> dict[str, Any]:
        """Decode and check with python-keycloak, refetching the keys once for an unknown kid."""

        def decode(keys: jwk.JWKSet) -> dict[str, Any]:
            with self._clients.lend() as openid:  # no call: the keys are at hand
                claims = openid.decode_token(
                    token,
                    key=keys,
                    check_claims=check_claims,
                    algs=ALGORITHMS,
                    expected_type="JWS",
                    leeway=LEEWAY,
                )
            return dict(claims)

        try:
            try:
                return decode(self._key_set())
            except jwt.JWTMissingKey:
                return decode(self._key_set(refresh=True))
        except OidcError:
            raise
        except (JWException, ValueError, TypeError) as exc:
            raise ProviderMisbehaving(f"token refused: {type(exc).__name__}") from exc


def _outcome(exc: Exception) -> str:
    """The metrics' outcome of a failed call, as for the other upstreams (upstreams/errors.py)."""
    if isinstance(exc, KeycloakConnectionError):
        return "timeout" if isinstance(exc.__cause__, requests.Timeout) else "unreachable"
    if isinstance(exc, KeycloakError):
        code = exc.response_code or 0
        if code == 429:
            return "throttled"
        if code >= 500:
            return "server_error"
        if code in (401, 403):
            return "auth"
        if code == 400 and _oauth_error(exc.response_body) == "invalid_grant":
            return "rejected"  # a session Keycloak ended: no fault of anyone's
        return "bad_response"
    if isinstance(exc, TypeError | ValueError):
        return "bad_response"
    return "error"


def _parse_discovery(document: Any) -> Discovery:
    if not isinstance(document, dict):
        raise ProviderMisbehaving("discovery: not a JSON object")
    try:
        issuer = document["issuer"]
        authorization = document["authorization_endpoint"]
    except KeyError as exc:
        raise ProviderMisbehaving(f"discovery: no {exc.args[0]}") from None
    end_session = document.get("end_session_endpoint")
    if not all(isinstance(v, str) and v.startswith(("http://", "https://")) for v in (issuer, authorization)):
        raise ProviderMisbehaving("discovery: issuer or authorization endpoint is not a URL")
    end_session = end_session if isinstance(end_session, str) else None
    return Discovery(issuer, authorization, end_session, time.time())


def _parse_keys(document: Any) -> jwk.JWKSet:
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ProviderMisbehaving("keys: not a JWK set")
    keys = jwk.JWKSet()
    for entry in document["keys"]:
        if isinstance(entry, dict) and entry.get("use", "sig") == "sig":
            keys.add(jwk.JWK(**entry))
    return keys


def _oauth_error(body: Any) -> str:
    """The `error` of an OAuth error body (python-keycloak gives the raw bytes)."""
    try:
        parsed = json.loads(body) if isinstance(body, bytes | str) else None
    except ValueError:
        return ""
    return str(parsed.get("error", ""))[:60] if isinstance(parsed, dict) else ""


def _seconds(value: Any, default: float) -> float:
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return default
