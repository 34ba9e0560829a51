"""Responses and conversations the dashboard learns from upstreams that can list them (Azure AI Foundry's
new agents, the sandbox), and which connections speak the Responses shape."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from . import response_index
from .connections import connections_speaking
from .upstream.responses_client import ResponsesClient


async def import_listed(client: ResponsesClient, limit: int = 100) -> int:
    """Index the newest `limit` conversations and responses; returns how many were listed."""
    conversations = await client.list_conversations(limit=limit, order="desc")
    responses = await client.list_responses(limit=limit, order="desc")
    now = timezone.now()
    for position, conversation in enumerate(c for c in conversations.data if c.id):
        # "Seen" in the upstream's order (newest first), so the index lists them that way too.
        await response_index.record_conversation(
            client.name,
            conversation.id,
            "listed",
            conversation,
            seen_at=now - timedelta(microseconds=position),
        )
    await response_index.record_responses(client.name, responses.data, "listed", touch=False)
    return len(conversations.data) + len(responses.data)


async def responses_connections() -> list[tuple[str, str]]:
    return await connections_speaking("responses")
