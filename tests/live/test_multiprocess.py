"""Two dashboard processes (daphne) on the Redis layer, sockets on both, one run changing in the sandbox:
every socket gets every change, one process polls, and when it dies the other takes over."""

from __future__ import annotations

import asyncio
import re
import signal
import time

from tests.live.cluster import dashboards, open_viewer, pollers, until
from tests.live.support import sandbox_get, sandbox_post, status_sequence, step_ids

SOCKETS_PER_PROCESS = 3


async def test_two_processes_share_one_poller_every_socket_gets_every_change_and_a_survivor_takes_over(
    sandbox, make_run, requests_log
):
    with dashboards(sandbox) as cluster:
        processes, session_key = cluster.processes, cluster.session_key
        run = make_run("functions", speed=2, sandbox_queued_seconds=4)
        path = f"/ws/runs/default/{run.thread_id}/{run.run_id}/"
        viewers = [
            await open_viewer(dashboard, path, session_key)
            for _ in range(SOCKETS_PER_PROCESS)
            for dashboard in processes
        ]
        connected_at = time.time()
        try:
            # Phase 1: queued → in_progress → requires_action, seen by every socket on both processes.
            def all_waiting():
                return all("requires_action" in status_sequence(v.messages, run.run_id) for v in viewers)

            await until(all_waiting, 15, "every socket sees requires_action")

            # The steps follow the status within the run's budget for details (a few seconds).
            def all_have_steps():
                return all(set().union(*(step_ids(m) for m in v.messages)) for v in viewers)

            await until(all_have_steps, 8, "every socket sees the function-call step")
            await asyncio.sleep(0.5)
            # The changes made once all six were connected (the run was still queued then); one published
            # while a socket connects reaches it through the resync state instead.
            sequences = {
                tuple(s for s in status_sequence(v.since(connected_at), run.run_id) if s != "queued")
                for v in viewers
            }
            assert len(sequences) == 1, sequences  # the same changes on all six sockets
            (sequence,) = sequences
            assert sequence[-1] == "requires_action", sequence
            steps = {frozenset(set().union(*(step_ids(m) for m in v.messages))) for v in viewers}
            assert len(steps) == 1 and next(iter(steps)), steps

            # One process polled the run, though both had sockets watching it.
            (poller_agent,) = pollers(requests_log, run.run_id)
            (polling,) = [d for d in processes if d.agent == poller_agent]
            (other,) = [d for d in processes if d is not polling]

            # Phase 2: the polling process dies; the other takes over within a few seconds.
            polling.process.send_signal(signal.SIGKILL)
            polling.process.wait(timeout=5)
            killed_at = time.time()
            await until(lambda: other.agent in pollers(requests_log, run.run_id, killed_at), 8, "takeover")
            first = min(e["t"] for e in requests_log.entries(run_id=run.run_id, since=killed_at))
            assert first - killed_at <= 5.0, first - killed_at
            survivors = [v for v in viewers if v.dashboard is other]
            lost = [v for v in viewers if v.dashboard is polling]
            await until(
                lambda: all(v.close_code is not None for v in lost), 5, "dead process's sockets close"
            )

            # …and the remaining sockets get the remaining changes.
            waiting = await sandbox_get(sandbox, f"/threads/{run.thread_id}/runs/{run.run_id}")
            calls = waiting["required_action"]["submit_tool_outputs"]["tool_calls"]
            resumed_at = time.time()
            await sandbox_post(
                sandbox,
                f"/threads/{run.thread_id}/runs/{run.run_id}/submit_tool_outputs",
                {"tool_outputs": [{"tool_call_id": c["id"], "output": f"out-{c['id']}"} for c in calls]},
            )

            def all_done():
                return all("completed" in status_sequence(v.since(resumed_at), run.run_id) for v in survivors)

            await until(all_done, 15, "every surviving socket sees completed")
            await asyncio.sleep(0.5)
            after = {tuple(status_sequence(v.since(resumed_at), run.run_id)) for v in survivors}
            assert len(after) == 1, after  # the same changes on every surviving socket
            (seen_after,) = after
            assert seen_after[-1] == "completed", seen_after
            new_steps = {
                frozenset(set().union(*(step_ids(m) for m in v.since(resumed_at)))) for v in survivors
            }
            assert len(new_steps) == 1, new_steps
            final_steps = await sandbox_get(sandbox, f"/threads/{run.thread_id}/runs/{run.run_id}/steps")
            assert next(iter(new_steps)) >= {s["id"] for s in final_steps["data"]} - next(iter(steps))
            # Only the survivor polled after the takeover.
            assert pollers(requests_log, run.run_id, killed_at + 0.5) == {other.agent}
            assert re.search(r"Traceback", other.log()) is None, other.log()
        finally:
            for viewer in viewers:
                await viewer.socket.close()
