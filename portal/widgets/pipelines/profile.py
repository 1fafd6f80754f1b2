"""The user menu's GitLab line: the user's GitLab avatar and a link to their GitLab profile.

The menu loads `GET /widgets/pipelines/me` once the page is shown (the shell never waits on
GitLab). The user is looked up with `/users?username=` (their `web_url` is the profile link),
and their avatar is fetched by the portal and served from `GET /widgets/pipelines/avatar`:
only from GitLab's own host (or `avatar_hosts`), only PNG, JPEG, GIF or WebP whose first bytes
agree with the type, at most `avatar_max_bytes`. So the page keeps its `img-src 'self' data:`
policy, and the browser never asks GitLab (or a Gravatar) for anything. Both are kept an hour,
under the user's subject.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial

from flask import Response, abort, render_template, request

from ...caching.widget_cache import FetchPolicy
from ...identity import current_user
from ...state import portal_state
from ...upstreams.errors import UpstreamBadResponse
from .client import Avatar, GitLabClient, Person, origin_of
from .widget import GITLAB, GitLabSection, PipelinesSettings, PipelinesWidget

PROFILE_TTL = 3600.0  # seconds a user's GitLab profile and avatar are kept
AVATAR_POLL = 0.1  # s between two looks at the profile's fetch, for an avatar asked before it landed
MENU_RETRY = 1.0  # s before the menu asks again for a profile whose fetch has not landed yet
MENU_TRIES = 20  # at most this many asks (the fetch ends within its timeouts; GitLab down: none)


@dataclass(frozen=True)
class Profile:
    """A user's GitLab account (None: GitLab has no user by that name), and their avatar if fetched."""

    person: Person | None
    avatar: Avatar | None = None

    @property
    def avatar_version(self) -> str:
        """A hash of the image: its URL changes with it, so the browser may keep it long."""
        return hashlib.blake2b(self.avatar.data, digest_size=6).hexdigest() if self.avatar else ""


def current_profile(widget: PipelinesWidget) -> tuple[Profile | None, str | None]:
    """The current user's GitLab profile (None when the card is not theirs to see) and username."""
    profile, username, _ = _lookup(widget)
    return profile, username


def _lookup(widget: PipelinesWidget) -> tuple[Profile | None, str | None, bool]:
    """`current_profile`, and whether its fetch is still under way (ask again soon)."""
    state = portal_state()
    ctx = state.widgets[widget.slug]
    user = current_user()
    if user is None or not ctx.configured or not ctx.settings.enabled or not user.may_see(ctx.settings.roles):
        return None, None, False
    settings = ctx.settings
    assert isinstance(settings, PipelinesSettings)
    username = user.claim(settings.username_claim)
    if not username:
        return None, None, False
    section = ctx.config.upstream(GITLAB.name)
    assert isinstance(section, GitLabSection)
    fetch = partial(fetch_profile, ctx.client(GITLAB), section, username)
    policy: FetchPolicy = replace(ctx.policy(GITLAB), ttl=PROFILE_TTL, stale_ttl=PROFILE_TTL * 24)
    result = state.cache.get_or_fetch(ctx.key("profile", user), fetch, policy, widget.slug)
    return result.value, username, result.state == "pending"


def user_menu(widget: PipelinesWidget) -> Response:
    """The user menu's GitLab line: avatar and profile link (nothing when unknown).

    A first look may come before GitLab has answered (a fetch waits only so long): the line
    then asks again a second later, so the menu fills in without a reload.
    """
    profile, username, pending = _lookup(widget)
    tries = request.args.get("attempt", default=0, type=int)
    again = pending and tries < MENU_TRIES
    html = render_template(
        "widgets/pipelines_menu.html",
        profile=profile,
        username=username,
        again=again and {"attempt": tries + 1, "delay": MENU_RETRY},
    )
    return Response(html, headers={"Cache-Control": "no-store"}, content_type="text/html; charset=utf-8")


def avatar(widget: PipelinesWidget) -> Response:
    """The user's GitLab avatar, served by the portal (checked, size-capped, kept an hour).

    The menu that names it may have come from another worker: when this one has not read the
    profile yet, the request waits for that fetch (two calls, each within the timeout) rather
    than answer 404, which the header would show as a broken image. Rare: the image's URL is
    versioned, and the browser keeps it for a month. Only while a fetch is under way: GitLab
    failing (or its breaker open) is a 404 at once, never a thread held for nothing.
    """
    profile, _, pending = _lookup(widget)
    if profile is None and pending:
        deadline = time.monotonic() + 2 * portal_state().widgets[widget.slug].policy(GITLAB).timeout + 0.5
        while profile is None and pending and time.monotonic() < deadline:
            time.sleep(AVATAR_POLL)
            profile, _, pending = _lookup(widget)
    if profile is None or profile.avatar is None:
        abort(404)
    versioned = request.args.get("v") == profile.avatar_version
    headers = {
        "Cache-Control": f"private, max-age={86400 * 30 if versioned else 300}",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Content-Disposition": "inline",
    }
    return Response(profile.avatar.data, headers=headers, content_type=profile.avatar.content_type)


def fetch_profile(client: GitLabClient, section: GitLabSection, username: str) -> Profile:
    """`/users?username=`, then the avatar when it may be fetched (an image that is not: left out)."""
    person = client.user(username)
    if person is None:
        return Profile(None)
    image = None
    if person.avatar_url and avatar_allowed(person.avatar_url, str(section.url), section.avatar_hosts):
        try:
            image = client.avatar(person.avatar_url, section.avatar_max_bytes)
        except UpstreamBadResponse:
            image = None  # not an image, too large, gone: the menu keeps the initials
    return Profile(person, image)


def avatar_allowed(url: str, gitlab_url: str, extra_hosts: Sequence[str]) -> bool:
    """Only from GitLab's own origin, or over HTTPS (port 443) from a host the configuration names."""
    target = origin_of(url)
    if target == origin_of(gitlab_url) and target[0] in ("https", "http"):
        return True
    return target[0] == "https" and target[2] == 443 and target[1] in {host.lower() for host in extra_hosts}
