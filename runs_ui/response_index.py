"""The response index: every response and conversation the dashboard has shown or been told about.

OpenAI's Responses API cannot list responses or conversations, so this is what the index page lists and
the inbox reads. Pages and the watcher record what they fetch here. A response that ended asking for
function outputs or an approval waits for a person until a follow-up is known: one that names it as
`previous_response_id`, or a later response in its conversation (the API refuses a follow-up that leaves
a call unanswered).
"""

from __future__ import annotations

import time
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from .index import _count, _dt
from .models import ConversationEntry, ResponseSnapshot
from .upstream.objects import is_id
from .upstream.responses_objects import Conversation, Response

#: Output item ids kept per response, for grouping a conversation's items (a response writes few).
MAX_OUTPUT_IDS = 5000
#: Function arguments kept for the inbox; the response's page shows them whole.
MAX_ARGUMENTS = 2000

SNAPSHOT_FIELDS = [
    "status",
    "model",
    "agent",
    "error_code",
    "background",
    "created_at",
    "ended_at",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "metadata",
    "output_ids",
    "calls",
    "approvals",
    "conversation_id",
    "previous_response_id",
    "entry",
    "last_seen",
]


def snapshot_values(response: Response) -> dict:
    usage = response.usage
    error = (response.error.code or "error") if response.error else ""
    ended = response.completed_at if response.is_terminal else None
    return {
        "status": response.status[:40],
        "model": response.model[:200],
        "agent": response.agent[:200],
        "error_code": error[:100],
        "background": response.background,
        "created_at": _dt(response.created_at),
        "ended_at": _dt(ended),
        "input_tokens": _count(usage.input_tokens) if usage else None,
        "output_tokens": _count(usage.output_tokens) if usage else None,
        "total_tokens": _count(usage.total_tokens) if usage else None,
        "metadata": response.metadata,
        "output_ids": [i.id for i in response.output if i.id][:MAX_OUTPUT_IDS],
        "calls": [
            {"call_id": c.call_id, "name": c.name, "arguments": c.arguments[:MAX_ARGUMENTS], "item_id": c.id}
            for c in response.function_calls
        ]
        if response.status == "completed"
        else [],
        "approvals": [
            {
                "id": a.id,
                "server_label": a.server_label,
                "name": a.name,
                "arguments": a.arguments[:MAX_ARGUMENTS],
            }
            for a in response.approval_requests
        ]
        if response.status == "completed"
        else [],
        "conversation_id": response.conversation_id
        if is_id("conversation", response.conversation_id)
        else "",
        "previous_response_id": response.previous_response_id
        if is_id("response", response.previous_response_id)
        else "",
    }


async def record_conversation(
    connection: str,
    conversation_id: str,
    source: str = "opened",
    conversation: Conversation | None = None,
    seen_at: datetime | None = None,
    touch: bool = True,
) -> ConversationEntry | None:
    """Remember a conversation (creating its entry if new); None for an id no page can be made for."""
    if not is_id("conversation", conversation_id):
        return None
    defaults = {"last_seen": seen_at or timezone.now()} if touch else {}
    if conversation is not None:
        defaults["metadata"] = conversation.metadata
        defaults["upstream_created_at"] = _dt(conversation.created_at)
    entry, _ = await ConversationEntry.objects.aupdate_or_create(
        connection=connection,
        conversation_id=conversation_id,
        defaults=defaults,
        create_defaults={"last_seen": seen_at or timezone.now(), **defaults, "source": source},
    )
    return entry


async def record_responses(
    connection: str, responses: list[Response], source: str = "opened", *, touch: bool = True
) -> None:
    """Upsert snapshots of responses just fetched (and their conversations' entries and latest columns),
    and settle which responses still wait for a person."""
    responses = [r for r in responses if is_id("response", r.id)]
    if not responses:
        return
    entries = {}
    for conversation_id in {r.conversation_id for r in responses if r.conversation_id}:
        entry = await record_conversation(connection, conversation_id, source, touch=touch)
        if entry is not None:
            entries[conversation_id] = entry
    now = timezone.now()
    rows = []
    for r in responses:
        values = snapshot_values(r)
        values["entry"] = entries.get(values["conversation_id"])
        values["last_seen"] = now
        rows.append(
            ResponseSnapshot(
                connection=connection,
                response_id=r.id,
                source=source,
                waiting=bool(values["calls"] or values["approvals"]),
                **values,
            )
        )
    await ResponseSnapshot.objects.abulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["connection", "response_id"],
        update_fields=[*SNAPSHOT_FIELDS, "waiting"],
    )
    await settle_answers(connection, responses)
    for entry in entries.values():
        await refresh_latest(entry.pk)


