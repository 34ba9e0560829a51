"""Servers as real processes for tests and benchmarks: daphne on a free port, a throwaway database,
`manage.py` commands against a server's environment.

Used by the sandbox fixture (tests/sandbox_server.py), the browser tests' stack, the multi-process live
test and the benchmarks, so each starts, waits for and stops its servers the same way.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

BASE_DIR = Path(__file__).resolve().parent.parent
DAPHNE = Path(sys.executable).with_name("daphne")
STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def temporary_database(prefix: str, server: str | None = None) -> Iterator[str]:
    """A database URL for one server, dropped afterwards.

    A fresh database on the PostgreSQL server when the session's DATABASE_URL (or `server`) is one (so the
    PostgreSQL pass runs the servers on PostgreSQL too), otherwise a temporary SQLite file.
    """
    url = server or os.environ.get("DATABASE_URL", "")
    if urlsplit(url).scheme in ("postgres", "postgresql"):
        import psycopg
        from psycopg import sql

        name = f"{prefix}_{secrets.token_hex(4)}"
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            try:
                yield urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
            finally:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        return
    with tempfile.TemporaryDirectory(prefix=f"{prefix}-") as directory:
        yield f"sqlite:///{Path(directory) / 'db.sqlite3'}"


def manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    """`manage.py <args>` with `env` (a server's settings and database); its output is returned, and a
    failure raises with what the command printed."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"manage.py {args[0]} exited with {done.returncode}:\n{done.stdout}{done.stderr}")
    return done


@dataclass
class Daphne:
    """One daphne process serving an ASGI application on 127.0.0.1."""

    process: subprocess.Popen
    port: int
    log_path: Path

    @classmethod
    def start(cls, app: str, env: dict, log_path: Path, port: int | None = None) -> Daphne:
        """Starts it; `wait_until_up` tells when it answers."""
        port = port or free_port()
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                [str(DAPHNE), "-b", "127.0.0.1", "-p", str(port), app],
                cwd=BASE_DIR,
                env={**env, "PORT": str(port), "PYTHONUNBUFFERED": "1"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return cls(process, port, log_path)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until_up(self, path: str, timeout: float = STARTUP_TIMEOUT) -> None:
        """Until `path` answers at all (any status), or RuntimeError with the process's log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited with {self.process.returncode}:\n{self.log()}")
            with suppress(httpx.TransportError):
                httpx.get(self.url + path, timeout=1)
                return
            time.sleep(0.05)
        raise RuntimeError(f"daphne did not answer within {timeout} s:\n{self.log()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def serving(app: str, env: dict, ready_path: str, port: int | None = None) -> Iterator[Daphne]:
    """One daphne process for the block, its log in a temporary file."""
    with tempfile.NamedTemporaryFile(prefix="daphne-", suffix=".log", delete=False) as log:
        log_path = Path(log.name)
    server = Daphne.start(app, env, log_path, port)
    try:
        server.wait_until_up(ready_path)
        yield server
    finally:
        server.stop()
        log_path.unlink(missing_ok=True)


def forget_redis_keys(url: str, prefix: str) -> None:
    """Every key under a server's own REDIS_PREFIX (channel layer, leases, live states)."""
    import redis

    with redis.Redis.from_url(url) as client:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
