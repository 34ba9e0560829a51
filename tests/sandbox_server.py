"""Runs the stand-alone sandbox API (daphne) as a separate process on its own database, for tests.

    with running_sandbox(speed=10) as sandbox:
        sandbox.request("GET", "/threads").json()

The database is a temporary SQLite file, or, when DATABASE_URL points at PostgreSQL, a fresh database
created on that server (and dropped afterwards), so the PostgreSQL pass exercises real row locks
(tests/processes.py).
"""

import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.processes import free_port, manage, serving, temporary_database


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

    def api(self, method: str, path: str, **kwargs) -> dict:
        """One call that must succeed: its JSON."""
        response = self.request(method, path, **kwargs)
        assert response.status_code == 200, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def start_run(
        self, script: str = "answer", *, speed: float = 10, message: str = "Hello", **knobs
    ) -> dict:
        """A new assistant running `script`, and a new thread with `message` and a run of it (its JSON).

        `knobs` are the run's other sandbox_* metadata (e.g. sandbox_queued_seconds=2), as strings.
        """
        assistant = self.api(
            "POST",
            "/assistants",
            json={"model": "gpt-4o", "name": f"Test {script}", "metadata": {"sandbox_script": script}},
        )
        return self.api(
            "POST",
            "/threads/runs",
            json={
                "assistant_id": assistant["id"],
                "thread": {"messages": [{"role": "user", "content": message}]},
                "metadata": {"sandbox_speed": str(speed), **{k: str(v) for k, v in knobs.items()}},
            },
        )

    def wait_run(self, thread_id: str, run_id: str, *statuses: str, timeout: float = 20) -> dict:
        """Polls until the run is in one of `statuses`: its JSON (AssertionError after `timeout`)."""
        deadline = time.monotonic() + timeout
        while True:
            body = self.api("GET", f"/threads/{thread_id}/runs/{run_id}")
            if body["status"] in statuses:
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"{run_id} is {body['status']}, not {statuses}, after {timeout} s")
            time.sleep(0.05)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        """`manage.py <args>` against this server's settings and database (e.g. `sandbox_seed`)."""
        return manage(self.env, *args)

    @contextmanager
    def peer(self) -> Iterator["SandboxServer"]:
        """A second server process on the same database, to test several processes advancing one run."""
        with _serving(self.env) as other:
            yield other

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def _serving(env: dict) -> Iterator[SandboxServer]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    env = {**env, "SANDBOX_BASE_URL": base_url}
    with serving("sandbox.asgi:application", env, "/v1/", port) as daphne:
        server = SandboxServer(
            base_url=base_url, api_key=env["SANDBOX_API_KEY"], env=env, log_path=daphne.log_path
        )
        try:
            yield server
        finally:
            server.close()


@contextmanager
def running_sandbox(
    *, speed: float = 10, latency_ms: int = 0, env: dict | None = None
) -> Iterator[SandboxServer]:
    """Migrates a fresh database and serves the sandbox on a free port until the block ends.

    `env` adds or overrides environment variables of the server (e.g. {"LOG_LEVEL": "DEBUG"}).
    """
    with temporary_database("sandbox_test") as database_url:
        server_env = {
            **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
            "DJANGO_SETTINGS_MODULE": "sandbox.standalone_settings",
            "DATABASE_URL": database_url,
            "SECRET_KEY": secrets.token_urlsafe(32),
            "SANDBOX_API_KEY": f"sk-sandbox-test-{secrets.token_hex(12)}",
            "SANDBOX_SPEED": str(speed),
            "SANDBOX_LATENCY_MS": str(latency_ms),
            **(env or {}),
        }
        manage(server_env, "migrate", "--noinput", "-v0")
        with _serving(server_env) as server:
            yield server
