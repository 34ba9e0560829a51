"""What each endpoint does to the database. Synchronous: the async views call these through sync_to_async,
and each returns wire JSON, so no lazy query can run later in async context.
"""

import math
import time
import zlib
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from . import engine, scripts, wire
from .errors import bad_request, not_found
from .models import ACTIVE_RUN_STATUSES, Assistant, File, Message, Run, RunEvent, RunStep, Thread, new_id
from .pagination import ListParams, page


@dataclass(frozen=True)
class RunResult:
    body: dict
    speed: float
    run_pk: int
    # With stream=true: the event sequence number after which this response's stream starts.
    stream_after: int | None = None


def _run_result(run: Run, stream_after: int | None = None) -> RunResult:
    return RunResult(wire.run(run), run.speed, run.pk, stream_after)


# --- lookups --------------------------------------------------------------------------------------


def _assistant(assistant_id: str) -> Assistant:
    found = Assistant.objects.filter(public_id=assistant_id).first()
    if found is None:
        raise not_found("assistant", assistant_id)
    return found


def _thread(thread_id: str, *, lock: bool = False) -> Thread:
    qs = Thread.objects.select_for_update() if lock else Thread.objects
    found = qs.filter(public_id=thread_id).first()
    if found is None:
        raise not_found("thread", thread_id)
    return found


def _run(thread_id: str, run_id: str) -> Run:
    thread = _thread(thread_id)
    found = Run.objects.select_related("thread", "assistant").filter(thread=thread, public_id=run_id).first()
    if found is None:
        raise not_found("run", run_id)
    return found


def advance_thread(thread: Thread) -> list[Run]:
    """Brings the thread's active runs up to date; returns those still active."""
    active = Run.objects.select_related("thread", "assistant").filter(
        thread=thread, status__in=ACTIVE_RUN_STATUSES
    )
    runs = [engine.advance(run) for run in active]
    return [run for run in runs if run.status in ACTIVE_RUN_STATUSES]


# --- assistants -----------------------------------------------------------------------------------


def create_assistant(body: dict) -> dict:
    assistant = Assistant.objects.create(
        public_id=new_id("asst_"),
        created_at=int(time.time()),
        name=body.get("name"),
        description=body.get("description"),
        model=body["model"],
        instructions=body.get("instructions"),
        tools=body.get("tools") or [],
        tool_resources=body.get("tool_resources"),
        metadata=body.get("metadata") or {},
        temperature=body.get("temperature", 1.0),
        top_p=body.get("top_p", 1.0),
        response_format=body.get("response_format", "auto"),
    )
    return wire.assistant(assistant)


def get_assistant(assistant_id: str) -> dict:
    return wire.assistant(_assistant(assistant_id))


def list_assistants(params: ListParams) -> dict:
    rows, has_more = page(Assistant.objects.all(), params)
    return wire.page([wire.assistant(a) for a in rows], has_more)


# --- threads and messages -------------------------------------------------------------------------


def message_content(content) -> list[dict]:
    """CreateMessageRequest content (a string or request parts) → MessageObject content parts."""
    if isinstance(content, str):
        return [{"type": "text", "text": {"value": content, "annotations": []}}]
    parts = []
    for part in content:
        if part["type"] == "text":
            parts.append({"type": "text", "text": {"value": part["text"], "annotations": []}})
        else:
            parts.append({"type": part["type"], part["type"]: part[part["type"]]})
    return parts


def add_message(thread: Thread, body: dict, now: int) -> Message:
    return Message.objects.create(
        public_id=new_id("msg_"),
        thread=thread,
        created_at=now,
        status="completed",
        completed_at=now,
        role=body["role"],
        content=message_content(body["content"]),
        attachments=body.get("attachments") or [],
        metadata=body.get("metadata") or {},
    )


