"""Streaming (SSE): event order of docs/WIRE.md §8, payloads valid against the spec, deltas that add up."""

import json

import pytest

SCRIPTS = ["answer", "code", "search", "fail", "incomplete", "azure"]


def _stream(sandbox_api, path: str, body: dict, parse_sse, **kwargs):
    response = sandbox_api.post(path, json={**body, "stream": True}, **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return parse_sse(response)


def _run_body(runs, script: str, speed: float = 50, **metadata) -> dict:
    return {"assistant_id": runs.assistant(script), "metadata": {"sandbox_speed": str(speed), **metadata}}


def _subsequence(names: list[str], expected: list[str]) -> bool:
    remaining = iter(names)
    return all(name in remaining for name in expected)


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_streamed_event_matches_the_spec_and_the_stream_ends_with_done(
    script, runs, spec, sandbox_api, parse_sse
):
    thread = sandbox_api.post("/threads", json={"messages": [{"role": "user", "content": "Hi"}]}).json()
    events = _stream(sandbox_api, f"/threads/{thread['id']}/runs", _run_body(runs, script), parse_sse)
    for event, data in events:
        spec.validate_event(event, data, azure=script == "azure")
    names = [event for event, _ in events]
    assert names[:3] == ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
    assert names[-1] == "done" and events[-1][1] == "[DONE]"
    terminal = {"answer": "completed", "code": "completed", "search": "completed", "azure": "completed"}
    assert names[-2] == f"thread.run.{terminal.get(script, script if script != 'fail' else 'failed')}"


def test_a_streamed_answer_follows_the_spec_example_order(runs, sandbox_api, parse_sse):
    thread = sandbox_api.post("/threads", json={"messages": [{"role": "user", "content": "Hi"}]}).json()
    # The SDK sends Accept: application/json even when streaming: the body decides.
    events = _stream(
        sandbox_api,
        f"/threads/{thread['id']}/runs",
        _run_body(runs, "answer"),
        parse_sse,
        headers={"Accept": "application/json"},
    )
    names = [event for event, _ in events]
    assert _subsequence(
        names,
        [
            "thread.run.created",
            "thread.run.queued",
            "thread.run.in_progress",
            "thread.run.step.created",
            "thread.run.step.in_progress",
            "thread.message.created",
            "thread.message.in_progress",
            "thread.message.delta",
            "thread.message.completed",
            "thread.run.step.completed",
            "thread.run.completed",
            "done",
        ],
    )
    deltas = "".join(
        d["delta"]["content"][0]["text"]["value"] for e, d in events if e == "thread.message.delta"
    )
    final = next(d for e, d in events if e == "thread.message.completed")
    assert deltas == final["content"][0]["text"]["value"]
    assert events[0][1]["status"] == "queued" and events[2][1]["status"] == "in_progress"


def test_stream_false_answers_json_whatever_the_accept_header(runs, sandbox_api):
    thread = sandbox_api.post("/threads", json={}).json()
    response = sandbox_api.post(
        f"/threads/{thread['id']}/runs",
        json={**_run_body(runs, "answer"), "stream": False},
        headers={"Accept": "text/event-stream"},
    )
    assert (
        response.headers["content-type"] == "application/json" and response.json()["object"] == "thread.run"
    )


def test_create_thread_and_run_streams_thread_created_first_and_stops_at_requires_action(
    runs, spec, sandbox_api, parse_sse
):
    body = {**_run_body(runs, "functions"), "thread": {"messages": [{"role": "user", "content": "Weather?"}]}}
    events = _stream(sandbox_api, "/threads/runs", body, parse_sse)
    for event, data in events:
        spec.validate_event(event, data)
    names = [event for event, _ in events]
    assert names[0] == "thread.created" and names[1] == "thread.run.created"
    assert names[-2:] == ["thread.run.requires_action", "done"]
    arguments: dict[int, str] = {}
    for event, data in events:
        if event == "thread.run.step.delta":
            for call in data["delta"]["step_details"]["tool_calls"]:
                arguments[call["index"]] = arguments.get(call["index"], "") + call.get("function", {}).get(
                    "arguments", ""
                )
    run = events[-2][1]
    calls = run["required_action"]["submit_tool_outputs"]["tool_calls"]
    assert [arguments[0], arguments[1]] == [c["function"]["arguments"] for c in calls]
    assert all(json.loads(text) for text in arguments.values())
    assert sum(1 for e in names if e == "thread.run.step.delta") > 4  # arguments arrive in pieces


def test_streamed_submit_starts_with_the_completed_tool_step_then_queued(runs, spec, sandbox_api, parse_sse):
    run = runs.wait(runs.start("functions"))
    calls = run["required_action"]["submit_tool_outputs"]["tool_calls"]
    body = {"tool_outputs": [{"tool_call_id": c["id"], "output": f"out-{n}"} for n, c in enumerate(calls)]}
    events = _stream(
        sandbox_api, f"/threads/{run['thread_id']}/runs/{run['id']}/submit_tool_outputs", body, parse_sse
    )
    for event, data in events:
        spec.validate_event(event, data)
    names = [event for event, _ in events]
    assert names[:3] == ["thread.run.step.completed", "thread.run.queued", "thread.run.in_progress"]
    assert [c["function"]["output"] for c in events[0][1]["step_details"]["tool_calls"]] == ["out-0", "out-1"]
    assert names[-2:] == ["thread.run.completed", "done"]


def test_a_streamed_run_shows_a_cancel_made_elsewhere(runs, sandbox, sandbox_api, parse_sse):
    thread = sandbox_api.post("/threads", json={}).json()
    with (
        sandbox.client() as other,
        sandbox_api.stream(
            "POST",
            f"/threads/{thread['id']}/runs",
            json={**_run_body(runs, "slow", speed=20), "stream": True},
        ) as response,
    ):
        lines = response.iter_lines()
        for line in lines:
            if line.startswith("data: ") and '"status":"queued"' in line:
                run = json.loads(line[6:])
                break
        other.post(f"/threads/{thread['id']}/runs/{run['id']}/cancel")
        rest = "\n".join(lines)
    assert "event: thread.run.cancelling" in rest and "event: thread.run.cancelled" in rest
    assert rest.rstrip().endswith("data: [DONE]")


def test_file_search_content_streams_only_when_included(runs, sandbox_api, parse_sse):
    thread = sandbox_api.post("/threads", json={}).json()
    path = f"/threads/{thread['id']}/runs"
    include = {"include[]": "step_details.tool_calls[*].file_search.results[*].content"}
    for params, has_content in (({}, False), (include, True)):
        events = _stream(sandbox_api, path, _run_body(runs, "search"), parse_sse, params=params)
        done = next(d for e, d in events if e == "thread.run.step.completed" and d["type"] == "tool_calls")
        assert (
            "content" in done["step_details"]["tool_calls"][0]["file_search"]["results"][0]
        ) is has_content
