"""`manage.py sandbox_seed`: demo data in every run status and step type, seeded once, read over HTTP."""

import time

import pytest

from tests.sandbox_server import running_sandbox

STATUSES = {
    "queued",
    "in_progress",
    "requires_action",
    "cancelling",
    "cancelled",
    "failed",
    "completed",
    "incomplete",
    "expired",
}


@pytest.fixture(scope="module")
def seeded():
    with running_sandbox(speed=1) as server:
        first = server.manage("sandbox_seed", "--big")
        with server.client() as client:
            yield server, client, first.stdout


def _all(client, path, **params):
    items, after = [], None
    while True:
        page = client.get(path, params={"limit": 100, **params, **({"after": after} if after else {})}).json()
        items += page["data"]
        if not page["has_more"]:
            return items
        after = page["last_id"]


def _demo_threads(client) -> dict:
    return {
        t["metadata"]["sandbox_demo"]: t for t in _all(client, "/threads") if "sandbox_demo" in t["metadata"]
    }


def test_seed_prints_a_one_line_summary(seeded):
    _, _, stdout = seeded
    assert stdout.count("\n") == 1 and stdout.startswith("sandbox_seed: 10 demo assistants")


def test_seed_makes_an_assistant_per_script_named_for_a_human(seeded):
    _, client, _ = seeded
    assistants = {a["metadata"]["sandbox_script"]: a for a in _all(client, "/assistants")}
    assert set(assistants) >= {
        "answer",
        "functions",
        "code",
        "search",
        "fail",
        "incomplete",
        "expire",
        "slow",
        "long",
        "azure",
    }
    assert assistants["functions"]["name"] == "Weather agent (functions)"


def test_seeded_runs_cover_every_status_and_step_type(seeded):
    _, client, _ = seeded
    statuses, step_types = set(), set()
    for key, thread in _demo_threads(client).items():
        if key == "big":
            continue
        for run in _all(client, f"/threads/{thread['id']}/runs"):
            statuses.add(run["status"])
            for step in _all(client, f"/threads/{thread['id']}/runs/{run['id']}/steps"):
                details = step["step_details"]
                step_types.update(
                    [details["type"]]
                    if details["type"] != "tool_calls"
                    else [c["type"] for c in details["tool_calls"]]
                )
    assert statuses == STATUSES
    assert step_types == {
        "message_creation",
        "function",
        "code_interpreter",
        "file_search",
        "bing_grounding",
        "activities",
    }


def test_finished_demo_runs_are_back_dated(seeded):
    _, client, _ = seeded
    thread = _demo_threads(client)["completed"]
    (run,) = _all(client, f"/threads/{thread['id']}/runs")
    assert run["status"] == "completed" and time.time() - run["completed_at"] > 3600


def test_the_hostile_thread_keeps_its_content_verbatim(seeded):
    _, client, _ = seeded
    thread = _demo_threads(client)["hostile"]
    texts = [
        m["content"][0]["text"]["value"]
        for m in _all(client, f"/threads/{thread['id']}/messages", order="asc")
    ]
    assert any("<script>alert(1)</script>" in t for t in texts)
    assert any("<img src=x onerror=alert(1)>" in t for t in texts)
    assert any("[click me](javascript:alert(1))" in t for t in texts)
    assert max(len(t) for t in texts) == 200_000
    (run,) = _all(client, f"/threads/{thread['id']}/runs")
    tool_step = _all(client, f"/threads/{thread['id']}/runs/{run['id']}/steps", order="asc")[0]
    call = tool_step["step_details"]["tool_calls"][0]["function"]
    assert "<script>" in call["arguments"] and "<script>" in call["output"]


def test_seeding_again_adds_no_demo_assistants_or_threads(seeded):
    server, client, _ = seeded
    before_threads, before_assistants = _all(client, "/threads"), _all(client, "/assistants")
    server.manage("sandbox_seed")
    assert len(_all(client, "/threads")) == len(before_threads)
    assert len(_all(client, "/assistants")) == len(before_assistants)


def test_a_thread_of_a_thousand_runs_pages_quickly_in_order(seeded):
    _, client, _ = seeded
    thread = _demo_threads(client)["big"]
    started = time.monotonic()
    runs = _all(client, f"/threads/{thread['id']}/runs")
    assert len(runs) == 1000 and len({r["id"] for r in runs}) == 1000
    assert [r["created_at"] for r in runs] == sorted((r["created_at"] for r in runs), reverse=True)
    assert time.monotonic() - started < 10  # ten pages of a hundred
    middle = client.get(
        f"/threads/{thread['id']}/runs", params={"limit": 3, "before": runs[500]["id"]}
    ).json()
    assert [r["id"] for r in middle["data"]] == [r["id"] for r in runs[497:500]]