def new_thread(body: dict, now: int) -> Thread:
    tool_resources = body.get("tool_resources")
    if tool_resources and "vector_stores" in (tool_resources.get("file_search") or {}):
        # The vector_stores helper creates stores; the sandbox has none, so it records ids it invents.
        stores = tool_resources["file_search"].pop("vector_stores")
        tool_resources["file_search"].setdefault("vector_store_ids", [new_id("vs_") for _ in stores])
    thread = Thread.objects.create(
        public_id=new_id("thread_"),
        created_at=now,
        tool_resources=tool_resources if tool_resources is not None else {},
        metadata=body.get("metadata") or {},
    )
    for message in body.get("messages") or []:
        add_message(thread, message, now)
    return thread


def create_thread(body: dict) -> dict:
    with transaction.atomic():
        return wire.thread(new_thread(body, int(time.time())))


def get_thread(thread_id: str) -> dict:
    return wire.thread(_thread(thread_id))


def modify_thread(thread_id: str, body: dict) -> dict:
    with transaction.atomic():
        thread = _thread(thread_id, lock=True)
        if "metadata" in body:
            thread.metadata = body["metadata"] or {}
        if "tool_resources" in body:
            thread.tool_resources = body["tool_resources"]
        thread.save()
        return wire.thread(thread)


def list_threads(params: ListParams) -> dict:
    rows, has_more = page(Thread.objects.all(), params)
    return wire.page([wire.thread(t) for t in rows], has_more)


def create_message(thread_id: str, body: dict) -> dict:
    with transaction.atomic():
        thread = _thread(thread_id, lock=True)
        active = advance_thread(thread)
        if active:
            raise bad_request(
                f"Can't add messages to {thread.public_id} while a run {active[0].public_id} is active."
            )
        message = add_message(thread, body, int(time.time()))
        return wire.message(message, thread_id=thread.public_id, run_id=None, assistant_id=None)


def list_messages(thread_id: str, params: ListParams, run_id: str | None) -> dict:
    thread = _thread(thread_id)
    advance_thread(thread)
    qs = Message.objects.filter(thread=thread)
    if run_id:
        run = Run.objects.filter(thread=thread, public_id=run_id).first()
        qs = qs.filter(run=run) if run else qs.none()
    rows, has_more = page(qs.select_related("run", "assistant"), params)
    return wire.page([_message_of(thread, m) for m in rows], has_more)


def _message_of(thread: Thread, m: Message) -> dict:
    return wire.message(
        m,
        thread_id=thread.public_id,
        run_id=m.run.public_id if m.run_id else None,
        assistant_id=m.assistant.public_id if m.assistant_id else None,
    )


def get_message(thread_id: str, message_id: str) -> dict:
    thread = _thread(thread_id)
    advance_thread(thread)
    found = (
        Message.objects.select_related("run", "assistant").filter(thread=thread, public_id=message_id).first()
    )
    if found is None:
        raise not_found("message", message_id)
    return _message_of(thread, found)


# --- runs -----------------------------------------------------------------------------------------


def float_knob(metadata: dict, key: str, default: float | None, *, minimum: float, strict_min: bool = False):
    if key not in metadata:
        return default
    try:
        value = float(metadata[key])
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < minimum or (strict_min and value == minimum):
        raise bad_request(
            f"Invalid 'metadata.{key}': expected a number {'>' if strict_min else '>='} {minimum:g}, "
            f"but got '{metadata[key]}'.",
            param=f"metadata.{key}",
            code="invalid_value",
        )
    return value


def _script(metadata: dict, assistant: Assistant) -> str:
    if "sandbox_script" in metadata:
        name, where = metadata["sandbox_script"], "metadata.sandbox_script"
    else:
        name, where = (assistant.metadata or {}).get("sandbox_script", scripts.DEFAULT_SCRIPT), "assistant_id"
    if name not in scripts.SCRIPTS:
        choices = ", ".join(f"'{s}'" for s in scripts.SCRIPTS)
        raise bad_request(
            f"Invalid sandbox script '{name}'. Supported scripts are: {choices}.",
            param=where,
            code="invalid_value",
        )
    return name


def _text_of(messages) -> str:
    return "\n".join(engine.message_text(m) for m in messages)


