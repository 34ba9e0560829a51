"""Every event and body each response script produces matches the spec (with conftest's tolerances)."""

import json

import pytest

from tests.sandbox.spec_checks import sse_frames

FINAL = {"fail": "response.failed", "incomplete": "response.incomplete"}
INCLUDE = ["file_search_call.results", "code_interpreter_call.outputs", "web_search_call.action.sources"]


def _stream(api, spec, body: dict) -> list[dict]:
    response = api.post("/responses", json={**body, "stream": True})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = []
    for event, data in sse_frames(response.text):
        assert event == data["type"]
        spec.validate_response_event(data)
        events.append(data)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def _check_stored(api, spec, response_id: str, conversation_id: str | None) -> dict:
    for params in ({}, {"include[]": INCLUDE}):
        stored = api.get(f"/responses/{response_id}", params=params).json()
        spec.validate("Response", stored)
    spec.validate("ResponseItemList", api.get(f"/responses/{response_id}/input_items").json())
    if conversation_id:
        items = api.get(
            f"/conversations/{conversation_id}/items", params={"limit": 100, "include[]": INCLUDE}
        )
        spec.validate("ConversationItemList", items.json())
        one_of_each = {item["type"]: item for item in items.json()["data"]}
        for item in one_of_each.values():
            one = api.get(f"/conversations/{conversation_id}/items/{item['id']}").json()
            spec.validate("ConversationItem", one)
    return stored


@pytest.mark.parametrize(
    "script", ["answer", "functions", "mcp", "tools", "slow", "fail", "incomplete", "long"]
)
@pytest.mark.parametrize("background", [True, False])
def test_every_event_and_object_of_a_script_matches_the_spec(script, background, sandbox_api, spec):
    conversation = sandbox_api.post("/conversations", json={"metadata": {"script": script}}).json()
    spec.validate("ConversationResource", conversation)
    metadata = {"sandbox_speed": "400" if script == "slow" else "100", "sandbox_items": "25"}
    body = {
        "model": f"sandbox-{script}",
        "input": [{"role": "user", "content": "Hello"}],
        "background": background,
        "conversation": conversation["id"],
        "include": INCLUDE,
        "metadata": metadata,
    }
    events = _stream(sandbox_api, spec, body)
    assert events[0]["type"] == "response.created"
    assert events[0]["response"]["status"] == ("queued" if background else "in_progress")
    assert events[-1]["type"] == FINAL.get(script, "response.completed")
    _check_stored(sandbox_api, spec, events[-1]["response"]["id"], conversation["id"])


@pytest.mark.parametrize(
    ("script", "answer"),
    [
        ("functions", "outputs"),
        ("mcp", "approve"),
        ("mcp", "deny"),
    ],
)
def test_every_event_and_object_of_a_follow_up_matches_the_spec(script, answer, sandbox_api, spec):
    first = _stream(
        sandbox_api, spec, {"model": f"sandbox-{script}", "input": "Hi", "metadata": {"sandbox_speed": "100"}}
    )
    output = first[-1]["response"]["output"]
    if answer == "outputs":
        given = [
            {"type": "function_call_output", "call_id": item["call_id"], "output": json.dumps({"ok": True})}
            for item in output
            if item["type"] == "function_call"
        ]
    else:
        request = next(item for item in output if item["type"] == "mcp_approval_request")
        given = [
            {
                "type": "mcp_approval_response",
                "approval_request_id": request["id"],
                "approve": answer == "approve",
            }
        ]
    body = {
        "model": f"sandbox-{script}",
        "previous_response_id": first[-1]["response"]["id"],
        "input": given,
        "background": True,
    }
    events = _stream(sandbox_api, spec, body)
    assert events[-1]["type"] == "response.completed"
    kinds = [item["type"] for item in events[-1]["response"]["output"]]
    assert kinds == {"outputs": ["message"], "approve": ["mcp_call", "message"], "deny": ["message"]}[answer]
    _check_stored(sandbox_api, spec, events[-1]["response"]["id"], None)


def test_the_validator_rejects_what_the_spec_forbids_in_responses(sandbox_api, spec):
    """Guards against a vacuous check: the translated spec still refuses bad responses and events."""
    events = _stream(
        sandbox_api, spec, {"model": "sandbox-answer", "input": "Hi", "metadata": {"sandbox_speed": "100"}}
    )
    response = events[-1]["response"]
    for broken in ({**response, "status": "bogus"}, {k: v for k, v in response.items() if k != "output"}):
        with pytest.raises(AssertionError, match="does not match the spec"):
            spec.validate("Response", broken)
    delta = next(e for e in events if e["type"] == "response.output_text.delta")
    with pytest.raises(AssertionError, match="does not match the spec"):
        spec.validate_response_event({k: v for k, v in delta.items() if k != "sequence_number"})
