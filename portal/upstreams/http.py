"""One bounded HTTP exchange with an upstream's JSON API, for reads and writes alike.

Every call has a deadline (connect and read, and a slow drip is cut at it), a response-size cap,
no redirects, verified TLS (or a CA bundle) and one error mapping onto `UpstreamError`. Writes
(POST, PATCH, PUT, DELETE) go through the same bounds and are never retried: a write that may
or may not have landed is reported, not repeated. No Flask here.
"""

from __future__ import annotations

import codecs
import email.utils
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import orjson
import requests
import urllib3

from .errors import (
    N_,
    Reason,
    UpstreamAuthError,
    UpstreamBadResponse,
    UpstreamConflict,
    UpstreamError,
    UpstreamRedirected,
    UpstreamRejected,
    UpstreamUnavailable,
    conflict_reason,
)

JSON = Any
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
# What a card says of the faults of any upstream. Named because the bench's fault matrix
# (bench/faults.py) looks for these words in the cards: a new wording cannot blind it.
UNREACHABLE = N_("%(upstream)s cannot be reached")
TIMED_OUT = N_("%(upstream)s did not answer within %(seconds)s s")
NOT_JSON = N_("%(upstream)s returned a response that is not valid JSON")
REFUSED_CREDENTIALS = N_("%(upstream)s refused the portal's credentials (HTTP %(status)s)")
# The same answer to a call that carried none (a public API, such as Uptime Kuma's status pages,
# put behind a login): "its credentials" would send an admin to look for a token there is not.
REFUSED_WITHOUT_CREDENTIALS = N_("%(upstream)s asks for a login the portal does not have (HTTP %(status)s)")
CREDENTIAL_HEADERS = ("Authorization", "PRIVATE-TOKEN", "Cookie")
ANSWERED_STATUS = N_("%(upstream)s answered HTTP %(status)s")
TOO_LARGE = N_("%(upstream)s sent a response larger than %(kb)s kB")
TOO_LARGE_MB = N_("%(upstream)s sent a response larger than %(mb)s MB")
TOO_SLOW = N_("%(upstream)s is too slow (no complete answer within %(seconds)s s)")


def redact_url(url: str) -> str:
    """Keep scheme, host, port and path; drop credentials, query and fragment."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<invalid url>"
    host = parts.hostname or ""
    if port:
        host = f"{host}:{port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass(frozen=True)
class HttpLimits:
    """Bounds of one upstream call."""

    timeout: float = 5.0
    connect_timeout: float = 2.0
    max_bytes: int = 2_000_000


@dataclass(frozen=True)
class JsonResponse:
    """A decoded answer with the headers a client may need (pagination, rate limits)."""

    status: int
    headers: Mapping[str, str]  # case-insensitive
    data: JSON


@dataclass(frozen=True)
class BinaryResponse:
    """An answer whose body is kept as bytes (an image), with its headers."""

    status: int
    headers: Mapping[str, str]  # case-insensitive
    body: bytes


@dataclass(frozen=True)
class Quota:
    """An upstream's rate limit as one answer reports it (the `RateLimit-*` headers)."""

    limit: float | None  # requests allowed in the upstream's window
    remaining: float | None  # requests left in it


def quota_of(headers: Mapping[str, str]) -> Quota | None:
    """`RateLimit-Limit` and `RateLimit-Remaining` (GitLab, the IETF draft), or None without them."""

    def number(name: str) -> float | None:
        try:
            return float((headers.get(name) or "").strip())
        except ValueError:
            return None

    limit, remaining = number("RateLimit-Limit"), number("RateLimit-Remaining")
    if limit is None and remaining is None:
        return None
    return Quota(limit, remaining)


def retry_after_seconds(headers: Mapping[str, str], *names: str) -> float | None:
    """Seconds to wait from Retry-After (seconds or an HTTP date) or the upstream's own headers."""
    for name in ("Retry-After", *names):
        value = (headers.get(name) or "").strip()
        if not value:
            continue
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            continue
        return max(0.0, when.timestamp() - time.time())
    return None


