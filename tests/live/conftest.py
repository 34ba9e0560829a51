"""Fixtures for the live layer: sockets on the full ASGI app, the channel layer (memory or Redis), and a
sandbox that logs every request so tests can count what the watcher costs the upstream.

- `sandbox` (overrides the session one): the sandbox test server with SANDBOX_REQUEST_LOG set;
  `upstream`, `make_run` and `wait_for` from tests/fixtures.py use it.
- `requests_log`: the sandbox's request log, filtered by time, run and method.
- `open_socket(path, user=…, origin=…)`: a `LiveSocket` on `dashboard.asgi.application`, always
  disconnected at the end of the test.
- `redis_layer`: the Redis channel layer and shared state, under a prefix unique to this test session;
  `any_layer`: a test once on each layer. Otherwise the layer is Redis when the session's REDIS_URL is
  set, else the in-memory one.
- `respx_upstream`: the default connection pointed at a respx mock, for faults the sandbox cannot make.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings

from dashboard.asgi import application
from runs_ui.live import store as live_store
from sandbox.wire import page as page_json  # the list envelope as the sandbox sends it
from tests.live.support import (
    HOST,
    ORIGIN,
    REDIS_URL,
    RESPX_BASE,
    SESSION_PREFIX,
    LiveSocket,
    RequestLog,
    layer_settings,
    reset_live_state,
    session_cookie,
)
from tests.sandbox_server import running_sandbox


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory):
    """The session's sandbox (speed 10), with a request log."""
    log = tmp_path_factory.mktemp("sandbox-requests") / "requests.jsonl"
    with running_sandbox(speed=10, latency_ms=0, env={"SANDBOX_REQUEST_LOG": str(log)}) as server:
        yield server


@pytest.fixture
def requests_log(sandbox) -> RequestLog:
    return RequestLog(Path(sandbox.env["SANDBOX_REQUEST_LOG"]))


@pytest.fixture(autouse=True)
async def live_layer(settings):
    """The session's layer (Redis when REDIS_URL is set, else memory), under this session's prefix."""
    settings.REDIS_PREFIX = SESSION_PREFIX
    settings.CHANNEL_LAYERS = layer_settings(settings.REDIS_URL)
    settings.ALLOWED_HOSTS = [HOST, "testserver"]
    settings.CSRF_TRUSTED_ORIGINS = []
    settings.UPSTREAM_RETRIES = 0  # the watcher's own backoff is what these tests look at
    await reset_live_state()
    yield
    await reset_live_state()


@pytest.fixture
async def redis_layer(live_layer, settings):
    """The Redis channel layer and Redis shared state, whatever the session's REDIS_URL."""
    settings.REDIS_URL = REDIS_URL
    settings.CHANNEL_LAYERS = layer_settings(REDIS_URL)
    await reset_live_state()
    assert isinstance(live_store.store(), live_store.RedisStore)
    yield
    await reset_live_state()


@pytest.fixture(params=["memory", "redis"])
async def any_layer(request, live_layer, settings):
    """Runs a test on the in-memory layer and on the Redis one."""
    url = REDIS_URL if request.param == "redis" else ""
    settings.REDIS_URL = url
    settings.CHANNEL_LAYERS = layer_settings(url)
    await reset_live_state()
    yield request.param
    await reset_live_state()


@pytest.fixture
async def open_socket():
    sockets: list[LiveSocket] = []

    async def open_(path: str, user=None, origin: str | None = ORIGIN) -> LiveSocket:
        headers = [(b"host", HOST.encode())]
        if origin is not None:
            headers.append((b"origin", origin.encode()))
        if user is not None:
            cookie = f"{django_settings.SESSION_COOKIE_NAME}={await session_cookie(user)}"
            headers.append((b"cookie", cookie.encode()))
        socket = LiveSocket(WebsocketCommunicator(application, path, headers=headers))
        sockets.append(socket)
        return await socket.open()

    yield open_
    await asyncio.gather(*(s.disconnect() for s in sockets), return_exceptions=True)


@pytest.fixture
def respx_upstream(settings):
    """The dashboard's default connection pointed at a respx-mocked upstream (steps, messages and the
    assistant answered; each test routes the run itself)."""
    import respx

    from runs_ui import assistants

    settings.ASSISTANTS_API_BASE_URL = RESPX_BASE
    settings.ASSISTANTS_API_KEY = "sk-test-live"
    settings.ASSISTANTS_API_PROFILE = "openai"
    settings.ASSISTANTS_API_VERSION = ""
    assistants._cache.clear()
    with respx.mock(base_url=RESPX_BASE, assert_all_called=False) as router:
        router.get(path__regex=r"/threads/[^/]+/runs/[^/]+/steps$").mock(
            return_value=httpx.Response(200, json=page_json([]))
        )
        router.get(path__regex=r"/threads/[^/]+/messages$").mock(
            return_value=httpx.Response(200, json=page_json([]))
        )
        router.get(path__regex=r"/assistants$").mock(return_value=httpx.Response(200, json=page_json([])))
        router.get(path__regex=r"/assistants/[^/]+$").mock(
            return_value=httpx.Response(200, json={"id": "asst_a1", "object": "assistant", "name": "Mocked"})
        )
        yield router
    assistants._cache.clear()
