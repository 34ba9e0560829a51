"""Server-sent events for a run: replays its recorded events in order while advancing its clock."""

import asyncio
import time
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async

from . import operations
from .models import TERMINAL_RUN_STATUSES

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
        wait = MAX_WAIT_SECONDS if next_due is None else next_due - time.time()
        await asyncio.sleep(min(max(wait, 0.005), MAX_WAIT_SECONDS))
