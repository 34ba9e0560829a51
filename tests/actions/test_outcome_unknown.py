"""An action whose request may have reached the upstream without a usable answer is "outcome unknown",
never "failed"; the upstream's state settles it later. Starting a run is done once per form.

For each action: the connection breaks after the request was sent, or the upstream answers a 2xx nobody
can read. In both the action landed (respx forwards it to the sandbox first), the audit says "unknown",
and the page that next shows the run (or, for a start, the form's page) settles it as succeeded. A 502
from a gateway that never forwarded leaves it unknown too: it blocks a blind retry until the run's state
settles it as failed, a minute later. A double click on a start makes one run, and the second click
lands on it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from runs_ui.models import AuditRecord
from runs_ui.reconcile import MARK
from tests.actions.conftest import (
    calls_to,
    drawn_token,
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
from tests.fixtures import eventually

ACTIONS = ["cancel_run", "submit_tool_outputs", "modify_metadata", "create_run", "create_thread_and_run"]
RUN_ACTIONS = ACTIONS[:3]
UNKNOWN = "Outcome unknown: the request may have reached the upstream, but no usable answer came back"


@pytest.fixture
def run_for(make_run, wait_for):
    """A run an action can land on: waiting for outputs, or (to start another) finished."""

    def make(action: str):
        if action.startswith("create"):
            run = make_run("answer", speed=50)
            wait_for(run, "completed")
            return run, []
        run = make_run("functions", speed=20)
        return run, pending_calls(wait_for(run, "requires_action"))

    return make


async def form_for(client, action: str, run, calls) -> tuple[str, str, str, dict]:
    """(upstream path end, dashboard path, the page that settles it, a valid form) of one action."""
    if action == "cancel_run":
        return "/cancel", run_path(run, "cancel"), run_path(run), {"reason": "Stop it"}
    if action == "submit_tool_outputs":
        form = outputs_form(calls, get_weather='{"c": 21}', get_time='{"t": "14:05"}')
        return "/submit_tool_outputs", run_path(run, "submit"), run_path(run), form
    if action == "modify_metadata":
        return f"/runs/{run.run_id}", run_path(run, "metadata"), run_path(run), {"key_0": "k", "value_0": "v"}
    path = f"/threads/{run.thread_id}/runs/new/" if action == "create_run" else "/new/"
    end = f"/threads/{run.thread_id}/runs" if action == "create_run" else "/threads/runs"
    token = await drawn_token(client, path)
    return end, path, path, {"assistant_id": run.assistant_id, "message": "Go", "form_token": token}


def landed(upstream, action: str, run, record: AuditRecord) -> bool:
    """Whether the sandbox shows the action done (read directly, not through the dashboard)."""
    now = sandbox_run(upstream, run)
    if action == "cancel_run":
        return now["status"] in ("cancelling", "cancelled")
    if action == "submit_tool_outputs":
        return now["status"] != "requires_action"
    if action == "modify_metadata":
        return now["metadata"].get("k") == "v"
    threads = upstream.request("GET", "/threads?limit=100&order=desc").json()["data"]
    thread_ids = [t["id"] for t in threads if t["metadata"].get(MARK) == record.form_token]
    if action == "create_run":
        thread_ids = [run.thread_id]
    runs = [
        r
        for t in thread_ids
        for r in upstream.request("GET", f"/threads/{t}/runs").json()["data"]
        if r["metadata"].get(MARK) == record.form_token
    ]
    return len(runs) == 1


async def land_then_break(request: httpx.Request) -> httpx.Response:
    await forward(request)
    raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)


async def land_then_garble(request: httpx.Request) -> httpx.Response:
    await forward(request)
    return httpx.Response(
        200, text="<html><body>Welcome to nginx!</body></html>", headers={"content-type": "text/html"}
    )


FAULTS = {"broken after send": land_then_break, "an unreadable 2xx": land_then_garble}


@pytest.mark.parametrize("fault_name", list(FAULTS))
@pytest.mark.parametrize("action", ACTIONS)
async def test_an_action_that_landed_without_a_usable_answer_is_unknown_then_settled_as_succeeded(
    action, fault_name, operator_client, run_for, upstream, spy
):
    run, calls = run_for(action)
    path_end, path, settles_on, form = await form_for(operator_client, action, run, calls)
    route = fault(spy, "POST", path_end, side_effect=FAULTS[fault_name])

    response = await post_form(operator_client, path, form)

    assert response.status_code == 400
    assert UNKNOWN in text(response)
    assert "It may have acted anyway" in text(response)
    assert route.call_count == 1
    [record] = await records()
    assert (record.action, record.outcome) == (action, "unknown")
    assert record.completed_at is not None and record.reconciled_at is None
    assert record.note.startswith("The request may have reached the upstream")
    assert landed(upstream, action, run, record)

    await operator_client.get(settles_on)

    [record] = await records()
    assert record.outcome == "succeeded"
    assert record.reconciled_at is not None
    assert record.note.startswith("No usable answer came back; reconciled from the run: ")
    if action.startswith("create"):
        started = sandbox_run(upstream, type(run)(run.assistant_id, record.thread_id, record.run_id, {}))
        assert started["metadata"][MARK] == record.form_token
    else:
        assert (record.thread_id, record.run_id) == (run.thread_id, run.run_id)


@pytest.mark.parametrize("action", RUN_ACTIONS)
async def test_a_gateway_502_that_never_forwarded_blocks_a_blind_retry_until_the_run_settles_it_as_failed(
    action, operator_client, run_for, upstream, spy
):
    run, calls = run_for(action)
    path_end, path, settles_on, form = await form_for(operator_client, action, run, calls)
    gateway = fault(spy, "POST", path_end, return_value=httpx.Response(502, text="Bad Gateway"))

    first = await post_form(operator_client, path, form)
    page = await operator_client.get(path)
    retry = await post_form(operator_client, path, form)

    assert first.status_code == 400 and UNKNOWN in text(first)
    [record] = await records()
    assert (record.outcome, record.upstream_status) == ("unknown", 502)
    assert not landed(upstream, action, run, record)
    assert "its outcome is unknown" in text(page)
    assert retry.status_code == 400 and "its outcome is unknown" in text(retry)
    assert gateway.call_count == 1  # the retry never left
    await operator_client.get(settles_on)
    assert (await records())[0].outcome == "unknown"  # no sign of it yet, but a minute has not passed

    await AuditRecord.objects.filter(pk=record.pk).aupdate(created_at=timezone.now() - timedelta(minutes=2))
    await operator_client.get(settles_on)
    gateway.pass_through()  # the gateway is back
    again = await post_form(operator_client, path, form)

    first_record, second_record = await records()
    assert first_record.outcome == "failed"
    assert first_record.note.startswith("No usable answer came back; reconciled from the run: ")
    assert again.status_code == 302, text(again)[:2000]
    assert second_record.outcome == "succeeded"
    assert landed(upstream, action, run, second_record)


@pytest.mark.parametrize("action", ["create_run", "create_thread_and_run"])
async def test_a_start_that_never_landed_stays_listed_as_unknown_on_its_form(
    action, operator_client, run_for, spy
):
    run, _ = run_for(action)
    path_end, path, _, form = await form_for(operator_client, action, run, [])
    fault(spy, "POST", path_end, return_value=httpx.Response(504, text="Gateway Time-out"))

    first = await post_form(operator_client, path, form)
    page = await operator_client.get(path)

    assert first.status_code == 400 and UNKNOWN in text(first)
    [record] = await records()
    assert record.outcome == "unknown"
    assert "Your earlier submissions whose outcome is unknown" in text(page)
    assert "HTTP 504" in text(page)
    assert record.form_token not in page.content.decode()  # a fresh form, with a token of its own


async def test_a_new_thread_whose_stream_broke_after_thread_created_is_found_where_threads_cannot_be_listed(
    operator_client, run_for, upstream, spy, settings
):
    settings.ASSISTANTS_API_PROFILE = "openai"  # an upstream without a list of threads
    run, _ = run_for("create_thread_and_run")
    token = await drawn_token(operator_client, "/new/")

    async def break_after_thread_created(request):
        whole = await forward(request)
        frames = whole.content.split(b"\n\n")
        cut = next(i for i, f in enumerate(frames) if b"event: thread.created" in f)
        kept = b"\n\n".join(frames[: cut + 1]) + b"\n\n"

        async def body():
            yield kept
            raise httpx.ReadError("connection reset by peer")

        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=_Stream(body))

    fault(spy, "POST", "/threads/runs", side_effect=break_after_thread_created)
    response = await post_form(
        operator_client, "/new/", {"assistant_id": run.assistant_id, "message": "Go", "form_token": token}
    )

    assert response.status_code == 400 and UNKNOWN in text(response)
    [record] = await records()
    assert record.outcome == "unknown"
    assert record.thread_id.startswith("thread_")  # named by the stream before it broke
    assert record.run_id == ""

    await operator_client.get("/new/")

    [record] = await records()
    assert record.outcome == "succeeded"
    assert record.run_id.startswith("run_")
    started = sandbox_run(upstream, type(run)(run.assistant_id, record.thread_id, record.run_id, {}))
    assert started["metadata"] == {MARK: token}


@pytest.mark.parametrize("action", ["create_run", "create_thread_and_run"])
async def test_a_stream_that_ends_before_it_reports_the_run_is_unknown_not_failed(
    action, operator_client, run_for, spy
):
    run, _ = run_for(action)
    path_end, path, _, form = await form_for(operator_client, action, run, [])
    ended = b"event: done\ndata: [DONE]\n\n"
    fault(
        spy,
        "POST",
        path_end,
        return_value=httpx.Response(200, content=ended, headers={"content-type": "text/event-stream"}),
    )

    response = await post_form(operator_client, path, form)

    assert response.status_code == 400
    assert UNKNOWN in text(response) and "ended before it reported the run" in text(response)
    [record] = await records()
    assert (record.outcome, record.upstream_status) == ("unknown", None)


class _Stream(httpx.AsyncByteStream):
    def __init__(self, body):
        self.body = body

    async def __aiter__(self):
        async for chunk in self.body():
            yield chunk


# --- a double click on a start ---------------------------------------------------------------------------


class Held:
    """A side effect that holds the upstream call a while, then forwards it; `arrived` is set when the
    call reaches it (respx counts a call only once it has been answered)."""

    def __init__(self, seconds: float = 0.5):
        self.seconds = seconds
        self.arrived = asyncio.Event()

    async def __call__(self, request):
        self.arrived.set()
        await asyncio.sleep(self.seconds)
        return await forward(request)


@pytest.mark.parametrize("action", ["create_run", "create_thread_and_run"])
async def test_a_double_click_on_a_start_makes_one_run_and_both_clicks_land_on_it(
    action, operator_client, run_for, upstream, spy
):
    run, _ = run_for(action)
    path_end, path, _, form = await form_for(operator_client, action, run, [])
    route = fault(spy, "POST", path_end, side_effect=Held())

    first, second = await asyncio.gather(
        post_form(operator_client, path, form), post_form(operator_client, path, form)
    )

    assert route.call_count == 1
    assert (first.status_code, second.status_code) == (302, 302)
    assert first["Location"] == second["Location"]
    [record] = await records()
    assert record.outcome == "succeeded"
    assert first["Location"] == run_path(type(run)(run.assistant_id, record.thread_id, record.run_id, {}))
    assert landed(upstream, action, run, record)  # exactly one run carries the form's mark
    pages = [await follow(operator_client, r) for r in (first, second)]
    assert sum("This form was already submitted" in text(p) for p in pages) == 1


@pytest.mark.parametrize("action", ["create_run", "create_thread_and_run"])
async def test_a_double_click_whose_first_request_the_browser_abandoned_lands_on_the_run_the_first_started(
    action, operator_client, run_for, upstream, spy
):
    run, _ = run_for(action)
    path_end, path, _, form = await form_for(operator_client, action, run, [])
    held = Held()
    route = fault(spy, "POST", path_end, side_effect=held)

    first = asyncio.ensure_future(post_form(operator_client, path, form))
    await held.arrived.wait()
    first.cancel()  # the browser dropped the first request when the second click sent the form again
    second = await post_form(operator_client, path, form)

    assert first.cancelled()
    assert second.status_code == 302, text(second)[:2000]
    [record] = await records()
    assert record.outcome == "succeeded"
    assert second["Location"] == run_path(type(run)(run.assistant_id, record.thread_id, record.run_id, {}))
    assert "This form was already submitted" in text(await follow(operator_client, second))
    assert route.call_count == 1
    assert landed(upstream, action, run, record)


@pytest.mark.parametrize("action", RUN_ACTIONS)
async def test_an_action_whose_request_the_browser_abandoned_is_still_recorded_and_not_sent_twice(
    action, operator_client, run_for, upstream, spy
):
    run, calls = run_for(action)
    path_end, path, _, form = await form_for(operator_client, action, run, calls)
    held = Held()
    route = fault(spy, "POST", path_end, side_effect=held)

    first = asyncio.ensure_future(post_form(operator_client, path, form))
    await held.arrived.wait()
    first.cancel()
    second = await post_form(operator_client, path, form)

    assert second.status_code == 400  # in flight, then done: either way not sent again
    record = await eventually(lambda: _settled_record())
    assert record.outcome == "succeeded"
    assert route.call_count == 1
    assert landed(upstream, action, run, record)
    assert len(calls_to(spy, "POST", path_end)) == 1


async def _settled_record():
    found = await records()
    return found[0] if len(found) == 1 and found[0].outcome != "pending" else None


async def test_a_form_submitted_again_after_its_start_was_refused_shows_why_and_gets_a_new_token(
    operator_client, run_for, spy
):
    run, _ = run_for("create_run")
    path_end, path, _, form = await form_for(operator_client, "create_run", run, [])
    fault(spy, "POST", path_end, return_value=error_response(400, "Thread is busy."))

    first = await post_form(operator_client, path, form)
    second = await post_form(operator_client, path, form)

    assert first.status_code == 400 and "The upstream did not start the run: Thread is busy." in text(first)
    assert second.status_code == 400
    assert "This form was already submitted" in text(second)
    assert "did not go through" in text(second)
    assert "Thread is busy." in text(second)
    assert form["form_token"] not in second.content.decode()
    assert len(calls_to(spy, "POST", path_end)) == 1
