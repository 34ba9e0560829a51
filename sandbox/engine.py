"""The clock: moves runs through their script's actions, lazily, whenever someone reads them.

Script time is real time times the run's speed. A reader calls `advance(run)`; if something is due, the run
row is locked (`select_for_update`, or SQLite's IMMEDIATE transaction) and re-read, so several server
processes reading the same run apply each transition exactly once. Transitions carry the time they were
due, not the time they were noticed, so a run read an hour late still shows honest timestamps.
"""

import json
import math
import time

from django.db import transaction

from . import png, scripts, wire
from .models import File, Message, Run, RunEvent, RunStep, new_id

DEFAULT_CANCEL_SECONDS = 1.0


def tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def knowledge_file(n: int) -> File:
    """The documents file search cites, created on first use (two first uses at once may each make one;
    harmless, the earliest is used from then on)."""
    filename, text = scripts.KNOWLEDGE_BASE[n]
    found = File.objects.filter(filename=filename, purpose="assistants").order_by("seq").first()
    if found:
        return found
    return File.objects.create(
        public_id=new_id("file-"),
        created_at=int(time.time()),
        filename=filename,
        purpose="assistants",
        media_type="text/markdown",
        data=text.encode(),
    )


def context(run: Run) -> scripts.Context:
    state = run.state
    return scripts.Context(
        seed=state.get("seed", 0),
        question=state.get("question", ""),
        max_completion_tokens=run.max_completion_tokens,
        steps=state.get("steps", scripts.DEFAULT_LONG_STEPS),
        queued_seconds=state.get("queued_seconds"),
        outputs=tuple(state.get("outputs", ())),
    )