def new_run(thread: Thread, assistant: Assistant, body: dict, *, include_content: bool, now: float) -> Run:
    metadata = body.get("metadata") or {}
    script = _script(metadata, assistant)
    speed = float_knob(metadata, "sandbox_speed", settings.SANDBOX_SPEED, minimum=0, strict_min=True)
    steps = float_knob(metadata, "sandbox_steps", scripts.DEFAULT_LONG_STEPS, minimum=1)
    queued = float_knob(metadata, "sandbox_queued_seconds", None, minimum=0)
    lifetime = float_knob(
        metadata, "sandbox_expires_seconds", scripts.default_expires_seconds(script), minimum=0
    )
    float_knob(metadata, "sandbox_cancel_seconds", None, minimum=0)

    instructions = body["instructions"] if body.get("instructions") is not None else assistant.instructions
    if body.get("additional_instructions"):
        instructions = "\n\n".join(filter(None, [instructions, body["additional_instructions"]]))
    messages = list(Message.objects.filter(thread=thread).order_by("created_at", "seq"))
    user_messages = [m for m in messages if m.role == "user"]
    question = engine.message_text(user_messages[-1]) if user_messages else ""
    public_id = new_id("run_")
    expires_clock = now + lifetime / speed

    def pick(key, fallback):
        return body[key] if body.get(key) is not None else fallback

    run = Run.objects.create(
        public_id=public_id,
        thread=thread,
        assistant=assistant,
        created_at=int(now),
        status="queued",
        expires_at=int(expires_clock),
        model=pick("model", assistant.model),
        instructions=instructions,
        tools=pick("tools", assistant.tools),
        metadata=metadata,
        temperature=pick("temperature", assistant.temperature if assistant.temperature is not None else 1.0),
        top_p=pick("top_p", assistant.top_p if assistant.top_p is not None else 1.0),
        max_prompt_tokens=body.get("max_prompt_tokens"),
        max_completion_tokens=body.get("max_completion_tokens"),
        truncation_strategy=pick("truncation_strategy", {"type": "auto", "last_messages": None}),
        tool_choice=pick("tool_choice", "auto"),
        parallel_tool_calls=body.get("parallel_tool_calls", True),
        response_format=pick("response_format", assistant.response_format or "auto"),
        script=script,
        speed=speed,
        phase_started=now,
        expires_clock=expires_clock,
        include_search_content=include_content,
        record_events=bool(body.get("stream")),
        state={
            "seed": zlib.crc32(public_id.encode()),
            "question": question[:2000],
            "steps": int(steps),
            "queued_seconds": queued,
            "prompt_tokens": engine.tokens(_text_of(messages) + (instructions or "")) + 20,
        },
    )
    return Run.objects.select_related("thread", "assistant").get(pk=run.pk)


def create_run(thread_id: str, body: dict, include_content: bool) -> RunResult:
    with transaction.atomic():
        thread = _thread(thread_id, lock=True)
        assistant = _assistant(body["assistant_id"])
        active = advance_thread(thread)
        if active:
            raise bad_request(f"Thread {thread.public_id} already has an active run {active[0].public_id}.")
        now = time.time()
        for message in body.get("additional_messages") or []:
            add_message(thread, message, int(now))
        run = new_run(thread, assistant, body, include_content=include_content, now=now)
        engine.begin(run)
        return _run_result(run, stream_after=0)


def create_thread_and_run(body: dict) -> RunResult:
    with transaction.atomic():
        assistant = _assistant(body["assistant_id"])
        now = time.time()
        thread_body = dict(body.get("thread") or {})
        if body.get("tool_resources") is not None:
            thread_body.setdefault("tool_resources", body["tool_resources"])
        thread = new_thread(thread_body, int(now))
        run = new_run(thread, assistant, body, include_content=False, now=now)
        engine.begin(run, thread_created=wire.thread(thread))
        return _run_result(run, stream_after=0)


def list_runs(thread_id: str, params: ListParams) -> dict:
    thread = _thread(thread_id)
    advance_thread(thread)
    rows, has_more = page(Run.objects.filter(thread=thread).select_related("thread", "assistant"), params)
    return wire.page([wire.run(r) for r in rows], has_more)


def get_run(thread_id: str, run_id: str) -> RunResult:
    return _run_result(engine.advance(_run(thread_id, run_id)))


