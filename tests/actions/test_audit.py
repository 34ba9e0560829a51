"""The audit trail: written before the upstream call, completed after it, reconciled if interrupted."""

import hashlib
import html
import json
import re
import secrets
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from runs_ui.models import AuditRecord
from tests.actions.conftest import (
    error_response,
    fault,
    follow,
    forward,
    outputs_form,
    pending_calls,
    post_form,
    records,
    run_path,
    sandbox_run,
    text,
)


def action_call(run, calls, action: str):
    """(method, path end of the upstream call, dashboard path, a valid form) of one action on a run."""
    return {
        "cancel_run": ("POST", "/cancel", run_path(run, "cancel"), {"reason": "Audit me"}),
        "submit_tool_outputs": (
            "POST",
            "/submit_tool_outputs",
            run_path(run, "submit"),
            outputs_form(calls, get_weather='{"c": 21}', get_time='{"t": "14:05"}'),
        ),
        "modify_metadata": (
            "POST",
            f"/runs/{run.run_id}",
            run_path(run, "metadata"),
            {"key_0": "k", "value_0": "v"},
        ),
        "create_run": (
            "POST",
            f"/threads/{run.thread_id}/runs",
            f"/threads/{run.thread_id}/runs/new/",
            {"assistant_id": run.assistant_id, "message": "Again", "form_token": secrets.token_urlsafe(24)},
        ),
        "create_thread_and_run": (
            "POST",
            "/threads/runs",
            "/new/",
            {"assistant_id": run.assistant_id, "message": "Hi", "form_token": secrets.token_urlsafe(24)},
        ),
    }[action]


@pytest.fixture
def run_for(make_run, wait_for):
    """A run an action can succeed on: waiting for outputs, or (to start another) finished."""

    def make(action: str):
        if action.startswith("create"):
            run = make_run("answer", speed=50)
            wait_for(run, "completed")
            return run, []
        run = make_run("functions", speed=20)
        return run, pending_calls(wait_for(run, "requires_action"))

    return make


ACTIONS = ["cancel_run", "submit_tool_outputs", "modify_metadata", "create_run", "create_thread_and_run"]
STREAMED = {"submit_tool_outputs", "create_run", "create_thread_and_run"}


# --- before and after -------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ACTIONS)
async def test_the_record_is_written_before_the_upstream_call_and_completed_after_it(
    action, operator_client, run_for, spy
):
    run, calls = run_for(action)
    method, path_end, path, form = action_call(run, calls, action)
    seen_during_the_call = []

    async def look_then_forward(request):
        seen_during_the_call.extend([r async for r in AuditRecord.objects.all()])
        return await forward(request)

    route = fault(spy, method, path_end, side_effect=look_then_forward)

    response = await post_form(operator_client, path, form)

    assert response.status_code == 302, text(response)[:2000]
    [before] = seen_during_the_call
    assert (before.action, before.outcome, before.username, before.completed_at) == (
        action,
        "pending",
        "olivia",
        None,
    )
    assert before.payload_size > 0 and len(before.payload_sha256) == 64
    [after] = await records()
    assert after.pk == before.pk
    assert after.outcome == "succeeded"
    assert after.upstream_status == 200
    assert after.upstream_message  # what the upstream said, e.g. "the run is cancelling"
    assert after.latency_ms is not None and after.latency_ms >= 0
    assert after.completed_at >= after.created_at
    assert route.call_count == 1


@pytest.mark.parametrize("action", ACTIONS)
async def test_the_completed_record_keeps_the_request_id_of_the_actions_upstream_call(
    action, operator_client, run_for, spy
):
    run, calls = run_for(action)
    method, path_end, path, form = action_call(run, calls, action)
    route = fault(spy, method, path_end, side_effect=forward)

    response = await post_form(operator_client, path, form)

    assert response.status_code == 302
    request_id = route.calls.last.response.headers["x-request-id"]
    [record] = await records()
    assert record.request_id == request_id


async def test_the_cancel_record_keeps_who_why_and_the_status_before(operator_client, make_run):
    run = make_run("slow", speed=10, sandbox_queued_seconds=100)

    await post_form(operator_client, run_path(run, "cancel"), {"reason": "Customer asked"})

    [record] = await records()
    assert (record.username, record.reason, record.connection) == ("olivia", "Customer asked", "default")
    assert (record.thread_id, record.run_id) == (run.thread_id, run.run_id)
    assert record.payload == {"status_before": "queued"}
    assert record.upstream_message == "the run is cancelling"


