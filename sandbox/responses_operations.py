"""What each Responses and Conversations endpoint does to the database. Synchronous: the async views call
these through sync_to_async, and each returns wire JSON, so no lazy query can run later in async context.
"""

import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from . import responses_engine as engine
from . import responses_scripts as scripts
from . import responses_wire, wire
from .errors import ApiError, bad_request
from .models import (
    ACTIVE_RESPONSE_STATUSES,
    Conversation,
    Item,
    Response,
    ResponseEvent,
    ResponseInput,
    new_hex_id,
)
from .operations import float_knob
from .pagination import ListParams, page, page_list

# Creation parameters a response echoes back.
ECHOED = (
    "instructions",
    "tools",
    "tool_choice",
    "temperature",
    "top_p",
    "text",
    "truncation",
    "reasoning",
    "parallel_tool_calls",
    "max_output_tokens",
    "max_tool_calls",
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "service_tier",
    "top_logprobs",
    "include",
)
ID_PREFIXES = {
    "message": "msg_",
    "function_call": "fc_",
    "function_call_output": "fco_",
    "mcp_approval_response": "mcpa_",
    "mcp_approval_request": "mcpr_",
    "mcp_call": "mcp_",
    "mcp_list_tools": "mcpl_",
    "reasoning": "rs_",
    "web_search_call": "ws_",
    "file_search_call": "fs_",
    "code_interpreter_call": "ci_",
}
# How far back a previous_response_id chain is read for context.
MAX_CHAIN = 50
# Longer than any id the service makes; an item id a client chooses must fit.
MAX_ID_LENGTH = 64


@dataclass(frozen=True)
class Created:
    body: dict
    pk: int
    background: bool


# --- lookups --------------------------------------------------------------------------------------


def _response(response_id: str) -> Response:
    found = Response.objects.filter(public_id=response_id, stored=True).first()
    if found is None:
        raise ApiError(404, f"Response with id '{response_id}' not found.")
    return found


def _conversation(conversation_id: str) -> Conversation:
    found = Conversation.objects.filter(public_id=conversation_id).first()
    if found is None:
        raise ApiError(404, f"Conversation with id '{conversation_id}' not found.")
    return found


def _conversation_item(conversation: Conversation, item_id: str) -> Item:
    found = Item.objects.filter(conversation=conversation, public_id=item_id).first()
    if found is None:
        raise ApiError(404, f"Item with id '{item_id}' not found.")
    return found


def advance_conversation(conversation: Conversation) -> None:
    for r in Response.objects.filter(conversation=conversation, status__in=ACTIVE_RESPONSE_STATUSES):
        engine.advance(r)


# --- input items ----------------------------------------------------------------------------------


def _text_part(kind: str, text: str) -> dict:
    if kind == "output_text":
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {"type": kind, "text": text}


def item_data(entry: dict) -> dict:
    """An input item as the service stores and lists it: typed, with a status where its schema has one."""
    kind = entry.get("type") or "message"
    if kind == "message":
        role = entry["role"]
        content = entry["content"]
        if isinstance(content, str):
            content = [_text_part("output_text" if role == "assistant" else "input_text", content)]
        else:
            content = [
                {"annotations": [], "logprobs": [], **part} if part.get("type") == "output_text" else part
                for part in content
            ]
        return {
            "type": "message",
            "role": role,
            "content": content,
            "status": entry.get("status") or "completed",
        }
    if kind == "function_call_output":
        return {
            "type": kind,
            "call_id": entry.get("call_id"),
            "output": entry["output"],
            "status": entry.get("status") or "completed",
        }
    if kind == "mcp_approval_response":
        return {
            "type": kind,
            "approval_request_id": entry["approval_request_id"],
            "approve": entry["approve"],
            "reason": entry.get("reason"),
        }
    data = {key: value for key, value in entry.items() if value is not None}
    if kind in ("function_call", "reasoning") and "status" not in data:
        data["status"] = "completed"
    return data


