"""When the client sends a call again, how long it waits, and when it must not send it again."""

from __future__ import annotations

import email.utils
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from runs_ui.upstream.client import MAX_RETRY_WAIT
from runs_ui.upstream.errors import (
    AuthError,
    BadRequest,
    BadResponse,
    Conflict,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
)
from runs_ui.upstream.limits import Limits

from .conftest import error_json, run_json

RUN_PATH = "/threads/thread_1/runs/run_1"
OK = httpx.Response(200, json=run_json(status="in_progress"))

GET_FAULTS = {
    "connect error": httpx.ConnectError("refused"),
    "connect timeout": httpx.ConnectTimeout("slow"),
    "read timeout": httpx.ReadTimeout("slow"),
    "429": httpx.Response(429, json=error_json("Slow down.")),
    "500": httpx.Response(500, json=error_json("Oops.")),
    "502": httpx.Response(502, html="<html>bad gateway</html>"),
    "503": httpx.Response(503, json=error_json("Busy.")),
    "504": httpx.Response(504),
}


async def test_it_retries_a_get_after_a_503_and_returns_the_run(upstream, client, sleeps):
    route = upstream.get(RUN_PATH).mock(side_effect=[httpx.Response(503), OK])

    run = await client.get_run("thread_1", "run_1")

    assert run.id == "run_1"
    assert run.status == "in_progress"
    assert route.call_count == 2
    assert len(sleeps) == 1


@pytest.mark.parametrize("fault", GET_FAULTS.values(), ids=GET_FAULTS.keys())
async def test_it_retries_a_get_after_a_transient_fault(upstream, client, sleeps, fault):
    route = upstream.get(RUN_PATH).mock(side_effect=[fault, fault, OK])

    run = await client.get_run("thread_1", "run_1")

    assert run.status == "in_progress"
    assert route.call_count == 3
    assert len(sleeps) == 2


async def test_it_gives_up_after_the_configured_retries_and_raises_the_last_error(
    upstream, make_client, sleeps
):
    route = upstream.get(RUN_PATH).mock(
        side_effect=[
            httpx.Response(503, json=error_json("first")),
            httpx.Response(502, json=error_json("second")),
            httpx.Response(500, json=error_json("third"), headers={"x-request-id": "req_last"}),
            OK,
        ]
    )

    with pytest.raises(Unavailable) as caught:
        await make_client(retries=2).get_run("thread_1", "run_1")

    assert caught.value.status == 500
    assert caught.value.message == "third"
    assert caught.value.request_id == "req_last"
    assert route.call_count == 3
    assert len(sleeps) == 2


async def test_a_get_that_keeps_timing_out_raises_upstream_timeout_after_all_attempts(
    upstream, make_client, sleeps
):
    route = upstream.get(RUN_PATH).mock(side_effect=httpx.ReadTimeout)

    with pytest.raises(UpstreamTimeout):
        await make_client(retries=3).get_run("thread_1", "run_1")

    assert route.call_count == 4
    assert len(sleeps) == 3


async def test_a_client_with_no_retries_sends_a_get_once(upstream, make_client, sleeps):
    route = upstream.get(RUN_PATH).respond(503)

    with pytest.raises(Unavailable):
        await make_client(retries=0).get_run("thread_1", "run_1")

    assert route.call_count == 1
    assert sleeps == []


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, BadRequest),
        (401, AuthError),
        (403, PermissionDenied),
        (404, NotFound),
        (409, Conflict),
        (422, BadRequest),
    ],
)
async def test_it_never_retries_a_client_error_other_than_429(upstream, client, sleeps, status, error_class):
    route = upstream.get(RUN_PATH).respond(status, json=error_json("no"))

    with pytest.raises(error_class):
        await client.get_run("thread_1", "run_1")

    assert route.call_count == 1
    assert sleeps == []


async def test_it_never_retries_an_unreadable_answer(upstream, client, sleeps):
    route = upstream.get(RUN_PATH).respond(200, text="{not json")

    with pytest.raises(BadResponse):
        await client.get_run("thread_1", "run_1")

    assert route.call_count == 1
    assert sleeps == []


