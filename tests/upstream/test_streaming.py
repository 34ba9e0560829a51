"""Streamed runs: SSE frames in, typed events out, and every failure as the client's own error."""

from __future__ import annotations

import json

import httpx
import pytest

from runs_ui.upstream.errors import (
    AuthError,
    BadResponse,
    ConnectFailed,
    RateLimited,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
)
from runs_ui.upstream.objects import Message, MessageDelta, Run, Step, StepDelta, Thread

from .conftest import error_json, message_json, run_json, sse_frames, sse_response, step_json, thread_json

RUNS = "/threads/thread_1/runs"
SUBMIT = "/threads/thread_1/runs/run_1/submit_tool_outputs"


async def collect(stream) -> list:
    async with stream as events:
        return [event async for event in events]


async def raised_by(stream) -> UpstreamError:
    with pytest.raises(Exception) as caught:
        await collect(stream)
    assert isinstance(caught.value, UpstreamError), type(caught.value)
    assert not isinstance(caught.value, httpx.HTTPError)
    return caught.value


TRANSCRIPT = [
    ("thread.run.created", run_json(status="queued")),
    ("thread.run.queued", run_json(status="queued")),
    ("thread.run.in_progress", run_json(status="in_progress")),
    ("thread.run.step.created", step_json(status="in_progress")),
    ("thread.run.step.in_progress", step_json(status="in_progress")),
    ("thread.message.created", message_json(status="in_progress", text="")),
    ("thread.message.in_progress", message_json(status="in_progress", text="")),
    (
        "thread.message.delta",
        {
            "id": "msg_1",
            "object": "thread.message.delta",
            "delta": {"content": [{"index": 0, "type": "text", "text": {"value": "Hel"}}]},
        },
    ),
    (
        "thread.message.delta",
        {
            "id": "msg_1",
            "object": "thread.message.delta",
            "delta": {"content": [{"index": 0, "type": "text", "text": {"value": "lo"}}]},
        },
    ),
    ("thread.message.completed", message_json(text="Hello")),
    ("thread.run.step.completed", step_json()),
    ("thread.run.completed", run_json(status="completed")),
    ("done", "[DONE]"),
]


async def test_a_streamed_run_becomes_typed_events_in_order(upstream, client):
    upstream.post(RUNS).mock(return_value=sse_response(*TRANSCRIPT))

    events = await collect(client.stream_create_run("thread_1", "asst_1"))

    assert [e.event for e in events] == [name for name, _ in TRANSCRIPT[:-1]]
    kinds = [type(e.data) for e in events]
    assert kinds == [
        Run,
        Run,
        Run,
        Step,
        Step,
        Message,
        Message,
        MessageDelta,
        MessageDelta,
        Message,
        Step,
        Run,
    ]
    assert [e.data.status for e in events if isinstance(e.data, Run)] == [
        "queued",
        "queued",
        "in_progress",
        "completed",
    ]
    assert "".join(e.data.text for e in events if isinstance(e.data, MessageDelta)) == "Hello"
    assert events[-1].data.is_terminal


async def test_step_deltas_carry_the_pieces_of_function_arguments(upstream, client):
    delta = {
        "id": "step_1",
        "object": "thread.run.step.delta",
        "delta": {
            "step_details": {
                "type": "tool_calls",
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"ci'},
                    }
                ],
            }
        },
    }
    upstream.post(RUNS).mock(return_value=sse_response(("thread.run.step.delta", delta), ("done", "[DONE]")))

    [event] = await collect(client.stream_create_run("thread_1", "asst_1"))

    assert isinstance(event.data, StepDelta)
    assert event.data.id == "step_1"
    assert event.data.tool_call_pieces[0]["function"]["arguments"] == '{"ci'


