"""The client's own errors: what went wrong upstream, in the dashboard's words.

Views and consumers catch these, never httpx's. Each carries the HTTP status (when there was one),
the upstream's message (clipped, never the raw body of an HTML page) and the upstream request id.
"""

from __future__ import annotations


class UpstreamError(Exception):
    """Base class: anything the upstream (or the way to it) did wrong."""

    #: A short label for pages and audit records.
    kind = "upstream error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        code: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.request_id = request_id
        self.code = code
        self.param = param
        #: Seconds the upstream asked us to wait (Retry-After), on 429 and some 5xx answers.
        self.retry_after = retry_after

    def __str__(self) -> str:
        status = f"HTTP {self.status}: " if self.status else ""
        return f"{status}{self.message}"


class BadRequest(UpstreamError):
    kind = "rejected by the upstream"


class AuthError(UpstreamError):
    kind = "authentication failed"


class PermissionDenied(UpstreamError):
    kind = "permission denied"


class NotFound(UpstreamError):
    kind = "not found"


class Conflict(UpstreamError):
    kind = "conflict"


class RateLimited(UpstreamError):
    kind = "rate limited"


class Unavailable(UpstreamError):
    """5xx answers and failures to reach the upstream at all."""

    kind = "upstream unavailable"


class UpstreamTimeout(Unavailable):
    kind = "upstream timed out"


class ConnectFailed(Unavailable):
    """The request never reached the upstream, so even a POST may be retried."""

    kind = "could not connect to the upstream"


class BadResponse(UpstreamError):
    """The upstream answered something that is not the wire shape (HTML, malformed JSON, wrong type)."""

    kind = "unreadable upstream response"


class LimitExceeded(BadResponse):
    """The upstream sent more than the dashboard reads (bytes, events, pages, items) or took longer than it
    waits: the read stopped there. Names the limit, its value and the setting that raises it."""

    kind = "upstream limit reached"

    def __init__(self, message: str, *, limit: str, setting: str, value: str, **kwargs):
        super().__init__(message, **kwargs)
        #: What was limited, in words ("size of one answer").
        self.limit = limit
        #: The environment variable that sets it ("UPSTREAM_MAX_BODY_BYTES").
        self.setting = setting
        #: Its value, for people ("16 MiB").
        self.value = value


class DeadlineExceeded(LimitExceeded, UpstreamTimeout):
    """A call (all its attempts, or the opening of a stream) or a stream ran past its total time. Also an
    UpstreamTimeout: the request went out, so whatever it asked for may have happened."""

    kind = "upstream took too long"


class Misconfigured(UpstreamError):
    """The connection's own settings are incomplete (e.g. an Azure profile without an API version)."""

    kind = "connection misconfigured"

    def __init__(self, message: str, *, setting: str, **kwargs):
        super().__init__(message, **kwargs)
        self.setting = setting


def for_status(status: int) -> type[UpstreamError]:
    """The error class for an HTTP status, as the official SDK maps them."""
    if status in (400, 422):
        return BadRequest
    return {
        401: AuthError,
        403: PermissionDenied,
        404: NotFound,
        409: Conflict,
        429: RateLimited,
    }.get(status, Unavailable if status >= 500 else UpstreamError)
