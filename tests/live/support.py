"""Helpers for the live-layer tests: sockets that collect pushes, the sandbox's request log, reading
pushed HTML, the channel layer's reset, and upstream JSON for respx.

Imported as `tests.live.support` by the conftest and the tests alike (a conftest is imported under
another module name by pytest, so module-level values such as SESSION_PREFIX must not live there).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path

from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.test import AsyncClient

from runs_ui.live import consumers, relay, response_relay
from runs_ui.live import store as live_store
from runs_ui.live.hub import hub
from runs_ui.live.response_watch import response_watcher
from runs_ui.live.watcher import watcher

#: Every Redis key these tests write starts with this, so a session never touches another's keys.
SESSION_PREFIX = f"runs-live-test-{secrets.token_hex(4)}"
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
HOST = "dashboard.test"
ORIGIN = f"https://{HOST}"


# --- the sandbox, with a request log -------------------------------------------------------------


@dataclass
class RequestLog:
    """The sandbox's JSON lines: {t, method, path, agent}, one per API request.

    Only the dashboard's requests count (User-Agent `runs-dashboard/… (pid N)`), not the test's own.
    """

    path: Path

    def entries(
        self, *, since: float = 0.0, until: float | None = None, run_id: str = "", method: str = ""
    ) -> list[dict]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line being written right now
            if entry["t"] < since or (until is not None and entry["t"] > until):
                continue
            if run_id and f"/runs/{run_id}" not in entry["path"]:
                continue
            if method and entry["method"] != method:
                continue
            if not entry.get("agent", "").startswith("runs-dashboard/"):
                continue
            out.append(entry)
        return out

    def run_gets(self, run_id: str, **window) -> list[dict]:
        """GETs of the run itself (not its steps or messages)."""
        return [e for e in self.entries(run_id=run_id, method="GET", **window) if e["path"].endswith(run_id)]


async def sandbox_get(sandbox, path: str) -> dict:
    async with sandbox.async_client() as client:
        response = await client.get(path)
        response.raise_for_status()
        return response.json()


async def sandbox_post(sandbox, path: str, body: dict) -> dict:
    async with sandbox.async_client() as client:
        response = await client.post(path, json=body)
        assert response.status_code == 200, response.text
        return response.json()


async def wait_status(sandbox, run, *statuses: str, within: float = 20) -> dict:
    """Await (without blocking the event loop) until the sandbox run has one of the statuses."""
    deadline = time.monotonic() + within
    while True:
        body = await sandbox_get(sandbox, f"/threads/{run.thread_id}/runs/{run.run_id}")
        if body["status"] in statuses:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"{run.run_id} is {body['status']}, not {statuses}, after {within} s")
        await asyncio.sleep(0.05)


# --- channel layer and shared state ----------------------------------------------------------------


def layer_settings(redis_url: str) -> dict:
    """The channel layer as the settings configure it in production, under this session's prefix."""
    if not redis_url:
        return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    from django.conf import settings

    return {
        "default": {
            "BACKEND": "runs_ui.live.layer.BlockingPoolRedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": redis_url,
                        "max_connections": 1000,
                        "timeout": settings.REDIS_POOL_TIMEOUT,
                        "socket_timeout": 30,
                        "socket_connect_timeout": settings.REDIS_SOCKET_TIMEOUT,
                    }
                ],
                "prefix": f"{SESSION_PREFIX}:asgi",
                "capacity": 500,
                "expiry": 30,
            },
        }
    }


async def reset_live_state() -> None:
    """Stop relays, watchers and the hub, then drop the cached channel layer and store (and their keys)."""
    await relay.stop()
    await response_relay.stop()
    await hub.stop()
    await watcher.stop()
    await response_watcher.stop()
    consumers._followed_cache.clear()
    layer = channel_layers.backends.get("default")
    if layer is not None and hasattr(layer, "flush") and hasattr(layer, "close_pools"):
        await layer.flush()  # channels_redis: deletes this prefix's keys and closes its pools
    channel_layers.backends.clear()
    state = live_store._store
    if isinstance(state, live_store.RedisStore):
        redis = state._redis()
        keys = [key async for key in redis.scan_iter(match=f"{SESSION_PREFIX}:*", count=1000)]
        if keys:
            await redis.delete(*keys)
        await state.close()
    live_store.reset()


# --- sockets -----------------------------------------------------------------------------------


@dataclass
class LiveSocket:
    """A WebsocketCommunicator whose messages are collected in the background as they arrive.

    Reading the communicator's queue directly never cancels the application on a quiet period
    (`receive_from(timeout=…)` would).
    """

    communicator: WebsocketCommunicator
    messages: list[str] = field(default_factory=list)
    #: When each message arrived (wall clock, as the sandbox's request log).
    arrived: list[float] = field(default_factory=list)
    close_code: int | None = None
    accepted: bool = False
    _drain: asyncio.Task | None = None

    async def open(self) -> LiveSocket:
        self.accepted, code = await self.communicator.connect(timeout=10)
        if not self.accepted:
            self.close_code = code
        self._drain = asyncio.get_running_loop().create_task(self._collect())
        return self

    async def _collect(self) -> None:
        while True:
            message = await self.communicator.output_queue.get()
            if message["type"] == "websocket.send":
                self.arrived.append(time.time())
                self.messages.append(message.get("text") or "")
            elif message["type"] == "websocket.close":
                self.close_code = message.get("code", 1000)

    def _check_alive(self) -> None:
        future = self.communicator.future
        if future.done() and not future.cancelled() and future.exception():
            raise future.exception()

    async def closed(self, within: float = 5) -> int:
        """The close code the server sent."""
        deadline = time.monotonic() + within
        while self.close_code is None:
            self._check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"socket not closed after {within} s; got {self.messages!r}")
            await asyncio.sleep(0.01)
        return self.close_code

    async def expect(self, predicate, within: float = 10, start: int = 0) -> str:
        """The first message (from index `start`) for which predicate(html) is true, waiting for it."""
        deadline = time.monotonic() + within
        seen = start
        while True:
            for html in self.messages[seen:]:
                if predicate(html):
                    return html
            seen = max(seen, len(self.messages))
            self._check_alive()
            if time.monotonic() > deadline:
                tail = [m[:300] for m in self.messages[-5:]]
                raise AssertionError(f"no matching message after {within} s; last messages: {tail}")
            await asyncio.sleep(0.02)

    async def quiet(self, seconds: float) -> list[str]:
        """Messages received over the next `seconds`."""
        before = len(self.messages)
        await asyncio.sleep(seconds)
        return self.messages[before:]

    async def disconnect(self) -> None:
        if self._drain is not None:
            self._drain.cancel()
            self._drain = None
        if not self.communicator.future.done():
            await self.communicator.disconnect(timeout=5)


