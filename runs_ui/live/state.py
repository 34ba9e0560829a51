"""RunState: what the live layer knows of one run — the run, its newest steps and messages, the
transitions the dashboard observed — and what changed since the last look.

It is shared by the poller and the stream relay: `diff(run, steps, messages)` takes in a poll's answers,
`apply(event)` a stream event; both return a new state and the `Change` to publish, never touching the
old one (a poll or event whose result is discarded — its publisher lost the lease — leaves no trace).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass, field

from ..upstream.objects import Message, MessageCreation, MessageDelta, Run, Step, StepDelta, StreamEvent

#: Newest steps and messages compared on each look, and kept for the state a socket resyncs with.
TAIL = 20


@dataclass(frozen=True)
class Change:
    """What a look at the run found new: each part is pushed to the pages that show it."""

    run_changed: bool = False
    status_changed: bool = False
    steps: tuple[Step, ...] = ()
    messages: tuple[Message, ...] = ()
    #: Messages not seen before: thread pages add them to their timeline.
    new_messages: tuple[Message, ...] = ()
    #: Only text grew (stream deltas): such pushes are spaced out.
    delta: bool = False

    def __bool__(self) -> bool:
        return self.run_changed or bool(self.steps) or bool(self.messages)

    def merged(self, later: Change) -> Change:
        """This change and a later one, as one push."""
        if not self:
            return later
        if not later:
            return self

        def union(a, b):
            by_id = {o.id: o for o in a}
            by_id.update({o.id: o for o in b})
            return tuple(by_id.values())

        return Change(
            run_changed=self.run_changed or later.run_changed,
            status_changed=self.status_changed or later.status_changed,
            steps=union(self.steps, later.steps),
            messages=union(self.messages, later.messages),
            new_messages=union(self.new_messages, later.new_messages),
            delta=self.delta and later.delta,
        )


NO_CHANGE = Change()


@dataclass
class RunState:
    run: Run | None = None
    steps: OrderedDict[str, Step] = field(default_factory=OrderedDict)
    messages: OrderedDict[str, Message] = field(default_factory=OrderedDict)
    #: [{"status": …, "at": unix time}, …] as the dashboard observed them (from the index).
    transitions: list[dict] = field(default_factory=list)

    @property
    def primed(self) -> bool:
        return self.run is not None

    def _copy(self) -> RunState:
        return RunState(self.run, OrderedDict(self.steps), OrderedDict(self.messages), list(self.transitions))

    def _trim(self) -> None:
        while len(self.steps) > TAIL * 2:
            self.steps.popitem(last=False)
        while len(self.messages) > TAIL * 2:
            self.messages.popitem(last=False)

    def with_transitions(self, transitions: list[dict]) -> RunState:
        state = self._copy()
        state.transitions = list(transitions)
        return state

    # --- polls ---------------------------------------------------------------------------------

    def diff(
        self, run: Run, steps: list[Step] | None = None, messages: list[Message] | None = None
    ) -> tuple[RunState, Change]:
        """Take in a poll: the run, and (when they were fetched) its newest steps and messages, newest
        first as the upstream lists them."""
        state = self._copy()
        state.run = run
        run_changed = self.run is None or run.raw != self.run.raw
        status_changed = self.run is None or run.status != self.run.status
        changed_steps = []
        for step in reversed(steps or []):  # oldest first, so new steps are appended in order
            if not step.id:
                continue
            known = state.steps.get(step.id)
            if known is None or known.raw != step.raw:
                changed_steps.append(step)
            state.steps[step.id] = step
        changed_messages, new_messages = [], []
        for message in reversed(messages or []):
            if not message.id:
                continue
            known = state.messages.get(message.id)
            if known is None:
                new_messages.append(message)
            if known is None or known.raw != message.raw:
                changed_messages.append(message)
            state.messages[message.id] = message
        state._trim()
        return state, Change(
            run_changed=run_changed,
            status_changed=status_changed,
            steps=tuple(changed_steps),
            messages=tuple(changed_messages),
            # A first look has nothing to compare with: the page it feeds already shows those.
            new_messages=tuple(new_messages) if self.primed else (),
        )

    def messages_due(self, changed_steps: tuple[Step, ...]) -> bool:
        """Messages are worth fetching when a message step appeared or changed, or is still being written,
        or the run ended (its final text)."""

        def writes(step):
            return isinstance(step.details, MessageCreation)

        return (
            (self.run is not None and self.run.is_terminal)
            or any(writes(s) for s in changed_steps)
            or any(writes(s) and not s.is_terminal for s in self.steps.values())
        )

    # --- stream events -------------------------------------------------------------------------

    def apply(self, event: StreamEvent) -> tuple[RunState, Change]:
        """Take in one stream event (a run, a step or message, or a delta of one)."""
        data = event.data
        if isinstance(data, Run):
            return self.diff(data)
        state = self._copy()
        if isinstance(data, Step) and data.id:
            state.steps[data.id] = data
            state._trim()
            return state, Change(steps=(data,))
        if isinstance(data, StepDelta) and data.id in state.steps:
            step = state.steps[data.id] = apply_step_delta(state.steps[data.id], data)
            return state, Change(steps=(step,), delta=True)
        if isinstance(data, Message) and data.id:
            new = data.id not in state.messages
            state.messages[data.id] = data
            state._trim()
            return state, Change(messages=(data,), new_messages=(data,) if new else ())
        if isinstance(data, MessageDelta) and data.id in state.messages:
            message = state.messages[data.id] = apply_message_delta(state.messages[data.id], data)
            return state, Change(messages=(message,), delta=True)
        return self, NO_CHANGE


# --- deltas: pieces appended to what the step or message already says -----------------------------


# Upstream JSON is untrusted: whatever is not the expected type is replaced, never indexed into.
def _append(target: dict, key: str, piece) -> None:
    if isinstance(piece, str):
        current = target.get(key)
        target[key] = (current if isinstance(current, str) else "") + piece


def _str_or(value, default: str) -> str:
    return value if isinstance(value, str) and value else default


def _child(parent: dict, key: str, kind: type):
    if not isinstance(parent.get(key), kind):
        parent[key] = kind()
    return parent[key]


def _slot(items: list, index_, new=dict) -> dict | None:
    """The dict at a delta's index, growing the list to it with new(); None for an unreasonable index."""
    if not isinstance(index_, int) or isinstance(index_, bool) or index_ < 0 or index_ > len(items) + 100:
        return None
    while len(items) <= index_:
        items.append(new())
    if not isinstance(items[index_], dict):
        items[index_] = new()
    return items[index_]


