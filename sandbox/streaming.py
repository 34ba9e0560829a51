"""Server-sent events for runs and responses: recorded events replayed in order while the clock advances."""

import asyncio
import time
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async

from . import operations, responses_operations
from .models import TERMINAL_RESPONSE_STATUSES, TERMINAL_RUN_STATUSES, Response

# Poll the run at least this often, so a cancel made by another request shows up promptly.
MAX_WAIT_SECONDS = 0.25


def frame(event: str, data: str) -> bytes:
    return f"event: {event}\ndata: {data}\n\n".encode()


async def run_events(run_pk: int, after: int) -> AsyncIterator[bytes]:
    """Frames until the run ends or needs tool outputs, then `done` (docs/WIRE.md §8)."""
    last = after
    while True:
        events, status, next_due = await sync_to_async(operations.stream_step)(run_pk, last)
        for seq, event, data in events:
            last = seq
            yield frame(event, data)
        if status in TERMINAL_RUN_STATUSES or status == "requires_action":
            yield frame("done", "[DONE]")
            if status in TERMINAL_RUN_STATUSES:
                await sync_to_async(operations.forget_events)(run_pk, last)
            return
        await asyncio.sleep(_wait(next_due))


# --- responses ------------------------------------------------------------------------------------


def _wait(next_due: float | None) -> float:
    wait = MAX_WAIT_SECONDS if next_due is None else next_due - time.time()
    return min(max(wait, 0.005), MAX_WAIT_SECONDS)


async def response_events(response_pk: int, after: int) -> AsyncIterator[bytes]:
    """A response's events after sequence number `after`, as they come, until it is terminal.

    A resumed stream (`starting_after`) replays the recorded events it missed, then follows live. Unlike
    the Assistants stream, the Responses stream has no `[DONE]` line: its terminal event ends it.
    """
    last = after
    while True:
        try:
            events, status, next_due = await sync_to_async(responses_operations.stream_step)(
                response_pk, last
            )
        except Response.DoesNotExist:
            return  # deleted while streaming
        for number, event, data in events:
            last = number
            yield frame(event, data)
        if status in TERMINAL_RESPONSE_STATUSES:
            return
        await asyncio.sleep(_wait(next_due))


async def until_terminal(response_pk: int) -> None:
    """Waits for a response created without `background` or `stream`: the service answers when it is done."""
    while True:
        status, next_due = await sync_to_async(responses_operations.wait_step)(response_pk)
        if status in TERMINAL_RESPONSE_STATUSES:
            return
        await asyncio.sleep(_wait(next_due))
