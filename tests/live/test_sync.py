"""Sockets that never fall behind: versions drop older pushes, gaps are repaired, a lost final push is
repaired, pages resync on reconnect, sessions are checked, and one viewer cannot end another's view."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group

from runs_ui.live import bus, fragments
from runs_ui.live.store import Version, store
from runs_ui.live.watcher import watcher
from tests.fixtures import eventually
from tests.live.support import (
    run_path,
    sandbox_post,
    stale_banner,
    status_sequence,
    statuses,
    swapped,
    versions,
    wait_status,
)

pytestmark = pytest.mark.django_db(transaction=True)


def drop_announcements(monkeypatch, should_drop):
    """The channel layer loses some pushes (as channels_redis does past a socket's capacity): the push is
    stored, but its announcement never reaches any socket."""
    announce = bus.announce
    dropped = []

    async def lossy(groups, key, version):
        (push,) = await store().pushes(key, [version])
        if should_drop(push or {}):
            dropped.append(version)
            return
        await announce(groups, key, version)

    monkeypatch.setattr(bus, "announce", lossy)
    return dropped


async def test_a_dropped_push_is_repaired_from_the_version_gap(
    any_layer, open_socket, users, make_run, sandbox, monkeypatch
):
    run = make_run("answer", speed=1, sandbox_queued_seconds=1)
    once = {"done": False}

    def drop_in_progress(push):
        if not once["done"] and "in_progress" in statuses(push.get("viewer", ""), run.run_id):
            once["done"] = True
            return True
        return False

    dropped = drop_announcements(monkeypatch, drop_in_progress)
    socket = await open_socket(run_path(run), user=users.viewer)
    await wait_status(sandbox, run, "completed")
    await socket.expect(lambda html: "completed" in statuses(html, run.run_id), within=15)
    assert dropped, "the in_progress push was never published"
    # The next push showed the gap: the missed one was replayed, in order.
    assert status_sequence(socket.messages, run.run_id) == ["queued", "in_progress", "completed"]


async def test_a_lost_final_push_is_repaired(any_layer, open_socket, users, make_run, sandbox, monkeypatch):
    run = make_run("answer", speed=2, sandbox_queued_seconds=0.5)
    once = {"done": False}

    def drop_completed(push):
        if not once["done"] and "completed" in statuses(push.get("viewer", ""), run.run_id):
            once["done"] = True
            return True
        return False

    drop_announcements(monkeypatch, drop_completed)
    socket = await open_socket(run_path(run), user=users.viewer)
    await wait_status(sandbox, run, "completed")
    # The run ended and its final push was lost: the page must not stay "in progress" forever.
    await socket.expect(lambda html: "completed" in statuses(html, run.run_id), within=10)
    assert once["done"]


async def test_a_push_older_than_what_a_socket_has_is_dropped(open_socket, users, respx_upstream):
    """Two publishers (a stalled one and its successor) can both reach the channel layer; the socket keeps
    the newer state whatever order their pushes arrive in."""
    key = bus.run_key("default", "thread_t1", "run_r1")
    socket = await open_socket("/ws/runs/default/thread_t1/run_r1/", user=users.viewer)
    owner = "test-publisher/relay-1"
    token = await store().acquire(key, owner, 30, steal=True)
    older = await store().reserve(key, owner, token, 30)
    newer = await store().reserve(key, owner, token, 30)
    for version, text in ((older, "older"), (newer, "newer")):
        push = {"common": fragments.stale_notice(text, fragments.stamp(key, version))}
        assert await store().commit(key, owner, token, 30, version, push, None)
    start = len(socket.messages)
    await bus.announce([bus.group_of(key)], key, newer)
    await bus.announce([bus.group_of(key)], key, older)
    await socket.expect(lambda html: stale_banner(html) == "newer", start=start)
    await asyncio.sleep(0.3)
    assert [stale_banner(m) for m in socket.messages[start:] if stale_banner(m)] == ["newer"]


async def test_every_pushed_element_carries_the_version_of_its_push(open_socket, users, make_run, sandbox):
    run = make_run("answer", speed=2, sandbox_queued_seconds=0.5)
    socket = await open_socket(run_path(run), user=users.viewer)
    await wait_status(sandbox, run, "completed")
    await socket.expect(lambda html: "completed" in statuses(html, run.run_id))
    key = bus.run_key("default", run.thread_id, run.run_id)
    seen = []
    for html in socket.messages:
        stamps = set(versions(html))
        assert len(stamps) == 1, stamps  # one push, one version, on every element
        (stamp,) = stamps
        object_key, _, version = stamp.partition("@")
        assert object_key == key
        seen.append(Version.parse(version))
    assert seen == sorted(seen) and len(set(seen)) == len(seen)  # only ever newer


async def test_a_thread_page_whose_socket_was_away_shows_the_run_created_meanwhile(
    open_socket, users, make_run, sandbox, settings
):
    settings.WATCH_THREAD_SECONDS = 0.3
    first = make_run("answer", speed=50)
    await wait_status(sandbox, first, "completed")
    path = f"/ws/threads/default/{first.thread_id}/"
    socket = await open_socket(path, user=users.viewer)
    await eventually(lambda: (w := watcher.threads.get(("default", first.thread_id))) and w.primed)
    await socket.disconnect()
    await eventually(lambda: ("default", first.thread_id) not in watcher.threads)
    # While no page watches the thread, a run starts on it.
    second = await sandbox_post(
        sandbox, f"/threads/{first.thread_id}/runs", {"assistant_id": first.assistant_id}
    )
    again = await open_socket(path, user=users.viewer)
    row = await again.expect(lambda html: f'id="run-{second["id"]}"' in html, within=10)
    assert '<template data-merge="timeline" data-insert="1">' in row


async def test_a_socket_naming_a_run_under_the_wrong_thread_does_not_end_anyone_elses_view(
    open_socket, users, make_run, sandbox
):
    run = make_run("slow", speed=1, sandbox_queued_seconds=1)
    other = await sandbox_post(sandbox, "/threads", {})
    right = await open_socket(run_path(run), user=users.viewer)
    await right.expect(lambda html: statuses(html, run.run_id))
    wrong = await open_socket(f"/ws/runs/default/{other['id']}/{run.run_id}/", user=users.viewer)
    assert await wrong.closed(within=10) == 4404
    # The right pair's socket is still open and still live.
    await wait_status(sandbox, run, "in_progress")
    await right.expect(lambda html: "in_progress" in statuses(html, run.run_id), within=10)
    assert right.close_code is None


async def test_a_socket_for_a_run_the_index_knows_under_another_thread_is_refused_at_once(
    open_socket, users, make_run, operator_client, sandbox
):
    run = make_run("answer", speed=50)
    await operator_client.get(f"/threads/{run.thread_id}/runs/{run.run_id}/")  # indexed
    other = await sandbox_post(sandbox, "/threads", {})
    wrong = await open_socket(f"/ws/runs/default/{other['id']}/{run.run_id}/", user=users.viewer)
    assert await wrong.closed(within=2) == 4404
    assert not [key for key in watcher.runs if key[1] == other["id"]]


# --- the consumer's own lifetime -----------------------------------------------------------------


async def test_a_crashed_consumer_leaves_no_interest_behind(open_socket, users, make_run, monkeypatch):
    from runs_ui.live.consumers import LiveConsumer

    run = make_run("slow", speed=1)
    socket = await open_socket(run_path(run), user=users.viewer)
    await socket.expect(lambda html: statuses(html, run.run_id))
    watch = watcher.runs[("default", run.thread_id, run.run_id)]

    async def broken(self, event):
        raise RuntimeError("a bug in the consumer")

    monkeypatch.setattr(LiveConsumer, "live_push", broken)
    monkeypatch.setattr(LiveConsumer, "dispatch", lambda self, message: broken(self, message))
    # The next push (the slow run changes every second or so) crashes it.
    await eventually(lambda: socket.communicator.future.done(), timeout=10)
    # The run is no longer polled for a socket that is gone.
    await eventually(lambda: watch.task.done(), timeout=5)
    assert ("default", run.thread_id, run.run_id) not in watcher.runs


async def test_a_socket_closes_soon_after_its_user_logs_out(open_socket, users, make_run, settings):
    settings.LIVE_PROBE_SECONDS = settings.LIVE_SESSION_CHECK_SECONDS = 0.1
    from django.contrib.sessions.models import Session

    run = make_run("slow", speed=1)
    socket = await open_socket(run_path(run), user=users.viewer)
    await socket.expect(lambda html: statuses(html, run.run_id))
    await Session.objects.all().adelete()  # logging out deletes the session
    assert await socket.closed(within=5) == 4401


async def test_a_socket_closes_soon_after_its_user_is_deactivated(open_socket, users, make_run, settings):
    settings.LIVE_PROBE_SECONDS = settings.LIVE_SESSION_CHECK_SECONDS = 0.1
    run = make_run("slow", speed=1)
    socket = await open_socket(run_path(run), user=users.operator)
    await socket.expect(lambda html: statuses(html, run.run_id))
    users.operator.is_active = False
    await users.operator.asave(update_fields=["is_active"])
    assert await socket.closed(within=5) == 4401


async def test_an_operator_who_loses_the_role_gets_the_viewers_page_on_the_socket(
    open_socket, users, make_run, settings
):
    settings.LIVE_PROBE_SECONDS = settings.LIVE_SESSION_CHECK_SECONDS = 0.1
    run = make_run("slow", speed=1)
    socket = await open_socket(run_path(run), user=users.operator)
    header = await socket.expect(lambda html: swapped(html, f"run-header-{run.run_id}"))
    assert "Cancel run…" in header
    operator = await sync_to_async(Group.objects.get)(name="operator")
    await sync_to_async(users.operator.groups.remove)(operator)
    start = len(socket.messages)
    again = await socket.expect(lambda html: swapped(html, f"run-header-{run.run_id}"), start=start, within=5)
    assert "Cancel run…" not in again and "/cancel/" not in again
    assert socket.close_code is None


async def test_a_redis_timeout_in_a_sockets_receive_does_not_kill_it(
    redis_layer, open_socket, users, make_run, sandbox, monkeypatch
):
    """Regression: a consumer died on `redis.exceptions.TimeoutError: Timeout reading from …`; the page
    then sat on a dead socket. The socket must live through it, say so, and keep its updates coming."""
    import redis.exceptions
    from channels_redis.core import RedisChannelLayer

    run = make_run("answer", speed=1, sandbox_queued_seconds=2)
    socket = await open_socket(run_path(run), user=users.viewer)
    await socket.expect(lambda html: statuses(html, run.run_id))
    receive = RedisChannelLayer.receive
    failures = {"left": 2}

    async def flaky(self, channel):
        if failures["left"] > 0:
            failures["left"] -= 1
            raise redis.exceptions.TimeoutError("Timeout reading from 127.0.0.1:6379")
        return await receive(self, channel)

    monkeypatch.setattr(RedisChannelLayer, "receive", flaky)
    await wait_status(sandbox, run, "completed")
    await socket.expect(lambda html: "completed" in statuses(html, run.run_id), within=15)
    assert failures["left"] == 0
    assert socket.close_code is None
