"""The client reads no more of an upstream than its limits allow: time, bytes, pages, items, streams.

Against an upstream of the tests' own over real sockets (tests/abusive_upstream.py): a body that trickles,
hundreds of megabytes, JSON nested past what can be read, lists and streams without end. Small limits
prove the mechanism in a fraction of a second; the figures under the default limits are the benchmark's.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from runs_ui.upstream import client as client_module
from runs_ui.upstream.errors import BadResponse, DeadlineExceeded, LimitExceeded, UpstreamTimeout
from runs_ui.upstream.limits import Limits, MiB
from tests.abusive_upstream import AbusiveUpstream

from .conftest import busy_connections, checked_out, run_json

SMALL = Limits(
    deadline=1.0,
    max_body_bytes=MiB,
    max_pages=50,
    max_items=1_000,
    stream_seconds=1.0,
    stream_bytes=MiB,
    stream_events=500,
    stream_line_bytes=64 * 1024,
)


@pytest.fixture
def abusive():
    with AbusiveUpstream(trickle_seconds=0.2, huge_bytes=300 * MiB) as server:
        yield server


@pytest.fixture
def against(make_client, abusive):
    """A client of the abusive upstream with small limits (and a per-read timeout the trickle never trips)."""

    def make(limits: Limits = SMALL, **options):
        options.setdefault("retries", 0)
        return make_client(base_url=abusive.base_url, limits=limits, timeout=5, **options)

    return make


def assert_names(error: LimitExceeded, setting: str) -> None:
    assert error.setting == setting
    assert setting in error.message
    assert error.limit and error.value


# --- time ------------------------------------------------------------------------------------------


async def test_a_body_trickling_one_byte_at_a_time_ends_at_the_deadline(against, abusive):
    client = against()
    started = time.monotonic()

    with pytest.raises(DeadlineExceeded) as caught:
        await client.get_run("thread_trickle", "run_1")

    took = time.monotonic() - started
    assert 1.0 <= took < 2.0  # each byte came well within the per-read timeout: only the deadline ends it
    assert_names(caught.value, "UPSTREAM_DEADLINE")
    assert isinstance(caught.value, UpstreamTimeout)  # the request went out: its outcome is not known
    assert checked_out(abusive.port) == [] and busy_connections(abusive.port) == []


async def test_the_deadline_covers_every_attempt_of_a_retried_get(against, sleeps):
    started = time.monotonic()

    with pytest.raises(DeadlineExceeded):
        await against(retries=3).get_run("thread_trickle", "run_1")

    assert time.monotonic() - started < 2.0
    assert sleeps == []  # a limit is not retried: the same upstream would do the same again


async def test_a_stream_that_never_sends_its_headers_ends_at_the_deadline(make_client, loopback):
    loopback.script.append("hang")
    client = make_client(base_url=loopback.url, limits=Limits(deadline=0.5), timeout=5)

    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        async with client.stream_create_run("thread_1", "asst_1"):
            pass

    assert time.monotonic() - started < 1.5


async def test_a_stream_that_never_ends_is_closed_at_its_time_cap(against, abusive):
    abusive.stream_interval = 0.05
    events = []

    with pytest.raises(DeadlineExceeded) as caught:
        async with against(Limits(stream_seconds=0.6, stream_events=10**6)).stream_create_run(
            "thread_stream", "asst_1"
        ) as stream:
            async for event in stream:
                events.append(event)

    assert_names(caught.value, "UPSTREAM_STREAM_MAX_SECONDS")
    assert 5 < len(events) < 30
    assert checked_out(abusive.port) == []


# --- bytes -----------------------------------------------------------------------------------------


async def test_a_chunked_body_of_hundreds_of_megabytes_is_refused_before_it_is_all_read(against, abusive):
    started = time.monotonic()

    with pytest.raises(LimitExceeded) as caught:
        await against().get_run("thread_huge", "run_1")

    assert_names(caught.value, "UPSTREAM_MAX_BODY_BYTES")
    assert caught.value.value == "1 MiB"
    assert caught.value.status == 200
    assert time.monotonic() - started < 2.0
    # What the server could write before the client hung up: the cap and the sockets' buffers, not 300 MB.
    await asyncio.sleep(0.1)
    assert abusive.sent["thread_huge"] < 16 * MiB
    assert checked_out(abusive.port) == [] and busy_connections(abusive.port) == []


async def test_a_declared_length_over_the_cap_is_refused_unread(against, abusive):
    with pytest.raises(LimitExceeded) as caught:
        await against().get_run("thread_declared", "run_1")

    assert_names(caught.value, "UPSTREAM_MAX_BODY_BYTES")
    assert abusive.sent["thread_declared"] < 16 * MiB


async def test_a_body_of_exactly_the_cap_is_read(upstream, make_client):
    body = run_json()
    encoded = httpx.Response(200, json=body).content
    upstream.get("/threads/thread_1/runs/run_1").respond(200, json=body)

    run = await make_client(limits=Limits(max_body_bytes=len(encoded))).get_run("thread_1", "run_1")
    assert run.id == "run_1"

    with pytest.raises(LimitExceeded):
        await make_client(limits=Limits(max_body_bytes=len(encoded) - 1)).get_run("thread_1", "run_1")


async def test_json_nested_past_what_can_be_read_is_an_unreadable_answer(against, abusive):
    abusive.depth = 20_000

    with pytest.raises(BadResponse) as caught:
        await against().get_run("thread_deep", "run_1")

    assert "not JSON" in caught.value.message


async def test_json_nested_thousands_deep_but_readable_is_read(against, abusive):
    abusive.depth = 5_000

    run = await against().get_run("thread_deep", "run_1")

    assert run.id == "run_1"
    assert isinstance(run.raw["nested"], list)


async def test_a_stream_sending_more_bytes_than_its_cap_is_closed(against, abusive):
    abusive.delta_bytes = 10_000

    with pytest.raises(LimitExceeded) as caught:
        async with against(Limits(stream_bytes=256 * 1024, stream_events=10**6)).stream_create_run(
            "thread_stream", "asst_1"
        ) as stream:
            async for _ in stream:
                pass

    assert_names(caught.value, "UPSTREAM_STREAM_MAX_BYTES")
    assert abusive.sent["thread_stream"] < 16 * MiB


async def test_a_stream_line_without_an_end_is_closed_at_the_line_cap(against, abusive):
    with pytest.raises(LimitExceeded) as caught:
        async with against().stream_create_run("thread_line", "asst_1") as stream:
            async for _ in stream:
                pass

    assert_names(caught.value, "UPSTREAM_STREAM_MAX_LINE_BYTES")
    assert checked_out(abusive.port) == []


# --- count -----------------------------------------------------------------------------------------


async def test_a_stream_without_end_is_closed_at_its_event_cap(against):
    seen = 0
    with pytest.raises(LimitExceeded) as caught:
        async with against().stream_create_run("thread_stream", "asst_1") as stream:
            async for _ in stream:
                seen += 1

    assert_names(caught.value, "UPSTREAM_STREAM_MAX_EVENTS")
    assert seen == SMALL.stream_events


async def test_an_endless_list_stops_at_the_item_cap(against, abusive):
    seen = []
    with pytest.raises(LimitExceeded) as caught:
        async for step in against().iter_steps("thread_endless", "run_1"):
            seen.append(step.id)

    assert_names(caught.value, "UPSTREAM_MAX_ITEMS")
    assert len(seen) == len(set(seen)) == SMALL.max_items
    assert abusive.requests["thread_endless"] == SMALL.max_items // 100


async def test_an_endless_list_of_short_pages_stops_at_the_page_cap(against, abusive):
    with pytest.raises(LimitExceeded) as caught:
        async for _ in against(Limits(max_pages=4, max_items=10**6)).iter_steps("thread_endless", "run_1"):
            pass

    assert_names(caught.value, "UPSTREAM_MAX_PAGES")
    assert abusive.requests["thread_endless"] == 4


async def test_a_list_of_exactly_the_cap_is_read_whole(against, abusive):
    abusive.many = SMALL.max_items

    steps = [s.id async for s in against().iter_steps("thread_many", "run_1")]

    assert len(steps) == SMALL.max_items


async def test_tens_of_thousands_of_steps_are_walked_whole_under_a_cap_above_them(against, abusive):
    abusive.many = 20_000

    count = 0
    async for _ in against(Limits(max_items=50_000)).iter_steps("thread_many", "run_1"):
        count += 1

    assert count == 20_000


# --- pools -----------------------------------------------------------------------------------------


async def test_an_upstream_holding_all_its_connections_does_not_starve_another(
    make_client, abusive, monkeypatch
):
    monkeypatch.setattr(client_module, "MAX_CONNECTIONS", 2)
    slow = make_client(
        name="slow", base_url=abusive.base_url, limits=Limits(deadline=3), timeout=5, retries=0
    )
    fast = make_client(name="fast", base_url=abusive.base_url, limits=Limits(deadline=1), retries=0)
    held = [asyncio.create_task(slow.get_run("thread_trickle", f"run_{n}")) for n in range(2)]
    await asyncio.sleep(0.3)  # both of the slow connection's HTTP connections are taken

    started = time.monotonic()
    run = await fast.get_run("thread_ok", "run_1")

    assert run.id == "run_1"
    assert time.monotonic() - started < 1.0  # without a pool of its own it would wait for the slow ones (3 s)
    assert client_module._pools[asyncio.get_running_loop()].keys() >= {"slow", "fast"}
    for task in held:
        task.cancel()
    await asyncio.gather(*held, return_exceptions=True)
