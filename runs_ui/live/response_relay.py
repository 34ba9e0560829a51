"""Responses started here stream (`background` and `stream`), their events published as they come.

As relay.py does for runs: a background task reads the stream and publishes each event through the
response's watch, which holds the response's lease while it lasts. What runs cannot do, responses can: a
background response's stream can be read again from any point, so a stream that breaks (the connection
drops, a proxy cuts it, the upstream closes it early) is reopened with `starting_after` the last
`sequence_number` seen — nothing is shown twice, nothing is fetched again from the start. When it cannot be
resumed (a few tries, or an answer that says it never will), the poller takes over from the same state.
"""

from __future__ import annotations

import asyncio
import logging
from typing import NamedTuple

from django.conf import settings

from ..tasks import background
from ..upstream.errors import BadResponse, RateLimited, Unavailable, UpstreamError, UpstreamTimeout
from ..upstream.objects import is_id
from ..upstream.responses_client import ResponsesClient
from ..upstream.responses_objects import Response
from .clock import clock
from .response_watch import ResponseWatch, response_watcher
from .store import StoreUnavailable
from .watcher import LeaseLost

log = logging.getLogger(__name__)

#: A broken stream is reopened at most this many times in a row (each after a short, growing wait).
MAX_RESUMES = 5
RESUME_WAIT = 0.2

_tasks: set[asyncio.Task] = set()


class Started(NamedTuple):
    response: Response
    request_id: str | None


class _Relay:
    """One response's stream, from its creation to its end, across resumptions."""

    def __init__(self, conn: str, client: ResponsesClient, first: asyncio.Future):
        self.conn, self.client, self.first = conn, client, first
        self.watch: ResponseWatch | None = None
        self.response_id = ""
        self.background = False
        #: The last sequence number applied: a resumed stream starts after it, and replays are skipped.
        self.last: int | None = None
        self.ended = False
        #: How many times the stream was reopened (for logs and tests).
        self.resumes = 0

    async def run(self, open_stream) -> None:
        failures = 0
        try:
            while not self.ended:
                try:
                    await self._read(open_stream)
                    failures = 0 if self.ended else failures + 1
                except (Unavailable, BadResponse, RateLimited) as exc:
                    if self.watch is None:
                        raise
                    failures += 1
                    log.warning("stream of %s broke after event %s (%s)", self.response_id, self.last, exc)
                if self.ended:
                    return
                if not self._resumable() or failures > MAX_RESUMES:
                    log.info("stream of %s not resumed; the watcher takes over", self.response_id)
                    return
                await clock.sleep(RESUME_WAIT * 2 ** (failures - 1))
                self.resumes += 1
                open_stream = self._resume
        except LeaseLost:
            log.info("stream of %s: another publisher took it over; the relay stops", self.response_id)
        except (UpstreamError, StoreUnavailable) as exc:
            if not self.first.done():
                self.first.set_exception(exc if isinstance(exc, UpstreamError) else BadResponse(str(exc)))
            else:
                log.warning("stream of %s failed (%s); the watcher takes over", self.response_id, exc)
        except Exception as exc:
            log.exception("relaying a response's stream failed; the watcher takes over")
            if not self.first.done():
                self.first.set_exception(BadResponse(f"The stream could not be read ({type(exc).__name__})."))
        finally:
            if self.watch is not None:
                await asyncio.shield(self.watch.end_stream())
            if not self.first.done():
                self.first.set_exception(BadResponse("The stream ended before it reported the response."))

    def _resumable(self) -> bool:
        # Only background responses keep their events to be read again; and without a sequence number to
        # start after, a resumed stream would replay deltas already applied.
        return bool(self.response_id) and self.background and self.last is not None

    def _resume(self):
        return self.client.stream_response(self.response_id, starting_after=self.last)

    async def _read(self, open_stream) -> None:
        async with open_stream() as events:
            info = getattr(events, "info", None)
            request_id = info.request_id if info else None
            async for event in events:
                number = event.sequence_number
                if number is not None and self.last is not None and number <= self.last:
                    continue  # already applied (a resumed stream replays nothing twice)
                if self.watch is None and event.response is not None:
                    await self._attach(event.response, request_id)
                if self.watch is not None:
                    await self.watch.stream_event(event)
                if number is not None:
                    self.last = number
                if event.response is not None and event.response.is_terminal:
                    self.ended = True
                    return

    async def _attach(self, response: Response, request_id: str | None) -> None:
        if not is_id("response", response.id):
            raise BadResponse(
                "The upstream reported the response without a valid id; it may have started, but it "
                "cannot be followed here."
            )
        self.response_id = response.id
        self.background = bool(response.background)
        watch = response_watcher.touch_response(self.conn, response.id)
        try:
            await watch.begin_stream(self.client)
        except BaseException:
            await asyncio.shield(watch.end_stream())
            raise
        self.watch = watch
        if not self.first.done():
            self.first.set_result(Started(response, request_id))


async def start(conn: str, client: ResponsesClient, fields: dict) -> Started:
    """Create a response that streams (and runs in the background, so it can be cancelled and its
    stream resumed); return it as first reported, with the call's request id, or raise the upstream's
    error. The stream goes on being relayed in a background task."""
    first: asyncio.Future = asyncio.get_running_loop().create_future()
    relay = _Relay(conn, client, first)
    task = background(
        relay.run(lambda: client.stream_create_response(**{**fields, "background": True})),
        "response-relay",
    )
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    try:
        return await asyncio.wait_for(asyncio.shield(first), timeout=settings.UPSTREAM_DEADLINE + 5)
    except TimeoutError:
        first.cancel()
        raise UpstreamTimeout(
            "The upstream accepted the call but did not report the response in time; it may have "
            "started — look at the index before trying again."
        ) from None


async def stop() -> None:
    """Cancel every relay (process shutdown, end of a test)."""
    tasks = list(_tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
