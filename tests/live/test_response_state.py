"""ResponseState grows items from a stream's deltas exactly as the upstream finishes them: checked against
every event the sandbox streams for responses that write every kind of item."""

from __future__ import annotations

import pytest

from runs_ui.live.response_state import ResponseState
from runs_ui.upstream.client import AssistantsClient
from runs_ui.upstream.profiles import PROFILES
from runs_ui.upstream.responses_client import ResponsesClient
from runs_ui.upstream.responses_objects import ResponseEvent

#: What a stream grows piece by piece (other fields come whole, with the item's `done` event).
GROWN = {
    "message": "content",
    "reasoning": "summary",
    "function_call": "arguments",
    "code_interpreter_call": "code",
    "mcp_call": "arguments",
}


@pytest.mark.parametrize("model", ["sandbox-tools", "sandbox-functions", "sandbox-mcp", "sandbox-fail"])
async def test_items_grown_from_deltas_equal_the_items_the_upstream_says_are_done(sandbox, model):
    client = ResponsesClient(AssistantsClient(sandbox.base_url, sandbox.api_key, PROFILES["sandbox"]))
    created = await client.create_response(
        model=model, input="Weather, refunds and sales?", background=True, metadata={"sandbox_speed": "50"}
    )
    async with client.stream_response(created.id) as events:
        streamed = [e async for e in events]

    state, checked = ResponseState(), 0
    for event in streamed:
        if event.type == "response.output_item.done" and event.item.type in GROWN:
            field = GROWN[event.item.type]
            assert state.items[event.item.id].raw[field] == event.item.raw[field], event.item.type
            checked += 1
        state, _ = state.apply(event)
    final = await client.get_response(created.id, include=())  # as the stream shows them
    assert checked == sum(1 for i in final.output if i.type in GROWN)
    assert [i.raw for i in state.items.values()] == [i.raw for i in final.output]
    assert state.response.status == final.status


def test_a_delta_for_an_item_never_seen_or_of_nonsense_changes_nothing():
    state, _ = ResponseState().apply(
        ResponseEvent.from_json(
            "response.created", {"type": "response.created", "response": {"id": "resp_1"}}
        )
    )
    for raw in (
        {"type": "response.output_text.delta", "item_id": "msg_unknown", "delta": "x"},
        {"type": "response.output_text.delta", "item_id": "", "content_index": -5, "delta": 7},
        {"type": "response.future_thing", "sequence_number": 9},
    ):
        after, change = state.apply(ResponseEvent.from_json(raw["type"], raw))
        assert after is state and not change
