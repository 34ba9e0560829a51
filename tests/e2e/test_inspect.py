"""Issue 3 in a browser: an engineer reads a thread, its runs and steps, pages, links, exports."""

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import LONG_STEPS

pytestmark = pytest.mark.browser


def step_list(page, run_id: str):
    return page.locator(f"[id='step-list-{run_id}'] > li.step")


def test_an_engineer_opens_a_demo_thread_expands_a_run_and_reads_its_tool_calls(page, stack, demo_thread):
    functions, answer = demo_thread
    page.goto(functions.thread_path)
    expect(page.locator("h1")).to_contain_text(functions.thread_id)
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("What's the weather and the time?")
    expect(timeline).to_contain_text("Thanks! Summarise it.")
    row = page.locator(f"[id='run-{functions.run_id}']")
    expect(row.locator(".tl-head .badge")).to_have_text("completed")
    expect(page.locator(f"[id='run-{answer.run_id}'] .tl-head .badge")).to_have_text("completed")

    # Steps are fetched only when the run is expanded.
    steps = row.locator("ol.steps > li.step")
    expect(steps).to_have_count(0)
    expect(row.locator("ol.steps")).to_contain_text("Loading steps…")
    with page.expect_response(lambda r: "part=steps" in r.url and functions.run_id in r.url):
        row.locator("summary", has_text="Steps").click()
    expect(steps).to_have_count(2)

    tool_step, message_step = steps.nth(0), steps.nth(1)
    expect(tool_step.locator(".step-head")).to_contain_text("Tool calls")
    expect(tool_step.locator(".step-head")).to_contain_text("get_weather, get_time")
    upstream_calls = stack.steps(functions)[0]["step_details"]["tool_calls"]
    for call in upstream_calls:
        name = call["function"]["name"]
        shown = tool_step.locator(f"[id='call-{call['id']}']")
        expect(shown.locator(".name")).to_have_text(name)
        arguments, output = shown.locator("pre").nth(0), shown.locator("pre").nth(1)
        # Arguments and output as pretty JSON (indented, one key per line), not the raw wire string.
        pretty = json.dumps(json.loads(call["function"]["arguments"]), indent=2, ensure_ascii=False)
        assert arguments.text_content() == pretty
        assert output.text_content() == json.dumps({"ok": name}, indent=2)
    expect(message_step).to_contain_text("I called two tools")
    expect(message_step.locator(".message-body code").first).to_have_text("get_weather")

    # Each step id links to the step's own page.
    step_id = message_step.get_attribute("id")
    message_step.get_by_role("link", name=step_id).click()
    expect(page).to_have_url(re.compile(re.escape(f"{functions.path}steps/{step_id}/") + "$"))
    expect(page.locator("h1")).to_contain_text(step_id)
    expect(page.locator("li.step")).to_contain_text("I called two tools")


def test_a_thread_timeline_reads_in_the_order_things_happened_within_one_second(page, stack):
    # Upstream times are whole seconds: a question, the run it starts and the run's answer usually share
    # one. (A quick run; made again in the rare case it straddles a second.)
    for _ in range(5):
        run = stack.make_run("answer", speed=200, message="Quick question.")
        stack.wait_for(run, "completed")
        messages = stack.api("GET", f"/threads/{run.thread_id}/messages", params={"order": "asc"})["data"]
        if len({stack.run(run)["created_at"], *(m["created_at"] for m in messages)}) == 1:
            break
    else:
        pytest.fail("could not make a run within one second")
    question, answer = (m["id"] for m in messages)

    page.goto(f"{run.thread_path}?order=asc")
    items = page.locator("#timeline > li.tl-item")
    expect(items).to_have_count(3)
    assert items.evaluate_all("items => items.map((i) => i.id)") == [question, f"run-{run.run_id}", answer]

    page.get_by_role("link", name="Newest first").click()
    expect(items.first).to_have_attribute("id", answer)
    assert items.evaluate_all("items => items.map((i) => i.id)") == [answer, f"run-{run.run_id}", question]


