"""The official `openai` SDK drives the sandbox's Responses and Conversations surface over real HTTP.

Every body the sandbox answers here is checked against the spec's schema for its endpoint (the `sdk`
fixture's transport): Response, the item lists, Conversation, the stream events, the errors.
"""

import json
import time

import pytest
from openai import AzureOpenAI, BadRequestError, NotFoundError, OpenAI

TERMINAL = {"completed", "failed", "incomplete", "cancelled"}
FAST = {"sandbox_speed": "50"}


def wait(sdk, response_id: str, until=TERMINAL, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while True:
        response = sdk.responses.retrieve(response_id)
        if response.status in until:
            return response
        assert time.monotonic() < deadline, f"{response_id} stayed {response.status}"
        time.sleep(0.02)


def test_a_background_response_is_queued_then_completes_with_a_message_and_usage(sdk):
    created = sdk.responses.create(
        model="sandbox-answer", input="How do refunds work?", background=True, metadata=FAST
    )
    assert created.status == "queued" and created.background and created.output == []
    assert created.id.startswith("resp_") and created.usage is None
    done = wait(sdk, created.id)
    assert done.status == "completed" and done.completed_at >= done.created_at
    (message,) = done.output
    assert message.type == "message" and message.role == "assistant" and message.status == "completed"
    assert "How do refunds work?" in done.output_text
    assert done.usage.total_tokens == done.usage.input_tokens + done.usage.output_tokens > 0
    assert sdk.checker.seen["Response"] >= 2


def test_a_response_without_background_answers_when_it_is_done(sdk):
    done = sdk.responses.create(model="sandbox-answer", input="Hello", metadata=FAST)
    assert done.status == "completed" and not done.background and done.output_text


def test_a_background_stream_numbers_every_event_and_resumes_after_starting_after(sdk):
    stream = sdk.responses.create(
        model="sandbox-answer",
        input="Stream me",
        background=True,
        stream=True,
        metadata={"sandbox_speed": "5"},
    )
    first = []
    for event in stream:
        first.append(event)
        if event.type == "response.output_text.delta" and len(first) > 8:
            break  # the connection drops here
    stream.close()
    response_id = first[0].response.id
    assert [e.type for e in first[:3]] == ["response.created", "response.queued", "response.in_progress"]
    assert [e.sequence_number for e in first] == list(range(len(first)))
    cursor = first[-1].sequence_number

    resumed = list(sdk.responses.retrieve(response_id, stream=True, starting_after=cursor))
    assert resumed[0].sequence_number == cursor + 1
    assert [e.sequence_number for e in resumed] == list(range(cursor + 1, cursor + 1 + len(resumed)))
    assert resumed[-1].type == "response.completed"
    text = "".join(e.delta for e in [*first, *resumed] if e.type == "response.output_text.delta")
    assert text == resumed[-1].response.output_text
    replayed = list(sdk.responses.retrieve(response_id, stream=True))
    assert [e.sequence_number for e in replayed] == list(range(len(replayed)))
    assert sdk.checker.seen["stream"] == 3


def test_a_plain_stream_uses_the_event_vocabulary_in_order(sdk):
    events = list(sdk.responses.create(model="sandbox-answer", input="Hi", stream=True, metadata=FAST))
    names = [e.type for e in events]
    assert names[:2] == ["response.created", "response.in_progress"]
    assert events[0].response.status == "in_progress"
    expected = [
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    remaining = iter(names)
    assert all(name in remaining for name in expected), names
    with sdk.responses.stream(model="sandbox-answer", input="Again", metadata=FAST) as helper:
        final = helper.get_final_response()
    assert final.status == "completed" and final.output_text.startswith("Here is what I found")


def test_cancel_stops_a_background_response_once_and_refuses_what_cannot_be_cancelled(sdk):
    slow = sdk.responses.create(model="sandbox-slow", input="Take your time", background=True)
    cancelled = sdk.responses.cancel(slow.id)
    assert cancelled.status == "cancelled"
    assert sdk.responses.retrieve(slow.id).status == "cancelled"
    assert sdk.responses.cancel(slow.id).status == "cancelled"  # cancelling twice changes nothing

    done = wait(
        sdk, sdk.responses.create(model="sandbox-answer", input="x", background=True, metadata=FAST).id
    )
    with pytest.raises(BadRequestError) as completed:
        sdk.responses.cancel(done.id)
    assert completed.value.body["message"] == "Cannot cancel a response with status 'completed'."
    foreground = sdk.responses.create(model="sandbox-answer", input="x", metadata=FAST)
    with pytest.raises(BadRequestError) as synchronous:
        sdk.responses.cancel(foreground.id)
    assert synchronous.value.body["message"] == "Cannot cancel a synchronous response."


def test_a_cancelled_stream_ends_with_response_cancelled(sdk):
    stream = sdk.responses.create(
        model="sandbox-slow",
        input="Cancel me",
        background=True,
        stream=True,
        metadata={"sandbox_speed": "20", "sandbox_queued_seconds": "0"},
    )
    events = []
    for event in stream:
        events.append(event)
        if event.type == "response.output_item.added" and len(events) < 5:
            sdk.responses.cancel(events[0].response.id)
    # The SDK knows no `response.cancelled` event (nor does the spec), so it hands over the plain data.
    assert events[-1].type == "response.cancelled"
    assert events[-1].response["status"] == "cancelled"
    assert events[-1].response["output"][0]["status"] == "incomplete"


def test_input_items_list_in_both_orders_and_pages(sdk):
    inputs = [{"role": "user", "content": f"Message {n}"} for n in range(5)]
    response = sdk.responses.create(model="sandbox-answer", input=inputs, background=True, metadata=FAST)
    ascending = list(sdk.responses.input_items.list(response.id, order="asc", limit=2))
    assert [item.content[0].text for item in ascending] == [f"Message {n}" for n in range(5)]
    assert all(item.id.startswith("msg_") and item.status == "completed" for item in ascending)
    newest_first = sdk.responses.input_items.list(response.id)
    assert [item.id for item in newest_first.data] == [item.id for item in ascending][::-1]
    page = sdk.responses.input_items.list(response.id, order="asc", limit=2, after=ascending[1].id)
    assert [item.id for item in page.data] == [item.id for item in ascending[2:4]] and page.has_more
    assert sdk.checker.seen["ResponseItemList"] >= 3


def test_conversations_hold_their_items_and_the_items_of_their_responses(sdk):
    conversation = sdk.conversations.create(
        items=[{"type": "message", "role": "user", "content": "Hello"}], metadata={"topic": "refunds"}
    )
    assert conversation.id.startswith("conv_") and conversation.metadata == {"topic": "refunds"}
    first = wait(
        sdk,
        sdk.responses.create(
            model="sandbox-answer",
            input="What is the refund policy?",
            conversation=conversation.id,
            background=True,
            metadata=FAST,
        ).id,
    )
    assert first.conversation.id == conversation.id
    items = list(sdk.conversations.items.list(conversation.id, order="asc"))
    assert [(i.type, i.role) for i in items] == [
        ("message", "user"),
        ("message", "user"),
        ("message", "assistant"),
    ]
    assert items[2].id == first.output[0].id
    assert sdk.conversations.items.retrieve(items[0].id, conversation_id=conversation.id).id == items[0].id

    added = sdk.conversations.items.create(
        conversation.id, items=[{"type": "message", "role": "user", "content": "One more thing"}]
    )
    assert [i.role for i in added.data] == ["user"]
    assert sdk.conversations.update(conversation.id, metadata={"topic": "shipping"}).metadata == {
        "topic": "shipping"
    }
    sdk.conversations.items.delete(added.data[0].id, conversation_id=conversation.id)
    assert len(sdk.conversations.items.list(conversation.id).data) == 3
    assert sdk.conversations.delete(conversation.id).deleted
    with pytest.raises(NotFoundError):
        sdk.conversations.retrieve(conversation.id)
    assert sdk.responses.retrieve(first.id).output[0].id == items[2].id  # the response keeps its items


def _calls(response):
    return [item for item in response.output if item.type == "function_call"]


def test_function_calls_complete_the_response_and_a_follow_up_answers_them(sdk):
    asked = wait(
        sdk,
        sdk.responses.create(model="sandbox-functions", input="Weather?", background=True, metadata=FAST).id,
    )
    assert asked.status == "completed"
    calls = _calls(asked)
    assert [c.name for c in calls] == ["get_weather", "get_time"] and all(
        c.status == "completed" for c in calls
    )
    assert set(json.loads(calls[0].arguments)) == {"city"}

    with pytest.raises(BadRequestError) as missing:
        sdk.responses.create(
            model="sandbox-functions",
            previous_response_id=asked.id,
            input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"}],
        )
    assert missing.value.body["message"] == f"No tool output found for function call {calls[1].call_id}."
    assert missing.value.body["param"] == "input"

    outputs = [
        {"type": "function_call_output", "call_id": call.call_id, "output": f"result of {call.name}"}
        for call in calls
    ]
    follow_up = sdk.responses.create(
        model="sandbox-functions", previous_response_id=asked.id, input=outputs, background=True
    )
    assert follow_up.previous_response_id == asked.id
    answered = wait(sdk, follow_up.id)
    assert "result of get_weather" in answered.output_text and "result of get_time" in answered.output_text
    given = list(sdk.responses.input_items.list(follow_up.id, order="asc"))
    assert [(i.type, i.call_id) for i in given] == [("function_call_output", c.call_id) for c in calls]


def test_function_calls_in_a_conversation_are_answered_in_that_conversation(sdk):
    conversation = sdk.conversations.create()
    asked = wait(
        sdk,
        sdk.responses.create(
            model="sandbox-functions",
            input="Time in Tokyo?",
            conversation=conversation.id,
            background=True,
            metadata=FAST,
        ).id,
    )
    outputs = [{"type": "function_call_output", "call_id": c.call_id, "output": "ok"} for c in _calls(asked)]
    answered = wait(
        sdk,
        sdk.responses.create(
            model="sandbox-functions", conversation=conversation.id, input=outputs, background=True
        ).id,
    )
    assert answered.status == "completed" and "`get_time` returned: ok" in answered.output_text
    kinds = [i.type for i in sdk.conversations.items.list(conversation.id, order="asc")]
    assert kinds == [
        "message",
        "function_call",
        "function_call",
        "function_call_output",
        "function_call_output",
        "message",
    ]


def test_an_mcp_approval_request_waits_for_a_person_then_the_tool_is_called(sdk):
    asked = wait(
        sdk, sdk.responses.create(model="sandbox-mcp", input="Refunds?", background=True, metadata=FAST).id
    )
    listed, request = asked.output
    assert listed.type == "mcp_list_tools" and listed.tools[0].name == "search_docs"
    assert request.type == "mcp_approval_request" and request.name == "search_docs"
    approved = wait(
        sdk,
        sdk.responses.create(
            model="sandbox-mcp",
            previous_response_id=asked.id,
            input=[{"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}],
            background=True,
        ).id,
    )
    call, message = approved.output
    assert call.type == "mcp_call" and call.approval_request_id == request.id
    assert call.arguments == request.arguments and "30 days" in call.output and call.status == "completed"
    assert "30 days" in message.content[0].text

    denied = sdk.responses.create(
        model="sandbox-mcp",
        previous_response_id=asked.id,
        input=[
            {
                "type": "mcp_approval_response",
                "approval_request_id": request.id,
                "approve": False,
                "reason": "not now",
            }
        ],
    )
    assert [item.type for item in denied.output] == ["message"] and "not now" in denied.output_text


def test_the_tools_script_makes_every_common_item_type_and_include_shows_their_details(sdk):
    response = sdk.responses.create(model="sandbox-tools", input="Everything, please", metadata=FAST)
    kinds = [item.type for item in response.output]
    assert kinds == ["reasoning", "web_search_call", "file_search_call", "code_interpreter_call", "message"]
    reasoning, web, files, code, message = response.output
    assert reasoning.summary[0].text and web.action.query == "sandbox weather today"
    assert files.results is None and code.outputs is None
    full = sdk.responses.retrieve(
        response.id,
        include=[
            "file_search_call.results",
            "code_interpreter_call.outputs",
            "web_search_call.action.sources",
        ],
    )
    _, web, files, code, message = full.output
    assert [r.score for r in files.results] == [0.91, 0.78, 0.64]
    assert code.outputs[0].logs == "60 Q4\n" and code.outputs[1].url.startswith("data:image/png;base64,")
    assert web.action.sources[0].url == "https://www.example.com/weather"
    kinds = {a.type for a in message.content[0].annotations}
    assert kinds == {"url_citation", "file_citation"}


def test_failing_and_capped_responses_end_failed_and_incomplete(sdk):
    failed = sdk.responses.create(model="sandbox-fail", input="Everything", metadata=FAST)
    assert failed.status == "failed" and failed.error.code == "server_error"
    assert [item.status for item in failed.output] == ["completed", "failed"]
    events = list(sdk.responses.create(model="sandbox-fail", input="x", stream=True, metadata=FAST))
    assert [e.type for e in events[-2:]] == ["error", "response.failed"]
    capped = sdk.responses.create(
        model="sandbox-incomplete", input="Report", max_output_tokens=64, metadata=FAST
    )
    assert capped.status == "incomplete" and capped.incomplete_details.reason == "max_output_tokens"
    assert capped.usage.output_tokens == 64 and capped.output[0].status == "incomplete"


def test_a_deleted_response_is_gone(sdk):
    response = sdk.responses.create(model="sandbox-answer", input="x", metadata=FAST)
    sdk.responses.delete(response.id)
    with pytest.raises(NotFoundError) as gone:
        sdk.responses.retrieve(response.id)
    assert gone.value.body["message"] == f"Response with id '{response.id}' not found."
    assert sdk.checker.seen["deleted:response"] == 1


def test_a_response_with_store_false_cannot_be_retrieved(sdk):
    response = sdk.responses.create(model="sandbox-answer", input="x", store=False, metadata=FAST)
    assert response.status == "completed" and response.store is False
    with pytest.raises(NotFoundError):
        sdk.responses.retrieve(response.id)


def test_an_azure_client_speaks_the_responses_surface_with_api_key_and_api_version(sandbox):
    azure = AzureOpenAI(
        base_url=sandbox.base_url, api_key=sandbox.api_key, api_version="preview", max_retries=0
    )
    response = azure.responses.create(model="sandbox-answer", input="Hi from Azure", metadata=FAST)
    assert response.status == "completed"
    assert azure.responses.retrieve(response.id).output_text == response.output_text


def test_a_foundry_style_base_url_reaches_the_same_api(sandbox):
    """Azure AI Foundry's new agents serve the Responses shape under `{project endpoint}/openai/v1`."""
    foundry = OpenAI(base_url=sandbox.base_url.removesuffix("/v1") + "/openai/v1", api_key=sandbox.api_key)
    response = foundry.responses.create(model="sandbox-answer", input="Hi from Foundry", metadata=FAST)
    assert foundry.conversations.create().id.startswith("conv_") and response.status == "completed"
