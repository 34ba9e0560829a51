"""Demo data of the Responses shape for `manage.py sandbox_seed`: conversations and background responses
of every script and status.

Like the Assistants demo (demo.py), finished responses are created back-dated and advanced to now, and
every demo object carries metadata `sandbox_demo=<key>`: that is how a second seeding finds them, and how
a dashboard finds them through the list endpoints (`GET /conversations`, `GET /responses?conversation_id=`)
or through `seed()`'s answer, which names every demo conversation and response by key. Demos meant to
look alive (waiting for outputs or an approval, queued, in progress) get a fresh response whenever their
last one has moved on.
"""

import json
import time
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q

from . import responses_engine as engine
from . import responses_operations as operations
from .hostile import HOSTILE_TEXTS
from .models import Conversation, Item, Response

HOUR = 3600.0
DAY = 86_400.0


@dataclass(frozen=True)
class Turn:
    """One response of a demo: its model, what it is given, and when (seconds after the demo began)."""

    model: str
    input: object = None
    after: float = 0.0
    metadata: dict = field(default_factory=dict)
    # Answer the previous response's function calls / approval request instead of `input`.
    answer_calls: bool = False
    approve: bool | None = None
    cancel_after: float | None = None


@dataclass(frozen=True)
class Demo:
    key: str
    title: str
    turns: tuple
    # Seconds before now the demo began; None = it begins now and is left to run live.
    ago: float | None
    in_conversation: bool = True


FINISHED = [
    Demo(
        "resp-answer",
        "Two questions, two answers",
        (
            Turn("sandbox-answer", "How do I reset my password?"),
            Turn("sandbox-answer", "And my e-mail?", 120),
        ),
        3 * HOUR,
    ),
    Demo(
        "resp-functions-done",
        "Weather, answered",
        (
            Turn("sandbox-functions", "Weather and time in Paris?"),
            Turn("sandbox-functions", after=20, answer_calls=True),
        ),
        2.9 * HOUR,
    ),
    Demo(
        "resp-mcp-approved",
        "Docs search, approved",
        (Turn("sandbox-mcp", "What is the refund policy?"), Turn("sandbox-mcp", after=30, approve=True)),
        2.8 * HOUR,
    ),
    Demo(
        "resp-mcp-denied",
        "Docs search, denied",
        (Turn("sandbox-mcp", "Search the internal docs."), Turn("sandbox-mcp", after=45, approve=False)),
        2.7 * HOUR,
    ),
    Demo(
        "resp-tools",
        "Every kind of item",
        (Turn("sandbox-tools", "Weather, refunds and sales?"),),
        2.6 * HOUR,
    ),
    Demo(
        "resp-failed",
        "A tool that crashes",
        (Turn("sandbox-fail", "Load every row and summarise."),),
        2.5 * HOUR,
    ),
    Demo(
        "resp-incomplete",
        "Cut off at max_output_tokens",
        (Turn("sandbox-incomplete", "Write the full quarterly report."),),
        2.4 * HOUR,
    ),
    Demo(
        "resp-cancelled",
        "Cancelled half-way",
        (Turn("sandbox-slow", "Research the market in depth.", cancel_after=30),),
        2.3 * HOUR,
    ),
    Demo(
        "resp-long",
        "A response with 600 items",
        (Turn("sandbox-long", "Process the whole batch."),),
        2.2 * HOUR,
    ),
    Demo(
        "resp-chain",
        "Chained by previous_response_id",
        (Turn("sandbox-answer", "What is the sandbox?"), Turn("sandbox-answer", "Tell me more.", 300)),
        2.1 * HOUR,
        in_conversation=False,
    ),
]
HELD = [
    Demo(
        "resp-functions-waiting",
        "Waiting for your function outputs",
        (Turn("sandbox-functions", "What's the weather and time right now?"),),
        None,
    ),
    Demo(
        "resp-mcp-waiting",
        "Waiting for an approval",
        (Turn("sandbox-mcp", "Search the docs for the warranty."),),
        None,
    ),
    Demo(
        "resp-queued",
        "Waiting in the queue",
        (
            Turn(
                "sandbox-answer",
                "Can you look into this later?",
                metadata={"sandbox_queued_seconds": str(30 * DAY)},
            ),
        ),
        None,
    ),
    Demo(
        "resp-in-progress",
        "Thinking for a long time",
        (
            Turn(
                "sandbox-slow",
                "Research everything about tides.",
                metadata={"sandbox_speed": "0.01", "sandbox_queued_seconds": "0"},
            ),
        ),
        None,
    ),
    Demo("resp-live-slow", "Live: a slow research response", (Turn("sandbox-slow", "Watch me work."),), None),
]


