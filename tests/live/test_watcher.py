"""The watcher: its pace (by who looks, upstream hints), leases and fencing, backoff and staleness, and
surviving every kind of error."""

from __future__ import annotations

import asyncio
import itertools
import time

import httpx
import pytest

from runs_ui import index
from runs_ui.live import bus, fragments
from runs_ui.live.budget import Priority
from runs_ui.live.store import PROCESS_ID, StoreUnavailable, store
from runs_ui.live.watcher import RUN_GETS_PER_SECOND, RunWatch, TokenBucket, watcher
from runs_ui.upstream.objects import Run
from tests.fixtures import eventually
from tests.live.support import (
    FakeClock,
    run_json,
    run_path,
    stale_banner,
    stale_cleared,
    statuses,
    wait_status,
)

pytestmark = pytest.mark.django_db(transaction=True)


def alive_watch_tasks() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "watch-run" and not t.done()]


# --- one poller per run ------------------------------------------------------------------------------


async def test_watching_a_run_from_many_places_at_once_never_starts_a_second_poller(make_run, settings):
    """Regression: alive() read `task.cancelling()`, which a wait_for timeout in sleep() also sets for a
    moment; a watch_run landing then replaced a live watch, leaving an unreachable second poller."""
    settings.WATCH_FAST_SECONDS = 0.05
    run = make_run("slow", speed=10)
    watcher.watch_run("default", run.thread_id, run.run_id, "first")
    loop = asyncio.get_running_loop()
    deadline, n = loop.time() + 1.5, 0
    while loop.time() < deadline:
        watcher.watch_run("default", run.thread_id, run.run_id, f"holder-{n}")
        n += 1
        await asyncio.sleep(0)  # one loop iteration: lands right after any timeout that fired
    assert len(alive_watch_tasks()) == 1
    assert len(watcher.runs[("default", run.thread_id, run.run_id)].holders) == n + 1


# --- the interval ------------------------------------------------------------------------------------


def _watch(run: Run | None = None, **holders: Priority) -> RunWatch:
    watch = RunWatch(watcher, "default", "thread_t1", "run_r1")
    if run is not None:
        watch.state, _ = watch.state.diff(run)
    watch.holders.update(holders)
    return watch


def test_a_run_on_someones_run_page_is_polled_at_the_fast_pace(settings):
    settings.WATCH_FAST_SECONDS, settings.WATCH_THREAD_SECONDS, settings.WATCH_SLOW_SECONDS = 0.5, 2, 5
    assert _watch(Run.from_json(run_json(status="in_progress")), page=Priority.FOREGROUND).interval() == 0.5


def test_a_run_waiting_for_tool_outputs_on_a_run_page_is_still_polled_fast(settings):
    """An operator may be typing the outputs the agent's own application is submitting: the page must
    show within a second that the run left requires_action."""
    settings.WATCH_FAST_SECONDS, settings.WATCH_SLOW_SECONDS = 0.5, 5.0
    far = Run.from_json(run_json(status="requires_action", expires_at=int(time.time()) + 600))
    assert _watch(far, page=Priority.FOREGROUND).interval() == 0.5


def test_the_most_urgent_viewer_sets_the_pace(settings):
    settings.WATCH_FAST_SECONDS, settings.WATCH_THREAD_SECONDS, settings.WATCH_SLOW_SECONDS = 0.5, 2, 5
    run = Run.from_json(run_json(status="in_progress"))
    assert _watch(run, home=Priority.BACKGROUND).interval() == 5.0
    assert _watch(run, home=Priority.BACKGROUND, thread=Priority.THREAD).interval() == 2.0
    assert _watch(run, home=Priority.BACKGROUND, page=Priority.FOREGROUND).interval() == 0.5


def test_a_run_waiting_for_a_person_off_its_page_is_polled_slowly_but_right_after_it_expires(settings):
    settings.WATCH_FAST_SECONDS, settings.WATCH_SLOW_SECONDS = 0.5, 5.0
    far = Run.from_json(run_json(status="requires_action", expires_at=int(time.time()) + 600))
    soon = Run.from_json(run_json(status="requires_action", expires_at=int(time.time()) + 2))
    assert _watch(far, home=Priority.BACKGROUND).interval() == 5.0
    assert 1.0 <= _watch(soon, home=Priority.BACKGROUND).interval() <= 3.0


def test_the_upstreams_poll_after_hint_is_a_floor_on_the_interval(settings):
    settings.WATCH_FAST_SECONDS = 0.5
    watch = _watch(Run.from_json(run_json(status="in_progress")), page=Priority.FOREGROUND)
    watch.poll_after = 3.0
    assert watch.interval() == 3.0