def test_a_step_deep_link_has_its_own_page_and_an_anchor_on_the_run_page(page, stack, long_run):
    step = stack.steps(long_run)[60]
    page.goto(f"{long_run.path}steps/{step['id']}/")
    expect(page.locator("h1")).to_contain_text(step["id"])
    expect(page.locator("li.step")).to_have_count(1)

    page.get_by_role("link", name="See it among the run's steps").click()
    # The run page, opened at the step (steps 61+ are on the upstream's first page after the cursor).
    expect(page).to_have_url(re.compile(re.escape(long_run.path) + r"(\?[^#]*)?#" + step["id"] + "$"))
    # The steps load after the page: the step is shown once it arrives, not left off-screen.
    target = page.locator(f"[id='{step['id']}']")
    expect(target).to_be_visible()
    expect(target).to_be_in_viewport()
    expect(target).to_be_focused()


def test_the_go_to_box_lands_on_the_page_for_a_pasted_id_or_url(page, stack, demo_thread):
    functions, answer = demo_thread
    goto = page.locator("#goto")

    page.goto("/")
    page.keyboard.press("/")
    expect(goto).to_be_focused()
    page.keyboard.type(functions.thread_id)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(re.escape(functions.thread_path) + "$"))
    expect(page.locator(f"[id='run-{answer.run_id}']")).to_be_visible()

    # A run id alone: the dashboard knows its thread since the thread was shown.
    goto.fill(answer.run_id)
    goto.press("Enter")
    expect(page).to_have_url(re.compile(re.escape(answer.path) + "$"))
    expect(step_list(page, answer.run_id)).to_have_count(1)

    # A step id alone, once its run's steps were shown.
    step_id = step_list(page, answer.run_id).first.get_attribute("id")
    goto.fill(step_id)
    goto.press("Enter")
    expect(page).to_have_url(re.compile(re.escape(f"{answer.path}steps/{step_id}/") + "$"))

    # An upstream API URL, as pasted from a log line.
    step = stack.steps(functions)[0]
    goto.fill(
        f"{stack.sandbox.base_url}/threads/{functions.thread_id}/runs/{functions.run_id}/steps/{step['id']}"
    )
    goto.press("Enter")
    expect(page).to_have_url(re.compile(re.escape(f"{functions.path}steps/{step['id']}/") + "$"))
    expect(page.locator("h1")).to_contain_text(step["id"])

    # A dashboard URL from a colleague.
    goto.fill(stack.url + functions.path)
    goto.press("Enter")
    expect(page).to_have_url(re.compile(re.escape(functions.path) + "$"))

    # Something it cannot place: back home, saying why.
    goto.fill("run_NoSuchRunAnywhere0000000")
    goto.press("Enter")
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator(".messages")).to_contain_text("Nothing to open for “run_NoSuchRunAnywhere0000000”")


