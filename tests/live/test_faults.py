"""The live view under ordinary faults, with real processes: a polling process frozen past its lease, Redis
stopped and started again, a stream relay and a poller on the same run. Two dashboard processes (daphne)
on one database and one Redis, sockets on both."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from runs_ui.live import bus
from tests.live.cluster import dashboards, open_viewer, operator_post, own_redis, pollers, until
from tests.live.support import RequestLog, sandbox_get, status_sequence, statuses, versions
from tests.sandbox_server import running_sandbox

ORDER = ["queued", "in_progress", "completed"]


@pytest.fixture(scope="module")
def slow_sandbox(tmp_path_factory):
    """A sandbox whose every answer takes 300 ms, as a distant upstream's: a poller spends most of its
    time inside a request, so a freeze lands in the middle of a poll, the case fencing is for."""
    log = tmp_path_factory.mktemp("slow-sandbox") / "requests.jsonl"
    with running_sandbox(speed=1, latency_ms=300, env={"SANDBOX_REQUEST_LOG": str(log)}) as server:
        yield server


@pytest.fixture
def slow_log(slow_sandbox) -> RequestLog:
    return RequestLog(Path(slow_sandbox.env["SANDBOX_REQUEST_LOG"]))


def never_went_back(sequence: list[str]) -> bool:
    """Statuses as one socket showed them: always forward in the run's own order."""
    ranks = [ORDER.index(s) for s in sequence]
    return ranks == sorted(ranks)


async def open_on_all(cluster, path: str, per_process: int = 2):
    return [
        await open_viewer(dashboard, path, cluster.session_key)
        for dashboard in cluster.processes
        for _ in range(per_process)
    ]


async def close_all(viewers) -> None:
    for viewer in viewers:
        if viewer.close_code is None:
            await viewer.socket.close()


async def test_a_poller_frozen_past_its_lease_never_sets_a_socket_back(slow_sandbox, slow_log):
    with dashboards(slow_sandbox) as cluster:
        run = slow_sandbox.start_run("answer", speed=1, message="Freeze me", sandbox_queued_seconds=3)
        run_id, thread_id = run["id"], run["thread_id"]
        viewers = await open_on_all(cluster, f"/ws/runs/default/{thread_id}/{run_id}/")
        try:
            await until(
                lambda: all(status_sequence(v.messages, run_id) for v in viewers), 15, "every socket shows it"
            )
            # Freeze the process that polls, in the middle of a poll, past its lease (1 s).
            (agent,) = await until(lambda: pollers(slow_log, run_id), 10, "a poller")
            (frozen,) = [d for d in cluster.processes if d.agent == agent]
            (other,) = [d for d in cluster.processes if d is not frozen]
            before = len(slow_log.entries(run_id=run_id))
            await until(lambda: len(slow_log.entries(run_id=run_id)) > before, 5, "a poll starts")
            frozen.process.send_signal(signal.SIGSTOP)
            stopped_at = time.time()
            try:
                # The run moves on while it is frozen; the other process takes over and publishes.
                await until(lambda: other.agent in pollers(slow_log, run_id, stopped_at), 10, "takeover")
                slow_sandbox.wait_run(thread_id, run_id, "in_progress", "completed", timeout=15)
                await asyncio.sleep(1.5)
            finally:
                frozen.process.send_signal(signal.SIGCONT)
            slow_sandbox.wait_run(thread_id, run_id, "completed", timeout=20)
            await until(
                lambda: all("completed" in status_sequence(v.messages, run_id) for v in viewers),
                20,
                "every socket, on both processes, ends on the upstream's state",
            )
            await asyncio.sleep(2.5)  # the final state goes out again; anything late arrives too
            for viewer in viewers:
                seen = status_sequence(viewer.messages, run_id)
                trace = [(versions(m)[:1], statuses(m, run_id)) for m in viewer.messages]
                assert never_went_back(seen), (viewer.dashboard.pid == frozen.pid, seen, trace)
                assert seen[-1] == "completed", seen
            # The frozen holder's publish after it woke was refused: every push after the takeover is
            # by a publisher that held the lease, in one unbroken order.
            key = bus.run_key("default", thread_id, run_id)
            pushes = cluster.pushes(key)
            shown = [s for p in pushes for s in statuses(p.get("viewer", ""), run_id)]
            assert never_went_back([s for n, s in enumerate(shown) if n == 0 or s != shown[n - 1]]), shown
            for dashboard in cluster.processes:
                assert "Traceback" not in dashboard.log(), dashboard.log()[-5000:]
        finally:
            await close_all(viewers)