# --- upstream failures: recorded, shown, not retried ----------------------------------------------------


HOSTILE = "Run is not <script>alert('owned')</script> & <b>boom</b>"
#: What the upstream (or the way to it) does, what it says, the status and request id recorded, and the
#: outcome: "failed" when the upstream cannot have acted, "unknown" when the request may have reached it.
FAILURES = {
    "a 500": (
        {"return_value": error_response(500, "The server had an error <b>boom</b>", "req_boom")},
        "The server had an error <b>boom</b>",
        500,
        "req_boom",
        "unknown",
    ),
    "a timeout": (
        {"side_effect": httpx.ReadTimeout("read timed out")},
        "did not answer in time.",
        None,
        "",
        "unknown",
    ),
    "a 400 with hostile text": (
        {"return_value": error_response(400, HOSTILE, "req_hostile")},
        HOSTILE,
        400,
        "req_hostile",
        "failed",
    ),
    "a connection that never opened": (
        {"side_effect": httpx.ConnectError("connection refused")},
        "Could not connect to",
        None,
        "",
        "failed",
    ),
}
SAYS = {
    "cancel_run": "The upstream did not cancel the run:",
    "submit_tool_outputs": "The upstream refused the outputs:",
    "modify_metadata": "The upstream refused the metadata:",
    "create_run": "The upstream did not start the run:",
    "create_thread_and_run": "The upstream did not start the run:",
}
UNKNOWN_SAYS = "Outcome unknown: the request may have reached the upstream, but no usable answer came back ("


@pytest.mark.parametrize("failure", list(FAILURES))
@pytest.mark.parametrize("action", ACTIONS)
async def test_an_upstream_failure_is_recorded_and_shown_and_never_retried(
    action, failure, operator_client, module_waiting_run, upstream, spy, settings
):
    settings.UPSTREAM_RETRIES = 0  # a connection that never opened is retried, even for a POST
    run, calls = module_waiting_run
    method, path_end, path, form = action_call(run, calls, action)
    mock, message, status, request_id, outcome = FAILURES[failure]
    route = fault(spy, method, path_end, **mock)

    response = await post_form(operator_client, path, form)

    assert response.status_code == 400
    says = UNKNOWN_SAYS if outcome == "unknown" else SAYS[action]
    assert re.search(re.escape(says) + r".{0,80}?" + re.escape(message), text(response)), text(response)
    assert ("it may have acted anyway" in text(response).lower()) == (outcome == "unknown")
    assert html.escape(message) in response.content.decode()  # verbatim, escaped
    assert "<b>boom</b>" not in response.content.decode()
    assert "<script>alert" not in response.content.decode()
    assert route.call_count == 1
    [record] = await records()
    assert (record.action, record.outcome, record.upstream_status, record.request_id) == (
        action,
        outcome,
        status,
        request_id,
    )
    assert message in record.upstream_message
    assert record.latency_ms is not None
    assert record.completed_at is not None  # the call is over, whatever it did
    assert sandbox_run(upstream, run)["status"] == "requires_action"


# --- interrupted: outcome unknown, then reconciled from the run ---------------------------------------------


async def age(record: AuditRecord, minutes: int = 5) -> None:
    await AuditRecord.objects.filter(pk=record.pk).aupdate(
        created_at=timezone.now() - timedelta(minutes=minutes)
    )


async def test_a_crash_after_the_cancel_landed_leaves_outcome_unknown_until_the_run_page_reconciles_it(
    operator_client, make_run, upstream, spy
):
    run = make_run("slow", speed=10)

    async def land_then_die(request):
        await forward(request)
        raise RuntimeError("the process died before it wrote the outcome")

    fault(spy, "POST", "/cancel", side_effect=land_then_die)
    with pytest.raises(RuntimeError, match="the process died"):
        await post_form(operator_client, run_path(run, "cancel"), {"reason": "Stop"})

    [record] = await records()
    assert (record.outcome, record.completed_at, record.reconciled_at) == ("pending", None, None)
    assert sandbox_run(upstream, run)["status"] in ("cancelling", "cancelled")
    fresh = await operator_client.get(run_path(run))
    assert "outcome unknown" in text(fresh)  # a minute may still be an action in flight
    assert (await records())[0].outcome == "pending"

    await age(record)
    page = await operator_client.get(run_path(run))

    [record] = await records()
    assert record.outcome == "succeeded"
    assert record.reconciled_at is not None
    assert record.note.startswith(
        "Interrupted before its outcome was recorded; reconciled from the run: the run is "
    )
    assert record.note in text(page)


