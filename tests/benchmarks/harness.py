"""What the benchmarks share: the dashboard served by daphne as its own process, a signed-in session,
sockets, the sandbox's request log, percentiles, and the results files behind docs/PERFORMANCE.md."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import platform
import re
import resource
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests import wsclient
from tests.processes import BASE_DIR, Daphne, free_port, manage, temporary_database

RESULTS_DIR = Path(__file__).resolve().parent / "results"
USERNAME, PASSWORD = "bench", "bench-password-1234"
#: The added upstream latency every benchmark runs with (issue 3 and 4: "50 ms added latency").
LATENCY_MS = 50
#: Environment variables of the benchmark's own shell that must not leak into the servers it starts.
_SCRUB = ("DATABASE_URL", "REDIS_URL", "REDIS_PREFIX", "DJANGO_SETTINGS_MODULE", "BENCH_LOG", "PORT")


# --- numbers -------------------------------------------------------------------------------------


def percentile(values, q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); NaN for no values."""
    data = sorted(values)
    if not data:
        return math.nan
    k = (len(data) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def summary(values) -> dict:
    values = list(values)
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "max": max(values) if values else math.nan,
        "mean": sum(values) / len(values) if values else math.nan,
    }


def fmt(s: dict, unit: str = "s", digits: int = 3) -> str:
    return (
        f"p50 {s['p50']:.{digits}f} {unit} · p95 {s['p95']:.{digits}f} {unit} · "
        f"max {s['max']:.{digits}f} {unit} (n={s['n']})"
    )