def _store_items(
    entries: list[dict], now: float, conversation: Conversation | None, param: str
) -> list[Item]:
    """Input items → Item rows: references and known ids point at the stored item, the rest are new."""
    items = []
    for n, entry in enumerate(entries):
        kind = entry.get("type") or "message"
        if kind == "item_reference":
            found = Item.objects.filter(public_id=entry["id"]).first()
            if found is None:
                raise bad_request(f"Item with id '{entry['id']}' not found.", param=f"{param}[{n}]")
            items.append(found)
            continue
        if entry.get("id") and (found := Item.objects.filter(public_id=entry["id"]).first()):
            items.append(found)
            continue
        if len(entry.get("id") or "") > MAX_ID_LENGTH:
            raise bad_request(
                f"Invalid '{param}[{n}].id': string too long. Expected a string with maximum length "
                f"{MAX_ID_LENGTH}, but got a string with length {len(entry['id'])} instead.",
                param=f"{param}[{n}].id",
                code="string_above_max_length",
            )
        if kind == "function_call_output" and not entry.get("call_id"):
            raise bad_request(
                f"Missing required parameter: '{param}[{n}].call_id'.",
                param=f"{param}[{n}].call_id",
                code="missing_required_parameter",
            )
        public_id = entry.get("id") or new_hex_id(ID_PREFIXES.get(kind, "item_"))
        data = {"id": public_id, **item_data(entry)}
        items.append(
            Item.objects.create(
                public_id=public_id, created_at=int(now), item_type=kind, data=data, conversation=conversation
            )
        )
    return items


def _entries(value) -> list[dict]:
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return value


def text_of(data: dict) -> str:
    content = data.get("content")
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else []
    return "\n".join(
        p.get("text", "") for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)
    )


def _output_text(output) -> str:
    if isinstance(output, str):
        return output
    return "\n".join(
        p.get("text", "") for p in output if isinstance(p, dict) and p.get("type") == "input_text"
    )


# --- context --------------------------------------------------------------------------------------


def _chain(previous: Response) -> list[Response]:
    chain, current = [], previous
    while current is not None and len(chain) < MAX_CHAIN:
        chain.append(current)
        ref = current.previous_response_ref
        current = Response.objects.filter(public_id=ref).first() if ref else None
    return chain[::-1]


def _context(previous: Response | None, conversation: Conversation | None) -> list[dict]:
    """The items the new response follows: its conversation's, or the previous responses' in and out."""
    if conversation is not None:
        qs = Item.objects.filter(conversation=conversation).order_by("created_at", "seq")
        return list(qs.values_list("data", flat=True))
    items: list[dict] = []
    for r in _chain(previous) if previous else []:
        inputs = ResponseInput.objects.filter(response=r).order_by("position").select_related("item")
        items += [link.item.data for link in inputs]
        items += engine.output_of(r, include=("file_search_call.results", "code_interpreter_call.outputs"))
    return items


@dataclass(frozen=True)
class Turn:
    phase: str
    outputs: tuple = ()
    approval: dict | None = None


def _turn(new: list[dict], context: list[dict]) -> Turn:
    """Checks the new input against what it follows (every call answered, every answer to a real call)."""
    # A call cut short (its response cancelled or failed) waits for no output.
    calls = {
        d["call_id"]: d
        for d in [*context, *new]
        if d.get("type") == "function_call"
        and d.get("call_id")
        and d.get("status", "completed") == "completed"
    }
    answered = {d.get("call_id") for d in context if d.get("type") == "function_call_output"}
    requests = {d["id"]: d for d in context if d.get("type") == "mcp_approval_request"}
    new_outputs = [d for d in new if d.get("type") == "function_call_output"]
    for output in new_outputs:
        if output["call_id"] not in calls:
            raise bad_request(
                f"No tool call found for function call output with call_id {output['call_id']}.",
                param="input",
            )
    answered |= {output["call_id"] for output in new_outputs}
    pending = [call_id for call_id in calls if call_id not in answered]
    if pending:
        raise bad_request(f"No tool output found for function call {pending[0]}.", param="input")
    approvals = [d for d in new if d.get("type") == "mcp_approval_response"]
    for answer in approvals:
        if answer["approval_request_id"] not in requests:
            raise bad_request(
                f"No MCP approval request found with id '{answer['approval_request_id']}'.", param="input"
            )
    if new_outputs:
        pairs = tuple((calls[o["call_id"]]["name"], _output_text(o["output"])) for o in new_outputs)
        return Turn("outputs", outputs=pairs)
    if approvals:
        answer = approvals[-1]
        request = requests[answer["approval_request_id"]]
        approval = {
            "request_id": request["id"],
            "server_label": request.get("server_label"),
            "name": request.get("name"),
            "arguments": request.get("arguments", "{}"),
            "approve": answer["approve"],
            "reason": answer.get("reason"),
        }
        return Turn("approval", approval=approval)
    return Turn("start")


