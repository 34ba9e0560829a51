"""The shared store (runs_ui.live.store): leases with fencing tokens, versions, saved states and pushes.
Redis for real, and the one-process memory store, which must behave the same."""

from __future__ import annotations

import asyncio

import pytest

from runs_ui.live import bus
from runs_ui.live import store as live_store
from runs_ui.live.store import MemoryStore, RedisStore, Version
from tests.live.support import REDIS_URL, SESSION_PREFIX, FakeClock

A, B = "process-a/run-1", "process-b/run-7"
KEY = "run:0123456789abcdef"


@pytest.fixture(params=["redis", "memory"])
async def store(request):
    if request.param == "memory":
        yield MemoryStore(FakeClock())
        return
    state = RedisStore(REDIS_URL, f"{SESSION_PREFIX}:store")
    yield state
    redis = state._redis()
    keys = [k async for k in redis.scan_iter(match=f"{SESSION_PREFIX}:store:*")]
    if keys:
        await redis.delete(*keys)
    await state.close()


async def expire(store, seconds: float) -> None:
    """Let `seconds` pass for the store's leases: the fake clock moves, Redis's real one is waited for."""
    if isinstance(store, MemoryStore):
        await store.clock.advance(seconds)
    else:
        await asyncio.sleep(seconds)


# --- leases --------------------------------------------------------------------------------------


async def test_a_free_lease_is_acquired_with_a_token_and_names_its_holder(store):
    token = await store.acquire(KEY, A, 5)
    assert token >= 1
    assert await store.holder(KEY) == A


async def test_a_second_owner_cannot_take_a_held_lease(store):
    assert await store.acquire(KEY, A, 5)
    assert await store.acquire(KEY, B, 5) == 0
    assert await store.holder(KEY) == A


async def test_the_holder_acquiring_again_keeps_its_token(store):
    token = await store.acquire(KEY, A, 5)
    assert await store.acquire(KEY, A, 5) == token


async def test_a_renewal_by_the_holder_extends_the_lease(store):
    token = await store.acquire(KEY, A, 0.3)
    await expire(store, 0.2)
    assert await store.renew(KEY, A, token, 0.3)  # good for 0.3 s from now
    await expire(store, 0.2)  # past the first expiry
    assert await store.holder(KEY) == A


async def test_an_expired_lease_goes_to_the_next_owner_with_a_greater_token_and_the_old_one_is_refused(store):
    old = await store.acquire(KEY, A, 0.2)
    await expire(store, 0.3)
    assert await store.holder(KEY) is None
    new = await store.acquire(KEY, B, 5)
    assert new > old
    # The stalled holder wakes up: every fenced operation it tries is refused.
    assert not await store.renew(KEY, A, old, 5)
    assert await store.reserve(KEY, A, old, 5) is None
    assert not await store.commit(KEY, A, old, 5, Version(1, 99), {"common": "stale"}, {"common": "stale"})
    assert await store.holder(KEY) == B


async def test_a_stream_relay_steals_the_lease_and_the_poller_is_fenced_off(store):
    poller = await store.acquire(KEY, A, 5)
    relay = await store.acquire(KEY, B, 5, steal=True)
    assert relay > poller and await store.holder(KEY) == B
    assert await store.reserve(KEY, A, poller, 5) is None
    assert await store.reserve(KEY, B, relay, 5) is not None


async def test_only_the_holder_can_release_its_lease(store):
    token = await store.acquire(KEY, A, 5)
    await store.release(KEY, B, token)
    assert await store.holder(KEY) == A
    await store.release(KEY, A, token)
    assert await store.holder(KEY) is None
    assert await store.acquire(KEY, B, 5)


async def test_only_one_of_many_concurrent_claims_wins(store):
    owners = [f"process-{n}/run-1" for n in range(20)]
    tokens = await asyncio.gather(*(store.acquire("run:race", o, 5) for o in owners))
    assert sum(1 for t in tokens if t) == 1
    winner = owners[next(n for n, t in enumerate(tokens) if t)]
    assert await store.holder("run:race") == winner


# --- versions, states and pushes ---------------------------------------------------------------


async def test_versions_follow_one_another_across_holders(store):
    first = await store.acquire(KEY, A, 5)
    v1 = await store.reserve(KEY, A, first, 5)
    v2 = await store.reserve(KEY, A, first, 5)
    assert v2.follows(v1)
    await store.release(KEY, A, first)
    second = await store.acquire(KEY, B, 5)
    v3 = await store.reserve(KEY, B, second, 5)
    assert v3.follows(v2)


