"""Fixtures for the browser tests: the product as real processes, Debian's Chromium driven by Playwright.

- `stack` (session): a sandbox API process and the dashboard under daphne, each on its own database
  (temporary SQLite, or fresh PostgreSQL databases when DATABASE_URL is PostgreSQL; Redis when REDIS_URL
  is set), with an operator and a viewer who log in through the real login form.
- `open_page(user=…, **context_options)`: a new browser context signed in as that user, and a page in it
  whose console errors fail the test (`console.allow(pattern, why)` for the expected ones).
- `page`: `open_page()` for the operator.
- `sandbox`-side helpers on `stack`: `make_run`, `wait_for`, `submit_outputs`, `steps`.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect, sync_playwright

from tests.e2e.stack import OPERATOR, VIEWER, Dashboard, running_dashboard
from tests.sandbox_server import SandboxServer, running_sandbox

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
USERS = {"operator": OPERATOR, "viewer": VIEWER}
#: Expectations wait this long by default: live updates arrive well within it.
EXPECT_TIMEOUT_MS = 15_000


@dataclass
class SandboxRun:
    assistant_id: str
    thread_id: str
    run_id: str

    @property
    def path(self) -> str:
        return f"/threads/{self.thread_id}/runs/{self.run_id}/"

    @property
    def thread_path(self) -> str:
        return f"/threads/{self.thread_id}/"


@dataclass
class Stack:
    sandbox: SandboxServer
    dashboard: Dashboard
    _assistants: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.dashboard.url

    def api(self, method: str, path: str, **kwargs) -> dict:
        return self.sandbox.api(method, path, **kwargs)

    def assistant(self, script: str) -> str:
        if script not in self._assistants:
            body = {"model": "gpt-4o", "name": f"Demo {script}", "metadata": {"sandbox_script": script}}
            self._assistants[script] = self.api("POST", "/assistants", json=body)["id"]
        return self._assistants[script]

    def make_run(
        self,
        script: str = "answer",
        *,
        speed: float = 10,
        message: str = "Hello",
        thread_id: str = "",
        **knobs,
    ) -> SandboxRun:
        """A new thread and run (or a new run on `thread_id`) through the sandbox API."""
        assistant_id = self.assistant(script)
        metadata = {"sandbox_speed": str(speed), **{k: str(v) for k, v in knobs.items()}}
        if thread_id:
            body = {
                "assistant_id": assistant_id,
                "metadata": metadata,
                "additional_messages": [{"role": "user", "content": message}],
            }
            run = self.api("POST", f"/threads/{thread_id}/runs", json=body)
        else:
            body = {
                "assistant_id": assistant_id,
                "thread": {"messages": [{"role": "user", "content": message}]},
                "metadata": metadata,
            }
            run = self.api("POST", "/threads/runs", json=body)
        return SandboxRun(assistant_id, run["thread_id"], run["id"])

    def run(self, run: SandboxRun) -> dict:
        return self.api("GET", f"/threads/{run.thread_id}/runs/{run.run_id}")

    def wait_for(self, run: SandboxRun, *statuses: str, timeout: float = 20) -> dict:
        return self.sandbox.wait_run(run.thread_id, run.run_id, *statuses, timeout=timeout)

    def submit_outputs(self, run: SandboxRun, by_name: dict | None = None) -> None:
        """Answers a `functions` run's pending calls through the API: `by_name[function name]` as JSON,
        else {"ok": "<function name>"}."""
        calls = self.wait_for(run, "requires_action")["required_action"]["submit_tool_outputs"]["tool_calls"]
        by_name = by_name or {}
        outputs = [
            {
                "tool_call_id": c["id"],
                "output": json.dumps(by_name.get(c["function"]["name"], {"ok": c["function"]["name"]})),
            }
            for c in calls
        ]
        path = f"/threads/{run.thread_id}/runs/{run.run_id}/submit_tool_outputs"
        self.api("POST", path, json={"tool_outputs": outputs})

    def steps(self, run: SandboxRun) -> list[dict]:
        out, after = [], None
        while True:
            query = {"limit": 100, "order": "asc", **({"after": after} if after else {})}
            page = self.api("GET", f"/threads/{run.thread_id}/runs/{run.run_id}/steps", params=query)
            out += page["data"]
            if not page["has_more"]:
                return out
            after = page["last_id"]


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    with running_sandbox(speed=10) as sandbox, running_dashboard(sandbox) as dashboard:
        yield Stack(sandbox, dashboard)


# --- Playwright ----------------------------------------------------------------------------------
# The sync API marks its own event loop as running in this thread after every call, so no asyncio code
# (pytest-asyncio's fixtures) may run while it is alive: it lives for the e2e package only, and the
# async autouse fixtures of tests/fixtures.py, which have nothing to do here, are replaced below.


@pytest.fixture(autouse=True)
def _stop_watchers():
    """No watcher runs in the test process: the dashboard's watchers run in its daphne process."""
    yield


