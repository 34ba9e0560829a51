"""The URL's ids are the truth: an answer whose ids contradict the path it was asked for is an upstream
error (BadResponse), so no page, write, link or push ever uses another thread's or run's id."""

from __future__ import annotations

import httpx
import pytest

from runs_ui.upstream.errors import BadResponse

from .conftest import message_json, run_json, sse_response, step_json, thread_json

RUN = "/threads/thread_1/runs/run_1"
ELSEWHERE_RUN = run_json("run_other", thread_id="thread_1")
ELSEWHERE_THREAD = run_json("run_1", thread_id="thread_other")


def page_json(items: list) -> dict:
    return {"object": "list", "data": items, "first_id": None, "last_id": None, "has_more": False}


CALLS = {
    "get run, another run": ("GET", RUN, ELSEWHERE_RUN, lambda c: c.get_run("thread_1", "run_1")),
    "get run, another thread": ("GET", RUN, ELSEWHERE_THREAD, lambda c: c.get_run("thread_1", "run_1")),
    "cancel": ("POST", RUN + "/cancel", ELSEWHERE_RUN, lambda c: c.cancel_run("thread_1", "run_1")),
    "modify": ("POST", RUN, ELSEWHERE_THREAD, lambda c: c.modify_run("thread_1", "run_1", {})),
    "submit tool outputs": (
        "POST",
        RUN + "/submit_tool_outputs",
        ELSEWHERE_RUN,
        lambda c: c.submit_tool_outputs("thread_1", "run_1", []),
    ),
    "create run": (
        "POST",
        "/threads/thread_1/runs",
        ELSEWHERE_THREAD,
        lambda c: c.create_run("thread_1", "asst_1"),
    ),
    "list runs": (
        "GET",
        "/threads/thread_1/runs",
        page_json([run_json("run_2"), ELSEWHERE_THREAD]),
        lambda c: c.list_runs("thread_1"),
    ),
    "get step": (
        "GET",
        RUN + "/steps/step_1",
        step_json("step_1", run_id="run_other"),
        lambda c: c.get_step("thread_1", "run_1", "step_1"),
    ),
    "list steps": (
        "GET",
        RUN + "/steps",
        page_json([step_json("step_1", thread_id="thread_other")]),
        lambda c: c.list_steps("thread_1", "run_1"),
    ),
    "get thread": (
        "GET",
        "/threads/thread_1",
        thread_json("thread_other"),
        lambda c: c.get_thread("thread_1"),
    ),
    "get message": (
        "GET",
        "/threads/thread_1/messages/msg_1",
        message_json("msg_other"),
        lambda c: c.get_message("thread_1", "msg_1"),
    ),
    "list messages": (
        "GET",
        "/threads/thread_1/messages",
        page_json([message_json("msg_1", thread_id="thread_other")]),
        lambda c: c.list_messages("thread_1"),
    ),
    "get assistant": ("GET", "/assistants/asst_1", {"id": "asst_other"}, lambda c: c.get_assistant("asst_1")),
}


@pytest.mark.parametrize(("method", "path", "answer", "call"), CALLS.values(), ids=CALLS.keys())
async def test_an_answer_naming_another_place_than_its_path_is_refused(
    upstream, client, method, path, answer, call
):
    getattr(upstream, method.lower())(path).respond(200, json=answer)

    with pytest.raises(BadResponse) as caught:
        await call(client)

    assert "was asked for" in caught.value.message
    assert "_other" in caught.value.message


async def test_the_message_quotes_a_hostile_id_clipped(upstream, client):
    upstream.get(RUN).respond(200, json=run_json("run_" + "x" * 5000))

    with pytest.raises(BadResponse) as caught:
        await client.get_run("thread_1", "run_1")

    assert len(caught.value.message) < 300


async def collect(stream) -> list:
    async with stream as events:
        return [event async for event in events]


async def test_a_stream_about_another_run_than_its_path_is_refused(upstream, client):
    upstream.post(RUN + "/submit_tool_outputs").mock(
        return_value=sse_response(
            ("thread.run.queued", run_json(status="queued")),
            ("thread.run.in_progress", run_json("run_other", status="in_progress")),
        )
    )

    with pytest.raises(BadResponse):
        await collect(client.stream_submit_tool_outputs("thread_1", "run_1", []))


async def test_a_stream_event_of_a_step_of_another_thread_is_refused(upstream, client):
    upstream.post("/threads/thread_1/runs").mock(
        return_value=sse_response(
            ("thread.run.created", run_json()),
            ("thread.run.step.created", step_json(thread_id="thread_other")),
        )
    )

    with pytest.raises(BadResponse):
        await collect(client.stream_create_run("thread_1", "asst_1"))


async def test_a_new_thread_and_run_stream_is_about_the_thread_it_first_reports(upstream, client):
    upstream.post("/threads/runs").mock(
        return_value=sse_response(
            ("thread.created", thread_json("thread_9")),
            ("thread.run.created", run_json(thread_id="thread_9")),
            ("thread.run.in_progress", run_json(thread_id="thread_other", status="in_progress")),
        )
    )

    with pytest.raises(BadResponse):
        await collect(client.stream_create_thread_and_run("asst_1"))


async def test_stream_events_without_ids_are_placed_in_the_run_of_the_path(upstream, client):
    bare = {k: v for k, v in run_json(status="in_progress").items() if k not in ("id", "thread_id")}
    upstream.post(RUN + "/submit_tool_outputs").mock(
        return_value=sse_response(("thread.run.in_progress", bare), ("done", "[DONE]"))
    )

    (event,) = await collect(client.stream_submit_tool_outputs("thread_1", "run_1", []))

    assert (event.data.id, event.data.thread_id) == ("run_1", "thread_1")


async def test_a_run_answered_as_json_to_a_stream_request_is_checked_too(upstream, client):
    upstream.post("/threads/thread_1/runs").mock(return_value=httpx.Response(200, json=ELSEWHERE_THREAD))

    with pytest.raises(BadResponse):
        await collect(client.stream_create_run("thread_1", "asst_1"))