def machine() -> dict:
    info = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    try:
        model = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        info["cpu"] = model.group(1).strip() if model else ""
        mem = re.search(r"MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text())
        info["memory_gb"] = round(int(mem.group(1)) / 1024 / 1024, 1) if mem else None
        # Other work on the machine skews the figures: load averages (1, 5, 15 min) when written.
        info["loadavg_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return info


def record(name: str, figures: dict) -> Path:
    """Print the figures and write them, with the machine, to tests/benchmarks/results/<name>.json."""
    RESULTS_DIR.mkdir(exist_ok=True)
    out = {"benchmark": name, "machine": machine(), **figures}
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(out, indent=2, default=float) + "\n")
    print(f"\n=== {name} → {path.relative_to(BASE_DIR)}")
    print(json.dumps(out, indent=2, default=float))
    return path


def raise_fd_limit(wanted: int = 20_000) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc/<pid>/status."""
    match = re.search(r"VmRSS:\s*(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else math.nan


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the sandbox ---------------------------------------------------------------------------------


def sandbox_post(sandbox, path: str, body: dict) -> dict:
    response = sandbox.request("POST", path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def make_assistant(sandbox, script: str) -> str:
    return sandbox_post(
        sandbox,
        "/assistants",
        {"model": "gpt-4o", "name": f"Bench {script}", "metadata": {"sandbox_script": script}},
    )["id"]


def make_thread(sandbox) -> str:
    return sandbox_post(
        sandbox, "/threads", {"messages": [{"role": "user", "content": "Benchmark question"}]}
    )["id"]


def make_run(sandbox, assistant_id: str, thread_id: str | None = None, **metadata) -> dict:
    """A run (on a new thread unless one is given) with sandbox knobs as metadata."""
    meta = {k: str(v) for k, v in metadata.items()}
    if thread_id is None:
        body = {
            "assistant_id": assistant_id,
            "thread": {"messages": [{"role": "user", "content": "Benchmark question"}]},
            "metadata": meta,
        }
        return sandbox_post(sandbox, "/threads/runs", body)
    return sandbox_post(
        sandbox, f"/threads/{thread_id}/runs", {"assistant_id": assistant_id, "metadata": meta}
    )


async def amake_run(api: httpx.AsyncClient, assistant_id: str, **metadata) -> dict:
    """`make_run` without blocking the event loop (sockets are timed by it), on a new thread."""
    body = {
        "assistant_id": assistant_id,
        "thread": {"messages": [{"role": "user", "content": "Benchmark question"}]},
        "metadata": {k: str(v) for k, v in metadata.items()},
    }
    response = await api.post("/threads/runs", json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def await_run(api: httpx.AsyncClient, run: dict, statuses=("completed",), wait: float = 180) -> dict:
    deadline = time.monotonic() + wait
    while True:
        body = (await api.get(f"/threads/{run['thread_id']}/runs/{run['id']}")).json()
        if body["status"] in statuses:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"{run['id']} is {body['status']} after {wait} s")
        await asyncio.sleep(0.25)


async def until(predicate, wait: float, interval: float = 0.1) -> bool:
    """Poll `predicate()` until it is true (True) or `wait` seconds passed (False)."""
    deadline = time.monotonic() + wait
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)


def wait_run(sandbox, thread_id: str, run_id: str, statuses=("completed",), timeout: float = 120) -> dict:
    return sandbox.wait_run(thread_id, run_id, *statuses, timeout=timeout)


_TRANSITIONS = """
import json
from sandbox import engine, scripts
from sandbox.models import Run
out = {}
for run in Run.objects.filter(public_id__in=json.loads(IDS)):
    # Phase 0 only: the benchmarks' runs never take tool outputs.
    plan = scripts.plan(run.script, engine.context(run), 0)
    status, changes = "queued", []
    for action in plan:
        new = {"start": "in_progress", "complete": "completed", "fail": "failed",
               "incomplete": "incomplete", "require_action": "requires_action"}.get(action.op)
        if new and new != status:
            changes.append([new, run.phase_started + action.at / run.speed])
            status = new
    out[run.public_id] = {"phase_started": run.phase_started, "speed": run.speed, "changes": changes}
print(json.dumps(out))
"""


def status_changes(sandbox, run_ids: list[str]) -> dict:
    """When the sandbox made each run change status: its creation time plus the script's offsets.

    The sandbox applies a transition lazily, but stamps it with (and makes it visible from) the moment it
    was due: `phase_started + action.at / speed`. Those times are read from the sandbox's own database
    with its own plan code, in one `manage.py shell` (works for SQLite and PostgreSQL).
    """
    code = f"IDS = {json.dumps(json.dumps(run_ids))}\n" + _TRANSITIONS
    output = sandbox.manage("shell", "-v", "0", "-c", code).stdout
    return json.loads(output.strip().splitlines()[-1])


@dataclass
class RequestLog:
    """The sandbox's request log (SANDBOX_REQUEST_LOG): one JSON line per request."""

    path: Path

    def entries(
        self, since: float = 0.0, until: float = math.inf, agent_pid: int | None = None
    ) -> list[dict]:
        out = []
        if not self.path.exists():
            return out
        for line in self.path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if not since <= entry["t"] < until:
                continue
            if agent_pid is not None and f"(pid {agent_pid})" not in entry.get("agent", ""):
                continue
            out.append(entry)
        return out

    def count(
        self, thread_id: str, since: float, until: float, agent_pids=None, method: str | None = None
    ) -> int:
        n = 0
        for entry in self.entries(since, until):
            if f"/threads/{thread_id}" not in entry["path"]:
                continue
            if method and entry["method"] != method:
                continue
            if agent_pids is not None and not any(f"(pid {p})" in entry.get("agent", "") for p in agent_pids):
                continue
            n += 1
        return n


# --- the dashboard, served by daphne --------------------------------------------------------------


@dataclass
class Dashboard(Daphne):
    """One daphne process serving the dashboard (or tests.benchmarks.bench_asgi around it)."""

    cookies: dict = field(default_factory=dict)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def ws_headers(self) -> dict:
        return {"Origin": self.url, "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    def client(self, **kwargs) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, cookies=self.cookies, timeout=60, **kwargs)


@dataclass
class DashboardSite:
    """A dashboard deployment: its database, its environment and one or more daphne processes."""

    env: dict
    directory: Path
    processes: list[Dashboard] = field(default_factory=list)

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        return manage(self.env, *args)

    def start(self, app: str = "dashboard.asgi:application") -> Dashboard:
        port = free_port()
        dashboard = Dashboard.start(app, self.env, self.directory / f"daphne-{port}.log", port)
        dashboard.wait_until_up("/accounts/login/")
        dashboard.cookies = login(dashboard.url)
        self.processes.append(dashboard)
        return dashboard

    def stop(self) -> None:
        for dashboard in self.processes:
            dashboard.process.terminate()
        for dashboard in self.processes:
            dashboard.stop()
        self.processes = []


def login(url: str) -> dict:
    """Sign in through the login form, as a browser does; returns the session and CSRF cookies."""
    with httpx.Client(base_url=url, timeout=30) as client:
        page = client.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        answer = client.post(
            "/accounts/login/",
            data={"username": USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": token},
            headers={"Referer": url + "/accounts/login/"},
        )
        assert answer.status_code == 302, f"login failed: {answer.status_code} {answer.text[:500]}"
        return {name: value for name, value in client.cookies.items()}


@contextmanager
def dashboard_site(sandbox, *, redis_url: str = "", extra_env: dict | None = None) -> Iterator[DashboardSite]:
    """A migrated temporary SQLite database with a superuser, configured for the sandbox; processes are
    started with `site.start()` and all stopped at the end."""
    directory = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "dashboard.settings",
            "DATABASE_URL": f"sqlite:///{directory / 'db.sqlite3'}",
            "SECRET_KEY": "benchmark-secret-key-not-for-production-0123456789abcdef",
            "ASSISTANTS_API_BASE_URL": sandbox.base_url,
            "ASSISTANTS_API_KEY": sandbox.api_key,
            "ASSISTANTS_API_PROFILE": "sandbox",
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
        env["REDIS_PREFIX"] = f"bench{secrets.token_hex(4)}"
    site = DashboardSite(env, directory)
    site.manage("migrate", "--noinput", "-v0")
    site.manage(
        "shell",
        "-v",
        "0",
        "-c",
        "from django.contrib.auth.models import User; "
        f"User.objects.create_superuser({USERNAME!r}, 'bench@example.com', {PASSWORD!r})",
    )
    try:
        yield site
    finally:
        site.stop()
        kept = Path(tempfile.gettempdir()) / "bench-daphne-logs"
        for log in directory.glob("daphne-*.log"):
            if "Traceback" in log.read_text(errors="replace"):
                kept.mkdir(exist_ok=True)
                shutil.copy(log, kept / log.name)
                print(f"daphne logged a traceback: {kept / log.name}")
        shutil.rmtree(directory, ignore_errors=True)


# --- sockets ---------------------------------------------------------------------------------------


_SENT = re.compile(r'data-sent="([^"]+)"')


@dataclass
class Received:
    """What one socket got: (time, fingerprint, size) per message, and the text when `keep_text`."""

    keep_text: bool = False
    times: list[float] = field(default_factory=list)
    fps: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    #: For bare broadcasts (bench_asgi): the time each message was sent, carried in its HTML.
    sent: list[float] = field(default_factory=list)

    def __call__(self, t: float, text: str) -> None:
        self.times.append(t)
        self.fps.append(wsclient.fingerprint(text))
        if self.keep_text:
            self.texts.append(text)
        if text.startswith('<div id="bench-'):
            self.sent.append(float(_SENT.search(text, 0, 120).group(1)))


async def open_sockets(
    url: str,
    count: int,
    headers: dict,
    *,
    keep_text: bool = False,
    parallel: int = 40,
    on_progress: Callable[[int], None] | None = None,
) -> list[tuple[wsclient.WebSocket, Received]]:
    """Open `count` sockets to one URL, `parallel` handshakes at a time (daphne's accept backlog is small)."""
    gate = asyncio.Semaphore(parallel)
    out: list = [None] * count
    done = 0

    async def one(i):
        nonlocal done
        received = Received(keep_text)
        async with gate:
            for attempt in range(3):
                try:
                    ws = await wsclient.connect(url, received, headers=headers, wait=60)
                    break
                except (OSError, TimeoutError):
                    if attempt == 2:
                        raise
                    await asyncio.sleep(0.5)
        out[i] = (ws, received)
        done += 1
        if on_progress and done % 500 == 0:
            on_progress(done)

    await asyncio.gather(*(one(i) for i in range(count)))
    return out


async def close_sockets(sockets) -> None:
    async def one(ws):
        with contextlib.suppress(Exception):
            await ws.close(wait=5)

    for start in range(0, len(sockets), 500):
        await asyncio.gather(*(one(ws) for ws, _ in sockets[start : start + 500]))


def read_bench_log(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


STATUS_IN_HEADER = r'id="run-status-{run_id}">\s*<span class="badge[^"]*" title="([^"]+)"'


def status_in(text: str, run_id: str) -> str | None:
    """The run status a pushed fragment shows for this run (its header or its timeline row), if any."""
    match = re.search(STATUS_IN_HEADER.format(run_id=re.escape(run_id)), text)
    return match.group(1) if match else None


# --- a sandbox of several processes on one port --------------------------------------------------------


@contextmanager
def sandbox_on_one_port(
    processes: int = 2, *, speed: float = 1, latency_ms: int = LATENCY_MS, env: dict | None = None
) -> Iterator:
    """The sandbox served by `processes` daphne processes sharing one listening socket (the kernel spreads
    connections between them) and one PostgreSQL database: one process serves ~90 requests/s on this
    machine, less than a fleet of 500 active runs asks for (and SQLite would make them queue for its one
    writer)."""
    server_url = "postgres://postgres@127.0.0.1:5432/test"
    with (
        temporary_database("bench_sandbox", server_url) as database_url,
        _sandbox_processes(processes, database_url, speed, latency_ms, env) as server,
    ):
        yield server


@contextmanager
def _sandbox_processes(processes, database_url, speed, latency_ms, env) -> Iterator:
    import socket

    from tests.processes import DAPHNE, STARTUP_TIMEOUT
    from tests.sandbox_server import SandboxServer

    directory = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    server_env = {
        **{k: v for k, v in os.environ.items() if k not in _SCRUB},
        "DJANGO_SETTINGS_MODULE": "sandbox.standalone_settings",
        "DATABASE_URL": database_url,
        "SECRET_KEY": secrets.token_urlsafe(32),
        "SANDBOX_API_KEY": f"sk-sandbox-bench-{secrets.token_hex(12)}",
        "SANDBOX_SPEED": str(speed),
        "SANDBOX_LATENCY_MS": str(latency_ms),
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    manage(server_env, "migrate", "--noinput", "-v0")
    listener = socket.create_server(("127.0.0.1", 0), backlog=512)
    port = listener.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}/v1"
    server_env["SANDBOX_BASE_URL"] = base_url
    started = []
    try:
        for n in range(processes):
            with open(directory / f"sandbox-{n}.log", "w") as log:
                started.append(
                    subprocess.Popen(
                        [str(DAPHNE), "--fd", str(listener.fileno()), "sandbox.asgi:application"],
                        cwd=BASE_DIR,
                        env=server_env,
                        pass_fds=[listener.fileno()],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            with contextlib.suppress(httpx.TransportError):
                httpx.get(base_url + "/", timeout=1)
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the sandbox did not start")
            time.sleep(0.1)
        yield SandboxServer(
            base_url=base_url,
            api_key=server_env["SANDBOX_API_KEY"],
            env=server_env,
            log_path=directory / "sandbox-0.log",
        )
    finally:
        for process in started:
            process.terminate()
        for process in started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        listener.close()
        shutil.rmtree(directory, ignore_errors=True)