@dataclass
class Seeded:
    """What the Responses demo holds: each demo's conversation (if any) and responses, by key."""

    conversations: dict[str, str] = field(default_factory=dict)
    responses: dict[str, list[str]] = field(default_factory=dict)
    # Demos created by this seeding, and live responses it started.
    new: int = 0
    live: int = 0


def _body(demo: Demo, turn: Turn, previous: Response | None, conversation: Conversation | None) -> dict:
    body = {
        "model": turn.model,
        "background": True,
        "metadata": {"sandbox_speed": "1", **turn.metadata, "sandbox_demo": demo.key},
    }
    if conversation is not None:
        body["conversation"] = conversation.public_id
    elif previous is not None:
        body["previous_response_id"] = previous.public_id
    if turn.answer_calls:
        calls = [item for item in engine.output_of(previous) if item["type"] == "function_call"]
        outputs = {"get_weather": {"temperature": "22°C", "sky": "sunny"}, "get_time": {"time": "14:05"}}
        body["input"] = [
            {
                "type": "function_call_output",
                "call_id": c["call_id"],
                "output": json.dumps(outputs.get(c["name"], {})),
            }
            for c in calls
        ]
    elif turn.approve is not None:
        request = next(item for item in engine.output_of(previous) if item["type"] == "mcp_approval_request")
        answer = {
            "type": "mcp_approval_response",
            "approval_request_id": request["id"],
            "approve": turn.approve,
        }
        if not turn.approve:
            answer["reason"] = "Not with customer data."
        body["input"] = [answer]
    else:
        body["input"] = turn.input
    return body


def _play(demo: Demo, began: float, now: float, conversation: Conversation | None) -> list[Response]:
    """Creates the demo's responses at their moments and advances each to now."""
    played: list[Response] = []
    for turn in demo.turns:
        at = began + turn.after
        previous = played[-1] if played else None
        if previous is not None:
            engine.lock_and_advance(previous, now=at)
        created = operations.create_response(_body(demo, turn, previous, conversation), now=at)
        response = Response.objects.get(pk=created.pk)
        if turn.cancel_after is not None:
            response = engine.lock_and_advance(response, now=at + turn.cancel_after)
            if not response.is_terminal:
                engine.cancel(response, at + turn.cancel_after)
        played.append(engine.lock_and_advance(response, now=now))
    return played


def _conversation(demo: Demo, created: float) -> tuple[Conversation, bool]:
    found = Conversation.objects.filter(metadata__sandbox_demo=demo.key).first()
    if found:
        return found, False
    public = operations.create_conversation(
        {"metadata": {"sandbox_demo": demo.key, "title": demo.title}}, now=created
    )
    return Conversation.objects.get(public_id=public["id"]), True


