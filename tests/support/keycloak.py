"""The Keycloak-shaped provider (tests/peers/keycloak-sim) as a child process, and a browser-less login.

The provider signs with a key the tests generate, so that they can also mint tokens with the
provider's own key (logout tokens with wrong claims) and with a key it never published.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit, urlunsplit

import requests
from jwcrypto import jwk, jwt

from .processes import ROOT, free_port

SIM_DIR = ROOT / "tests" / "peers" / "keycloak-sim"
REALM = "portal"
CLIENT_ID = "portal"
CLIENT_SECRET = "portal-secret"  # the test realm's client secret (tests/peers/keycloak-sim/realm.json)
USERS = {"alice": "alice-pw", "bob": "bob-pw"}


def extra_user(index: int) -> str:
    """The name of the index-th extra user (`KeycloakSim(extra_users=...)`); their password: name + "-pw"."""
    return f"user{index:04d}"


BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


class KeycloakSim:
    """`node server.mjs` on a free loopback port, with its test controls."""

    def __init__(self, directory: Path, extra_users: int = 0, realm_file: Path | None = None) -> None:
        """`extra_users`: plain team members besides alice and bob (`extra_user(i)`), for load tests;
        `realm_file`: another realm altogether (the bench's thousand people)."""
        self.directory = directory
        self.extra_users = extra_users
        self.realm_file = realm_file
        self.port = free_port()
        self.key = jwk.JWK.generate(kty="RSA", size=2048, kid="test-signing-key", use="sig", alg="RS256")
        self.process: subprocess.Popen[bytes] | None = None
        self.log = directory / "keycloak-sim.log"

    @property
    def url(self) -> str:
        """The server URL the portal is configured with (Keycloak 17+: no /auth)."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}/realms/{REALM}"

    def start(self) -> KeycloakSim:
        """Start it, and wait until it answers. A start that fails (its port, free when chosen,
        taken by another process of the run before it listened) is tried again, on another port,
        up to three times, before the error (which says what each saw) is raised.

        The starts that never listened (two clean runs of 2026-12-05: oidc-provider's first
        warning, then nothing, the process asleep) were Node.js 20 deadlocking on itself while
        server.mjs exported a freshly generated key as a JWK; server.mjs no longer does that."""
        node = shutil.which("node")
        if node is None or not (SIM_DIR / "node_modules" / "oidc-provider").is_dir():
            raise RuntimeError("the Keycloak simulator is not installed: run `make test-deps`")
        keys = self.directory / "jwks.json"
        keys.write_text(json.dumps({"keys": [self.key.export(private_key=True, as_dict=True)]}))
        realm = str(self.realm_file or self._realm_file())
        problems = []
        for attempt in (1, 2, 3):
            if attempt > 1:
                self.port = free_port()
            problem = self._start_once(node, realm, keys)
            if not problem:
                return self
            problems.append(problem)
        raise RuntimeError("keycloak-sim did not start, three times:\n" + "\n".join(problems))

    def _start_once(self, node: str, realm: str, keys: Path) -> str:
        """Empty when it answers; else what went wrong (it is then stopped)."""
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OIDC_")},
            "OIDC_HOST": "127.0.0.1",
            "OIDC_PORT": str(self.port),
            "OIDC_REALM_FILE": realm,
            "OIDC_JWKS_FILE": str(keys),
        }
        with self.log.open("wb") as log:
            process = subprocess.Popen(
                [node, "server.mjs"], cwd=SIM_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self.process = process
        deadline = time.monotonic() + 45
        last = ""
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if requests.get(f"{self.url}health/ready", timeout=1).ok:
                    return ""
            except requests.RequestException as exc:  # not listening yet
                last = type(exc).__name__
            time.sleep(0.05)
        state = "still running" if process.poll() is None else f"exited with {process.returncode}"
        self.stop()
        return (
            f"port {self.port}, {state}, last {last or 'answer not ok'}; its output:\n{self.log.read_text()}"
        )

    def _realm_file(self) -> Path:
        """The test realm, with the extra users when asked for."""
        if not self.extra_users:
            return SIM_DIR / "realm.json"
        realm = json.loads((SIM_DIR / "realm.json").read_text(encoding="utf-8"))
        for index in range(self.extra_users):
            name = extra_user(index)
            realm["users"].append(
                {
                    "username": name,
                    "password": f"{name}-pw",
                    "sub": f"7d0c2a1e-9999-4c6e-9a5e-{index:012d}",
                    "email": f"{name}@example.org",
                    "given_name": "User",
                    "family_name": f"{index:04d}",
                    "realm_roles": ["portal-user"],
                    "client_roles": {},
                    "groups": ["/team-b"],
                }
            )
        path = self.directory / "realm-extra-users.json"
        path.write_text(json.dumps(realm), encoding="utf-8")
        return path

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    # --- controls ---------------------------------------------------------------------------

    def _post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = requests.post(f"{self.url}_sim/{path}", json=body or {}, timeout=10)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        """Back to normal: up, signing with its key, default lifetimes, no back-channel URL."""
        self._post("reset")

    def mode(self, **changes: Any) -> None:
        """down="error"|"garbage"|None, signing="rogue"|"rotated"|"normal", ttl={...} (seconds)."""
        self._post("mode", changes)

    def backchannel(self, url: str | None) -> None:
        """Where Keycloak posts logout tokens for the portal client (None: nowhere)."""
        self._post(f"clients/{CLIENT_ID}", {"backchannel_logout_uri": url})

    def sign_out(self, username: str) -> int:
        """The admin console's "Sign out" of a user: every session of theirs ends."""
        return int(self._post(f"users/{username}/logout")["sessions_ended"])

    def calls(self) -> dict[str, int]:
        """Requests received, by path, since the last reset."""
        found: dict[str, int] = requests.get(f"{self.url}_sim/calls", timeout=10).json()
        return found

    def count(self, suffix: str) -> int:
        return sum(n for path, n in self.calls().items() if path.endswith(suffix))

    def mint(self, claims: dict[str, Any], key: jwk.JWK | None = None, kid: str | None = None) -> str:
        """A JWT signed with the provider's key (or another), e.g. a logout token."""
        signing = key or self.key
        header = {"alg": "RS256", "kid": kid or signing.get("kid") or "none", "typ": "logout+jwt"}
        token = jwt.JWT(header=header, claims=claims)
        token.make_signed_token(signing)
        return str(token.serialize())


# --- a login through the provider's form, with requests ------------------------------------


@dataclass
class LoginTrip:
    """The steps of one login, kept so that tests can tamper with each."""

    authorization_url: str
    callback_url: str = ""


def _form(page: requests.Response, form_id: str) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of a form in a page."""
    match = re.search(rf'<form[^>]*id="{form_id}"[^>]*action="([^"]+)"', page.text) or re.search(
        r'<form[^>]*action="([^"]+)"', page.text
    )
    assert match, f"no form in {page.url}: {page.text[:500]}"
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    return urljoin(page.url, html.unescape(match.group(1))), {k: html.unescape(v) for k, v in fields.items()}


def start_login(browser: requests.Session, portal: str, next_path: str | None = None) -> LoginTrip:
    """Ask the portal to log in; returns where it sends the browser (not followed)."""
    params = {"next": next_path} if next_path is not None else {}
    response = browser.get(f"{portal}/auth/login", params=params, allow_redirects=False, timeout=15)
    assert response.status_code == 302, response.text[:500]
    return LoginTrip(authorization_url=response.headers["Location"])


def with_query(url: str, **changes: str) -> str:
    """The URL with some query parameters replaced."""
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def authenticate(
    browser: requests.Session, trip: LoginTrip, username: str, password: str
) -> requests.Response:
    """Go to Keycloak, fill its form, and follow it until it sends the browser back to the portal."""
    page = browser.get(trip.authorization_url, timeout=15)
    assert 'id="kc-form-login"' in page.text, page.text[:500]
    action, _ = _form(page, "kc-form-login")
    response = browser.post(
        action, data={"username": username, "password": password}, allow_redirects=False, timeout=15
    )
    provider = urlsplit(trip.authorization_url).netloc
    while (
        response.is_redirect
        and urlsplit(urljoin(response.url, response.headers["Location"])).netloc == provider
    ):
        response = browser.get(
            urljoin(response.url, response.headers["Location"]), allow_redirects=False, timeout=15
        )
    if response.is_redirect:
        trip.callback_url = urljoin(response.url, response.headers["Location"])
    return response


def login(
    browser: requests.Session, portal: str, username: str, next_path: str | None = None
) -> requests.Response:
    """A whole login as a person would do it; returns the page the portal lands on."""
    trip = start_login(browser, portal, next_path)
    authenticate(browser, trip, username, USERS.get(username, f"{username}-pw"))
    assert trip.callback_url, "the provider did not send the browser back"
    return browser.get(trip.callback_url, timeout=15)


def refresh_target(page: str) -> str:
    """Where a page's meta refresh goes."""
    match = re.search(r'<meta http-equiv="refresh" content="0;url=([^"]+)">', page)
    assert match, "no meta refresh on the page"
    return html.unescape(match.group(1))


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "no logout form on the page"
    return match.group(1)


def logout(browser: requests.Session, portal: str) -> requests.Response:
    """Sign out from the portal's menu, through the provider's logout confirmation."""
    page = browser.get(f"{portal}/", timeout=15)
    leaving = browser.post(
        f"{portal}/auth/logout", data={"csrf_token": csrf_of(page.text), "next": "/"}, timeout=15
    )
    response = browser.get(refresh_target(leaving.text), timeout=15)
    if "<form" in response.text and "logout" in response.text:  # the provider's auto-submitted form
        action, fields = _form(response, "op.logoutForm")
        response = browser.post(action, data=fields, timeout=15)
    return response
