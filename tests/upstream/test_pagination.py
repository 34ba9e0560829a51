"""Lists: following `has_more` to the end, the envelopes upstreams really send, and the query sent."""

from __future__ import annotations

import httpx
import pytest

from runs_ui.upstream.client import INCLUDE_FILE_SEARCH_CONTENT
from runs_ui.upstream.objects import Message, Run, Step
from sandbox.wire import page as page_json  # the list envelope as the sandbox sends it

from .conftest import message_json, run_json, step_json

ITERATORS = {
    "runs": ("/threads/thread_1/runs", run_json, "run", Run, lambda c: c.iter_runs("thread_1")),
    "steps": (
        "/threads/thread_1/runs/run_1/steps",
        step_json,
        "step",
        Step,
        lambda c: c.iter_steps("thread_1", "run_1"),
    ),
    "messages": (
        "/threads/thread_1/messages",
        message_json,
        "msg",
        Message,
        lambda c: c.iter_messages("thread_1"),
    ),
}


def paged(items: list[dict], size: int, *, envelope=page_json):
    """A side effect answering `after=<id>` with the next `size` items, like the upstream."""
    ids = [item["id"] for item in items]

    def answer(request: httpx.Request) -> httpx.Response:
        after = request.url.params.get("after")
        start = ids.index(after) + 1 if after else 0
        chunk = items[start : start + size]
        return httpx.Response(200, json=envelope(chunk, has_more=start + size < len(items)))

    return answer


@pytest.mark.parametrize(
    ("path", "make", "prefix", "kind", "iterate"), ITERATORS.values(), ids=ITERATORS.keys()
)
async def test_it_follows_has_more_with_the_last_id_to_the_end(
    upstream, client, path, make, prefix, kind, iterate
):
    items = [make(f"{prefix}_{n}") for n in range(7)]
    route = upstream.get(path).mock(side_effect=paged(items, 3))

    got = [item async for item in iterate(client)]

    assert [item.id for item in got] == [f"{prefix}_{n}" for n in range(7)]
    assert all(isinstance(item, kind) for item in got)
    sent = [call.request.url.params for call in route.calls]
    assert [p.get("after") for p in sent] == [None, f"{prefix}_2", f"{prefix}_5"]
    assert all(p["limit"] == "100" and p["order"] == "asc" for p in sent)


async def test_it_reads_azures_list_envelope_without_object_or_first_id(upstream, make_client):
    def azure_envelope(items, has_more):
        return {"data": items, "last_id": items[-1]["id"] if items else None, "has_more": has_more}

    items = [run_json(f"run_{n}") for n in range(5)]
    upstream.get("/threads/thread_1/runs").mock(side_effect=paged(items, 2, envelope=azure_envelope))
    client = make_client("azure-agents", api_version="2025-05-01")

    runs = [run.id async for run in client.iter_runs("thread_1")]
    page = await client.list_runs("thread_1", limit=2)

    assert runs == [f"run_{n}" for n in range(5)]
    assert page.first_id is None
    assert page.last_id == "run_1"
    assert page.has_more is True


