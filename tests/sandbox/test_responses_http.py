"""The Responses and Conversations surface over plain HTTP: errors, Azure's list endpoints, the clock."""

import asyncio
import json
import time

import httpx
import pytest

FAST = {"sandbox_speed": "50"}
TERMINAL = {"completed", "failed", "incomplete", "cancelled"}


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["x-request-id"].startswith("req_")
    body = response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def _create(api, spec, **body) -> dict:
    """A new response (`model=None` leaves the model out)."""
    payload = {
        key: value
        for key, value in {"model": "sandbox-answer", "input": "Hi", **body}.items()
        if value is not None
    }
    response = api.post("/responses", json=payload)
    assert response.status_code == 200, response.text
    spec.validate("Response", response.json())
    return response.json()


def _wait(api, spec, response_id: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = api.get(f"/responses/{response_id}").json()
        spec.validate("Response", body)
        if body["status"] in TERMINAL:
            return body
        assert time.monotonic() < deadline, f"{response_id} stayed {body['status']}"
        time.sleep(0.02)


@pytest.mark.parametrize(
    ("body", "param", "code", "message"),
    [
        ({"model": "m", "bogus": 1}, "bogus", "unknown_parameter", "Unknown parameter: 'bogus'."),
        (
            {"model": "m", "temperature": "hot"},
            "temperature",
            "invalid_type",
            "Invalid type for 'temperature': expected a decimal, but got a string instead.",
        ),
        (
            {"model": "m", "input": 5},
            "input",
            "invalid_type",
            "Invalid type for 'input': expected one of a string or an array of objects, "
            "but got an integer instead.",
        ),
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": "input_picture"}]}]},
            "input[0].content[0]",
            "invalid_value",
            "Invalid value: 'input_picture'. "
            "Supported values are: 'input_text', 'input_image', and 'input_file'.",
        ),
        (
            {
                "model": "m",
                "tools": [{"type": "code_interpreter", "container": {"type": "auto", "files": []}}],
            },
            "tools[0].container.files",
            "unknown_parameter",
            "Unknown parameter: 'tools[0].container.files'.",
        ),
        (
            {"model": "m", "input": [{"type": "function_call_output", "call_id": "call_1"}]},
            "input[0].output",
            "missing_required_parameter",
            "Missing required parameter: 'input[0].output'.",
        ),
        (
            {"model": "m", "max_output_tokens": 4},
            "max_output_tokens",
            "integer_below_min_value",
            "Invalid 'max_output_tokens': integer below minimum value. "
            "Expected a value >= 16, but got 4 instead.",
        ),
        ({"input": "Hi"}, "model", "missing_required_parameter", "Missing required parameter: 'model'."),
        (
            {"model": "m", "background": True, "store": False},
            "store",
            None,
            "Background mode requires `store` to be true.",
        ),
        (
            {"model": "m", "previous_response_id": "resp_1", "conversation": "conv_1"},
            "conversation",
            "mutually_exclusive_parameters",
            "Mutually exclusive parameters: Ensure you are only providing one of: "
            "'previous_response_id' or 'conversation'.",
        ),
        (
            {"model": "m", "previous_response_id": "resp_nope"},
            "previous_response_id",
            None,
            "Previous response with id 'resp_nope' not found.",
        ),
    ],
)
def test_create_response_bodies_are_checked_like_the_service(sandbox_api, spec, body, param, code, message):
    response = sandbox_api.post("/responses", json=body)
    error = _error(response, 400)
    spec.validate("ErrorResponse", response.json())
    assert (error["param"], error["code"], error["message"]) == (param, code, message)


def test_conversation_bodies_are_checked_like_the_service(sandbox_api):
    assert _error(sandbox_api.post("/conversations", json={"title": "x"}), 400)["param"] == "title"
    too_many = {"items": [{"role": "user", "content": "x"}] * 21}
    assert _error(sandbox_api.post("/conversations", json=too_many), 400)["code"] == "array_above_max_length"
    conversation = sandbox_api.post("/conversations", json={}).json()
    missing = _error(sandbox_api.post(f"/conversations/{conversation['id']}", json={}), 400)
    assert (missing["param"], missing["code"]) == ("metadata", "missing_required_parameter")
    items = _error(sandbox_api.post(f"/conversations/{conversation['id']}/items", json={"items": "x"}), 400)
    assert (
        items["message"]
        == "Invalid type for 'items': expected an array of objects, but got a string instead."
    )


