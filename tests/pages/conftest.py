"""Fixtures for the page tests: sandbox helpers, a thread with many runs, a seeded sandbox, upstream faults.

The sandbox (a real server, over HTTP) is the upstream wherever it can produce what a test is about;
`faults` (respx) answers only the requests a test routes, and passes every other one through to it.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
import respx

from tests.fixtures import SandboxRun
from tests.sandbox_server import SandboxServer, running_sandbox

HX = {"HX-Request": "true"}
HISTORY_RESTORE = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
TERMINAL = ("completed", "failed", "cancelled", "expired", "incomplete")
# Every answer run of the busy thread finishes in milliseconds at this speed.
FAST = 1000


def text(response) -> str:
    return response.content.decode()


def step_ids(html: str) -> list[str]:
    """The steps a page or partial shows, in order (each step is an <li class="step" id=…>)."""
    return re.findall(r'<li class="step" id="(step_[^"]+)"', html)


def timeline_ids(html: str) -> list[str]:
    """Runs and messages a timeline page shows, in order."""
    return re.findall(
        r'<li class="tl-item tl-(?:run[^"]*" id="run-|message[^"]*" id=")((?:run|msg)_[^"]+)"', html
    )


def load_more_url(html: str) -> str:
    """The URL of the "load more" row a page of a list ends with ("" when it is the last page)."""
    match = re.search(r'<li class="loader" hx-get="([^"]+)" hx-trigger="revealed"', html)
    return match.group(1).replace("&amp;", "&") if match else ""


async def downloaded(response) -> dict:
    """A streamed download (an export), read to its end and parsed: it must be one valid JSON document."""
    assert response.streaming, "exports stream"
    body = b"".join([chunk async for chunk in response.streaming_content])
    return json.loads(body)


def assert_full_page(response) -> None:
    assert response.content.lstrip().lower().startswith(b"<!doctype html>"), text(response)[:300]


def assert_fragment(response) -> None:
    body = text(response)
    assert "<html" not in body.lower() and "<!doctype" not in body.lower(), body[:300]


def assert_no_secret(response, secret: str) -> None:
    assert secret.encode() not in response.content
    for name, value in response.headers.items():
        assert secret not in value, name


_URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "poster", "background"}
_DANGEROUS_SCHEMES = ("javascript:", "vbscript:", "data:text/html")
_THEME_SCRIPT = "document.documentElement.dataset.theme"


class _ActiveContent(HTMLParser):
    """Collects everything in a page that a browser would run or load from markup an upstream could add."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._script: str | None = None

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=…>")
            if name in _URL_ATTRIBUTES and value is not None:
                # Browsers ignore whitespace and control characters in a URL's scheme.
                scheme = "".join(c for c in value if c > " ").lower()
                if scheme.startswith(_DANGEROUS_SCHEMES):
                    self.found.append(f"<{tag} {name}={value[:60]!r}>")
        if tag in ("iframe", "object", "embed", "base", "frame"):
            self.found.append(f"<{tag}>")
        if tag == "script":
            src = dict(attrs).get("src") or ""
            if src and not src.startswith("/static/"):
                self.found.append(f"<script src={src[:60]!r}>")
            self._script = "" if not src else None

    def handle_data(self, data):
        if self._script is not None:
            self._script += data

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            if not self._script.strip().startswith(_THEME_SCRIPT):
                self.found.append(f"<script>{self._script[:60]!r}")
            self._script = None


def assert_inert(html: str) -> None:
    """Nothing in the page can run or navigate to script: the page's own scripts only, no event-handler
    attributes, no javascript:/vbscript:/data:text/html URLs, no frames — and no unescaped <script> text."""
    parser = _ActiveContent()
    parser.feed(html)
    parser.close()
    assert parser.found == []
    assert "<script>alert" not in html.lower()


# --- the sandbox ---------------------------------------------------------------------------------


def api_call(server: SandboxServer, method: str, path: str, **kwargs) -> dict:
    return server.api(method, path, **kwargs)


def all_pages(server: SandboxServer, path: str, **params) -> list[dict]:
    items, after = [], None
    while True:
        query = {"limit": 100, "order": "asc", **params, **({"after": after} if after else {})}
        page = api_call(server, "GET", path, params=query)
        items += page["data"]
        if not page["has_more"]:
            return items
        after = page["last_id"]


def wait_terminal(server: SandboxServer, thread_id: str, run_id: str, timeout: float = 20) -> dict:
    return server.wait_run(thread_id, run_id, *TERMINAL, timeout=timeout)


@pytest.fixture
def api(upstream) -> Callable[..., dict]:
    """api("POST", "/threads", json={}) → the sandbox's JSON answer (asserting a 200)."""
    return lambda method, path, **kwargs: api_call(upstream, method, path, **kwargs)


@pytest.fixture(scope="session")
def _finished_runs(sandbox) -> dict:
    return {}


@pytest.fixture
def finished(upstream, _finished_runs):
    """finished(script, speed=…, message=…, **metadata) → a SandboxRun in a terminal status.

    Made once per session for each set of arguments: tests that use it only read the run.
    """

    def make(script: str = "answer", speed: float = 200, message: str = "Hello", **metadata) -> SandboxRun:
        key = (script, speed, message, tuple(sorted(metadata.items())))
        if key not in _finished_runs:
            body = upstream.start_run(script, speed=speed, message=message, **metadata)
            wait_terminal(upstream, body["thread_id"], body["id"])
            _finished_runs[key] = SandboxRun.of(body)
        return _finished_runs[key]

    return make


