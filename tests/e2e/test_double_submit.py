"""Clicking "Create and run" twice in Chromium starts one thread and one run, and lands on that run."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

MARK = "dashboard_form"
DOUBLE_CLICK = """(name) => {
  const button = [...document.querySelectorAll("button")].find((b) => b.textContent.trim() === name);
  button.click();
  setTimeout(() => button.click(), 40);
}"""  # runs_ui.reconcile.MARK: the form's token, in the new thread's and run's metadata


def test_a_double_click_on_create_and_run_makes_one_thread_and_one_run(page, stack, demo_thread):
    _, answer = demo_thread
    page.goto("/new/")
    token = page.locator("input[name=form_token]").input_value()
    page.get_by_label("Assistant").select_option(answer.assistant_id)
    page.get_by_label("Message").fill("Once, however often I click.")
    posted = []
    page.on("request", lambda r: posted.append(r.url) if r.method == "POST" else None)

    # Two clicks, the second while the first request is on its way (Playwright's dblclick() lands both in
    # one submission): the browser drops the first request and sends the form again.
    page.evaluate(DOUBLE_CLICK, "Create and run")

    expect(page).to_have_url(re.compile(r"/threads/thread_\w+/runs/run_\w+/$"))
    thread_id, run_id = re.search(r"/threads/(thread_\w+)/runs/(run_\w+)/$", page.url).groups()
    threads = stack.api("GET", "/threads", params={"limit": 100, "order": "desc"})["data"]
    marked = [t["id"] for t in threads if t["metadata"].get(MARK) == token]
    assert marked == [thread_id]
    runs = stack.api("GET", f"/threads/{thread_id}/runs")["data"]
    assert [r["id"] for r in runs] == [run_id]
    expect(page.locator("[id^='run-status-'] .badge")).to_have_text("completed", timeout=20_000)
    assert len(posted) == 2, posted  # the browser did send the form twice