def test_an_unknown_sandbox_model_is_not_found_and_lists_the_models(sandbox_api):
    error = _error(sandbox_api.post("/responses", json={"model": "sandbox-dance", "input": "x"}), 404)
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert error["message"].startswith(
        "The model `sandbox-dance` does not exist or you do not have access to it."
    )
    assert "`sandbox-functions`" in error["message"]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/responses/resp_nope", "Response with id 'resp_nope' not found."),
        ("/responses/resp_nope/input_items", "Response with id 'resp_nope' not found."),
        ("/conversations/conv_nope", "Conversation with id 'conv_nope' not found."),
        ("/conversations/conv_nope/items", "Conversation with id 'conv_nope' not found."),
    ],
)
def test_unknown_ids_are_404s_naming_them(sandbox_api, spec, path, message):
    response = sandbox_api.get(path)
    assert _error(response, 404)["message"] == message
    spec.validate("ErrorResponse", response.json())


def test_bad_query_parameters_are_400s(sandbox_api, spec):
    response = _create(sandbox_api, spec, metadata=FAST)
    base = f"/responses/{response['id']}"
    assert _error(sandbox_api.get(base, params={"include[]": "everything"}), 400)["param"] == "include"
    assert _error(sandbox_api.get(base, params={"stream": "maybe"}), 400)["param"] == "stream"
    not_background = _error(sandbox_api.get(base, params={"stream": "true"}), 400)
    assert not_background["param"] == "stream" and "background=true" in not_background["message"]
    background = _create(sandbox_api, spec, background=True, metadata=FAST)
    bad_cursor = sandbox_api.get(
        f"/responses/{background['id']}", params={"stream": "true", "starting_after": "x"}
    )
    assert _error(bad_cursor, 400)["param"] == "starting_after"
    assert (
        _error(sandbox_api.get(f"{base}/input_items", params={"after": "msg_elsewhere"}), 400)["param"]
        == "after"
    )
    assert (
        _error(sandbox_api.get("/responses", params={"agent_id": "no-version"}), 400)["param"] == "agent_id"
    )


def test_the_responses_endpoints_need_no_beta_header(sandbox):
    headers = {"OpenAI-Beta": ""}
    assert sandbox.request("GET", "/responses", headers=headers).status_code == 200
    assert sandbox.request("GET", "/assistants", headers=headers).status_code == 400


def _all(api, path, **params) -> list[dict]:
    found, after = [], None
    while True:
        page = api.get(path, params={"limit": 2, **params, **({"after": after} if after else {})}).json()
        found += page["data"]
        if not page["has_more"]:
            return found
        after = page["last_id"]


def test_responses_are_listed_as_azure_ai_foundry_lists_them(sandbox_api, spec):
    conversation = sandbox_api.post("/conversations", json={}).json()
    agent = {"type": "agent_reference", "name": "billing-agent", "version": "3"}
    in_conversation = [
        _create(sandbox_api, spec, conversation=conversation["id"], metadata=FAST)["id"] for _ in range(3)
    ]
    by_agent = _create(sandbox_api, spec, agent=agent, metadata=FAST)
    assert by_agent["agent"] == agent
    _create(sandbox_api, spec, store=False, metadata=FAST)

    listed = _all(sandbox_api, "/responses", conversation_id=conversation["id"])
    assert [r["id"] for r in listed] == in_conversation[::-1]
    assert [
        r["id"] for r in _all(sandbox_api, "/responses", conversation_id=conversation["id"], order="asc")
    ] == (in_conversation)
    for response in listed:
        spec.validate("Response", response)
    assert [r["id"] for r in _all(sandbox_api, "/responses", agent_name="billing-agent")] == [by_agent["id"]]
    assert [r["id"] for r in _all(sandbox_api, "/responses", agent_id="billing-agent:3")] == [by_agent["id"]]
    assert _all(sandbox_api, "/responses", agent_id="billing-agent:4") == []
    everything = _all(sandbox_api, "/responses", limit=100)
    assert all(r["store"] for r in everything)
    middle = sandbox_api.get(
        "/responses", params={"conversation_id": conversation["id"], "before": listed[2]["id"], "limit": 1}
    ).json()
    assert [r["id"] for r in middle["data"]] == [listed[1]["id"]]
    agent_conversations = sandbox_api.get("/conversations", params={"agent_name": "billing-agent"}).json()
    assert agent_conversations["data"] == []
    all_conversations = _all(sandbox_api, "/conversations")
    assert conversation["id"] in [c["id"] for c in all_conversations]
    for entry in all_conversations:
        spec.validate("ConversationResource", entry)


