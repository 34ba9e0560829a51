"""Who sees what: viewers read every page without action links, operators get the actions, anonymous
users are sent to the login page from everywhere."""

import re
import time

import pytest

from tests.fixtures import csrf_token
from tests.pages.conftest import HX, text

ACTIONS = {
    "cancel": "Cancel run…",
    "metadata": "Edit metadata",
    "outputs form": "Submit all outputs",
}


@pytest.fixture
def waiting_run(make_run, api):
    """A run waiting for tool outputs (for a day), so every action applies to it."""
    run = make_run("functions", speed=200, sandbox_expires_seconds=86400)
    deadline = time.monotonic() + 10
    while api("GET", f"/threads/{run.thread_id}/runs/{run.run_id}")["status"] != "requires_action":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return run


async def _pages_of(client, run, api) -> dict[str, str]:
    step = api("GET", f"/threads/{run.thread_id}/runs/{run.run_id}/steps")["data"][0]
    base = f"/threads/{run.thread_id}/runs/{run.run_id}/"
    urls = {  # the thread first: the home page then lists it rather than importing the sandbox's threads
        "thread": (f"/threads/{run.thread_id}/", {}),
        "home": ("/", {}),
        "timeline": (f"/threads/{run.thread_id}/?part=timeline", HX),
        "run": (base, {}),
        "run header": (f"{base}?part=header", HX),
        "steps": (f"{base}?part=steps", HX),
        "step": (f"{base}steps/{step['id']}/", {}),
    }
    out = {}
    for name, (url, headers) in urls.items():
        response = await client.get(url, headers=headers)
        assert response.status_code == 200, (name, response.status_code)
        out[name] = text(response)
    return out


async def test_a_viewer_sees_every_page_but_no_action(viewer_client, waiting_run, api):
    pages = await _pages_of(viewer_client, waiting_run, api)
    for name, html in pages.items():
        for action, label in ACTIONS.items():
            assert label not in html, f"{action} shown to a viewer on the {name} page"
        assert "/cancel/" not in html and "/metadata/" not in html and "/submit/" not in html, name
        assert "Start a run…" not in html and "New thread and run…" not in html, name
    # What a viewer may do is there: read the pending calls, export, watch.
    assert "Waiting for tool outputs" in pages["run"] and "Export JSON" in pages["run"]
    assert "☆ Watch" in pages["thread"]


async def test_an_operator_sees_the_actions_for_a_run_waiting_for_outputs(operator_client, waiting_run, api):
    pages = await _pages_of(operator_client, waiting_run, api)
    run_page = pages["run"]
    base = f"/threads/{waiting_run.thread_id}/runs/{waiting_run.run_id}/"
    assert f'href="{base}cancel/">Cancel run…</a>' in run_page
    assert f'href="{base}metadata/">Edit metadata</a>' in run_page
    assert re.search(rf'<form method="post" action="{re.escape(base)}submit/"', run_page)
    assert "Submit all outputs" in run_page
    assert "Cancel run…" in pages["run header"]
    assert f'href="/threads/{waiting_run.thread_id}/runs/new/">Start a run…</a>' in pages["thread"]
    assert 'href="/new/">New thread and run…</a>' in pages["home"]


async def test_a_finished_run_offers_no_cancel_even_to_an_operator(operator_client, finished):
    run = finished("answer")
    html = text(await operator_client.get(f"/threads/{run.thread_id}/runs/{run.run_id}/"))
    assert "Cancel run…" not in html and "Edit metadata" in html


async def test_a_read_only_deployment_shows_operators_no_actions(operator_client, waiting_run, api, settings):
    settings.READ_ONLY = True
    pages = await _pages_of(operator_client, waiting_run, api)
    for name, html in pages.items():
        for action, label in ACTIONS.items():
            assert label not in html, f"{action} shown on the {name} page of a read-only dashboard"
    assert "This dashboard is read-only" in pages["run"]


ANONYMOUS_GETS = [
    "/",
    "/?part=list",
    "/go/?q=thread_abc",
    "/threads/thread_abc/",
    "/threads/thread_abc/?part=timeline",
    "/threads/thread_abc/export.json",
    "/threads/thread_abc/runs/run_abc/",
    "/threads/thread_abc/runs/run_abc/?part=steps",
    "/threads/thread_abc/runs/run_abc/export.json",
    "/threads/thread_abc/runs/run_abc/steps/step_abc/",
    "/files/file-abc/content",
]


async def test_an_anonymous_visitor_is_sent_to_the_login_page(anon_client, faults, subtests):
    for path in ANONYMOUS_GETS:
        with subtests.test(path=path):
            response = await anon_client.get(path, headers=HX if "part=" in path else {})
            assert response.status_code == 302
            assert response["Location"].startswith("/accounts/login/?next=")
    assert faults.calls == []


async def test_an_anonymous_post_is_sent_to_the_login_page(anon_client, faults, subtests):
    token = await csrf_token(anon_client, "/accounts/login/")
    for path in ["/index/add/", "/index/import/", "/threads/thread_abc/watch/"]:
        with subtests.test(path=path):
            response = await anon_client.post(
                path, {"ids": "thread_abc", "watch": "1"}, headers={"X-CSRFToken": token}
            )
            assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert faults.calls == []