def apply_step_delta(step: Step, delta: StepDelta) -> Step:
    """A step with a `thread.run.step.delta` applied: argument, input and output text appended by index."""
    raw = copy.deepcopy(step.raw)
    if not isinstance(raw.get("step_details"), dict):
        raw["step_details"] = {"type": "tool_calls", "tool_calls": []}
    calls = _child(raw["step_details"], "tool_calls", list)
    for piece in delta.tool_call_pieces:
        call = _slot(calls, piece.get("index"))
        if call is None:
            continue
        for key in ("id", "type"):
            if isinstance(piece.get(key), str):
                call[key] = piece[key]
        kind = call.get("type")
        part = piece.get(kind) if isinstance(kind, str) else None
        if not isinstance(part, dict):
            continue
        body = _child(call, kind, dict)
        for key in ("name", "arguments", "output", "input"):
            _append(body, key, part.get(key))
        outputs = part.get("outputs")
        if isinstance(outputs, list):
            existing = _child(body, "outputs", list)
            for out in outputs:
                slot = _slot(existing, out.get("index")) if isinstance(out, dict) else None
                if slot is None:
                    continue
                for key, value in out.items():
                    if key == "logs":
                        _append(slot, "logs", value)
                    elif key != "index":
                        slot[key] = value
    return Step.from_json(raw)


def apply_message_delta(message: Message, delta: MessageDelta) -> Message:
    """A message with a `thread.message.delta` applied: text appended to the content part at each index."""
    raw = copy.deepcopy(message.raw)
    content = raw.get("content") if isinstance(raw.get("content"), list) else []
    raw["content"] = content
    for part in delta.parts:
        kind = _str_or(part.get("type"), "text")
        slot = _slot(
            content, part.get("index"), lambda k=kind: {"type": k, "text": {"value": "", "annotations": []}}
        )
        if slot is None:
            continue
        text = part.get("text")
        if isinstance(text, dict) and isinstance(slot.get("text"), dict):
            _append(slot["text"], "value", text.get("value"))
            if isinstance(text.get("annotations"), list):
                _child(slot["text"], "annotations", list).extend(text["annotations"])
    return Message.from_json(raw)
