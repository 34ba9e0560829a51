"""The Responses client, per profile: how it authenticates and addresses, pages, errors, tolerant objects.

respx stands in for OpenAI and Azure AI Foundry (the headers and query each is sent); the sandbox, over
real HTTP, for paging, streams resumed after a sequence number and the API's own errors.
"""

from __future__ import annotations

import httpx
import pytest

from runs_ui.upstream.client import AssistantsClient
from runs_ui.upstream.errors import AuthError, BadRequest, BadResponse, NotFound, RateLimited, Unavailable
from runs_ui.upstream.profiles import PROFILES
from runs_ui.upstream.responses_client import FULL_ITEMS, ResponsesClient
from runs_ui.upstream.responses_objects import (
    FunctionCallItem,
    McpApprovalRequestItem,
    MessageItem,
    UnknownItem,
)
from sandbox.wire import page as page_json

from .conftest import KEY, error_json, sse_response


def response_json(response_id: str = "resp_1", status: str = "completed", **fields) -> dict:
    return {
        "id": response_id,
        "object": "response",
        "created_at": 1_700_000_000,
        "status": status,
        "background": True,
        "model": "gpt-4.1",
        "output": [],
        "usage": None,
        "error": None,
        "incomplete_details": None,
        "metadata": {},
        **fields,
    }


@pytest.fixture
def responses(make_client):
    def make(profile: str = "openai-responses", **options) -> ResponsesClient:
        return ResponsesClient(make_client(profile, **options))

    return make


def mock_every_kind_of_call(upstream):
    upstream.get("/responses/resp_1").respond(200, json=response_json())
    upstream.get("/responses/resp_1/input_items").respond(200, json=page_json([]))
    upstream.post("/responses/resp_1/cancel").respond(200, json=response_json(status="cancelled"))
    upstream.get("/conversations/conv_1/items").respond(200, json=page_json([]))
    upstream.post("/responses").mock(
        return_value=sse_response(("response.created", {"type": "response.created", "sequence_number": 0}))
    )


async def make_every_kind_of_call(client: ResponsesClient) -> None:
    await client.get_response("resp_1")
    await client.list_input_items("resp_1")
    await client.cancel_response("resp_1")
    await client.list_conversation_items("conv_1")
    async with client.stream_create_response(model="gpt-4.1", input="hi", background=True) as events:
        assert [e.sequence_number async for e in events] == [0]


async def test_the_openai_responses_profile_sends_a_bearer_key_and_neither_beta_header_nor_api_version(
    upstream, responses
):
    mock_every_kind_of_call(upstream)

    await make_every_kind_of_call(responses("openai-responses"))

    assert len(upstream.calls) == 5
    for request in (call.request for call in upstream.calls):
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert "openai-beta" not in request.headers
        assert "api-key" not in request.headers
        assert "api-version" not in request.url.params


async def test_the_azure_foundry_profile_sends_the_entra_token_and_the_api_version_when_one_is_set(
    upstream, responses
):
    mock_every_kind_of_call(upstream)

    await make_every_kind_of_call(responses("azure-foundry", api_version="v1"))
    await make_every_kind_of_call(responses("azure-foundry"))  # optional: /openai/v1 needs none

    assert len(upstream.calls) == 10
    for n, request in enumerate(call.request for call in upstream.calls):
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert "openai-beta" not in request.headers
        assert request.url.params.get_list("api-version") == (["v1"] if n < 5 else [])


def test_only_the_foundry_and_sandbox_profiles_say_they_can_list_responses():
    assert [p.name for p in PROFILES.values() if p.can_list_responses] == ["azure-foundry", "sandbox"]
    assert [p.name for p in PROFILES.values() if p.speaks("responses")] == [
        "openai-responses",
        "azure-foundry",
        "sandbox",
    ]
    assert not PROFILES["openai-responses"].speaks("assistants")


async def test_a_page_is_asked_with_limit_order_and_after_and_include_travels_as_repeated_brackets(
    upstream, responses
):
    items = [{"id": f"msg_{n}", "type": "message", "role": "user", "content": "hi"} for n in range(3)]
    route = upstream.get("/conversations/conv_1/items").respond(
        200, json={**page_json(items), "has_more": True}
    )

    page = await responses().list_conversation_items("conv_1", limit=500, order="asc", after="msg_0")

    params = route.calls.last.request.url.params
    assert params["limit"] == "100"  # clamped to the API's maximum
    assert params["order"] == "asc"
    assert params["after"] == "msg_0"
    assert params.get_list("include[]") == list(FULL_ITEMS)
    assert [i.id for i in page.data] == ["msg_0", "msg_1", "msg_2"]
    assert page.has_more and page.next_after == "msg_2"


async def test_upstream_errors_come_back_as_the_error_tree_with_the_key_redacted(upstream, responses):
    client = responses(retries=0)
    upstream.get("/responses/resp_401").respond(401, json=error_json(f"Incorrect API key provided: {KEY}"))
    upstream.get("/responses/resp_429").respond(
        429, json=error_json("slow down"), headers={"retry-after": "3"}
    )
    upstream.get("/responses/resp_502").respond(502, html="<html>bad gateway</html>")
    upstream.get("/responses/resp_bad").respond(200, text="not json")

    with pytest.raises(AuthError) as auth:
        await client.get_response("resp_401")
    assert KEY not in auth.value.message and "[redacted]" in auth.value.message
    with pytest.raises(RateLimited) as limited:
        await client.get_response("resp_429")
    assert limited.value.retry_after == 3
    with pytest.raises(Unavailable) as gateway:
        await client.get_response("resp_502")
    assert "HTML page" in gateway.value.message
    with pytest.raises(BadResponse):
        await client.get_response("resp_bad")