class BoundedJsonClient:
    """Reads and writes JSON within a deadline and a size cap, mapping failures to UpstreamError.

    `upstream` is the tool's name as users know it ("Taiga"): every message starts with it.
    `throttle_headers` names headers besides Retry-After that say how long to wait after a 429.
    `on_quota` is told the rate limit of every answer that reports one (a 429's too).
    """

    def __init__(
        self,
        upstream: str,
        session: requests.Session,
        limits: HttpLimits,
        verify: bool | str = True,
        headers: Mapping[str, str] | None = None,
        throttle_headers: tuple[str, ...] = (),
        on_quota: Callable[[Quota], None] | None = None,
    ) -> None:
        self.upstream = upstream
        self.session = session
        self.limits = limits
        self.verify = verify
        self.headers = dict(headers or {})
        self.throttle_headers = throttle_headers
        self.on_quota = on_quota

    # --- the calls ---------------------------------------------------------------------------

    def get(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        deadline: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> JSON:
        """GET `url` and return the decoded JSON body.

        `deadline` (a time.monotonic() value) bounds several calls that make one result;
        by default the call has the whole `timeout`.
        """
        return self.request("GET", url, params=params, deadline=deadline, headers=headers).data

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: JSON = None,
        deadline: float | None = None,
        headers: Mapping[str, str] | None = None,
        changes: bool | None = None,
    ) -> JsonResponse:
        """One exchange; writes (POST, PATCH, PUT, DELETE) map 409 and 412 to UpstreamConflict.

        `changes`: whether the call changes what users see (so that a failure may say the change
        may have been made, UpstreamError.may_have_acted); by default, whether it is a write.
        A login is a POST that changes nothing: False."""
        method = method.upper()
        where = f"{method} {redact_url(url)}"
        try:
            status, answer_headers, body = self._exchange(
                method, url, params, json_body, deadline, {"Accept": "application/json", **(headers or {})}
            )
            data = self._decode(body, where) if body.strip() else None
        except UpstreamError as error:
            error.changing = method in WRITE_METHODS if changes is None else changes
            raise
        return JsonResponse(status, answer_headers, data)

    def get_bytes(
        self,
        url: str,
        *,
        accept: str,
        max_bytes: int | None = None,
        deadline: float | None = None,
        headers: Mapping[str, str] | None = None,
        credentials: bool = True,
    ) -> BinaryResponse:
        """GET a body that is not JSON (an image), within the same bounds; `max_bytes` may be smaller.

        `credentials=False`: without the client's own credential headers (an image on another
        host must never receive the upstream's token)."""
        status, answer_headers, body = self._exchange(
            "GET",
            url,
            None,
            None,
            deadline,
            {**(headers or {}), "Accept": accept},
            max_bytes,
            credentials=credentials,
        )
        return BinaryResponse(status, answer_headers, body)

    def _exchange(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json_body: JSON,
        deadline: float | None,
        headers: Mapping[str, str],
        max_bytes: int | None = None,
        credentials: bool = True,
    ) -> tuple[int, Mapping[str, str], bytes]:
        if deadline is None:
            deadline = time.monotonic() + self.limits.timeout
        where = f"{method} {redact_url(url)}"
        remaining = deadline - time.monotonic()
        if remaining <= 0.05:
            raise UpstreamUnavailable(
                self.upstream, self._timed_out(), f"{where}: no time left", sent=False, cause="timeout"
            )
        try:
            response = self.session.request(
                method,
                url,
                params=params,
                json=json_body,
                timeout=(min(self.limits.connect_timeout, remaining), remaining),
                stream=True,
                allow_redirects=False,
                verify=self.verify,
                headers=self._headers(headers, credentials),
            )
        except requests.Timeout as exc:
            raise UpstreamUnavailable(
                self.upstream,
                self._timed_out(),
                f"{where}: {exc}",
                sent=not isinstance(exc, requests.ConnectTimeout),
                cause="timeout",
            ) from exc
        except requests.exceptions.SSLError as exc:  # before ConnectionError, which it is a kind of
            raise UpstreamUnavailable(
                self.upstream,
                Reason.of(N_("%(upstream)s's certificate could not be verified"), upstream=self.upstream),
                f"{where}: {type(exc).__name__} (a private CA: the upstream's ca_bundle)",
                sent=False,
            ) from exc
        except requests.ConnectionError as exc:
            raise UpstreamUnavailable(
                self.upstream,
                Reason.of(UNREACHABLE, upstream=self.upstream),
                f"{where}: {type(exc).__name__}",
                sent=not _never_connected(exc),
            ) from exc
        except requests.RequestException as exc:
            raise UpstreamUnavailable(
                self.upstream,
                Reason.of(N_("%(upstream)s request failed"), upstream=self.upstream),
                f"{where}: {type(exc).__name__}",
            ) from exc
        with response:
            status = response.status_code
            if self.on_quota is not None and (quota := quota_of(response.headers)) is not None:
                self.on_quota(quota)
            if not 200 <= status < 300:
                body = self._error_body(response, deadline, where) if 400 <= status < 500 else b""
                sent = any(name in response.request.headers for name in CREDENTIAL_HEADERS)
                raise self._status_error(method, status, response.headers, body, where, sent, response.url)
            body = self._read_capped(response, deadline, where, max_bytes)
        return status, response.headers, body

    def _headers(self, headers: Mapping[str, str], credentials: bool) -> dict[str, str]:
        """The client's headers, then the call's; without any credential header unless `credentials`."""
        merged = {**self.headers, **headers}
        if credentials:
            return merged
        # requests matches header names case-insensitively: so must this.
        banned = {name.lower() for name in CREDENTIAL_HEADERS}
        return {name: value for name, value in merged.items() if name.lower() not in banned}

    # --- mapping ----------------------------------------------------------------------------

    def _timed_out(self) -> Reason:
        return Reason.of(
            TIMED_OUT,
            upstream=self.upstream,
            seconds=f"{self.limits.timeout:g}",
        )

    def _decode(self, body: bytes, where: str) -> JSON:
        """The body's JSON, parsed by orjson: five times quicker than `json` on Taiga's board (a
        few MB every TTL), and it refuses what JSON does not allow (NaN, lone surrogates)."""
        try:
            return orjson.loads(body.removeprefix(codecs.BOM_UTF8))
        except (ValueError, UnicodeDecodeError) as exc:
            raise UpstreamBadResponse(
                self.upstream,
                Reason.of(NOT_JSON, upstream=self.upstream),
                f"{where}: not JSON",
            ) from exc

    def _status_error(
        self,
        method: str,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        where: str,
        sent_credentials: bool = True,
        url: str = "",
    ) -> UpstreamError:
        detail = f"{where} -> HTTP {status}"
        values = {"upstream": self.upstream, "status": status}
        if 300 <= status < 400:  # never followed here: the client may judge where it points
            location = urljoin(url, headers.get("Location") or "") if headers.get("Location") else ""
            return UpstreamRedirected(
                self.upstream,
                Reason.of(ANSWERED_STATUS, **values),
                f"{detail} to {redact_url(location) if location else 'nowhere'}",
                status=status,
                location=location,
            )
        if status in (401, 403):
            refused = REFUSED_CREDENTIALS if sent_credentials else REFUSED_WITHOUT_CREDENTIALS
            return UpstreamAuthError(
                self.upstream,
                Reason.of(refused, **values),
                detail,
                status=status,
            )
        if status == 429:
            wait = retry_after_seconds(headers, *self.throttle_headers)
            return UpstreamUnavailable(
                self.upstream,
                Reason.of(N_("%(upstream)s is limiting the portal's requests (HTTP 429)"), **values),
                detail,
                retry_after=wait,
                status=status,
            )
        if status >= 500:
            return UpstreamUnavailable(
                self.upstream,
                Reason.of(ANSWERED_STATUS, **values),
                detail,
                status=status,
            )
        if status == 404:
            return UpstreamBadResponse(
                self.upstream,
                Reason.of(N_("%(upstream)s answered HTTP 404 (not found)"), **values),
                detail,
                status=status,
            )
        if method in WRITE_METHODS and status in (409, 412):
            return UpstreamConflict(self.upstream, conflict_reason(self.upstream), detail, status=status)
        if 400 <= status < 500:
            try:
                decoded: object = json.loads(body) if body.strip() else None
            except (ValueError, UnicodeDecodeError):
                decoded = None
            return UpstreamRejected(
                self.upstream,
                Reason.of(N_("%(upstream)s refused the request (HTTP %(status)s)"), **values),
                detail,
                status=status,
                body=decoded,
            )
        return UpstreamBadResponse(
            self.upstream,
            Reason.of(ANSWERED_STATUS, **values),
            detail,
            status=status,
        )

    def _error_body(self, response: requests.Response, deadline: float, where: str) -> bytes:
        """An error answer's body, for the client to interpret; unreadable is empty."""
        try:
            return self._read_capped(response, deadline, where)
        except UpstreamError:
            return b""

    def _read_capped(
        self, response: requests.Response, deadline: float, where: str, max_bytes: int | None = None
    ) -> bytes:
        cap = min(self.limits.max_bytes, max_bytes or self.limits.max_bytes)
        # "2 MB", not "2000 kB" (the example's cap); a cap under a megabyte in kB.
        said = (
            Reason.of(TOO_LARGE_MB, upstream=self.upstream, mb=cap // 1_000_000)
            if cap >= 1_000_000 and cap % 1_000_000 == 0
            else Reason.of(TOO_LARGE, upstream=self.upstream, kb=cap // 1000)
        )
        too_large = UpstreamBadResponse(self.upstream, said, f"{where}: more than {cap} bytes")
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                # read1 returns what has arrived instead of waiting for a full buffer, so a
                # slow drip is noticed at the deadline rather than when the body completes.
                chunk = response.raw.read1(65536, decode_content=True)
                if not chunk:
                    break
                size += len(chunk)
                if size > cap:
                    raise too_large
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise UpstreamUnavailable(
                        self.upstream,
                        Reason.of(
                            TOO_SLOW,
                            upstream=self.upstream,
                            seconds=f"{self.limits.timeout:g}",
                        ),
                        f"{where}: body still arriving at the deadline",
                        cause="timeout",
                    )
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError) as exc:
            raise UpstreamUnavailable(
                self.upstream, self._timed_out(), f"{where}: read timeout", cause="timeout"
            ) from exc
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise UpstreamUnavailable(
                self.upstream,
                Reason.of(N_("%(upstream)s broke off the response"), upstream=self.upstream),
                f"{where}: {type(exc).__name__}",
            ) from exc
        return b"".join(chunks)


def require(mapping: Any, key: str, kind: type | tuple[type, ...], upstream: str) -> Any:
    """Return mapping[key] if it has the expected type, else raise UpstreamBadResponse."""
    if not isinstance(mapping, dict) or key not in mapping:
        raise UpstreamBadResponse(
            upstream,
            Reason.of(
                N_("%(upstream)s returned an incomplete answer (no '%(key)s')"), upstream=upstream, key=key
            ),
            f"missing field {key!r}",
        )
    value = mapping[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in kinds):
        raise UpstreamBadResponse(
            upstream,
            Reason.of(N_("%(upstream)s returned a malformed '%(key)s'"), upstream=upstream, key=key),
            f"malformed field {key!r}",
        )
    return value


def _never_connected(error: requests.ConnectionError) -> bool:
    """Whether the connection itself failed (refused, no such host), as opposed to one broken
    off after the request went out (reset, closed early), which the upstream may have acted on."""
    cause = error.args[0] if error.args else None
    reason = getattr(cause, "reason", None)  # urllib3's MaxRetryError carries what failed
    return isinstance(reason, urllib3.exceptions.NewConnectionError)
