"""What the live socket (consumers.py) subscribes to for pages of the Responses shape, and what the index and
the inbox follow of it: a response page its response, a conversation page the conversation and its
unfinished responses; the index and inbox the unfinished responses the index knows."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404

from ..connections import aget_client
from ..models import ConversationEntry, ResponseSnapshot
from ..upstream.objects import is_id
from ..upstream.responses_objects import RESPONSE_TERMINAL
from . import bus
from . import response_fragments as rf
from .budget import Priority

#: A conversation page resyncs the saved states of at most this many of its unfinished responses.
ACTIVE_LIMIT = 50


def _unfinished():
    return ResponseSnapshot.objects.exclude(status__in=[*RESPONSE_TERMINAL, ""])


async def subscribe(consumer, kwargs) -> list[str]:
    """Register the page's interest with the response watcher; returns the groups to join (and sets the
    keys whose saved states a (re)connecting page starts from). Http404 for what no page shows."""
    conn = kwargs["conn"]
    await aget_client(conn)  # an unknown connection is a 404
    if kwargs["scope"] == "response":
        response_id = kwargs["response_id"]
        if not is_id("response", response_id):
            raise Http404
        key = bus.response_key(conn, response_id)
        consumer.state_keys = [key]
        snapshot = await ResponseSnapshot.objects.filter(connection=conn, response_id=response_id).afirst()
        # A response known to have ended costs nothing to keep on screen.
        if snapshot is None or snapshot.status not in RESPONSE_TERMINAL:
            consumer._watch("response", conn, "", response_id, Priority.FOREGROUND)
        return [bus.group_of(key)]
    conversation_id = kwargs["conversation_id"]
    if not is_id("conversation", conversation_id):
        raise Http404
    key = bus.conversation_key(conn, conversation_id)
    consumer._watch("conversation", conn, conversation_id, None, Priority.THREAD)
    active = (
        _unfinished()
        .filter(connection=conn, conversation_id=conversation_id)
        .values_list("response_id", flat=True)[:ACTIVE_LIMIT]
    )
    consumer.state_keys = [key] + [bus.response_key(conn, r) async for r in active]
    return [bus.group_of(key)]


async def followed(page: str) -> list[tuple]:
    """The unfinished responses the index (page "index") or the inbox (page "inbox") follows, as the
    consumer's interest: ("response", conn, "", response id)."""
    limit = settings.LIVE_INDEX_WATCH_LIMIT if page == "index" else settings.LIVE_INBOX_WATCH_LIMIT
    rows = _unfinished().order_by("-last_seen").values_list("connection", "response_id")[:limit]
    return [("response", conn, "", response_id) async for conn, response_id in rows]


async def index_cells() -> list[str]:
    """The index's status cells of responses and conversations, from the index (no upstream calls)."""
    limit = settings.LIVE_INDEX_WATCH_LIMIT
    responses = ResponseSnapshot.objects.exclude(status="").order_by("-last_seen")[:limit]
    cells = [rf.response_cell(s.connection, s.response_id, s.status, s.error_code) async for s in responses]
    conversations = ConversationEntry.objects.exclude(latest_status="").order_by("-last_seen")[:limit]
    cells += [
        rf.conversation_cell(e.connection, e.conversation_id, e.latest_status, e.latest_error_code)
        async for e in conversations
    ]
    return cells
