"""Fixtures for the operator actions: a respx spy on the sandbox, faults in front of it, form posts.

The sandbox is the upstream wherever a test is about an action landing. respx is scoped to one test and
routed only to the dashboard's upstream (settings.ASSISTANTS_API_BASE_URL), and used two ways:
- `spy`: every request goes through to the sandbox for real; respx only records it, so a test can say how
  many cancels or submissions reached the upstream. `fault(spy, …)` puts one route in front of the
  pass-through to turn one call into what the sandbox cannot produce (a 500, a timeout, hostile text), or
  to look at the database from inside the call and then forward it (`forward`).
- `fake_upstream` (in test_fuzz.py): the dashboard points at a host that does not exist and respx answers
  with JSON recorded from the sandbox, for the thousands of hypothesis examples.
"""

from __future__ import annotations

import asyncio
import html
import re
from urllib.parse import urlencode

import httpx
import pytest
import respx
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.db import connections
from django.test import AsyncClient

from runs_ui import audit
from runs_ui.live import relay as stream_relay
from runs_ui.live.watcher import watcher
from runs_ui.models import AuditRecord
from tests.fixtures import SandboxRun, csrf_token

# --- talking to the dashboard ----------------------------------------------------------------------


def run_path(run, suffix: str = "") -> str:
    """The dashboard path of a sandbox run (`make_run`'s SandboxRun or a run dict), plus an action."""
    thread_id = run["thread_id"] if isinstance(run, dict) else run.thread_id
    run_id = run["id"] if isinstance(run, dict) else run.run_id
    return f"/threads/{thread_id}/runs/{run_id}/" + (f"{suffix}/" if suffix else "")


async def post_form(client: AsyncClient, path: str, data: dict | list, *, token: bool | str = True):
    """POST a form as a browser does (urlencoded), with the session's CSRF token unless told not to."""
    pairs = list(data.items()) if isinstance(data, dict) else list(data)
    if token:
        # The login page sets the CSRF cookie for anyone, without calling the upstream.
        token = token if isinstance(token, str) else await csrf_token(client, "/accounts/login/")
        pairs.append(("csrfmiddlewaretoken", token))
    # As daphne's ASGIHandler does (the test client does not): the request's sync code gets a thread of its
    # own, so a stream relay it starts in the background can reach the database meanwhile.
    async with ThreadSensitiveContext():
        response = await client.post(path, urlencode(pairs), content_type="application/x-www-form-urlencoded")
        # That thread ends with the context: close its database connection (PostgreSQL counts it open).
        await sync_to_async(connections.close_all)()
    return response


async def drawn_token(client: AsyncClient, path: str) -> str:
    """The one-time token a start form's page draws (GET it, as a browser does before posting)."""
    page = await client.get(path)
    return re.search(r'name="form_token" value="([^"]+)"', page.content.decode()).group(1)


async def post_start(client: AsyncClient, path: str, data: dict, *, form_token: str | None = None):
    """POST a start form (a run, or a thread and run) with the one-time token its page drew."""
    token = form_token or await drawn_token(client, path)
    return await post_form(client, path, {**data, "form_token": token})


def text(response) -> str:
    """The page as a person reads it: tags dropped, entities decoded, whitespace squeezed."""
    body = response.content.decode()
    body = re.sub(r"<script.*?</script>|<style.*?</style>", " ", body, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


def squeeze(value: str) -> str:
    """Whitespace as `text` leaves it."""
    return re.sub(r"\s+", " ", value)


async def follow(client: AsyncClient, response):
    """The page a redirect leads to."""
    assert response.status_code == 302, (response.status_code, text(response)[:3000])
    return await client.get(response["Location"])


async def records(**filters) -> list[AuditRecord]:
    return [r async for r in AuditRecord.objects.filter(**filters).order_by("created_at", "id")]


delete_records = sync_to_async(lambda: AuditRecord.objects.all().delete())


@pytest.fixture(autouse=True)
async def _relays_end_before_the_database(transactional_db):
    """Stream relays, audited actions and watchers a test started end before its database is flushed."""
    yield
    tasks = list(stream_relay._tasks) + list(audit._tasks)
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=10)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    await watcher.stop()


# --- the upstream, observed ------------------------------------------------------------------------


@pytest.fixture
def spy(upstream, settings):
    """respx in front of the sandbox: everything passes through and is recorded (`spy.calls`)."""
    with respx.mock(assert_all_called=False, using="httpx") as router:
        router.base = settings.ASSISTANTS_API_BASE_URL
        router.route(url__startswith=router.base, name="sandbox").pass_through()
        yield router


def calls_to(router, method: str, path_end: str) -> list:
    """The recorded requests with this method whose path ends like this (e.g. "/cancel")."""
    return [c for c in router.calls if c.request.method == method and c.request.url.path.endswith(path_end)]


def fault(router, method: str, path_end: str, **mock) -> respx.Route:
    """One route in front of the pass-through: this call answers what the test says; the rest is real."""
    sandbox = router.routes.pop("sandbox")
    route = router.route(method=method, url__startswith=router.base, path__regex=re.escape(path_end) + "$")
    route.mock(**mock)
    router.routes.add(sandbox, name="sandbox")  # re-added last, so the fault matches first
    return route


async def forward(request: httpx.Request) -> httpx.Response:
    """Send a request the spy caught on to the sandbox (bypassing respx) and return the real answer."""
    async with httpx.AsyncHTTPTransport() as transport:
        response = await transport.handle_async_request(request)
        content = await response.aread()
    return httpx.Response(response.status_code, headers=response.headers, content=content)


def error_response(status: int, message: str, request_id: str = "req_fault") -> httpx.Response:
    return httpx.Response(
        status,
        json={"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}},
        headers={"x-request-id": request_id},
    )


def sandbox_run(upstream, run) -> dict:
    """The run as the sandbox has it now (read directly, not through the dashboard)."""
    return upstream.request("GET", f"/threads/{run.thread_id}/runs/{run.run_id}").json()


def outputs_form(calls: list[dict], **outputs) -> dict:
    """The tool-outputs form as the page draws it: `outputs` by function name, e.g. get_weather="…"."""
    data = {"call_ids": " ".join(c["id"] for c in calls)}
    for call in calls:
        name = call["function"]["name"]
        if name in outputs:
            data[f"output_{call['id']}"] = outputs[name]
    return data


def pending_calls(run_json: dict) -> list[dict]:
    return run_json["required_action"]["submit_tool_outputs"]["tool_calls"]


@pytest.fixture(scope="module")
def module_waiting_run(sandbox):
    """One `functions` run in requires_action for a whole module of tests that must not change it."""
    run = SandboxRun.of(sandbox.start_run("functions", speed=20, sandbox_expires_seconds=1000000))
    return run, pending_calls(sandbox.wait_run(run.thread_id, run.run_id, "requires_action"))


@pytest.fixture
def waiting_run(make_run, wait_for):
    """A `functions` run in requires_action, with its two parallel calls: (SandboxRun, calls)."""
    run = make_run("functions", speed=20)
    return run, pending_calls(wait_for(run, "requires_action"))
