"""Two dashboard processes (daphne) on the Redis layer, sockets on both, one run changing in the sandbox:
every socket gets every change, one process polls, and when it dies the other takes over."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from tests.live.support import REDIS_URL, SESSION_PREFIX, sandbox_get, sandbox_post, status_sequence, step_ids
from tests.live.ws_client import Closed, WebSocket
from tests.sandbox_server import BASE_DIR, _database, _free_port

SOCKETS_PER_PROCESS = 3
MP_PREFIX = f"{SESSION_PREFIX}-mp"

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


@dataclass
class Dashboard:
    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def agent(self) -> str:
        return f"runs-dashboard/0.1 (pid {self.process.pid})"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class Viewer:
    """A socket on one process, collecting what it is sent."""

    dashboard: Dashboard
    socket: WebSocket
    messages: list[str] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)
    close_code: int | None = None
    task: asyncio.Task | None = None

    async def collect(self) -> None:
        try:
            while True:
                html = await self.socket.recv()
                self.arrived.append(time.time())
                self.messages.append(html)
        except Closed as closed:
            self.close_code = closed.code

    def since(self, moment: float) -> list[str]:
        return [m for m, t in zip(self.messages, self.arrived, strict=True) if t >= moment]


def _wait_until_up(dashboard: Dashboard, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if dashboard.process.poll() is not None:
            raise RuntimeError(f"daphne exited with {dashboard.process.returncode}:\n{dashboard.log()}")
        try:
            if httpx.get(f"http://127.0.0.1:{dashboard.port}/accounts/login/", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"daphne did not answer within {timeout} s:\n{dashboard.log()}")


@contextlib.contextmanager
def dashboards(sandbox, count: int = 2) -> Iterator[tuple[list[Dashboard], str]]:
    """`count` daphne processes sharing one fresh database and one Redis prefix; yields them and a
    session key of an operator signed in on all of them."""
    with _database() as database_url, tempfile.TemporaryDirectory(prefix="dashboards-") as directory:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SANDBOX_", "DJANGO_"))},
            "DJANGO_SETTINGS_MODULE": "dashboard.settings",
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "REDIS_PREFIX": MP_PREFIX,
            "ASSISTANTS_API_BASE_URL": sandbox.base_url,
            "ASSISTANTS_API_KEY": sandbox.api_key,
            "ASSISTANTS_API_PROFILE": "sandbox",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECRET_KEY": secrets.token_urlsafe(40),  # the same on both: sessions are valid on either
            "WATCH_FAST_SECONDS": "0.3",
            "WATCH_SLOW_SECONDS": "0.5",
            "WATCH_LEASE_SECONDS": "1",
            "UPSTREAM_RETRIES": "0",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=BASE_DIR, env=env, check=True)
        started: list[Dashboard] = []
        try:
            for n in range(count):
                port = _free_port()
                log_path = Path(directory) / f"daphne-{n}.log"
                with open(log_path, "w") as log:
                    process = subprocess.Popen(
                        [
                            str(Path(sys.executable).parent / "daphne"),
                            "-b",
                            "127.0.0.1",
                            "-p",
                            str(port),
                            "dashboard.asgi:application",
                        ],
                        cwd=BASE_DIR,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                started.append(Dashboard(process, port, log_path))
            # While they start: an operator and a session for it (the shell may print a banner first).
            session_key = subprocess.run(
                [*manage, "shell", "-c", CREATE_SESSION],
                cwd=BASE_DIR,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()[-1]
            for dashboard in started:
                _wait_until_up(dashboard)
            yield started, session_key
        finally:
            for dashboard in started:
                if dashboard.process.poll() is None:
                    dashboard.process.terminate()
            for dashboard in started:
                try:
                    dashboard.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    dashboard.process.kill()
                    dashboard.process.wait()
            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=f"{MP_PREFIX}*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()


async def open_viewer(dashboard: Dashboard, path: str, session_key: str) -> Viewer:
    socket = await WebSocket.connect(
        "127.0.0.1",
        dashboard.port,
        path,
        {"Cookie": f"sessionid={session_key}", "Origin": f"http://127.0.0.1:{dashboard.port}"},
    )
    viewer = Viewer(dashboard, socket)
    viewer.task = asyncio.get_running_loop().create_task(viewer.collect())
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


async def test_two_processes_share_one_poller_every_socket_gets_every_change_and_a_survivor_takes_over(
    sandbox, make_run, requests_log
):
    with dashboards(sandbox) as (processes, session_key):
        run = make_run("functions", speed=2, sandbox_queued_seconds=4)
        path = f"/ws/runs/default/{run.thread_id}/{run.run_id}/"
        viewers = [
            await open_viewer(dashboard, path, session_key)
            for _ in range(SOCKETS_PER_PROCESS)
            for dashboard in processes
        ]
        connected_at = time.time()
        try:
            # Phase 1: queued → in_progress → requires_action, seen by every socket on both processes.
            def all_waiting():
                return all("requires_action" in status_sequence(v.messages, run.run_id) for v in viewers)

            await until(all_waiting, 15, "every socket sees requires_action")

            # The steps follow the status within the run's budget for details (a few seconds).
            def all_have_steps():
                return all(set().union(*(step_ids(m) for m in v.messages)) for v in viewers)

            await until(all_have_steps, 8, "every socket sees the function-call step")
            await asyncio.sleep(0.5)
            # The changes made once all six were connected (the run was still queued then); one published
            # while a socket connects reaches it through the resync state instead.
            sequences = {
                tuple(s for s in status_sequence(v.since(connected_at), run.run_id) if s != "queued")
                for v in viewers
            }
            assert len(sequences) == 1, sequences  # the same changes on all six sockets
            (sequence,) = sequences
            assert sequence[-1] == "requires_action", sequence
            steps = {frozenset(set().union(*(step_ids(m) for m in v.messages))) for v in viewers}
            assert len(steps) == 1 and next(iter(steps)), steps

            # One process polled the run, though both had sockets watching it.
            (poller_agent,) = pollers(requests_log, run.run_id)
            (polling,) = [d for d in processes if d.agent == poller_agent]
            (other,) = [d for d in processes if d is not polling]

            # Phase 2: the polling process dies; the other takes over within a few seconds.
            polling.process.send_signal(signal.SIGKILL)
            polling.process.wait(timeout=5)
            killed_at = time.time()
            await until(lambda: other.agent in pollers(requests_log, run.run_id, killed_at), 8, "takeover")
            first = min(e["t"] for e in requests_log.entries(run_id=run.run_id, since=killed_at))
            assert first - killed_at <= 5.0, first - killed_at
            survivors = [v for v in viewers if v.dashboard is other]
            lost = [v for v in viewers if v.dashboard is polling]
            await until(
                lambda: all(v.close_code is not None for v in lost), 5, "dead process's sockets close"
            )

            # …and the remaining sockets get the remaining changes.
            waiting = await sandbox_get(sandbox, f"/threads/{run.thread_id}/runs/{run.run_id}")
            calls = waiting["required_action"]["submit_tool_outputs"]["tool_calls"]
            resumed_at = time.time()
            await sandbox_post(
                sandbox,
                f"/threads/{run.thread_id}/runs/{run.run_id}/submit_tool_outputs",
                {"tool_outputs": [{"tool_call_id": c["id"], "output": f"out-{c['id']}"} for c in calls]},
            )

            def all_done():
                return all("completed" in status_sequence(v.since(resumed_at), run.run_id) for v in survivors)

            await until(all_done, 15, "every surviving socket sees completed")
            await asyncio.sleep(0.5)
            after = {tuple(status_sequence(v.since(resumed_at), run.run_id)) for v in survivors}
            assert len(after) == 1, after  # the same changes on every surviving socket
            (seen_after,) = after
            assert seen_after[-1] == "completed", seen_after
            new_steps = {
                frozenset(set().union(*(step_ids(m) for m in v.since(resumed_at)))) for v in survivors
            }
            assert len(new_steps) == 1, new_steps
            final_steps = await sandbox_get(sandbox, f"/threads/{run.thread_id}/runs/{run.run_id}/steps")
            assert next(iter(new_steps)) >= {s["id"] for s in final_steps["data"]} - next(iter(steps))
            # Only the survivor polled after the takeover.
            assert pollers(requests_log, run.run_id, killed_at + 0.5) == {other.agent}
            assert re.search(r"Traceback", other.log()) is None, other.log()
        finally:
            for viewer in viewers:
                if viewer.task is not None:
                    viewer.task.cancel()
                await viewer.socket.close()
