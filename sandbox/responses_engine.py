"""The clock of responses: moves each through its script's actions, lazily, whenever someone reads it.

As for runs (engine.py): script time is real time times the response's speed; a reader calls
`advance(response)`, which locks the row only when something is due and applies each transition once, at
the time it was due. Every change a stream would show is recorded as an event with the next
`sequence_number`, so a stream can be replayed, and resumed after any event, by any process.
"""

import base64
import json
import math
import time
import zlib

from django.db import transaction

from . import engine, png, responses_scripts, responses_wire
from .models import Item, Response, ResponseEvent, new_hex_id

_OPEN_STATUSES = ("in_progress", "searching", "interpreting", "calling")
# Item types whose status enum has `failed`, and the one without `incomplete` (each type's own enum).
_CAN_FAIL = {"file_search_call", "code_interpreter_call", "mcp_call", "web_search_call"}
_CANNOT_BE_INCOMPLETE = {"web_search_call"}


def stopped_status(item_type: str, response_status: str) -> str:
    """What an open item becomes when its response stops early."""
    if item_type in _CAN_FAIL and (response_status == "failed" or item_type in _CANNOT_BE_INCOMPLETE):
        return "failed"
    return "incomplete"


def tokens(text: str) -> int:
    return engine.tokens(text) if text else 0


def context(r: Response) -> responses_scripts.Context:
    state = r.state
    return responses_scripts.Context(
        seed=state.get("seed", 0),
        question=state.get("question", ""),
        phase=state.get("phase", "start"),
        background=r.background,
        queued_seconds=state.get("queued_seconds"),
        max_output_tokens=r.params.get("max_output_tokens"),
        items=state.get("items", responses_scripts.DEFAULT_LONG_ITEMS),
        outputs=tuple(tuple(pair) for pair in state.get("outputs", ())),
        approval=state.get("approval") or {},
    )


def output_of(r: Response, include=()) -> list[dict]:
    items = Item.objects.filter(response=r).order_by("output_index").values_list("data", flat=True)
    return [responses_wire.item(data, include) for data in items]


def snapshot(r: Response, include=()) -> dict:
    return responses_wire.response(r, output_of(r, include))


