"""A cluster for the multi-process live tests: several dashboard processes (daphne) on one database and
one Redis, sockets on them that record what they are sent, and a Redis server of the test's own that a
test may stop and start again (never the machine's shared one)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests import wsclient
from tests.live.support import REDIS_URL, SESSION_PREFIX
from tests.processes import Daphne, forget_redis_keys, free_port, manage, temporary_database

CREATE_SESSION = """
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import Group, User
from django.contrib.sessions.backends.db import SessionStore
user = User.objects.create_user("olivia", password="olivia-password-1234")
user.groups.add(Group.objects.get_or_create(name="operator")[0])
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print(session.session_key)
"""


class Dashboard(Daphne):
    @property
    def agent(self) -> str:
        return f"runs-dashboard/0.1 (pid {self.pid})"


@dataclass
class Cluster:
    processes: list[Dashboard]
    session_key: str
    redis_url: str
    prefix: str

    def pushes(self, key: str) -> list[dict]:
        """Every push of a live object still kept in Redis, oldest version first."""
        import redis

        from runs_ui.live.store import Version

        with redis.Redis.from_url(self.redis_url) as client:
            names = list(client.scan_iter(match=f"{self.prefix}:push:{key}:*", count=1000))
            values = client.mget(names) if names else []
        pushes = [json.loads(v) for v in values if v]
        return sorted(pushes, key=lambda p: Version.parse(p["v"]))


@contextlib.contextmanager
def dashboards(sandbox, count: int = 2, redis_url: str = REDIS_URL, **extra_env: str) -> Iterator[Cluster]:
    """`count` daphne processes sharing one fresh database and one Redis prefix, with an operator signed
    in on all of them."""
    prefix = f"{SESSION_PREFIX}-mp-{secrets.token_hex(3)}"
    with (
        temporary_database("dashboards") as database_url,
        tempfile.TemporaryDirectory(prefix="dashboards-") as directory,
    ):
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SANDBOX_", "DJANGO_"))},
            "DJANGO_SETTINGS_MODULE": "dashboard.settings",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": prefix,
            "ASSISTANTS_API_BASE_URL": sandbox.base_url,
            "ASSISTANTS_API_KEY": sandbox.api_key,
            "ASSISTANTS_API_PROFILE": "sandbox",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECRET_KEY": secrets.token_urlsafe(40),  # the same on both: sessions are valid on either
            "WATCH_FAST_SECONDS": "0.3",
            "WATCH_THREAD_SECONDS": "0.5",
            "WATCH_SLOW_SECONDS": "0.5",
            "WATCH_LEASE_SECONDS": "1",
            "LIVE_PROBE_SECONDS": "0.5",
            "REDIS_SOCKET_TIMEOUT": "1",
            "REDIS_POOL_TIMEOUT": "1",
            "UPSTREAM_RETRIES": "0",
            "LOG_LEVEL": "WARNING",
            **extra_env,
        }
        manage(env, "migrate", "--noinput", "-v0")
        started: list[Dashboard] = []
        try:
            for n in range(count):
                app = "dashboard.asgi:application"
                started.append(Dashboard.start(app, env, Path(directory) / f"daphne-{n}.log"))
            # While they start: an operator and a session for it (the shell may print a banner first).
            session_key = manage(env, "shell", "-c", CREATE_SESSION).stdout.split()[-1]
            for dashboard in started:
                dashboard.wait_until_up("/accounts/login/")
            yield Cluster(started, session_key, redis_url, prefix)
        finally:
            for dashboard in started:
                if dashboard.process.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(dashboard.pid, 18)  # SIGCONT, in case a test left it stopped
                dashboard.stop()
            with contextlib.suppress(Exception):
                forget_redis_keys(redis_url, prefix)


@dataclass
class Viewer:
    """A socket on one process, collecting what it is sent."""

    dashboard: Dashboard
    socket: wsclient.WebSocket | None = None
    messages: list[str] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)

    def received(self, at: float, html: str) -> None:
        self.arrived.append(at)
        self.messages.append(html)

    @property
    def close_code(self) -> int | None:
        """None while open; the server's close code, or 1006 when the connection just dropped."""
        return (self.socket.close_code or 1006) if self.socket.closed.done() else None

    def since(self, moment: float) -> list[str]:
        return [m for m, t in zip(self.messages, self.arrived, strict=True) if t >= moment]


async def open_viewer(dashboard: Dashboard, path: str, session_key: str) -> Viewer:
    viewer = Viewer(dashboard)
    viewer.socket = await wsclient.connect(
        f"ws://127.0.0.1:{dashboard.port}{path}",
        viewer.received,
        headers={"Cookie": f"sessionid={session_key}", "Origin": f"http://127.0.0.1:{dashboard.port}"},
    )
    return viewer


async def until(check, within: float, what: str):
    deadline = time.monotonic() + within
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.05)
    return result


def pollers(requests_log, run_id: str, since: float = 0.0) -> set[str]:
    return {e["agent"] for e in requests_log.entries(run_id=run_id, since=since)}


async def operator_post(dashboard: Dashboard, session_key: str, path: str, data: dict) -> httpx.Response:
    """A form POST as the signed-in operator (CSRF token from the form page, as a browser has it)."""
    cookies = {"sessionid": session_key}
    async with httpx.AsyncClient(base_url=dashboard.url, cookies=cookies, timeout=30) as http:
        page = await http.get(path)
        assert page.status_code == 200, page.text[:500]
        token = http.cookies["csrftoken"]
        return await http.post(
            path, data={**data, "csrfmiddlewaretoken": token}, headers={"Referer": dashboard.url + path}
        )


# --- a Redis server of the test's own ---------------------------------------------------------------


@dataclass
class OwnRedis:
    """`redis-server` on a free port, keeping nothing on disk: `stop()` and `start()` it at will."""

    port: int
    directory: str
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.directory,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(redis.exceptions.ConnectionError), redis.Redis(port=self.port) as r:
                if r.ping():
                    return
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@contextlib.contextmanager
def own_redis() -> Iterator[OwnRedis]:
    with tempfile.TemporaryDirectory(prefix="redis-") as directory:
        server = OwnRedis(free_port(), directory)
        server.start()
        try:
            yield server
        finally:
            server.stop()
