"""Server-sent events of a streamed run: bytes → lines → frames (capped) → typed `StreamEvent`s.

httpx-sse does the framing (its `SSEDecoder`); lines are split here, from bytes, so that a line without
an end, an event without an end, a stream without an end can each be stopped at its cap (limits.py)
before it is all in memory. This module only knows the Assistants event names (CONTRACT §8).
Unknown event names are kept with their raw JSON, as the spec asks clients to tolerate them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from httpx_sse import ServerSentEvent

# Its framing, which httpx-sse (pinned) does not export by name; the lines are split here instead.
from httpx_sse._decoders import SSEDecoder

from . import text
from .errors import BadResponse, UpstreamError
from .limits import Limits, exceeded
from .objects import Message, MessageDelta, Run, Step, StepDelta, StreamEvent, Thread

DONE = "done"
_ENDS = (b"\n", b"\r")


async def frames(chunks: AsyncIterator[bytes], limits: Limits, what: str) -> AsyncIterator[ServerSentEvent]:
    """SSE frames from a body's chunks, stopping with LimitExceeded past the stream's byte, event or line
    caps. Lines end at CR, LF or CRLF (as the SSE spec says), also across chunks."""
    decoder = SSEDecoder()
    total = events = event_size = 0
    pending = bytearray()  # the start of a line whose end has not arrived
    after_cr = False  # the previous chunk ended in CR: an LF starting this one belongs to it
    line_cap = limits.stream_line_bytes
    async for chunk in chunks:
        total += len(chunk)
        if total > limits.stream_bytes:
            raise exceeded(limits, "stream_bytes", what)
        if after_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]
        after_cr = False
        if b"\n" not in chunk and b"\r" not in chunk:
            pending += chunk
            if len(pending) > line_cap:
                raise exceeded(limits, "stream_line_bytes", what)
            continue
        lines = (bytes(pending) + chunk).splitlines(keepends=True)
        pending.clear()
        if not lines[-1].endswith(_ENDS):
            pending += lines.pop()
        after_cr = chunk.endswith(b"\r")
        for line in lines:
            line = line.rstrip(b"\r\n")
            event_size = event_size + len(line) if line else 0
            if len(line) > line_cap or event_size > line_cap:
                raise exceeded(limits, "stream_line_bytes", what)
            frame = decoder.decode(line.decode("utf-8", "replace"))
            if frame is not None:
                events += 1
                if events > limits.stream_events:
                    raise exceeded(limits, "stream_events", what)
                yield frame
        if len(pending) > line_cap:
            raise exceeded(limits, "stream_line_bytes", what)


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
    name = text.clean_text(sse.event or "message")
    if name == DONE or sse.data.strip() == "[DONE]":
        return StreamEvent(DONE, None)
    parse = _parser_for(name)
    try:
        data = text.loads(sse.data)
    except (ValueError, RecursionError):  # RecursionError: very deep nesting
        if parse is None and name != "error":
            # A future or vendor event (e.g. a keep-alive): kept as sent, made safe.
            return StreamEvent(name, text.clean_text(sse.data))
        raise BadResponse(f"The stream sent an unreadable '{name[:100]}' event.") from None
    if name == "error" or (isinstance(data, dict) and set(data) == {"error"}):
        # The spec sends the Error object bare; some servers wrap it as {"error": {…}}.
        err = data.get("error", data) if isinstance(data, dict) else {}
        err = err if isinstance(err, dict) else {}
        raise UpstreamError(
            str(err.get("message") or "The upstream reported an error mid-stream."),
            code=err.get("code") if isinstance(err.get("code"), str) else None,
        )
    return StreamEvent(name, parse(data) if parse else data)