# --- the Responses shape ----------------------------------------------------------------------------

RESPONSE_STATUSES = {"queued", "in_progress", "completed", "failed", "incomplete", "cancelled"}
ITEM_TYPES = {
    "message",
    "reasoning",
    "web_search_call",
    "file_search_call",
    "code_interpreter_call",
    "function_call",
    "function_call_output",
    "mcp_list_tools",
    "mcp_approval_request",
    "mcp_approval_response",
    "mcp_call",
}


def _demo_conversations(client) -> dict:
    return {
        c["metadata"]["sandbox_demo"]: c
        for c in _all(client, "/conversations")
        if "sandbox_demo" in c["metadata"]
    }


def _demo_responses(client) -> list[dict]:
    return [r for r in _all(client, "/responses") if "sandbox_demo" in r["metadata"]]


def test_seeded_responses_cover_every_status_and_item_type_and_are_listed_by_conversation(seeded):
    _, client, stdout = seeded
    assert "demo conversations and" in stdout and "response statuses:" in stdout
    conversations = _demo_conversations(client)
    responses = _demo_responses(client)
    assert {r["status"] for r in responses} == RESPONSE_STATUSES
    assert all(r["background"] for r in responses)
    item_types = set()
    for key, conversation in conversations.items():
        in_it = _all(client, "/responses", conversation_id=conversation["id"])
        assert in_it, f"{key} has no response"
        assert all(r["metadata"]["sandbox_demo"] == key for r in in_it)
        item_types |= {i["type"] for i in _all(client, f"/conversations/{conversation['id']}/items")}
    assert item_types >= ITEM_TYPES
    chained = [r for r in responses if r["metadata"]["sandbox_demo"] == "resp-chain"]
    assert [r["conversation"] for r in chained] == [None, None]
    assert {r["previous_response_id"] for r in chained} == {
        None,
        min(chained, key=lambda r: r["created_at"])["id"],
    }


def test_the_waiting_demos_wait_for_function_outputs_and_an_approval(seeded):
    _, client, _ = seeded
    conversations = _demo_conversations(client)
    (functions,) = _all(client, "/responses", conversation_id=conversations["resp-functions-waiting"]["id"])
    assert functions["status"] == "completed"
    assert [i["type"] for i in functions["output"]] == ["function_call", "function_call"]
    (mcp,) = _all(client, "/responses", conversation_id=conversations["resp-mcp-waiting"]["id"])
    assert [i["type"] for i in mcp["output"]] == ["mcp_list_tools", "mcp_approval_request"]
    answered = _all(
        client, "/responses", conversation_id=conversations["resp-mcp-approved"]["id"], order="asc"
    )
    assert [i["type"] for i in answered[1]["output"]] == ["mcp_call", "message"]


def test_finished_demo_responses_are_back_dated_and_the_long_one_has_600_items(seeded):
    _, client, _ = seeded
    conversations = _demo_conversations(client)
    (long,) = _all(client, "/responses", conversation_id=conversations["resp-long"]["id"])
    assert long["status"] == "completed" and len(long["output"]) == 600
    assert time.time() - long["completed_at"] > 3600


def test_the_hostile_conversation_keeps_its_content_verbatim(seeded):
    _, client, _ = seeded
    conversation = _demo_conversations(client)["resp-hostile"]
    assert conversation["metadata"]["note"] == "<img src=x onerror=alert('metadata')>"
    items = _all(client, f"/conversations/{conversation['id']}/items", order="asc")
    texts = [part["text"] for i in items if i["type"] == "message" for part in i["content"]]
    assert any("<script>alert(1)</script>" in t for t in texts) and max(map(len, texts)) == 200_000
    outputs = [i["output"] for i in items if i["type"] == "function_call_output"]
    assert outputs and all("<script>" in o for o in outputs)
    assert any("<script>" in i["arguments"] for i in items if i["type"] == "function_call")


def test_seeding_again_adds_no_demo_conversations_or_finished_responses(seeded):
    server, client, _ = seeded
    before_conversations = _all(client, "/conversations")
    before = {r["id"] for r in _demo_responses(client) if r["status"] != "in_progress"}
    server.manage("sandbox_seed")
    assert len(_all(client, "/conversations")) == len(before_conversations)
    assert before <= {r["id"] for r in _demo_responses(client)}
    waiting = _demo_conversations(client)["resp-functions-waiting"]
    assert len(_all(client, "/responses", conversation_id=waiting["id"])) == 1  # still waiting: not replaced
