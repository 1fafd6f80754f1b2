"""Why an upstream call failed: an error hierarchy whose `reason` a user may read.

A `Reason` is an English msgid and its values, translated when a card renders it. It names the
tool and what happened ("GitLab answered HTTP 500", "Taiga did not answer within 4 s"), never a
URL, a credential or text the upstream sent. What an operator needs besides (the method and the
redacted URL) travels in `detail`, which goes to the log only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


def N_(msgid: str) -> str:
    """Mark a message for translation; it is translated when rendered, not here."""
    return msgid


@dataclass(frozen=True)
class Reason:
    """A message for users: an English msgid and its values, translated at render time. A value
    may be a Reason itself (a problem quoted in a longer sentence), translated with it."""

    msgid: str
    values: tuple[tuple[str, str | Reason], ...] = ()

    @classmethod
    def of(cls, msgid: str, **values: object) -> Reason:
        return cls(msgid, tuple((k, v if isinstance(v, Reason) else str(v)) for k, v in values.items()))

    def __str__(self) -> str:
        return self.msgid % {k: str(v) for k, v in self.values}


class UpstreamError(Exception):
    """An upstream call failed; `reason` is for users, `detail` for the log."""

    outcome = "error"  # the short label of logs and metrics

    def __init__(
        self,
        upstream: str,
        reason: Reason,
        detail: str = "",
        retry_after: float | None = None,
        status: int | None = None,
        sent: bool = True,
    ) -> None:
        super().__init__(str(reason))
        self.upstream = upstream
        self.reason = reason
        self.detail = detail
        # Seconds the upstream asked us to wait (429 Retry-After): no call before then.
        self.retry_after = retry_after
        # The HTTP status the upstream answered with, when it answered (a client may say more
        # than the generic reason: a 404 on a project is "no such project").
        self.status = status
        # False when no connection was made: the upstream cannot have seen the request.
        self.sent = sent
        # Whether the failed request was a change (POST, PATCH, PUT, DELETE): set by the client.
        self.changing = False

    @property
    def may_have_acted(self) -> bool:
        """Whether the change this request asked for may have been made all the same: it may
        have reached the upstream, and no answer says it refused (a timeout, a broken-off or
        unreadable answer, a 5xx), unlike a read, a connection never made or a 4xx."""
        return self.changing and self.sent and (self.status is None or self.status >= 500)

    @property
    def message(self) -> str:
        """The English text, for logs."""
        return str(self.reason)


Cause = Literal["timeout", "unreachable", "server_error", "throttled"]


class UpstreamUnavailable(UpstreamError):
    """No usable answer now; try again later. Its `outcome` says why, for the metrics and logs:
    `timeout` (no complete answer in time), `unreachable` (no connection, a certificate that
    does not verify, an answer broken off), `server_error` (5xx), `throttled` (429)."""

    def __init__(self, *args: Any, cause: Cause | None = None, **kwargs: Any) -> None:
        """As UpstreamError's; `cause` where the status does not tell it (a timeout)."""
        super().__init__(*args, **kwargs)
        if cause is None:
            cause = "throttled" if self.status == 429 else "server_error" if self.status else "unreachable"
        self.outcome: str = cause


class UpstreamAuthError(UpstreamError):
    """The upstream refused our credentials (401/403)."""

    outcome = "auth"

    @property
    def may_have_acted(self) -> bool:
        return False  # refused before anything was done


class UpstreamBadResponse(UpstreamError):
    """The upstream answered, but not with what we can use (404, garbage, too large)."""

    outcome = "bad_response"


class UpstreamRejected(UpstreamBadResponse):
    """The upstream refused a request as invalid (a 4xx such as 400 or 422).

    `body` is the decoded JSON error the upstream sent (or None), for the client to interpret
    (Taiga reports a version conflict as a 400). It is never shown to users as it is.
    """

    outcome = "rejected"

    def __init__(
        self, upstream: str, reason: Reason, detail: str = "", status: int = 400, body: object = None
    ):
        super().__init__(upstream, reason, detail, status=status)
        self.body = body


class UpstreamRedirected(UpstreamBadResponse):
    """The upstream answered with a redirect (3xx), which the portal never follows by itself.

    `location` is where it pointed, made absolute against the request's URL ("" without a
    `Location`), for a client to judge (GitLab's answer to a moved project's old path).
    """

    def __init__(
        self, upstream: str, reason: Reason, detail: str = "", status: int = 301, location: str = ""
    ) -> None:
        super().__init__(upstream, reason, detail, status=status)
        self.location = location


class UpstreamConflict(UpstreamError):
    """The item changed since the card showed it (409, 412, or the upstream's own way): changed
    by someone else, or by the same person in the tool itself or in another tab."""

    outcome = "conflict"

    @property
    def may_have_acted(self) -> bool:
        return False  # refused: the item stays as the other change left it


CONFLICT_TEXT = N_(
    "This item was changed in %(upstream)s after your card showed it, so your change was not made:"
    " here is its current state"
)


def conflict_reason(upstream: str) -> Reason:
    """What a card says after a refused write because the item changed meanwhile. Not "someone
    else": most often it is the person, who moved the item in the tool itself or in another tab."""
    return Reason.of(CONFLICT_TEXT, upstream=upstream)