def _question(new: list[dict], context: list[dict]) -> str:
    for data in [*new[::-1], *context[::-1]]:
        if data.get("type") == "message" and data.get("role") == "user":
            return text_of(data)
    return ""


# --- scripts --------------------------------------------------------------------------------------


def _script_named(name: str, param: str) -> str:
    if name not in scripts.SCRIPTS:
        models = ", ".join(f"`{scripts.model_for(s)}`" for s in scripts.SCRIPTS)
        raise ApiError(
            404,
            f"The model `{scripts.model_for(name)}` does not exist or you do not have access to it. "
            f"The sandbox's models are {models}.",
            param=param,
            code="model_not_found",
        )
    return name


def _script(body: dict, metadata: dict, earlier: Response | None) -> str:
    if "sandbox_script" in metadata:
        name = metadata["sandbox_script"]
        if name not in scripts.SCRIPTS:
            choices = ", ".join(f"'{s}'" for s in scripts.SCRIPTS)
            raise bad_request(
                f"Invalid sandbox script '{name}'. Supported scripts are: {choices}.",
                param="metadata.sandbox_script",
                code="invalid_value",
            )
        return name
    model = body.get("model") or ""
    if model.startswith(scripts.MODEL_PREFIX):
        return _script_named(model[len(scripts.MODEL_PREFIX) :], "model")
    agent = (body.get("agent") or {}).get("name", "")
    if agent.startswith(scripts.MODEL_PREFIX):
        return _script_named(agent[len(scripts.MODEL_PREFIX) :], "agent.name")
    if earlier is not None:
        return earlier.script
    return scripts.DEFAULT_SCRIPT


# --- responses ------------------------------------------------------------------------------------


def _check_modes(body: dict) -> None:
    if body.get("background") and body.get("store") is False:
        raise bad_request("Background mode requires `store` to be true.", param="store")
    if body.get("previous_response_id") and body.get("conversation"):
        raise bad_request(
            "Mutually exclusive parameters: Ensure you are only providing one of: "
            "'previous_response_id' or 'conversation'.",
            param="conversation",
            code="mutually_exclusive_parameters",
        )
    if not body.get("model") and not body.get("agent"):
        raise bad_request(
            "Missing required parameter: 'model'.", param="model", code="missing_required_parameter"
        )


def _follows(body: dict) -> tuple[Conversation | None, Response | None]:
    """The conversation or the previous response a new response continues, brought up to date."""
    if body.get("conversation"):
        ref = body["conversation"]
        conversation = _conversation(ref if isinstance(ref, str) else ref["id"])
        advance_conversation(conversation)
        return conversation, None
    if body.get("previous_response_id"):
        previous_id = body["previous_response_id"]
        previous = Response.objects.filter(public_id=previous_id, stored=True).first()
        if previous is None:
            raise bad_request(
                f"Previous response with id '{previous_id}' not found.", param="previous_response_id"
            )
        previous = engine.advance(previous)
        if not previous.is_terminal:
            raise bad_request(
                f"Previous response with id '{previous_id}' is still {previous.status}.",
                param="previous_response_id",
            )
        return None, previous
    return None, None