async def test_a_crash_before_the_cancel_left_is_reconciled_as_failed_and_the_cancel_can_be_sent_again(
    operator_client, make_run, spy
):
    run = make_run("slow", speed=10)
    attempts = []

    async def die_the_first_time(request):
        attempts.append(request)
        if len(attempts) == 1:
            raise RuntimeError("the process died before the call left")
        return await forward(request)

    fault(spy, "POST", "/cancel", side_effect=die_the_first_time)
    with pytest.raises(RuntimeError):
        await post_form(operator_client, run_path(run, "cancel"), {"reason": "Stop"})
    [interrupted] = await records()
    await age(interrupted)

    page = await operator_client.get(run_path(run, "cancel"))
    again = await post_form(operator_client, run_path(run, "cancel"), {"reason": "Stop, for real"})

    assert page.status_code == 200
    first, second = await records()
    assert first.outcome == "failed"
    assert first.reconciled_at is not None
    assert re.fullmatch(
        r"Interrupted before its outcome was recorded; reconciled from the run: "
        r"the run is (queued|in_progress)\.",
        first.note,
    )
    assert again.status_code == 302
    assert second.outcome == "succeeded"
    assert len(attempts) == 2


async def test_an_interrupted_start_of_a_run_is_reconciled_once_the_run_is_seen(
    operator_client, make_run, wait_for, users
):
    run = make_run("answer", speed=50)  # the run the interrupted action started
    wait_for(run, "completed")
    record = await AuditRecord.objects.acreate(
        user=users.operator,
        username="olivia",
        action="create_run",
        thread_id=run.thread_id,
        payload={"assistant_id": run.assistant_id},
        created_at=timezone.now() - timedelta(minutes=5),
    )

    await operator_client.get(f"/threads/{run.thread_id}/")
    await operator_client.get(run_path(run))

    await record.arefresh_from_db()
    assert record.outcome == "succeeded"
    assert record.reconciled_at is not None


async def test_an_interrupted_submission_of_still_pending_calls_is_reconciled_as_failed_on_the_next_action(
    operator_client, waiting_run, users
):
    run, calls = waiting_run
    outputs = [{"tool_call_id": c["id"], "output": "1"} for c in calls]
    record = await AuditRecord.objects.acreate(
        user=users.operator,
        username="olivia",
        action="submit_tool_outputs",
        thread_id=run.thread_id,
        run_id=run.run_id,
        payload={"tool_outputs": outputs},
        created_at=timezone.now() - timedelta(minutes=5),
    )

    page = await operator_client.get(run_path(run, "submit"))
    response = await post_form(
        operator_client, run_path(run, "submit"), outputs_form(calls, get_weather="1", get_time="2")
    )

    await record.arefresh_from_db()
    assert page.status_code == 200
    assert record.outcome == "failed"
    assert record.note.endswith("reconciled from the run: those calls are still pending.")
    assert response.status_code == 302  # the settled record no longer blocks a new submission


async def test_an_interrupted_metadata_edit_that_landed_is_reconciled_as_succeeded(
    operator_client, make_run, wait_for, upstream, users
):
    run = make_run("answer", speed=50)
    wait_for(run, "completed")
    upstream.request("POST", f"/threads/{run.thread_id}/runs/{run.run_id}", json={"metadata": {"k": "v"}})
    record = await AuditRecord.objects.acreate(
        user=users.operator,
        username="olivia",
        action="modify_metadata",
        thread_id=run.thread_id,
        run_id=run.run_id,
        payload={"metadata": {"k": "v"}, "before": {}},
        created_at=timezone.now() - timedelta(minutes=5),
    )

    await operator_client.get(run_path(run, "metadata"))

    await record.arefresh_from_db()
    assert record.outcome == "succeeded"
    assert record.note.endswith("reconciled from the run: the run's metadata matches.")


# --- what is stored ----------------------------------------------------------------------------------------