async def test_the_watcher_waits_as_long_as_openai_poll_after_ms_asks(
    open_socket, users, make_run, requests_log, settings
):
    settings.WATCH_FAST_SECONDS = 0.05
    # The sandbox sends openai-poll-after-ms = 500 / speed: 1000 ms at speed 0.5 (the run stays queued);
    # without the hint the watcher would ask every 0.5 s (its per-run budget).
    run = make_run("slow", speed=0.5)
    await open_socket(run_path(run), user=users.viewer)
    await asyncio.sleep(2.7)
    gets = requests_log.run_gets(run.run_id)
    gaps = [b["t"] - a["t"] for a, b in itertools.pairwise(gets)]
    assert len(gets) == 3, gaps
    assert min(gaps) >= 0.95, gaps


async def test_the_watcher_waits_as_long_as_retry_after_asks(open_socket, users, respx_upstream):
    calls: list[float] = []

    def answer(request):
        calls.append(time.monotonic())
        if len(calls) == 1:
            return httpx.Response(
                429,
                headers={"Retry-After": "3"},
                json={"error": {"message": "Slow down", "type": "rate_limit", "param": None, "code": None}},
            )
        return httpx.Response(200, json=run_json(status="in_progress"))

    respx_upstream.get(path__regex=r"/threads/thread_t1/runs/run_r1$").mock(side_effect=answer)
    socket = await open_socket("/ws/runs/default/thread_t1/run_r1/", user=users.viewer)
    notice = stale_banner(await socket.expect(stale_banner))
    assert "rate limited" in notice and "retrying in 3 s" in notice
    # A viewer arriving meanwhile does not make the watcher ask before it was told to.
    await open_socket("/ws/runs/default/thread_t1/run_r1/", user=users.operator)
    await eventually(lambda: len(calls) >= 2, timeout=6)
    # Without Retry-After the first backoff is 1.5 to 2.5 s; the upstream asked for 3.
    assert calls[1] - calls[0] >= 2.95


async def test_upstream_errors_back_off_push_a_stale_notice_and_clear_it_on_recovery(
    open_socket, users, respx_upstream
):
    calls: list[float] = []
    bad_gateway = "<html><body><h1>502 Bad Gateway</h1><script>alert(1)</script></body></html>"

    def answer(request):
        calls.append(time.monotonic())
        if len(calls) <= 2:
            return httpx.Response(502, headers={"content-type": "text/html"}, text=bad_gateway)
        return httpx.Response(200, json=run_json(status="in_progress"))

    respx_upstream.get(path__regex=r"/threads/thread_t1/runs/run_r1$").mock(side_effect=answer)
    socket = await open_socket("/ws/runs/default/thread_t1/run_r1/", user=users.operator)
    pushed = await socket.expect(stale_banner)
    notice = stale_banner(pushed)
    assert "Live updates for run_r1 are delayed (upstream unavailable)" in notice
    assert "Bad Gateway" not in pushed and "<script>" not in pushed
    stale_at = socket.messages.index(pushed)
    await socket.expect(stale_cleared, within=12, start=stale_at + 1)
    assert len(calls) == 3
    first_wait, second_wait = calls[1] - calls[0], calls[2] - calls[1]
    # Exponential backoff with ±25 % jitter: 2 s then 4 s.
    assert 1.45 <= first_wait <= 2.7, first_wait
    assert 2.95 <= second_wait <= 5.2, second_wait
    # Recovered: the run's header arrives.
    await socket.expect(lambda html: 'id="run-header-run_r1"' in html, start=stale_at + 1)


async def test_an_upstream_that_cannot_be_reached_marks_the_page_stale(open_socket, users, settings):
    import socket as sockets

    with sockets.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.ASSISTANTS_API_BASE_URL = f"http://127.0.0.1:{port}/v1"  # nothing listens: a stopped upstream
    settings.ASSISTANTS_API_KEY = "sk-test"
    settings.ASSISTANTS_API_PROFILE = "sandbox"
    socket = await open_socket("/ws/runs/default/thread_t1/run_r1/", user=users.viewer)
    notice = stale_banner(await socket.expect(stale_banner))
    assert "could not connect to the upstream" in notice
    assert watcher.runs[("default", "thread_t1", "run_r1")].errors >= 1


# --- budgets -------------------------------------------------------------------------------------


async def test_a_watched_run_costs_at_most_two_upstream_gets_per_second_even_when_set_to_poll_faster(
    open_socket, users, make_run, requests_log, settings
):
    settings.WATCH_FAST_SECONDS = 0.05
    run = make_run("slow", speed=10, sandbox_queued_seconds=0.1)  # changes all the time; hint 50 ms
    await open_socket(run_path(run), user=users.viewer)
    await asyncio.sleep(2.5)
    gets = requests_log.entries(run_id=run.run_id, method="GET")
    span = gets[-1]["t"] - gets[0]["t"]
    assert span > 1.5
    assert len(gets) <= RUN_GETS_PER_SECOND * (span + 0.1) + 2, (len(gets), span)  # burst of 2
    assert len(gets) >= span, "it should still poll about as fast as it may"


