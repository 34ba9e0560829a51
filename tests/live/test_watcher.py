"""The watcher's pace: adaptive interval, upstream hints, backoff and staleness, per-run and global caps."""

from __future__ import annotations

import asyncio
import itertools
import time

import httpx
import pytest

from runs_ui.upstream.objects import Run
from runs_ui.watcher import QUIET_AFTER, RUN_GETS_PER_SECOND, RunWatch, TokenBucket, watcher
from tests.fixtures import eventually
from tests.live.support import run_json, run_path

pytestmark = pytest.mark.django_db(transaction=True)

STALE_CLEARED = '<div id="live-stale" hx-swap-oob="true"></div>'


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
    assert len(watcher.runs[("default", run.run_id)].holders) == n + 1


# --- the interval ------------------------------------------------------------------------------------


def _watch(run: Run | None = None, **holders: bool) -> RunWatch:
    watch = RunWatch(watcher, "default", "thread_t1", "run_r1")
    watch.run = run
    watch.holders.update(holders)
    return watch


def test_a_watched_active_run_is_polled_at_the_fast_pace(settings):
    settings.WATCH_FAST_SECONDS, settings.WATCH_SLOW_SECONDS = 0.5, 5.0
    assert _watch(Run.from_json(run_json(status="in_progress")), page=True).interval() == 0.5


def test_a_run_only_the_home_list_follows_is_polled_at_the_slow_pace(settings):
    settings.WATCH_FAST_SECONDS, settings.WATCH_SLOW_SECONDS = 0.5, 5.0
    assert _watch(Run.from_json(run_json(status="in_progress")), home=False).interval() == 5.0


def test_a_run_waiting_for_a_person_is_polled_slowly_but_right_after_it_expires(settings):
    settings.WATCH_FAST_SECONDS, settings.WATCH_SLOW_SECONDS = 0.5, 5.0
    far = Run.from_json(run_json(status="requires_action", expires_at=int(time.time()) + 600))
    soon = Run.from_json(run_json(status="requires_action", expires_at=int(time.time()) + 2))
    assert _watch(far, page=True).interval() == 5.0
    assert 1.0 <= _watch(soon, page=True).interval() <= 3.0


def test_a_run_that_stopped_changing_is_polled_more_and_more_slowly(settings):
    settings.WATCH_FAST_SECONDS, settings.WATCH_SLOW_SECONDS = 0.5, 5.0
    watch = _watch(Run.from_json(run_json(status="in_progress")), page=True)
    paces = []
    for quiet in (0, QUIET_AFTER + 1, QUIET_AFTER * 3):
        watch.last_change = time.monotonic() - quiet
        paces.append(watch.interval())
    assert paces[0] == 0.5 < paces[1] <= paces[2] <= 5.0


def test_the_upstreams_poll_after_hint_is_a_floor_on_the_interval(settings):
    settings.WATCH_FAST_SECONDS = 0.5
    watch = _watch(Run.from_json(run_json(status="in_progress")), page=True)
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
    notice = await socket.expect(lambda html: 'class="banner warning"' in html and "live-stale" in html)
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
    notice = await socket.expect(lambda html: 'id="live-stale" class="banner warning"' in html)
    assert "Live updates for run_r1 are delayed (upstream unavailable)" in notice
    assert "Bad Gateway" not in notice and "<script>" not in notice
    stale_at = socket.messages.index(notice)
    await socket.expect(lambda html: STALE_CLEARED in html, within=12, start=stale_at + 1)
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
    notice = await socket.expect(lambda html: 'id="live-stale" class="banner warning"' in html)
    assert "could not connect to the upstream" in notice
    assert watcher.runs[("default", "run_r1")].errors == 1


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


async def test_the_per_connection_cap_holds_across_many_runs(make_run, requests_log, settings):
    settings.WATCH_FAST_SECONDS = 0.05
    settings.UPSTREAM_MAX_RPS = 3.0
    runs = [make_run("slow", speed=10, sandbox_queued_seconds=0.1) for _ in range(6)]
    since = time.time()
    for run in runs:
        watcher.watch_run("default", run.thread_id, run.run_id, "page")
    await asyncio.sleep(2.0)
    until = time.time()
    gets = [e for e in requests_log.entries(since=since, until=until) if e["method"] == "GET"]
    # Six runs could ask 2 GET/s each (12/s); the connection's cap is 3/s with a burst of 3.
    assert len(gets) <= 3.0 * (until - since) + 3, len(gets)
    assert len(gets) >= 5
    assert len({e["path"].split("/runs/")[1].split("/")[0] for e in gets if "/runs/" in e["path"]}) >= 2


async def test_a_token_bucket_allows_its_rate_on_average():
    bucket = TokenBucket(rate=20, burst=2)
    started = time.monotonic()
    for _ in range(12):
        await bucket.take()
    # Two at once (the burst), then ten at 20/s.
    assert 0.45 <= time.monotonic() - started <= 1.0