def test_a_response_run_by_a_sandbox_agent_needs_no_model(sandbox_api, spec):
    agent = {"type": "agent_reference", "name": "sandbox-functions"}
    response = _wait(
        sandbox_api, spec, _create(sandbox_api, spec, model=None, agent=agent, metadata=FAST)["id"]
    )
    assert response["model"] == "sandbox-functions" and response["agent"]["version"] == "1"
    assert [item["type"] for item in response["output"]] == ["function_call", "function_call"]


def test_a_long_response_pages_its_output_in_the_conversation(sandbox_api, spec):
    conversation = sandbox_api.post("/conversations", json={}).json()
    response = _create(
        sandbox_api,
        spec,
        model="sandbox-long",
        background=True,
        conversation=conversation["id"],
        metadata={"sandbox_speed": "200", "sandbox_items": "30"},
    )
    done = _wait(sandbox_api, spec, response["id"])
    assert len(done["output"]) == 30
    assert {item["type"] for item in done["output"]} == {
        "message",
        "reasoning",
        "web_search_call",
        "file_search_call",
        "code_interpreter_call",
    }
    items = _all(sandbox_api, f"/conversations/{conversation['id']}/items", order="asc", limit=7)
    assert [item["id"] for item in items[1:]] == [item["id"] for item in done["output"]]
    page = sandbox_api.get(f"/conversations/{conversation['id']}/items", params={"limit": 100}).json()
    spec.validate("ConversationItemList", page)


def test_an_answer_to_an_unknown_call_or_approval_request_is_refused(sandbox_api, spec):
    asked = _wait(
        sandbox_api,
        spec,
        _create(sandbox_api, spec, model="sandbox-mcp", background=True, metadata=FAST)["id"],
    )
    unknown_call = sandbox_api.post(
        "/responses",
        json={
            "model": "sandbox-mcp",
            "previous_response_id": asked["id"],
            "input": [{"type": "function_call_output", "call_id": "call_nope", "output": "x"}],
        },
    )
    assert (
        _error(unknown_call, 400)["message"]
        == "No tool call found for function call output with call_id call_nope."
    )
    unknown_request = sandbox_api.post(
        "/responses",
        json={
            "model": "sandbox-mcp",
            "previous_response_id": asked["id"],
            "input": [{"type": "mcp_approval_response", "approval_request_id": "mcpr_nope", "approve": True}],
        },
    )
    assert _error(unknown_request, 400)["message"] == "No MCP approval request found with id 'mcpr_nope'."


def test_a_follow_up_before_the_previous_response_ends_is_refused(sandbox_api, spec):
    slow = _create(sandbox_api, spec, model="sandbox-slow", background=True)
    follow_up = sandbox_api.post(
        "/responses", json={"model": "sandbox-answer", "input": "And?", "previous_response_id": slow["id"]}
    )
    assert _error(follow_up, 400)["message"] == f"Previous response with id '{slow['id']}' is still queued."
    sandbox_api.post(f"/responses/{slow['id']}/cancel")