async def test_the_connections_budget_holds_across_many_runs(make_run, requests_log, settings):
    settings.WATCH_FAST_SECONDS = 0.05
    settings.UPSTREAM_MAX_RPS = 3.0
    runs = [make_run("slow", speed=10, sandbox_queued_seconds=0.1) for _ in range(6)]
    since = time.time()
    for run in runs:
        watcher.watch_run("default", run.thread_id, run.run_id, "page")
    await asyncio.sleep(2.0)
    await watcher.stop()
    until = time.time()
    gets = [e for e in requests_log.entries(since=since, until=until) if e["method"] == "GET"]
    # Six runs could ask 2 GET/s each (12/s); the connection's budget is 3/s (and a run page may run a
    # tenth of a second ahead of it).
    assert len(gets) <= 3.0 * (until - since + 0.1) + 1, len(gets)
    assert len(gets) >= 5
    assert len({e["path"].split("/runs/")[1].split("/")[0] for e in gets if "/runs/" in e["path"]}) >= 2


async def test_a_token_bucket_allows_its_rate_on_average():
    clock = FakeClock()
    bucket = TokenBucket(rate=20, burst=2, clock=clock)
    taken = []

    async def take_twelve():
        for _ in range(12):
            await bucket.take()
            taken.append(clock.monotonic())

    task = asyncio.ensure_future(take_twelve())
    await clock.advance(1.0)
    await task
    # Two at once (the burst), then ten at 20/s.
    assert taken[1] - taken[0] == 0
    assert taken[-1] - taken[0] == pytest.approx(0.5, abs=0.02)


# --- one publisher: leases and fencing -----------------------------------------------------------


def lease_key(run) -> str:
    return bus.run_key("default", run.thread_id, run.run_id)


async def test_a_run_whose_lease_another_process_holds_is_not_polled_here_until_the_lease_expires(
    redis_layer, make_run, requests_log, settings
):
    settings.WATCH_FAST_SECONDS = 0.1
    run = make_run("slow", speed=1)
    assert await store().acquire(lease_key(run), "another-process/run-1", 2.0)
    held_at = time.time()
    watcher.watch_run("default", run.thread_id, run.run_id, "page")
    await asyncio.sleep(1.5)
    assert requests_log.entries(run_id=run.run_id) == [], "polled while another process held the lease"
    # The other process stops renewing: this one takes over within a lease retry of the expiry.
    await eventually(lambda: requests_log.entries(run_id=run.run_id), timeout=5)
    first = requests_log.entries(run_id=run.run_id)[0]["t"]
    assert 1.9 <= first - held_at <= 2.0 + 1.5, first - held_at
    assert (await store().holder(lease_key(run))).startswith(PROCESS_ID)


async def test_a_watch_that_stops_releases_its_lease(redis_layer, make_run):
    run = make_run("slow", speed=1)
    watcher.watch_run("default", run.thread_id, run.run_id, "page")
    await eventually(lambda: store().holder(lease_key(run)))
    task = watcher.runs[("default", run.thread_id, run.run_id)].task
    watcher.unwatch_run("default", run.thread_id, run.run_id, "page")
    await eventually(task.done, timeout=3)
    assert await store().holder(lease_key(run)) is None


async def test_a_watch_renews_its_lease_while_a_poll_waits_long_for_the_upstream(
    redis_layer, respx_upstream, settings
):
    """A slow poll (the upstream, the budget) must not let the lease lapse: another process would poll
    and publish too."""
    settings.WATCH_LEASE_SECONDS = 1.0
    release = asyncio.Event()

    async def slow(request):
        await release.wait()
        return httpx.Response(200, json=run_json(status="in_progress"))

    respx_upstream.get(path__regex=r"/threads/thread_t1/runs/run_r1$").mock(side_effect=slow)
    watcher.watch_run("default", "thread_t1", "run_r1", "page")
    key = bus.run_key("default", "thread_t1", "run_r1")
    await eventually(lambda: store().holder(key))
    await asyncio.sleep(2.5)  # more than twice the lease, with the poll still waiting
    try:
        assert (await store().holder(key)).startswith(PROCESS_ID)
        assert not await store().acquire(key, "another-process/run-9", 1.0)
    finally:
        release.set()