async def test_tool_outputs_are_stored_in_the_record_by_default(operator_client, waiting_run, settings):
    settings.AUDIT_HASH_TOOL_OUTPUTS = False
    run, calls = waiting_run

    await post_form(
        operator_client, run_path(run, "submit"), outputs_form(calls, get_weather="café ☕", get_time="2")
    )

    [record] = await records()
    assert record.payload == {
        "tool_outputs": [
            {"tool_call_id": calls[0]["id"], "output": "café ☕"},
            {"tool_call_id": calls[1]["id"], "output": "2"},
        ]
    }
    full = json.dumps(record.payload, sort_keys=True, ensure_ascii=False).encode()
    assert (record.payload_sha256, record.payload_size) == (hashlib.sha256(full).hexdigest(), len(full))


async def test_with_hashing_on_only_the_hash_and_size_of_each_output_are_stored(
    operator_client, admin_client, waiting_run, wait_for, settings
):
    settings.AUDIT_HASH_TOOL_OUTPUTS = True
    run, calls = waiting_run
    secret = "café ☕ secret-customer-data"

    response = await post_form(
        operator_client, run_path(run, "submit"), outputs_form(calls, get_weather=secret, get_time="2")
    )

    assert response.status_code == 302
    wait_for(run, "completed")  # the upstream still got the real outputs
    [record] = await records()
    assert record.payload == {
        "tool_outputs": [
            {
                "tool_call_id": calls[0]["id"],
                "output_sha256": hashlib.sha256(secret.encode()).hexdigest(),
                "output_size": len(secret.encode()),
            },
            {
                "tool_call_id": calls[1]["id"],
                "output_sha256": hashlib.sha256(b"2").hexdigest(),
                "output_size": 1,
            },
        ]
    }
    stored = " ".join(str(getattr(record, f.attname)) for f in AuditRecord._meta.fields)
    assert "secret-customer-data" not in stored
    admin_page = await admin_client.get(f"/admin/runs_ui/auditrecord/{record.pk}/change/")
    assert admin_page.status_code == 200
    assert "secret-customer-data" not in admin_page.content.decode()


# --- where the records show ---------------------------------------------------------------------------------


async def test_the_run_page_lists_the_actions_taken_on_the_run_to_everyone(
    operator_client, viewer_client, make_run, wait_for
):
    run = make_run("slow", speed=10)
    response = await post_form(operator_client, run_path(run, "cancel"), {"reason": "Wrong <b>prompt</b>"})
    await follow(operator_client, response)

    for client in (operator_client, viewer_client):
        page = await client.get(run_path(run))
        assert "Actions on this run" in text(page)
        assert "olivia cancel run “Wrong <b>prompt</b>” succeeded the run is cancelling" in text(page)
        assert "Wrong &lt;b&gt;prompt&lt;/b&gt;" in page.content.decode()


async def make_records(users):
    specs = [
        (users.operator, "cancel_run", "succeeded", "run_one"),
        (users.admin, "submit_tool_outputs", "failed", "run_two"),
        (users.operator, "modify_metadata", "pending", "run_three"),
    ]
    for user, action, outcome, run_id in specs:
        await AuditRecord.objects.acreate(
            user=user,
            username=user.username,
            action=action,
            outcome=outcome,
            thread_id="thread_x",
            run_id=run_id,
        )


@pytest.mark.parametrize(
    "query, shown",
    [
        ("", {"run_one", "run_two", "run_three"}),
        ("?username=olivia", {"run_one", "run_three"}),
        ("?username=ada", {"run_two"}),
        ("?action__exact=cancel_run", {"run_one"}),
        ("?outcome__exact=failed", {"run_two"}),
        ("?outcome__exact=pending&username=olivia", {"run_three"}),
    ],
)
async def test_the_admin_audit_log_is_filterable_by_user_action_and_outcome(
    query, shown, admin_client, users
):
    await make_records(users)

    page = await admin_client.get("/admin/runs_ui/auditrecord/" + query)

    body = text(page)
    assert page.status_code == 200
    assert {r for r in ("run_one", "run_two", "run_three") if r in body} == shown
    for title in ("By outcome", "By action", "By username"):
        assert title in body


async def test_the_admin_audit_log_is_read_only(admin_client, users):
    await make_records(users)
    record = await AuditRecord.objects.aget(run_id="run_one")

    add = await admin_client.get("/admin/runs_ui/auditrecord/add/")
    change = await admin_client.get(f"/admin/runs_ui/auditrecord/{record.pk}/change/")
    delete = await admin_client.get(f"/admin/runs_ui/auditrecord/{record.pk}/delete/")

    assert add.status_code == 403
    assert (
        change.status_code == 200 and 'type="submit"' not in change.content.decode().split('id="content"')[1]
    )
    assert delete.status_code == 403
