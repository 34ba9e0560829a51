"""Many sockets on one run: one poller, and every socket gets every change (memory and Redis layers)."""

from __future__ import annotations

import asyncio

import pytest

from runs_ui.live.watcher import RUN_GETS_PER_SECOND, watcher
from tests.live.support import run_path, sandbox_get, status_sequence, statuses, step_ids, wait_status

pytestmark = pytest.mark.django_db(transaction=True)

SOCKETS = 20


async def test_twenty_sockets_on_one_run_cost_the_upstream_one_poller_and_each_gets_every_change(
    any_layer, open_socket, users, make_run, sandbox, requests_log
):
    run = make_run("answer", speed=2, sandbox_queued_seconds=2)
    sockets = await asyncio.gather(
        *(open_socket(run_path(run), user=users.operator if n % 2 else users.viewer) for n in range(SOCKETS))
    )
    assert list(watcher.runs) == [("default", run.thread_id, run.run_id)]
    assert len(watcher.runs[("default", run.thread_id, run.run_id)].holders) == SOCKETS
    assert len([t for t in asyncio.all_tasks() if t.get_name() == "watch-run" and not t.done()]) == 1

    await wait_status(sandbox, run, "completed")
    for socket in sockets:
        await socket.expect(lambda html: "completed" in statuses(html, run.run_id))
    await asyncio.sleep(0.3)  # let the final pushes land

    steps = await sandbox_get(sandbox, f"/threads/{run.thread_id}/runs/{run.run_id}/steps")
    expected_steps = {s["id"] for s in steps["data"]}
    for n, socket in enumerate(sockets):
        # Every change made once all were connected (the run was still queued then); one published while a
        # socket connects reaches it through the resync state, so "queued" may or may not be among them.
        seen = [s for s in status_sequence(socket.messages, run.run_id) if s != "queued"]
        assert seen == ["in_progress", "completed"], (n, seen)
        assert set().union(*(step_ids(html) for html in socket.messages)) == expected_steps, n

    # One poller's rate: the run's requests stay within the per-run budget of 2 GET/s.
    polled = requests_log.entries(run_id=run.run_id, method="GET")
    assert polled, "the watcher never polled"
    span = polled[-1]["t"] - polled[0]["t"]
    assert len(polled) <= RUN_GETS_PER_SECOND * (span + 0.1) + 2, (len(polled), span)  # burst of 2
    # …and it really was one process's one task that asked.
    assert len({e["agent"] for e in polled}) == 1
