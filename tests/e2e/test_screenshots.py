"""Screenshots of the main pages for the README.

Taken on every run (the pages must get there), but saved over docs/screenshots/ only by
`make screenshots`, so running the tests never changes tracked files.
"""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

README_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WIDTH = 1400
#: Tall pages are cut here: the top of a page is what a README reader needs.
MAX_HEIGHT = 1800
MAX_BYTES = 400_000


@pytest.fixture
def screenshots(tmp_path) -> Path:
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        README_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return README_SCREENSHOTS
    return tmp_path


def shoot(page, folder: Path, name: str) -> Path:
    page.mouse.move(0, 0)  # no hover effects
    page.evaluate("document.activeElement?.blur()")
    height = min(page.evaluate("document.documentElement.scrollHeight"), MAX_HEIGHT)
    path = folder / name
    page.screenshot(
        path=path,
        full_page=True,
        clip={"x": 0, "y": 0, "width": WIDTH, "height": height},
        animations="disabled",
        caret="hide",
    )
    assert path.stat().st_size < MAX_BYTES, f"{name} is {path.stat().st_size:,} bytes"
    return path


def test_the_readme_screenshots_show_the_main_pages(open_page, stack, screenshots):
    # At speed 1 runs take seconds, as real ones do: timelines in order, waterfalls with visible bars.
    code = stack.make_run("code", speed=1, message="Chart the quarterly sales, please.")
    story = stack.make_run(
        "functions", speed=1, message="What's the weather like, and what time is it there?"
    )
    waiting = stack.make_run(
        "functions", speed=10, sandbox_expires_seconds=6000, message="What's the weather in Paris right now?"
    )
    stack.wait_for(waiting, "requires_action")
    page = open_page(viewport={"width": WIDTH, "height": 900})

    page.goto(waiting.path)
    expect(page.locator("form.tool-outputs")).to_be_visible()
    page.get_by_label("Output of get_weather").fill('{"temperature_c": 21, "sky": "clear"}')
    shoot(page, screenshots, "tool-outputs.png")

    stack.submit_outputs(
        story,
        {"get_weather": {"temperature_c": 4, "sky": "light snow"}, "get_time": {"local_time": "09:12"}},
    )
    stack.wait_for(story, "completed")
    page.goto(story.thread_path)
    row = page.locator(f"[id='run-{story.run_id}']")
    row.locator("summary", has_text="Steps").click()
    expect(row.locator("ol.steps > li.step")).to_have_count(2)
    expect(page.locator("#live-state")).to_have_text("live")
    shoot(page, screenshots, "thread.png")

    stack.wait_for(code, "completed")
    page.goto(code.path)
    expect(page.locator(f"[id='step-list-{code.run_id}'] > li.step")).to_have_count(2)
    expect(page.locator(f"[id='waterfall-{code.run_id}'] .wf-row")).to_have_count(2)
    for image in page.locator("img.code-image").all():
        image.evaluate("img => img.decode()")
    shoot(page, screenshots, "run.png")

    page.get_by_title("Switch light/dark").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    shoot(page, screenshots, "run-dark.png")
    page.get_by_title("Switch light/dark").click()

    page.goto("/")
    expect(page.locator("#live-state")).to_have_text("live")
    for run in (code, story, waiting):
        expect(page.locator(f"#thread-rows a[href='{run.thread_path}']")).to_be_visible()
    shoot(page, screenshots, "home.png")
