"""Issue 8: live updates you can trust — leaving requires_action, recovery after Redis returns, and a fleet
of 500 active runs under a cluster-wide budget.

    .venv/bin/pytest tests/benchmarks/test_live_trust.py -m benchmark -s

Same method as test_live.py (harness.py): real processes, the sandbox with 50 ms added latency, sockets
of the benchmark's own (wsclient), times from one machine's clock.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import random
import re
import time
from dataclasses import dataclass, field

import pytest

from tests.benchmarks.harness import (
    LATENCY_MS,
    amake_run,
    await_run,
    close_sockets,
    cpu_seconds,
    dashboard_site,
    fmt,
    make_assistant,
    open_sockets,
    record,
    status_changes,
    status_in,
    summary,
    until,
)
from tests.live.cluster import own_redis

TARGET_P95 = 0.75


def _run_socket_path(run: dict) -> str:
    return f"/ws/runs/default/{run['thread_id']}/{run['id']}/"


def _run_page(run: dict) -> str:
    return f"/threads/{run['thread_id']}/runs/{run['id']}/"


def _shows(received, run_id: str, *statuses: str, after: float = 0.0) -> float | None:
    """When a socket first showed the run in one of `statuses` (its header or row), after `after`."""
    for t, text in zip(received.times, received.texts, strict=True):
        if t > after and status_in(text, run_id) in statuses:
            return t
    return None


def _moved_on(received, run_id: str) -> float | None:
    """When a socket first showed the run past requires_action, after it had shown it waiting."""
    waited = _shows(received, run_id, "requires_action")
    return waited and _shows(received, run_id, "queued", "in_progress", "completed", after=waited)


_PHASE_STARTED = """
import json
from sandbox.models import Run
print(json.dumps({r.public_id: r.phase_started for r in Run.objects.filter(public_id__in=json.loads(IDS))}))
"""


def _phase_started(sandbox, run_ids: list[str]) -> dict[str, float]:
    """When each run's current phase began in the sandbox: for a run given its tool outputs, the moment
    they were submitted (the status left requires_action then)."""
    code = f"IDS = {json.dumps(json.dumps(run_ids))}\n" + _PHASE_STARTED
    output = sandbox.manage("shell", "-v", "0", "-c", code).stdout
    return json.loads(output.strip().splitlines()[-1])


# --- leaving requires_action ---------------------------------------------------------------------


@pytest.mark.benchmark
@pytest.mark.timeout(900)
async def test_leaving_requires_action_latency(bench_sandbox):
    """`functions` runs, each with its run page loaded and one socket open, wait for tool outputs; the
    agent's own application submits them (straight to the upstream, not through the dashboard) at a
    random moment; how long until the page shows the run moving on. 5 at a time, 6 batches."""
    sandbox = bench_sandbox
    assistant = make_assistant(sandbox, "functions")
    latencies, runs, sockets_of = [], [], {}
    with dashboard_site(sandbox) as site:
        dashboard = site.start()
        async with dashboard.client() as http, sandbox.async_client() as api:
            for _ in range(6):
                batch = [await amake_run(api, assistant, sandbox_queued_seconds="0.5") for _ in range(5)]
                for run in batch:
                    assert (await http.get(_run_page(run))).status_code == 200
                    ((ws, received),) = await open_sockets(
                        dashboard.ws_url + _run_socket_path(run), 1, dashboard.ws_headers(), keep_text=True
                    )
                    sockets_of[run["id"]] = (ws, received)

                def waiting(batch=batch):
                    return all(_shows(sockets_of[r["id"]][1], r["id"], "requires_action") for r in batch)

                assert await until(waiting, 30)

                async def submit(run):
                    await asyncio.sleep(random.uniform(0.5, 3.0))  # a while after the page showed it
                    body = (await api.get(f"/threads/{run['thread_id']}/runs/{run['id']}")).json()
                    calls = body["required_action"]["submit_tool_outputs"]["tool_calls"]
                    outputs = [{"tool_call_id": c["id"], "output": '{"ok": true}'} for c in calls]
                    path = f"/threads/{run['thread_id']}/runs/{run['id']}/submit_tool_outputs"
                    assert (await api.post(path, json={"tool_outputs": outputs})).status_code == 200

                await asyncio.gather(*(submit(r) for r in batch))

                def moved_on(batch=batch):
                    return all(_moved_on(sockets_of[r["id"]][1], r["id"]) for r in batch)

                assert await until(moved_on, 15)
                await close_sockets([sockets_of[r["id"]] for r in batch])
                runs += batch
    submitted = _phase_started(sandbox, [r["id"] for r in runs])
    for run in runs:
        latencies.append(_moved_on(sockets_of[run["id"]][1], run["id"]) - submitted[run["id"]])
    figures = {
        "latency_ms": LATENCY_MS,
        "runs": len(runs),
        "outputs_submitted_to_socket": summary(latencies),
        "target_p95": TARGET_P95,
        "pass": summary(latencies)["p95"] <= TARGET_P95,
    }
    print(f"leaving requires_action: {fmt(figures['outputs_submitted_to_socket'])}")
    record("issue8_leaving_requires_action", figures)


# --- recovery after Redis returns ----------------------------------------------------------------


@pytest.mark.benchmark
@pytest.mark.timeout(900)
async def test_recovery_after_redis_returns(bench_sandbox):
    """Two dashboard processes on a Redis of the benchmark's own; 8 runs, each on 12 sockets (6 per
    process). Redis is stopped while the runs are queued, the runs start meanwhile, Redis comes back
    empty (it keeps nothing on disk): the time from its return to each socket showing the upstream's
    state. Three rounds."""
    sandbox = bench_sandbox
    assistant = make_assistant(sandbox, "answer")
    recoveries, lost_sockets = [], 0
    with own_redis() as redis_server:
        extra = {"WATCH_LEASE_SECONDS": "2", "LIVE_PROBE_SECONDS": "1"}
        with dashboard_site(sandbox, redis_url=redis_server.url, extra_env=extra) as site:
            processes = [site.start(), site.start()]
            async with sandbox.async_client() as api:
                for _ in range(3):
                    runs = [
                        await amake_run(api, assistant, sandbox_queued_seconds=f"{5 + random.random():.3f}")
                        for _ in range(8)
                    ]
                    sockets = []
                    for run in runs:
                        for dashboard in processes:
                            async with dashboard.client() as http:
                                assert (await http.get(_run_page(run))).status_code == 200
                            opened = await open_sockets(
                                dashboard.ws_url + _run_socket_path(run),
                                6,
                                dashboard.ws_headers(),
                                keep_text=True,
                            )
                            sockets += [(run, ws, received) for ws, received in opened]

                    def all_queued(sockets=sockets):
                        return all(_shows(received, run["id"], "queued") for run, _, received in sockets)

                    assert await until(all_queued, 20)
                    redis_server.stop()
                    for run in runs:  # the runs start while Redis is away
                        await await_run(api, run, statuses=("in_progress", "completed"), wait=30)
                    await asyncio.sleep(1.0)
                    redis_server.start()
                    back = time.time()

                    def caught_up(sockets=sockets, back=back):
                        return all(
                            any(
                                t >= back and status_in(text, run["id"]) in ("in_progress", "completed")
                                for t, text in zip(received.times, received.texts, strict=True)
                            )
                            for run, _, received in sockets
                        )

                    await until(caught_up, 30)
                    for run, _ws, received in sockets:
                        seen = [
                            t
                            for t, text in zip(received.times, received.texts, strict=True)
                            if t >= back and status_in(text, run["id"]) in ("in_progress", "completed")
                        ]
                        if seen:
                            recoveries.append(seen[0] - back)
                        else:
                            lost_sockets += 1
                    await close_sockets([(ws, received) for _, ws, received in sockets])
                    await asyncio.sleep(4)  # the runs end; nothing is watched before the next round
    figures = {
        "sockets_per_round": 96,
        "rounds": 3,
        "redis_back_to_socket_showing_upstream_state": summary(recoveries),
        "sockets_that_never_caught_up": lost_sockets,
    }
    print(f"recovery: {fmt(figures['redis_back_to_socket_showing_upstream_state'])}, lost {lost_sockets}")
    record("issue8_recovery_after_redis", figures)


# --- a fleet ---------------------------------------------------------------------------------------


def _windows(times: list[float], width: float = 1.0) -> int:
    """The most requests in any window of `width` seconds."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= width:
            start += 1
        best = max(best, end - start + 1)
    return best


