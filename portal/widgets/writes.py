"""A widget's write: guarded, sent once, audited, invalidating what it touched, answered with the card.

A widget's own route (see `Widget.register_routes`) checks what it can before calling
`widget_write` (the form's values), then hands it the change as a function. The framework:

1. refuses with a 403 card that says why when the guard does (not logged in, role, origin,
   CSRF) or the change raises `WriteRefused` (the item is not the user's, checked against the
   upstream's data);
2. does not call an upstream whose circuit is open;
3. calls the change once (never retried: a write that may have landed is reported, not repeated),
   timing it under the upstream's metrics label;
4. writes an audit line (user, widget, action, target, outcome);
5. invalidates the cache keys the change touched, in every worker, when the item may have
   changed (done, a conflict, a change that may have landed) or the upstream answered a refusal
   such as a 404 (it can be read again at once). A change that failed before it was sent (the
   upstream down, or refusing the portal's credentials) changed nothing: what the cards show is
   kept, shown as stale, instead of nothing for everyone until the upstream is back;
6. answers with the card, fresh, and a notice: done, "the item changed since your card showed
   it", or the failure.

Should the change raise anything else (a bug, or an answer nobody foresaw), the change may
have landed: the error is logged, the audit line says `portal_error`, the keys are invalidated
all the same, and the card answers 500 with a notice that says to check in the tool before
trying again (never "not made", which the portal cannot know).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from flask import Response, g

from ..identity import User, current_user
from ..state import portal_state
from ..storage import Preference, StorageUnavailable, user_preferences
from ..upstreams.breaker import CircuitBreaker, CircuitState
from ..upstreams.errors import (
    N_,
    Reason,
    UpstreamAuthError,
    UpstreamConflict,
    UpstreamError,
    UpstreamUnavailable,
)
from ..upstreams.upstream import Upstream
from ..web.guard import audit, write_refusal
from .contract import NoticeKind, Widget, WidgetContext
from .serving import serve_card

log = logging.getLogger(__name__)
UNFORESEEN = N_(
    "The portal hit an unexpected error: the change may or may not have been made."
    " Check in %(upstream)s before trying again."
)


# A change that failed after it may have reached the upstream (see UpstreamError.may_have_acted).
UNSURE = N_(
    "%(problem)s: the change may or may not have been made. Check in %(upstream)s before trying again."
)
# A change that failed before it could reach the upstream, or that the upstream refused.
NOT_MADE = N_("%(problem)s: the change was not made.")
# A person past the write pace (see write_pace.py).
TOO_MANY = N_("Too many changes in a minute: this one was not sent. Wait a moment, then try again.")


class WriteRefused(Exception):
    """The user may not make this change (the item is not theirs, say): a 403 with the reason."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(str(reason))
        self.reason = reason


@dataclass(frozen=True)
class Unchanged:
    """What a change returns when the upstream already held it (nothing written): the card
    is read again, but no other page is told to poll."""

    reason: Reason


Change = Callable[[WidgetContext, User], Reason | Unchanged | None]


def widget_write(
    widget: Widget,
    *,
    action: str,
    target: str,
    upstream: Upstream[Any],
    touches: Sequence[str],
    change: Change,
    row: str | None = None,
    amend: Callable[[str, Any], Any] | None = None,
) -> Response:
    """Run one change of `widget` on `upstream` and answer with the updated card.

    `action` and `target` name the change in the audit line ("set_status", "task 1234"); `row`
    is the key of the card's row it is about, where the card says how it went when it shows it;
    `touches` are the cache keys or prefixes to invalidate afterwards; `change` makes the call
    and returns what the card should say (None: "Saved"; `Unchanged`: nothing was written), or
    raises `WriteRefused` or an `UpstreamError`. `amend(key, value)` applies what the change
    made (as the upstream answered it) to a touched key's last value, shown while that key is
    fetched anew: a slow upstream then shows the change at once rather than the state before
    it, or nothing. A person past `WritePace`'s limit is told to wait, and nothing is sent.
    """
    state = portal_state()
    ctx = state.widgets[widget.slug]
    refusal = write_refusal(ctx.settings.roles)
    if refusal is None and not ctx.configured:
        refusal = Reason.of(N_("This widget is not configured."))
    user = current_user()
    if refusal is not None or user is None:
        audit(action, target, "refused", widget=widget.slug, reason=str(refusal))
        return serve_card(widget, refusal, "danger", status=403, notice_at=row)

    if not state.write_pace.allow(user.subject):
        audit(action, target, "too_many", widget=widget.slug, upstream=upstream.name)
        return serve_card(widget, Reason.of(TOO_MANY), "warning", notice_at=row)

    breaker = state.cache.breaker(upstream.name)
    if breaker.state is CircuitState.OPEN:
        reason = Reason.of(N_("%(upstream)s is failing: the change was not sent."), upstream=upstream.label)
        audit(action, target, "not_sent", widget=widget.slug, upstream=upstream.name)
        return serve_card(widget, reason, "danger", notice_at=row)

    began = time.monotonic()
    done = _attempt(change, ctx, user, upstream, breaker, widget.slug)
    outcome = done.outcome
    elapsed = time.monotonic() - began
    if outcome not in ("forbidden", "portal_error"):  # neither is the upstream's doing
        state.cache.observer.upstream_call(
            upstream.name, "ok" if outcome == "unchanged" else outcome, elapsed
        )
    audit(
        action,
        target,
        outcome,
        widget=widget.slug,
        upstream=upstream.name,
        duration_ms=round(elapsed * 1000, 1),
    )
    if outcome != "forbidden" and done.touched:
        for key in touches:
            # Even unchanged: the card may have shown an older state.
            state.cache.invalidate(key, None if amend is None else partial(amend, key))
        if outcome != "unchanged":
            # Every open page (this person's other tabs, teammates' dashboards) polls this tool's
            # cards at its next answer, as after a change the tool pushed (caching/changes.py).
            state.changes.announce(upstream.name)
    return serve_card(widget, done.notice, done.kind, done.status, notice_at=row)


