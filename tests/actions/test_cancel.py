"""Cancel a run: a confirmation with the run's status and a required reason; the run then ends cancelled."""

import asyncio

import httpx

from runs_ui.live.watcher import watcher
from tests.actions.conftest import (
    calls_to,
    fault,
    follow,
    forward,
    post_form,
    records,
    run_path,
    sandbox_run,
    text,
)
from tests.fixtures import eventually


async def test_the_confirmation_shows_the_runs_status_and_asks_for_a_reason(operator_client, make_run):
    run = make_run("slow", speed=10, sandbox_queued_seconds=100)

    page = await operator_client.get(run_path(run, "cancel"))

    assert page.status_code == 200
    assert f"Run {run.run_id} is queued" in text(page)
    assert "Reason (required)" in text(page)
    assert 'name="reason"' in page.content.decode()


async def test_a_cancel_with_a_reason_moves_the_run_to_cancelling_then_cancelled_and_the_page_says_so(
    operator_client, make_run, wait_for, upstream, spy
):
    run = make_run("slow", speed=10, sandbox_cancel_seconds=10)  # cancelling lasts 1 s
    wait_for(run, "in_progress")

    response = await post_form(operator_client, run_path(run, "cancel"), {"reason": "Looping on a tool"})

    assert response["Location"] == run_path(run)
    assert len(calls_to(spy, "POST", "/cancel")) == 1
    assert sandbox_run(upstream, run)["status"] == "cancelling"
    page = await follow(operator_client, response)
    assert "Cancel sent: the run is cancelling. This page follows it until it ends." in text(page)
    assert 'title="cancelling"' in page.content.decode()
    assert "Cancel run…" not in text(page)
    # The page follows the run: its watcher polls it until it has ended.
    watch = watcher.runs[("default", run.thread_id, run.run_id)]
    await eventually(
        lambda: watch.state.run is not None and watch.state.run.status == "cancelled", timeout=15
    )
    wait_for(run, "cancelled")
    page = await operator_client.get(run_path(run))
    assert 'title="cancelled"' in page.content.decode()
    assert "Cancelled" in text(page)
    [record] = await records()
    assert (record.action, record.reason, record.outcome) == ("cancel_run", "Looping on a tool", "succeeded")
    assert len(calls_to(spy, "POST", "/cancel")) == 1


async def test_a_cancel_without_a_reason_is_refused_and_nothing_is_sent(
    operator_client, make_run, upstream, spy
):
    run = make_run("slow", speed=10)

    response = await post_form(operator_client, run_path(run, "cancel"), {"reason": "   "})

    assert response.status_code == 400
    assert "Give a reason: it is kept in the audit trail." in text(response)
    assert calls_to(spy, "POST", "/cancel") == []
    assert await records() == []
    assert sandbox_run(upstream, run)["status"] in ("queued", "in_progress")


async def test_an_overlong_reason_is_refused_with_the_reason_kept_in_the_form(operator_client, make_run, spy):
    run = make_run("slow", speed=10)
    reason = "Stop: " + "x" * 1000

    response = await post_form(operator_client, run_path(run, "cancel"), {"reason": reason})

    assert response.status_code == 400
    assert "Ensure this value has at most 1000 characters (it has 1006)." in text(response)
    assert reason in text(response)
    assert calls_to(spy, "POST", "/cancel") == []


async def test_cancelling_a_completed_run_says_it_already_ended_and_calls_nothing(
    operator_client, make_run, wait_for, spy
):
    run = make_run("answer", speed=50)
    wait_for(run, "completed")

    page = await operator_client.get(run_path(run, "cancel"))
    response = await post_form(operator_client, run_path(run, "cancel"), {"reason": "Too late"})

    message = "This run already ended (completed): there is nothing to cancel."
    assert page.status_code == 200
    assert message in text(page)
    assert 'name="reason"' not in page.content.decode()
    assert response.status_code == 400
    assert message in text(response)
    assert calls_to(spy, "POST", "/cancel") == []
    assert await records() == []


async def test_cancelling_a_run_that_is_already_cancelling_says_so_and_calls_nothing(
    operator_client, make_run, wait_for, upstream, spy
):
    run = make_run("slow", speed=10, sandbox_cancel_seconds=6000)  # stays cancelling for 10 minutes
    upstream.request("POST", f"/threads/{run.thread_id}/runs/{run.run_id}/cancel")
    cancels_before = len(calls_to(spy, "POST", "/cancel"))

    response = await post_form(operator_client, run_path(run, "cancel"), {"reason": "Again"})

    assert response.status_code == 400
    assert "This run is already cancelling." in text(response)
    assert len(calls_to(spy, "POST", "/cancel")) == cancels_before
    assert await records() == []


async def test_a_run_stuck_in_cancelling_is_flagged_after_the_threshold(operator_client, make_run, settings):
    settings.CANCEL_STUCK_SECONDS = 1
    run = make_run("slow", speed=10, sandbox_cancel_seconds=6000)
    response = await post_form(operator_client, run_path(run, "cancel"), {"reason": "Stop it"})

    soon = await follow(operator_client, response)
    await asyncio.sleep(1.3)
    later = await operator_client.get(run_path(run))

    assert "has been cancelling for" not in text(soon)
    assert "This run has been cancelling for" in text(later)
    assert "the upstream may not be able to stop it" in text(later)


async def test_a_run_answer_without_its_ids_still_gives_the_form_and_the_way_back_by_the_urls_ids(
    operator_client, make_run, spy
):
    run = make_run("slow", speed=10)

    async def without_ids(request):
        answer = await forward(request)
        body = {k: v for k, v in answer.json().items() if k not in ("id", "thread_id")}
        return httpx.Response(200, json=body)

    fault(spy, "GET", f"/runs/{run.run_id}", side_effect=without_ids)
    response = await operator_client.get(run_path(run, "cancel"))

    assert response.status_code == 200
    assert f'href="{run_path(run)}"' in response.content.decode()