class Clock:
    """One pass over one locked response: applies actions and records the stream events they cause."""

    def __init__(self, r: Response):
        self.r = r
        self.events: list[ResponseEvent] = []
        self.plan = responses_scripts.plan(r.script, context(r))
        self.include = tuple(r.params.get("include") or ())
        self._items: dict[str, Item] = {}

    # --- events -----------------------------------------------------------------------------------
    def emit(self, event_type: str, **fields) -> None:
        r = self.r
        if not r.record_events:
            return
        number = r.next_sequence_number
        r.next_sequence_number += 1
        data = {"type": event_type, **fields, "sequence_number": number}
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        self.events.append(ResponseEvent(response=r, sequence_number=number, event=event_type, data=text))

    def emit_response(self, event_type: str) -> None:
        if self.r.record_events:
            self.emit(event_type, response=snapshot(self.r, self.include))

    def flush(self) -> None:
        if self.events:
            ResponseEvent.objects.bulk_create(self.events)
            self.events = []

    # --- scheduling -------------------------------------------------------------------------------
    def next_due(self) -> float | None:
        r = self.r
        if r.is_terminal or r.cursor >= len(self.plan):
            return None
        return r.started_clock + self.plan[r.cursor].at / r.speed

    def run_until(self, now: float) -> None:
        while True:
            due = self.next_due()
            if due is None or due > now:
                break
            action = self.plan[self.r.cursor]
            self.r.cursor += 1
            getattr(self, f"op_{action.op}")(due, **action.args)
        self.save()

    def save(self) -> None:
        self.r.next_due = self.next_due()
        self.r.save()
        self.flush()

    # --- items ------------------------------------------------------------------------------------
    def wire(self, item: Item) -> dict:
        return responses_wire.item(item.data, self.include)

    def add_item(self, at: float, prefix: str, data: dict) -> Item:
        r = self.r
        index = r.state.get("outputs_added", 0)
        r.state["outputs_added"] = index + 1
        public_id = new_hex_id(prefix)
        item = Item.objects.create(
            public_id=public_id,
            created_at=int(at),
            item_type=data["type"],
            data={"id": public_id, **data},
            response=r,
            output_index=index,
        )
        self._items[public_id] = item
        r.state["current"] = public_id
        self.emit("response.output_item.added", output_index=index, item=self.wire(item))
        return item

    def current(self) -> Item:
        public_id = self.r.state["current"]
        if public_id not in self._items:
            self._items[public_id] = Item.objects.get(public_id=public_id)
        return self._items[public_id]

    def item_event(self, event_type: str, item: Item, **fields) -> None:
        self.emit(event_type, item_id=item.public_id, output_index=item.output_index, **fields)

    def finish(self, item: Item, status: str | None = "completed") -> None:
        """The item is done: saved, shown in the conversation, announced."""
        if status is not None:
            item.data["status"] = status
        item.conversation_id = self.r.conversation_id
        item.save()
        self.emit("response.output_item.done", output_index=item.output_index, item=self.wire(item))
        self.r.state.pop("current", None)

    def usage(self) -> dict:
        """Counted from what the response wrote; reasoning costs more tokens than its summary shows."""
        written, reasoning = 0, 0
        for data in Item.objects.filter(response=self.r).values_list("data", flat=True):
            if data["type"] == "reasoning":
                reasoning += 3 * sum(tokens(part["text"]) for part in data["summary"])
            elif data["type"] == "message":
                written += sum(tokens(part.get("text", "")) for part in data["content"])
            else:
                written += tokens(data.get("arguments") or data.get("code") or "")
        prompt = self.r.state.get("input_tokens", 0)
        return {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": written + reasoning,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": prompt + written + reasoning,
        }

    # --- the end ----------------------------------------------------------------------------------
    def end(self, at: float, status: str, *, announce_items: bool = True, **fields) -> None:
        """A terminal status: open items close with it, usage is final."""
        r = self.r
        for item in Item.objects.filter(response=r).order_by("output_index"):
            if item.data.get("status") in _OPEN_STATUSES:
                item.data["status"] = stopped_status(item.item_type, status)
                item.conversation_id = r.conversation_id
                item.save()
                if announce_items:
                    self.emit(
                        "response.output_item.done", output_index=item.output_index, item=self.wire(item)
                    )
        r.state.pop("current", None)
        if "error" in fields:
            # A stream learns why before it learns that the response failed.
            self.emit("error", code=fields["error"]["code"], message=fields["error"]["message"], param=None)
        r.status = status
        r.usage = self.usage()
        for name, value in fields.items():
            setattr(r, name, value)
        self.emit_response(f"response.{status}")

    # --- script actions (op_<name>) ---------------------------------------------------------------
    def op_start(self, at: float) -> None:
        self.r.status = "in_progress"
        self.emit_response("response.in_progress")

    def op_complete(self, at: float) -> None:
        self.end(at, "completed", completed_at=int(at))

    def op_fail(self, at: float, message: str) -> None:
        self.end(at, "failed", error={"code": "server_error", "message": message})

    def op_incomplete(self, at: float, reason: str) -> None:
        self.end(at, "incomplete", incomplete_details={"reason": reason})

    # messages
    def op_message_add(self, at: float) -> None:
        data = {"type": "message", "status": "in_progress", "content": [], "role": "assistant"}
        item = self.add_item(at, "msg_", data)
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
        item.data["content"].append(part)
        item.save(update_fields=["data"])
        self.item_event("response.content_part.added", item, content_index=0, part=part)

    def op_text(self, at: float, piece: str, annotations: list) -> None:
        item = self.current()
        part = item.data["content"][0]
        part["text"] += piece
        self.item_event("response.output_text.delta", item, content_index=0, delta=piece, logprobs=[])
        for spec in annotations:
            annotation = self.annotation(spec)
            part["annotations"].append(annotation)
            self.item_event(
                "response.output_text.annotation.added",
                item,
                content_index=0,
                annotation_index=len(part["annotations"]) - 1,
                annotation=annotation,
            )
        item.save(update_fields=["data"])

    @staticmethod
    def annotation(spec: dict) -> dict:
        if spec["type"] == "file_citation":
            document = engine.knowledge_file(spec["kb"])
            return {
                "type": "file_citation",
                "file_id": document.public_id,
                "filename": document.filename,
                "index": spec["end_index"],
            }
        return {
            "type": "url_citation",
            "url": spec["url"],
            "title": spec["title"],
            "start_index": spec["start_index"],
            "end_index": spec["end_index"],
        }

    def op_message_done(self, at: float, status: str) -> None:
        item = self.current()
        part = item.data["content"][0]
        self.item_event("response.output_text.done", item, content_index=0, text=part["text"], logprobs=[])
        self.item_event("response.content_part.done", item, content_index=0, part=part)
        self.finish(item, status)

    # reasoning
    def op_reasoning_add(self, at: float) -> None:
        item = self.add_item(at, "rs_", {"type": "reasoning", "summary": [], "status": "in_progress"})
        part = {"type": "summary_text", "text": ""}
        item.data["summary"].append(part)
        item.save(update_fields=["data"])
        self.item_event("response.reasoning_summary_part.added", item, summary_index=0, part=part)

    def op_reasoning_text(self, at: float, piece: str) -> None:
        item = self.current()
        item.data["summary"][0]["text"] += piece
        item.save(update_fields=["data"])
        self.item_event("response.reasoning_summary_text.delta", item, summary_index=0, delta=piece)

    def op_reasoning_done(self, at: float) -> None:
        item = self.current()
        part = item.data["summary"][0]
        self.item_event("response.reasoning_summary_text.done", item, summary_index=0, text=part["text"])
        self.item_event("response.reasoning_summary_part.done", item, summary_index=0, part=part)
        self.finish(item)

    # function calls
    def op_call_add(self, at: float, name: str) -> None:
        call_id = "call_" + new_hex_id("")[:24]
        data = {
            "type": "function_call",
            "status": "in_progress",
            "arguments": "",
            "call_id": call_id,
            "name": name,
        }
        self.add_item(at, "fc_", data)

    def op_call_args(self, at: float, piece: str) -> None:
        item = self.current()
        item.data["arguments"] += piece
        item.save(update_fields=["data"])
        self.item_event("response.function_call_arguments.delta", item, delta=piece)

    def op_call_done(self, at: float) -> None:
        item = self.current()
        self.item_event(
            "response.function_call_arguments.done",
            item,
            name=item.data["name"],
            arguments=item.data["arguments"],
        )
        self.finish(item)

    # web search
    def op_web_add(self, at: float, query: str) -> None:
        data = {
            "type": "web_search_call",
            "status": "in_progress",
            "action": {"type": "search", "query": query},
        }
        item = self.add_item(at, "ws_", data)
        self.item_event("response.web_search_call.in_progress", item)

    def op_web_searching(self, at: float) -> None:
        item = self.current()
        item.data["status"] = "searching"
        item.save(update_fields=["data"])
        self.item_event("response.web_search_call.searching", item)

    def op_web_done(self, at: float, sources: list[str]) -> None:
        item = self.current()
        item.data["action"]["sources"] = [{"type": "url", "url": url} for url in sources]
        self.item_event("response.web_search_call.completed", item)
        self.finish(item)

    # file search
    def op_files_add(self, at: float, query: str) -> None:
        data = {"type": "file_search_call", "status": "in_progress", "queries": [query], "results": None}
        item = self.add_item(at, "fs_", data)
        self.item_event("response.file_search_call.in_progress", item)

    def op_files_searching(self, at: float) -> None:
        item = self.current()
        item.data["status"] = "searching"
        item.save(update_fields=["data"])
        self.item_event("response.file_search_call.searching", item)

    def op_files_done(self, at: float, scores: list[float]) -> None:
        item = self.current()
        results = []
        for n, score in enumerate(scores):
            document = engine.knowledge_file(n % len(engine.scripts.KNOWLEDGE_BASE))
            results.append(
                {
                    "file_id": document.public_id,
                    "filename": document.filename,
                    "score": score,
                    "text": bytes(document.data).decode(),
                    "attributes": {},
                }
            )
        item.data["results"] = results
        self.item_event("response.file_search_call.completed", item)
        self.finish(item)

    # code interpreter
    def op_code_add(self, at: float) -> None:
        data = {
            "type": "code_interpreter_call",
            "status": "in_progress",
            "container_id": new_hex_id("cntr_"),
            "code": "",
            "outputs": None,
        }
        item = self.add_item(at, "ci_", data)
        self.item_event("response.code_interpreter_call.in_progress", item)

    def op_code_text(self, at: float, piece: str) -> None:
        item = self.current()
        item.data["code"] += piece
        item.save(update_fields=["data"])
        self.item_event("response.code_interpreter_call_code.delta", item, delta=piece)

    def op_code_interpreting(self, at: float) -> None:
        item = self.current()
        self.item_event("response.code_interpreter_call_code.done", item, code=item.data["code"])
        item.data["status"] = "interpreting"
        item.save(update_fields=["data"])
        self.item_event("response.code_interpreter_call.interpreting", item)

    def op_code_done(self, at: float, logs: str, image: bool) -> None:
        item = self.current()
        outputs = [{"type": "logs", "logs": logs}]
        if image:
            chart = base64.b64encode(png.bar_chart([12, 18, 9, 21])).decode()
            outputs.append({"type": "image", "url": f"data:image/png;base64,{chart}"})
        item.data["outputs"] = outputs
        self.item_event("response.code_interpreter_call.completed", item)
        self.finish(item)

    # MCP
    def op_tools_listed(self, at: float, server_label: str, tools: list) -> None:
        data = {"type": "mcp_list_tools", "server_label": server_label, "tools": [], "error": None}
        item = self.add_item(at, "mcpl_", data)
        self.item_event("response.mcp_list_tools.in_progress", item)
        item.data["tools"] = tools
        self.item_event("response.mcp_list_tools.completed", item)
        self.finish(item, None)

    def op_approval_request(self, at: float, server_label: str, name: str, arguments: dict) -> None:
        data = {
            "type": "mcp_approval_request",
            "server_label": server_label,
            "name": name,
            "arguments": json.dumps(arguments),
        }
        self.finish(self.add_item(at, "mcpr_", data), None)

    def op_mcp_add(self, at: float, request: dict) -> None:
        data = {
            "type": "mcp_call",
            "status": "in_progress",
            "approval_request_id": request.get("request_id"),
            "server_label": request.get("server_label", responses_scripts.MCP_SERVER),
            "name": request.get("name", "search_docs"),
            "arguments": "",
            "output": None,
            "error": None,
        }
        item = self.add_item(at, "mcp_", data)
        self.item_event("response.mcp_call.in_progress", item)

    def op_mcp_args(self, at: float, piece: str) -> None:
        item = self.current()
        item.data["arguments"] += piece
        item.save(update_fields=["data"])
        self.item_event("response.mcp_call_arguments.delta", item, delta=piece)

    def op_mcp_done(self, at: float, output: str) -> None:
        item = self.current()
        self.item_event("response.mcp_call_arguments.done", item, arguments=item.data["arguments"])
        item.data["output"] = output
        self.item_event("response.mcp_call.completed", item)
        self.finish(item)

    # many items at once
    def op_quick_item(self, at: float, n: int) -> None:
        kind = n % 5
        if kind == 0:
            self.op_message_add(at)
            self.op_text(at, f"Item {n}: a short note.", [])
            self.op_message_done(at, "completed")
        elif kind == 1:
            self.op_reasoning_add(at)
            self.op_reasoning_text(at, f"Thinking about row {n}.")
            self.op_reasoning_done(at)
        elif kind == 2:
            self.op_web_add(at, f"row {n}")
            self.op_web_done(at, [f"https://www.example.com/rows/{n}"])
        elif kind == 3:
            self.op_files_add(at, f"row {n}")
            self.op_files_done(at, [0.7])
        else:
            self.op_code_add(at)
            self.op_code_text(at, f"print({n} * 2)\n")
            self.op_code_done(at, f"{n * 2}\n", image=False)


