"""Server-sent events of a streamed run, turned into typed `StreamEvent`s.

httpx-sse does the framing; this module only knows the Assistants event names (CONTRACT §8).
Unknown event names are kept with their raw JSON, as the spec asks clients to tolerate them.
"""

from __future__ import annotations

import json

from httpx_sse import ServerSentEvent

from .errors import BadResponse, UpstreamError
from .objects import Message, MessageDelta, Run, Step, StepDelta, StreamEvent, Thread

DONE = "done"


def _parser_for(name: str):
    if name == "thread.created":
        return Thread.from_json
    if name == "thread.run.step.delta":
        return StepDelta.from_json
    if name.startswith("thread.run.step."):
        return Step.from_json
    if name.startswith("thread.run."):
        return Run.from_json
    if name == "thread.message.delta":
        return MessageDelta.from_json
    if name.startswith("thread.message."):
        return Message.from_json
    return None


def parse_event(sse: ServerSentEvent) -> StreamEvent:
    """One SSE frame → a StreamEvent; `error` frames raise, `done` comes back as event "done"."""
    name = sse.event or "message"
    if name == DONE or sse.data.strip() == "[DONE]":
        return StreamEvent(DONE, None)
    parse = _parser_for(name)
    try:
        data = json.loads(sse.data)
    except (ValueError, RecursionError):  # RecursionError: very deep nesting
        if parse is None and name != "error":
            return StreamEvent(name, sse.data)  # a future or vendor event (e.g. a keep-alive): kept as sent
        raise BadResponse(f"The stream sent an unreadable '{name}' event.") from None
    if name == "error" or (isinstance(data, dict) and set(data) == {"error"}):
        # The spec sends the Error object bare; some servers wrap it as {"error": {…}}.
        err = data.get("error", data) if isinstance(data, dict) else {}
        err = err if isinstance(err, dict) else {}
        raise UpstreamError(
            str(err.get("message") or "The upstream reported an error mid-stream."),
            code=err.get("code") if isinstance(err.get("code"), str) else None,
        )
    return StreamEvent(name, parse(data) if parse else data)
