"""The polling fallback a page uses while its socket is down (/live/…): the same state over HTTP, and
still one poller behind it."""

from __future__ import annotations

import asyncio
import time

import pytest

from runs_ui import index
from runs_ui.live import bus
from runs_ui.live.store import store
from runs_ui.live.watcher import watcher
from runs_ui.upstream.objects import Run
from tests.fixtures import eventually
from tests.live.support import run_path, statuses, swapped, wait_status

pytestmark = pytest.mark.django_db(transaction=True)


def live_url(run) -> str:
    return f"/live/runs/default/{run.thread_id}/{run.run_id}/"


async def poll(client, url: str) -> str:
    response = await client.get(url, headers={"HX-Request": "true"})
    assert response.status_code == 200
    return response.content.decode()


async def test_the_polling_fallback_returns_the_state_a_reconnecting_socket_gets(
    open_socket, users, operator_client, viewer_client, make_run
):
    run = make_run("answer", speed=5, sandbox_queued_seconds=0.2)
    first = await open_socket(run_path(run), user=users.operator)
    await first.expect(lambda html: "completed" in statuses(html, run.run_id))
    await eventually(lambda: not watcher.runs)

    polled = await poll(operator_client, live_url(run))
    again = await open_socket(run_path(run), user=users.operator)
    await again.expect(lambda html: True, within=2)
    assert polled == again.messages[0]
    state = await store().state(bus.run_key("default", run.thread_id, run.run_id))
    assert polled == bus.html_for(state, "operator", "run")
    assert statuses(polled, run.run_id) == ["completed"]
    assert "Edit metadata" in polled
    # Viewers poll the viewer variant of the same state.
    viewer_polled = await poll(viewer_client, live_url(run))
    assert statuses(viewer_polled, run.run_id) == ["completed"]
    assert "Edit metadata" not in viewer_polled


async def test_polling_a_finished_runs_live_state_costs_no_upstream_requests(
    open_socket, users, viewer_client, make_run, requests_log
):
    run = make_run("answer", speed=5, sandbox_queued_seconds=0.2)
    socket = await open_socket(run_path(run), user=users.viewer)
    await socket.expect(lambda html: "completed" in statuses(html, run.run_id))
    await eventually(lambda: not watcher.runs)
    await socket.disconnect()
    since = time.time()
    for _ in range(4):
        assert "completed" in statuses(await poll(viewer_client, live_url(run)), run.run_id)
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.5)
    assert watcher.runs == {}
    assert requests_log.entries(run_id=run.run_id, since=since) == []


async def test_many_polling_pages_and_a_socket_share_one_poller(
    open_socket, users, viewer_client, operator_client, make_run, requests_log
):
    run = make_run("slow", speed=2, sandbox_queued_seconds=0.2)
    socket = await open_socket(run_path(run), user=users.operator)
    started = time.time()
    for _ in range(4):
        bodies = await asyncio.gather(
            *(poll(viewer_client if n % 2 else operator_client, live_url(run)) for n in range(5))
        )
        assert len({t for t in asyncio.all_tasks() if t.get_name() == "watch-run" and not t.done()}) == 1
        await asyncio.sleep(0.4)
    assert list(watcher.runs) == [("default", run.thread_id, run.run_id)]
    assert any(statuses(body, run.run_id) for body in bodies)
    await socket.disconnect()
    # The socket is gone, but the polling pages keep the run watched for a while.
    watch = watcher.runs[("default", run.thread_id, run.run_id)]
    assert watch.pinned and watch.alive()
    gets = requests_log.entries(run_id=run.run_id, method="GET", since=started)
    span = time.time() - started
    assert len(gets) <= 2 * (span + 0.1) + 2, (len(gets), span)  # burst of 2, 0.1 s of log jitter


async def test_a_polling_page_alone_starts_the_watcher_and_gets_its_first_look_at_once(
    viewer_client, make_run, sandbox
):
    run = make_run("answer", speed=1, sandbox_queued_seconds=0.5)
    # Nothing was known: the poll starts the watcher and waits for its first look, not for the next poll.
    assert statuses(await poll(viewer_client, live_url(run)), run.run_id) == ["queued"]
    assert ("default", run.thread_id, run.run_id) in watcher.runs
    await wait_status(sandbox, run, "in_progress", "completed")

    async def current():
        return statuses(await poll(viewer_client, live_url(run)), run.run_id)

    assert await eventually(current, timeout=10)


async def test_the_thread_pages_polling_fallback_returns_its_active_runs_rows(
    viewer_client, make_run, settings
):
    settings.WATCH_SLOW_SECONDS = settings.WATCH_THREAD_SECONDS = 0.3
    run = make_run("slow", speed=2, sandbox_queued_seconds=0.2)
    await index.record_runs("default", run.thread_id, [Run.from_json(run.raw)])
    url = f"/live/threads/default/{run.thread_id}/"

    async def row():
        body = await poll(viewer_client, url)
        return body if swapped(body, f"run-row-head-{run.run_id}") else None

    body = await eventually(row, timeout=10, interval=0.3)
    assert f'id="run-header-{run.run_id}"' not in body  # thread pages get rows, not run headers
    assert len([t for t in asyncio.all_tasks() if t.get_name() == "watch-thread" and not t.done()]) == 1


async def test_the_home_pages_polling_fallback_reads_the_index_without_asking_the_upstream(
    viewer_client, make_run, requests_log
):
    run = make_run("answer", speed=1, sandbox_queued_seconds=5)
    await index.record_runs("default", run.thread_id, [Run.from_json(run.raw)])
    since = time.time()
    body = await poll(viewer_client, "/live/index/")
    cell = f'<td id="thread-status-default-{run.thread_id}" hx-swap-oob="true">'
    assert cell in body and 'title="queued"' in body.split(cell)[1].split("</td>")[0]
    assert requests_log.entries(since=since) == []
    assert watcher.runs == {}