def create_response(body: dict, *, now: float | None = None) -> Created:
    """Stores the response and its input items, checks them against what they follow, starts its clock."""
    now = time.time() if now is None else now
    _check_modes(body)
    background = bool(body.get("background"))
    agent = body.get("agent")
    metadata = body.get("metadata") or {}
    with transaction.atomic():
        conversation, previous = _follows(body)
        earlier = previous
        if conversation is not None:
            earlier = (
                Response.objects.filter(conversation=conversation).order_by("-created_at", "-seq").first()
            )
        context = _context(previous, conversation)
        items = _store_items(_entries(body.get("input")), now, conversation, "input")
        new = [item.data for item in items]
        turn = _turn(new, context)
        script = _script(body, metadata, earlier)
        default_speed = earlier.speed if earlier else settings.SANDBOX_SPEED
        speed = float_knob(metadata, "sandbox_speed", default_speed, minimum=0, strict_min=True)
        queued = float_knob(metadata, "sandbox_queued_seconds", None, minimum=0)
        long_items = float_knob(metadata, "sandbox_items", scripts.DEFAULT_LONG_ITEMS, minimum=1)
        if long_items > scripts.MAX_LONG_ITEMS:
            raise bad_request(
                f"Invalid 'metadata.sandbox_items': expected a number <= {scripts.MAX_LONG_ITEMS}, "
                f"but got '{metadata['sandbox_items']}'.",
                param="metadata.sandbox_items",
                code="invalid_value",
            )
        public_id = new_hex_id("resp_")
        params = {key: body[key] for key in ECHOED if body.get(key) is not None}
        texts = [params.get("instructions") or ""] + [text_of(d) for d in [*context, *new]]
        r = Response.objects.create(
            public_id=public_id,
            created_at=int(now),
            status="queued" if background else "in_progress",
            background=background,
            stored=body.get("store") is not False,
            model=body.get("model") or scripts.model_for(script),
            conversation=conversation,
            conversation_ref=conversation.public_id if conversation else None,
            previous_response_ref=previous.public_id if previous else None,
            agent_name=agent["name"] if agent else None,
            agent_version=(agent.get("version") or "1") if agent else None,
            metadata=metadata,
            params=params,
            script=script,
            speed=speed,
            started_clock=now,
            record_events=background or bool(body.get("stream")),
            state={
                "seed": engine.seed_of(public_id),
                "question": _question(new, context)[:2000],
                "phase": turn.phase,
                "outputs": [list(pair) for pair in turn.outputs],
                "approval": turn.approval,
                "queued_seconds": queued,
                "items": int(long_items),
                "input_tokens": engine.input_tokens(texts),
            },
        )
        ResponseInput.objects.bulk_create(
            ResponseInput(response=r, item=item, position=n) for n, item in enumerate(items)
        )
        engine.begin(r, now)
        return Created(engine.snapshot(r, params.get("include") or ()), r.pk, background)


def get_response(response_id: str, include=()) -> dict:
    return engine.snapshot(engine.advance(_response(response_id)), include)


def snapshot_of(pk: int, include=()) -> dict:
    return engine.snapshot(Response.objects.get(pk=pk), include)


def cancel_response(response_id: str) -> dict:
    with transaction.atomic():
        r = engine.lock_and_advance(_response(response_id))
        if not r.background:
            raise bad_request("Cannot cancel a synchronous response.")
        if r.status != "cancelled":
            if r.is_terminal:
                raise bad_request(f"Cannot cancel a response with status '{r.status}'.")
            engine.cancel(r, time.time())
        return engine.snapshot(r, r.params.get("include") or ())


def delete_response(response_id: str) -> dict:
    with transaction.atomic():
        r = _response(response_id)
        input_ids = list(ResponseInput.objects.filter(response=r).values_list("item_id", flat=True))
        # Items only this response holds go with it; those in a conversation stay there.
        Item.objects.filter(response=r, conversation__isnull=True).delete()
        r.delete()
        Item.objects.filter(pk__in=input_ids, conversation__isnull=True, response__isnull=True).exclude(
            pk__in=ResponseInput.objects.values("item_id")
        ).delete()
    return responses_wire.deleted(response_id, "response")


def list_input_items(response_id: str, params: ListParams, include=()) -> dict:
    r = _response(response_id)
    links = list(ResponseInput.objects.filter(response=r).select_related("item").order_by("position"))
    rows, has_more = page_list(links, params, lambda link: link.item.public_id)
    return wire.page([responses_wire.item(link.item.data, include) for link in rows], has_more)


def _agent_filters(agent_name: str | None, agent_id: str | None) -> dict:
    filters = {}
    if agent_name:
        filters["agent_name"] = agent_name
    if agent_id:
        name, sep, version = agent_id.partition(":")
        if not sep or not name or not version:
            raise bad_request(
                f"Invalid 'agent_id': expected an agent id in the format name:version, but got '{agent_id}'.",
                param="agent_id",
                code="invalid_value",
            )
        filters.update(agent_name=name, agent_version=version)
    return filters


