"""Runs started or resumed here stream (`stream: true`); their events are relayed to the pages as they come.

The relay runs as a background task. It feeds the run's watch (see watcher.py) so the pages and the
watcher share one picture of the run: statuses at once, function arguments and message text growing as
the deltas arrive (pushed at most every DELTA_PUSH_SECONDS). While it streams, the poller stands by; if
the stream breaks or ends, the poller takes over from the same state.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from typing import NamedTuple

from django.conf import settings

from . import index
from .tasks import background
from .upstream.errors import BadResponse, UpstreamError, UpstreamTimeout
from .upstream.objects import Message, MessageDelta, Run, Step, StepDelta, StreamEvent, Thread, is_id
from .watcher import RunWatch, watcher

log = logging.getLogger(__name__)

DELTA_PUSH_SECONDS = 0.05
#: The full resync state is re-rendered at most this often while deltas stream in.
STATE_SAVE_SECONDS = 0.5
_tasks: set[asyncio.Task] = set()


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


# --- the relay ------------------------------------------------------------------------------------


class _Relay:
    def __init__(self, conn: str):
        self.conn = conn
        self.watch: RunWatch | None = None
        self.dirty_steps: dict[str, Step] = {}
        self.dirty_messages: dict[str, Message] = {}
        self.pushed_at = 0.0

    def attach(self, run: Run, client) -> RunWatch:
        watch = watcher.touch_run(self.conn, run.thread_id, run.id)
        watch.streaming = True
        watch.client = client
        self.watch = watch
        return watch

    async def on_event(self, event: StreamEvent) -> None:
        watch = self.watch
        data = event.data
        if isinstance(data, Run):
            status_changed = await watch.observe_run(data, time.time())
            await self.flush(run_changed=True, status_changed=status_changed)
        elif isinstance(data, Step) and data.id:
            watch.steps[data.id] = data
            self.dirty_steps[data.id] = data
            await self.flush()
        elif isinstance(data, StepDelta) and data.id in watch.steps:
            step = apply_step_delta(watch.steps[data.id], data)
            watch.steps[data.id] = self.dirty_steps[data.id] = step
            await self.flush(delta=True)
        elif isinstance(data, Message) and data.id:
            new = data.id not in watch.messages
            watch.messages[data.id] = self.dirty_messages[data.id] = data
            await self.flush(new_message=new)
        elif isinstance(data, MessageDelta) and data.id in watch.messages:
            message = apply_message_delta(watch.messages[data.id], data)
            watch.messages[data.id] = self.dirty_messages[data.id] = message
            await self.flush(delta=True)

    async def flush(self, run_changed=False, status_changed=False, new_message=False, delta=False) -> None:
        """Push what is pending: at once for whole objects, at most every DELTA_PUSH_SECONDS for deltas."""
        now = time.monotonic()
        if delta and now - self.pushed_at < DELTA_PUSH_SECONDS:
            return
        if not (run_changed or self.dirty_steps or self.dirty_messages) or self.watch.run is None:
            return
        steps, messages = list(self.dirty_steps.values()), list(self.dirty_messages.values())
        self.dirty_steps, self.dirty_messages = {}, {}
        self.pushed_at = now
        save = not delta or now - self.watch.state_saved > STATE_SAVE_SECONDS
        await self.watch.publish(
            run_changed, status_changed, steps, messages, messages if new_message else [], save=save
        )

    def detach(self) -> None:
        if self.watch is not None:
            self.watch.streaming = False
            self.watch.wake.set()  # the poller checks at once what the stream may not have said


async def _relay(conn: str, client, open_stream, first: asyncio.Future, known: Run | None) -> None:
    relay = _Relay(conn)
    try:
        async with open_stream() as events:
            info = getattr(
                events, "info", None
            )  # any async iterator of events will do; the client's has info
            request_id = info.request_id if info else None
            if known is not None:
                relay.attach(known, client)
                await relay.watch.observe_run(known, time.time())
                first.set_result(Started(known, request_id))
            async for event in events:
                if isinstance(event.data, Thread):
                    await index.record_thread(conn, event.data.id, "created", event.data)
                if relay.watch is None and isinstance(event.data, Run):
                    if not (is_id("run", event.data.id) and is_id("thread", event.data.thread_id)):
                        # Nothing here can be made of it: no page, no watch.
                        raise BadResponse(
                            "The upstream reported the run without a valid run and thread id; "
                            "it may have started, but it cannot be followed here."
                        )
                    relay.attach(event.data, client)
                    if not first.done():
                        first.set_result(Started(event.data, request_id))
                if relay.watch is not None:
                    await relay.on_event(event)
            await relay.flush()
    except UpstreamError as exc:
        if not first.done():
            first.set_exception(exc)
        else:
            log.warning(
                "stream of %s broke (%s); the watcher takes over", relay.watch and relay.watch.run_id, exc
            )
    except Exception as exc:
        log.exception("relaying a stream failed; the watcher takes over")
        if not first.done():
            first.set_exception(BadResponse(f"The stream could not be read ({type(exc).__name__})."))
    finally:
        relay.detach()
        if not first.done():
            first.set_exception(BadResponse("The stream ended before it reported the run."))


class Started(NamedTuple):
    run: Run
    request_id: str | None


async def start(conn: str, client, open_stream, *, known: Run | None = None) -> Started:
    """Open a stream in a background task; return the run it is about and the call's request id (or raise
    the upstream's error).

    `open_stream()` returns the client's stream context manager. With `known` (submitting tool outputs),
    the run is returned as soon as the stream opened; otherwise at its first run event.
    """
    first: asyncio.Future = asyncio.get_running_loop().create_future()
    task = background(_relay(conn, client, open_stream, first, known), "stream-relay")
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    try:
        return await asyncio.wait_for(asyncio.shield(first), timeout=settings.UPSTREAM_TIMEOUT + 5)
    except TimeoutError:
        first.cancel()  # the relay goes on (a late run is still relayed) but reports to nobody
        raise UpstreamTimeout(
            "The upstream accepted the call but did not report the run in time; "
            "it may have started — look at the thread before trying again."
        ) from None
