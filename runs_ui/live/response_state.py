"""ResponseState: what the live layer knows of one response of the Responses shape — the response, its
output items, the transitions the dashboard observed — and what changed since the last look.

As RunState (state.py) for runs: `diff(response)` takes in a poll (a response carries all its output),
`apply(event)` one stream event (a snapshot, an item added or done, a delta of an item's text); both
return a new state and the change to publish, never touching the old one.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass, field, replace

from ..upstream.responses_objects import Item, Response, ResponseEvent, parse_item

#: The newest items rendered into the saved state a (re)connecting socket starts from.
TAIL = 20


@dataclass(frozen=True)
class ResponseChange:
    """What a look at the response found new: each part is pushed to the pages that show it."""

    response_changed: bool = False
    status_changed: bool = False
    #: Output items new or changed, in output order.
    items: tuple[Item, ...] = ()
    #: Only text grew (stream deltas): such pushes are spaced out.
    delta: bool = False

    def __bool__(self) -> bool:
        return self.response_changed or bool(self.items)

    def merged(self, later: ResponseChange) -> ResponseChange:
        if not self:
            return later
        if not later:
            return self
        by_id: dict = {}
        for item in (*self.items, *later.items):
            by_id[item.id or id(item)] = item
        return ResponseChange(
            response_changed=self.response_changed or later.response_changed,
            status_changed=self.status_changed or later.status_changed,
            items=tuple(by_id.values()),
            delta=self.delta and later.delta,
        )


NO_CHANGE = ResponseChange()


def _key(item: Item, index: int) -> str:
    return item.id or f"#{index}"


@dataclass
class ResponseState:
    response: Response | None = None
    #: The output items by id (in output order), as last seen or as the stream has grown them.
    items: OrderedDict[str, Item] = field(default_factory=OrderedDict)
    #: [{"status": …, "at": unix time}, …] as the dashboard observed them (from the index).
    transitions: list[dict] = field(default_factory=list)
    #: The follow-up that answered it, when the index knows one.
    answered_by: str = ""

    @property
    def primed(self) -> bool:
        return self.response is not None

    def _copy(self) -> ResponseState:
        return ResponseState(self.response, OrderedDict(self.items), list(self.transitions), self.answered_by)

    def with_index(self, transitions: list[dict], answered_by: str) -> ResponseState:
        state = self._copy()
        state.transitions = list(transitions)
        state.answered_by = answered_by
        return state

    def newest(self, count: int = TAIL) -> list[Item]:
        return list(self.items.values())[-count:]

    # --- polls ---------------------------------------------------------------------------------

    def diff(self, response: Response) -> tuple[ResponseState, ResponseChange]:
        """Take in the response as an answer (or a stream's snapshot) shows it, output and all."""
        state = self._copy()
        state.response = response
        changed = []
        for n, item in enumerate(response.output):
            key = _key(item, n)
            known = state.items.get(key)
            if known is None or known.raw != item.raw:
                changed.append(item)
            state.items[key] = item
        return state, ResponseChange(
            response_changed=self.response is None
            or _without_output(response) != _without_output(self.response)
            or bool(changed),
            status_changed=self.response is None or response.status != self.response.status,
            items=tuple(changed),
        )

    # --- stream events -------------------------------------------------------------------------

    def apply(self, event: ResponseEvent) -> tuple[ResponseState, ResponseChange]:
        """Take in one stream event. Events not understood here change nothing (the next snapshot or
        poll shows what they did)."""
        if event.response is not None:
            # A snapshot holds everything the events before it said: the output is taken as it shows it.
            return self.diff(event.response)
        if event.item is not None and event.type.startswith("response.output_item."):
            return self._put(event.item, delta=False)
        item = self.items.get(event.item_id) if event.item_id else None
        if item is None:
            return self, NO_CHANGE
        raw = grow(item.raw, event)
        if raw is None:
            return self, NO_CHANGE
        return self._put(parse_item(raw), delta=event.type.endswith(".delta"))

    def _put(self, item: Item, *, delta: bool) -> tuple[ResponseState, ResponseChange]:
        state = self._copy()
        key = _key(item, len(state.items))
        if key in state.items and state.items[key].raw == item.raw:
            return self, NO_CHANGE
        state.items[key] = item
        if state.response is not None:
            # The header counts the output and says what it asks for: keep its output in step.
            state.response = replace(state.response, output=list(state.items.values()))
        return state, ResponseChange(items=(item,), delta=delta)


def _without_output(response: Response) -> dict:
    return {k: v for k, v in response.raw.items() if k != "output"}


# --- deltas: text appended to an item's raw JSON ---------------------------------------------------

_STATUS_EVENTS = {
    "in_progress": "in_progress",
    "searching": "searching",
    "interpreting": "interpreting",
    "generating": "generating",
}


def _slot(items: list, index, make) -> dict | None:
    """The dict at a delta's index, growing the list to it; None for an unreasonable index."""
    if not isinstance(index, int) or isinstance(index, bool) or index < 0 or index > len(items) + 100:
        return None
    while len(items) <= index:
        items.append(make())
    if not isinstance(items[index], dict):
        items[index] = make()
    return items[index]


def _append(target: dict | None, key: str, piece: str | None) -> bool:
    if target is None or not isinstance(piece, str):
        return False
    current = target.get(key)
    target[key] = (current if isinstance(current, str) else "") + piece
    return True


def _list_at(raw: dict, key: str) -> list:
    if not isinstance(raw.get(key), list):
        raw[key] = []
    return raw[key]


def grow(raw: dict, event: ResponseEvent) -> dict | None:
    """The item's JSON with one event applied (upstream JSON is untrusted: whatever is not the expected
    type is replaced, never indexed into); None when the event does not change items."""
    raw = copy.deepcopy(raw)
    name = event.type
    data = event.raw

    def text_part():
        return {"type": "output_text", "text": "", "annotations": []}

    if name in ("response.output_text.delta", "response.refusal.delta", "response.reasoning_text.delta"):
        key = "refusal" if name == "response.refusal.delta" else "text"
        part = _slot(_list_at(raw, "content"), event.content_index, text_part)
        return raw if _append(part, key, event.delta) else None
    if name == "response.reasoning_summary_text.delta":
        part = _slot(
            _list_at(raw, "summary"), event.summary_index, lambda: {"type": "summary_text", "text": ""}
        )
        return raw if _append(part, "text", event.delta) else None
    if name in ("response.function_call_arguments.delta", "response.mcp_call_arguments.delta"):
        return raw if _append(raw, "arguments", event.delta) else None
    if name == "response.custom_tool_call_input.delta":
        return raw if _append(raw, "input", event.delta) else None
    if name == "response.code_interpreter_call_code.delta":
        return raw if _append(raw, "code", event.delta) else None
    if name == "response.content_part.added" and isinstance(data.get("part"), dict):
        slot = _slot(_list_at(raw, "content"), event.content_index, text_part)
        if slot is not None and not slot.get("text"):
            slot.clear()
            slot.update(data["part"])
        return raw
    if name == "response.reasoning_summary_part.added" and isinstance(data.get("part"), dict):
        slot = _slot(_list_at(raw, "summary"), event.summary_index, dict)
        if slot is not None and not slot.get("text"):
            slot.update(data["part"])
        return raw
    if name == "response.output_text.annotation.added" and isinstance(data.get("annotation"), dict):
        part = _slot(_list_at(raw, "content"), event.content_index, text_part)
        if part is None:
            return None
        _list_at(part, "annotations").append(data["annotation"])
        return raw
    # `response.web_search_call.searching`, `response.code_interpreter_call.interpreting`, …: a status.
    status = _STATUS_EVENTS.get(name.rsplit(".", 1)[-1])
    if status and name.count(".") == 2 and raw.get("type") == name.split(".")[1]:
        raw["status"] = status
        return raw
    return None
