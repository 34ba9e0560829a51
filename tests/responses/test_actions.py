"""Acting on responses: cancel with a reason, answer function calls and MCP approvals by a follow-up
response, start a response — each for operators only, audited, refused when sent twice."""

from __future__ import annotations

import json

import pytest

from runs_ui.models import AuditRecord, ResponseSnapshot
from tests.actions.conftest import drawn_token, post_form, post_start, text

from .conftest import body

pytestmark = pytest.mark.django_db(transaction=True)


async def _form_fields(client, path: str) -> dict:
    """The answer form's hidden `asked` field, as drawn."""
    import re

    page = body(await client.get(path))
    asked = re.search(r'name="asked" value="([^"]*)"', page)
    return {"asked": asked.group(1)} if asked else {}


def responses_of(upstream, conversation_id: str) -> list[dict]:
    return upstream.api("GET", "/responses", params={"conversation_id": conversation_id, "order": "asc"})[
        "data"
    ]


async def test_an_operator_cancels_a_background_response_with_a_reason(
    operator_client, make_response, upstream
):
    created = make_response("sandbox-slow", "Take your time.", speed=1)
    path = f"/responses/{created['id']}/cancel/"

    form = await operator_client.get(path)
    refused = await post_form(operator_client, path, {"reason": ""})
    done = await post_form(operator_client, path, {"reason": "Looping on the same search."})

    assert form.status_code == 200 and "Cancel this response?" in text(form)
    assert refused.status_code == 400 and "Give a reason" in text(refused)
    assert done.status_code == 302 and done["Location"] == f"/responses/{created['id']}/"
    assert upstream.api("GET", f"/responses/{created['id']}")["status"] == "cancelled"
    record = await AuditRecord.objects.aget(action="cancel_response")
    assert (record.run_id, record.outcome, record.reason) == (
        created["id"],
        "succeeded",
        "Looping on the same search.",
    )
    again = await operator_client.get(path)
    assert "already ended (cancelled)" in text(again)


async def test_a_response_created_without_background_cannot_be_cancelled_here(operator_client, make_response):
    created = make_response("sandbox-answer", "Quick.", background=False)

    page = await post_form(operator_client, f"/responses/{created['id']}/cancel/", {"reason": "why not"})

    assert page.status_code == 400 and "already ended" in text(page)
    assert not await AuditRecord.objects.aexists()


async def test_function_calls_are_answered_by_a_follow_up_in_the_conversation(
    operator_client, make_response, wait_response, make_conversation, upstream
):
    conversation = make_conversation()
    asking = wait_response(
        make_response("sandbox-functions", "Weather and time?", conversation=conversation["id"]), "completed"
    )
    calls = {i["name"]: i["call_id"] for i in asking["output"] if i["type"] == "function_call"}
    path = f"/responses/{asking['id']}/answer/"
    # The dashboard learns the conversation's responses when it is opened (the sandbox lists them).
    await operator_client.get(f"/conversations/{conversation['id']}/")
    inbox = text(await operator_client.get("/inbox/"))
    assert asking["id"] in inbox and "get_weather" in inbox

    sent = await post_form(
        operator_client,
        path,
        {
            **await _form_fields(operator_client, path),
            f"output_{calls['get_weather']}": json.dumps({"sky": "clear"}),
            f"output_{calls['get_time']}": json.dumps({"time": "14:05"}),
            "require_json": "on",
        },
    )

    assert sent.status_code == 302
    first, follow_up = responses_of(upstream, conversation["id"])
    assert first["id"] == asking["id"] and sent["Location"] == f"/responses/{follow_up['id']}/"
    done = wait_response(follow_up, "completed")
    [answer] = [i for i in done["output"] if i["type"] == "message"]
    assert '`get_weather` returned: {"sky": "clear"}' in answer["content"][0]["text"]
    snapshot = await ResponseSnapshot.objects.aget(response_id=asking["id"])
    assert (snapshot.waiting, snapshot.answered_by) == (False, follow_up["id"])
    assert asking["id"] not in text(await operator_client.get("/inbox/"))
    record = await AuditRecord.objects.aget(action="answer_response")
    assert record.outcome == "succeeded" and record.run_id == asking["id"]
    assert record.payload["tool_outputs"][0]["output"] in ('{"sky": "clear"}', '{"time": "14:05"}')
    # Sent twice (a double click, a resent form): refused, and nothing more reaches the upstream.
    again = await post_form(operator_client, path, {"asked": " ".join(calls.values())})
    assert again.status_code == 400 and "already answered" in text(again)
    assert len(responses_of(upstream, conversation["id"])) == 2


async def test_a_response_without_a_conversation_is_answered_after_it(
    operator_client, make_response, wait_response, upstream
):
    asking = wait_response(make_response("sandbox-functions", "Weather?"), "completed")
    calls = [i["call_id"] for i in asking["output"] if i["type"] == "function_call"]
    path = f"/responses/{asking['id']}/answer/"

    missing = await post_form(operator_client, path, {**await _form_fields(operator_client, path)})
    sent = await post_form(
        operator_client,
        path,
        {**await _form_fields(operator_client, path), **{f"output_{c}": "42" for c in calls}},
    )

    assert missing.status_code == 400 and "every call needs one" in text(missing)
    follow_up_id = sent["Location"].split("/")[2]
    follow_up = upstream.api("GET", f"/responses/{follow_up_id}")
    assert follow_up["previous_response_id"] == asking["id"]


