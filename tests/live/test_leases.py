"""Watcher leases (runs_ui.shared_state): who polls a run, across processes. Redis for real, and the
single-process memory store, which must behave the same."""

from __future__ import annotations

import asyncio
import time

import pytest

from runs_ui import live, shared_state
from runs_ui.shared_state import MemoryState, RedisState
from tests.fixtures import eventually
from tests.live.support import REDIS_URL, SESSION_PREFIX

A, B = "process-a", "process-b"


@pytest.fixture(params=["redis", "memory"])
async def store(request):
    if request.param == "memory":
        yield MemoryState()
        return
    state = RedisState(REDIS_URL, f"{SESSION_PREFIX}:leases")
    yield state
    redis = state._redis()
    keys = [k async for k in redis.scan_iter(match=f"{SESSION_PREFIX}:leases:*")]
    if keys:
        await redis.delete(*keys)
    await state.close()


async def test_a_free_lease_is_acquired_and_names_its_holder(store):
    assert await store.acquire("lease:run:1", 5, owner=A)
    assert await store.holder("lease:run:1") == A


async def test_a_second_owner_cannot_take_a_held_lease(store):
    assert await store.acquire("lease:run:1", 5, owner=A)
    assert not await store.acquire("lease:run:1", 5, owner=B)
    assert await store.holder("lease:run:1") == A


async def test_the_holder_renews_its_lease_and_the_renewal_extends_it(store):
    assert await store.acquire("lease:run:1", 0.4, owner=A)
    await asyncio.sleep(0.25)
    assert await store.acquire("lease:run:1", 0.4, owner=A)  # renewed: good for 0.4 s from now
    await asyncio.sleep(0.25)  # past the first expiry
    assert await store.holder("lease:run:1") == A
    assert not await store.acquire("lease:run:1", 0.4, owner=B)


async def test_another_owner_takes_over_after_the_lease_expires(store):
    assert await store.acquire("lease:run:1", 0.2, owner=A)
    await asyncio.sleep(0.3)
    assert await store.holder("lease:run:1") is None
    assert await store.acquire("lease:run:1", 5, owner=B)
    assert await store.holder("lease:run:1") == B
    assert not await store.acquire("lease:run:1", 5, owner=A)


async def test_only_the_holder_can_release_its_lease(store):
    assert await store.acquire("lease:run:1", 5, owner=A)
    await store.release("lease:run:1", owner=B)
    assert await store.holder("lease:run:1") == A
    await store.release("lease:run:1", owner=A)
    assert await store.holder("lease:run:1") is None
    assert await store.acquire("lease:run:1", 5, owner=B)


async def test_leases_on_different_runs_are_independent(store):
    assert await store.acquire("lease:run:1", 5, owner=A)
    assert await store.acquire("lease:run:2", 5, owner=B)
    assert (await store.holder("lease:run:1"), await store.holder("lease:run:2")) == (A, B)


async def test_only_one_of_many_concurrent_claims_wins(store):
    owners = [f"process-{n}" for n in range(20)]
    won = await asyncio.gather(*(store.acquire("lease:run:race", 5, owner=o) for o in owners))
    assert sum(won) == 1
    assert await store.holder("lease:run:race") == owners[won.index(True)]


async def test_redis_leases_live_under_the_configured_prefix(redis_layer):
    store = shared_state.shared()
    assert await store.acquire("lease:run:prefixed", 5, owner=A)
    assert await store._redis().get(f"{SESSION_PREFIX}:lease:run:prefixed") == A.encode()
    ttl = await store._redis().pttl(f"{SESSION_PREFIX}:lease:run:prefixed")
    assert 4000 < ttl <= 5000


# --- the watcher and the lease -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_a_run_whose_lease_another_process_holds_is_not_polled_here_until_the_lease_expires(
    redis_layer, make_run, requests_log, settings
):
    from runs_ui.watcher import watcher

    settings.WATCH_FAST_SECONDS = 0.1
    run = make_run("slow", speed=1)
    lease = f"lease:run:{live.run_group('default', run.run_id).removeprefix('run.')}"
    store = shared_state.shared()
    assert await store.acquire(lease, 2.0, owner="another-process")
    held_at = time.time()
    watcher.watch_run("default", run.thread_id, run.run_id, "page")
    await asyncio.sleep(1.5)
    assert requests_log.entries(run_id=run.run_id) == [], "polled while another process held the lease"
    # The other process stops renewing: this one takes over within a lease retry of the expiry.
    await eventually(lambda: requests_log.entries(run_id=run.run_id), timeout=5)
    first = requests_log.entries(run_id=run.run_id)[0]["t"]
    assert 1.9 <= first - held_at <= 2.0 + 1.5, first - held_at
    assert await store.holder(lease) == shared_state.PROCESS_ID


@pytest.mark.django_db(transaction=True)
async def test_a_watch_that_stops_releases_its_lease(redis_layer, make_run, settings):
    from runs_ui.watcher import watcher

    run = make_run("slow", speed=1)
    lease = f"lease:run:{live.run_group('default', run.run_id).removeprefix('run.')}"
    store = shared_state.shared()
    watcher.watch_run("default", run.thread_id, run.run_id, "page")
    await eventually(lambda: store.holder(lease))
    assert await store.holder(lease) == shared_state.PROCESS_ID
    task = watcher.runs[("default", run.run_id)].task
    watcher.unwatch_run("default", run.run_id, "page")
    await eventually(task.done, timeout=3)
    assert await store.holder(lease) is None