async def test_it_retries_every_get_it_makes_not_only_get_run(upstream, client):
    route = upstream.get("/threads/thread_1/runs/run_1/steps").mock(
        side_effect=[
            httpx.Response(503),
            httpx.Response(200, json={"object": "list", "data": [], "has_more": False}),
        ]
    )

    page = await client.list_steps("thread_1", "run_1")

    assert page.data == []
    assert route.call_count == 2


# --- POSTs -----------------------------------------------------------------------------------------

POSTS = {
    "cancel": (f"{RUN_PATH}/cancel", lambda c: c.cancel_run("thread_1", "run_1")),
    "submit tool outputs": (
        f"{RUN_PATH}/submit_tool_outputs",
        lambda c: c.submit_tool_outputs("thread_1", "run_1", [{"tool_call_id": "call_1", "output": "42"}]),
    ),
    "create run": ("/threads/thread_1/runs", lambda c: c.create_run("thread_1", "asst_1")),
    "create thread and run": ("/threads/runs", lambda c: c.create_thread_and_run("asst_1")),
    "modify": (RUN_PATH, lambda c: c.modify_run("thread_1", "run_1", {"k": "v"})),
}

POST_FAULTS = {
    "500": (httpx.Response(500), Unavailable),
    "503": (httpx.Response(503, headers={"retry-after": "1"}), Unavailable),
    "429": (httpx.Response(429, json=error_json("Slow down.")), RateLimited),
    "read timeout": (httpx.ReadTimeout("slow"), UpstreamTimeout),
    "connection dropped after sending": (httpx.RemoteProtocolError("peer closed"), Unavailable),
}


@pytest.mark.parametrize(("path", "call"), POSTS.values(), ids=POSTS.keys())
@pytest.mark.parametrize(("fault", "error_class"), POST_FAULTS.values(), ids=POST_FAULTS.keys())
async def test_it_never_retries_a_post_that_may_have_reached_the_upstream(
    upstream, client, sleeps, path, call, fault, error_class
):
    route = upstream.post(path).mock(side_effect=[fault, httpx.Response(200, json=run_json())])

    with pytest.raises(error_class):
        await call(client)

    assert route.call_count == 1
    assert sleeps == []


@pytest.mark.parametrize(("path", "call"), POSTS.values(), ids=POSTS.keys())
@pytest.mark.parametrize("fault", [httpx.ConnectError, httpx.ConnectTimeout])
async def test_it_retries_a_post_whose_connection_was_never_made(upstream, client, sleeps, path, call, fault):
    route = upstream.post(path).mock(side_effect=[fault, httpx.Response(200, json=run_json("run_1"))])

    run = await call(client)

    assert run.id == "run_1"
    assert route.call_count == 2
    assert len(sleeps) == 1


async def test_a_post_that_never_connects_gives_up_after_the_retries(upstream, make_client, sleeps):
    route = upstream.post(f"{RUN_PATH}/cancel").mock(side_effect=httpx.ConnectError)

    with pytest.raises(UpstreamError):
        await make_client(retries=2).cancel_run("thread_1", "run_1")

    assert route.call_count == 3
    assert len(sleeps) == 2


# --- waits -----------------------------------------------------------------------------------------


async def waits_for(upstream, client, sleeps, first: httpx.Response) -> list[float]:
    upstream.get(RUN_PATH).mock(side_effect=[first, OK])
    await client.get_run("thread_1", "run_1")
    return list(sleeps)


async def test_it_waits_the_seconds_a_retry_after_header_asks_for(upstream, client, sleeps):
    assert await waits_for(upstream, client, sleeps, httpx.Response(429, headers={"Retry-After": "7"})) == [
        7.0
    ]


async def test_it_honours_retry_after_on_a_503_too(upstream, client, sleeps):
    assert await waits_for(upstream, client, sleeps, httpx.Response(503, headers={"Retry-After": "2"})) == [
        2.0
    ]


async def test_it_waits_until_a_retry_after_http_date(upstream, client, sleeps):
    when = email.utils.formatdate(time.time() + 12, usegmt=True)

    [wait] = await waits_for(upstream, client, sleeps, httpx.Response(429, headers={"Retry-After": when}))

    # The HTTP date has one-second resolution; allow for that and for the test's own time.
    assert 9.5 <= wait <= 12.0