def _locked(r: Response) -> Response:
    return Response.objects.select_for_update(of=("self",)).get(pk=r.pk)


def lock_and_advance(r: Response, now: float | None = None) -> Response:
    """For writers inside a transaction: the response locked, re-read and brought up to date."""
    locked = _locked(r)
    Clock(locked).run_until(time.time() if now is None else now)
    return locked


def advance(r: Response, now: float | None = None) -> Response:
    """Applies every transition due by now; a no-op (no lock, no write) when nothing is due."""
    now = time.time() if now is None else now
    if r.next_due is None or r.next_due > now:
        return r
    with transaction.atomic():
        return lock_and_advance(r, now)


def begin(r: Response, now: float) -> None:
    """A response was just created: record its first events and schedule its clock."""
    clock = Clock(r)
    clock.emit_response("response.created")
    clock.emit_response("response.queued" if r.background else "response.in_progress")
    clock.run_until(now)


def cancel(r: Response, now: float) -> None:
    """Cancelled at once (the Responses API has no `cancelling`): open items end incomplete."""
    clock = Clock(r)
    clock.end(now, "cancelled", announce_items=False)
    clock.save()


def seed_of(public_id: str) -> int:
    return zlib.crc32(public_id.encode())


def input_tokens(texts: list[str]) -> int:
    return max(1, math.ceil(sum(len(t) for t in texts) / 4)) + 20
