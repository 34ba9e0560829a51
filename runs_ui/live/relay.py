"""Runs started or resumed here stream (`stream: true`); their events are published as they come.

The relay runs as a background task and publishes through the run's watch (watcher.py): it takes the
run's lease from whoever polls it, so the stream is the run's one publisher while it lasts — statuses at
once, function arguments and message text growing as the deltas arrive. When the stream ends or breaks,
or another publisher takes the lease, the relay lets go and the poller takes over from the same state.
"""

from __future__ import annotations

import asyncio
import logging
from typing import NamedTuple

from django.conf import settings

from .. import index
from ..tasks import background
from ..upstream.errors import BadResponse, UpstreamError, UpstreamTimeout
from ..upstream.objects import Run, Thread, is_id
from .store import StoreUnavailable
from .watcher import LeaseLost, RunWatch, watcher

log = logging.getLogger(__name__)

_tasks: set[asyncio.Task] = set()


class Started(NamedTuple):
    run: Run
    request_id: str | None


async def _attach(conn: str, client, run: Run, known: bool) -> RunWatch:
    watch = watcher.touch_run(conn, run.thread_id, run.id)
    try:
        await watch.begin_stream(client, run if known else None)
    except BaseException:
        await asyncio.shield(watch.end_stream())  # the poller must not stand by for a stream that is not
        raise
    return watch


async def _relay(conn: str, client, open_stream, first: asyncio.Future, known: Run | None) -> None:
    watch: RunWatch | None = None
    try:
        async with open_stream() as events:
            info = getattr(events, "info", None)  # any async iterator of events will do; the client's has it
            request_id = info.request_id if info else None
            if known is not None:
                watch = await _attach(conn, client, known, known=True)
                if not first.done():
                    first.set_result(Started(known, request_id))
            async for event in events:
                if isinstance(event.data, Thread):
                    await index.record_thread(conn, event.data.id, "created", event.data)
                if watch is None and isinstance(event.data, Run):
                    if not (is_id("run", event.data.id) and is_id("thread", event.data.thread_id)):
                        # Nothing here can be made of it: no page, no watch.
                        raise BadResponse(
                            "The upstream reported the run without a valid run and thread id; "
                            "it may have started, but it cannot be followed here."
                        )
                    watch = await _attach(conn, client, event.data, known=False)
                    if not first.done():
                        first.set_result(Started(event.data, request_id))
                if watch is not None:
                    await watch.stream_event(event)
    except LeaseLost:
        log.info("stream of %s: another publisher took the run over; the relay stops", watch and watch.key)
    except (UpstreamError, StoreUnavailable) as exc:
        if not first.done():
            first.set_exception(exc if isinstance(exc, UpstreamError) else BadResponse(str(exc)))
        else:
            log.warning("stream of %s broke (%s); the watcher takes over", watch and watch.key, exc)
    except Exception as exc:
        log.exception("relaying a stream failed; the watcher takes over")
        if not first.done():
            first.set_exception(BadResponse(f"The stream could not be read ({type(exc).__name__})."))
    finally:
        if watch is not None:
            await asyncio.shield(watch.end_stream())
        if not first.done():
            first.set_exception(BadResponse("The stream ended before it reported the run."))


async def start(conn: str, client, open_stream, *, known: Run | None = None) -> Started:
    """Open a stream in a background task; return the run it is about and the call's request id (or raise
    the upstream's error).

    `open_stream()` returns the client's stream context manager. With `known` (submitting tool outputs),
    the run is returned as soon as the stream opened; otherwise at its first run event.
    """
    first: asyncio.Future = asyncio.get_running_loop().create_future()
    task = background(_relay(conn, client, open_stream, first, known), "stream-relay")
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    try:
        return await asyncio.wait_for(asyncio.shield(first), timeout=settings.UPSTREAM_DEADLINE + 5)
    except TimeoutError:
        first.cancel()  # the relay goes on (a late run is still relayed) but reports to nobody
        raise UpstreamTimeout(
            "The upstream accepted the call but did not report the run in time; "
            "it may have started — look at the thread before trying again."
        ) from None


async def stop() -> None:
    """Cancel every relay (process shutdown, end of a test)."""
    tasks = list(_tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