@pytest.mark.parametrize("approve", [True, False])
async def test_an_mcp_approval_request_is_approved_or_denied(
    operator_client, make_response, wait_response, make_conversation, upstream, approve
):
    conversation = make_conversation()
    asking = wait_response(
        make_response("sandbox-mcp", "Refund policy?", conversation=conversation["id"]), "completed"
    )
    [request] = [i for i in asking["output"] if i["type"] == "mcp_approval_request"]
    path = f"/responses/{asking['id']}/answer/"
    await operator_client.get(f"/responses/{asking['id']}/")  # opened: now the index knows it
    assert "Review…" in text(await operator_client.get("/inbox/"))

    decision = {f"approve_{request['id']}": "approve" if approve else "deny"}
    if not approve:
        decision[f"reason_{request['id']}"] = "Not with customer data."
    sent = await post_form(operator_client, path, {**await _form_fields(operator_client, path), **decision})

    assert sent.status_code == 302
    follow_up = wait_response({"id": sent["Location"].split("/")[2]}, "completed")
    types = [i["type"] for i in follow_up["output"]]
    assert types == (["mcp_call", "message"] if approve else ["message"])
    items = upstream.api("GET", f"/conversations/{conversation['id']}/items", params={"order": "asc"})["data"]
    [answer] = [i for i in items if i["type"] == "mcp_approval_response"]
    assert answer["approve"] is approve and answer["reason"] == (
        None if approve else "Not with customer data."
    )


async def test_a_response_is_started_in_a_conversation_and_in_a_new_one(
    operator_client, make_conversation, wait_response, upstream
):
    conversation = make_conversation()

    in_it = await post_start(
        operator_client,
        f"/conversations/{conversation['id']}/responses/new/",
        {"input": "Summarise it.", "model": "sandbox-answer"},
    )
    new = await post_start(
        operator_client, "/responses/new/", {"input": "Start afresh.", "model": "sandbox-answer"}
    )

    started = wait_response({"id": in_it["Location"].split("/")[2]}, "completed")
    assert started["conversation"]["id"] == conversation["id"] and started["background"] is True
    fresh = wait_response({"id": new["Location"].split("/")[2]}, "completed")
    assert fresh["conversation"]["id"] != conversation["id"]
    records = [r async for r in AuditRecord.objects.filter(action="create_response").order_by("created_at")]
    assert [(r.run_id, r.outcome) for r in records] == [
        (started["id"], "succeeded"),
        (fresh["id"], "succeeded"),
    ]
    assert records[1].thread_id == fresh["conversation"]["id"]


async def test_a_start_form_sent_twice_starts_one_response(operator_client, make_conversation, upstream):
    conversation = make_conversation()
    path = f"/conversations/{conversation['id']}/responses/new/"
    token = await drawn_token(operator_client, path)
    form = {"input": "Once, please.", "model": "sandbox-answer", "form_token": token}
    first = await post_form(operator_client, path, form)
    second = await post_form(operator_client, path, form)
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]  # the second lands on what the first started
    records = [r async for r in AuditRecord.objects.filter(action="create_response")]
    assert len(records) == 1 and records[0].form_token == token
    items = upstream.api("GET", f"/conversations/{conversation['id']}/items")["data"]
    assert len([i for i in items if i.get("role") == "user"]) == 1


async def test_a_viewer_is_refused_every_action_and_nothing_reaches_the_upstream(
    viewer_client, make_response, wait_response, make_conversation, upstream
):
    conversation = make_conversation()
    asking = wait_response(
        make_response("sandbox-functions", "Weather?", conversation=conversation["id"]), "completed"
    )
    slow = make_response("sandbox-slow", "Slowly.", speed=1)

    answers = await post_form(viewer_client, f"/responses/{asking['id']}/answer/", {"asked": "x"})
    cancel = await post_form(viewer_client, f"/responses/{slow['id']}/cancel/", {"reason": "no"})
    start = await post_form(
        viewer_client, f"/conversations/{conversation['id']}/responses/new/", {"input": "hi", "model": "m"}
    )

    assert (answers.status_code, cancel.status_code, start.status_code) == (403, 403, 403)
    assert len(responses_of(upstream, conversation["id"])) == 1
    assert upstream.api("GET", f"/responses/{slow['id']}")["status"] != "cancelled"
    assert not await AuditRecord.objects.aexists()


async def test_create_thread_and_run_works_on_every_connection(operator_client, upstream):
    from runs_ui.connections import encrypt_key
    from runs_ui.models import Connection

    await Connection.objects.acreate(
        slug="second",
        name="Second",
        profile="sandbox",
        base_url=upstream.base_url,
        api_key_encrypted=encrypt_key(upstream.api_key),
    )
    assistant = upstream.api(
        "POST", "/assistants", json={"model": "gpt-4o", "metadata": {"sandbox_script": "answer"}}
    )

    page = await operator_client.get("/new/")
    started = await post_start(
        operator_client, "/c/second/new/", {"assistant_id": assistant["id"], "message": "On the second one."}
    )

    assert 'href="/c/second/new/"' in body(page)
    assert started.status_code == 302 and started["Location"].startswith("/c/second/threads/thread_")
    record = await AuditRecord.objects.aget(action="create_thread_and_run")
    assert record.connection == "second" and record.outcome == "succeeded"
