"""Objects → JSON as the Responses and Conversations wire shows them: every key the service sends."""

import copy

from .models import Conversation, Response

DEFAULT_TEXT = {"format": {"type": "text"}, "verbosity": "medium"}
DEFAULT_REASONING = {"effort": None, "summary": None}


def item(data: dict, include=()) -> dict:
    """A stored item; the parts only `include` asks for are left out (null) unless asked for."""
    kind = data.get("type")
    if kind == "file_search_call" and "file_search_call.results" not in include and data.get("results"):
        return {**data, "results": None}
    if (
        kind == "code_interpreter_call"
        and "code_interpreter_call.outputs" not in include
        and data.get("outputs")
    ):
        return {**data, "outputs": None}
    if kind == "web_search_call" and "web_search_call.action.sources" not in include:
        action = data.get("action") or {}
        if "sources" in action:
            data = copy.deepcopy(data)
            data["action"].pop("sources")
    return data


def response(r: Response, output: list[dict]) -> dict:
    """`output` is the response's items, already through `item()`."""
    p = r.params
    body = {
        "id": r.public_id,
        "object": "response",
        "created_at": r.created_at,
        "status": r.status,
        "background": r.background,
        "completed_at": r.completed_at,
        "error": r.error,
        "incomplete_details": r.incomplete_details,
        "instructions": p.get("instructions"),
        "max_output_tokens": p.get("max_output_tokens"),
        "max_tool_calls": p.get("max_tool_calls"),
        "model": r.model,
        "output": output,
        "parallel_tool_calls": p.get("parallel_tool_calls", True),
        "previous_response_id": r.previous_response_ref,
        "prompt_cache_key": p.get("prompt_cache_key"),
        "prompt_cache_retention": p.get("prompt_cache_retention"),
        "reasoning": p.get("reasoning") or DEFAULT_REASONING,
        "safety_identifier": p.get("safety_identifier"),
        "service_tier": p.get("service_tier") or "default",
        "store": r.stored,
        "temperature": p.get("temperature", 1.0),
        "text": p.get("text") or DEFAULT_TEXT,
        "tool_choice": p.get("tool_choice", "auto"),
        "tools": p.get("tools") or [],
        "top_logprobs": p.get("top_logprobs", 0),
        "top_p": p.get("top_p", 1.0),
        "truncation": p.get("truncation") or "disabled",
        "usage": r.usage,
        "user": p.get("user"),
        "metadata": r.metadata,
        "conversation": {"id": r.conversation_ref} if r.conversation_ref else None,
    }
    if r.agent_name:
        # Azure AI Foundry's: the agent that produced the response.
        body["agent"] = {"type": "agent_reference", "name": r.agent_name, "version": r.agent_version}
    return body


def conversation(c: Conversation) -> dict:
    return {"id": c.public_id, "object": "conversation", "created_at": c.created_at, "metadata": c.metadata}


def deleted(object_id: str, kind: str) -> dict:
    return {"id": object_id, "object": f"{kind}.deleted", "deleted": True}
