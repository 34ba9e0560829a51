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
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from tests.sandbox_server import SandboxServer

BASE_DIR = Path(__file__).resolve().parents[2]
DAPHNE = Path(sys.executable).with_name("daphne")
STARTUP_TIMEOUT = 30.0

OPERATOR = ("olivia", "olivia-e2e-password-1234")
VIEWER = ("victor", "victor-e2e-password-1234")

_CREATE_USERS = f"""
from django.contrib.auth.models import Group, User
for (name, password), group in [({OPERATOR!r}, "operator"), ({VIEWER!r}, "viewer")]:
    user = User.objects.create_user(name, password=password)
    user.groups.add(Group.objects.get(name=group))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Dashboard:
    url: str
    env: dict = field(repr=False)
    log_path: Path = field(repr=False)

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def _database() -> Iterator[str]:
    """A temporary SQLite file, or a fresh PostgreSQL database when the session's DATABASE_URL is one."""
    url = os.environ.get("DATABASE_URL", "")
    if urlsplit(url).scheme in ("postgres", "postgresql"):
        import psycopg
        from psycopg import sql

        name = f"e2e_test_{secrets.token_hex(4)}"
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            try:
                yield urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
            finally:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        return
    with tempfile.TemporaryDirectory(prefix="e2e-dashboard-") as directory:
        yield f"sqlite:///{Path(directory) / 'dashboard.sqlite3'}"


def _wait_until_up(process: subprocess.Popen, url: str, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"daphne exited with {process.returncode}:\n{log_path.read_text(errors='replace')}"
            )
        with suppress(httpx.TransportError):
            httpx.get(url + "/accounts/login/", timeout=1)
            return
        time.sleep(0.05)
    raise RuntimeError(
        f"daphne did not answer in {STARTUP_TIMEOUT} s:\n{log_path.read_text(errors='replace')}"
    )


@contextmanager
def running_dashboard(sandbox: SandboxServer, **extra_env: str) -> Iterator[Dashboard]:
    """Migrates a fresh database, creates the operator and the viewer, serves the dashboard with daphne."""
    port = free_port()
    with _database() as database_url:
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
            "PORT": str(port),
            "WATCH_FAST_SECONDS": "0.2",
            "WATCH_SLOW_SECONDS": "1",
            "PYTHONUNBUFFERED": "1",
            **extra_env,
        }
        if os.environ.get("REDIS_URL"):
            env["REDIS_URL"] = os.environ["REDIS_URL"]
            env["REDIS_PREFIX"] = f"e2e-{secrets.token_hex(4)}"
        for args in (["migrate", "--noinput", "-v0"], ["shell", "-v0", "-c", _CREATE_USERS]):
            subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, check=True)
        url = f"http://127.0.0.1:{port}"
        with tempfile.NamedTemporaryFile(prefix="e2e-daphne-", suffix=".log", delete=False) as log:
            log_path = Path(log.name)
            command = [str(DAPHNE), "-b", "127.0.0.1", "-p", str(port), "dashboard.asgi:application"]
            process = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_up(process, url, log_path)
            yield Dashboard(url=url, env=env, log_path=log_path)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log_path.unlink(missing_ok=True)
            if env.get("REDIS_PREFIX"):
                _forget_redis_keys(env["REDIS_URL"], env["REDIS_PREFIX"])


def _forget_redis_keys(url: str, prefix: str) -> None:
    """The dashboard's keys (channel layer, leases, live states) under this run's own prefix."""
    import redis

    with redis.Redis.from_url(url) as client:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)


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