async def test_a_retry_after_date_in_the_past_means_no_wait(upstream, client, sleeps):
    when = email.utils.formatdate(time.time() - 60, usegmt=True)

    assert await waits_for(upstream, client, sleeps, httpx.Response(429, headers={"Retry-After": when})) == [
        0.0
    ]


async def test_retry_after_ms_is_honoured_and_wins_over_retry_after(upstream, client, sleeps):
    answer = httpx.Response(429, headers={"retry-after-ms": "250", "retry-after": "9"})

    assert await waits_for(upstream, client, sleeps, answer) == [0.25]


@pytest.mark.parametrize(
    "headers",
    [
        lambda: {"Retry-After": "3600"},
        lambda: {"retry-after-ms": "86400000"},
        lambda: {"Retry-After": email.utils.formatdate(time.time() + 7200, usegmt=True)},
    ],
    ids=["seconds", "milliseconds", "http date"],
)
async def test_a_wait_never_exceeds_the_cap(upstream, make_client, sleeps, headers):
    patient = make_client(limits=Limits(deadline=10 * MAX_RETRY_WAIT))

    [wait] = await waits_for(upstream, patient, sleeps, httpx.Response(429, headers=headers()))

    assert wait == MAX_RETRY_WAIT


async def test_a_wait_longer_than_the_deadline_leaves_is_not_waited_the_answer_stands(
    upstream, make_client, sleeps
):
    route = upstream.get(RUN_PATH).mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "20"}, json=error_json("Slow down.")), OK]
    )

    with pytest.raises(RateLimited) as caught:
        await make_client(limits=Limits(deadline=5)).get_run("thread_1", "run_1")

    assert caught.value.retry_after == 20
    assert route.call_count == 1
    assert sleeps == []


@pytest.mark.parametrize("value", ["inf", "1e400", "nan", "-inf"])
async def test_a_retry_after_that_is_no_number_of_seconds_falls_back_to_backoff(
    upstream, client, sleeps, value
):
    [wait] = await waits_for(upstream, client, sleeps, httpx.Response(429, headers={"Retry-After": value}))

    assert 0.5 <= wait <= 1.0


async def test_an_unreadable_retry_after_falls_back_to_backoff(upstream, client, sleeps):
    [wait] = await waits_for(upstream, client, sleeps, httpx.Response(429, headers={"Retry-After": "soon"}))

    assert 0.5 <= wait <= 1.0


async def test_backoff_without_retry_after_grows_exponentially_within_its_bounds(
    upstream, make_client, sleeps
):
    upstream.get(RUN_PATH).mock(side_effect=[httpx.ConnectError] * 6 + [OK])

    await make_client(retries=6).get_run("thread_1", "run_1")

    assert len(sleeps) == 6
    # 0.5·2ⁿ plus up to 0.5 s of jitter, never more than 8 s.
    for n, wait in enumerate(sleeps[:4]):
        assert 0.5 * 2**n <= wait <= 0.5 * 2**n + 0.5, (n, wait)
    assert sleeps[4:] == [8.0, 8.0]
    assert sleeps == sorted(sleeps)
    assert all(wait <= MAX_RETRY_WAIT for wait in sleeps)


async def test_backoff_is_jittered(upstream, make_client):
    upstream.get(RUN_PATH).mock(side_effect=[httpx.Response(503), OK] * 8)
    first_waits = set()
    for _ in range(8):
        sleeps = []

        async def record(seconds, sleeps=sleeps):
            sleeps.append(seconds)

        await make_client(sleep=record).get_run("thread_1", "run_1")
        first_waits.add(sleeps[0])

    # Eight draws of uniform(0, 0.5) that all coincide would mean there is no jitter.
    assert len(first_waits) > 1
    assert all(0.5 <= wait <= 1.0 for wait in first_waits)


def test_the_client_imports_without_deprecation_warnings():
    # The test run (and production with -W error) must not trip over a deprecated argument of a library.
    done = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", "import runs_ui.upstream.client"],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stderr