async def test_a_holder_that_lost_its_lease_mid_poll_publishes_nothing_and_the_new_holder_does(
    redis_layer, open_socket, users, respx_upstream, settings
):
    """The fencing token: a poll that started before another publisher took the lease is discarded."""
    statuses_served = iter(["queued", "in_progress", "in_progress", "in_progress"])
    in_poll, release = asyncio.Event(), asyncio.Event()

    async def answer(request):
        status = next(statuses_served, "in_progress")
        if status == "in_progress" and not release.is_set():
            in_poll.set()
            await release.wait()  # held until the other publisher has taken over
            return httpx.Response(200, json=run_json(status="expired"))  # a stale answer
        return httpx.Response(200, json=run_json(status=status))

    respx_upstream.get(path__regex=r"/threads/thread_t1/runs/run_r1$").mock(side_effect=answer)
    settings.WATCH_FAST_SECONDS = 0.1
    socket = await open_socket("/ws/runs/default/thread_t1/run_r1/", user=users.viewer)
    await socket.expect(lambda html: statuses(html, "run_r1") == ["queued"])
    await in_poll.wait()
    key = bus.run_key("default", "thread_t1", "run_r1")
    other = "another-process/relay-1"
    token = await store().acquire(key, other, 30, steal=True)
    version = await store().reserve(key, other, token, 30)
    push = {"viewer": fragments.stale_notice("taken over"), "common": ""}
    assert await store().commit(key, other, token, 30, version, push, None)
    release.set()
    await eventually(lambda: watcher.runs[("default", "thread_t1", "run_r1")].fence is None, timeout=5)
    # The stale "expired" this watch fetched before it lost the lease was refused: nothing was published
    # after the other publisher's push, and no socket saw it.
    assert await store().heads([key]) == [version]
    assert "expired" not in [s for html in socket.messages for s in statuses(html, "run_r1")]
    # The other publisher lets go: this watch takes over and publishes the whole state again.
    await store().release(key, other, token)
    await socket.expect(lambda html: "in_progress" in statuses(html, "run_r1"), within=8)


# --- a watch never dies quietly ------------------------------------------------------------------


async def test_a_watch_backs_off_from_a_shared_store_error_shows_it_and_recovers(
    open_socket, users, make_run, sandbox, monkeypatch
):
    run = make_run("answer", speed=1, sandbox_queued_seconds=3)
    socket = await open_socket(run_path(run), user=users.viewer)
    await socket.expect(lambda html: statuses(html, run.run_id) == ["queued"])
    real_reserve = type(store()).reserve
    failures = {"left": 3}

    async def flaky_reserve(self, *args, **kwargs):
        if failures["left"] > 0:
            failures["left"] -= 1
            raise StoreUnavailable("TimeoutError: Timeout reading from 127.0.0.1:6379")
        return await real_reserve(self, *args, **kwargs)

    monkeypatch.setattr(type(store()), "reserve", flaky_reserve)
    await wait_status(sandbox, run, "completed")
    await socket.expect(lambda html: "completed" in statuses(html, run.run_id), within=20)
    assert failures["left"] == 0


async def test_a_database_error_in_a_poll_is_backed_off_and_the_watch_goes_on(
    open_socket, users, make_run, sandbox, monkeypatch
):
    run = make_run("answer", speed=1, sandbox_queued_seconds=1)
    real = index.record_transition
    failures = {"left": 2}

    async def flaky(*args, **kwargs):
        if failures["left"] > 0:
            failures["left"] -= 1
            from django.db import OperationalError

            raise OperationalError("the database is restarting")
        return await real(*args, **kwargs)

    monkeypatch.setattr(index, "record_transition", flaky)
    socket = await open_socket(run_path(run), user=users.operator)
    notice = stale_banner(await socket.expect(stale_banner, within=10))
    assert "internal error: OperationalError" in notice and "the database is restarting" not in notice
    await wait_status(sandbox, run, "completed")
    await socket.expect(lambda html: "completed" in statuses(html, run.run_id), within=20)
    await socket.expect(stale_cleared, within=5)


async def test_a_rendering_error_is_backed_off_and_the_watch_goes_on(
    open_socket, users, make_run, sandbox, monkeypatch
):
    run = make_run("answer", speed=1, sandbox_queued_seconds=1)
    real = fragments.header
    failures = {"left": 1}

    def flaky(*args, **kwargs):
        if failures["left"] > 0:
            failures["left"] -= 1
            raise ValueError("a template broke")
        return real(*args, **kwargs)

    monkeypatch.setattr(fragments, "header", flaky)
    socket = await open_socket(run_path(run), user=users.viewer)
    await wait_status(sandbox, run, "completed")
    await socket.expect(lambda html: "completed" in statuses(html, run.run_id), within=20)
    assert failures["left"] == 0
