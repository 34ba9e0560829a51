"""Issue 4 in a browser: runs change on screen as they change upstream, through a socket that can die."""

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.e2e.stack import CuttableProxy

pytestmark = pytest.mark.browser

# Records, in the page, each status the run's header badge shows and the connection state at that
# moment, and marks the document, so a test can tell that it was never reloaded.
WATCH_STATUS = """(runId) => {
  window.e2eSameDocument = true;
  window.e2eStatuses = [];
  const note = () => {
    const badge = document.querySelector(`[id="run-status-${runId}"] .badge`);
    const state = document.getElementById("live-state")?.dataset.state;
    const status = badge?.textContent.trim();
    const last = window.e2eStatuses[window.e2eStatuses.length - 1];
    if (status && (!last || last.status !== status)) window.e2eStatuses.push({ status, state });
  };
  note();
  new MutationObserver(note).observe(document.body, { subtree: true, childList: true, characterData: true });
}"""


def status_badge(page, run):
    return page.locator(f"[id='run-status-{run.run_id}'] .badge")


def statuses(page) -> list[dict]:
    assert page.evaluate("window.e2eSameDocument") is True, "the page was reloaded"
    return page.evaluate("window.e2eStatuses")


def test_a_run_goes_from_queued_to_completed_on_screen_without_a_reload(page, stack):
    # Queued for 3 real seconds, then an answer written over about 1.5 s.
    run = stack.make_run("answer", speed=2, sandbox_queued_seconds=6, message="Explain the sandbox.")
    page.goto(run.path)
    expect(page.locator("#live-state")).to_have_text("live")
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    page.evaluate(WATCH_STATUS, run.run_id)
    expect(status_badge(page, run)).to_have_text("queued")
    expect(page.locator(f"[id='step-list-{run.run_id}']")).to_contain_text("No steps yet.")

    expect(status_badge(page, run)).to_have_text("completed", timeout=20_000)
    seen = [s["status"] for s in statuses(page)]
    assert seen[0] == "queued" and seen[-1] == "completed", seen
    steps = page.locator(f"[id='step-list-{run.run_id}'] > li.step")
    expect(steps).to_have_count(1)
    expect(steps.first).to_contain_text("Here is what I found about Explain the sandbox.")
    expect(steps.first.locator(".badge")).to_have_text("completed")
    header = page.locator(f"[id='run-header-{run.run_id}']")
    expect(header).to_contain_text("tokens")  # usage arrives with the final state
    expect(page.locator(f"[id='waterfall-{run.run_id}'] .wf-row")).to_have_count(1)


def test_new_steps_appear_live_on_the_run_page(page, stack):
    run = stack.make_run("code", speed=2, sandbox_queued_seconds=2, message="Chart the sales.")
    page.goto(run.path)
    expect(page.locator("#live-state")).to_have_text("live")
    page.evaluate(WATCH_STATUS, run.run_id)
    steps = page.locator(f"[id='step-list-{run.run_id}'] > li.step")
    expect(steps).to_have_count(0)

    expect(steps).to_have_count(2, timeout=20_000)
    code, message = steps.nth(0), steps.nth(1)
    expect(code).to_contain_text("code interpreter")
    expect(code.locator(".tool-call pre", has_text="60 Q4")).to_have_text("60 Q4")
    expect(code.locator("img.code-image")).to_be_visible()
    expect(message).to_contain_text("Total sales were 60")
    expect(status_badge(page, run)).to_have_text("completed")
    assert statuses(page)[-1]["status"] == "completed"
    expect(page.locator(f"[id='waterfall-{run.run_id}'] .wf-row")).to_have_count(2)


def test_a_run_that_ended_while_nobody_watched_opens_in_its_final_state(page, stack):
    run = stack.make_run("code", speed=2, message="Chart the sales once more.")
    # Someone looks at the run while it works (its watcher saves the live state), then leaves.
    page.goto(run.path)
    expect(page.locator("#live-state")).to_have_text("live")
    expect(status_badge(page, run)).to_have_text("in progress")
    page.wait_for_timeout(500)
    page.goto("/")
    assert stack.run(run)["status"] == "in_progress", "the run is still working when its viewer leaves"
    stack.wait_for(run, "completed")

    page.goto(run.path)
    expect(page.locator("#live-state")).to_have_text("live")
    page.evaluate(WATCH_STATUS, run.run_id)
    steps = page.locator(f"[id='step-list-{run.run_id}'] > li.step")
    expect(steps).to_have_count(2)
    page.wait_for_timeout(1_000)  # whatever the socket sends on connect has arrived by now
    expect(status_badge(page, run)).to_have_text("completed")
    assert [s["status"] for s in statuses(page)] == ["completed"], "the page never went back in time"
    expect(steps.first.locator(".badge")).to_have_text("completed")
    rows = page.locator(f"[id='waterfall-{run.run_id}'] .wf-row")
    expect(rows).to_have_count(2)