def _intervals(entries: list[dict], run_ids: set[str]) -> dict[str, list[float]]:
    """Per run, the gaps between its polls (GET of the run itself)."""
    by_run = collections.defaultdict(list)
    for e in entries:
        if e["method"] != "GET" or "/runs/" not in e["path"]:
            continue
        run_id = e["path"].rsplit("/", 1)[-1]
        if run_id in run_ids:
            by_run[run_id].append(e["t"])
    return {r: [b - a for a, b in itertools.pairwise(ts)] for r, ts in by_run.items()}


_CELL = re.compile(r'<td id="thread-status-default-(thread_[A-Za-z0-9_-]+)"[^>]*>.*?title="([a-z_]+)"', re.S)


@dataclass
class Phase:
    """One measured window of the fleet: what was asked, what the sockets saw."""

    budget: float
    started: float = 0.0
    ended: float = 0.0
    page_latencies: list[float] = field(default_factory=list)
    row_latencies: list[float] = field(default_factory=list)
    inbox_latencies: list[float] = field(default_factory=list)


async def _fleet_phase(sandbox, request_log, budget: float, tmp_path) -> tuple[dict, Phase]:
    """500 active runs, two dashboard processes on Redis, 50 sockets: 10 on run pages (runs made while
    measuring, so their changes fall in the window), 10 on thread pages, 15 on the home list, 15 on the
    inbox. The background runs are `functions` runs entering requires_action at random moments."""
    phase = Phase(budget)
    background = make_assistant(sandbox, "functions")
    foreground = make_assistant(sandbox, "answer")
    extra = {
        "UPSTREAM_MAX_RPS": str(budget),
        "LIVE_INDEX_WATCH_LIMIT": "50",
        "LIVE_INBOX_WATCH_LIMIT": "1000",
        "LOG_LEVEL": "WARNING",
    }
    with dashboard_site(sandbox, redis_url="redis://127.0.0.1:6379/0", extra_env=extra) as site:
        processes = [site.start(), site.start()]
        async with sandbox.async_client() as api:
            # 490 background runs, entering requires_action between 40 s and 100 s from now.
            gate = asyncio.Semaphore(20)

            async def one():
                async with gate:
                    return await amake_run(
                        api, background, sandbox_queued_seconds=f"{40 + 60 * random.random():.2f}"
                    )

            made = time.time()
            runs = await asyncio.gather(*(one() for _ in range(490)))
            # The dashboard learns of them as when someone opens each thread's timeline (it indexes the
            # runs it shows; the inbox and the home list follow what the index knows).
            async with processes[0].client() as http:

                async def index_thread(run):
                    async with gate:
                        url = f"/threads/{run['thread_id']}/?part=timeline"
                        answer = await http.get(url, headers={"HX-Request": "true"})
                        assert answer.status_code == 200

                await asyncio.gather(*(index_thread(r) for r in runs))
            sockets = {"home": [], "inbox": [], "thread": [], "page": []}
            for n in range(15):
                dashboard = processes[n % 2]
                sockets["home"] += await open_sockets(
                    dashboard.ws_url + "/ws/index/", 1, dashboard.ws_headers(), keep_text=True
                )
                sockets["inbox"] += [
                    (ws, received, dashboard)
                    for ws, received in await open_sockets(
                        dashboard.ws_url + "/ws/inbox/", 1, dashboard.ws_headers(), keep_text=True
                    )
                ]
            for n, run in enumerate(runs[:10]):
                dashboard = processes[n % 2]
                sockets["thread"] += await open_sockets(
                    dashboard.ws_url + f"/ws/threads/default/{run['thread_id']}/",
                    1,
                    dashboard.ws_headers(),
                    keep_text=True,
                )
            # The inbox as a browser reads it: its rows again after each refresh it is sent.
            shown_at: dict[str, float] = {}

            async def read_inbox(dashboard):
                async with dashboard.client() as http:
                    body = (await http.get("/inbox/?part=rows", headers={"HX-Request": "true"})).text
                t = time.time()
                for run_id in re.findall(r"/runs/(run_[A-Za-z0-9_-]+)/", body):
                    shown_at.setdefault(run_id, t)

            readers = set()

            async def follow_inbox(ws_received, dashboard):
                seen = 0
                while True:
                    await asyncio.sleep(0.05)
                    texts = ws_received.texts
                    if len(texts) > seen:
                        seen = len(texts)
                        if any('id="inbox-refresh"' in t for t in texts[seen - 1 :]):
                            await read_inbox(dashboard)

            for _ws, received, dashboard in sockets["inbox"][:3]:
                readers.add(asyncio.ensure_future(follow_inbox(received, dashboard)))
            # The measured window: run pages of fresh `answer` runs, ten at a time.
            phase.started = time.time()
            cpu_before = [cpu_seconds(d.pid) for d in processes]
            page_runs = []
            while time.time() < made + 100:
                batch = [
                    await amake_run(api, foreground, sandbox_queued_seconds=f"{2.5 + random.random():.3f}")
                    for _ in range(10)
                ]
                opened = []
                for n, run in enumerate(batch):
                    dashboard = processes[n % 2]
                    async with dashboard.client() as http:
                        assert (await http.get(_run_page(run))).status_code == 200
                    opened += [
                        (run, ws, received)
                        for ws, received in await open_sockets(
                            dashboard.ws_url + _run_socket_path(run),
                            1,
                            dashboard.ws_headers(),
                            keep_text=True,
                        )
                    ]
                await until(
                    lambda opened=opened: all(
                        _shows(received, run["id"], "completed") for run, _, received in opened
                    ),
                    30,
                )
                await close_sockets([(ws, received) for _, ws, received in opened])
                page_runs += opened
            phase.ended = time.time()
            cpu_used = [cpu_seconds(d.pid) - b for d, b in zip(processes, cpu_before, strict=True)]
            for task in readers:
                task.cancel()
            await close_sockets([s for s in sockets["home"] + sockets["thread"]])
            await close_sockets([(ws, received) for ws, received, _ in sockets["inbox"]])
        pids = [d.pid for d in processes]
    changes = status_changes(sandbox, [r["id"] for r in runs] + [r["id"] for r, _, _ in page_runs])
    for run, _, received in page_runs:
        for status, due in changes[run["id"]]["changes"]:
            seen = _shows(received, run["id"], status)
            if seen is not None:
                phase.page_latencies.append(seen - due)
    thread_of = {r["id"]: r["thread_id"] for r in runs}
    cells: dict[tuple[str, str], float] = {}
    for _, received in sockets["home"]:
        for t, text in zip(received.times, received.texts, strict=True):
            for thread_id, status in _CELL.findall(text):
                cells.setdefault((thread_id, status), t)
    for run in runs:
        for status, due in changes[run["id"]]["changes"]:
            if not phase.started <= due <= phase.ended:
                continue
            seen = cells.get((thread_of[run["id"]], status))
            if seen is not None and seen >= due - 0.1:
                phase.row_latencies.append(seen - due)
            if status == "requires_action" and run["id"] in shown_at:
                phase.inbox_latencies.append(shown_at[run["id"]] - due)
    entries = [
        e
        for e in request_log.entries(phase.started, phase.ended)
        if any(f"(pid {pid})" in e.get("agent", "") for pid in pids)
    ]
    busiest = _windows([e["t"] for e in entries])
    busiest_5s = _windows([e["t"] for e in entries], 5.0)
    span = phase.ended - phase.started
    gaps = _intervals(entries, {r["id"] for r in runs})
    mean_gap = {r: sum(g) / len(g) for r, g in gaps.items() if g}
    figures = {
        "budget_requests_per_second": budget,
        "active_runs": 500,
        "sockets": {k: len(v) for k, v in sockets.items()} | {"run_pages_at_once": 10},
        "window_seconds": round(span, 1),
        "upstream_requests_per_second": round(len(entries) / span, 1),
        "most_requests_in_any_1s_window": busiest,
        "most_requests_in_any_5s_window": busiest_5s,
        # As the upstream counts them: arrival times at the sandbox, which bunch up when this machine is
        # busy; over 5 s that jitter averages out. The budget lets a run page run 0.1 s ahead.
        "budget_held": busiest_5s <= budget * 5.1 + 1,
        "dashboard_cpu_seconds_per_second": [round(c / (phase.ended - phase.started), 2) for c in cpu_used],
        "run_page_status_change_to_socket": summary(phase.page_latencies),
        "home_row_status_change_to_socket": summary(phase.row_latencies),
        "inbox_run_entering_requires_action_to_row_shown": summary(phase.inbox_latencies),
        "background_run_poll_interval_mean_per_run": summary(mean_gap.values()),
        "background_runs_never_polled_in_window": 490 - len(mean_gap),
    }
    return figures, phase


