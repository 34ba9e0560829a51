"""The index of the Responses shape: what the sandbox lists on a fresh install, ids added by hand or by an
agent application, filters, the go-to box, and the home page's newest conversations."""

from __future__ import annotations

import pytest

from runs_ui.models import ConversationEntry, ResponseSnapshot
from runs_ui.views import response_list
from tests.actions.conftest import post_form, text

from .conftest import body

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_import_backoff():
    response_list._import_retry_at = 0.0


async def test_a_fresh_install_indexes_what_the_sandbox_lists_on_the_first_visit(
    viewer_client, make_response, make_conversation, wait_response
):
    conversation = make_conversation(title="Indexed on the first visit")
    created = wait_response(
        make_response("sandbox-answer", "Hi.", conversation=conversation["id"]), "completed"
    )

    home = text(await viewer_client.get("/"))
    index = text(await viewer_client.get("/responses/"))

    assert "conversations and responses listed by the upstream" in home
    assert "Indexed on the first visit" in home  # the home page's newest conversations
    assert created["id"] in index and conversation["id"] in index
    entry = await ConversationEntry.objects.aget(conversation_id=conversation["id"])
    assert (entry.source, entry.latest_response_id, entry.latest_status) == (
        "listed",
        created["id"],
        "completed",
    )


async def test_filters_find_responses_waiting_for_a_person(viewer_client, make_response, wait_response):
    asking = wait_response(make_response("sandbox-functions", "Weather?"), "completed")
    plain = wait_response(make_response("sandbox-answer", "Hello."), "completed")
    for response in (asking, plain):
        await viewer_client.get(f"/responses/{response['id']}/")

    waiting = body(await viewer_client.get("/responses/?status=waiting"))
    searched = body(await viewer_client.get(f"/responses/?q={plain['id'][:20]}"))

    assert asking["id"] in waiting and plain["id"] not in waiting
    assert plain["id"] in searched and asking["id"] not in searched


async def test_ids_pasted_by_an_operator_are_added_and_bad_ones_are_refused(operator_client):
    added = await post_form(
        operator_client, "/responses/add/", {"ids": "resp_pasted1, conv_pasted1", "connection": "default"}
    )
    bad = await post_form(
        operator_client, "/responses/add/", {"ids": "thread_x resp_ok", "connection": "default"}
    )

    assert added.status_code == bad.status_code == 302
    assert await ResponseSnapshot.objects.filter(
        response_id="resp_pasted1", source="added", status=""
    ).aexists()
    assert await ConversationEntry.objects.filter(conversation_id="conv_pasted1", source="added").aexists()
    index = text(await operator_client.get("/responses/"))
    assert "not read yet" in index
    assert "Not response (resp_…) or conversation (conv_…) ids: thread_x" in index
    assert not await ResponseSnapshot.objects.filter(response_id="resp_ok").aexists()


async def test_an_agent_application_registers_responses_and_conversations_with_its_token(
    anon_client, settings
):
    settings.INDEX_API_TOKEN = "index-token-for-tests-0123456789"
    headers = {"Authorization": f"Bearer {settings.INDEX_API_TOKEN}"}
    payload = {
        "response_ids": ["resp_app1"],
        "conversation_ids": ["conv_app1"],
        "metadata": {"customer": "acme"},
    }

    first = await anon_client.post(
        "/api/responses/", payload, content_type="application/json", headers=headers
    )
    again = await anon_client.post(
        "/api/responses/", payload, content_type="application/json", headers=headers
    )
    refused = await anon_client.post("/api/responses/", payload, content_type="application/json")
    bad = await anon_client.post(
        "/api/responses/", {"response_ids": ["run_1"]}, content_type="application/json", headers=headers
    )

    assert (first.status_code, first.json()) == (201, {"registered": 2, "new": 2})
    assert (again.status_code, again.json()) == (200, {"registered": 2, "new": 0})
    assert refused.status_code == 401 and bad.status_code == 400
    snapshot = await ResponseSnapshot.objects.aget(response_id="resp_app1")
    assert snapshot.source == "registered" and snapshot.metadata == {"customer": "acme"}


async def test_the_goto_box_opens_responses_conversations_and_their_api_urls(viewer_client):
    cases = {
        "resp_abc": "/responses/resp_abc/",
        "conv_abc": "/conversations/conv_abc/",
        "https://api.openai.com/v1/responses/resp_abc": "/responses/resp_abc/",
        "https://x.services.ai.azure.com/api/projects/p/openai/v1/conversations/conv_abc/items": (
            "/conversations/conv_abc/"
        ),
    }
    for query, expected in cases.items():
        answer = await viewer_client.get("/go/", {"q": query})
        assert answer.status_code == 302 and answer["Location"] == expected, query