def _hostile(now: float) -> bool:
    """HTML and scripts in a title, metadata, messages, function arguments and outputs, for escaping."""
    demo = Demo(
        "resp-hostile",
        "<script>alert('title')</script> Hostile content",
        (
            Turn("sandbox-functions", "<script>alert(3)</script>"),
            Turn("sandbox-functions", after=30, answer_calls=True),
        ),
        1.5 * HOUR,
    )
    if Conversation.objects.filter(metadata__sandbox_demo=demo.key).exists():
        return False
    began = now - demo.ago
    conversation, _ = _conversation(demo, began)
    conversation.metadata["note"] = "<img src=x onerror=alert('metadata')>"
    conversation.save()
    texts = [{"type": "message", "role": "user", "content": text} for text in HOSTILE_TEXTS]
    operations.create_conversation_items(conversation.public_id, {"items": texts}, now=began)
    first = Response.objects.get(
        pk=operations.create_response(_body(demo, demo.turns[0], None, conversation), now=began).pk
    )
    first = engine.lock_and_advance(first, now=began + 20)
    for item in Item.objects.filter(response=first, item_type="function_call"):
        item.data["arguments"] = json.dumps({"city": "<script>alert('args')</script>", "unit": "<i>C</i>"})
        item.save()
    calls = [item for item in engine.output_of(first) if item["type"] == "function_call"]
    hostile_output = "<b>22°C</b><script>alert('output')</script>"
    body = {
        "model": "sandbox-functions",
        "background": True,
        "conversation": conversation.public_id,
        "metadata": {"sandbox_speed": "1", "sandbox_demo": demo.key, "note": "<b>html in metadata</b>"},
        "input": [
            {"type": "function_call_output", "call_id": c["call_id"], "output": hostile_output} for c in calls
        ],
    }
    second = Response.objects.get(pk=operations.create_response(body, now=began + 30).pk)
    engine.lock_and_advance(second, now=now)
    return True


def _still_live(last: Response, demo: Demo) -> bool:
    """A held demo keeps its response while it shows what the demo is for."""
    if not last.is_terminal:
        return True
    waiting_for_a_person = last.script in ("functions", "mcp") and last.state.get("phase") == "start"
    answered = (
        Response.objects.filter(previous_response_ref=last.public_id).exists()
        or Response.objects.filter(conversation_id=last.conversation_id, seq__gt=last.seq).exists()
    )
    return waiting_for_a_person and last.status == "completed" and not answered


def seed(now: float | None = None) -> Seeded:
    now = time.time() if now is None else now
    seeded = Seeded()
    with transaction.atomic():
        for demo in FINISHED:
            began = now - demo.ago
            if demo.in_conversation:
                conversation, created = _conversation(demo, began)
                if created:
                    _play(demo, began, now, conversation)
                    seeded.new += 1
            elif not Response.objects.filter(metadata__sandbox_demo=demo.key).exists():
                _play(demo, began, now, None)
                seeded.new += 1
        seeded.new += _hostile(now)
    for demo in HELD:
        with transaction.atomic():
            conversation, created = _conversation(demo, now)
            seeded.new += created
            operations.advance_conversation(conversation)
            last = Response.objects.filter(conversation=conversation).order_by("-created_at", "-seq").first()
            if last is not None and _still_live(last, demo):
                continue
            _play(demo, now - 10, now, conversation)
            seeded.live += 1
    for response in Response.objects.filter(metadata__has_key="sandbox_demo").order_by("created_at", "seq"):
        engine.advance(response, now)
        key = response.metadata["sandbox_demo"]
        seeded.responses.setdefault(key, []).append(response.public_id)
    for conversation in Conversation.objects.filter(metadata__has_key="sandbox_demo"):
        seeded.conversations[conversation.metadata["sandbox_demo"]] = conversation.public_id
    return seeded


def statuses() -> set[str]:
    return set(Response.objects.filter(metadata__has_key="sandbox_demo").values_list("status", flat=True))


def item_types() -> set[str]:
    """The types of the demo's items: outputs, and inputs held by the demo conversations."""
    demo_responses = Response.objects.filter(metadata__has_key="sandbox_demo")
    items = Item.objects.filter(
        Q(response__in=demo_responses) | Q(conversation__metadata__has_key="sandbox_demo")
    )
    return set(items.values_list("item_type", flat=True).distinct())
