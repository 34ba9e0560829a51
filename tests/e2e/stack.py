"""The whole product as real processes for browser tests: the dashboard under daphne, on its own database,
talking over HTTP to a sandbox API process; plus a TCP proxy that can cut the browser's live socket.

    with running_sandbox(speed=10) as sandbox, running_dashboard(sandbox) as dashboard:
        dashboard.url  # http://127.0.0.1:PORT
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from tests.processes import forget_redis_keys, manage, serving, temporary_database
from tests.sandbox_server import SandboxServer

OPERATOR = ("olivia", "olivia-e2e-password-1234")
VIEWER = ("victor", "victor-e2e-password-1234")

_CREATE_USERS = f"""
from django.contrib.auth.models import Group, User
for (name, password), group in [({OPERATOR!r}, "operator"), ({VIEWER!r}, "viewer")]:
    user = User.objects.create_user(name, password=password)
    user.groups.add(Group.objects.get(name=group))
"""


@dataclass
class Dashboard:
    url: str
    env: dict = field(repr=False)
    log_path: Path = field(repr=False)
    #: The daphne process (for its memory, e.g. /proc/<pid>/status).
    pid: int = 0

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        return manage(self.env, *args)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def running_dashboard(sandbox: SandboxServer, **extra_env: str) -> Iterator[Dashboard]:
    """Migrates a fresh database, creates the operator and the viewer, serves the dashboard with daphne."""
    with temporary_database("e2e_dashboard") as database_url:
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DJANGO_", "DATABASE_", "REDIS_", "SANDBOX_", "ASSISTANTS_API_"))
        }
        env = {
            **inherited,
            "DJANGO_SETTINGS_MODULE": "dashboard.settings",
            "DATABASE_URL": database_url,
            "SECRET_KEY": "e2e-fixed-secret-key-not-for-production-0123456789",
            "ASSISTANTS_API_BASE_URL": sandbox.base_url,
            "ASSISTANTS_API_KEY": sandbox.api_key,
            "ASSISTANTS_API_PROFILE": "sandbox",
            "WATCH_FAST_SECONDS": "0.2",
            "WATCH_SLOW_SECONDS": "1",
            **extra_env,
        }
        if os.environ.get("REDIS_URL"):
            env["REDIS_URL"] = os.environ["REDIS_URL"]
            env["REDIS_PREFIX"] = f"e2e-{secrets.token_hex(4)}"
        manage(env, "migrate", "--noinput", "-v0")
        manage(env, "shell", "-v0", "-c", _CREATE_USERS)
        try:
            with serving("dashboard.asgi:application", env, "/accounts/login/") as daphne:
                yield Dashboard(url=daphne.url, env=env, log_path=daphne.log_path, pid=daphne.pid)
        finally:
            if env.get("REDIS_PREFIX"):
                forget_redis_keys(env["REDIS_URL"], env["REDIS_PREFIX"] + ":")


class CuttableProxy:
    """A TCP proxy in front of the dashboard. `cut()` drops every open connection (the browser sees its
    WebSocket die abnormally, code 1006, as when a load balancer or the network drops it); while
    `refuse_sockets` is set, new WebSocket handshakes (GET /ws/…) are dropped too, so the page has to poll.
    """

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.refuse_sockets = False
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        head = b""
        with suppress(OSError):
            while b"\r\n" not in head and len(head) < 8192:
                chunk = client.recv(4096)
                if not chunk:
                    break
                head += chunk
        if not head or (self.refuse_sockets and head.startswith(b"GET /ws/")):
            client.close()
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
        except OSError:
            client.close()
            return
        with self._lock:
            self._open.update((client, upstream))
        upstream.sendall(head)
        threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
        self._pump(client, upstream)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for s in (source, sink):
            self._drop(s)

    def _drop(self, s: socket.socket) -> None:
        with suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        s.close()
        with self._lock:
            self._open.discard(s)

    def cut(self) -> None:
        with self._lock:
            open_now = list(self._open)
        for s in open_now:
            self._drop(s)

    def close(self) -> None:
        self._closed = True
        self._server.close()
        self.cut()
