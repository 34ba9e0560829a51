"""Two dashboard processes (daphne) on the Redis layer, sockets on both, one run changing in the sandbox:
every socket gets every change, one process polls, and when it dies the other takes over."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests import wsclient
from tests.live.support import REDIS_URL, SESSION_PREFIX, sandbox_get, sandbox_post, status_sequence, step_ids
from tests.processes import Daphne, forget_redis_keys, manage, temporary_database

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


class Dashboard(Daphne):
    @property
    def agent(self) -> str:
        return f"runs-dashboard/0.1 (pid {self.pid})"


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


@contextlib.contextmanager
def dashboards(sandbox, count: int = 2) -> Iterator[tuple[list[Dashboard], str]]:
    """`count` daphne processes sharing one fresh database and one Redis prefix; yields them and a
    session key of an operator signed in on all of them."""
    with (
        temporary_database("dashboards") as database_url,
        tempfile.TemporaryDirectory(prefix="dashboards-") as directory,
    ):
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
            yield started, session_key
        finally:
            for dashboard in started:
                dashboard.stop()
            forget_redis_keys(REDIS_URL, MP_PREFIX)


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
                await viewer.socket.close()