async def test_concurrent_readers_on_two_processes_never_duplicate_an_item(sandbox, spec):
    with sandbox.peer() as peer:
        clients = [
            sandbox.async_client(),
            httpx.AsyncClient(base_url=peer.base_url, headers=sandbox.headers, timeout=30),
        ]
        try:
            created = await clients[0].post(
                "/responses",
                json={
                    "model": "sandbox-long",
                    "input": "Race",
                    "background": True,
                    # 40 items over 1.6 s: several rounds of reads overlap them, even on a busy machine.
                    "metadata": {
                        "sandbox_speed": "0.5",
                        "sandbox_items": "40",
                        "sandbox_queued_seconds": "0",
                    },
                },
            )
            response_id = created.json()["id"]
            rounds = 0
            deadline = time.monotonic() + 30
            while True:
                reads = await asyncio.gather(*(c.get(f"/responses/{response_id}") for c in clients * 6))
                assert all(r.status_code == 200 for r in reads)
                rounds += 1
                if reads[-1].json()["status"] == "completed":
                    break
                assert time.monotonic() < deadline
            stream = await clients[1].get(f"/responses/{response_id}", params={"stream": "true"})
        finally:
            for client in clients:
                await client.aclose()
    assert rounds > 1  # the readers really raced the clock
    output = reads[-1].json()["output"]
    assert len(output) == 40 and len({item["id"] for item in output}) == 40
    events = [json.loads(line[6:]) for line in stream.text.splitlines() if line.startswith("data: ")]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert sum(1 for e in events if e["type"] == "response.output_item.added") == 40


@pytest.mark.parametrize(
    ("method", "path", "body", "param"),
    [
        ("POST", "/responses", {"model": "sandbox-answer", "input": "a\u0000b"}, "input"),
        ("POST", "/conversations", {"metadata": {"note": "\ud800"}}, "metadata.note"),
        ("POST", "/threads", {"metadata": {"k": "a\u0000"}}, "metadata.k"),
        ("GET", "/responses/resp_%00", None, None),
        ("GET", "/conversations?agent_name=%00", None, None),
    ],
)
def test_strings_no_database_can_hold_are_refused_not_crashed_on(sandbox_api, method, path, body, param):
    """NUL and lone surrogates are valid JSON but fit neither PostgreSQL text nor UTF-8: 400, never 500."""
    content = None if body is None else json.dumps(body)
    response = sandbox_api.request(
        method, path, content=content, headers={"Content-Type": "application/json"}
    )
    error = _error(response, 400)
    assert error["param"] == param and "NUL" in error["message"]


def test_ids_and_names_too_long_to_store_are_refused(sandbox_api, spec):
    long_id = [{"type": "reasoning", "id": "rs_" + "1" * 100, "summary": []}]
    assert (
        _error(sandbox_api.post("/responses", json={"model": "m", "input": long_id}), 400)["param"]
        == "input[0].id"
    )
    agent = {"type": "agent_reference", "name": "a", "version": "v" * 100}
    assert _error(sandbox_api.post("/responses", json={"agent": agent}), 400)["param"] == "agent.version"
    assert _create(sandbox_api, spec, model="m" * 300, metadata=FAST)["model"] == "m" * 300


def test_calls_cut_short_by_a_cancel_do_not_block_the_conversation(sandbox_api, spec):
    conversation = sandbox_api.post("/conversations", json={}).json()
    body = {"model": "sandbox-functions", "conversation": conversation["id"], "background": True}
    started = _create(
        sandbox_api, spec, **body, metadata={"sandbox_speed": "2", "sandbox_queued_seconds": "0"}
    )
    deadline = time.monotonic() + 10
    while not sandbox_api.get(f"/responses/{started['id']}").json()["output"]:
        assert time.monotonic() < deadline  # the first call has begun streaming its arguments
        time.sleep(0.02)
    cancelled = sandbox_api.post(f"/responses/{started['id']}/cancel").json()
    assert [item["status"] for item in cancelled["output"]] == ["incomplete"]
    after = _create(sandbox_api, spec, model="sandbox-answer", conversation=conversation["id"], metadata=FAST)
    assert after["status"] == "completed"


def test_a_long_response_has_a_ceiling(sandbox_api):
    body = {"model": "sandbox-long", "input": "x", "metadata": {"sandbox_items": "1000000"}}
    assert _error(sandbox_api.post("/responses", json=body), 400)["param"] == "metadata.sandbox_items"
