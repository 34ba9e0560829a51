"""The cluster-wide request budget (runs_ui.live.budget): never exceeded, run pages first, fair between
runs, paused by a 429 for every process. Timing on a fake clock; the Redis version on Redis's clock."""

from __future__ import annotations

import asyncio
import collections
import itertools
import time

import pytest

from runs_ui.live.budget import Budget, Priority
from runs_ui.live.store import MemoryStore, RedisStore
from tests.live.support import REDIS_URL, SESSION_PREFIX, FakeClock

CONN = "default"


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def shared(clock):
    """The store two budgets share, as two processes share Redis."""
    return MemoryStore(clock)


async def demand(budget: Budget, priority: Priority, label: str, granted: list, every: float = 0.0):
    """A watch asking again and again: after each grant it waits `every` seconds (its poll interval)."""
    while True:
        await budget.take(CONN, priority)
        granted.append((budget.clock.monotonic(), label))
        if every:
            await budget.clock.sleep(every)


async def run_for(clock: FakeClock, seconds: float, *tasks) -> None:
    running = [asyncio.ensure_future(t) for t in tasks]
    try:
        await clock.advance(seconds, step=0.002)
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


async def test_the_budget_is_never_exceeded_by_two_processes_together(settings, clock, shared):
    settings.UPSTREAM_MAX_RPS = 10
    one, two = Budget(clock, shared), Budget(clock, shared)
    granted: list = []
    tasks = [
        demand(b, p, f"{n}", granted)
        for n, (b, p) in enumerate(
            [(one, Priority.FOREGROUND)] * 3
            + [(two, Priority.BACKGROUND)] * 3
            + [(one, Priority.THREAD), (two, Priority.FOREGROUND)]
        )
    ]
    await run_for(clock, 10.0, *tasks)
    times = sorted(t for t, _ in granted)
    assert 95 <= len(times) <= 10 * 10 + 2
    # In every one-second window: the rate, plus what a run page may take ahead of schedule (0.1 s).
    for start in times:
        assert sum(1 for t in times if start <= t < start + 1.0) <= 10 + 1 + 1


async def test_run_pages_are_served_first_and_the_home_list_gets_what_is_left(settings, clock, shared):
    settings.UPSTREAM_MAX_RPS = 10
    budget = Budget(clock, shared)
    granted: list = []
    page = demand(budget, Priority.FOREGROUND, "page", granted, every=0.5)  # 2 GET/s wanted
    rows = [demand(budget, Priority.BACKGROUND, f"row-{n}", granted) for n in range(20)]  # all they can get
    await run_for(clock, 10.0, page, *rows)
    counts = collections.Counter(label for _, label in granted)
    assert 19 <= counts["page"] <= 21  # every poll it wanted, on time
    page_times = [t for t, label in granted if label == "page"]
    gaps = [b - a for a, b in itertools.pairwise(page_times)]
    assert max(gaps) <= 0.5 + 0.11, max(gaps)
    assert 75 <= sum(v for k, v in counts.items() if k != "page") <= 82


async def test_rows_slow_down_evenly_when_the_budget_is_short_and_none_starves(settings, clock, shared):
    settings.UPSTREAM_MAX_RPS = 5
    one, two = Budget(clock, shared), Budget(clock, shared)
    granted: list = []
    # Ten rows that would each poll every second (10 GET/s wanted), half of them on each process.
    rows = [
        demand(b, Priority.BACKGROUND, f"row-{n}", granted, every=1.0) for n, b in enumerate([one, two] * 5)
    ]
    await run_for(clock, 20.0, *rows)
    counts = collections.Counter(label for _, label in granted)
    assert sum(counts.values()) <= 5 * 20 + 1
    assert len(counts) == 10 and min(counts.values()) >= 0.7 * max(counts.values()), counts


async def test_a_429_pauses_the_whole_connection_for_every_process(settings, clock, shared):
    settings.UPSTREAM_MAX_RPS = 10
    one, two = Budget(clock, shared), Budget(clock, shared)
    await clock.advance(1.0)
    await one.slow_down(CONN, 3.0)  # Retry-After: 3, seen by one process
    paused_at = clock.monotonic()
    granted: list = []
    await run_for(clock, 4.0, demand(two, Priority.FOREGROUND, "other process", granted))
    assert granted and granted[0][0] - paused_at >= 3.0


async def test_a_higher_priority_waiter_is_served_before_older_lower_ones(settings, clock, shared):
    settings.UPSTREAM_MAX_RPS = 1
    budget = Budget(clock, shared)
    order: list[str] = []

    async def one(priority, label):
        await budget.take(CONN, priority)
        order.append(label)

    first = asyncio.ensure_future(one(Priority.BACKGROUND, "first"))
    await clock.advance(0.01)  # it takes the free slot
    waiting = [asyncio.ensure_future(one(Priority.BACKGROUND, f"row-{n}")) for n in range(3)]
    await clock.advance(0.1)
    page = asyncio.ensure_future(one(Priority.FOREGROUND, "page"))
    await clock.advance(4.0)
    await asyncio.gather(first, page, *waiting)
    assert order == ["first", "page", "row-0", "row-1", "row-2"]


async def test_on_redis_two_processes_together_keep_to_the_budget(settings):
    settings.UPSTREAM_MAX_RPS = 20
    shared = RedisStore(REDIS_URL, f"{SESSION_PREFIX}:budget")
    one, two = Budget(shared=shared), Budget(shared=shared)
    granted: list = []

    async def flood(budget, priority):
        while True:
            await budget.take(CONN, priority)
            granted.append(time.monotonic())

    tasks = [asyncio.ensure_future(flood(b, p)) for b in (one, two) for p in Priority]
    try:
        await asyncio.sleep(2.0)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await one.stop()
        await two.stop()
        keys = [k async for k in shared._redis().scan_iter(match=f"{SESSION_PREFIX}:budget:*")]
        if keys:
            await shared._redis().delete(*keys)
        await shared.close()
    span = granted[-1] - granted[0]
    # Redis's clock decides: at most the rate over the span, plus what a run page may take ahead of the
    # schedule (0.1 s of it), plus one for the round trips' jitter.
    assert len(granted) <= 20 * (span + 0.1) + 2, (len(granted), span)
    assert len(granted) >= 20 * span * 0.6, (len(granted), span)
