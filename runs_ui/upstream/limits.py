"""How much of an upstream the client reads: time, bytes, events and items, each a setting with a default.

An upstream nobody here controls can trickle a body for ever, send hundreds of megabytes, stream without
end or page without end. Every read has a cap; a cap that is hit stops the read and raises
`LimitExceeded` (or `DeadlineExceeded` for time) naming the limit and the setting that raises it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from .errors import DeadlineExceeded, LimitExceeded

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """The caps of one connection; the defaults are the settings' defaults (dashboard/settings.py)."""

    #: Seconds one call may take in all, every attempt and wait included (UPSTREAM_DEADLINE).
    deadline: float = 30.0
    #: Bytes of one JSON answer (UPSTREAM_MAX_BODY_BYTES).
    max_body_bytes: int = 16 * MiB
    #: Pages one walk over a list follows (UPSTREAM_MAX_PAGES).
    max_pages: int = 5_000
    #: Items one walk over a list, or one export, reads (UPSTREAM_MAX_ITEMS).
    max_items: int = 200_000
    #: Seconds a stream stays open (UPSTREAM_STREAM_MAX_SECONDS).
    stream_seconds: float = 900.0
    #: Bytes a stream sends in all (UPSTREAM_STREAM_MAX_BYTES).
    stream_bytes: int = 64 * MiB
    #: Events a stream sends (UPSTREAM_STREAM_MAX_EVENTS).
    stream_events: int = 100_000
    #: Bytes of one line, and of one event, of a stream (UPSTREAM_STREAM_MAX_LINE_BYTES).
    stream_line_bytes: int = 4 * MiB


#: Limit → (what it limits, in words; its setting; its unit; what happened, said of `what`).
_NAMES = {
    "deadline": (
        "time for one upstream call",
        "UPSTREAM_DEADLINE",
        "s",
        "{what} took longer than {value} in all ({setting}); the dashboard stopped waiting.",
    ),
    "max_body_bytes": (
        "size of one upstream answer",
        "UPSTREAM_MAX_BODY_BYTES",
        "bytes",
        "The answer to {what} is larger than {value} ({setting}); the dashboard stopped reading it.",
    ),
    "max_pages": (
        "pages read from one list",
        "UPSTREAM_MAX_PAGES",
        "",
        "{what} went on for more than {value} pages ({setting}); the dashboard stopped reading there.",
    ),
    "max_items": (
        "items read from one list or export",
        "UPSTREAM_MAX_ITEMS",
        "",
        "{what} went on for more than {value} items ({setting}); the dashboard stopped reading there.",
    ),
    "stream_seconds": (
        "time a stream stays open",
        "UPSTREAM_STREAM_MAX_SECONDS",
        "s",
        "The stream of {what} stayed open longer than {value} ({setting}); the dashboard closed it.",
    ),
    "stream_bytes": (
        "size of one stream",
        "UPSTREAM_STREAM_MAX_BYTES",
        "bytes",
        "The stream of {what} sent more than {value} ({setting}); the dashboard closed it.",
    ),
    "stream_events": (
        "events of one stream",
        "UPSTREAM_STREAM_MAX_EVENTS",
        "",
        "The stream of {what} sent more than {value} events ({setting}); the dashboard closed it.",
    ),
    "stream_line_bytes": (
        "size of one line or event of a stream",
        "UPSTREAM_STREAM_MAX_LINE_BYTES",
        "bytes",
        "The stream of {what} sent a line or an event longer than {value} ({setting}); "
        "the dashboard closed it.",
    ),
}


def setting_of(limit: str) -> str:
    return _NAMES[limit][1]


def _shown(value: float, unit: str) -> str:
    if unit == "bytes":
        if value >= MiB and value % MiB == 0:
            return f"{value // MiB:,} MiB"
        if value >= 1024 and value % 1024 == 0:
            return f"{value // 1024:,} KiB"
        return f"{value:,} bytes"
    if unit == "s":
        return f"{value:g} s"
    return f"{value:,}"


def exceeded(limits: Limits, limit: str, what: str, **details) -> LimitExceeded:
    """The error for `limit` hit while reading `what` ("GET /threads/thread_1/runs")."""
    words, setting, unit, said = _NAMES[limit]
    value = _shown(getattr(limits, limit), unit)
    cls = DeadlineExceeded if unit == "s" else LimitExceeded
    message = said.format(what=what, value=value, setting=setting)
    return cls(message[0].upper() + message[1:], limit=words, setting=setting, value=value, **details)


async def read_capped(
    chunks: AsyncIterator[bytes], cap: int, too_large, declared: str | None = None, *, truncate: bool = False
) -> bytearray:
    """A body read in chunks, never more than `cap` bytes: past it, `too_large()` is raised (or, with
    `truncate`, the first `cap` bytes are returned). A declared length over the cap is refused unread.
    The bytes are not copied again (a bytearray): a body near the cap costs the cap once."""
    if not truncate and declared and declared.isdigit() and int(declared) > cap:
        raise too_large()
    body = bytearray()
    async for chunk in chunks:
        if len(body) + len(chunk) > cap:
            if truncate:
                body += chunk[: cap - len(body)]
                break
            raise too_large()
        body += chunk
    return body
