"""Typed, tolerant views of what an upstream sends: runs, steps, tool calls, messages, threads, assistants.

Upstream JSON is untrusted. Every parser here accepts missing or null fields, values of the wrong type
(read as "absent"), unknown statuses (kept as strings) and unknown step, tool-call and content types
(kept as `Unknown*` objects with their type name). Every object keeps its `raw` JSON, so nothing an
upstream said is ever lost to the page.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import BadResponse
from .text import loads, to_json

RUN_STATUSES = (
    "queued",
    "in_progress",
    "requires_action",
    "cancelling",
    "cancelled",
    "failed",
    "completed",
    "incomplete",
    "expired",
)
RUN_TERMINAL = frozenset({"cancelled", "failed", "completed", "incomplete", "expired"})
STEP_STATUSES = ("in_progress", "cancelled", "failed", "completed", "expired")
STEP_TERMINAL = frozenset({"cancelled", "failed", "completed", "expired"})

# What an id may look like before it is put in an upstream URL: a known prefix and URL-safe characters.
ID_PATTERNS = {
    "thread": re.compile(r"^thread_[A-Za-z0-9_-]{1,128}$"),
    "run": re.compile(r"^run_[A-Za-z0-9_-]{1,128}$"),
    "step": re.compile(r"^step_[A-Za-z0-9_-]{1,128}$"),
    "message": re.compile(r"^msg_[A-Za-z0-9_-]{1,128}$"),
    "assistant": re.compile(r"^asst_[A-Za-z0-9_-]{1,128}$"),
    "call": re.compile(r"^call_[A-Za-z0-9_-]{1,128}$"),
    "file": re.compile(r"^(file|assistant)[-_][A-Za-z0-9_-]{1,128}$"),
    # The Responses shape: responses, conversations, and items of every kind (msg_, fc_, rs_, mcpr_, …).
    "response": re.compile(r"^resp_[A-Za-z0-9_-]{1,128}$"),
    "conversation": re.compile(r"^conv_[A-Za-z0-9_-]{1,128}$"),
    "item": re.compile(r"^[A-Za-z]{1,16}_[A-Za-z0-9_-]{1,128}$"),
}


def is_id(kind: str, value: object) -> bool:
    return isinstance(value, str) and bool(ID_PATTERNS[kind].fullmatch(value))


# --- tolerant readers: a value of the wrong type counts as missing --------------------------------


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


#: Integers beyond what JSON numbers hold exactly are not timestamps or token counts (the raw JSON
#: still shows them); arithmetic on them (durations as floats) would overflow.
MAX_INT = 2**53


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > MAX_INT:
        return None
    return value


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _dicts(value: Any) -> list[dict]:
    return [item for item in _list(value) if isinstance(item, dict)]


def _metadata(value: Any) -> dict[str, str]:
    # Keys and values should be strings; anything else is shown as its JSON rather than dropped.
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in _dict(value).items()}


def _require_object(data: Any, what: str) -> dict:
    if not isinstance(data, dict):
        raise BadResponse(f"Expected a {what} object, got {type(data).__name__}.")
    return data


def pretty_json(text: str | None) -> str:
    """Function arguments and outputs are JSON text: indent them when they parse, else show as sent.

    The JSON inside the text may hold escapes of lone surrogates or NUL: they stay escapes (text.py)."""
    if not text:
        return text or ""
    try:
        return to_json(loads(text), indent=2)
    except (ValueError, RecursionError):
        return text


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None

    @classmethod
    def from_json(cls, data: Any) -> Usage | None:
        if not isinstance(data, dict):
            return None
        return cls(
            _int(data.get("prompt_tokens")),
            _int(data.get("completion_tokens")),
            _int(data.get("total_tokens")),
        )

    @property
    def consistent(self) -> bool:
        parts = (self.prompt_tokens, self.completion_tokens, self.total_tokens)
        return None in parts or self.prompt_tokens + self.completion_tokens == self.total_tokens


@dataclass(frozen=True, slots=True)
class LastError:
    code: str | None
    message: str

    @classmethod
    def from_json(cls, data: Any) -> LastError | None:
        if not isinstance(data, dict):
            return None
        return cls(_str(data.get("code")), _str(data.get("message")) or "")


# --- tool calls ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FunctionCall:
    id: str
    name: str
    arguments: str
    output: str | None
    raw: dict
    type: str = "function"

    @property
    def pretty_arguments(self) -> str:
        return pretty_json(self.arguments)

    @property
    def pretty_output(self) -> str:
        return pretty_json(self.output)


@dataclass(frozen=True, slots=True)
class CodeOutput:
    type: str  # "logs", "image" or whatever else the upstream invents
    logs: str | None
    file_id: str | None
    raw: dict


@dataclass(frozen=True, slots=True)
class CodeInterpreterCall:
    id: str
    input: str
    outputs: list[CodeOutput]
    raw: dict
    type: str = "code_interpreter"


@dataclass(frozen=True, slots=True)
class FileSearchResult:
    file_id: str
    file_name: str
    score: float | None
    #: None when the upstream was not asked for content (`include[]`), else the text parts.
    content: list[str] | None


@dataclass(frozen=True, slots=True)
class FileSearchCall:
    id: str
    ranker: str | None
    score_threshold: float | None
    results: list[FileSearchResult]
    raw: dict
    type: str = "file_search"


@dataclass(frozen=True, slots=True)
class UnknownToolCall:
    """A tool-call type this dashboard does not know (e.g. Azure's bing_grounding): shown as raw JSON."""

    id: str
    type: str
    raw: dict


ToolCall = FunctionCall | CodeInterpreterCall | FileSearchCall | UnknownToolCall


def parse_tool_call(data: dict) -> ToolCall:
    call_id = _str(data.get("id")) or ""
    kind = _str(data.get("type")) or "(missing type)"
    if kind == "function":
        fn = _dict(data.get("function"))
        return FunctionCall(
            call_id, _str(fn.get("name")) or "", _str(fn.get("arguments")) or "", _str(fn.get("output")), data
        )
    if kind == "code_interpreter":
        ci = _dict(data.get("code_interpreter"))
        outputs = [
            CodeOutput(
                _str(o.get("type")) or "(missing type)",
                _str(o.get("logs")),
                _str(_dict(o.get("image")).get("file_id")),
                o,
            )
            for o in _dicts(ci.get("outputs"))
        ]
        return CodeInterpreterCall(call_id, _str(ci.get("input")) or "", outputs, data)
    if kind == "file_search":
        fs = _dict(data.get("file_search"))
        ranking = _dict(fs.get("ranking_options"))
        results = []
        for r in _dicts(fs.get("results")):
            content = r.get("content")
            texts = None
            if isinstance(content, list):
                texts = [_str(_dict(part).get("text")) or "" for part in content]
            results.append(
                FileSearchResult(
                    _str(r.get("file_id")) or "", _str(r.get("file_name")) or "", _num(r.get("score")), texts
                )
            )
        return FileSearchCall(
            call_id, _str(ranking.get("ranker")), _num(ranking.get("score_threshold")), results, data
        )
    return UnknownToolCall(call_id, kind, data)


# --- runs ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequiredAction:
    type: str
    tool_calls: list[FunctionCall]

    @classmethod
    def from_json(cls, data: Any) -> RequiredAction | None:
        if not isinstance(data, dict):
            return None
        calls = _dicts(_dict(data.get("submit_tool_outputs")).get("tool_calls"))
        parsed = [parse_tool_call(c) for c in calls]
        return cls(
            _str(data.get("type")) or "(missing type)", [c for c in parsed if isinstance(c, FunctionCall)]
        )


@dataclass(frozen=True, slots=True)
class Run:
    id: str
    thread_id: str
    assistant_id: str
    status: str
    created_at: int | None
    started_at: int | None
    expires_at: int | None
    cancelled_at: int | None
    failed_at: int | None
    completed_at: int | None
    model: str
    instructions: str | None
    tools: list[dict]
    metadata: dict[str, str]
    usage: Usage | None
    last_error: LastError | None
    incomplete_reason: str | None
    required_action: RequiredAction | None
    temperature: float | None
    top_p: float | None
    max_prompt_tokens: int | None
    max_completion_tokens: int | None
    truncation_strategy: Any
    tool_choice: Any
    parallel_tool_calls: bool | None
    response_format: Any
    raw: dict = field(repr=False)
    #: Response headers of the call that fetched it (request id, poll-after hint).
    info: ResponseInfo | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Run:
        d = _require_object(data, "run")
        ptc = d.get("parallel_tool_calls")
        return cls(
            id=_str(d.get("id")) or "",
            thread_id=_str(d.get("thread_id")) or "",
            assistant_id=_str(d.get("assistant_id")) or "",
            status=_str(d.get("status")) or "(missing status)",
            created_at=_int(d.get("created_at")),
            started_at=_int(d.get("started_at")),
            expires_at=_int(d.get("expires_at")),
            cancelled_at=_int(d.get("cancelled_at")),
            failed_at=_int(d.get("failed_at")),
            completed_at=_int(d.get("completed_at")),
            model=_str(d.get("model")) or "",
            instructions=_str(d.get("instructions")),
            tools=_dicts(d.get("tools")),
            metadata=_metadata(d.get("metadata")),
            usage=Usage.from_json(d.get("usage")),
            last_error=LastError.from_json(d.get("last_error")),
            incomplete_reason=_str(_dict(d.get("incomplete_details")).get("reason")),
            required_action=RequiredAction.from_json(d.get("required_action")),
            temperature=_num(d.get("temperature")),
            top_p=_num(d.get("top_p")),
            max_prompt_tokens=_int(d.get("max_prompt_tokens")),
            max_completion_tokens=_int(d.get("max_completion_tokens")),
            truncation_strategy=d.get("truncation_strategy"),
            tool_choice=d.get("tool_choice"),
            parallel_tool_calls=ptc if isinstance(ptc, bool) else None,
            response_format=d.get("response_format"),
            raw=d,
        )

    @property
    def is_terminal(self) -> bool:
        return self.status in RUN_TERMINAL

    @property
    def status_known(self) -> bool:
        return self.status in RUN_STATUSES

    @property
    def ended_at(self) -> int | None:
        return self.completed_at or self.failed_at or self.cancelled_at

    @property
    def pending_calls(self) -> list[FunctionCall]:
        if self.status != "requires_action" or not self.required_action:
            return []
        return self.required_action.tool_calls


# --- steps -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageCreation:
    message_id: str
    type: str = "message_creation"


@dataclass(frozen=True, slots=True)
class ToolCalls:
    tool_calls: list[ToolCall]
    type: str = "tool_calls"


@dataclass(frozen=True, slots=True)
class UnknownDetails:
    type: str
    raw: dict


StepDetails = MessageCreation | ToolCalls | UnknownDetails


def parse_step_details(data: Any) -> StepDetails:
    d = _dict(data)
    kind = _str(d.get("type")) or "(missing type)"
    if kind == "message_creation":
        return MessageCreation(_str(_dict(d.get("message_creation")).get("message_id")) or "")
    if kind == "tool_calls":
        return ToolCalls([parse_tool_call(c) for c in _dicts(d.get("tool_calls"))])
    return UnknownDetails(kind, d)


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    run_id: str
    thread_id: str
    assistant_id: str
    type: str
    status: str
    created_at: int | None
    completed_at: int | None
    cancelled_at: int | None
    failed_at: int | None
    expired_at: int | None
    last_error: LastError | None
    usage: Usage | None
    metadata: dict[str, str]
    details: StepDetails
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Step:
        d = _require_object(data, "run step")
        return cls(
            id=_str(d.get("id")) or "",
            run_id=_str(d.get("run_id")) or "",
            thread_id=_str(d.get("thread_id")) or "",
            assistant_id=_str(d.get("assistant_id")) or "",
            type=_str(d.get("type")) or "(missing type)",
            status=_str(d.get("status")) or "(missing status)",
            created_at=_int(d.get("created_at")),
            completed_at=_int(d.get("completed_at")),
            cancelled_at=_int(d.get("cancelled_at")),
            failed_at=_int(d.get("failed_at")),
            # The schema says expired_at; the spec's own stream examples say expires_at.
            expired_at=_int(d.get("expired_at")) or _int(d.get("expires_at")),
            last_error=LastError.from_json(d.get("last_error")),
            usage=Usage.from_json(d.get("usage")),
            metadata=_metadata(d.get("metadata")),
            details=parse_step_details(d.get("step_details")),
            raw=d,
        )

    @property
    def is_terminal(self) -> bool:
        return self.status in STEP_TERMINAL

    @property
    def status_known(self) -> bool:
        return self.status in STEP_STATUSES

    @property
    def ended_at(self) -> int | None:
        return self.completed_at or self.failed_at or self.cancelled_at or self.expired_at


# --- messages, threads, assistants ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Annotation:
    type: str
    text: str
    file_id: str
    start_index: int | None
    end_index: int | None


@dataclass(frozen=True, slots=True)
class TextPart:
    value: str
    annotations: list[Annotation]
    type: str = "text"


@dataclass(frozen=True, slots=True)
class ImageFilePart:
    file_id: str
    type: str = "image_file"


@dataclass(frozen=True, slots=True)
class ImageUrlPart:
    url: str
    type: str = "image_url"


@dataclass(frozen=True, slots=True)
class RefusalPart:
    refusal: str
    type: str = "refusal"


@dataclass(frozen=True, slots=True)
class UnknownPart:
    type: str
    raw: dict


ContentPart = TextPart | ImageFilePart | ImageUrlPart | RefusalPart | UnknownPart


def parse_content_part(data: dict) -> ContentPart:
    kind = _str(data.get("type")) or "(missing type)"
    if kind == "text":
        text = data.get("text")
        # Requests carry text as a plain string; objects as {value, annotations}.
        if isinstance(text, str):
            return TextPart(text, [])
        text = _dict(text)
        annotations = []
        for a in _dicts(text.get("annotations")):
            a_type = _str(a.get("type")) or "(missing type)"
            target = _dict(a.get(a_type)) if a_type in ("file_citation", "file_path") else {}
            annotations.append(
                Annotation(
                    a_type,
                    _str(a.get("text")) or "",
                    _str(target.get("file_id")) or "",
                    _int(a.get("start_index")),
                    _int(a.get("end_index")),
                )
            )
        return TextPart(_str(text.get("value")) or "", annotations)
    if kind == "image_file":
        return ImageFilePart(_str(_dict(data.get("image_file")).get("file_id")) or "")
    if kind == "image_url":
        return ImageUrlPart(_str(_dict(data.get("image_url")).get("url")) or "")
    if kind == "refusal":
        return RefusalPart(_str(data.get("refusal")) or "")
    return UnknownPart(kind, data)


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    thread_id: str
    role: str
    status: str
    created_at: int | None
    completed_at: int | None
    incomplete_at: int | None
    incomplete_reason: str | None
    assistant_id: str | None
    run_id: str | None
    content: list[ContentPart]
    attachments: list[dict]
    metadata: dict[str, str]
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Message:
        d = _require_object(data, "message")
        content = d.get("content")
        if isinstance(content, str):  # tolerate the request shape
            parts: list[ContentPart] = [TextPart(content, [])]
        else:
            parts = [parse_content_part(p) for p in _dicts(content)]
        return cls(
            id=_str(d.get("id")) or "",
            thread_id=_str(d.get("thread_id")) or "",
            role=_str(d.get("role")) or "(missing role)",
            status=_str(d.get("status")) or "",
            created_at=_int(d.get("created_at")),
            completed_at=_int(d.get("completed_at")),
            incomplete_at=_int(d.get("incomplete_at")),
            incomplete_reason=_str(_dict(d.get("incomplete_details")).get("reason")),
            assistant_id=_str(d.get("assistant_id")),
            run_id=_str(d.get("run_id")),
            content=parts,
            attachments=_dicts(d.get("attachments")),
            metadata=_metadata(d.get("metadata")),
            raw=d,
        )

    @property
    def text(self) -> str:
        return "\n\n".join(p.value for p in self.content if isinstance(p, TextPart))


@dataclass(frozen=True, slots=True)
class Thread:
    id: str
    created_at: int | None
    metadata: dict[str, str]
    tool_resources: dict
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Thread:
        d = _require_object(data, "thread")
        return cls(
            _str(d.get("id")) or "",
            _int(d.get("created_at")),
            _metadata(d.get("metadata")),
            _dict(d.get("tool_resources")),
            d,
        )


@dataclass(frozen=True, slots=True)
class Assistant:
    id: str
    name: str | None
    description: str | None
    model: str
    instructions: str | None
    tools: list[dict]
    metadata: dict[str, str]
    created_at: int | None
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Assistant:
        d = _require_object(data, "assistant")
        return cls(
            _str(d.get("id")) or "",
            _str(d.get("name")),
            _str(d.get("description")),
            _str(d.get("model")) or "",
            _str(d.get("instructions")),
            _dicts(d.get("tools")),
            _metadata(d.get("metadata")),
            _int(d.get("created_at")),
            d,
        )

    @property
    def label(self) -> str:
        return self.name or self.id


# --- lists -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResponseInfo:
    """What the response headers said: for logs, audit records and the watcher's pace."""

    request_id: str | None
    poll_after_ms: int | None


@dataclass(frozen=True, slots=True)
class Page[T]:
    data: list[T]
    has_more: bool
    first_id: str | None
    last_id: str | None
    info: ResponseInfo | None = None

    @property
    def next_after(self) -> str | None:
        """The cursor for the next page: the id of the last item (as the SDK does; Azure omits first_id)."""
        if not self.has_more or not self.data:
            return None
        return getattr(self.data[-1], "id", None) or self.last_id

    @classmethod
    def from_json(cls, data: Any, parse) -> Page:
        d = _require_object(data, "list")
        items = d.get("data")
        if not isinstance(items, list):
            raise BadResponse("The list response has no 'data' array.")
        return cls(
            [parse(item) for item in items],
            d.get("has_more") is True,
            _str(d.get("first_id")),
            _str(d.get("last_id")),
        )


# --- streaming -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepDelta:
    """A `thread.run.step.delta`: pieces of tool-call arguments, code input or outputs to append."""

    id: str
    details: dict

    @classmethod
    def from_json(cls, data: Any) -> StepDelta:
        d = _require_object(data, "run step delta")
        return cls(_str(d.get("id")) or "", _dict(_dict(d.get("delta")).get("step_details")))

    @property
    def tool_call_pieces(self) -> list[dict]:
        return _dicts(self.details.get("tool_calls"))


@dataclass(frozen=True, slots=True)
class MessageDelta:
    """A `thread.message.delta`: text to append to a message's content parts, by index."""

    id: str
    parts: list[dict]

    @classmethod
    def from_json(cls, data: Any) -> MessageDelta:
        d = _require_object(data, "message delta")
        return cls(_str(d.get("id")) or "", _dicts(_dict(d.get("delta")).get("content")))

    @property
    def text(self) -> str:
        return "".join(_str(_dict(p.get("text")).get("value")) or "" for p in self.parts)


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One server-sent event: its name and the typed object (or raw JSON for names not known here)."""

    event: str
    data: Any
