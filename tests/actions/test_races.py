"""Double submits and races: two operators post the same action at once; exactly one reaches the upstream.

The upstream call of the first is held open (respx delays it, then forwards it to the sandbox), so the
second arrives while the first is in flight: only the audit record's partial unique constraint (one
pending action of a kind per run) can stop it, and it must, with a clear message.
"""

import asyncio

import pytest
from django.db import IntegrityError

from runs_ui.models import AuditRecord
from tests.actions.conftest import (
    calls_to,
    fault,
    forward,
    outputs_form,
    post_form,
    records,
    run_path,
    sandbox_run,
    text,
)
from tests.fixtures import csrf_token


def held(seconds: float = 0.5):
    async def hold_then_forward(request):
        await asyncio.sleep(seconds)
        return await forward(request)

    return hold_then_forward


async def both(clients, path: str, form: dict):
    """The same form posted by each client at the same moment."""
    tokens = [await csrf_token(c, "/accounts/login/") for c in clients]
    return await asyncio.gather(
        *(post_form(c, path, form, token=t) for c, t in zip(clients, tokens, strict=True))
    )


def one_landed(responses) -> tuple:
    landed = [r for r in responses if r.status_code == 302]
    refused = [r for r in responses if r.status_code == 400]
    assert (len(landed), len(refused)) == (1, 1), [r.status_code for r in responses]
    return landed[0], refused[0]


async def test_two_cancels_at_once_reach_the_upstream_once_and_the_second_is_told(
    operator_client, admin_client, make_run, upstream, spy
):
    run = make_run("slow", speed=10)
    route = fault(spy, "POST", "/cancel", side_effect=held())

    responses = await both([operator_client, admin_client], run_path(run, "cancel"), {"reason": "Stop"})

    _, refused = one_landed(responses)
    assert "A cancel for this run is already being sent." in text(refused)
    assert route.call_count == 1
    assert [r.outcome for r in await records()] == ["succeeded"]
    assert sandbox_run(upstream, run)["status"] in ("cancelling", "cancelled")


async def test_two_submissions_of_the_same_outputs_at_once_reach_the_upstream_once(
    operator_client, admin_client, waiting_run, wait_for, spy
):
    run, calls = waiting_run
    route = fault(spy, "POST", "/submit_tool_outputs", side_effect=held())
    form = outputs_form(calls, get_weather="1", get_time="2")

    responses = await both([operator_client, admin_client], run_path(run, "submit"), form)

    _, refused = one_landed(responses)
    assert "Outputs for this run are already being submitted." in text(refused)
    assert route.call_count == 1
    assert [r.outcome for r in await records()] == ["succeeded"]
    wait_for(run, "completed")


async def test_two_metadata_saves_at_once_reach_the_upstream_once(
    operator_client, admin_client, make_run, spy
):
    run = make_run("slow", speed=10)
    route = fault(spy, "POST", f"/runs/{run.run_id}", side_effect=held())

    responses = await both(
        [operator_client, admin_client], run_path(run, "metadata"), {"key_0": "k", "value_0": "v"}
    )

    _, refused = one_landed(responses)
    assert "The metadata of this run is already being saved." in text(refused)
    assert route.call_count == 1


async def test_a_burst_of_five_identical_cancels_sends_exactly_one(operator_client, make_run, spy):
    run = make_run("slow", speed=10)
    fault(spy, "POST", "/cancel", side_effect=held(0.3))

    responses = await both([operator_client] * 5, run_path(run, "cancel"), {"reason": "Stop"})

    assert sorted(r.status_code for r in responses) == [302, 400, 400, 400, 400]
    for refused in (r for r in responses if r.status_code == 400):
        assert "A cancel for this run is already being sent." in text(refused)
    assert len(calls_to(spy, "POST", "/cancel")) == 1
    assert len(await records()) == 1


async def test_the_database_holds_one_pending_record_per_action_and_run(users):
    def pending(action="cancel_run", run_id="run_same", outcome="pending"):
        return AuditRecord.objects.acreate(
            user=users.operator, username="olivia", action=action, run_id=run_id, outcome=outcome
        )

    first = await pending()
    with pytest.raises(IntegrityError):
        await pending()
    await pending(action="modify_metadata")  # another action on the run
    await pending(run_id="run_other")  # the same action on another run
    await pending(outcome="failed")  # settled records do not count
    await pending(run_id="")  # nor do records without a run (a run being started)
    await pending(run_id="")
    first.outcome = "succeeded"
    await first.asave()
    await pending()  # once the first has settled, the action may be sent again

    assert await AuditRecord.objects.filter(run_id="run_same", action="cancel_run").acount() == 3
