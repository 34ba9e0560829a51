"""Runs started with `stream: true` (runs_ui.live.relay): events relayed to sockets as they arrive, and
the watcher taking over when the stream breaks. Against the sandbox's real SSE."""

from __future__ import annotations

import asyncio
import itertools
import time
from contextlib import asynccontextmanager

import pytest

from runs_ui.connections import default_client
from runs_ui.live import relay as stream_relay
from runs_ui.live.watcher import watcher
from runs_ui.upstream.errors import BadResponse, Unavailable, UpstreamTimeout
from runs_ui.upstream.objects import MessageDelta, Run, StreamEvent
from tests.fixtures import eventually
from tests.live.support import message_text, sandbox_get, sandbox_post, statuses

pytestmark = pytest.mark.django_db(transaction=True)

FINAL_WORDS = "Let me know if you need more detail."


async def thread_for_answer(sandbox) -> tuple[str, str]:
    """An `answer` assistant and a thread with a question, ready for a run."""
    assistant = await sandbox_post(
        sandbox,
        "/assistants",
        {"model": "gpt-4o", "name": "Streamer", "metadata": {"sandbox_script": "answer"}},
    )
    thread = await sandbox_post(
        sandbox, "/threads", {"messages": [{"role": "user", "content": "What is streamed?"}]}
    )
    return assistant["id"], thread["id"]


def run_options() -> dict:
    return {"metadata": {"sandbox_speed": "2", "sandbox_queued_seconds": "0.5"}}


async def test_a_streamed_run_pushes_status_and_growing_message_text_as_the_events_arrive(
    open_socket, users, upstream, requests_log
):
    assistant_id, thread_id = await thread_for_answer(upstream)
    client = default_client()
    run, request_id = await stream_relay.start(
        "default", client, lambda: client.stream_create_run(thread_id, assistant_id, **run_options())
    )
    assert request_id and request_id.startswith("req_")
    assert isinstance(run, Run) and run.status == "queued"
    assert watcher.runs[("default", thread_id, run.id)].stream is not None
    socket = await open_socket(f"/ws/runs/default/{thread_id}/{run.id}/", user=users.viewer)
    completed = await socket.expect(lambda html: "completed" in statuses(html, run.id), within=15)
    done_at = socket.arrived[socket.messages.index(completed)]

    seen = [s for html in socket.messages for s in statuses(html, run.id)]
    assert seen.index("in_progress") < seen.index("completed")
    (message,) = (await sandbox_get(upstream, f"/threads/{thread_id}/messages?run_id={run.id}"))["data"]
    texts = [
        t
        for html in socket.messages
        if (t := message_text(html, message["id"])) not in (None, "(no content)")
    ]
    growing = [t for n, t in enumerate(texts) if n == 0 or t != texts[n - 1]]
    # The text arrived in pieces, each longer than the last, ending with the whole answer.
    assert len(growing) >= 4, growing
    assert all(len(a) < len(b) for a, b in itertools.pairwise(growing)), growing
    assert growing[-1].endswith(FINAL_WORDS)
    # While the stream was the source, the poller never asked the upstream for the run.
    assert [e for e in requests_log.run_gets(run.id) if e["t"] < done_at - 0.1] == []


async def test_when_the_stream_breaks_the_watcher_takes_over_and_the_socket_ends_with_the_final_state(
    open_socket, users, upstream, requests_log
):
    assistant_id, thread_id = await thread_for_answer(upstream)
    client = default_client()
    cut = {}

    @asynccontextmanager
    async def breaking_stream():
        """The real stream, dropped after the first piece of message text (as a lost connection is)."""
        async with client.stream_create_run(thread_id, assistant_id, **run_options()) as events:

            async def until_cut():
                async for event in events:
                    yield event
                    if isinstance(event.data, MessageDelta):
                        cut["at"] = time.time()
                        raise Unavailable("The connection to the upstream failed (RemoteProtocolError).")

            yield until_cut()

    run = (await stream_relay.start("default", client, breaking_stream)).run
    socket = await open_socket(f"/ws/runs/default/{thread_id}/{run.id}/", user=users.operator)
    await eventually(lambda: "at" in cut, timeout=10)
    await eventually(lambda: watcher.runs[("default", thread_id, run.id)].stream is None, timeout=2)

    assert await socket.expect(lambda html: "completed" in statuses(html, run.id), within=15)
    (message,) = (await sandbox_get(upstream, f"/threads/{thread_id}/messages?run_id={run.id}"))["data"]
    # The final status goes out first; the final text follows with the run's last steps and messages.
    await socket.expect(
        lambda html: (message_text(html, message["id"]) or "").endswith(FINAL_WORDS), within=5
    )
    texts = [t for html in socket.messages if (t := message_text(html, message["id"])) is not None]
    assert texts[-1].endswith(FINAL_WORDS)
    # The rest came from polling, which only started once the stream broke.
    polled = requests_log.run_gets(run.id)
    assert polled, "the watcher never took over"
    assert all(e["t"] >= cut["at"] for e in polled)
    await eventually(lambda: ("default", thread_id, run.id) not in watcher.runs, timeout=8)


def _stream_of(*events):
    """A stream context manager yielding these events (what an upstream the sandbox cannot imitate sends)."""

    @asynccontextmanager
    async def opened():
        async def iterate():
            for event in events:
                yield event

        yield iterate()

    return opened


async def test_a_stream_whose_run_has_no_valid_ids_is_refused_clearly_and_nothing_is_watched():
    client = default_client()
    bare = Run.from_json({"id": "", "thread_id": "thread_x", "status": "queued"})
    opened = _stream_of(StreamEvent("thread.run.created", bare))

    with pytest.raises(BadResponse, match="without a valid run and thread id"):
        await stream_relay.start("default", client, opened)
    assert not [key for key in watcher.runs if "" in key]


async def test_a_stream_that_never_reports_its_run_ends_in_a_timeout_error_not_a_crash(settings):
    settings.UPSTREAM_DEADLINE = 0.1  # the relay waits this (+5 s) for the run's first event
    client = default_client()
    never = asyncio.Event()

    @asynccontextmanager
    async def silent():
        async def nothing():
            await never.wait()
            return
            yield  # an async generator that ends without an event

        yield nothing()

    started = time.monotonic()
    with pytest.raises(UpstreamTimeout, match="may have started"):
        await stream_relay.start("default", client, silent)
    assert time.monotonic() - started < 7
    never.set()