async def test_a_streamed_thread_and_run_starts_with_the_thread(upstream, client):
    route = upstream.post("/threads/runs").mock(
        return_value=sse_response(
            ("thread.created", thread_json("thread_9")),
            ("thread.run.created", run_json(thread_id="thread_9")),
            (
                "thread.run.requires_action",
                run_json(
                    status="requires_action",
                    thread_id="thread_9",
                    required_action={
                        "type": "submit_tool_outputs",
                        "submit_tool_outputs": {
                            "tool_calls": [
                                {
                                    "id": "call_1",
                                    "type": "function",
                                    "function": {"name": "f", "arguments": "{}"},
                                }
                            ]
                        },
                    },
                ),
            ),
            ("done", "[DONE]"),
        )
    )

    events = await collect(client.stream_create_thread_and_run("asst_1", thread={"messages": []}))

    assert isinstance(events[0].data, Thread)
    assert events[0].data.id == "thread_9"
    assert [c.id for c in events[-1].data.pending_calls] == ["call_1"]
    assert json.loads(route.calls.last.request.content) == {
        "assistant_id": "asst_1",
        "thread": {"messages": []},
        "stream": True,
    }


async def test_it_stops_at_done_and_ignores_anything_after_it(upstream, client):
    upstream.post(RUNS).mock(
        return_value=sse_response(
            ("thread.run.created", run_json()), ("done", "[DONE]"), ("thread.run.completed", run_json())
        )
    )

    events = await collect(client.stream_create_run("thread_1", "asst_1"))

    assert [e.event for e in events] == ["thread.run.created"]


async def test_a_bare_done_data_line_also_ends_the_stream(upstream, client):
    body = (
        sse_frames(("thread.run.created", run_json()))
        + "data: [DONE]\n\n"
        + sse_frames(("thread.run.completed", run_json()))
    )
    upstream.post(RUNS).respond(200, headers={"content-type": "text/event-stream"}, text=body)

    events = await collect(client.stream_create_run("thread_1", "asst_1"))

    assert [e.event for e in events] == ["thread.run.created"]


async def test_unknown_event_names_are_kept_with_their_raw_data(upstream, client):
    upstream.post(RUNS).mock(
        return_value=sse_response(
            ("thread.run.step.activity.future", step_json()),
            ("azure.heartbeat", {"at": 1}),
            ("keep-alive", "ping"),
            ("thread.run.completed", run_json(status="completed")),
            ("done", "[DONE]"),
        )
    )

    events = await collect(client.stream_create_run("thread_1", "asst_1"))

    assert [(e.event, e.data) for e in events[1:3]] == [
        ("azure.heartbeat", {"at": 1}),
        ("keep-alive", "ping"),
    ]
    assert isinstance(events[3].data, Run)


async def test_sse_comments_and_crlf_line_ends_are_tolerated(upstream, client):
    body = (
        ": keep-alive\r\n\r\nevent: thread.run.created\r\ndata: "
        + json.dumps(run_json())
        + "\r\n\r\nevent: done\r\ndata: [DONE]\r\n\r\n"
    )
    upstream.post(RUNS).respond(200, headers={"content-type": "text/event-stream; charset=utf-8"}, text=body)

    events = await collect(client.stream_create_run("thread_1", "asst_1"))

    assert [e.event for e in events] == ["thread.run.created"]


@pytest.mark.parametrize(
    "data",
    [
        {"code": "server_error", "message": "The model crashed.", "param": None, "type": "server_error"},
        {
            "error": {
                "code": "server_error",
                "message": "The model crashed.",
                "param": None,
                "type": "server_error",
            }
        },
    ],
    ids=["bare", "wrapped"],
)
async def test_an_error_event_raises_an_upstream_error_with_its_message_and_code(upstream, client, data):
    upstream.post(RUNS).mock(
        return_value=sse_response(("thread.run.created", run_json()), ("error", data), ("done", "[DONE]"))
    )
    seen = []

    with pytest.raises(UpstreamError) as caught:
        async with client.stream_create_run("thread_1", "asst_1") as events:
            async for event in events:
                seen.append(event.event)

    assert seen == ["thread.run.created"]
    assert caught.value.message == "The model crashed."
    assert caught.value.code == "server_error"


@pytest.mark.parametrize("data", ["{}", '"boom"', "null", '{"error": null}'])
async def test_an_error_event_without_a_message_still_raises(upstream, client, data):
    upstream.post(RUNS).mock(return_value=sse_response(("error", data)))

    error = await raised_by(client.stream_create_run("thread_1", "asst_1"))

    assert type(error) is UpstreamError
    assert error.message == "The upstream reported an error mid-stream."


