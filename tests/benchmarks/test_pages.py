"""Issue 3: first byte and first screen of big pages; concurrent vs sequential upstream fetching.

    .venv/bin/pytest tests/benchmarks/test_pages.py -m benchmark -s

The sandbox runs in its own process with 50 ms added to every request; the dashboard is served by daphne
in its own process. A "first screen" is what a browser does: GET the page shell, then the htmx partial
the shell loads on `hx-trigger="load"` (the run's first page of steps with its waterfall, the thread's
first timeline page), sent with `HX-Request: true`. Static files are left out (a browser caches them).
"""

from __future__ import annotations

import asyncio
import html
import re
import time

import pytest

from runs_ui.upstream.client import MAX_PAGE, AssistantsClient, close_pool
from runs_ui.upstream.profiles import PROFILES
from runs_ui.views import pages
from tests.benchmarks.harness import (
    LATENCY_MS,
    dashboard_site,
    fmt,
    make_assistant,
    make_run,
    record,
    summary,
    wait_run,
)

REPETITIONS = 20
STEPS = 600
TARGET_FIRST_BYTE = 0.15
TARGET_FIRST_SCREEN = 1.0
TARGET_SPEEDUP = 3.0
LOADER = re.compile(r'<li class="loader" hx-get="([^"]+)" hx-trigger="load"')


async def _get(client, url: str, headers=None) -> tuple[float, float, str, int]:
    """(first byte, complete, body, status) for one GET, times relative to the call."""
    started = time.perf_counter()
    first = None
    chunks = []
    async with client.stream("GET", url, headers=headers or {}) as response:
        async for chunk in response.aiter_raw():
            if first is None:
                first = time.perf_counter() - started
            chunks.append(chunk)
        status = response.status_code
    done = time.perf_counter() - started
    return first if first is not None else done, done, b"".join(chunks).decode(), status


async def first_screen(client, path: str) -> dict:
    """The shell, then the partial it loads at once — as htmx does after the shell has arrived."""
    started = time.perf_counter()
    first_byte, shell_done, body, status = await _get(client, path)
    assert status == 200, body[:500]
    partial_url = html.unescape(LOADER.search(body).group(1))
    p_first, p_done, partial, p_status = await _get(
        client,
        path + partial_url,
        headers={"HX-Request": "true", "HX-Current-URL": str(client.base_url.join(path))},
    )
    assert p_status == 200, partial[:500]
    screen = time.perf_counter() - started
    return {
        "first_byte": first_byte,
        "shell": shell_done,
        "partial": p_done,
        "partial_first_byte": p_first,
        "first_screen": screen,
        "shell_bytes": len(body),
        "partial_bytes": len(partial),
        "partial_url": partial_url,
        "items": partial.count('class="step"') + partial.count('class="tl-item'),
    }


def _page_figures(loads: list[dict]) -> dict:
    return {
        "first_byte": summary(x["first_byte"] for x in loads),
        "shell_complete": summary(x["shell"] for x in loads),
        "partial": summary(x["partial"] for x in loads),
        "first_screen": summary(x["first_screen"] for x in loads),
        "shell_bytes": loads[-1]["shell_bytes"],
        "partial_bytes": loads[-1]["partial_bytes"],
        "partial_url": loads[-1]["partial_url"],
        "items_on_first_screen": loads[-1]["items"],
    }


def _big_thread(sandbox) -> str:
    after = None
    while True:
        params = {"limit": 100, **({"after": after} if after else {})}
        page = sandbox.request("GET", "/threads", params=params).json()
        for thread in page["data"]:
            if (thread.get("metadata") or {}).get("sandbox_demo") == "big":
                return thread["id"]
        if not page["has_more"]:
            raise AssertionError("sandbox_seed --big made no big thread")
        after = page["last_id"]


@pytest.mark.benchmark
@pytest.mark.timeout(1800)
async def test_first_screen_and_concurrency(bench_sandbox, request_log):
    sandbox = bench_sandbox
    sandbox.manage("sandbox_seed", "--big")
    big_thread = _big_thread(sandbox)
    long_run = make_run(sandbox, make_assistant(sandbox, "long"), sandbox_steps=STEPS, sandbox_speed=100)
    wait_run(sandbox, long_run["thread_id"], long_run["id"])
    run_path = f"/threads/{long_run['thread_id']}/runs/{long_run['id']}/"
    thread_path = f"/threads/{big_thread}/"
    steps = sandbox.request(
        "GET", f"/threads/{long_run['thread_id']}/runs/{long_run['id']}/steps", params={"limit": 1}
    ).json()
    assert steps["data"], "the long run has steps"

    with dashboard_site(sandbox) as site:
        dashboard = site.start()
        async with dashboard.client() as client:
            figures = {"latency_ms": LATENCY_MS, "repetitions": REPETITIONS}
            for name, path in (("run_600_steps", run_path), ("thread_1000_runs", thread_path)):
                cold = await first_screen(client, path)
                loads = []
                upstream_calls = []
                for _ in range(REPETITIONS):
                    since = time.time()
                    loads.append(await first_screen(client, path))
                    await asyncio.sleep(0.3)  # the request log is written asynchronously
                    upstream_calls.append(len(request_log.entries(since, time.time(), dashboard.pid)))
                figures[name] = {
                    "path": path,
                    "cold_first_screen": cold["first_screen"],
                    "cold_first_byte": cold["first_byte"],
                    "upstream_requests_per_screen": max(upstream_calls),
                    **_page_figures(loads),
                }
            started = time.perf_counter()
            _, export_done, body, status = await _get(client, f"/threads/{big_thread}/export.json")
            assert status == 200
            figures["thread_export_over_http"] = {
                "seconds": export_done,
                "bytes": len(body),
                "wall": time.perf_counter() - started,
            }

    figures["concurrency"] = await _concurrency(sandbox, big_thread, long_run)
    for name in ("run_600_steps", "thread_1000_runs"):
        f = figures[name]
        f["pass"] = (
            f["first_byte"]["p95"] <= TARGET_FIRST_BYTE and f["first_screen"]["p95"] <= TARGET_FIRST_SCREEN
        )
        print(f"{name}: first byte {fmt(f['first_byte'])}; first screen {fmt(f['first_screen'])}")
    figures["targets"] = {
        "first_byte_p95": TARGET_FIRST_BYTE,
        "first_screen_p95": TARGET_FIRST_SCREEN,
        "speedup": TARGET_SPEEDUP,
    }
    record("issue3_pages", figures)


