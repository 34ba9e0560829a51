"""Issue 5 in a browser: an operator unblocks and stops runs; a viewer can do neither."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

MARK_HEADER = "(id) => { document.getElementById(`run-header-${id}`).dataset.e2eBeforePush = '1'; }"
HEADER_REPLACED = "(id) => !document.getElementById(`run-header-${id}`).dataset.e2eBeforePush"


def status_badge(page, run):
    return page.locator(f"[id='run-status-{run.run_id}'] .badge")


def push_a_change(page, stack, run, note: str) -> None:
    """Changes the run upstream (its metadata) and waits until the page got the re-rendered header."""
    page.evaluate(MARK_HEADER, run.run_id)
    metadata = {**stack.run(run)["metadata"], "note": note}
    stack.api("POST", f"/threads/{run.thread_id}/runs/{run.run_id}", json={"metadata": metadata})
    page.wait_for_function(HEADER_REPLACED, arg=run.run_id)


def test_an_operator_submits_both_tool_outputs_and_watches_the_run_complete_live(page, stack):
    run = stack.make_run("functions", speed=10, sandbox_expires_seconds=6000, message="Weather and time?")
    stack.wait_for(run, "requires_action")
    page.goto(run.path)
    expect(page.locator("#live-state")).to_have_text("live")
    form = page.locator("form.tool-outputs")
    expect(form).to_contain_text("The run is waiting for 2 tool outputs")
    expect(form.locator(".countdown")).to_have_text(re.compile(r"\d+ min \d+ s left"))
    weather = form.get_by_label("Output of get_weather")
    clock = form.get_by_label("Output of get_time")

    weather.click()
    page.keyboard.type('{"temperature_c": 21, ')
    # A live push re-renders the run header, which holds the form, while the operator is typing.
    push_a_change(page, stack, run, "edited upstream while the operator types")
    expect(weather).to_have_value('{"temperature_c": 21, ')
    expect(weather).to_be_focused()
    page.keyboard.type('"sky": "clear"}')
    clock.fill('{"local_time": "14:05"}')
    form.locator("input[name=require_json]").check()
    form.get_by_role("button", name="Submit all outputs").click()

    expect(page).to_have_url(re.compile(re.escape(run.path) + "$"))
    expect(page.locator(".messages")).to_contain_text("Outputs submitted")
    page.evaluate("window.e2eSameDocument = true")
    expect(status_badge(page, run)).to_have_text("completed", timeout=20_000)
    assert page.evaluate("window.e2eSameDocument") is True, "the run completed on screen, without a reload"
    expect(page.locator("form.tool-outputs")).to_have_count(0)
    answer = page.locator(f"[id='step-list-{run.run_id}'] > li.step").last
    expect(answer).to_contain_text('get_weather returned: {"temperature_c": 21, "sky": "clear"}')
    expect(answer).to_contain_text('get_time returned: {"local_time": "14:05"}')
    assert stack.run(run)["status"] == "completed"

    page.reload()
    audit = page.locator("aside table")
    expect(audit).to_contain_text(re.compile("submit tool outputs", re.IGNORECASE))
    expect(audit).to_contain_text("olivia")
    expect(audit.locator(".badge")).to_have_text("succeeded")


def test_an_operator_cancels_a_slow_run_with_a_reason_and_sees_it_cancelled(page, stack):
    run = stack.make_run("slow", speed=1, sandbox_cancel_seconds=2, message="Take your time.")
    page.goto(run.path)
    expect(status_badge(page, run)).to_have_text(re.compile("queued|in progress"))
    page.get_by_role("link", name="Cancel run…").click()

    expect(page.locator("h1")).to_have_text("Cancel this run?")
    expect(page.locator("main")).to_contain_text(run.run_id)
    reason = "Looping on the same search; stopping it to retry with a smaller input."
    page.get_by_label("Reason (required)").fill(reason)
    page.get_by_role("button", name="Cancel the run").click()

    expect(page).to_have_url(re.compile(re.escape(run.path) + "$"))
    expect(page.locator(".messages")).to_contain_text("Cancel sent: the run is cancelling")
    page.evaluate("window.e2eSameDocument = true")
    expect(status_badge(page, run)).to_have_text("cancelled", timeout=15_000)
    assert page.evaluate("window.e2eSameDocument") is True
    expect(page.get_by_role("link", name="Cancel run…")).to_have_count(0)
    assert stack.run(run)["status"] == "cancelled"

    page.reload()
    audit = page.locator("aside table")
    expect(audit).to_contain_text(re.compile("cancel run", re.IGNORECASE))
    expect(audit).to_contain_text(reason)
    expect(audit.locator(".badge")).to_have_text("succeeded")


FORGE = """async ([url, body]) => {
  const token = document.querySelector("meta[name=csrf-token]").content;
  const response = await fetch(url, {
    method: "POST",
    headers: { "X-CSRFToken": token, "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(body),
  });
  return response.status;
}"""


def test_a_viewer_sees_no_action_anywhere_and_a_forged_post_gets_403(open_page, stack, console):
    console.allow(
        r"the server responded with a status of 403", "the forged posts are refused, as they must be"
    )
    run = stack.make_run("functions", speed=10, sandbox_expires_seconds=6000, message="Weather and time?")
    body = stack.wait_for(run, "requires_action")
    page = open_page("viewer")

    page.goto("/")
    expect(page.locator(".topbar .me")).to_contain_text("victor · viewer")
    expect(page.get_by_role("link", name="New thread and run…")).to_have_count(0)

    page.goto(run.thread_path)
    expect(page.locator(f"[id='run-{run.run_id}']")).to_be_visible()
    expect(page.get_by_role("link", name="Start a run…")).to_have_count(0)

    page.goto(run.path)
    expect(page.locator("#live-state")).to_have_text("live")
    # The viewer sees what the run waits for, and nothing to act with.
    expect(page.locator(f"[id='required-action-{run.run_id}']")).to_contain_text("Waiting for tool outputs")
    assert_no_actions(page)
    # Live pushes render the viewer's variant of the header: still nothing to act with.
    push_a_change(page, stack, run, "changed while a viewer looks")
    assert_no_actions(page)

    calls = body["required_action"]["submit_tool_outputs"]["tool_calls"]
    outputs = {f"output_{c['id']}": "{}" for c in calls} | {"call_ids": " ".join(c["id"] for c in calls)}
    for action, fields in (
        ("cancel", {"reason": "forged"}),
        ("submit", outputs),
        ("metadata", {"key_0": "x"}),
    ):
        status = page.evaluate(FORGE, [f"{run.path}{action}/", fields])
        assert status == 403, f"a viewer's forged POST to {action} got {status}"
    assert page.evaluate(FORGE, [f"{run.thread_path}runs/new/", {"assistant_id": run.assistant_id}]) == 403
    assert page.evaluate(FORGE, ["/new/", {"assistant_id": run.assistant_id, "message": "hi"}]) == 403
    assert stack.run(run)["status"] == "requires_action", "nothing reached the upstream"

    response = page.goto(f"{run.path}cancel/")
    assert response.status == 403
    expect(page.locator("main")).to_contain_text("Your role can look but not act on runs")


def assert_no_actions(page) -> None:
    for name in ("Cancel run…", "Edit metadata", "Start a run…", "New thread and run…"):
        expect(page.get_by_role("link", name=name)).to_have_count(0)
    expect(page.get_by_role("button", name="Submit all outputs")).to_have_count(0)
    expect(page.locator("form.tool-outputs, textarea")).to_have_count(0)
    actions = page.locator("form[method=post]").evaluate_all("forms => forms.map((f) => f.action)")
    acting = [a for a in actions if re.search(r"/(cancel|submit|metadata|runs/new|new)/$", a)]
    assert not acting, acting