class Clock:
    """One pass over one locked run: applies actions and records the stream events they cause."""

    def __init__(self, run: Run):
        self.run = run
        self.events: list[RunEvent] = []
        self.plan = scripts.plan(run.script, context(run), run.phase)

    # --- events -----------------------------------------------------------------------------------
    def emit(self, event: str, data: dict) -> None:
        if self.run.record_events:
            data_text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
            self.events.append(RunEvent(run=self.run, event=event, data=data_text))

    def emit_run(self) -> None:
        self.emit(f"thread.run.{self.run.status}", wire.run(self.run))

    def emit_step(self, step: RunStep, status: str | None = None) -> None:
        data = wire.step_of_run(step, self.run, self.run.include_search_content)
        self.emit(f"thread.run.step.{status or step.status}", data)

    def emit_message(self, message: Message, status: str | None = None) -> None:
        data = wire.message(
            message,
            thread_id=self.run.thread.public_id,
            run_id=self.run.public_id,
            assistant_id=self.run.assistant.public_id,
        )
        self.emit(f"thread.message.{status or message.status}", data)

    def emit_step_delta(self, step: RunStep, tool_call: dict) -> None:
        delta = {"step_details": {"type": "tool_calls", "tool_calls": [tool_call]}}
        self.emit(
            "thread.run.step.delta", {"id": step.public_id, "object": "thread.run.step.delta", "delta": delta}
        )

    def flush(self) -> None:
        if self.events:
            RunEvent.objects.bulk_create(self.events)
            self.events = []

    # --- scheduling -------------------------------------------------------------------------------
    def action_due(self) -> float | None:
        run = self.run
        if run.status in ("queued", "in_progress") and run.cursor < len(self.plan):
            return run.phase_started + self.plan[run.cursor].at / run.speed
        return None

    def next_due(self) -> float | None:
        run = self.run
        if run.is_terminal:
            return None
        if run.status == "cancelling":
            return run.cancel_due
        candidates = [t for t in (self.action_due(), run.expires_clock) if t is not None]
        return min(candidates) if candidates else None

    def run_until(self, now: float) -> None:
        run = self.run
        while True:
            due = self.next_due()
            if due is None or due > now:
                break
            if run.status == "cancelling":
                self.finish_cancel(due)
            elif run.expires_clock is not None and run.expires_clock <= due:
                self.expire(run.expires_clock)
            else:
                action = self.plan[run.cursor]
                run.cursor += 1
                getattr(self, f"op_{action.op}")(due, **action.args)
        self.save_run()

    def save_run(self) -> None:
        self.run.next_due = self.next_due()
        self.run.save()
        self.flush()

    # --- helpers ----------------------------------------------------------------------------------
    def new_step(self, at: float, step_type: str, details: dict) -> RunStep:
        run = self.run
        step = RunStep.objects.create(
            public_id=new_id("step_"),
            run=run,
            thread=run.thread,
            assistant=run.assistant,
            created_at=int(at),
            step_type=step_type,
            details=details,
        )
        run.current_step = step
        self.emit_step(step, "created")
        self.emit_step(step, "in_progress")
        return step

    def new_message(self, at: float) -> Message:
        run = self.run
        message = Message.objects.create(
            public_id=new_id("msg_"),
            thread=run.thread,
            run=run,
            assistant=run.assistant,
            created_at=int(at),
            status="in_progress",
            role="assistant",
            content=[],
            attachments=[],
        )
        run.current_message = message
        return message

    def step_usage(self, output_tokens: int) -> dict:
        state = self.run.state
        prompt = state.get("prompt_tokens", 50) + state.get("completion_so_far", 0)
        state["completion_so_far"] = state.get("completion_so_far", 0) + output_tokens
        state["usage_prompt"] = state.get("usage_prompt", 0) + prompt
        state["usage_completion"] = state.get("usage_completion", 0) + output_tokens
        return {
            "prompt_tokens": prompt,
            "completion_tokens": output_tokens,
            "total_tokens": prompt + output_tokens,
        }

    def run_usage(self) -> dict:
        prompt = self.run.state.get("usage_prompt", 0)
        completion = self.run.state.get("usage_completion", 0)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def step_output_tokens(self, step: RunStep) -> int:
        if step.step_type == "message_creation":
            message = Message.objects.filter(public_id=step.details["message_creation"]["message_id"]).first()
            return tokens(message_text(message)) if message else 1
        return tokens(json.dumps(step.details))

    def end_run(self, at: float, status: str, **fields) -> None:
        """A terminal state: open steps and messages close with it, usage is final, expiry is moot."""
        run = self.run
        step_status, message_reason = {
            "cancelled": ("cancelled", "run_cancelled"),
            "expired": ("expired", "run_expired"),
            "failed": ("failed", "run_failed"),
        }.get(status, (None, None))
        if step_status:
            for step in run.steps.filter(status="in_progress").order_by("seq"):
                step.status = step_status
                setattr(step, f"{step_status}_at", int(at))
                if step_status == "failed":
                    step.last_error = {"code": "server_error", "message": "The run failed."}
                step.save()
                self.emit_step(step)
            for message in run.messages.filter(status="in_progress").order_by("seq"):
                message.status = "incomplete"
                message.incomplete_at = int(at)
                message.incomplete_details = {"reason": message_reason}
                message.save()
                self.emit_message(message)
        run.status = status
        run.required_action = None
        run.usage = self.run_usage()
        run.current_step = None
        run.current_message = None
        # The real service nulls expires_at on terminal runs; an expired run keeps it, as the moment it died.
        if status != "expired":
            run.expires_at = None
        for name, value in fields.items():
            setattr(run, name, value)
        self.emit_run()

    # --- engine-driven transitions ----------------------------------------------------------------
    def expire(self, at: float) -> None:
        self.end_run(at, "expired")

    def finish_cancel(self, at: float) -> None:
        self.end_run(at, "cancelled", cancelled_at=int(at))

    # --- script actions (op_<name>) ---------------------------------------------------------------
    def op_start(self, at: float) -> None:
        self.run.status = "in_progress"
        self.run.started_at = int(at)
        self.emit_run()

    def op_message_step(self, at: float) -> None:
        # The spec's order: the step is announced before the message it creates.
        message = self.new_message(at)
        self.new_step(
            at,
            "message_creation",
            {"type": "message_creation", "message_creation": {"message_id": message.public_id}},
        )
        self.emit_message(message, "created")
        self.emit_message(message, "in_progress")

    def op_text(self, at: float, piece: str, annotations: list) -> None:
        message = self.run.current_message
        if not message.content:
            message.content = [{"type": "text", "text": {"value": "", "annotations": []}}]
        text = message.content[0]["text"]
        first = text["value"] == ""
        text["value"] += piece
        delta_annotations = []
        for spec in annotations:
            annotation = self.annotation(spec)
            delta_annotations.append({"index": len(text["annotations"]), **self.delta_annotation(annotation)})
            text["annotations"].append(annotation)
        message.save(update_fields=["content"])
        delta_text = {"value": piece}
        if first or delta_annotations:
            delta_text["annotations"] = delta_annotations
        delta = {"content": [{"index": 0, "type": "text", "text": delta_text}]}
        self.emit(
            "thread.message.delta",
            {"id": message.public_id, "object": "thread.message.delta", "delta": delta},
        )

    def annotation(self, spec: dict) -> dict:
        base = {
            "type": spec["type"],
            "text": spec["text"],
            "start_index": spec["start_index"],
            "end_index": spec["end_index"],
        }
        if spec["type"] == "file_citation":
            return {**base, "file_citation": {"file_id": knowledge_file(spec["kb"]).public_id}}
        # Azure's url_citation, unknown to OpenAI's schema: kept for dashboards to show as they can.
        return {**base, "url_citation": {"url": spec["url"], "title": spec["title"]}}

    @staticmethod
    def delta_annotation(annotation: dict) -> dict:
        if annotation["type"] == "file_citation":
            return {**annotation, "file_citation": {**annotation["file_citation"], "quote": ""}}
        return annotation

    def op_message_image(self, at: float) -> None:
        message = self.run.current_message
        file_id = self.run.state.get("last_image")
        if not file_id:
            return
        part = {"type": "image_file", "image_file": {"file_id": file_id, "detail": "auto"}}
        message.content.append(part)
        message.save(update_fields=["content"])
        delta = {"content": [{"index": len(message.content) - 1, **part}]}
        self.emit(
            "thread.message.delta",
            {"id": message.public_id, "object": "thread.message.delta", "delta": delta},
        )

    def op_message_done(self, at: float, status: str) -> None:
        message = self.run.current_message
        message.status = status
        if status == "completed":
            message.completed_at = int(at)
        else:
            message.incomplete_at = int(at)
            message.incomplete_details = {"reason": "max_tokens"}
        message.save()
        self.emit_message(message)
        self.run.current_message = None

    def op_step_done(self, at: float) -> None:
        step = self.run.current_step
        step.status = "completed"
        step.completed_at = int(at)
        step.usage = self.step_usage(self.step_output_tokens(step))
        step.save()
        self.emit_step(step)
        self.run.current_step = None

    def op_tool_step(self, at: float) -> None:
        self.new_step(at, "tool_calls", {"type": "tool_calls", "tool_calls": []})

    def op_tool_call(self, at: float, call: dict) -> None:
        step = self.run.current_step
        call = {"id": new_id("call_"), **call}
        calls = step.details["tool_calls"]
        calls.append(call)
        step.save(update_fields=["details"])
        delta = {"index": len(calls) - 1, **call}
        if call["type"] == "file_search":
            delta["file_search"] = {}
        self.emit_step_delta(step, delta)

    def op_tool_args(self, at: float, index: int, piece: str) -> None:
        step = self.run.current_step
        step.details["tool_calls"][index]["function"]["arguments"] += piece
        step.save(update_fields=["details"])
        self.emit_step_delta(step, {"index": index, "type": "function", "function": {"arguments": piece}})

    def op_code_input(self, at: float, index: int, piece: str) -> None:
        step = self.run.current_step
        step.details["tool_calls"][index]["code_interpreter"]["input"] += piece
        step.save(update_fields=["details"])
        self.emit_step_delta(
            step, {"index": index, "type": "code_interpreter", "code_interpreter": {"input": piece}}
        )

    def add_code_output(self, index: int, output: dict) -> None:
        step = self.run.current_step
        outputs = step.details["tool_calls"][index]["code_interpreter"]["outputs"]
        outputs.append(output)
        step.save(update_fields=["details"])
        delta_output = {"index": len(outputs) - 1, **output}
        self.emit_step_delta(
            step,
            {"index": index, "type": "code_interpreter", "code_interpreter": {"outputs": [delta_output]}},
        )

    def op_code_logs(self, at: float, index: int, logs: str) -> None:
        self.add_code_output(index, {"type": "logs", "logs": logs})

    def op_code_image(self, at: float, index: int) -> None:
        chart = File.objects.create(
            public_id=new_id("file-"),
            created_at=int(at),
            filename="chart.png",
            purpose="assistants_output",
            media_type="image/png",
            data=png.bar_chart([12, 18, 9, 21]),
        )
        self.run.state["last_image"] = chart.public_id
        self.add_code_output(index, {"type": "image", "image": {"file_id": chart.public_id}})

    def op_search_results(self, at: float, index: int, ranking_options: dict, scores: list[float]) -> None:
        step = self.run.current_step
        results = []
        for n, score in enumerate(scores):
            document = knowledge_file(n % len(scripts.KNOWLEDGE_BASE))
            results.append(
                {
                    "file_id": document.public_id,
                    "file_name": document.filename,
                    "score": score,
                    "content": [{"type": "text", "text": bytes(document.data).decode()}],
                }
            )
        step.details["tool_calls"][index]["file_search"] = {
            "ranking_options": ranking_options,
            "results": results,
        }
        step.save(update_fields=["details"])

    def op_step_fail(self, at: float, message: str) -> None:
        step = self.run.current_step
        step.status = "failed"
        step.failed_at = int(at)
        step.last_error = {"code": "server_error", "message": message}
        step.save()
        self.emit_step(step)
        self.run.current_step = None

    def op_activities_step(self, at: float, activities: list) -> None:
        # Azure AI Foundry's step type beyond OpenAI's two (docs/WIRE.md §9).
        self.new_step(at, "activities", {"type": "activities", "activities": activities})

    def op_quick_step(self, at: float, n: int) -> None:
        """A whole step in one go, for runs with hundreds of steps."""
        kind = n % 4
        if kind == 0:
            self.op_message_step(at)
            self.op_text(at, f"Step {n}: a short note.", [])
            self.op_message_done(at, "completed")
        else:
            self.op_tool_step(at)
            if kind == 1:
                self.op_tool_call(
                    at, {"type": "function", "function": {"name": "lookup", "arguments": "", "output": None}}
                )
                self.op_tool_args(at, 0, json.dumps({"row": n}))
                step = self.run.current_step
                step.details["tool_calls"][0]["function"]["output"] = json.dumps({"row": n, "ok": True})
                step.save(update_fields=["details"])
            elif kind == 2:
                self.op_tool_call(
                    at, {"type": "code_interpreter", "code_interpreter": {"input": "", "outputs": []}}
                )
                self.op_code_input(at, 0, f"print({n} * 2)\n")
                self.op_code_logs(at, 0, f"{n * 2}\n")
            else:
                self.op_tool_call(at, {"type": "file_search", "file_search": {}})
                self.op_search_results(at, 0, {"ranker": "auto", "score_threshold": 0.0}, [0.7])
        self.op_step_done(at)

    def op_require_action(self, at: float) -> None:
        run = self.run
        calls = [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]},
            }
            for c in run.current_step.details["tool_calls"]
            if c["type"] == "function"
        ]
        run.status = "requires_action"
        run.required_action = {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": calls}}
        self.emit_run()

    def op_complete(self, at: float) -> None:
        self.end_run(at, "completed", completed_at=int(at))

    def op_fail(self, at: float, message: str) -> None:
        self.end_run(at, "failed", failed_at=int(at), last_error={"code": "server_error", "message": message})

    def op_incomplete(self, at: float, reason: str) -> None:
        self.end_run(at, "incomplete", incomplete_details={"reason": reason})


def message_text(message: Message) -> str:
    return "".join(part["text"]["value"] for part in message.content if part.get("type") == "text")


def _locked(run: Run) -> Run:
    return Run.objects.select_for_update(of=("self",)).select_related("thread", "assistant").get(pk=run.pk)


def lock_and_advance(run: Run, now: float | None = None) -> Run:
    """For writers inside a transaction: the run locked, re-read and brought up to date."""
    locked = _locked(run)
    Clock(locked).run_until(time.time() if now is None else now)
    return locked


def advance(run: Run, now: float | None = None) -> Run:
    """Applies every transition due by now; a no-op (no lock, no write) when nothing is due."""
    now = time.time() if now is None else now
    if run.next_due is None or run.next_due > now:
        return run
    with transaction.atomic():
        locked = _locked(run)
        Clock(locked).run_until(now)
    return locked


def begin(run: Run, thread_created: dict | None = None) -> None:
    """A run was just created (queued): record its first events and schedule its clock."""
    clock = Clock(run)
    if thread_created is not None:
        clock.emit("thread.created", thread_created)
    clock.emit("thread.run.created", wire.run(run))
    clock.emit_run()
    clock.save_run()


def last_event_seq(run: Run) -> int:
    last = RunEvent.objects.filter(run=run).order_by("-seq").values_list("seq", flat=True).first()
    return last or 0


def submit_tool_outputs(run: Run, outputs: list[dict], now: float) -> None:
    """Fills each function call's output, completes the tool step and resumes the script (phase 1)."""
    clock = Clock(run)
    by_id = {o["tool_call_id"]: o["output"] for o in outputs}
    step = run.current_step
    recorded = []
    for call in step.details["tool_calls"]:
        if call["type"] == "function" and call["id"] in by_id:
            call["function"]["output"] = by_id[call["id"]]
            recorded.append(
                {"tool_call_id": call["id"], "name": call["function"]["name"], "output": by_id[call["id"]]}
            )
    clock.op_step_done(now)
    run.required_action = None
    run.status = "queued"
    run.state["outputs"] = recorded
    run.phase += 1
    run.phase_started = now
    run.cursor = 0
    clock.plan = scripts.plan(run.script, context(run), run.phase)
    clock.emit_run()
    clock.save_run()


def cancel(run: Run, now: float) -> None:
    """`cancelling` at once; `cancelled` after the run's cancel delay (metadata sandbox_cancel_seconds)."""
    clock = Clock(run)
    try:
        delay = float(run.metadata.get("sandbox_cancel_seconds", DEFAULT_CANCEL_SECONDS))
    except (TypeError, ValueError):
        delay = DEFAULT_CANCEL_SECONDS
    run.status = "cancelling"
    run.required_action = None
    run.cancel_due = now + max(0.0, delay) / run.speed
    clock.emit_run()
    clock.save_run()