@pytest.fixture
async def index_not_empty(transactional_db):
    """One thread already in the index, so the home page does not import the sandbox's threads first."""
    from runs_ui import index

    return await index.record_thread("default", "thread_seenbefore01", "added")


@dataclass
class BusyThread:
    thread_id: str
    runs: list[dict]
    messages: list[dict]

    @property
    def created(self) -> dict[str, int]:
        """id → created_at of every run and message."""
        return {item["id"]: item["created_at"] for item in self.runs + self.messages}


BUSY_RUNS = 32


@pytest.fixture(scope="session")
def busy_thread(sandbox) -> BusyThread:
    """A thread with 32 finished runs and 75 messages (some without a run), made one after another."""
    assistant = api_call(
        sandbox, "POST", "/assistants", json={"model": "gpt-4o", "metadata": {"sandbox_script": "answer"}}
    )
    thread = api_call(sandbox, "POST", "/threads", json={"metadata": {"purpose": "paging"}})
    for n in range(BUSY_RUNS):
        if n % 3 == 0:
            api_call(
                sandbox,
                "POST",
                f"/threads/{thread['id']}/messages",
                json={"role": "user", "content": f"A note without a run, number {n}"},
            )
        run = api_call(
            sandbox,
            "POST",
            f"/threads/{thread['id']}/runs",
            json={
                "assistant_id": assistant["id"],
                "additional_messages": [{"role": "user", "content": f"Question {n}"}],
                "metadata": {"sandbox_speed": str(FAST)},
            },
        )
        wait_terminal(sandbox, thread["id"], run["id"])
    return BusyThread(
        thread["id"],
        all_pages(sandbox, f"/threads/{thread['id']}/runs"),
        all_pages(sandbox, f"/threads/{thread['id']}/messages"),
    )


@dataclass
class SeededSandbox:
    server: SandboxServer
    request_log: Path
    #: sandbox_demo key → thread JSON
    threads: dict[str, dict]

    def requests(self) -> list[dict]:
        return [json.loads(line) for line in self.request_log.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def seeded_sandbox():
    """A second sandbox server with `manage.py sandbox_seed` demo data (incl. the hostile thread), logging
    every API request it answers — kept apart so the seed does not change what other tests list."""
    with tempfile.TemporaryDirectory(prefix="pages-sandbox-") as directory:
        log = Path(directory) / "requests.jsonl"
        with running_sandbox(speed=10, env={"SANDBOX_REQUEST_LOG": str(log)}) as server:
            server.manage("sandbox_seed")
            threads = {
                t["metadata"]["sandbox_demo"]: t
                for t in all_pages(server, "/threads")
                if "sandbox_demo" in t["metadata"]
            }
            yield SeededSandbox(server, log, threads)


@pytest.fixture
def seeded(seeded_sandbox, upstream, settings) -> SeededSandbox:
    """The dashboard's default connection is the seeded sandbox (instead of the session's)."""
    settings.ASSISTANTS_API_BASE_URL = seeded_sandbox.server.base_url
    settings.ASSISTANTS_API_KEY = seeded_sandbox.server.api_key
    return seeded_sandbox


# --- faults the sandbox cannot produce -------------------------------------------------------------


class Faults:
    """respx side effect: answers the dashboard's requests to the upstream base URL that match a rule and
    passes the rest through to the real server; records every request the dashboard made to the upstream."""

    def __init__(self, base_url: str):
        self.base = httpx.URL(base_url.rstrip("/"))
        self.rules: list[tuple[str, re.Pattern, object]] = []
        self.calls: list[httpx.Request] = []

    def on(self, method: str, path: str, answer) -> Faults:
        """`path` is a regex for the path below the base URL ("/threads/[^/]+"); `answer` an httpx.Response,
        an exception (raised as the transport's) or a callable(request) → Response."""
        self.rules.append((method.upper(), re.compile(path), answer))
        return self

    def paths(self) -> list[str]:
        return [self._relative(r) for r in self.calls]

    def _relative(self, request: httpx.Request) -> str:
        return request.url.path.removeprefix(self.base.path)

    def __call__(self, request: httpx.Request):
        url = request.url
        if (url.scheme, url.host, url.port) != (self.base.scheme, self.base.host, self.base.port) or not (
            url.path.startswith(self.base.path)
        ):
            return request  # not the upstream: through
        if not request.headers.get("user-agent", "").startswith("runs-dashboard/"):
            return request  # the test's own calls to the sandbox: through, unrecorded
        self.calls.append(request)
        path = self._relative(request)
        for method, pattern, answer in self.rules:
            if method == request.method and pattern.fullmatch(path):
                if isinstance(answer, BaseException):
                    raise answer
                if callable(answer):
                    return answer(request)
                return answer
        return request


@pytest.fixture
def faults(upstream, settings):
    """Upstream faults for one test, on the session's sandbox; no retries, so no backoff waits."""
    settings.UPSTREAM_RETRIES = 0
    recorder = Faults(settings.ASSISTANTS_API_BASE_URL)
    # The httpx-level mocker: the httpcore one sees a passed-through request twice (pool, then connection).
    with respx.mock(assert_all_called=False, using="httpx") as router:
        router.route().mock(side_effect=recorder)
        yield recorder


def json_response(status: int, body, **headers) -> httpx.Response:
    return httpx.Response(status, json=body, headers={"x-request-id": f"req_test_{status}", **headers})


def error_body(message: str, type_: str = "invalid_request_error", code=None) -> dict:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}