async def test_a_commit_saves_the_state_sets_the_head_and_keeps_the_push(store):
    token = await store.acquire(KEY, A, 5)
    v1 = await store.reserve(KEY, A, token, 5)
    assert await store.commit(KEY, A, token, 5, v1, {"common": "push 1"}, {"common": "state 1"})
    v2 = await store.reserve(KEY, A, token, 5)
    assert await store.commit(KEY, A, token, 5, v2, {"common": "push 2"}, None)  # a delta: no new state
    assert await store.heads([KEY, "run:other"]) == [v2, None]
    state = await store.state(KEY)
    assert (state["common"], Version.parse(state["v"])) == ("state 1", v1)
    pushes = await store.pushes(KEY, [v1, v2, Version(v2.epoch, v2.seq + 1)])
    assert [p and p["common"] for p in pushes] == ["push 1", "push 2", None]


async def test_an_older_state_never_overwrites_a_newer_one(store):
    token = await store.acquire(KEY, A, 5)
    v1 = await store.reserve(KEY, A, token, 5)
    v2 = await store.reserve(KEY, A, token, 5)
    assert await store.commit(KEY, A, token, 5, v2, {}, {"common": "newer"})
    assert await store.commit(KEY, A, token, 5, v1, {}, {"common": "older"})
    assert (await store.state(KEY))["common"] == "newer"
    assert await store.heads([KEY]) == [v2]


async def test_versions_of_a_store_that_lost_its_data_are_still_newer():
    """Redis restarted empty (it keeps nothing on disk here): a new epoch, later than every old one."""
    store = RedisStore(REDIS_URL, f"{SESSION_PREFIX}:lost")
    try:
        token = await store.acquire(KEY, A, 5)
        before = await store.reserve(KEY, A, token, 5)
        redis = store._redis()
        await redis.delete(*[k async for k in redis.scan_iter(match=f"{SESSION_PREFIX}:lost:*")])
        await asyncio.sleep(0.002)
        token = await store.acquire(KEY, B, 5)
        after = await store.reserve(KEY, B, token, 5)
        assert after > before and after.epoch > before.epoch and not after.follows(before)
    finally:
        keys = [k async for k in store._redis().scan_iter(match=f"{SESSION_PREFIX}:lost:*")]
        if keys:
            await store._redis().delete(*keys)
        await store.close()


def test_a_version_reads_back_as_it_was_written_and_a_page_stamp_sits_between_two_pushes():
    v = Version(1_765_000_000_123, 41)
    assert Version.parse(str(v)) == v and str(v) == "1765000000123-41"
    page = v.after_page()
    assert v < page < Version(v.epoch, 42) and Version.parse(str(page)) == page
    assert Version.parse("nonsense") is None and Version.parse(None) is None
    assert not Version(2, 1).follows(Version(1, 0)) and Version(1, 1).follows(Version(1, 0))


async def test_the_boot_marker_changes_when_redis_loses_its_data():
    store = RedisStore(REDIS_URL, f"{SESSION_PREFIX}:boot")
    try:
        first = await store.boot_marker()
        assert await store.boot_marker() == first
        await store._redis().delete(f"{SESSION_PREFIX}:boot:boot")
        assert await store.boot_marker() != first
    finally:
        await store._redis().delete(f"{SESSION_PREFIX}:boot:boot")
        await store.close()


async def test_redis_keys_live_under_the_configured_prefix(redis_layer):
    store = live_store.store()
    token = await store.acquire(KEY, A, 5)
    assert await store._redis().get(f"{SESSION_PREFIX}:lease:{KEY}") == f"{A}|{token}".encode()
    ttl = await store._redis().pttl(f"{SESSION_PREFIX}:lease:{KEY}")
    assert 4000 < ttl <= 5000


async def test_an_unreachable_redis_is_reported_as_the_store_being_unavailable(settings):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.REDIS_SOCKET_TIMEOUT = settings.REDIS_POOL_TIMEOUT = 0.5
    store = RedisStore(f"redis://127.0.0.1:{port}/0", "nowhere")
    with pytest.raises(live_store.StoreUnavailable):
        await store.acquire(KEY, A, 5)
    await store.close()


def test_run_keys_name_the_thread_too():
    """A socket naming a run under the wrong thread watches its own pair, not everyone's run."""
    assert bus.run_key("default", "thread_a", "run_1") != bus.run_key("default", "thread_b", "run_1")
    assert bus.group_of(bus.run_key("default", "thread_a", "run_1")).startswith("run.")
    assert len(bus.group_of(bus.run_key("default", "thread_" + "x" * 128, "run_" + "y" * 128))) < 100