async def _concurrency(sandbox, big_thread: str, long_run: dict) -> dict:
    """The same upstream requests gathered (as the views do) and awaited one after another, in-process,
    through the project's AssistantsClient against the sandbox (50 ms added latency)."""
    client = AssistantsClient(base_url=sandbox.base_url, api_key=sandbox.api_key, profile=PROFILES["sandbox"])
    thread_id, run_id = long_run["thread_id"], long_run["id"]
    try:
        await client.get_thread(big_thread)  # warm the connection pool

        # 1. The thread export: every page of runs and messages, then every run's steps.
        async def export_concurrent():
            gate = asyncio.Semaphore(pages.CONCURRENCY)

            async def all_runs():
                return [r async for r in client.iter_runs(big_thread, order="asc")]

            async def all_messages():
                return [m async for m in client.iter_messages(big_thread, order="asc")]

            async def steps_of(run):
                async with gate:
                    return [s async for s in client.iter_steps(big_thread, run.id, include_content=True)]

            _, (runs, messages) = await asyncio.gather(
                client.get_thread(big_thread), asyncio.gather(all_runs(), all_messages())
            )
            steps = await asyncio.gather(*(steps_of(r) for r in runs))
            return len(runs), len(messages), sum(len(s) for s in steps)

        async def export_sequential():
            await client.get_thread(big_thread)
            runs = [r async for r in client.iter_runs(big_thread, order="asc")]
            messages = [m async for m in client.iter_messages(big_thread, order="asc")]
            steps = 0
            for run in runs:
                steps += len([s async for s in client.iter_steps(big_thread, run.id, include_content=True)])
            return len(runs), len(messages), steps

        started = time.perf_counter()
        counted = await export_concurrent()
        concurrent = time.perf_counter() - started
        started = time.perf_counter()
        counted_seq = await export_sequential()
        sequential = time.perf_counter() - started
        assert counted == counted_seq, (counted, counted_seq)
        requests = 1 + 2 * -(-counted[0] // MAX_PAGE) + counted[0]

        # 2. One screen's independent requests: the run page's step partial (steps, run, messages).
        def screen_calls():
            return [
                client.list_steps(thread_id, run_id, limit=pages.STEPS_PAGE, order="asc"),
                client.get_run(thread_id, run_id),
                client.list_messages(thread_id, run_id=run_id, limit=MAX_PAGE, order="asc"),
            ]

        gathered, one_by_one, each = [], [], [[], [], []]
        for _ in range(REPETITIONS):
            started = time.perf_counter()
            await asyncio.gather(*screen_calls())
            gathered.append(time.perf_counter() - started)
            started = time.perf_counter()
            for n, call in enumerate(screen_calls()):
                began = time.perf_counter()
                await call
                each[n].append(time.perf_counter() - began)
            one_by_one.append(time.perf_counter() - started)
    finally:
        await close_pool()
    g, s = summary(gathered), summary(one_by_one)
    out = {
        "thread_export": {
            "runs": counted[0],
            "messages": counted[1],
            "steps": counted[2],
            "upstream_requests": requests,
            "parallelism": pages.CONCURRENCY,
            "concurrent_seconds": concurrent,
            "sequential_seconds": sequential,
            "speedup": sequential / concurrent,
            "pass": sequential / concurrent >= TARGET_SPEEDUP,
        },
        "run_steps_partial_3_requests": {
            "concurrent": g,
            "sequential": s,
            "speedup_p50": s["p50"] / g["p50"],
            # Gathered, a screen takes as long as its slowest request: the bound on its speed-up.
            "each_request_p50": dict(
                zip(
                    ("list_steps_100", "get_run", "list_messages_100"),
                    (summary(e)["p50"] for e in each),
                    strict=True,
                )
            ),
            "pass": s["p50"] / g["p50"] >= TARGET_SPEEDUP,
        },
    }
    print(
        f"export: concurrent {concurrent:.2f} s, sequential {sequential:.2f} s, "
        f"speed-up {sequential / concurrent:.1f}×; one screen: {s['p50'] / g['p50']:.2f}×"
    )
    return out
