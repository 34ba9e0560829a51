"""The Content-Security-Policy in Chromium: every kind of page, its htmx partials, the live socket and an
action form work under it, and the browser reports no violation (no inline script or style anywhere)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

# Collected in every page of the context before any of its own scripts run.
LISTEN = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__violations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${where}`);
}, true);
"""
ADMIN = ("ada", "ada-e2e-password-1234")


def violations(page: Page) -> list[str]:
    return page.evaluate("window.__violations")


def visit(page: Page, path: str, status: int = 200) -> None:
    """Open a page and let its htmx partials and scripts settle."""
    response = page.goto(path)
    assert response is not None and response.status == status, (path, response and response.status)
    policy = response.headers["content-security-policy"]
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, policy
    page.wait_for_load_state("networkidle")


@pytest.fixture
def watched(open_page):
    """A signed-in page that records CSP violations (and, through `console`, any console error)."""

    def open_(user: str | None = "operator") -> Page:
        page = open_page(user)
        page.context.add_init_script(LISTEN)
        return page

    return open_


def test_every_kind_of_page_loads_its_partials_and_socket_with_no_csp_violation(
    watched, stack, demo_thread, long_run, console
):
    functions, answer = demo_thread
    page = watched()

    visit(page, "/")
    expect(page.locator("#thread-list")).to_be_visible()
    page.get_by_label("Latest run status").select_option("completed")  # an htmx swap of the list
    expect(page).to_have_url(re.compile(r"status=completed"))

    visit(page, "/inbox/")
    visit(page, functions.thread_path)
    expect(page.locator("#timeline .tl-run").first).to_be_visible()  # the timeline partial
    expect(page.locator("#live-state")).to_have_text("live")
    page.locator(f"[id='run-{functions.run_id}'] details summary").click()  # its steps, by htmx
    expect(page.locator(f"[id='steps-{functions.run_id}'] li.step").first).to_be_visible()

    visit(page, long_run.path)
    expect(page.locator(f"[id='step-list-{long_run.run_id}'] li.step").first).to_be_visible()
    expect(page.locator(f"[id='waterfall-{long_run.run_id}'] .wf-bar").first).to_be_visible()
    expect(page.locator("#live-state")).to_have_text("live")
    bar = page.locator(f"[id='waterfall-{long_run.run_id}'] .wf-bar").first
    assert bar.evaluate("(el) => el.style.getPropertyValue('--width')") != ""  # laid out by script

    code = stack.make_run("code", speed=50, message="Plot it.")
    stack.wait_for(code, "completed")
    visit(page, code.path)
    images = page.locator("img.code-image")  # served through the file proxy
    expect(images).to_have_count(2)
    for image in images.all():
        image.scroll_into_view_if_needed()
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle())

    step_id = stack.steps(answer)[0]["id"]
    visit(page, f"{answer.path}steps/{step_id}/")
    visit(page, f"{answer.path}metadata/")
    visit(page, f"{functions.thread_path}runs/new/")
    visit(page, "/new/")
    console.allow(r"status of 404 .*/threads/thread_doesnotexist/", "the error page is the point")
    visit(page, "/threads/thread_doesnotexist/", 404)  # an upstream error page
    assert page.evaluate("document.documentElement.dataset.theme") == "light"  # theme.js ran

    assert violations(page) == []


def test_an_action_form_submits_and_lands_on_a_live_run_with_no_csp_violation(watched, stack, demo_thread):
    _, answer = demo_thread
    page = watched()
    visit(page, "/new/")

    page.get_by_label("Assistant").select_option(answer.assistant_id)
    page.get_by_label("Message").fill("Under a strict policy, please.")
    page.get_by_role("button", name="Create and run").click()

    expect(page).to_have_url(re.compile(r"/threads/thread_\w+/runs/run_\w+/$"))
    expect(page.locator("#live-state")).to_have_text("live")
    expect(page.locator("[id^='run-status-'] .badge")).to_have_text("completed", timeout=20_000)
    assert violations(page) == []


def test_the_login_page_and_the_admin_work_under_the_policy(watched, stack, console):
    console.allow(
        r"status of 404 .*/favicon\.ico", "the Django admin names no icon, so Chromium asks for one"
    )
    stack.dashboard.manage(
        "shell",
        "-v0",
        "-c",
        "from django.contrib.auth.models import User; "
        f"User.objects.filter(username={ADMIN[0]!r}).exists() or "
        f"User.objects.create_superuser({ADMIN[0]!r}, password={ADMIN[1]!r})",
    )
    page = watched(user=None)
    visit(page, "/accounts/login/")
    page.get_by_label("Username").fill(ADMIN[0])
    page.get_by_label("Password").fill(ADMIN[1])
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(stack.url + "/")

    for path in ("/admin/", "/admin/runs_ui/auditrecord/", "/admin/runs_ui/connection/add/"):
        visit(page, path)
    assert violations(page) == []
