"""Runs the stand-alone sandbox API (daphne) as a separate process on its own database, for tests.

    with running_sandbox(speed=10) as sandbox:
        sandbox.request("GET", "/threads").json()

The database is a temporary SQLite file, or, when DATABASE_URL points at PostgreSQL, a fresh database
created on that server (and dropped afterwards), so the PostgreSQL pass exercises real row locks.
"""

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

BASE_DIR = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 30.0


@dataclass
class SandboxServer:
    base_url: str
    api_key: str
    env: dict = field(repr=False)
    log_path: Path = field(repr=False)
    _http: httpx.Client | None = field(default=None, repr=False)

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.api_key}", "OpenAI-Beta": "assistants=v2"}

    def client(self, **kwargs) -> httpx.Client:
        """An httpx client with the base URL, key and beta header set; paths are relative (`/threads`)."""
        return httpx.Client(base_url=self.base_url, headers=self.headers, timeout=30, **kwargs)

    def async_client(self, **kwargs) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, headers=self.headers, timeout=30, **kwargs)

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        """One call, e.g. `request("POST", "/threads", json={})`; `headers=` adds to the defaults.

        Calls share one kept-alive client: tests call this in loops, and a new client per call costs tens
        of milliseconds (it loads the CA bundle).
        """
        if self._http is None:
            self._http = self.client()
        return self._http.request(method, path, **kwargs)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        """`manage.py <args>` against this server's settings and database (e.g. `sandbox_seed`)."""
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )

    @contextmanager
    def peer(self) -> Iterator["SandboxServer"]:
        """A second server process on the same database, to test several processes advancing one run."""
        with _serving(self.env) as other:
            yield other

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _database() -> Iterator[str]:
    url = os.environ.get("DATABASE_URL", "")
    if urlsplit(url).scheme in ("postgres", "postgresql"):
        import psycopg
        from psycopg import sql

        name = f"sandbox_test_{secrets.token_hex(4)}"
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            try:
                yield urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
            finally:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        return
    with tempfile.TemporaryDirectory(prefix="sandbox-test-") as directory:
        yield f"sqlite:///{Path(directory) / 'sandbox.sqlite3'}"


def _wait_until_up(process: subprocess.Popen, base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"sandbox exited with {process.returncode}:\n{log_path.read_text(errors='replace')}"
            )
        try:
            httpx.get(base_url + "/", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(
        f"sandbox did not answer within {STARTUP_TIMEOUT} s:\n{log_path.read_text(errors='replace')}"
    )


@contextmanager
def _serving(env: dict) -> Iterator[SandboxServer]:
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    env = {**env, "PORT": str(port), "SANDBOX_BASE_URL": base_url}
    with tempfile.NamedTemporaryFile(prefix="sandbox-", suffix=".log", delete=False) as log:
        log_path = Path(log.name)
        command = [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "sandbox.asgi:application",
        ]
        process = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_up(process, base_url, log_path)
        server = SandboxServer(base_url=base_url, api_key=env["SANDBOX_API_KEY"], env=env, log_path=log_path)
        yield server
        server.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log_path.unlink(missing_ok=True)


@contextmanager
def running_sandbox(
    *, speed: float = 10, latency_ms: int = 0, env: dict | None = None
) -> Iterator[SandboxServer]:
    """Migrates a fresh database and serves the sandbox on a free port until the block ends.

    `env` adds or overrides environment variables of the server (e.g. {"LOG_LEVEL": "DEBUG"}).
    """
    with _database() as database_url:
        server_env = {
            **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
            "DJANGO_SETTINGS_MODULE": "sandbox.standalone_settings",
            "DATABASE_URL": database_url,
            "SECRET_KEY": secrets.token_urlsafe(32),
            "SANDBOX_API_KEY": f"sk-sandbox-test-{secrets.token_hex(12)}",
            "SANDBOX_SPEED": str(speed),
            "SANDBOX_LATENCY_MS": str(latency_ms),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
            cwd=BASE_DIR,
            env=server_env,
            check=True,
        )
        with _serving(server_env) as server:
            yield server