def test_paging_through_a_run_with_250_steps_shows_every_step_once(page, stack, long_run):
    page.goto(long_run.path)
    steps = step_list(page, long_run.run_id)
    loader = page.locator(f"[id='step-list-{long_run.run_id}'] > li.loader")
    expect(steps).to_have_count(100)
    expect(loader).to_contain_text("Load more steps")

    # Scrolling to the end of the list loads the next page (as a person reading on would).
    for _ in range(LONG_STEPS // 100 + 2):
        if loader.count() == 0:
            break
        shown = steps.count()
        loader.last.scroll_into_view_if_needed()
        page.wait_for_function(
            "([sel, n]) => document.querySelectorAll(sel).length > n",
            arg=[f"[id='step-list-{long_run.run_id}'] > li.step", shown],
        )
    expect(loader).to_have_count(0)
    expect(steps).to_have_count(LONG_STEPS)
    shown_ids = steps.evaluate_all("items => items.map((item) => item.id)")
    assert shown_ids == [s["id"] for s in stack.steps(long_run)], "every step once, in order"
    bars = page.locator(f"[id='waterfall-{long_run.run_id}'] .wf-row")
    expect(bars).to_have_count(LONG_STEPS)
    assert len(set(bars.evaluate_all("rows => rows.map((row) => row.id)"))) == LONG_STEPS


def test_export_downloads_the_whole_thread_and_a_whole_run_as_json(page, stack, demo_thread, long_run):
    functions, answer = demo_thread
    page.goto(functions.thread_path)
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export JSON").click()
    download = download_info.value
    assert download.suggested_filename == f"{functions.thread_id}.json"
    exported = json.loads(Path(download.path()).read_text())
    assert exported["thread"]["id"] == functions.thread_id
    assert [r["run"]["id"] for r in exported["runs"]] == [functions.run_id, answer.run_id]
    for run, entry in zip((functions, answer), exported["runs"], strict=True):
        assert [s["id"] for s in entry["steps"]] == [s["id"] for s in stack.steps(run)]
    assert [m["role"] for m in exported["messages"]] == ["user", "assistant", "user", "assistant"]

    page.goto(long_run.path)
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export JSON").click()
    exported = json.loads(Path(download_info.value.path()).read_text())
    assert exported["run"]["id"] == long_run.run_id
    assert [s["id"] for s in exported["steps"]] == [s["id"] for s in stack.steps(long_run)]
    assert len(exported["steps"]) == LONG_STEPS


def test_j_and_k_move_the_focus_between_steps_and_o_opens_one(page, demo_thread):
    functions, _ = demo_thread
    page.goto(functions.path)
    steps = step_list(page, functions.run_id)
    expect(steps).to_have_count(2)
    page.keyboard.press("j")
    expect(steps.nth(0)).to_be_focused()
    page.keyboard.press("j")
    expect(steps.nth(1)).to_be_focused()
    page.keyboard.press("j")
    expect(steps.nth(1)).to_be_focused()
    page.keyboard.press("k")
    expect(steps.nth(0)).to_be_focused()
    raw = steps.nth(0).locator("details.raw")
    expect(raw).not_to_have_attribute("open", "")
    page.keyboard.press("o")
    expect(raw).to_have_attribute("open", "")
    expect(raw.locator("pre")).to_contain_text('"type": "tool_calls"')


def test_the_theme_toggle_switches_to_dark_mode_and_remembers_it(page, demo_thread):
    functions, _ = demo_thread
    page.goto(functions.path)
    html = page.locator("html")
    expect(html).to_have_attribute("data-theme", "light")
    light = page.evaluate("getComputedStyle(document.body).backgroundColor")

    page.get_by_title("Switch light/dark").click()
    expect(html).to_have_attribute("data-theme", "dark")
    dark = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert luminance(dark) < 0.1 < luminance(light), (light, dark)

    page.reload()
    expect(html).to_have_attribute("data-theme", "dark")
    page.get_by_title("Switch light/dark").click()
    expect(html).to_have_attribute("data-theme", "light")


def luminance(css_rgb: str) -> float:
    r, g, b = (int(v) / 255 for v in re.findall(r"\d+", css_rgb)[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_times_are_shown_in_the_viewers_timezone_with_utc_on_hover(open_page, stack, demo_thread):
    functions, _ = demo_thread
    page = open_page(timezone_id="Asia/Tokyo")
    page.goto(functions.path)
    created = page.locator("dl.grid > div", has=page.locator("dt", has_text=re.compile("^Created$")))
    shown = created.locator("time")
    utc = datetime.fromtimestamp(stack.run(functions)["created_at"], UTC)
    tokyo = utc.astimezone(ZoneInfo("Asia/Tokyo"))
    expect(shown).to_contain_text(f"{tokyo:%b} {tokyo.day}, {tokyo.year}, {tokyo:%I:%M:%S %p}")
    expect(shown).to_have_attribute("title", f"{utc:%Y-%m-%d %H:%M:%S} UTC")
