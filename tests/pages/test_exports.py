"""Exports stream: the file is written as it is fetched, stays valid JSON however it ends, says when it is
not whole, and stops fetching when the browser goes away."""

from __future__ import annotations

import asyncio
import json

import httpx

from tests.fixtures import eventually
from tests.pages.conftest import downloaded, error_body, json_response
from tests.pages.test_untrusted_data import R, T, message_json, run_json, step_json

THREAD = {"id": T, "object": "thread", "created_at": 1_790_000_000, "metadata": {}}


def endless(make):
    """A list answer that always has more, with fresh ids after the cursor it is given."""

    def answer(request: httpx.Request) -> httpx.Response:
        after = request.url.params.get("after", "")
        start = int(after.rsplit("_", 1)[1]) + 1 if after else 0
        items = [make(n) for n in range(start, start + int(request.url.params.get("limit", 20)))]
        return listed(items, more=True)

    return answer


def steps_from(n: int) -> dict:
    return step_json(f"step_{n:07d}", {"type": "message_creation"})


def listed(items: list, more: bool = False) -> httpx.Response:
    return json_response(200, {"object": "list", "data": items, "has_more": more})


def a_thread(faults, *, steps=None, messages=None):
    """The fake thread with one run; its steps and messages as given (empty lists otherwise)."""
    faults.on("GET", rf"/threads/{T}", json_response(200, THREAD))
    faults.on("GET", rf"/threads/{T}/runs/{R}", json_response(200, run_json()))
    faults.on("GET", rf"/threads/{T}/runs", listed([run_json()]))
    faults.on("GET", rf"/threads/{T}/runs/{R}/steps", steps or listed([]))
    faults.on("GET", rf"/threads/{T}/messages", messages or listed([]))


async def test_an_endless_list_ends_the_export_at_the_item_cap_with_a_marker(viewer_client, faults, settings):
    settings.UPSTREAM_MAX_ITEMS = 250
    a_thread(faults, steps=endless(steps_from))

    data = await downloaded(await viewer_client.get(f"/threads/{T}/runs/{R}/export.json"))

    assert len(data["steps"]) == 250
    assert data["complete"] is False
    assert data["stopped"]["setting"] == "UPSTREAM_MAX_ITEMS"
    assert "250 items" in data["stopped"]["message"]
    assert "messages" not in data  # never started: the cap was reached first


async def test_the_cap_counts_runs_steps_and_messages_of_a_thread_together(viewer_client, faults, settings):
    settings.UPSTREAM_MAX_ITEMS = 120
    a_thread(
        faults,
        messages=json_response(
            200, {"data": [message_json(f"msg_{n}", "hi") for n in range(100)], "has_more": False}
        ),
        steps=json_response(200, {"data": [steps_from(n) for n in range(30)], "has_more": False}),
    )

    data = await downloaded(await viewer_client.get(f"/threads/{T}/export.json"))

    assert len(data["messages"]) == 100
    [entry] = data["runs"]
    assert len(entry["steps"]) == 19  # 100 messages + 1 run + 19 steps = 120
    assert data["complete"] is False


async def test_an_export_at_exactly_the_cap_is_whole(viewer_client, faults, settings):
    settings.UPSTREAM_MAX_ITEMS = 30
    a_thread(
        faults, steps=json_response(200, {"data": [steps_from(n) for n in range(30)], "has_more": False})
    )

    data = await downloaded(await viewer_client.get(f"/threads/{T}/runs/{R}/export.json"))

    assert len(data["steps"]) == 30 and data["messages"] == []
    assert data["complete"] is True and "stopped" not in data


async def test_an_upstream_failing_after_the_download_started_ends_a_valid_file_saying_so(
    viewer_client, faults
):
    def steps(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("after"):
            return json_response(503, error_body("overloaded", "server_error"))
        return listed([steps_from(n) for n in range(100)], more=True)

    a_thread(faults, steps=steps)

    response = await viewer_client.get(f"/threads/{T}/runs/{R}/export.json")
    data = await downloaded(response)

    assert response.status_code == 200
    assert len(data["steps"]) == 100
    assert data["complete"] is False
    assert data["stopped"]["upstream_status"] == 503
    assert "overloaded" in data["stopped"]["message"]


async def test_the_file_is_sent_in_pieces_as_it_is_fetched(viewer_client, faults, settings):
    settings.UPSTREAM_MAX_ITEMS = 3_000
    a_thread(faults, steps=endless(steps_from))

    response = await viewer_client.get(f"/threads/{T}/runs/{R}/export.json")
    pieces = [chunk async for chunk in response.streaming_content]

    assert len(pieces) > 10
    assert max(len(p) for p in pieces) < 200_000
    assert json.loads(b"".join(pieces))["complete"] is False


async def test_a_download_left_early_stops_fetching(viewer_client, faults):
    a_thread(faults, steps=endless(steps_from), messages=endless(lambda n: message_json(f"msg_{n:07d}", "x")))
    response = await viewer_client.get(f"/threads/{T}/export.json")
    chunks = response.streaming_content
    await anext(chunks)

    response.close()  # what Django does when the browser goes away

    def reading_ahead():
        return [t for t in asyncio.all_tasks() if t.get_name() == "export-read-ahead" and not t.done()]

    assert reading_ahead()  # the lists were being read ahead of the writer…
    await eventually(lambda: not reading_ahead(), timeout=5)  # …and every read-ahead task ends
