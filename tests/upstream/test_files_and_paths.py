"""File downloads stay within their cap, and ids cannot change the path they are put in."""

from __future__ import annotations

import json

import httpx
import pytest

from runs_ui.upstream import client as client_module
from runs_ui.upstream.errors import BadResponse, NotFound
from sandbox.wire import page as page_json  # the list envelope as the sandbox sends it

from .conftest import message_json, run_json, step_json

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


async def test_get_file_content_returns_the_bytes_and_their_content_type(upstream, client):
    route = upstream.get("/files/file-abc/content").respond(
        200, content=PNG, headers={"content-type": "image/png"}
    )

    content, content_type = await client.get_file_content("file-abc")

    assert content == PNG
    assert content_type == "image/png"
    assert route.call_count == 1


async def test_a_file_without_a_content_type_is_octet_stream(upstream, client):
    upstream.get("/files/file-abc/content").respond(200, content=b"raw")

    assert await client.get_file_content("file-abc") == (b"raw", "application/octet-stream")


async def test_a_missing_file_raises_not_found(upstream, client):
    upstream.get("/files/file-abc/content").respond(404, json={"error": {"message": "No such file."}})

    with pytest.raises(NotFound):
        await client.get_file_content("file-abc")


async def test_a_file_of_exactly_the_cap_is_returned(upstream, client, monkeypatch):
    monkeypatch.setattr(client_module, "MAX_FILE_BYTES", 1024)
    upstream.get("/files/file-abc/content").respond(200, content=b"x" * 1024)

    content, _ = await client.get_file_content("file-abc")

    assert len(content) == 1024


async def test_a_file_larger_than_the_cap_is_refused(upstream, client, monkeypatch):
    monkeypatch.setattr(client_module, "MAX_FILE_BYTES", 1024)
    upstream.get("/files/file-abc/content").respond(
        200, content=b"x" * 1025, headers={"x-request-id": "req_f"}
    )

    with pytest.raises(BadResponse) as caught:
        await client.get_file_content("file-abc")

    assert caught.value.message == "The file is too large to show."
    assert caught.value.request_id == "req_f"


class CountingStream(httpx.AsyncByteStream):
    """A large body sent in chunks, counting how many the client pulled."""

    def __init__(self, chunks: int, size: int):
        self.chunks, self.size, self.pulled, self.closed = chunks, size, 0, False

    async def __aiter__(self):
        for _ in range(self.chunks):
            self.pulled += 1
            yield b"x" * self.size

    async def aclose(self):
        self.closed = True


async def test_a_file_larger_than_the_cap_is_refused_before_it_is_all_read(upstream, client, monkeypatch):
    monkeypatch.setattr(client_module, "MAX_FILE_BYTES", 1024)
    body = CountingStream(chunks=1000, size=512)  # 500 KiB, no Content-Length
    upstream.get("/files/file-abc/content").respond(200, stream=body, headers={"content-type": "image/png"})

    with pytest.raises(BadResponse):
        await client.get_file_content("file-abc")

    assert body.pulled <= 3
    assert body.closed


async def test_a_declared_length_over_the_cap_is_refused_without_reading_the_body(
    upstream, client, monkeypatch
):
    monkeypatch.setattr(client_module, "MAX_FILE_BYTES", 1024)
    body = CountingStream(chunks=4, size=512)
    upstream.get("/files/file-abc/content").respond(200, stream=body, headers={"content-length": "2048"})

    with pytest.raises(BadResponse):
        await client.get_file_content("file-abc")

    assert body.pulled == 0
    assert body.closed


def test_the_file_cap_is_twenty_mebibytes():
    assert client_module.MAX_FILE_BYTES == 20 * 1024 * 1024


# --- ids in paths --------------------------------------------------------------------------------

HOSTILE = "x/../../assistants?limit=1#frag"
Q = "x%2F..%2F..%2Fassistants%3Flimit%3D1%23frag"  # HOSTILE as one path segment


def placed(answer: dict) -> dict:
    """An answer without ids: the client places it where it asked (an id naming another place is refused)."""
    return {k: v for k, v in answer.items() if k not in ("id", "thread_id", "run_id")}


