"""An upstream of the tests' own that abuses size, time and count, over real HTTP on raw sockets.

It runs in a thread with its own event loop (so a test, sync or async, and a daphne process can both use
it) and answers the Assistants paths the dashboard asks for. The abuse is chosen by the thread id in the
path, so any page, partial or export of the dashboard can be pointed at it:

    thread_ok       a normal thread: one run, three steps, two messages — the control
    thread_trickle  every answer sends its headers at once, then its body one byte every `trickle_seconds`
    thread_huge     every answer is `huge_bytes` long (a string field), chunked: no Content-Length
    thread_declared the same with its Content-Length declared
    thread_deep     every answer nests a field `depth` levels deep
    thread_endless  every list has more, with fresh ids, for ever (pages answer at once)
    thread_many     the run has `many` steps (100 a page) and messages; the thread `many_runs` runs
    thread_stream   POSTs that ask for a stream get one without end: a delta every `stream_interval`,
                    each `delta_bytes` of text (0: as fast as the client reads)
    thread_line     POSTs that ask for a stream get one line that never ends

Nothing is held in memory: huge and endless answers are written as the client reads them, and each
handler stops when its client goes away. `requests` counts the requests per thread id, `sent` the bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

NOW = 1_790_000_000


def run_json(thread_id: str, run_id: str, **fields) -> dict:
    return {
        "id": run_id,
        "object": "thread.run",
        "created_at": NOW,
        "thread_id": thread_id,
        "assistant_id": "asst_abuse01",
        "status": "completed",
        "started_at": NOW + 1,
        "completed_at": NOW + 5,
        "model": "gpt-4o",
        "instructions": None,
        "tools": [],
        "metadata": {},
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        **fields,
    }


def step_json(thread_id: str, run_id: str, step_id: str, n: int = 0) -> dict:
    return {
        "id": step_id,
        "object": "thread.run.step",
        "created_at": NOW + 2,
        "assistant_id": "asst_abuse01",
        "thread_id": thread_id,
        "run_id": run_id,
        "type": "tool_calls",
        "status": "completed",
        "step_details": {
            "type": "tool_calls",
            "tool_calls": [
                {
                    "id": f"call_{n}",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": f'{{"row": {n}}}', "output": "ok"},
                }
            ],
        },
        "completed_at": NOW + 3,
        "metadata": {},
        "usage": None,
    }


def message_json(thread_id: str, run_id: str, message_id: str, text: str = "Hello") -> dict:
    return {
        "id": message_id,
        "object": "thread.message",
        "created_at": NOW + 3,
        "thread_id": thread_id,
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "text", "text": {"value": text, "annotations": []}}],
        "assistant_id": "asst_abuse01",
        "run_id": run_id,
        "attachments": [],
        "metadata": {},
    }


def page(items: list[dict], has_more: bool) -> dict:
    return {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
        "has_more": has_more,
    }


class _Gone(Exception):
    """The client went away."""


@dataclass
class AbusiveUpstream:
    trickle_seconds: float = 0.5
    huge_bytes: int = 300 * 1024 * 1024
    depth: int = 9_000
    many: int = 20_000
    many_runs: int = 3
    stream_interval: float = 0.0
    delta_bytes: int = 64
    requests: Counter = field(default_factory=Counter)
    #: Bytes written to clients, per thread id: what the client read (or the kernel buffered for it).
    sent: Counter = field(default_factory=Counter)

    # --- life --------------------------------------------------------------------------------------

    def __enter__(self) -> AbusiveUpstream:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="abusive-upstream", daemon=True)
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0, limit=1 << 20), self._loop
        ).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        return self

    def __exit__(self, *exc) -> None:
        async def stop():
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    # --- HTTP --------------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:] if h)}
            body = await reader.readexactly(int(headers.get("content-length", 0) or 0))
            await self._answer(writer, method, target, body)
        except (_Gone, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _send(self, writer, data: bytes) -> None:
        if writer.is_closing():
            raise _Gone
        self.sent[getattr(writer, "thread", "")] += len(data)
        writer.write(data)
        try:
            await writer.drain()
        except ConnectionError:
            raise _Gone from None

    async def _head(self, writer, status: int = 200, content_type: str = "application/json", length=None):
        head = [f"HTTP/1.1 {status} OK", f"Content-Type: {content_type}", "Connection: close"]
        head.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
        await self._send(writer, ("\r\n".join(head) + "\r\n\r\n").encode())

    async def _chunk(self, writer, data: bytes) -> None:
        await self._send(writer, f"{len(data):x}\r\n".encode() + data + b"\r\n")

    async def _json(self, writer, thread: str, value: dict) -> None:
        """An answer, abused as the thread says."""
        if thread == "thread_huge" or thread == "thread_declared":
            await self._huge(writer, value, declared=thread == "thread_declared")
            return
        if thread == "thread_deep":
            value = {**value, "metadata": {}, "tools": []}
            body = json.dumps(value)[:-1] + ', "nested": ' + "[" * self.depth + "]" * self.depth + "}"
            data = body.encode()
        else:
            data = json.dumps(value).encode()
        if thread == "thread_trickle":
            await self._head(writer, length=len(data))
            for i in range(len(data)):
                await self._send(writer, data[i : i + 1])
                await asyncio.sleep(self.trickle_seconds)
            return
        await self._head(writer, length=len(data))
        await self._send(writer, data)

    async def _huge(self, writer, value: dict, declared: bool) -> None:
        start = json.dumps({**value, "padding": ""})[:-2].encode()  # …, "padding": "   (open string)
        end = b'"}'
        filler = max(0, self.huge_bytes - len(start) - len(end))
        await self._head(writer, length=len(start) + filler + len(end) if declared else None)
        send = self._send if declared else self._chunk
        await send(writer, start)
        block = b"x" * (256 * 1024)
        while filler:
            piece = block[: min(filler, len(block))]
            await send(writer, piece)
            filler -= len(piece)
        await send(writer, end)
        if not declared:
            await self._send(writer, b"0\r\n\r\n")

    async def _answer(self, writer, method: str, target: str, body: bytes) -> None:
        url = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = url.path.split("/")[2:]  # after /v1
        thread = parts[1] if len(parts) > 1 and parts[0] == "threads" and parts[1] != "runs" else None
        self.requests[thread or "/".join(parts)] += 1
        writer.thread = thread or "/".join(parts)
        if method == "POST" and body and json.loads(body).get("stream"):
            await self._stream(
                writer, thread or "thread_stream", parts[3] if len(parts) > 3 else "run_stream01"
            )
            return
        value = self._value(thread, parts[2:] if thread else parts, query)
        if value is None:
            data = json.dumps({"error": {"message": "No such path.", "type": "invalid_request_error"}})
            await self._head(writer, 404, length=len(data))
            await self._send(writer, data.encode())
            return
        await self._json(writer, thread or "thread_ok", value)

    def _value(self, thread: str | None, rest: list[str], query: dict) -> dict | None:
        """The JSON of what a path asks for (None: not found)."""
        limit = int(query.get("limit", 20))
        after = query.get("after", "")
        if thread is None:
            if rest == ["assistants"]:
                return page([], False)
            if rest == ["threads", "runs"]:
                return run_json("thread_ok", "run_ok")
            return None
        many = thread == "thread_many"
        match rest:
            case []:
                return {
                    "id": thread,
                    "object": "thread",
                    "created_at": NOW,
                    "metadata": {},
                    "tool_resources": {},
                }
            case ["runs"]:
                total = self.many_runs if many else 1
                return self._list(thread, after, limit, total, lambda n: run_json(thread, f"run_{n:07d}"))
            case ["runs", run] | ["runs", run, "cancel" | "submit_tool_outputs"]:
                return run_json(thread, run)
            case ["runs", run, "steps"]:
                total = self.many if many else 3
                return self._list(
                    thread, after, limit, total, lambda n: step_json(thread, run, f"step_{n:07d}", n)
                )
            case ["runs", run, "steps", step]:
                return step_json(thread, run, step)
            case ["messages"]:
                run = query.get("run_id") or "run_0000000"
                total = self.many // 4 if many else 2
                return self._list(
                    thread, after, limit, total, lambda n: message_json(thread, run, f"msg_{n:07d}")
                )
            case ["messages", message]:
                return message_json(thread, "run_0000000", message)
        return None

    def _list(self, thread, after, limit, total, make) -> dict:
        start = int(after.rsplit("_", 1)[1]) + 1 if after else 0
        if thread == "thread_endless":
            return page([make(n) for n in range(start, start + limit)], True)
        end = min(total, start + limit)
        return page([make(n) for n in range(start, end)], end < total)

    async def _stream(self, writer, thread: str, run_id: str) -> None:
        thread_id = thread if thread.startswith("thread_") else "thread_stream"
        await self._head(writer, content_type="text/event-stream")
        created = run_json(thread_id, run_id, status="in_progress")
        await self._chunk(writer, f"event: thread.run.created\ndata: {json.dumps(created)}\n\n".encode())
        if thread == "thread_line":
            while True:
                await self._chunk(writer, b"x" * 65536)
        delta = {
            "id": "msg_stream01",
            "object": "thread.message.delta",
            "delta": {"content": [{"index": 0, "type": "text", "text": {"value": "y" * self.delta_bytes}}]},
        }
        frame = f"event: thread.message.delta\ndata: {json.dumps(delta)}\n\n".encode()
        while True:
            await self._chunk(writer, frame)
            if self.stream_interval:
                await asyncio.sleep(self.stream_interval)
