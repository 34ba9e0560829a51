"""The live socket on the full ASGI app (origin check, session auth, routing), against the sandbox."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from runs_ui import index
from runs_ui.live import bus, fragments
from runs_ui.live.budget import Priority
from runs_ui.live.store import store
from runs_ui.live.watcher import watcher
from runs_ui.upstream.objects import Run, Step
from tests.fixtures import eventually
from tests.live.support import (
    message_text,
    run_path,
    sandbox_get,
    sandbox_post,
    stale_cleared,
    status_sequence,
    statuses,
    step_ids,
    swapped,
    wait_status,
)

pytestmark = pytest.mark.django_db(transaction=True)


def watch_tasks() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "watch-run" and not t.done()]


# --- who may connect ---------------------------------------------------------------------------------


async def test_an_anonymous_socket_is_refused_with_4401(open_socket, make_run):
    run = make_run("answer", speed=1)
    socket = await open_socket(run_path(run), user=None)
    assert await socket.closed() == 4401
    assert socket.messages == []
    assert watcher.runs == {}


async def test_a_socket_opened_by_another_sites_page_is_refused_with_4403(open_socket, users, make_run):
    run = make_run("answer", speed=1)
    socket = await open_socket(run_path(run), user=users.operator, origin="https://evil.example")
    assert await socket.closed() == 4403
    assert socket.messages == []
    assert watcher.runs == {}


async def test_a_socket_without_an_origin_header_is_refused_with_4403(open_socket, users, make_run):
    run = make_run("answer", speed=1)
    socket = await open_socket(run_path(run), user=users.operator, origin=None)
    assert await socket.closed() == 4403


async def test_a_socket_from_an_allowed_origin_with_a_session_is_accepted(open_socket, users, make_run):
    run = make_run("answer", speed=1)
    socket = await open_socket(run_path(run), user=users.viewer)
    assert socket.accepted
    await socket.expect(lambda html: statuses(html, run.run_id))
    assert socket.close_code is None


@pytest.mark.parametrize(
    "path",
    [
        "/ws/runs/default/not-a-thread/run_abc/",
        "/ws/runs/default/thread_abc/not-a-run/",
        "/ws/runs/default/thread_abc/run_a%3Cscript%3E/",
        "/ws/runs/no-such-connection/thread_abc/run_abc/",
        "/ws/threads/default/not-a-thread/",
        "/ws/threads/no-such-connection/thread_abc/",
    ],
)
async def test_a_socket_for_an_invalid_id_or_unknown_connection_is_refused_with_4404(
    open_socket, users, upstream, path
):
    socket = await open_socket(path, user=users.operator)
    assert await socket.closed() == 4404
    assert watcher.runs == {} and watcher.threads == {}


async def test_a_socket_for_a_run_the_upstream_does_not_know_is_refused_with_4404(
    open_socket, users, make_run
):
    run = make_run("answer", speed=1)
    socket = await open_socket(f"/ws/runs/default/{run.thread_id}/run_doesnotexist/", user=users.operator)
    assert await socket.closed(within=1) == 4404
    assert watcher.runs == {}  # nothing polls it


# --- what sockets get --------------------------------------------------------------------------------


async def test_a_viewer_and_an_operator_both_get_the_run_header_and_only_the_operators_has_actions(
    open_socket, users, make_run
):
    run = make_run("answer", speed=1, sandbox_queued_seconds=1)
    operator = await open_socket(run_path(run), user=users.operator)
    viewer = await open_socket(run_path(run), user=users.viewer)
    header = f'id="run-header-{run.run_id}"'
    operator_html = await operator.expect(lambda html: header in html)
    viewer_html = await viewer.expect(lambda html: header in html)
    assert "Cancel run…" in operator_html and "Edit metadata" in operator_html
    assert f"/runs/{run.run_id}/cancel/" in operator_html
    assert "Cancel run…" not in viewer_html and "Edit metadata" not in viewer_html
    assert "/cancel/" not in viewer_html
    # Both see the same status, and both can export.
    assert statuses(operator_html, run.run_id) == statuses(viewer_html, run.run_id) != []
    assert "Export JSON" in viewer_html


async def test_a_status_change_in_the_sandbox_arrives_as_a_run_header_fragment(
    any_layer, open_socket, users, make_run, sandbox
):
    run = make_run("answer", speed=2, sandbox_queued_seconds=2)
    socket = await open_socket(run_path(run), user=users.operator)
    await wait_status(sandbox, run, "completed")
    completed = await socket.expect(lambda html: "completed" in statuses(html, run.run_id))
    # The header is swapped out of band by id, and carries the new badge under run-status-<id>.
    assert swapped(completed, f"run-header-{run.run_id}")
    assert re.search(
        rf'<span id="run-status-{run.run_id}"><span class="badge [^"]*" title="completed">completed</span>',
        completed,
    )
    assert status_sequence(socket.messages, run.run_id) == ["queued", "in_progress", "completed"]


async def test_new_steps_and_message_text_arrive_as_merge_templates(open_socket, users, make_run, sandbox):
    run = make_run("answer", speed=2, sandbox_queued_seconds=0.5)
    socket = await open_socket(run_path(run), user=users.viewer)
    await wait_status(sandbox, run, "completed")
    steps = await sandbox_get(sandbox, f"/threads/{run.thread_id}/runs/{run.run_id}/steps")
    messages = await sandbox_get(sandbox, f"/threads/{run.thread_id}/messages?run_id={run.run_id}")
    (message,) = messages["data"]
    final_text = await socket.expect(
        lambda html: (message_text(html, message["id"]) or "").endswith("if you need more detail.")
    )
    # The answer's text arrives in a body the page merges by message id…
    assert '<div id="live-merge" hx-swap-oob="true" hidden>' in final_text
    assert "The sandbox answers without a model" in message_text(final_text, message["id"])
    # …and every step of the run in a steps template for this run's list.
    steps_template = f'<template data-merge="steps" data-run="{run.run_id}">'
    merged = [html for html in socket.messages if steps_template in html]
    assert set().union(*(step_ids(html) for html in merged)) == {s["id"] for s in steps["data"]}


def test_a_message_step_pushed_before_its_message_is_fetched_leaves_room_for_the_messages_body():
    """Steps and messages are fetched in separate polls; the body pushed later must find its place."""
    step = Step.from_json(
        {
            "id": "step_1",
            "run_id": "run_1",
            "thread_id": "thread_1",
            "type": "message_creation",
            "status": "completed",
            "step_details": {"type": "message_creation", "message_creation": {"message_id": "msg_1"}},
        }
    )
    run = Run.from_json({"id": "run_1", "thread_id": "thread_1", "status": "in_progress"})
    html = fragments.steps("default", run, [step], {}, live_v="")
    placeholder = re.search(r'<div class="message-body" data-message-body="msg_1">(.*?)</div>', html, re.S)
    assert placeholder and "Created message" in placeholder.group(1)


async def test_the_thread_socket_gets_new_runs_started_on_the_thread(
    open_socket, users, make_run, sandbox, settings
):
    settings.WATCH_SLOW_SECONDS = settings.WATCH_THREAD_SECONDS = 0.3
    first = make_run("answer", speed=50)
    await wait_status(sandbox, first, "completed")
    socket = await open_socket(f"/ws/threads/default/{first.thread_id}/", user=users.viewer)
    await eventually(lambda: (w := watcher.threads.get(("default", first.thread_id))) and w.primed)
    second = await sandbox_post(
        sandbox,
        f"/threads/{first.thread_id}/runs",
        {"assistant_id": first.assistant_id, "metadata": {"sandbox_speed": "4"}},
    )
    row = await socket.expect(lambda html: f'id="run-{second["id"]}"' in html)
    assert '<template data-merge="timeline" data-insert="1">' in row
    assert f'id="run-{first.run_id}"' not in row  # only what is new
    # The new run is then followed on the thread page too: its row head changes status.
    head = f"run-row-head-{second['id']}"
    done = await socket.expect(
        lambda html: swapped(html, head) and "completed" in statuses(html, second["id"])
    )
    assert done


async def test_the_home_socket_gets_status_cells_of_active_runs(
    open_socket, users, make_run, sandbox, settings
):
    settings.WATCH_SLOW_SECONDS = settings.WATCH_THREAD_SECONDS = 0.3
    run = make_run("answer", speed=3, sandbox_queued_seconds=1)
    await index.record_runs("default", run.thread_id, [Run.from_json(run.raw)])
    socket = await open_socket("/ws/index/", user=users.viewer)
    # The home list follows its active runs at the slow pace.
    assert list(watcher.runs[("default", run.thread_id, run.run_id)].holders.values()) == [
        Priority.BACKGROUND
    ]
    cell_id = f"thread-status-default-{run.thread_id}"
    cell = await socket.expect(lambda html: swapped(html, cell_id) and 'title="completed"' in html, within=15)
    assert cell.count("<td") == 1


# --- the watcher's lifetime ------------------------------------------------------------------------


async def test_the_watcher_task_is_gone_after_the_last_socket_disconnects(open_socket, users, make_run):
    run = make_run("slow", speed=1)
    first = await open_socket(run_path(run), user=users.viewer)
    second = await open_socket(run_path(run), user=users.operator)
    await first.expect(lambda html: statuses(html, run.run_id))
    watch = watcher.runs[("default", run.thread_id, run.run_id)]
    task = watch.task
    assert len(watch_tasks()) == 1
    await first.disconnect()
    await asyncio.sleep(0.2)
    assert not task.done(), "a socket is still watching"
    await second.disconnect()
    await eventually(task.done, timeout=3)
    assert watcher.runs == {}
    assert watch_tasks() == []


async def test_a_thread_socket_leaves_no_watcher_behind_nor_the_run_watches_it_started(
    open_socket, users, make_run, settings
):
    settings.WATCH_SLOW_SECONDS = settings.WATCH_THREAD_SECONDS = 0.3
    run = make_run("slow", speed=1)
    socket = await open_socket(f"/ws/threads/default/{run.thread_id}/", user=users.viewer)
    # The thread's watch found the active run and follows it too.
    await eventually(lambda: ("default", run.thread_id, run.run_id) in watcher.runs)
    thread_task = watcher.threads[("default", run.thread_id)].task
    run_task = watcher.runs[("default", run.thread_id, run.run_id)].task
    await socket.disconnect()
    await eventually(lambda: thread_task.done() and run_task.done(), timeout=3)
    assert watcher.threads == {} and watcher.runs == {}


async def test_a_socket_connecting_after_changes_first_receives_the_current_state(
    open_socket, users, make_run, sandbox
):
    run = make_run("slow", speed=2, sandbox_queued_seconds=0.5)
    first = await open_socket(run_path(run), user=users.viewer)
    await first.expect(lambda html: "in_progress" in statuses(html, run.run_id))
    await first.expect(lambda html: step_ids(html))
    seen_before = set().union(*(step_ids(html) for html in first.messages))
    late = await open_socket(run_path(run), user=users.viewer)
    await late.expect(lambda html: True, within=2)
    resync = late.messages[0]
    # The first thing it gets is the whole current picture: header, every step so far, no stale banner.
    assert swapped(resync, f"run-header-{run.run_id}")
    assert statuses(resync, run.run_id) == ["in_progress"]
    assert step_ids(resync) >= seen_before
    assert stale_cleared(resync)


async def test_a_socket_reconnecting_after_the_run_ended_gets_the_final_state_at_once(
    open_socket, users, make_run, sandbox
):
    run = make_run("answer", speed=2, sandbox_queued_seconds=0.5)
    first = await open_socket(run_path(run), user=users.operator)
    await first.expect(lambda html: "completed" in statuses(html, run.run_id))
    await eventually(lambda: not watcher.runs)  # the watcher fetched the end and stopped
    await first.disconnect()
    again = await open_socket(run_path(run), user=users.operator)
    await again.expect(lambda html: True, within=2)
    assert statuses(again.messages[0], run.run_id) == ["completed"]
    assert "Cancel run…" not in again.messages[0]  # not offered for a finished run


async def test_a_status_is_in_the_resync_state_before_any_socket_is_pushed_it(
    open_socket, users, make_run, sandbox, monkeypatch
):
    run = make_run("answer", speed=2, sandbox_queued_seconds=1)
    key = bus.run_key("default", run.thread_id, run.run_id)
    behind = []
    announce = bus.announce

    async def checking_announce(groups, announced_key, version):
        # A push goes out: the state a reconnecting socket gets must already be at least as new.
        if announced_key == key:
            (push,) = await store().pushes(key, [version])
            state = await store().state(key)
            pushed = statuses(push.get("viewer", ""), run.run_id)
            saved = statuses(bus.html_for(state, "viewer", "run"), run.run_id) if state else []
            if pushed and saved != pushed:
                behind.append((pushed, saved))
        await announce(groups, announced_key, version)

    monkeypatch.setattr(bus, "announce", checking_announce)
    socket = await open_socket(run_path(run), user=users.viewer)
    await wait_status(sandbox, run, "completed")
    await socket.expect(lambda html: "completed" in statuses(html, run.run_id))
    assert behind == []


async def test_a_terminal_run_on_screen_costs_no_upstream_requests(
    open_socket, users, make_run, sandbox, requests_log
):
    run = make_run("answer", speed=5, sandbox_queued_seconds=0.2)
    first = await open_socket(run_path(run), user=users.viewer)
    await first.expect(lambda html: "completed" in statuses(html, run.run_id))
    await eventually(lambda: not watcher.runs)
    await first.disconnect()
    before = len(requests_log.entries(run_id=run.run_id))
    sockets = [await open_socket(run_path(run), user=users.viewer) for _ in range(3)]
    for socket in sockets:
        await socket.expect(lambda html: "completed" in statuses(html, run.run_id), within=2)
    await asyncio.sleep(1.0)
    assert watcher.runs == {}
    assert len(requests_log.entries(run_id=run.run_id)) == before


async def test_a_finished_run_never_seen_before_is_fetched_once_and_then_left_alone(
    open_socket, users, make_run, sandbox, requests_log
):
    run = make_run("answer", speed=50)
    await wait_status(sandbox, run, "completed")
    since = time.time()
    socket = await open_socket(run_path(run), user=users.viewer)
    await socket.expect(lambda html: "completed" in statuses(html, run.run_id))
    await eventually(lambda: not watcher.runs)
    await asyncio.sleep(1.5)
    # The run, its steps and its messages: once each, then nothing.
    fetched = [e["path"] for e in requests_log.entries(since=since) if run.thread_id in e["path"]]
    base = f"/v1/threads/{run.thread_id}"
    assert sorted(fetched) == sorted(
        [f"{base}/runs/{run.run_id}", f"{base}/runs/{run.run_id}/steps", f"{base}/messages"]
    ), fetched