async def session_cookie(user) -> str:
    client = AsyncClient()
    await client.aforce_login(user)
    return client.cookies[django_settings.SESSION_COOKIE_NAME].value


def run_path(run) -> str:
    return f"/ws/runs/default/{run.thread_id}/{run.run_id}/"


# --- reading pushed HTML -----------------------------------------------------------------------


def statuses(html: str, run_id: str) -> list[str]:
    """The status badges of a run in a push (header, row head)."""
    pattern = rf'id="run-status-{re.escape(run_id)}"><span class="badge[^"]*" title="([^"]*)"'
    return re.findall(pattern, html)


def status_sequence(messages: list[str], run_id: str) -> list[str]:
    """The run's statuses as one socket saw them, repeats removed."""
    out: list[str] = []
    for html in messages:
        for status in statuses(html, run_id):
            if not out or out[-1] != status:
                out.append(status)
    return out


def step_ids(html: str) -> set[str]:
    return set(re.findall(r'<li class="step" id="(step_[A-Za-z0-9_-]+)"', html))


# --- upstream JSON for respx (faults the sandbox cannot produce) -------------------------------

RESPX_BASE = "https://upstream.test/v1"


def run_json(run_id: str = "run_r1", status: str = "in_progress", **fields) -> dict:
    return {
        "id": run_id,
        "object": "thread.run",
        "created_at": 1_700_000_000,
        "thread_id": "thread_t1",
        "assistant_id": "asst_a1",
        "status": status,
        "required_action": None,
        "last_error": None,
        "expires_at": None,
        "started_at": 1_700_000_001,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "model": "gpt-4o",
        "tools": [],
        "metadata": {},
        "usage": None,
        **fields,
    }


def message_text(html: str, message_id: str) -> str | None:
    """The plain text of a message in a push's bodies template (what the page merges), or None."""
    box = html.find('<template data-merge="bodies">')
    start = html.find(f'data-message-body="{message_id}"', box) if box >= 0 else -1
    if start < 0:
        return None
    body = html[html.index(">", start) + 1 : html.find("</template>", start)]
    return unescape(re.sub(r"<[^>]+>", "", body)).strip()


def swapped(html: str, element_id: str) -> bool:
    """Whether `html` carries the element with this id for an out-of-band swap (whatever its data-v)."""
    return bool(re.search(rf'<[^>]*\bid="{re.escape(element_id)}"[^>]*\bhx-swap-oob="true"', html))


def stale_banner(html: str) -> str | None:
    """The text of a pushed "live updates are delayed" banner, or None."""
    match = re.search(r'<div id="live-stale"[^>]*class="banner warning"[^>]*>(.*?)</div>', html, re.S)
    return unescape(match.group(1)) if match else None


def stale_cleared(html: str) -> bool:
    """Whether `html` clears the banner (an empty #live-stale)."""
    return bool(re.search(r'<div id="live-stale"(?: data-v="[^"]*")? hx-swap-oob="true"></div>', html))


def versions(html: str) -> list[str]:
    """Every data-v in a push, in order."""
    return re.findall(r'data-v="([^"]*)"', html)


# --- an injectable clock ---------------------------------------------------------------------------


class FakeClock:
    """A clock that moves only when the test says: `advance(seconds)` wakes whoever's sleep is over.

    Timing logic (the watcher's pace, the budget) then does not depend on how busy the machine is."""

    def __init__(self, start: float = 1000.0, wall: float = 1_700_000_000.0):
        self.now = start
        self.wall = wall - start
        self._sleepers: list[tuple[float, int, asyncio.Future]] = []
        self._order = 0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.wall + self.now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future = asyncio.get_running_loop().create_future()
        self._order += 1
        self._sleepers.append((self.now + seconds, self._order, future))
        await future

    async def wait_for(self, event: asyncio.Event, seconds: float) -> bool:
        if event.is_set():
            return True
        waiter = asyncio.ensure_future(event.wait())
        sleeper = asyncio.ensure_future(self.sleep(seconds))
        _, pending = await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return event.is_set()

    async def advance(self, seconds: float, step: float = 0.01) -> None:
        """Move time forward in small steps, letting everything that wakes run at each."""
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + step)
            due = [s for s in self._sleepers if s[0] <= self.now]
            self._sleepers = [s for s in self._sleepers if s[0] > self.now]
            for _, _, future in sorted(due):
                if not future.done():
                    future.set_result(None)
            for _ in range(5):  # what woke may sleep again, or take a few hops to get there
                await asyncio.sleep(0)
