"""No connection is left checked out of the pool after failures, retries and timeouts.

These run against a real loopback socket: respx replaces httpcore's I/O, so only a real server shows
what the pool holds. `checked_out` lists requests httpcore still counts as in flight (a response not
closed); `busy_connections` lists connections neither back in the pool nor closed.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from runs_ui.upstream import client as client_module
from runs_ui.upstream.client import _pool, close_pool
from runs_ui.upstream.errors import (
    BadResponse,
    ConnectFailed,
    NotFound,
    RateLimited,
    Unavailable,
    UpstreamTimeout,
)

from .conftest import busy_connections, checked_out, error_json, http_response, json_response, run_json


@pytest.fixture
def local_client(make_client, loopback):
    return make_client("sandbox", base_url=loopback.url, timeout=0.3, connect_timeout=0.3)


def assert_pool_clean(port: int) -> None:
    assert checked_out(port) == []
    assert busy_connections(port) == []


async def test_the_leak_check_notices_a_response_left_open(loopback):
    loopback.script.append(json_response(200, run_json()))
    pool = _pool("default")

    response = await pool.send(
        pool.build_request("GET", f"{loopback.url}/threads/thread_1/runs/run_1"), stream=True
    )
    assert len(checked_out(loopback.port)) == 1
    assert len(busy_connections(loopback.port)) == 1

    await response.aclose()
    assert_pool_clean(loopback.port)


async def test_no_connection_is_left_checked_out_after_retried_503s(local_client, loopback, sleeps):
    loopback.script.extend([json_response(503, error_json("Busy."))] * 3 + [json_response(200, run_json())])

    run = await local_client.get_run("thread_1", "run_1")

    assert run.id == "run_1"
    assert len(loopback.requests) == 4
    assert len(sleeps) == 3
    assert_pool_clean(loopback.port)
    # Each failed answer was read to the end, so one keep-alive connection carried all four requests.
    assert loopback.connections == 1


async def test_no_connection_is_left_checked_out_after_retries_run_out(local_client, loopback):
    loopback.script.extend([json_response(502, error_json("Bad gateway."))] * 4)

    with pytest.raises(Unavailable):
        await local_client.get_run("thread_1", "run_1")

    assert len(loopback.requests) == 4
    assert_pool_clean(loopback.port)
    assert loopback.connections == 1


async def test_no_connection_is_left_checked_out_after_read_timeouts(make_client, loopback):
    client = make_client("sandbox", base_url=loopback.url, timeout=0.2, retries=1)
    loopback.script.extend(["hang", "hang"])

    with pytest.raises(UpstreamTimeout):
        await client.get_run("thread_1", "run_1")

    assert len(loopback.requests) == 2
    assert_pool_clean(loopback.port)


async def test_the_pool_serves_the_next_call_after_a_timeout(make_client, loopback):
    client = make_client("sandbox", base_url=loopback.url, timeout=0.2, retries=0)
    loopback.script.extend(["hang", json_response(200, run_json("run_2"))])

    with pytest.raises(UpstreamTimeout):
        await client.get_run("thread_1", "run_1")
    run = await client.get_run("thread_1", "run_2")

    assert run.id == "run_2"
    assert_pool_clean(loopback.port)


async def test_no_connection_is_left_checked_out_after_a_4xx_or_a_bad_body(local_client, loopback):
    loopback.script.extend(
        [
            json_response(404, error_json("No run.")),
            http_response(200, "{nope", {"Content-Type": "application/json"}),
            json_response(200, run_json()),
        ]
    )

    with pytest.raises(NotFound):
        await local_client.get_run("thread_1", "run_1")
    with pytest.raises(BadResponse):
        await local_client.get_run("thread_1", "run_1")
    await local_client.get_run("thread_1", "run_1")

    assert_pool_clean(loopback.port)
    assert loopback.connections == 1


async def test_no_connection_is_left_checked_out_after_a_file_too_large(local_client, loopback, monkeypatch):
    monkeypatch.setattr(client_module, "MAX_FILE_BYTES", 10)
    loopback.script.append(http_response(200, b"x" * 100, {"Content-Type": "image/png"}))

    with pytest.raises(BadResponse):
        await local_client.get_file_content("file-1")

    assert_pool_clean(loopback.port)


async def test_no_request_is_left_checked_out_after_connections_are_refused(make_client, closed_port, sleeps):
    client = make_client("sandbox", base_url=f"http://127.0.0.1:{closed_port}/v1", retries=2)

    with pytest.raises(ConnectFailed):
        await client.get_run("thread_1", "run_1")

    assert len(sleeps) == 2
    assert_pool_clean(closed_port)


async def test_no_connection_is_left_checked_out_after_a_stream_breaks_mid_way(local_client, loopback):
    frame = b'event: thread.run.created\ndata: {"id": "run_1", "status": "queued"}\n\n'
    chunk = f"{len(frame):x}\r\n".encode() + frame + b"\r\n"
    loopback.script.append(
        (
            "cut",
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + chunk,
        )
    )
    seen = []

    with pytest.raises(Unavailable) as caught:
        async with local_client.stream_create_run("thread_1", "asst_1") as events:
            async for event in events:
                seen.append(event.event)

    assert not isinstance(caught.value, httpx.HTTPError)
    assert seen == ["thread.run.created"]
    assert_pool_clean(loopback.port)


async def test_no_connection_is_left_checked_out_when_a_stream_is_left_early(local_client, loopback):
    body = (b"event: thread.run.created\ndata: {}\n\n" * 3) + b"event: done\ndata: [DONE]\n\n"
    loopback.script.append(http_response(200, body, {"Content-Type": "text/event-stream"}))

    async with local_client.stream_create_run("thread_1", "asst_1") as events:
        async for _ in events:
            break

    assert_pool_clean(loopback.port)


async def test_no_connection_is_left_checked_out_after_a_stream_is_refused(local_client, loopback):
    loopback.script.append(json_response(429, error_json("Slow down.")))

    with pytest.raises(RateLimited):
        async with local_client.stream_create_run("thread_1", "asst_1"):
            pass

    assert_pool_clean(loopback.port)


async def test_close_pool_closes_this_loops_pool_and_the_next_call_opens_a_new_one(local_client, loopback):
    loopback.script.extend([json_response(200, run_json())] * 2)
    await local_client.get_run("thread_1", "run_1")
    old = _pool("default")

    await close_pool()

    assert old.is_closed
    assert asyncio.get_running_loop() not in client_module._pools
    await local_client.get_run("thread_1", "run_1")
    assert _pool("default") is not old
    assert not _pool("default").is_closed
    assert loopback.connections == 2


async def test_close_pool_without_a_pool_does_nothing():
    await close_pool()
    await close_pool()

    assert asyncio.get_running_loop() not in client_module._pools


async def test_each_event_loop_has_its_own_pool():
    async def pool_of_another_loop():
        pool = _pool("default")
        await close_pool()
        return pool

    other = await asyncio.to_thread(asyncio.run, pool_of_another_loop())

    assert _pool("default") is _pool("default")
    assert other is not _pool("default")
    assert other.is_closed


async def test_no_connection_is_left_checked_out_when_the_calling_task_is_cancelled(
    local_client, loopback, sleeps
):
    loopback.script.append("hang")
    task = asyncio.create_task(local_client.get_run("thread_1", "run_1"))
    await asyncio.wait_for(loopback.arrived.wait(), 5)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert sleeps == []  # a cancelled call is not retried
    assert len(loopback.requests) == 1
    assert_pool_clean(loopback.port)
