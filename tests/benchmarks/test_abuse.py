"""Issue 9: the dashboard under an upstream that abuses size, time and count, with the default limits; and the
export of a 50,000-step run.

    .venv/bin/pytest tests/benchmarks/test_abuse.py -m benchmark -s

Each abuse gets a fresh daphne process (so its peak RSS, VmHWM, is that abuse's alone), which loads every
page, partial and export of the abused thread at once, as a viewer's tabs would. The upstream is the tests'
own (tests/abusive_upstream.py), in a thread of the benchmark's process. With BENCH_BEFORE_TREE=<a checkout
of an earlier commit>, the export benchmark also serves the dashboard from that tree, for a before/after.
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.abusive_upstream import AbusiveUpstream
from tests.benchmarks.harness import (
    Dashboard,
    dashboard_site,
    login,
    make_assistant,
    make_run,
    record,
    rss_mb,
)
from tests.processes import DAPHNE, free_port
from tests.sandbox_server import running_sandbox

MiB = 1024 * 1024
HX = {"HX-Request": "true"}


@dataclass
class Upstream:
    base_url: str
    api_key: str = "sk-abuse-bench-0123456789"


def peak_rss_mb(pid: int) -> float:
    match = re.search(r"VmHWM:\s*(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024


def urls(thread: str) -> dict[str, tuple[str, dict]]:
    run = f"/threads/{thread}/runs/run_0000000"
    return {
        "thread page": (f"/threads/{thread}/", {}),
        "timeline partial": (f"/threads/{thread}/?part=timeline", HX),
        "run page": (f"{run}/", {}),
        "run header partial": (f"{run}/?part=header", HX),
        "steps partial": (f"{run}/?part=steps", HX),
        "step page": (f"{run}/steps/step_0000001/", {}),
        "thread export": (f"/threads/{thread}/export.json", {}),
        "run export": (f"{run}/export.json", {}),
    }


def _client(dashboard: Dashboard, timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=dashboard.url, cookies=dashboard.cookies, timeout=timeout)


_SETTING = re.compile(rb'<span class="mono">(UPSTREAM_\w+)</span>|"setting": "(UPSTREAM_\w+)"')


async def _load(client: httpx.AsyncClient, url: str, headers: dict) -> dict:
    """One GET read to its end: status, seconds, bytes, and the limit it names (a page's banner, or an
    export's "stopped")."""
    started = time.monotonic()
    size, head, tail = 0, b"", b""
    async with client.stream("GET", url, headers=headers) as response:
        async for chunk in response.aiter_raw():
            size += len(chunk)
            if len(head) < 65536:
                head += chunk[: 65536 - len(head)]
            tail = (tail + chunk)[-1000:]
    took = time.monotonic() - started
    said = _SETTING.search(head) or _SETTING.search(tail)
    return {
        "status": response.status_code,
        "seconds": round(took, 3),
        "bytes": size,
        "limit": next((g.decode() for g in said.groups() if g), "") if said else "",
        "complete": (b'"complete": true' in tail)
        if url.endswith(".json") and response.status_code == 200
        else None,
    }


ABUSES = {
    "trickle: one byte every 2 s": ("thread_trickle", {"trickle_seconds": 2.0}),
    "300 MB answer, chunked": ("thread_huge", {"huge_bytes": 300 * MiB}),
    "300 MB answer, Content-Length declared": ("thread_declared", {"huge_bytes": 300 * MiB}),
    "16 MB answers, just under the cap (read and shown)": ("thread_huge", {"huge_bytes": 16 * MiB - 65536}),
    "JSON nested 9,000 deep (readable)": ("thread_deep", {"depth": 9_000}),
    "JSON nested 20,000 deep (not readable)": ("thread_deep", {"depth": 20_000}),
    "endless lists (fresh ids, has_more always)": ("thread_endless", {}),
    "a run of 20,000 steps": ("thread_many", {"many": 20_000}),
}


@pytest.mark.benchmark
@pytest.mark.timeout(3600)
async def test_pages_under_each_abuse():
    figures = {"limits": "defaults (dashboard/settings.py)", "abuses": {}}
    with AbusiveUpstream() as abusive, dashboard_site(Upstream(abusive.base_url), extra_env={
        "ASSISTANTS_API_PROFILE": "openai", "LOG_LEVEL": "WARNING"
    }) as site:  # fmt: skip
        idle = None
        for name, (thread, knobs) in ABUSES.items():
            for knob, value in knobs.items():
                setattr(abusive, knob, value)
            dashboard = site.start()
            idle = idle or rss_mb(dashboard.pid)
            async with _client(dashboard, 900) as client:
                cases = urls(thread)
                results = await asyncio.gather(*(_load(client, url, h) for url, h in cases.values()))
                normal = await _load(client, "/threads/thread_ok/runs/run_0000000/", {})
            loads = dict(zip(cases, results, strict=True))
            slowest = max(loads, key=lambda k: loads[k]["seconds"])
            figures["abuses"][name] = {
                "thread": thread,
                "peak_rss_mb": round(peak_rss_mb(dashboard.pid), 1),
                "slowest": {"what": slowest, **loads[slowest]},
                "slowest_page_or_partial": max(
                    (v["seconds"], k) for k, v in loads.items() if not k.endswith("export")
                ),
                "loads": loads,
                "server_errors": sum(v["status"] == 500 for v in loads.values()),
                "normal_page_afterwards": normal["status"],
                "upstream_bytes_sent": abusive.sent[thread],
            }
            print(f"{name}: peak RSS {figures['abuses'][name]['peak_rss_mb']} MB, slowest {slowest} "
                  f"{loads[slowest]['seconds']} s")  # fmt: skip
            site.stop()
            abusive.sent.clear()
        figures["idle_rss_mb"] = round(idle, 1)
        figures["stream"] = await _endless_stream(site, abusive)
    record("issue9_abuse", figures)
    for name, f in figures["abuses"].items():
        assert f["server_errors"] == 0, name
        assert f["normal_page_afterwards"] == 200, name


STREAM_LIMITS = ("UPSTREAM_STREAM_MAX_EVENTS", "UPSTREAM_STREAM_MAX_BYTES", "UPSTREAM_STREAM_MAX_SECONDS")


async def _endless_stream(site, abusive) -> dict:
    """A run started from the dashboard on an upstream whose stream never ends: how long until a cap closes
    it, and the peak memory meanwhile."""
    abusive.delta_bytes = 64
    dashboard = site.start()
    started = time.monotonic()
    async with _client(dashboard, 120) as client:
        form = await client.get("/threads/thread_stream/runs/new/")
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.text))
        fields = {k: html.unescape(v) for k, v in fields.items()}
        answer = await client.post(
            "/threads/thread_stream/runs/new/",
            data={**fields, "assistant_id": "asst_abuse01"},
            headers={"Referer": dashboard.url + "/threads/thread_stream/runs/new/"},
        )
    closed_after = None
    while time.monotonic() - started < 1000:
        log = dashboard.log()
        if "a stream limit was reached" in log or ("stream of" in log and "broke" in log):
            closed_after = time.monotonic() - started
            break
        await asyncio.sleep(0.5)
    figures = {
        "start_answer": answer.status_code,
        "closed_after_seconds": round(closed_after, 1) if closed_after else None,
        "which_limit": next((s for s in STREAM_LIMITS if s in dashboard.log()), ""),
        "peak_rss_mb": round(peak_rss_mb(dashboard.pid), 1),
        "bytes_the_upstream_sent": abusive.sent["thread_stream"],
    }
    site.stop()
    print(f"endless stream: {figures}")
    return figures