def modify_run(thread_id: str, run_id: str, body: dict) -> RunResult:
    with transaction.atomic():
        run = engine.lock_and_advance(_run(thread_id, run_id))
        if "metadata" in body:
            # Speed and script were fixed at creation; the cancel delay is read when cancelling.
            float_knob(body["metadata"] or {}, "sandbox_cancel_seconds", None, minimum=0)
            run.metadata = body["metadata"] or {}
            run.save(update_fields=["metadata"])
        return _run_result(run)


def cancel_run(thread_id: str, run_id: str) -> RunResult:
    with transaction.atomic():
        run = engine.lock_and_advance(_run(thread_id, run_id))
        if run.is_terminal:
            raise bad_request(f"Cannot cancel run with status '{run.status}'.")
        if run.status != "cancelling":
            engine.cancel(run, time.time())
        return _run_result(run)


def submit_tool_outputs(thread_id: str, run_id: str, body: dict) -> RunResult:
    with transaction.atomic():
        run = engine.lock_and_advance(_run(thread_id, run_id))
        if run.status != "requires_action":
            raise bad_request(f'Runs in status "{run.status}" do not accept tool outputs.')
        pending = [call["id"] for call in run.required_action["submit_tool_outputs"]["tool_calls"]]
        seen = []
        for i, output in enumerate(body["tool_outputs"]):
            call_id = output["tool_call_id"]
            if call_id in seen:
                raise bad_request(
                    f"Duplicate tool_call_id '{call_id}' in tool_outputs.",
                    param=f"tool_outputs[{i}].tool_call_id",
                )
            if call_id not in pending:
                raise bad_request(
                    f"Invalid tool_call_id: '{call_id}'. "
                    f"Run {run.public_id} has no pending tool call with that id.",
                    param=f"tool_outputs[{i}].tool_call_id",
                )
            seen.append(call_id)
        missing = [call_id for call_id in pending if call_id not in seen]
        if missing:
            raise bad_request(
                f"Expected tool outputs for call_ids {pending}, got {seen}. Missing: {', '.join(missing)}.",
                param="tool_outputs",
            )
        stream_after = None
        if body.get("stream"):
            run.record_events = True
            stream_after = engine.last_event_seq(run)
        engine.submit_tool_outputs(run, body["tool_outputs"], time.time())
        return _run_result(run, stream_after)


# --- steps ----------------------------------------------------------------------------------------


def list_steps(thread_id: str, run_id: str, params: ListParams, include_content: bool) -> dict:
    run = engine.advance(_run(thread_id, run_id))
    rows, has_more = page(RunStep.objects.filter(run=run), params)
    return wire.page([wire.step_of_run(s, run, include_content) for s in rows], has_more)


def get_step(thread_id: str, run_id: str, step_id: str, include_content: bool) -> dict:
    run = engine.advance(_run(thread_id, run_id))
    found = RunStep.objects.filter(run=run, public_id=step_id).first()
    if found is None:
        raise not_found("step", step_id)
    return wire.step_of_run(found, run, include_content)


# --- files ----------------------------------------------------------------------------------------


def _file(file_id: str) -> File:
    found = File.objects.filter(public_id=file_id).first()
    if found is None:
        raise not_found("file", file_id)
    return found


def get_file(file_id: str) -> dict:
    found = _file(file_id)
    return wire.file(found, len(found.data))


def file_content(file_id: str) -> tuple[bytes, str, str]:
    found = _file(file_id)
    return bytes(found.data), found.media_type, found.filename


# --- streams --------------------------------------------------------------------------------------


def forget_events(run_pk: int, up_to: int) -> None:
    """Events already streamed for a finished run are of no further use."""
    RunEvent.objects.filter(run_id=run_pk, seq__lte=up_to).delete()


def stream_step(run_pk: int, after: int) -> tuple[list[tuple[int, str, str]], str, float | None]:
    """Advances the run, then returns its events after `after`, its status and when it next changes."""
    run = engine.advance(Run.objects.select_related("thread", "assistant").get(pk=run_pk))
    events = list(run.events.filter(seq__gt=after).order_by("seq").values_list("seq", "event", "data"))
    return events, run.status, run.next_due
