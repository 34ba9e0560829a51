"""`make run`'s demo shows both shapes: the seeded sandbox's conversations and responses are indexed on the
first visit, every demo response and conversation page renders (hostile content inert), and the inbox lists
the demo responses waiting for a person."""

from __future__ import annotations

import re

import pytest

from runs_ui.models import ConversationEntry, ResponseSnapshot
from runs_ui.views import response_list

from .conftest import HX, assert_inert, text

pytestmark = pytest.mark.django_db(transaction=True)


async def test_the_demo_indexes_its_conversations_and_responses_and_every_page_renders(viewer_client, seeded):
    response_list._import_retry_at = 0.0

    home = text(await viewer_client.get("/"))

    assert "conversations and responses listed by the upstream" in home
    titles = {e.metadata.get("title") async for e in ConversationEntry.objects.all()}
    assert {"Weather, answered", "Docs search, approved", "Waiting for an approval"} <= titles
    statuses = {s async for s in ResponseSnapshot.objects.values_list("status", flat=True)}
    assert {"queued", "in_progress", "completed", "failed", "cancelled", "incomplete"} <= statuses
    async for snapshot in ResponseSnapshot.objects.all():
        page = await viewer_client.get(f"/responses/{snapshot.response_id}/")
        assert page.status_code == 200, snapshot.response_id
        assert_inert(page.content.decode())
    async for entry in ConversationEntry.objects.all():
        timeline = await viewer_client.get(
            f"/conversations/{entry.conversation_id}/?part=timeline", headers=HX
        )
        assert timeline.status_code == 200, entry.conversation_id
        assert_inert(timeline.content.decode())


async def test_the_inbox_lists_the_demo_responses_waiting_for_a_person(viewer_client, seeded):
    response_list._import_retry_at = 0.0
    await viewer_client.get("/responses/")

    inbox = await viewer_client.get("/inbox/")

    rows = re.findall(r'id="waiting-(resp_\w+)"', inbox.content.decode())
    waiting = {
        s.metadata.get("sandbox_demo") async for s in ResponseSnapshot.objects.filter(response_id__in=rows)
    }
    assert {"resp-functions-waiting", "resp-mcp-waiting"} <= waiting
    assert "resp-functions-done" not in waiting  # answered by its follow-up