def list_responses(params: ListParams, *, conversation_id=None, agent_name=None, agent_id=None) -> dict:
    """Azure AI Foundry's list (OpenAI has none): stored responses, newest first, filtered as Foundry does."""
    qs = Response.objects.filter(stored=True, **_agent_filters(agent_name, agent_id))
    if conversation_id:
        qs = qs.filter(conversation_ref=conversation_id)
    rows, has_more = page(qs, params)
    rows = [engine.advance(r) for r in rows]
    outputs: dict[int, list] = {r.pk: [] for r in rows}
    for response_pk, data in (
        Item.objects.filter(response__in=rows).order_by("output_index").values_list("response_id", "data")
    ):
        outputs[response_pk].append(responses_wire.item(data))
    return wire.page([responses_wire.response(r, outputs[r.pk]) for r in rows], has_more)


# --- streams --------------------------------------------------------------------------------------


def stream_start(response_id: str) -> int:
    r = _response(response_id)
    if not r.background:
        raise bad_request(
            "This response cannot be streamed because it was not created with background=true.",
            param="stream",
        )
    return r.pk


def stream_step(pk: int, after: int) -> tuple[list[tuple[int, str, str]], str, float | None]:
    """Advances the response, then returns its events after `after`, its status and when it next changes."""
    r = engine.advance(Response.objects.get(pk=pk))
    events = list(
        ResponseEvent.objects.filter(response=r, sequence_number__gt=after)
        .order_by("sequence_number")
        .values_list("sequence_number", "event", "data")
    )
    return events, r.status, r.next_due


def wait_step(pk: int) -> tuple[str, float | None]:
    r = engine.advance(Response.objects.get(pk=pk))
    return r.status, r.next_due


# --- conversations --------------------------------------------------------------------------------


def create_conversation(body: dict, *, now: float | None = None) -> dict:
    now = time.time() if now is None else now
    with transaction.atomic():
        conversation = Conversation.objects.create(
            public_id=new_hex_id("conv_"), created_at=int(now), metadata=body.get("metadata") or {}
        )
        _store_items(body.get("items") or [], now, conversation, "items")
        return responses_wire.conversation(conversation)


def get_conversation(conversation_id: str) -> dict:
    return responses_wire.conversation(_conversation(conversation_id))


def update_conversation(conversation_id: str, body: dict) -> dict:
    with transaction.atomic():
        conversation = _conversation(conversation_id)
        conversation.metadata = body["metadata"] or {}
        conversation.save(update_fields=["metadata"])
        return responses_wire.conversation(conversation)


def delete_conversation(conversation_id: str) -> dict:
    """Its items are not deleted: they stay the inputs and outputs of their responses."""
    _conversation(conversation_id).delete()
    return responses_wire.deleted(conversation_id, "conversation")


def list_conversations(params: ListParams, *, agent_name=None, agent_id=None) -> dict:
    """Azure AI Foundry's list (OpenAI has none), filtered by the agent of the conversation's responses."""
    qs = Conversation.objects.all()
    filters = _agent_filters(agent_name, agent_id)
    if filters:
        qs = qs.filter(seq__in=Response.objects.filter(**filters).values("conversation_id"))
    rows, has_more = page(qs, params)
    return wire.page([responses_wire.conversation(c) for c in rows], has_more)


def list_conversation_items(conversation_id: str, params: ListParams, include=()) -> dict:
    conversation = _conversation(conversation_id)
    advance_conversation(conversation)
    rows, has_more = page(Item.objects.filter(conversation=conversation), params)
    return wire.page([responses_wire.item(item.data, include) for item in rows], has_more)


def create_conversation_items(
    conversation_id: str, body: dict, include=(), *, now: float | None = None
) -> dict:
    now = time.time() if now is None else now
    with transaction.atomic():
        conversation = _conversation(conversation_id)
        items = _store_items(body["items"], now, conversation, "items")
        return wire.page([responses_wire.item(item.data, include) for item in items])


def get_conversation_item(conversation_id: str, item_id: str, include=()) -> dict:
    conversation = _conversation(conversation_id)
    advance_conversation(conversation)
    return responses_wire.item(_conversation_item(conversation, item_id).data, include)


def delete_conversation_item(conversation_id: str, item_id: str) -> dict:
    """The item leaves the conversation; a response that made or read it keeps it."""
    with transaction.atomic():
        conversation = _conversation(conversation_id)
        item = _conversation_item(conversation, item_id)
        item.conversation = None
        item.save(update_fields=["conversation"])
        if item.response_id is None and not ResponseInput.objects.filter(item=item).exists():
            item.delete()
        return responses_wire.conversation(conversation)