async def test_an_empty_list_with_null_first_and_last_ids_is_an_empty_page(upstream, client):
    route = upstream.get("/threads/thread_1/runs").respond(
        200, json={"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}
    )

    page = await client.list_runs("thread_1")
    runs = [run async for run in client.iter_runs("thread_1")]

    assert page.data == []
    assert (page.first_id, page.last_id, page.has_more) == (None, None, False)
    assert page.next_after is None
    assert runs == []
    assert route.call_count == 2


async def test_an_empty_page_that_claims_more_ends_the_iteration(upstream, client):
    route = upstream.get("/threads/thread_1/runs").respond(
        200, json={"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": True}
    )

    runs = [run async for run in client.iter_runs("thread_1")]

    assert runs == []
    assert route.call_count == 1


async def test_a_repeated_cursor_stops_the_iteration_instead_of_looping_forever(upstream, client):
    # An upstream that ignores `after` and always answers the same page, claiming more.
    def same_page(request):
        if len(route.calls) > 10:
            raise AssertionError("still paging")
        return httpx.Response(200, json=page_json([run_json("run_1"), run_json("run_2")], has_more=True))

    route = upstream.get("/threads/thread_1/runs").mock(side_effect=same_page)

    runs = [run.id async for run in client.iter_runs("thread_1")]

    assert route.call_count == 2
    assert runs[:2] == ["run_1", "run_2"]


async def test_a_cycle_of_cursors_stops_the_iteration(upstream, client):
    pages = {None: ["run_a", "run_b"], "run_b": ["run_c", "run_d"], "run_d": ["run_a", "run_b"]}

    def cycling(request):
        if len(route.calls) > 10:
            raise AssertionError("still paging")
        ids = pages[request.url.params.get("after")]
        return httpx.Response(200, json=page_json([run_json(i) for i in ids], has_more=True))

    route = upstream.get("/threads/thread_1/runs").mock(side_effect=cycling)

    [run async for run in client.iter_runs("thread_1")]

    # The third page points back at run_b, whose page was already fetched.
    assert [call.request.url.params.get("after") for call in route.calls] == [None, "run_b", "run_d"]


async def test_items_without_ids_fall_back_to_last_id_as_the_cursor(upstream, client):
    route = upstream.get("/threads/thread_1/runs").mock(
        side_effect=[
            httpx.Response(200, json={"data": [{"status": "queued"}], "last_id": "run_x", "has_more": True}),
            httpx.Response(200, json={"data": [], "has_more": False}),
        ]
    )

    [run async for run in client.iter_runs("thread_1")]

    assert route.calls[1].request.url.params["after"] == "run_x"


@pytest.mark.parametrize(
    ("asked", "sent"),
    [(0, "1"), (-5, "1"), (1, "1"), (50, "50"), (100, "100"), (101, "100"), (10_000, "100")],
)
async def test_the_page_size_is_clamped_to_1_to_100(upstream, client, asked, sent):
    route = upstream.get("/threads/thread_1/runs").respond(200, json=page_json([]))

    await client.list_runs("thread_1", limit=asked)

    assert route.calls.last.request.url.params["limit"] == sent


async def test_a_list_sends_its_defaults_and_omits_unset_cursors(upstream, client):
    route = upstream.get("/threads/thread_1/runs").respond(200, json=page_json([]))

    await client.list_runs("thread_1")

    assert dict(route.calls.last.request.url.params) == {"limit": "20", "order": "desc"}


async def test_a_list_sends_the_before_cursor_and_order(upstream, client):
    route = upstream.get("/assistants").respond(200, json=page_json([{"id": "asst_1"}]))

    page = await client.list_assistants(before="asst_9", order="asc")

    assert page.data[0].id == "asst_1"
    assert route.calls.last.request.url.params["before"] == "asst_9"
    assert route.calls.last.request.url.params["order"] == "asc"


async def test_messages_can_be_filtered_to_one_run(upstream, client):
    route = upstream.get("/threads/thread_1/messages").respond(200, json=page_json([message_json()]))

    await client.list_messages("thread_1", run_id="run_7")
    await client.list_messages("thread_1")

    assert route.calls[0].request.url.params["run_id"] == "run_7"
    assert "run_id" not in route.calls[1].request.url.params


async def test_a_page_carries_the_response_headers(upstream, client):
    upstream.get("/threads/thread_1/runs").respond(
        200, json=page_json([run_json()]), headers={"x-request-id": "req_9", "openai-poll-after-ms": "250"}
    )

    page = await client.list_runs("thread_1")

    assert page.info.request_id == "req_9"
    assert page.info.poll_after_ms == 250


async def test_iter_assistants_pages_newest_first(upstream, client):
    items = [{"id": f"asst_{n}", "object": "assistant"} for n in range(3)]
    route = upstream.get("/assistants").mock(side_effect=paged(items, 2))

    got = [a.id async for a in client.iter_assistants()]

    assert got == ["asst_0", "asst_1", "asst_2"]
    assert route.calls[0].request.url.params["order"] == "desc"


# --- include[] ---------------------------------------------------------------------------------------

INCLUDE_ON_THE_WIRE = b"include%5B%5D=step_details.tool_calls%5B%2A%5D.file_search.results%5B%2A%5D.content"


async def test_listing_steps_with_content_sends_include_in_bracket_form(upstream, client):
    route = upstream.get("/threads/thread_1/runs/run_1/steps").respond(200, json=page_json([step_json()]))

    await client.list_steps("thread_1", "run_1", include_content=True)

    request = route.calls.last.request
    assert request.url.params.get_list("include[]") == [INCLUDE_FILE_SEARCH_CONTENT]
    assert INCLUDE_ON_THE_WIRE in request.url.query


async def test_getting_a_step_with_content_sends_include_in_bracket_form(upstream, client):
    route = upstream.get("/threads/thread_1/runs/run_1/steps/step_1").respond(200, json=step_json())

    step = await client.get_step("thread_1", "run_1", "step_1", include_content=True)

    assert step.id == "step_1"
    assert INCLUDE_ON_THE_WIRE in route.calls.last.request.url.query


async def test_without_content_no_include_is_sent(upstream, client):
    list_route = upstream.get("/threads/thread_1/runs/run_1/steps").respond(200, json=page_json([]))
    get_route = upstream.get("/threads/thread_1/runs/run_1/steps/step_1").respond(200, json=step_json())

    await client.list_steps("thread_1", "run_1")
    await client.get_step("thread_1", "run_1", "step_1")

    for route in (list_route, get_route):
        assert b"include" not in route.calls.last.request.url.query


async def test_iter_steps_sends_include_on_every_page(upstream, client):
    items = [step_json(f"step_{n}") for n in range(4)]
    route = upstream.get("/threads/thread_1/runs/run_1/steps").mock(side_effect=paged(items, 2))

    [s async for s in client.iter_steps("thread_1", "run_1", include_content=True)]

    assert route.call_count == 2
    assert all(INCLUDE_ON_THE_WIRE in call.request.url.query for call in route.calls)
