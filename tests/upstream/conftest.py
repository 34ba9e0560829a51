"""Fixtures for the upstream client's tests: a respx-mocked upstream, a loopback server, JSON builders.

respx produces the faults the sandbox cannot (HTML 502s, malformed JSON, timeouts). The loopback server
is a real socket, for the tests that look inside httpcore's pool (respx replaces the pool's I/O).
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections import deque

import httpx
import pytest
import respx

from runs_ui.upstream import client as client_module
from runs_ui.upstream.client import AssistantsClient
from runs_ui.upstream.profiles import PROFILES

BASE = "https://upstream.test/v1"
KEY = "sk-test-S3CRET-0123456789abcdef"


class Sleeps(list):
    """The client's injectable sleep: records each wait instead of waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_client(sleeps):
    def make(profile: str = "openai", *, api_version: str = "", base_url: str = BASE, **options):
        options.setdefault("sleep", sleeps)
        return AssistantsClient(base_url, KEY, PROFILES[profile], api_version, **options)

    return make


@pytest.fixture
def client(make_client) -> AssistantsClient:
    return make_client()


@pytest.fixture
def upstream():
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


# --- wire JSON builders --------------------------------------------------------------------------


def run_json(run_id: str = "run_1", status: str = "queued", **fields) -> dict:
    return {
        "id": run_id,
        "object": "thread.run",
        "created_at": 1_700_000_000,
        "thread_id": "thread_1",
        "assistant_id": "asst_1",
        "status": status,
        "required_action": None,
        "last_error": None,
        "expires_at": 1_700_000_600,
        "started_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "incomplete_details": None,
        "model": "gpt-4o",
        "instructions": None,
        "tools": [],
        "metadata": {},
        "usage": None,
        "temperature": 1.0,
        "top_p": 1.0,
        "max_prompt_tokens": None,
        "max_completion_tokens": None,
        "truncation_strategy": {"type": "auto", "last_messages": None},
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "response_format": "auto",
        **fields,
    }


def step_json(step_id: str = "step_1", **fields) -> dict:
    return {
        "id": step_id,
        "object": "thread.run.step",
        "created_at": 1_700_000_001,
        "assistant_id": "asst_1",
        "thread_id": "thread_1",
        "run_id": "run_1",
        "type": "message_creation",
        "status": "completed",
        "step_details": {"type": "message_creation", "message_creation": {"message_id": "msg_1"}},
        "last_error": None,
        "expired_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": 1_700_000_002,
        "metadata": None,
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        **fields,
    }


def message_json(message_id: str = "msg_1", text: str = "Hello", **fields) -> dict:
    return {
        "id": message_id,
        "object": "thread.message",
        "created_at": 1_700_000_002,
        "thread_id": "thread_1",
        "status": "completed",
        "incomplete_details": None,
        "completed_at": 1_700_000_003,
        "incomplete_at": None,
        "role": "assistant",
        "content": [{"type": "text", "text": {"value": text, "annotations": []}}],
        "assistant_id": "asst_1",
        "run_id": "run_1",
        "attachments": [],
        "metadata": {},
        **fields,
    }


def thread_json(thread_id: str = "thread_1", **fields) -> dict:
    return {
        "id": thread_id,
        "object": "thread",
        "created_at": 1_700_000_000,
        "tool_resources": {},
        "metadata": {},
        **fields,
    }


def error_json(message: str, *, type_: str = "invalid_request_error", param=None, code=None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def sse_frames(*events: tuple[str, object]) -> str:
    """`(name, data)` pairs as an SSE body; data that is not a str is sent as one line of JSON."""
    out = []
    for name, data in events:
        out.append(f"event: {name}\ndata: {data if isinstance(data, str) else json.dumps(data)}\n\n")
    return "".join(out)


def sse_response(*events: tuple[str, object], **headers) -> httpx.Response:
    return httpx.Response(
        200, headers={"content-type": "text/event-stream", **headers}, text=sse_frames(*events)
    )


# --- pool inspection -----------------------------------------------------------------------------


def core_pool(connection: str = "default"):
    """httpcore's connection pool behind this event loop's AsyncClient of a connection."""
    return client_module._pools[asyncio.get_running_loop()][connection]._transport._pool


def checked_out(port: int) -> list:
    """Requests to 127.0.0.1:port the pool still counts as in flight (a response not yet closed)."""
    return [r for r in core_pool()._requests if r.request.url.port == port]


def busy_connections(port: int) -> list:
    """Connections to 127.0.0.1:port that are neither idle (back in the pool) nor closed."""
    return [
        c for c in core_pool().connections if c._origin.port == port and not (c.is_idle() or c.is_closed())
    ]


# --- a real loopback server that plays a script ----------------------------------------------------


def http_response(status: int, body: bytes | str = b"", headers: dict | None = None) -> bytes:
    body = body.encode() if isinstance(body, str) else body
    head = [
        f"HTTP/1.1 {status} {httpx.codes.get_reason_phrase(status) or 'Status'}",
        f"Content-Length: {len(body)}",
    ]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def json_response(status: int, data) -> bytes:
    return http_response(
        status, json.dumps(data), {"Content-Type": "application/json", "x-request-id": f"req_{status}"}
    )


class LoopbackServer:
    """An HTTP/1.1 server on 127.0.0.1 that answers each request with the next scripted action.

    An action is bytes to send (the connection stays open for keep-alive), "hang" (never answer),
    or ("cut", bytes) (send these bytes, then drop the connection).
    """

    def __init__(self):
        self.script: deque = deque()
        self.requests: list[bytes] = []
        self.connections = 0
        #: Set whenever a request has arrived.
        self.arrived = asyncio.Event()
        self._release = asyncio.Event()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"

    async def stop(self) -> None:
        self._release.set()
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                self.requests.append(head + await reader.readexactly(length))
                self.arrived.set()
                action = self.script.popleft()
                if action == "hang":
                    await self._release.wait()
                    return
                if isinstance(action, tuple):
                    writer.write(action[1])
                    await writer.drain()
                    return
                writer.write(action)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


@pytest.fixture
async def loopback():
    server = LoopbackServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on, so connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
