"""Fixtures for tests of the dashboard itself (registered in tests/conftest.py).

- `upstream`: points the dashboard's default connection at the session's sandbox (real HTTP).
- `users`: an operator, a viewer and an admin (Django groups, as in production).
- `operator_client`, `viewer_client`, `admin_client`, `anon_client`: Django AsyncClients, the
  signed-in ones logged in; CSRF is enforced on all of them.
- `make_run(script=…, speed=…, **metadata)`: creates an assistant + thread + run in the sandbox.
- `wait_for(sandbox_run, status)`: polls the sandbox until the run has one of the statuses.

Dashboard views are async and reach the database from a worker thread, so these tests use
`transactional_db` (the data a test writes must be committed for that thread to see it).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group, User
from django.db import connections
from django.test import AsyncClient

from runs_ui.live import response_relay
from runs_ui.live.response_watch import response_watcher
from runs_ui.live.watcher import watcher
from runs_ui.roles import ADMIN, OPERATOR, VIEWER
from runs_ui.upstream.client import close_pool


@pytest.fixture(autouse=True)
def _fresh_import_backoff():
    """The home page's import backoff is process state; no test inherits another's failure."""
    from runs_ui.views import home

    home._import_retry_at = 0.0


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Production hashing takes ~1 s per password by design; tests make users all the time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def upstream(sandbox, settings):
    """The dashboard's default connection is the sandbox test server."""
    settings.ASSISTANTS_API_BASE_URL = sandbox.base_url
    settings.ASSISTANTS_API_KEY = sandbox.api_key
    settings.ASSISTANTS_API_PROFILE = "sandbox"
    settings.ASSISTANTS_API_VERSION = ""
    from runs_ui import assistants

    assistants._cache.clear()
    return sandbox


@dataclass
class Users:
    operator: User
    viewer: User
    admin: User


def _make_users() -> Users:
    def user(name, *groups, **flags):
        u = User.objects.create_user(name, password=f"{name}-password-1234", **flags)
        u.groups.add(*Group.objects.filter(name__in=groups))
        return u

    for name in (VIEWER, OPERATOR, ADMIN):
        Group.objects.get_or_create(name=name)
    return Users(
        operator=user("olivia", OPERATOR),
        viewer=user("victor", VIEWER),
        admin=user("ada", ADMIN, OPERATOR, is_staff=True),
    )


@pytest.fixture
def users(transactional_db) -> Users:
    return _make_users()


async def _client_for(user: User | None) -> AsyncClient:
    client = AsyncClient(enforce_csrf_checks=True)
    if user is not None:
        await client.aforce_login(user)
    return client


@pytest.fixture
async def operator_client(users, upstream) -> AsyncClient:
    return await _client_for(users.operator)


@pytest.fixture
async def viewer_client(users, upstream) -> AsyncClient:
    return await _client_for(users.viewer)


@pytest.fixture
async def admin_client(users, upstream) -> AsyncClient:
    return await _client_for(users.admin)


@pytest.fixture
async def anon_client(transactional_db, upstream) -> AsyncClient:
    return await _client_for(None)


async def csrf_token(client: AsyncClient, path: str = "/") -> str:
    """A CSRF token for POSTs from an enforcing client: GET a page, read the cookie."""
    await client.get(path)
    return client.cookies["csrftoken"].value


@dataclass
class SandboxRun:
    assistant_id: str
    thread_id: str
    run_id: str
    raw: dict

    @classmethod
    def of(cls, run: dict) -> SandboxRun:
        """From a run's JSON as the sandbox answered it."""
        return cls(run["assistant_id"], run["thread_id"], run["id"], run)


@pytest.fixture
def make_run(upstream):
    """make_run(script="answer", speed=10, message="Hello", **metadata) → SandboxRun (via the sandbox API)."""

    def make(script: str = "answer", speed: float = 10, message: str = "Hello", **metadata) -> SandboxRun:
        return SandboxRun.of(upstream.start_run(script, speed=speed, message=message, **metadata))

    return make


@pytest.fixture
def wait_for(upstream):
    def wait(run: SandboxRun, *statuses: str, timeout: float = 20) -> dict:
        return upstream.wait_run(run.thread_id, run.run_id, *statuses, timeout=timeout)

    return wait


@pytest.fixture(autouse=True)
async def _stop_watchers():
    """No watcher task (nor stream relay of a response) outlives its test."""
    yield
    await response_relay.stop()
    await watcher.stop()
    await response_watcher.stop()


@pytest.fixture(scope="session", autouse=True)
async def _close_upstream_pool():
    yield
    await close_pool()


@pytest.fixture(autouse=True)
async def _close_db_connections(request):
    """Async tests touch the database from a worker thread; close its connection so PostgreSQL can drop
    the test database at the end of the session."""
    yield
    if "transactional_db" in request.fixturenames:
        await sync_to_async(connections.close_all)()


async def eventually(check, timeout: float = 10, interval: float = 0.05):  # noqa: ASYNC109 - a test helper
    """Await until `check()` (sync or async) returns something truthy; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout} s: {check}")
        await asyncio.sleep(interval)