async def test_an_error_event_that_is_not_json_raises_bad_response(upstream, client):
    upstream.post(RUNS).mock(return_value=sse_response(("error", "boom")))

    error = await raised_by(client.stream_create_run("thread_1", "asst_1"))

    assert type(error) is BadResponse


@pytest.mark.parametrize(
    ("answer", "error_class"),
    [
        (httpx.Response(429, json=error_json("Slow down."), headers={"x-request-id": "req_s"}), RateLimited),
        (
            httpx.Response(
                401, json=error_json("Bad key.", code="invalid_api_key"), headers={"x-request-id": "req_s"}
            ),
            AuthError,
        ),
        (httpx.Response(503, html="<html>down</html>", headers={"x-request-id": "req_s"}), Unavailable),
    ],
    ids=["429", "401", "html 503"],
)
async def test_an_error_status_before_the_stream_raises_the_mapped_error(
    upstream, client, answer, error_class
):
    upstream.post(RUNS).mock(return_value=answer)

    error = await raised_by(client.stream_create_run("thread_1", "asst_1"))

    assert type(error) is error_class
    assert error.status == answer.status_code
    assert error.request_id == "req_s"
    assert "<html" not in str(error)


async def test_an_upstream_that_ignores_stream_and_answers_json_yields_one_run_event(upstream, client):
    upstream.post(RUNS).respond(200, json=run_json(status="queued"), headers={"x-request-id": "req_j"})

    [event] = await collect(client.stream_create_run("thread_1", "asst_1"))

    assert event.event == "thread.run.queued"
    assert isinstance(event.data, Run)
    assert event.data.id == "run_1"


async def test_an_upstream_that_answers_a_json_list_instead_of_a_stream_raises_bad_response(upstream, client):
    upstream.post(RUNS).respond(200, json=[run_json()])

    error = await raised_by(client.stream_create_run("thread_1", "asst_1"))

    assert type(error) is BadResponse


async def test_the_body_sent_asks_for_a_stream_and_leaves_out_unset_options(upstream, client):
    route = upstream.post(RUNS).mock(return_value=sse_response(("done", "[DONE]")))

    await collect(
        client.stream_create_run(
            "thread_1", "asst_1", instructions=None, temperature=0.2, metadata={"by": "dashboard"}
        )
    )

    request = route.calls.last.request
    assert json.loads(request.content) == {
        "assistant_id": "asst_1",
        "temperature": 0.2,
        "metadata": {"by": "dashboard"},
        "stream": True,
    }
    assert request.headers["accept"] == "text/event-stream"
    assert request.headers["content-type"] == "application/json"


async def test_streamed_tool_outputs_go_to_submit_tool_outputs_with_stream_true(upstream, client):
    route = upstream.post(SUBMIT).mock(
        return_value=sse_response(
            ("thread.run.step.completed", step_json()), ("thread.run.queued", run_json()), ("done", "[DONE]")
        )
    )
    outputs = [{"tool_call_id": "call_1", "output": '{"temp": 21}'}]

    events = await collect(client.stream_submit_tool_outputs("thread_1", "run_1", outputs))

    assert [e.event for e in events] == ["thread.run.step.completed", "thread.run.queued"]
    assert json.loads(route.calls.last.request.content) == {"tool_outputs": outputs, "stream": True}


class BreakingStream(httpx.AsyncByteStream):
    """A response body that sends some frames and then fails like a dropped connection."""

    def __init__(self, first: bytes, exc: Exception):
        self.first, self.exc = first, exc

    async def __aiter__(self):
        yield self.first
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "error_class"),
    [
        (httpx.ReadError("connection reset"), Unavailable),
        (httpx.RemoteProtocolError("incomplete chunked read"), Unavailable),
        (httpx.ReadTimeout("no event for 20 s"), UpstreamTimeout),
    ],
    ids=["read error", "protocol error", "read timeout"],
)
async def test_a_stream_that_breaks_mid_way_raises_an_upstream_error(upstream, client, exc, error_class):
    first = sse_frames(("thread.run.created", run_json())).encode()
    upstream.post(RUNS).mock(
        return_value=httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=BreakingStream(first, exc)
        )
    )
    seen = []

    with pytest.raises(Exception) as caught:
        async with client.stream_create_run("thread_1", "asst_1") as events:
            async for event in events:
                seen.append(event.event)

    assert seen == ["thread.run.created"]
    assert type(caught.value) is error_class
    assert not isinstance(caught.value, httpx.HTTPError)


