"""The request budget of each upstream connection, shared by every process of the cluster.

UPSTREAM_MAX_RPS is the most the watchers of all processes together ask one connection per second. The
budget is a GCRA ("generic cell rate algorithm") slot in the shared store: a request may go when its
connection's next slot has come, and takes it. Higher priorities may run a little ahead of the schedule
(their allowance), so under load they go first and the lower ones wait for what is left:

- FOREGROUND: runs on someone's run page (or just acted on), whose changes must show within a second;
- THREAD: runs on a thread page;
- BACKGROUND: runs only the home list or the inbox follow.

Within a process, waiting requests are served by priority, then oldest first, so the runs of one priority
slow down evenly when the budget is short, and none starves. A 429 (with its Retry-After) pauses the
whole connection, for every process.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from enum import IntEnum

from django.conf import settings

from . import metrics
from .clock import Clock, clock
from .store import MemoryStore, StoreUnavailable, store

log = logging.getLogger(__name__)

#: How far ahead of the schedule each priority may run, in seconds of the connection's budget.
ALLOWANCE = {0: 0.1, 1: 0.05, 2: 0.0}
#: Slots this far in the past are still used: a waiter that woke a few milliseconds late (a busy event
#: loop, a round trip to Redis) would otherwise lose its slot, and the budget would never be reached.
SLACK = 0.05
#: The most waiters one round trip to the store serves at once.
BATCH = 16
#: A 429 without Retry-After pauses the connection this long.
DEFAULT_PAUSE = 1.0


class Priority(IntEnum):
    FOREGROUND = 0
    THREAD = 1
    BACKGROUND = 2


class Budget:
    """This process's door to the cluster-wide budget. One instance per process (`budget`)."""

    def __init__(self, clock: Clock = clock, shared=None):
        self.clock = clock
        #: The shared store (tests give one of their own; by default, this process's).
        self._shared = shared
        self._waiting: dict[str, list] = {}
        self._pumps: dict[str, asyncio.Task] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._order = itertools.count()
        # When the shared store cannot be reached, this process keeps to the budget on its own.
        self._fallback = MemoryStore(clock)

    def shared(self):
        return self._shared or store()

    def rate(self, conn: str) -> float:
        return settings.UPSTREAM_MAX_RPS

    async def take(self, conn: str, priority: Priority) -> None:
        """Wait until this connection's budget allows one more upstream request at `priority`."""
        future = asyncio.get_running_loop().create_future()
        queue = self._waiting.setdefault(conn, [])
        heapq.heappush(queue, (int(priority), self.clock.monotonic(), next(self._order), future))
        wake = self._wake.setdefault(conn, asyncio.Event())
        if queue[0][3] is future:
            wake.set()  # a new head (higher priority, or the first): the pump looks again now
        pump = self._pumps.get(conn)
        if pump is None or pump.done():
            self._pumps[conn] = asyncio.get_running_loop().create_task(self._pump(conn), name="budget-pump")
        started = self.clock.monotonic()
        await future
        metrics.budget_wait.labels(conn, priority.name.lower()).observe(self.clock.monotonic() - started)
        metrics.upstream_requests.labels(conn, priority.name.lower()).inc()

    async def slow_down(self, conn: str, seconds: float | None) -> None:
        """The upstream said 429: nobody asks this connection again before `seconds`."""
        pause = min(max(seconds or DEFAULT_PAUSE, 0.1), 60.0)
        try:
            await self.shared().pause_bucket(self._bucket(conn), pause)
        except StoreUnavailable:
            await self._fallback.pause_bucket(self._bucket(conn), pause)

    def _bucket(self, conn: str) -> str:
        return f"budget:{conn}"

    async def _slots(self, conn: str, priority: int, count: int) -> tuple[int, float]:
        interval = 1.0 / self.rate(conn)
        args = (self._bucket(conn), interval, ALLOWANCE[priority], SLACK, count)
        try:
            return await self.shared().take_slots(*args)
        except StoreUnavailable:
            return await self._fallback.take_slots(*args)

    async def _pump(self, conn: str) -> None:
        """Serves this process's waiters for one connection, head first, while there are any: as many at
        once as the budget allows (of the head's priority), in one round trip."""
        queue = self._waiting[conn]
        wake = self._wake[conn]
        while queue:
            while queue and queue[0][3].done():  # their watches were stopped while they waited
                heapq.heappop(queue)
            if not queue:
                break
            priority = queue[0][0]
            same = sum(1 for item in queue if item[0] == priority and not item[3].done())
            granted, wait = await self._slots(conn, priority, min(same, BATCH))
            while granted and queue:
                _, _, _, future = heapq.heappop(queue)
                if not future.done():
                    future.set_result(None)
                    granted -= 1
            if wait > 0:
                wake.clear()
                await self.clock.wait_for(wake, wait)

    def waiting(self, conn: str) -> int:
        return sum(1 for item in self._waiting.get(conn, []) if not item[3].done())

    async def stop(self) -> None:
        for task in self._pumps.values():
            task.cancel()
        await asyncio.gather(*self._pumps.values(), return_exceptions=True)
        for queue in self._waiting.values():
            for *_, future in queue:
                future.cancel()
        self._pumps.clear()
        self._waiting.clear()
        self._wake.clear()


budget = Budget()