# --- the export of a 50,000-step run ---------------------------------------------------------------------

STEPS = 50_000


def _start_from(tree: Path, env: dict, log_path: Path) -> Dashboard:
    """A daphne process serving the dashboard from another checkout (same database, same settings)."""
    port = free_port()
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [str(DAPHNE), "-b", "127.0.0.1", "-p", str(port), "dashboard.asgi:application"],
            cwd=tree,
            env={**env, "PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    dashboard = Dashboard(process, port, log_path)
    dashboard.wait_until_up("/accounts/login/")
    dashboard.cookies = login(dashboard.url)
    return dashboard


async def _export(dashboard: Dashboard, path: str) -> dict:
    started = time.monotonic()
    async with _client(dashboard, 1800) as client:
        result = await _load(client, path, {})
    return {
        "seconds": round(time.monotonic() - started, 1),
        "bytes": result["bytes"],
        "status": result["status"],
        "peak_rss_mb": round(peak_rss_mb(dashboard.pid), 1),
    }


@pytest.mark.benchmark
@pytest.mark.timeout(7200)
async def test_export_of_a_50000_step_run(fd_limit):
    with running_sandbox(speed=1, latency_ms=0, env={"LOG_LEVEL": "WARNING"}) as sandbox:
        made = time.monotonic()
        run = make_run(
            sandbox,
            make_assistant(sandbox, "long"),
            sandbox_steps=STEPS,
            sandbox_speed=1000,
            sandbox_expires_seconds=10**6,  # 50,000 steps take 1,000 s of the script's time
        )
        # The sandbox makes the steps when the run is read: the first read takes minutes.
        while True:
            path = f"/threads/{run['thread_id']}/runs/{run['id']}"
            if sandbox.request("GET", path, timeout=3600).json()["status"] == "completed":
                break
            await asyncio.sleep(1)
        made = time.monotonic() - made
        path = f"/threads/{run['thread_id']}/runs/{run['id']}/export.json"
        figures = {"steps": STEPS, "sandbox_seconds_to_make_the_run": round(made, 1)}
        with dashboard_site(sandbox, extra_env={"LOG_LEVEL": "WARNING"}) as site:
            dashboard = site.start()
            figures["idle_rss_mb"] = round(rss_mb(dashboard.pid), 1)
            figures["after"] = await _export(dashboard, path)
            site.stop()
            before = os.environ.get("BENCH_BEFORE_TREE")
            if before:
                dashboard = _start_from(Path(before), site.env, site.directory / "before.log")
                try:
                    figures["before"] = {"tree": before, **await _export(dashboard, path)}
                finally:
                    dashboard.stop()
    record("issue9_export_50000_steps", figures)
    assert figures["after"]["status"] == 200