@dataclass(frozen=True)
class _Done:
    """How a change went: what the card says, and whether the upstream's data may have moved."""

    notice: Reason
    outcome: str  # the audit line's: ok, unchanged, forbidden, conflict, an error's outcome
    kind: NoticeKind = "success"
    status: int = 200
    touched: bool = True  # what the upstream holds may have changed (or the portal cannot tell)


def _attempt(
    change: Change,
    ctx: WidgetContext,
    user: User,
    upstream: Upstream[Any],
    breaker: CircuitBreaker,
    slug: str,
) -> _Done:
    """Run `change` once (never retried), its errors turned into what the card says."""
    try:
        said = change(ctx, user)
    except WriteRefused as refused:
        return _Done(refused.reason, "forbidden", "danger", 403)
    except UpstreamConflict as conflict:
        return _Done(conflict.reason, "conflict", "warning")
    except UpstreamError as error:
        if isinstance(error, UpstreamUnavailable):
            breaker.record_failure(error.reason, error.retry_after)
        notice = (
            Reason.of(UNSURE, problem=error.reason, upstream=upstream.label)
            if error.may_have_acted
            else Reason.of(NOT_MADE, problem=error.reason)
        )
        declined = (
            error.status is not None and error.status < 500 and not isinstance(error, UpstreamAuthError)
        )
        return _Done(
            notice,
            error.outcome,
            "danger",
            touched=error.may_have_acted or declined,
        )
    except Exception:
        log.exception(
            "write failed", extra={"event": "write_failed", "widget": slug, "request_id": g.get("request_id")}
        )
        return _Done(Reason.of(UNFORESEEN, upstream=upstream.label), "portal_error", "danger", 500)
    breaker.record_success()
    if isinstance(said, Unchanged):
        return _Done(said.reason, "unchanged")
    return _Done(said or Reason.of(N_("Saved.")), "ok")


def keep_choice(widget: Widget, preference: Preference[Any], raw: str) -> Response:
    """Keep what the user chose on `widget`'s card (a filter, a sort) for every device.

    The card itself shows the choice through its next poll (`Widget.choice` reads it back);
    this only stores it. Answers 204 when kept, 403 when the guard or the value refuses it,
    503 when the portal's database cannot keep it (the choice still holds for the page's life).
    """
    ctx = portal_state().widgets[widget.slug]
    target = f"{preference.namespace}.{preference.name}"
    refusal = write_refusal(ctx.settings.roles)
    user = current_user()
    value: Any = None
    if refusal is None:
        try:
            value = preference.validate(raw)
        except ValueError:
            refusal = Reason.of(N_("This change is not valid."))
    if refusal is not None or user is None:
        audit("keep_choice", target, "refused", widget=widget.slug, reason=str(refusal))
        return Response(status=403)
    try:
        user_preferences(user).set(preference, value)
    except StorageUnavailable:
        audit("keep_choice", target, "no_storage", widget=widget.slug)
        return Response(status=503)
    audit("keep_choice", target, "ok", widget=widget.slug, value=str(value)[:40])
    return Response(status=204)