@pytest.mark.benchmark
@pytest.mark.timeout(1800)
async def test_fleet_of_five_hundred_runs(tmp_path):
    """The fleet twice: with a budget high enough for every row (150/s), and with half of what the rows
    need (75/s). Run pages must keep their p95 in both; rows slow down evenly when the budget is short."""
    from tests.benchmarks.harness import RequestLog, sandbox_on_one_port

    log = tmp_path / "requests.jsonl"
    results = {}
    with sandbox_on_one_port(2, env={"SANDBOX_REQUEST_LOG": str(log)}) as sandbox:
        for budget in (150, 75):
            figures, _ = await _fleet_phase(sandbox, RequestLog(log), budget, tmp_path)
            results[f"budget_{budget}"] = figures
            print(
                f"fleet @ {budget}/s: {figures['upstream_requests_per_second']} req/s "
                f"(CPU {figures['dashboard_cpu_seconds_per_second']}) "
                f"(max {figures['most_requests_in_any_1s_window']} in 1 s); "
                f"run pages {fmt(figures['run_page_status_change_to_socket'])}; "
                f"home rows {fmt(figures['home_row_status_change_to_socket'])}; "
                f"inbox {fmt(figures['inbox_run_entering_requires_action_to_row_shown'])}; "
                f"poll interval per run {fmt(figures['background_run_poll_interval_mean_per_run'])}"
            )
    full, half = results["budget_150"], results["budget_75"]
    results["targets"] = {"run_pages_p95": TARGET_P95, "rows_p95": 5.0}
    results["pass"] = (
        full["budget_held"]
        and half["budget_held"]
        and full["run_page_status_change_to_socket"]["p95"] <= TARGET_P95
        and half["run_page_status_change_to_socket"]["p95"] <= TARGET_P95
        and full["home_row_status_change_to_socket"]["p95"] <= 5.0
        and full["inbox_run_entering_requires_action_to_row_shown"]["p95"] <= 5.0
    )
    record("issue8_fleet", results)
