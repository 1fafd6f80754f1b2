"""Who is asking: the `User` every view and widget sees, whatever the login mechanism."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from flask import g

# Roles Keycloak gives everyone: they say nothing about what to show (and are left out of the
# cookie), so the configuration cannot restrict anything to them.
EVERYONES_ROLES = frozenset({"offline_access", "uma_authorization"})


def everyones_role(name: str) -> bool:
    """True for a role every Keycloak user holds (`offline_access`, `default-roles-<realm>`, ...)."""
    return name in EVERYONES_ROLES or name.startswith("default-roles-")


@dataclass(frozen=True)
class User:
    """The identity a session carries: never tokens, only who the user is and may see."""

    subject: str
    username: str
    name: str
    email: str = ""
    roles: frozenset[str] = field(default_factory=frozenset)
    groups: frozenset[str] = field(default_factory=frozenset)
    demo: bool = False
    # Other claims of the token that the configuration asks for (a widget's `identity_claims`,
    # an upstream section's), as (name, value) pairs: e.g. the claim holding the GitLab username.
    claims: tuple[tuple[str, str], ...] = ()

    def may_see(self, allowed: Iterable[str]) -> bool:
        """True when nothing is required, or the user holds one of the roles or groups."""
        required = set(allowed)
        return not required or bool(required & (self.roles | self.groups))

    def claim(self, name: str) -> str | None:
        """A claim of the user's token: `preferred_username` is the username; others, if kept."""
        if name == "preferred_username":
            return self.username
        return dict(self.claims).get(name)

    @property
    def initials(self) -> str:
        """Up to two letters for the avatar."""
        words = [w for w in self.name.replace("-", " ").split() if w[:1].isalpha()]
        letters = "".join(w[0] for w in words[:2]) or self.username[:2]
        return letters.upper()


# The identities of demo mode (never with single sign-on), each visibly marked in the UI: an
# administrator and a plain team member, so that the demo shows what roles change.
DEMO_USER = User(
    subject="demo-0001",
    username="camille",
    name="Camille Demo",
    email="camille@demo.invalid",
    roles=frozenset({"portal-admin", "portal-user"}),
    groups=frozenset({"/admins", "/team-a"}),
    demo=True,
)
DEMO_MEMBER = User(
    subject="demo-0002",
    username="dominique",
    name="Dominique Demo",
    email="dominique@demo.invalid",
    roles=frozenset({"portal-user"}),
    groups=frozenset({"/team-b"}),
    demo=True,
)
DEMO_USERS = {user.username: user for user in (DEMO_USER, DEMO_MEMBER)}


def current_user() -> User | None:
    """The user of the current request (None when nobody is logged in)."""
    user: User | None = g.get("user")
    return user