async def settle_answers(connection: str, responses: list[Response]) -> None:
    """Responses waiting for a person that a known follow-up answered — among these, or answered by these
    (their previous response, earlier ones of their conversation) — stop waiting. Only waiting responses
    are looked at: a few, whatever the number of responses recorded."""
    known = ResponseSnapshot.objects.filter(connection=connection)
    ids = [r.id for r in responses]
    await known.filter(response_id__in=ids, waiting=True).exclude(answered_by="").aupdate(waiting=False)
    previous = [r.previous_response_id for r in responses if r.previous_response_id]
    conversations = [r.conversation_id for r in responses if r.conversation_id]
    candidates = known.filter(waiting=True, answered_by="").filter(
        Q(response_id__in=[*ids, *previous]) | Q(conversation_id__in=conversations)
    )
    async for snapshot in candidates:
        follows = Q(previous_response_id=snapshot.response_id)
        if snapshot.conversation_id and snapshot.created_at:
            follows |= Q(conversation_id=snapshot.conversation_id, created_at__gt=snapshot.created_at)
        follow_up = (
            await known.filter(follows)
            .exclude(response_id=snapshot.response_id)
            .order_by("created_at")
            .afirst()
        )
        if follow_up is not None:
            await known.filter(pk=snapshot.pk).aupdate(answered_by=follow_up.response_id, waiting=False)


async def mark_answered(connection: str, response_id: str, by: str) -> None:
    """A follow-up was created here: the response no longer waits (whatever the follow-up's fate)."""
    await ResponseSnapshot.objects.filter(connection=connection, response_id=response_id).aupdate(
        answered_by=by, waiting=False
    )


async def refresh_latest(entry_pk: int) -> None:
    latest = await ResponseSnapshot.objects.filter(entry_id=entry_pk).order_by("-created_at", "-id").afirst()
    if latest is None:
        return
    await ConversationEntry.objects.filter(pk=entry_pk).aupdate(
        latest_response_id=latest.response_id,
        latest_status=latest.status,
        latest_model=latest.model or latest.agent,
        latest_error_code=latest.error_code,
        latest_response_created_at=latest.created_at,
    )


async def record_transition(
    connection: str, response: Response, observed_at: float | None = None
) -> ResponseSnapshot | None:
    """The watcher saw `response` in a status: store it and, if the status is new, when it was seen."""
    snapshot = await ResponseSnapshot.objects.filter(connection=connection, response_id=response.id).afirst()
    if snapshot is None:
        await record_responses(connection, [response], touch=False)
        snapshot = await ResponseSnapshot.objects.filter(
            connection=connection, response_id=response.id
        ).afirst()
        if snapshot is None:
            return None
    transitions = list(snapshot.transitions or [])
    if not transitions or transitions[-1].get("status") != response.status:
        transitions.append({"status": response.status, "at": round(observed_at or time.time(), 3)})
    await record_responses(connection, [response], touch=False)
    await ResponseSnapshot.objects.filter(pk=snapshot.pk).aupdate(transitions=transitions)
    snapshot.transitions = transitions
    return snapshot


async def register(
    connection: str, *, response_ids=(), conversation_ids=(), source: str = "registered", metadata=None
) -> int:
    """Ids an agent application or a person gave (not read from the upstream yet); returns how many were
    new. A response registered this way shows "not read yet" until its page or the watcher reads it."""
    new = 0
    for conversation_id in dict.fromkeys(conversation_ids):
        existed = await ConversationEntry.objects.filter(
            connection=connection, conversation_id=conversation_id
        ).aexists()
        entry = await record_conversation(connection, conversation_id, source)
        if entry is not None and metadata:
            await ConversationEntry.objects.filter(pk=entry.pk).aupdate(
                metadata={**entry.metadata, **metadata}
            )
        new += entry is not None and not existed
    for response_id in dict.fromkeys(response_ids):
        if not is_id("response", response_id):
            continue
        _, created = await ResponseSnapshot.objects.aget_or_create(
            connection=connection,
            response_id=response_id,
            defaults={"source": source, "metadata": metadata or {}},
        )
        if not created:
            await ResponseSnapshot.objects.filter(connection=connection, response_id=response_id).aupdate(
                last_seen=timezone.now()
            )
        new += created
    return new


def search(queryset, *, q: str = "", status: str = ""):
    """Filter response snapshots as the index page's form asks."""
    if q:
        queryset = queryset.filter(
            Q(response_id__icontains=q)
            | Q(conversation_id__icontains=q)
            | Q(model__icontains=q)
            | Q(agent__icontains=q)
            | Q(metadata__icontains=q)
        )
    if status == "waiting":
        queryset = queryset.filter(waiting=True)
    elif status:
        queryset = queryset.filter(status=status)
    return queryset