SHOWN_IDS = """(runId) => [
  Array.from(document.querySelectorAll(`[id="step-list-${runId}"] > li.step`), (item) => item.id),
  Array.from(document.querySelectorAll(`[id="waterfall-${runId}"] .wf-row`), (row) => row.id),
]"""


def test_a_second_viewer_of_a_working_run_sees_each_step_and_bar_once(open_page, stack):
    run = stack.make_run("code", speed=1, sandbox_queued_seconds=0.5, message="Chart it for two people.")
    first = open_page()
    first.goto(run.path)
    # The run is working: a step is on screen (the next may already be too; steps follow within seconds).
    expect(first.locator(f"[id='step-list-{run.run_id}'] > li.step")).not_to_have_count(0, timeout=20_000)
    # The second page's socket gets the saved live state at once, racing the page's own steps request.
    for _ in range(3):
        second = open_page()
        second.goto(run.path)
        expect(second.locator("#live-state")).to_have_text("live")
        steps = second.locator(f"[id='step-list-{run.run_id}'] > li.step")
        expect(steps).not_to_have_count(0)
        step_ids, row_ids = second.evaluate(SHOWN_IDS, run.run_id)
        assert len(step_ids) == len(set(step_ids)), step_ids
        assert row_ids == [f"wf-{s}" for s in step_ids], (row_ids, step_ids)
        second.context.close()


def test_every_live_page_shows_that_it_is_live(page, demo_thread):
    functions, _ = demo_thread
    for path in ("/", functions.thread_path, functions.path):
        page.goto(path)
        state = page.locator("#live-state")
        expect(state).to_have_text("live")
        expect(state).to_have_attribute("data-state", "live")


@pytest.fixture
def proxy(stack):
    proxy = CuttableProxy(urlsplit(stack.url).port)
    yield proxy
    proxy.close()


def test_a_cut_socket_shows_its_state_falls_back_to_polling_reconnects_and_ends_right(
    page, stack, proxy, console
):
    socket_url = re.escape(f"ws://127.0.0.1:{proxy.port}/ws/")
    console.allow(rf"WebSocket connection to '{socket_url}.*' failed", "the test cuts and refuses the socket")
    # htmx logs the error event of each refused reconnection attempt (as "[object Event]").
    console.allow(
        r"^console: \[object Event\] \(.*/htmx-[\d.]+\.min\.js\)$", "the socket is refused on purpose"
    )
    # Queued for 3 s, then in progress for about 3 s: it changes while its page has no socket.
    run = stack.make_run("answer", speed=1, sandbox_queued_seconds=3, message="Keep going without me.")
    page.goto(proxy.url + run.path)
    state = page.locator("#live-state")
    expect(state).to_have_text("live")
    page.evaluate(WATCH_STATUS, run.run_id)
    expect(status_badge(page, run)).to_have_text("queued")

    proxy.refuse_sockets = True
    proxy.cut()
    expect(state).to_have_attribute("data-state", "polling")
    expect(state).to_have_text("reconnecting — polling")

    # No socket: the page polls, and the run's progress still reaches the screen.
    expect(status_badge(page, run)).not_to_have_text("queued", timeout=20_000)
    changes = statuses(page)
    assert changes[1]["state"] == "polling", changes

    proxy.refuse_sockets = False
    expect(state).to_have_text("live", timeout=30_000)
    expect(status_badge(page, run)).to_have_text("completed")
    expect(page.locator(f"[id='step-list-{run.run_id}'] > li.step")).to_contain_text(
        "Here is what I found about Keep going without me."
    )
    assert statuses(page)[-1]["status"] == "completed"


def test_a_push_for_a_row_the_timeline_has_not_drawn_yet_is_dropped_quietly(page, stack, console):
    """The socket can be faster than the timeline partial: its resync names the active run's row before
    the row exists. Nothing to replace, no console error; the row, once drawn, is current and live."""
    run = stack.make_run("slow", speed=1, message="Keep going for a while.")
    stack.wait_for(run, "in_progress")
    held = []
    page.route(re.compile(r".*[?&]part=timeline.*"), lambda route: held.append(route))

    page.goto(run.thread_path)
    expect(page.locator("#live-state")).to_have_text("live")
    page.wait_for_timeout(2500)  # the resync and a push or two arrive while the rows are held back
    assert held, "the timeline partial was held"
    assert page.locator(f"[id='run-{run.run_id}']").count() == 0

    for route in held:
        route.continue_()
    row = page.locator(f"[id='run-{run.run_id}']")
    expect(row).to_be_visible()
    expect(row.locator(".badge").first).to_have_text("in progress")
    # `console` fails the test at teardown on any JavaScript error (htmx:oobErrorNoTarget among them).