@pytest.fixture(autouse=True)
def _close_db_connections():
    """The test process opens no database connection: the dashboard has its own database."""
    yield


@pytest.fixture(autouse=True)
def _allow_sync_django(monkeypatch):
    # Playwright's sync API leaves its event loop marked as running; Django would then refuse any ORM
    # call from the test (SynchronousOnlyOperation). Set for browser tests only, never globally.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Chromium is not installed (apt-get install chromium); browsers are never downloaded")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="package")
def signed_in(browser: Browser, stack: Stack) -> dict[str, dict]:
    """Each user logs in once through the login form; later contexts reuse the session cookie."""
    states = {}
    for role, (username, password) in USERS.items():
        context = browser.new_context()
        page = context.new_page()
        page.goto(stack.url + "/")
        assert "/accounts/login/" in page.url, "anonymous visitors are sent to the login form"
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(stack.url + "/")
        assert f"{username} · {role}" in page.locator(".topbar .me").inner_text()
        states[role] = context.storage_state()
        context.close()
    return states


class ConsoleErrors:
    """Console errors and uncaught exceptions of a test's pages; unexpected ones fail the test."""

    def __init__(self):
        self.errors: list[str] = []
        self.allowed: list[tuple[str, str]] = []

    def allow(self, pattern: str, why: str) -> None:
        """Expect errors matching `pattern` in this test; `why` says why they are harmless."""
        assert why, "say why the error is harmless"
        self.allowed.append((pattern, why))

    def watch(self, page: Page) -> None:
        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                self.errors.append(f"console: {message.text} ({message.location.get('url', '')})")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(re.search(p, e) for p, _ in self.allowed)]


@pytest.fixture
def console() -> Iterator[ConsoleErrors]:
    errors = ConsoleErrors()
    yield errors
    unexpected = errors.unexpected()
    assert not unexpected, "JavaScript errors on the page:\n" + "\n".join(unexpected)


@pytest.fixture
def open_page(browser, signed_in, stack, console) -> Iterator[Callable[..., Page]]:
    """open_page(user="operator", **new_context_options) → a page signed in as that user."""
    contexts: list[BrowserContext] = []

    def open_(user: str | None = "operator", **options) -> Page:
        options.setdefault("viewport", {"width": 1400, "height": 900})
        options.setdefault("locale", "en-US")
        options.setdefault("color_scheme", "light")
        context = browser.new_context(
            base_url=stack.url, storage_state=signed_in[user] if user else None, **options
        )
        context.set_default_timeout(EXPECT_TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        console.watch(page)
        return page

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture
def page(open_page) -> Page:
    return open_page()


@pytest.fixture(autouse=True)
def _expect_timeout():
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)


# --- demo data shared by several tests (created once, through the sandbox API) ----------------------


@pytest.fixture(scope="session")
def demo_thread(stack: Stack) -> tuple[SandboxRun, SandboxRun]:
    """A thread with two finished runs: parallel function calls (answered through the API), then an answer."""
    functions = stack.make_run("functions", speed=50, message="What's the weather and the time?")
    stack.submit_outputs(functions)
    stack.wait_for(functions, "completed")
    answer = stack.make_run(
        "answer", speed=50, message="Thanks! Summarise it.", thread_id=functions.thread_id
    )
    stack.wait_for(answer, "completed")
    return functions, answer


LONG_STEPS = 250


@pytest.fixture(scope="session")
def long_run(stack: Stack) -> SandboxRun:
    """A finished run with 250 steps of all four kinds (three upstream pages of 100)."""
    run = stack.make_run("long", speed=100, message="Do many small things.", sandbox_steps=LONG_STEPS)
    stack.wait_for(run, "completed")
    return run