async def test_redis_stopped_and_started_again_every_socket_catches_up_and_stays_live(slow_sandbox, slow_log):
    with own_redis() as redis_server, dashboards(slow_sandbox, redis_url=redis_server.url) as cluster:
        run = slow_sandbox.start_run("answer", speed=1, message="Outage", sandbox_queued_seconds=4)
        run_id, thread_id = run["id"], run["thread_id"]
        viewers = await open_on_all(cluster, f"/ws/runs/default/{thread_id}/{run_id}/")
        try:
            await until(
                lambda: all(status_sequence(v.messages, run_id) == ["queued"] for v in viewers),
                15,
                "every socket shows the queued run",
            )
            redis_server.stop()
            # The run starts while Redis is away (and Redis stays away a little longer).
            await asyncio.to_thread(slow_sandbox.wait_run, thread_id, run_id, "in_progress", timeout=15)
            await asyncio.sleep(1.0)
            back_at = time.time()
            redis_server.start()  # empty: it keeps nothing on disk
            upstream = (await sandbox_get(slow_sandbox, f"/threads/{thread_id}/runs/{run_id}"))["status"]
            assert upstream in ("in_progress", "completed")

            def caught_up(viewer):
                seen = status_sequence(viewer.since(back_at), run_id)
                return seen and ORDER.index(seen[-1]) >= ORDER.index(upstream)

            await until(lambda: all(caught_up(v) for v in viewers), 8, "every socket converges")
            converged = time.time() - back_at
            # Later changes still arrive, on every socket of both processes.
            await until(
                lambda: all("completed" in status_sequence(v.messages, run_id) for v in viewers),
                20,
                "the run's end reaches every socket",
            )
            assert all(v.close_code is None for v in viewers)
            assert converged < 8
            for dashboard in cluster.processes:  # warnings, but no socket or watch crashed
                assert "Traceback" not in dashboard.log(), dashboard.log()[-5000:]
            for viewer in viewers:
                assert never_went_back(status_sequence(viewer.messages, run_id))
        finally:
            await close_all(viewers)


async def test_a_stream_relay_and_a_poller_never_publish_the_same_run_at_once(slow_sandbox, slow_log):
    with dashboards(slow_sandbox) as cluster:
        run = slow_sandbox.start_run("functions", speed=1, message="Weather?", sandbox_queued_seconds=0.5)
        run_id, thread_id = run["id"], run["thread_id"]
        viewers = await open_on_all(cluster, f"/ws/runs/default/{thread_id}/{run_id}/")
        try:
            waiting = slow_sandbox.wait_run(thread_id, run_id, "requires_action", timeout=20)
            await until(
                lambda: all("requires_action" in status_sequence(v.messages, run_id) for v in viewers),
                15,
                "every socket shows the run waiting",
            )
            (agent,) = pollers(slow_log, run_id)
            (polling,) = [d for d in cluster.processes if d.agent == agent]
            (other,) = [d for d in cluster.processes if d is not polling]
            # The outputs are submitted on the process that does not poll: its stream takes over.
            calls = waiting["required_action"]["submit_tool_outputs"]["tool_calls"]
            form = {"call_ids": " ".join(c["id"] for c in calls)}
            form.update({f"output_{c['id']}": '{"ok": true}' for c in calls})
            path = f"/threads/{thread_id}/runs/{run_id}/submit/"
            response = await operator_post(other, cluster.session_key, path, form)
            assert response.status_code == 302, response.text[:2000]
            slow_sandbox.wait_run(thread_id, run_id, "completed", timeout=20)
            await until(
                lambda: all("completed" in status_sequence(v.messages, run_id) for v in viewers),
                20,
                "every socket ends completed",
            )
            await asyncio.sleep(2.5)
            pushes = cluster.pushes(bus.run_key("default", thread_id, run_id))
            publishers = [p["by"] for p in pushes]
            relayed = [n for n, by in enumerate(publishers) if "/relay-" in by]
            assert relayed, publishers
            # While the stream was the source, nobody else published the run.
            assert all("/relay-" in by for by in publishers[relayed[0] : relayed[-1] + 1]), publishers
            for viewer in viewers:
                seen = status_sequence(viewer.messages, run_id)
                after = seen[seen.index("requires_action") + 1 :]
                assert after[-1] == "completed" and "requires_action" not in after, seen
            for dashboard in cluster.processes:
                assert "Traceback" not in dashboard.log(), dashboard.log()[-5000:]
        finally:
            await close_all(viewers)