CALLS = {
    "get run": (lambda c, i: c.get_run(i, i), placed(run_json()), f"/v1/threads/{Q}/runs/{Q}"),
    "cancel run": (lambda c, i: c.cancel_run(i, i), placed(run_json()), f"/v1/threads/{Q}/runs/{Q}/cancel"),
    "modify run": (lambda c, i: c.modify_run(i, i, {}), placed(run_json()), f"/v1/threads/{Q}/runs/{Q}"),
    "submit tool outputs": (
        lambda c, i: c.submit_tool_outputs(i, i, []),
        placed(run_json()),
        f"/v1/threads/{Q}/runs/{Q}/submit_tool_outputs",
    ),
    "create run": (lambda c, i: c.create_run(i, "asst_1"), placed(run_json()), f"/v1/threads/{Q}/runs"),
    "list runs": (lambda c, i: c.list_runs(i), page_json([]), f"/v1/threads/{Q}/runs"),
    "list steps": (lambda c, i: c.list_steps(i, i), page_json([]), f"/v1/threads/{Q}/runs/{Q}/steps"),
    "get step": (
        lambda c, i: c.get_step(i, i, i),
        placed(step_json()),
        f"/v1/threads/{Q}/runs/{Q}/steps/{Q}",
    ),
    "get thread": (lambda c, i: c.get_thread(i), {}, f"/v1/threads/{Q}"),
    "list messages": (lambda c, i: c.list_messages(i), page_json([]), f"/v1/threads/{Q}/messages"),
    "get message": (
        lambda c, i: c.get_message(i, i),
        placed(message_json()),
        f"/v1/threads/{Q}/messages/{Q}",
    ),
    "get assistant": (lambda c, i: c.get_assistant(i), {}, f"/v1/assistants/{Q}"),
    "file content": (lambda c, i: c.get_file_content(i), None, f"/v1/files/{Q}/content"),
}


@pytest.mark.parametrize(("call", "answer", "path"), CALLS.values(), ids=CALLS.keys())
async def test_an_id_with_slashes_a_query_or_a_fragment_stays_one_path_segment(
    upstream, client, call, answer, path
):
    catch_all = upstream.route().respond(200, json=answer)

    await call(client, HOSTILE)

    request = catch_all.calls.last.request
    assert request.url.raw_path.split(b"?")[0].decode() == path
    assert "limit" not in request.url.params or request.url.params["limit"] == "20"
    assert request.url.fragment == ""


async def test_a_stream_id_stays_one_path_segment(upstream, client):
    catch_all = upstream.route().respond(200, json=placed(run_json()))

    async with client.stream_submit_tool_outputs(HOSTILE, HOSTILE, []) as events:
        [e async for e in events]

    assert (
        catch_all.calls.last.request.url.raw_path.decode() == f"/v1/threads/{Q}/runs/{Q}/submit_tool_outputs"
    )


@pytest.mark.parametrize("dots", [".", ".."])
async def test_a_dot_segment_id_cannot_climb_out_of_its_path(upstream, client, dots):
    catch_all = upstream.route().respond(200, json=placed(run_json()))

    await client.get_run(dots, "run_1")
    await client.cancel_run("thread_1", dots)

    get_path, cancel_path = (call.request.url.raw_path.decode() for call in catch_all.calls)
    encoded = dots.replace(".", "%2E")
    assert get_path == f"/v1/threads/{encoded}/runs/run_1"
    assert cancel_path == f"/v1/threads/thread_1/runs/{encoded}/cancel"


async def test_a_percent_sign_in_an_id_is_sent_encoded_not_decoded(upstream, client):
    catch_all = upstream.route().respond(200, json=placed(run_json()))

    await client.get_run("thread_%2F", "run_1")

    assert catch_all.calls.last.request.url.raw_path == b"/v1/threads/thread_%252F/runs/run_1"


async def test_ordinary_ids_make_the_paths_of_the_contract(upstream, client):
    catch_all = upstream.route().respond(200, json=run_json())

    await client.get_run("thread_1", "run_1")
    await client.cancel_run("thread_1", "run_1")
    await client.submit_tool_outputs("thread_1", "run_1", [{"tool_call_id": "call_1", "output": "ok"}])
    await client.modify_run("thread_1", "run_1", {"note": "x"})

    assert [(c.request.method, c.request.url.path) for c in catch_all.calls] == [
        ("GET", "/v1/threads/thread_1/runs/run_1"),
        ("POST", "/v1/threads/thread_1/runs/run_1/cancel"),
        ("POST", "/v1/threads/thread_1/runs/run_1/submit_tool_outputs"),
        ("POST", "/v1/threads/thread_1/runs/run_1"),
    ]
    bodies = [c.request.content for c in catch_all.calls]
    assert bodies[0] == b"" and bodies[1] == b""
    assert json.loads(bodies[2]) == {"tool_outputs": [{"tool_call_id": "call_1", "output": "ok"}]}
    assert json.loads(bodies[3]) == {"metadata": {"note": "x"}}


async def test_a_base_url_with_a_trailing_slash_makes_no_double_slash(upstream, make_client):
    catch_all = upstream.route().respond(200, json=run_json())

    await make_client(base_url="https://upstream.test/v1/").get_run("thread_1", "run_1")

    assert catch_all.calls.last.request.url.raw_path == b"/v1/threads/thread_1/runs/run_1"
