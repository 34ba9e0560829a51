"""Objects → JSON exactly as the Assistants v2 wire shows them: every required key, null when unset."""

import copy

from .models import Assistant, File, Message, Run, RunStep, Thread


def assistant(a: Assistant) -> dict:
    return {
        "id": a.public_id,
        "object": "assistant",
        "created_at": a.created_at,
        "name": a.name,
        "description": a.description,
        "model": a.model,
        "instructions": a.instructions,
        "tools": a.tools,
        "tool_resources": a.tool_resources,
        "metadata": a.metadata,
        "temperature": a.temperature,
        "top_p": a.top_p,
        "response_format": a.response_format,
    }


def thread(t: Thread) -> dict:
    return {
        "id": t.public_id,
        "object": "thread",
        "created_at": t.created_at,
        "tool_resources": t.tool_resources,
        "metadata": t.metadata,
    }


def run(r: Run) -> dict:
    """Needs r.thread and r.assistant loaded (select_related) to avoid a query per run."""
    return {
        "id": r.public_id,
        "object": "thread.run",
        "created_at": r.created_at,
        "thread_id": r.thread.public_id,
        "assistant_id": r.assistant.public_id,
        "status": r.status,
        "required_action": r.required_action,
        "last_error": r.last_error,
        "expires_at": r.expires_at,
        "started_at": r.started_at,
        "cancelled_at": r.cancelled_at,
        "failed_at": r.failed_at,
        "completed_at": r.completed_at,
        "incomplete_details": r.incomplete_details,
        "model": r.model,
        "instructions": r.instructions,
        "tools": r.tools,
        "metadata": r.metadata,
        "usage": r.usage,
        "temperature": r.temperature,
        "top_p": r.top_p,
        "max_prompt_tokens": r.max_prompt_tokens,
        "max_completion_tokens": r.max_completion_tokens,
        "truncation_strategy": r.truncation_strategy,
        "tool_choice": r.tool_choice,
        "parallel_tool_calls": r.parallel_tool_calls,
        "response_format": r.response_format,
    }


def step_details(details: dict, include_search_content: bool) -> dict:
    """File search result `content` is only shown when the request asked for it with include[]."""
    if include_search_content or details.get("type") != "tool_calls":
        return details
    if not any(call.get("type") == "file_search" for call in details.get("tool_calls", [])):
        return details
    details = copy.deepcopy(details)
    for call in details["tool_calls"]:
        for result in (call.get("file_search") or {}).get("results") or []:
            result.pop("content", None)
    return details


def step(s: RunStep, *, run_id: str, thread_id: str, assistant_id: str, include_search_content: bool) -> dict:
    # Steps carry the schema's `expired_at` (what the SDK reads), not the `expires_at` of the spec's
    # streaming examples: it is null unless the step expired with its run.
    return {
        "id": s.public_id,
        "object": "thread.run.step",
        "created_at": s.created_at,
        "assistant_id": assistant_id,
        "thread_id": thread_id,
        "run_id": run_id,
        "type": s.step_type,
        "status": s.status,
        "step_details": step_details(s.details, include_search_content),
        "last_error": s.last_error,
        "expired_at": s.expired_at,
        "cancelled_at": s.cancelled_at,
        "failed_at": s.failed_at,
        "completed_at": s.completed_at,
        "metadata": s.metadata,
        "usage": s.usage,
    }


def step_of_run(s: RunStep, r: Run, include_search_content: bool) -> dict:
    return step(
        s,
        run_id=r.public_id,
        thread_id=r.thread.public_id,
        assistant_id=r.assistant.public_id,
        include_search_content=include_search_content,
    )


def message(m: Message, *, thread_id: str, run_id: str | None, assistant_id: str | None) -> dict:
    return {
        "id": m.public_id,
        "object": "thread.message",
        "created_at": m.created_at,
        "thread_id": thread_id,
        "status": m.status,
        "incomplete_details": m.incomplete_details,
        "completed_at": m.completed_at,
        "incomplete_at": m.incomplete_at,
        "role": m.role,
        "content": m.content,
        "assistant_id": assistant_id,
        "run_id": run_id,
        "attachments": m.attachments,
        "metadata": m.metadata,
    }


def file(f: File, size: int) -> dict:
    return {
        "id": f.public_id,
        "object": "file",
        "bytes": size,
        "created_at": f.created_at,
        "filename": f.filename,
        "purpose": f.purpose,
        "status": "processed",
    }


def page(data: list[dict], has_more: bool = False) -> dict:
    # The live service sends null first_id/last_id on an empty list (docs/WIRE.md §6).
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


def error(message: str, type_: str, param: str | None, code: str | None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}
