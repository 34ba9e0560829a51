"""Typed, tolerant views of the Responses + Conversations shape: responses, conversations, items, events.

As in objects.py: upstream JSON is untrusted. A field of the wrong type counts as missing, unknown
statuses are kept as strings, and item types this dashboard does not know become `UnknownItem`s shown as
their raw JSON. Every object keeps its `raw` JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .objects import (
    LastError,
    ResponseInfo,
    _dict,
    _dicts,
    _int,
    _list,
    _metadata,
    _num,
    _require_object,
    _str,
    pretty_json,
)

RESPONSE_STATUSES = ("queued", "in_progress", "completed", "failed", "cancelled", "incomplete")
RESPONSE_TERMINAL = frozenset({"completed", "failed", "cancelled", "incomplete"})
#: Item types a response writes (its output) rather than reads (its input): the conversation timeline
#: groups these under the response that produced them.
OUTPUT_TYPES = frozenset(
    {
        "message/assistant",
        "function_call",
        "reasoning",
        "web_search_call",
        "file_search_call",
        "code_interpreter_call",
        "mcp_list_tools",
        "mcp_approval_request",
        "mcp_call",
        "image_generation_call",
        "computer_call",
        "local_shell_call",
        "custom_tool_call",
    }
)


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


# --- content of messages -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Citation:
    """An annotation of output text: a file (file_citation, file_path) or a web page (url_citation)."""

    type: str
    file_id: str
    filename: str
    url: str
    title: str
    raw: dict


@dataclass(frozen=True, slots=True)
class Part:
    """One content part: input_text, output_text, refusal, input_image, input_file, or one not known."""

    type: str
    text: str
    citations: list[Citation]
    #: input_image's URL (or a data: URL), input_file's URL: shown as text unless it is http(s).
    url: str
    file_id: str
    filename: str
    raw: dict

    @property
    def is_text(self) -> bool:
        return self.type in ("input_text", "output_text", "text", "summary_text", "reasoning_text")


def parse_part(data: dict) -> Part:
    kind = _str(data.get("type")) or "(missing type)"
    citations = []
    for a in _dicts(data.get("annotations")):
        citations.append(
            Citation(
                _str(a.get("type")) or "(missing type)",
                _str(a.get("file_id")) or "",
                _str(a.get("filename")) or "",
                _str(a.get("url")) or "",
                _str(a.get("title")) or "",
                a,
            )
        )
    text = _str(data.get("text"))
    if text is None and kind == "refusal":
        text = _str(data.get("refusal"))
    return Part(
        kind,
        text or "",
        citations,
        _str(data.get("image_url")) or _str(data.get("file_url")) or "",
        _str(data.get("file_id")) or "",
        _str(data.get("filename")) or "",
        data,
    )


# --- items -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageItem:
    id: str
    role: str
    status: str
    content: list[Part]
    raw: dict = field(repr=False)
    type: str = "message"

    @property
    def text(self) -> str:
        return "\n\n".join(p.text for p in self.content if p.is_text)


@dataclass(frozen=True, slots=True)
class FunctionCallItem:
    id: str
    call_id: str
    name: str
    arguments: str
    status: str
    raw: dict = field(repr=False)
    type: str = "function_call"

    @property
    def pretty_arguments(self) -> str:
        return pretty_json(self.arguments)


@dataclass(frozen=True, slots=True)
class FunctionCallOutputItem:
    id: str
    call_id: str
    #: The output as sent: a string, or (newer API) a list of content parts shown as JSON.
    output: str
    status: str
    raw: dict = field(repr=False)
    type: str = "function_call_output"

    @property
    def pretty_output(self) -> str:
        return pretty_json(self.output)


@dataclass(frozen=True, slots=True)
class ReasoningItem:
    id: str
    summary: list[str]
    content: list[str]
    encrypted: bool
    status: str
    raw: dict = field(repr=False)
    type: str = "reasoning"


@dataclass(frozen=True, slots=True)
class WebSearchCallItem:
    id: str
    status: str
    action: str
    query: str
    sources: list[str]
    raw: dict = field(repr=False)
    type: str = "web_search_call"


@dataclass(frozen=True, slots=True)
class FileSearchResultItem:
    file_id: str
    filename: str
    score: float | None
    text: str | None


@dataclass(frozen=True, slots=True)
class FileSearchCallItem:
    id: str
    status: str
    queries: list[str]
    #: None when the upstream was not asked for them (`include`).
    results: list[FileSearchResultItem] | None
    raw: dict = field(repr=False)
    type: str = "file_search_call"


@dataclass(frozen=True, slots=True)
class CodeOutputItem:
    type: str  # "logs", "image" or whatever else the upstream invents
    logs: str | None
    url: str | None
    raw: dict


@dataclass(frozen=True, slots=True)
class CodeInterpreterCallItem:
    id: str
    status: str
    code: str
    container_id: str
    #: None when the upstream was not asked for them (`include`).
    outputs: list[CodeOutputItem] | None
    raw: dict = field(repr=False)
    type: str = "code_interpreter_call"


@dataclass(frozen=True, slots=True)
class McpListToolsItem:
    id: str
    server_label: str
    tools: list[dict]
    error: str | None
    status: str
    raw: dict = field(repr=False)
    type: str = "mcp_list_tools"


@dataclass(frozen=True, slots=True)
class McpApprovalRequestItem:
    id: str
    server_label: str
    name: str
    arguments: str
    status: str
    raw: dict = field(repr=False)
    type: str = "mcp_approval_request"

    @property
    def pretty_arguments(self) -> str:
        return pretty_json(self.arguments)


@dataclass(frozen=True, slots=True)
class McpApprovalResponseItem:
    id: str
    approval_request_id: str
    approve: bool | None
    reason: str | None
    status: str
    raw: dict = field(repr=False)
    type: str = "mcp_approval_response"


@dataclass(frozen=True, slots=True)
class McpCallItem:
    id: str
    server_label: str
    name: str
    arguments: str
    output: str | None
    error: str | None
    approval_request_id: str
    status: str
    raw: dict = field(repr=False)
    type: str = "mcp_call"

    @property
    def pretty_arguments(self) -> str:
        return pretty_json(self.arguments)

    @property
    def pretty_output(self) -> str:
        return pretty_json(self.output)


@dataclass(frozen=True, slots=True)
class UnknownItem:
    """An item type this dashboard does not know (computer use, image generation, a vendor's own…):
    shown as its raw JSON."""

    id: str
    type: str
    status: str
    raw: dict = field(repr=False)


Item = (
    MessageItem
    | FunctionCallItem
    | FunctionCallOutputItem
    | ReasoningItem
    | WebSearchCallItem
    | FileSearchCallItem
    | CodeInterpreterCallItem
    | McpListToolsItem
    | McpApprovalRequestItem
    | McpApprovalResponseItem
    | McpCallItem
    | UnknownItem
)


def _text_or_json(value: Any) -> str:
    """A field that should be text, shown as its JSON when it is something else (and not missing)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return ""


def _error_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return _str(_dict(value).get("message")) or _text_or_json(value)


def parse_item(data: Any) -> Item:
    """One item of a response's input or output, or of a conversation."""
    d = _require_object(data, "item")
    item_id = _str(d.get("id")) or ""
    kind = _str(d.get("type"))
    if kind is None and "role" in d:
        kind = "message"  # the shorthand input {"role": "user", "content": "…"} has no type
    kind = kind or "(missing type)"
    status = _str(d.get("status")) or ""
    if kind == "message":
        content = d.get("content")
        if isinstance(content, str):
            parts = [Part("input_text", content, [], "", "", "", {"type": "input_text", "text": content})]
        else:
            parts = [parse_part(p) for p in _dicts(content)]
        return MessageItem(item_id, _str(d.get("role")) or "(missing role)", status, parts, d)
    if kind == "function_call":
        return FunctionCallItem(
            item_id,
            _str(d.get("call_id")) or "",
            _str(d.get("name")) or "",
            _str(d.get("arguments")) or "",
            status,
            d,
        )
    if kind == "function_call_output":
        return FunctionCallOutputItem(
            item_id, _str(d.get("call_id")) or "", _text_or_json(d.get("output")), status, d
        )
    if kind == "reasoning":
        return ReasoningItem(
            item_id,
            [_str(p.get("text")) or "" for p in _dicts(d.get("summary"))],
            [_str(p.get("text")) or "" for p in _dicts(d.get("content"))],
            bool(_str(d.get("encrypted_content"))),
            status,
            d,
        )
    if kind == "web_search_call":
        action = _dict(d.get("action"))
        sources = [_str(s.get("url")) or "" for s in _dicts(action.get("sources"))]
        return WebSearchCallItem(
            item_id,
            status,
            _str(action.get("type")) or "",
            _str(action.get("query")) or _str(action.get("url")) or "",
            [s for s in sources if s],
            d,
        )
    if kind == "file_search_call":
        results = None
        if isinstance(d.get("results"), list):
            results = [
                FileSearchResultItem(
                    _str(r.get("file_id")) or "",
                    _str(r.get("filename")) or "",
                    _num(r.get("score")),
                    _str(r.get("text")),
                )
                for r in _dicts(d.get("results"))
            ]
        queries = [q for q in _list(d.get("queries")) if isinstance(q, str)]
        return FileSearchCallItem(item_id, status, queries, results, d)
    if kind == "code_interpreter_call":
        outputs = None
        if isinstance(d.get("outputs"), list):
            outputs = [
                CodeOutputItem(
                    _str(o.get("type")) or "(missing type)", _str(o.get("logs")), _str(o.get("url")), o
                )
                for o in _dicts(d.get("outputs"))
            ]
        return CodeInterpreterCallItem(
            item_id, status, _str(d.get("code")) or "", _str(d.get("container_id")) or "", outputs, d
        )
    if kind == "mcp_list_tools":
        return McpListToolsItem(
            item_id,
            _str(d.get("server_label")) or "",
            _dicts(d.get("tools")),
            _error_text(d.get("error")),
            status,
            d,
        )
    if kind == "mcp_approval_request":
        return McpApprovalRequestItem(
            item_id,
            _str(d.get("server_label")) or "",
            _str(d.get("name")) or "",
            _text_or_json(d.get("arguments")),
            status,
            d,
        )
    if kind == "mcp_approval_response":
        return McpApprovalResponseItem(
            item_id,
            _str(d.get("approval_request_id")) or "",
            _bool(d.get("approve")),
            _str(d.get("reason")),
            status,
            d,
        )
    if kind == "mcp_call":
        output = d.get("output")
        return McpCallItem(
            item_id,
            _str(d.get("server_label")) or "",
            _str(d.get("name")) or "",
            _text_or_json(d.get("arguments")),
            None if output is None else _text_or_json(output),
            _error_text(d.get("error")),
            _str(d.get("approval_request_id")) or "",
            status,
            d,
        )
    return UnknownItem(item_id, kind, status, d)


def produced_by_a_response(item: Item) -> bool:
    """Whether a response wrote this item (else it was given to one: a user message, a function's output,
    an approval)."""
    if isinstance(item, MessageItem):
        return item.role == "assistant"
    return item.type in OUTPUT_TYPES


# --- responses and conversations -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResponseUsage:
    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None
    reasoning_tokens: int | None
    cached_tokens: int | None

    @classmethod
    def from_json(cls, data: Any) -> ResponseUsage | None:
        if not isinstance(data, dict):
            return None
        return cls(
            _int(data.get("input_tokens")),
            _int(data.get("output_tokens")),
            _int(data.get("total_tokens")),
            _int(_dict(data.get("output_tokens_details")).get("reasoning_tokens")),
            _int(_dict(data.get("input_tokens_details")).get("cached_tokens")),
        )

    @property
    def consistent(self) -> bool:
        parts = (self.input_tokens, self.output_tokens, self.total_tokens)
        return None in parts or self.input_tokens + self.output_tokens == self.total_tokens


def _conversation_id(value: Any) -> str:
    """`conversation` is `{"id": …}` in answers and may be the bare id in requests."""
    if isinstance(value, str):
        return value
    return _str(_dict(value).get("id")) or ""


def _agent(value: Any) -> str:
    """Azure AI Foundry's agent reference, as `name` or `name:version`."""
    agent = _dict(value)
    name, version = _str(agent.get("name")) or "", _str(agent.get("version")) or ""
    return f"{name}:{version}" if name and version else name


@dataclass(frozen=True, slots=True)
class Response:
    id: str
    status: str
    created_at: int | None
    completed_at: int | None
    background: bool | None
    model: str
    agent: str
    #: Text instructions; instructions given as items (a prompt's) are in `instruction_items`.
    instructions: str | None
    instruction_items: list[Item]
    tools: list[dict]
    tool_choice: Any
    parallel_tool_calls: bool | None
    temperature: float | None
    top_p: float | None
    max_output_tokens: int | None
    max_tool_calls: int | None
    truncation: Any
    text_format: Any
    reasoning: Any
    store: bool | None
    usage: ResponseUsage | None
    error: LastError | None
    incomplete_reason: str | None
    previous_response_id: str
    conversation_id: str
    metadata: dict[str, str]
    output: list[Item]
    raw: dict = field(repr=False)
    #: Response headers of the call that fetched it (request id).
    info: ResponseInfo | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Response:
        d = _require_object(data, "response")
        instructions = d.get("instructions")
        output = []
        for item in _list(d.get("output")):
            if isinstance(item, dict):
                output.append(parse_item(item))
        return cls(
            id=_str(d.get("id")) or "",
            status=_str(d.get("status")) or "(missing status)",
            created_at=_int(d.get("created_at")),
            completed_at=_int(d.get("completed_at")),
            background=_bool(d.get("background")),
            model=_str(d.get("model")) or "",
            agent=_agent(d.get("agent")),
            instructions=_str(instructions),
            instruction_items=[parse_item(i) for i in _dicts(instructions)],
            tools=_dicts(d.get("tools")),
            tool_choice=d.get("tool_choice"),
            parallel_tool_calls=_bool(d.get("parallel_tool_calls")),
            temperature=_num(d.get("temperature")),
            top_p=_num(d.get("top_p")),
            max_output_tokens=_int(d.get("max_output_tokens")),
            max_tool_calls=_int(d.get("max_tool_calls")),
            truncation=d.get("truncation"),
            text_format=_dict(d.get("text")).get("format"),
            reasoning=d.get("reasoning"),
            store=_bool(d.get("store")),
            usage=ResponseUsage.from_json(d.get("usage")),
            error=LastError.from_json(d.get("error")),
            incomplete_reason=_str(_dict(d.get("incomplete_details")).get("reason")),
            previous_response_id=_str(d.get("previous_response_id")) or "",
            conversation_id=_conversation_id(d.get("conversation")),
            metadata=_metadata(d.get("metadata")),
            output=output,
            raw=d,
        )

    @property
    def is_terminal(self) -> bool:
        return self.status in RESPONSE_TERMINAL

    @property
    def status_known(self) -> bool:
        return self.status in RESPONSE_STATUSES

    @property
    def function_calls(self) -> list[FunctionCallItem]:
        """Function calls the response made that its own output does not answer: they wait for a
        follow-up response carrying their outputs."""
        answered = {i.call_id for i in self.output if isinstance(i, FunctionCallOutputItem)}
        return [i for i in self.output if isinstance(i, FunctionCallItem) and i.call_id not in answered]

    @property
    def approval_requests(self) -> list[McpApprovalRequestItem]:
        answered = {i.approval_request_id for i in self.output if isinstance(i, McpApprovalResponseItem)}
        return [i for i in self.output if isinstance(i, McpApprovalRequestItem) and i.id not in answered]

    @property
    def asks_a_person(self) -> bool:
        """It ended asking for function outputs or approvals (a follow-up response gives them)."""
        return self.status == "completed" and bool(self.function_calls or self.approval_requests)


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    created_at: int | None
    metadata: dict[str, str]
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Conversation:
        d = _require_object(data, "conversation")
        return cls(_str(d.get("id")) or "", _int(d.get("created_at")), _metadata(d.get("metadata")), d)

    @property
    def title(self) -> str:
        return self.metadata.get("title", "")


# --- streaming -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResponseEvent:
    """One event of a response's stream (`response.output_text.delta`, …), with what it carries.

    `sequence_number` orders the events of one response; a broken stream resumes after the last one seen.
    """

    type: str
    sequence_number: int | None
    #: The response snapshot of `response.created`, `.queued`, `.in_progress`, `.completed`, …
    response: Response | None
    #: The item of `response.output_item.added` / `.done`.
    item: Item | None
    item_id: str
    output_index: int | None
    content_index: int | None
    summary_index: int | None
    delta: str | None
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, name: str, data: Any) -> ResponseEvent:
        d = _require_object(data, "stream event")
        response = Response.from_json(d["response"]) if isinstance(d.get("response"), dict) else None
        item = parse_item(d["item"]) if isinstance(d.get("item"), dict) else None
        return cls(
            type=_str(d.get("type")) or name,
            sequence_number=_int(d.get("sequence_number")),
            response=response,
            item=item,
            item_id=_str(d.get("item_id")) or "",
            output_index=_int(d.get("output_index")),
            content_index=_int(d.get("content_index")),
            summary_index=_int(d.get("summary_index")),
            delta=_str(d.get("delta")),
            raw=d,
        )
