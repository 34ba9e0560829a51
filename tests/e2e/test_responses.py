"""The Responses shape in a browser: a background response changes on screen as it runs, an operator
cancels one with a reason, answers pending function calls from the inbox and grants an MCP approval, and
watches each follow-up complete, live."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

# Records, in the page, each status the response header's badge shows, and marks the document, so a test
# can tell that it was never reloaded.
WATCH_STATUS = """(responseId) => {
  window.e2eSameDocument = true;
  window.e2eStatuses = [];
  const note = () => {
    const badge = document.querySelector(`[id="response-status-${responseId}"] .badge`);
    const status = badge?.textContent.trim();
    const last = window.e2eStatuses[window.e2eStatuses.length - 1];
    if (status && last !== status) window.e2eStatuses.push(status);
  };
  note();
  new MutationObserver(note).observe(document.body, { subtree: true, childList: true, characterData: true });
}"""


def create(stack, model: str, text: str, *, speed: float = 1, **options) -> dict:
    metadata = {"sandbox_speed": str(speed), **options.pop("metadata", {})}
    body = {"model": model, "input": text, "background": True, "metadata": metadata, **options}
    return stack.api("POST", "/responses", json=body)


def wait(stack, response_id: str, *statuses: str, timeout: float = 20) -> dict:
    import time

    deadline = time.monotonic() + timeout
    while True:
        current = stack.api("GET", f"/responses/{response_id}")
        if current["status"] in statuses:
            return current
        assert time.monotonic() < deadline, f"{response_id} is {current['status']}"
        time.sleep(0.1)


def status_badge(page, response_id: str):
    return page.locator(f"[id='response-status-{response_id}'] .badge")


def seen(page) -> list[str]:
    assert page.evaluate("window.e2eSameDocument") is True, "the page was reloaded"
    return page.evaluate("window.e2eStatuses")


def test_a_background_response_goes_from_queued_to_completed_on_screen_without_a_reload(page, stack):
    # Queued for 3 real seconds, then an answer written over about 3 s.
    response = create(
        stack, "sandbox-answer", "Explain the sandbox.", metadata={"sandbox_queued_seconds": "3"}
    )
    page.goto(f"/responses/{response['id']}/")
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    page.evaluate(WATCH_STATUS, response["id"])
    expect(status_badge(page, response["id"])).to_have_text("queued")
    expect(page.locator(f"[id='output-list-{response['id']}']")).to_contain_text("No output yet.")

    expect(status_badge(page, response["id"])).to_have_text("completed", timeout=20_000)

    statuses = seen(page)
    assert statuses[0] == "queued" and statuses[-1] == "completed" and "in progress" in statuses, statuses
    items = page.locator(f"[id='output-list-{response['id']}'] > li.step")
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("Here is what I found about Explain the sandbox.")
    expect(page.locator(f"[id='response-header-{response['id']}']")).to_contain_text("tokens")


def test_an_operator_cancels_a_background_response_with_a_reason(page, stack):
    response = create(stack, "sandbox-slow", "Research the tides.")
    page.goto(f"/responses/{response['id']}/")
    expect(status_badge(page, response["id"])).to_have_text(re.compile("queued|in progress"))
    page.get_by_role("link", name="Cancel response…").click()

    expect(page.locator("h1")).to_have_text("Cancel this response?")
    reason = "Searching in circles; stopping it to retry with a narrower question."
    page.get_by_label("Reason (required)").fill(reason)
    page.get_by_role("button", name="Cancel the response").click()

    expect(page).to_have_url(re.compile(re.escape(f"/responses/{response['id']}/") + "$"))
    expect(page.locator(".messages")).to_contain_text("Cancel sent: the response is cancelled")
    expect(status_badge(page, response["id"])).to_have_text("cancelled")
    expect(page.get_by_role("link", name="Cancel response…")).to_have_count(0)
    assert stack.api("GET", f"/responses/{response['id']}")["status"] == "cancelled"
    audit = page.locator("aside table")
    expect(audit).to_contain_text(re.compile("cancel response", re.IGNORECASE))
    expect(audit).to_contain_text(reason)
    expect(audit.locator(".badge")).to_have_text("succeeded")


def test_pending_function_calls_are_answered_from_the_inbox_and_the_follow_up_completes_live(page, stack):
    conversation = stack.api("POST", "/conversations", json={"metadata": {"title": "Weather desk"}})
    asking = create(stack, "sandbox-functions", "Weather and time in Paris?", conversation=conversation["id"])
    wait(stack, asking["id"], "completed")
    # The operator opens the conversation (the dashboard learns its responses), then the inbox.
    page.goto(f"/conversations/{conversation['id']}/")
    expect(page.locator(f"[id='response-{asking['id']}']")).to_contain_text("2 function calls")
    page.get_by_role("link", name="Waiting for a person").click()

    row = page.locator(f"[id='waiting-{asking['id']}']")
    expect(row).to_contain_text("get_weather")
    expect(row).to_contain_text("get_time")
    row.get_by_role("link", name="Answer…").click()

    expect(page.locator("h1")).to_have_text("Answer this response")
    page.get_by_label("Output of get_weather").fill('{"sky": "clear", "temperature_c": 21}')
    page.get_by_label("Output of get_time").fill('{"local_time": "14:05"}')
    page.get_by_label("Each output must be valid JSON").check()
    page.get_by_role("button", name="Send the answers").click()

    expect(page).to_have_url(re.compile(r"/responses/resp_\w+/$"))
    follow_up = page.url.rstrip("/").rsplit("/", 1)[-1]
    assert follow_up != asking["id"]
    expect(page.locator(".messages")).to_contain_text(f"Answered: {follow_up} carries the answers")
    page.evaluate(WATCH_STATUS, follow_up)
    expect(status_badge(page, follow_up)).to_have_text("completed", timeout=20_000)
    assert seen(page)[-1] == "completed"
    answer = page.locator(f"[id='output-list-{follow_up}'] > li.step").last
    expect(answer).to_contain_text('get_weather returned: {"sky": "clear", "temperature_c": 21}')
    expect(answer).to_contain_text('get_time returned: {"local_time": "14:05"}')

    page.goto("/inbox/")
    expect(page.locator(f"[id='waiting-{asking['id']}']")).to_have_count(0)


def test_an_mcp_approval_is_granted_and_the_tool_call_follows_live(page, stack):
    conversation = stack.api("POST", "/conversations", json={})
    asking = create(stack, "sandbox-mcp", "What is the refund policy?", conversation=conversation["id"])
    wait(stack, asking["id"], "completed")
    page.goto(f"/responses/{asking['id']}/")
    expect(page.locator(f"[id='asks-{asking['id']}']")).to_contain_text("Waiting for a person")
    page.goto("/inbox/")
    row = page.locator(f"[id='waiting-{asking['id']}']")
    expect(row).to_contain_text("docs/search_docs")
    row.get_by_role("link", name="Review…").click()

    page.get_by_label("Approve").check()
    page.get_by_role("button", name="Send the answers").click()

    expect(page).to_have_url(re.compile(r"/responses/resp_\w+/$"))
    follow_up = page.url.rstrip("/").rsplit("/", 1)[-1]
    expect(status_badge(page, follow_up)).to_have_text("completed", timeout=20_000)
    items = page.locator(f"[id='output-list-{follow_up}'] > li.step")
    expect(items).to_have_count(2)
    expect(items.first).to_contain_text("MCP call")
    expect(items.first).to_contain_text("Items may be returned within 30 days.")
    expect(items.last).to_contain_text("30 days")
    approval = stack.api("GET", f"/conversations/{conversation['id']}/items", params={"order": "asc"})["data"]
    assert [i["approve"] for i in approval if i["type"] == "mcp_approval_response"] == [True]