@pytest.mark.parametrize(
    "frame",
    [("thread.run.created", "{not json"), ("thread.run.created", [1, 2]), ("thread.message.delta", "null")],
    ids=["unreadable json", "a list for a run", "null for a delta"],
)
async def test_a_known_event_with_unreadable_data_raises_bad_response(upstream, client, frame):
    upstream.post(RUNS).mock(return_value=sse_response(frame, ("done", "[DONE]")))

    error = await raised_by(client.stream_create_run("thread_1", "asst_1"))

    assert type(error) is BadResponse


@pytest.mark.parametrize(
    ("fault", "error_class"),
    [
        (httpx.Response(503), Unavailable),
        (httpx.Response(429), RateLimited),
        (httpx.ConnectError("refused"), ConnectFailed),
        (httpx.ReadTimeout("slow"), UpstreamTimeout),
    ],
    ids=["503", "429", "connect error", "read timeout"],
)
async def test_streams_are_never_retried(upstream, client, sleeps, fault, error_class):
    route = upstream.post(RUNS).mock(side_effect=[fault, sse_response(("done", "[DONE]"))])

    error = await raised_by(client.stream_create_run("thread_1", "asst_1"))

    assert type(error) is error_class
    assert route.call_count == 1
    assert sleeps == []


# --- framing: lines split here, from bytes, across chunks --------------------------------------------


async def _frames(chunks: list[bytes], limits=None) -> list[tuple[str, str]]:
    from runs_ui.upstream import sse
    from runs_ui.upstream.limits import Limits

    async def source():
        for chunk in chunks:
            yield chunk

    return [(f.event, f.data) async for f in sse.frames(source(), limits or Limits(), "a test stream")]


@pytest.mark.parametrize("end", [b"\n", b"\r", b"\r\n"], ids=["LF", "CR", "CRLF"])
async def test_frames_split_at_every_byte_read_the_same_whatever_the_line_ends(end):
    body = (
        b"event: one" + end + b"data: {\"a\": 1}" + end + end + b": a comment" + end
        + b"event: two" + end + b"data: line 1" + end + b"data: l\xc3\xa9ne 2" + end + end
    )  # fmt: skip
    expected = [("one", '{"a": 1}'), ("two", "line 1\nléne 2")]

    assert await _frames([body]) == expected
    for cut in range(1, len(body)):
        assert await _frames([body[:cut], body[cut:]]) == expected, cut
    assert await _frames([bytes([b]) for b in body]) == expected


async def test_an_event_of_many_short_lines_is_capped_like_one_long_line():
    from runs_ui.upstream.errors import LimitExceeded
    from runs_ui.upstream.limits import Limits

    chunks = [b"event: x\n"] + [b"data: " + b"y" * 100 + b"\n"] * 20

    with pytest.raises(LimitExceeded) as caught:
        await _frames(chunks, Limits(stream_line_bytes=1024))

    assert caught.value.setting == "UPSTREAM_STREAM_MAX_LINE_BYTES"


async def test_an_event_with_hostile_text_comes_out_safe(upstream, client):
    message = message_json(text="x")
    message["content"][0]["text"]["value"] = "half \ud83d and a NUL \u0000"
    upstream.post(RUNS).mock(
        return_value=sse_response(
            ("thread.message.completed", json.dumps(message, ensure_ascii=True)),
            ("vendor.\u0000ping", "not json \u0000"),
            ("done", "[DONE]"),
        )
    )

    events = await collect(client.stream_create_run("thread_1", "asst_1"))

    assert events[0].data.text == "half � and a NUL ␀"
    assert events[1].event == "vendor.␀ping" and events[1].data == "not json ␀"