async def test_an_answer_about_another_response_is_refused(upstream, responses):
    upstream.get("/responses/resp_1").respond(200, json=response_json("resp_other"))

    with pytest.raises(BadResponse, match="resp_other"):
        await responses().get_response("resp_1")


async def test_a_response_without_its_id_is_placed_where_it_was_asked_for(upstream, responses):
    body = response_json()
    del body["id"]
    upstream.get("/responses/resp_1").respond(200, json=body)

    assert (await responses().get_response("resp_1")).id == "resp_1"


async def test_unknown_item_types_and_wrong_types_are_kept_not_fatal(upstream, responses):
    output = [
        {"id": "cu_1", "type": "computer_call", "action": {"type": "click", "x": 1}, "status": "completed"},
        {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": 7, "arguments": {"a": 1}},
        {"id": "mcpr_1", "type": "mcp_approval_request", "server_label": "docs", "name": "search"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hi"}, 3]},
        "not an item",
        {"id": "x_1"},
    ]
    upstream.get("/responses/resp_1").respond(
        200, json=response_json(output=output, usage="lots", status=None, error=["?"])
    )

    response = await responses().get_response("resp_1")

    unknown, call, approval, message, missing = response.output
    assert isinstance(unknown, UnknownItem) and unknown.type == "computer_call"
    assert unknown.raw["action"] == {"type": "click", "x": 1}
    assert isinstance(call, FunctionCallItem) and call.name == "" and call.arguments == ""
    assert isinstance(approval, McpApprovalRequestItem) and approval.name == "search"
    assert isinstance(message, MessageItem) and message.text == "hi"
    assert isinstance(missing, UnknownItem) and missing.type == "(missing type)"
    assert response.status == "(missing status)" and not response.status_known
    assert response.usage is None and response.error is None
    assert [c.call_id for c in response.function_calls] == ["call_1"]
    assert [a.id for a in response.approval_requests] == ["mcpr_1"]


# --- against the sandbox ----------------------------------------------------------------------------


def sandbox_client(sandbox, make_client) -> ResponsesClient:
    return ResponsesClient(AssistantsClient(sandbox.base_url, sandbox.api_key, PROFILES["sandbox"]))


async def test_paging_walks_a_conversation_with_after_and_limit_to_its_end(sandbox, make_client):
    client = sandbox_client(sandbox, make_client)
    items = [{"type": "message", "role": "user", "content": f"question {n}"} for n in range(20)]
    conversation = await client.create_conversation(items=items, metadata={"test": "paging"})

    seen, after = [], None
    while True:
        page = await client.list_conversation_items(conversation.id, limit=7, order="asc", after=after)
        seen += [i.text for i in page.data]
        after = page.next_after
        if after is None:
            break

    assert seen == [f"question {n}" for n in range(20)]
    newest = await client.list_conversation_items(conversation.id, limit=2, order="desc")
    assert [i.text for i in newest.data] == ["question 19", "question 18"]
    assert [i.text async for i in client.iter_conversation_items(conversation.id)][-1] == "question 19"


async def test_the_sandbox_answers_its_errors_in_the_api_words(sandbox, make_client):
    client = sandbox_client(sandbox, make_client)

    with pytest.raises(NotFound, match=r"Response with id 'resp_nope' not found\."):
        await client.get_response("resp_nope")
    finished = await client.create_response(model="sandbox-answer", input="hi")
    with pytest.raises(BadRequest, match=r"Cannot cancel a synchronous response\."):
        await client.cancel_response(finished.id)


async def test_a_stream_resumes_after_the_last_sequence_number_seen(sandbox, make_client):
    client = sandbox_client(sandbox, make_client)
    created = await client.create_response(model="sandbox-functions", input="Weather?", background=True)

    async with client.stream_response(created.id) as events:
        first = [e async for e in events]
    async with client.stream_response(created.id, starting_after=5) as events:
        resumed = [e async for e in events]

    numbers = [e.sequence_number for e in first]
    assert numbers == list(range(len(first)))
    assert [e.sequence_number for e in resumed] == numbers[6:]
    assert [e.type for e in resumed] == [e.type for e in first[6:]]
    assert first[-1].type == "response.completed" and first[-1].response.id == created.id
    assert [c.name for c in first[-1].response.function_calls] == ["get_weather", "get_time"]


async def test_a_background_response_is_cancelled_and_listed_by_its_conversation(sandbox, make_client):
    client = sandbox_client(sandbox, make_client)
    conversation = await client.create_conversation()
    created = await client.create_response(
        model="sandbox-slow", input="Take your time.", background=True, conversation=conversation.id
    )

    cancelled = await client.cancel_response(created.id)
    listed = await client.list_responses(conversation_id=conversation.id)
    inputs = await client.list_input_items(created.id, order="asc")

    assert created.status == "queued" and cancelled.status == "cancelled"
    assert [r.id for r in listed.data] == [created.id]
    assert listed.data[0].conversation_id == conversation.id
    assert [i.text for i in inputs.data] == ["Take your time."]


async def test_a_stream_that_is_not_one_answers_the_response_itself(upstream, responses):
    upstream.post("/responses").mock(return_value=httpx.Response(200, json=response_json(status="queued")))

    async with responses().stream_create_response(model="m", input="hi") as events:
        got = [e async for e in events]

    assert [(e.type, e.response.status) for e in got] == [("response.queued", "queued")]
