"""Every way a call can fail becomes one of the client's own errors, carrying what the upstream said."""

from __future__ import annotations

import httpx
import pytest

from runs_ui.upstream.client import MAX_MESSAGE_CHARS
from runs_ui.upstream.errors import (
    AuthError,
    BadRequest,
    BadResponse,
    Conflict,
    ConnectFailed,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
)
from sandbox.wire import page as page_json  # the list envelope as the sandbox sends it

from .conftest import error_json, run_json

RUN_PATH = "/threads/thread_1/runs/run_1"


async def raised_by(call) -> UpstreamError:
    """The error a call raises, checked to be the client's own and never httpx's."""
    with pytest.raises(Exception) as caught:
        await call
    assert isinstance(caught.value, UpstreamError), type(caught.value)
    assert not isinstance(caught.value, httpx.HTTPError)
    return caught.value


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, BadRequest),
        (422, BadRequest),
        (401, AuthError),
        (403, PermissionDenied),
        (404, NotFound),
        (409, Conflict),
        (429, RateLimited),
        (500, Unavailable),
        (502, Unavailable),
        (503, Unavailable),
        (504, Unavailable),
    ],
)
async def test_an_error_status_raises_its_class_with_status_message_code_param_and_request_id(
    upstream, make_client, status, error_class
):
    upstream.get(RUN_PATH).respond(
        status,
        json=error_json("No run found with id 'run_1'.", param="run_id", code="run_not_found"),
        headers={"x-request-id": "req_abc123"},
    )

    error = await raised_by(make_client(retries=0).get_run("thread_1", "run_1"))

    assert type(error) is error_class
    assert error.status == status
    assert error.message == "No run found with id 'run_1'."
    assert error.code == "run_not_found"
    assert error.param == "run_id"
    assert error.request_id == "req_abc123"
    assert str(error) == f"HTTP {status}: No run found with id 'run_1'."


async def test_a_status_outside_the_known_families_raises_the_base_upstream_error(upstream, client):
    upstream.get(RUN_PATH).respond(418, json=error_json("I'm a teapot."))

    error = await raised_by(client.get_run("thread_1", "run_1"))

    assert type(error) is UpstreamError
    assert error.status == 418


async def test_a_read_timeout_raises_upstream_timeout(upstream, make_client):
    upstream.get(RUN_PATH).mock(side_effect=httpx.ReadTimeout)

    error = await raised_by(make_client(retries=0).get_run("thread_1", "run_1"))

    assert type(error) is UpstreamTimeout
    assert isinstance(error, Unavailable)
    assert error.status is None
    assert "upstream.test" in error.message


@pytest.mark.parametrize("exc", [httpx.ConnectError, httpx.ConnectTimeout])
async def test_a_connection_that_never_opens_raises_connect_failed(upstream, make_client, exc):
    upstream.get(RUN_PATH).mock(side_effect=exc)

    error = await raised_by(make_client(retries=0).get_run("thread_1", "run_1"))

    assert type(error) is ConnectFailed
    assert error.message == "Could not connect to upstream.test."


@pytest.mark.parametrize(
    "exc", [httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteTimeout, httpx.PoolTimeout]
)
async def test_any_other_transport_failure_raises_unavailable(upstream, make_client, exc):
    upstream.get(RUN_PATH).mock(side_effect=exc)

    error = await raised_by(make_client(retries=0).get_run("thread_1", "run_1"))

    assert isinstance(error, Unavailable)
    assert not isinstance(error, ConnectFailed)


async def test_malformed_json_on_a_200_raises_bad_response_with_the_request_id(upstream, client):
    upstream.get(RUN_PATH).respond(
        200,
        text='{"id": "run_1", "status": ',
        headers={"content-type": "application/json", "x-request-id": "req_1"},
    )

    error = await raised_by(client.get_run("thread_1", "run_1"))

    assert type(error) is BadResponse
    assert error.status == 200
    assert error.request_id == "req_1"
    assert "not JSON (application/json)" in error.message


async def test_an_html_502_page_raises_unavailable_without_quoting_the_html(upstream, make_client):
    page = (
        "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>"
        "</center><hr><center>nginx/1.25.3</center></body></html>"
    )
    upstream.get(RUN_PATH).respond(502, html=page, headers={"x-request-id": "req_gw"})

    error = await raised_by(make_client(retries=0).get_run("thread_1", "run_1"))

    assert type(error) is Unavailable
    assert error.status == 502
    assert error.request_id == "req_gw"
    assert error.message == "The upstream answered HTTP 502 Bad Gateway with an HTML page."
    assert "<" not in str(error)
    assert "nginx" not in str(error)


async def test_an_html_200_where_json_belongs_raises_bad_response_without_the_html(upstream, client):
    upstream.get(RUN_PATH).respond(200, html="<html><body>Sign in to continue</body></html>")

    error = await raised_by(client.get_run("thread_1", "run_1"))

    assert type(error) is BadResponse
    assert "Sign in" not in str(error)
    assert "text/html" in error.message


async def test_a_list_where_a_run_object_belongs_raises_bad_response(upstream, client):
    upstream.get(RUN_PATH).respond(200, json=[run_json()])

    error = await raised_by(client.get_run("thread_1", "run_1"))

    assert type(error) is BadResponse
    assert "Expected a run object, got list" in error.message


@pytest.mark.parametrize(
    "body",
    [[], {"object": "list"}, {"object": "list", "data": {"id": "run_1"}}, "runs", None],
    ids=["a bare list", "no data", "data is an object", "a string", "null"],
)
async def test_a_list_envelope_of_the_wrong_shape_raises_bad_response(upstream, client, body):
    upstream.get("/threads/thread_1/runs").respond(200, json=body)

    error = await raised_by(client.list_runs("thread_1"))

    assert type(error) is BadResponse


async def test_a_list_item_of_the_wrong_shape_raises_bad_response(upstream, client):
    upstream.get("/threads/thread_1/runs").respond(200, json=page_json([run_json()]) | {"data": [1]})

    error = await raised_by(client.list_runs("thread_1"))

    assert type(error) is BadResponse


@pytest.mark.parametrize(
    ("body", "message", "code"),
    [
        ({"error": {"code": "NotFound", "message": "Thread not found."}}, "Thread not found.", "NotFound"),
        ({"message": "Not here.", "code": "gone"}, "Not here.", "gone"),
        ({"error": "Resource not found"}, "Resource not found", None),
        ({"error": {"message": "No run.", "code": 404, "param": ["run_id"]}}, "No run.", None),
    ],
    ids=["azure envelope", "bare error object", "error as a string", "code and param of the wrong type"],
)
async def test_other_error_body_shapes_still_give_the_upstream_message(upstream, client, body, message, code):
    upstream.get(RUN_PATH).respond(404, json=body)

    error = await raised_by(client.get_run("thread_1", "run_1"))

    assert type(error) is NotFound
    assert error.message == message
    assert error.code == code
    assert error.param is None


async def test_a_plain_text_error_body_is_quoted_clipped(upstream, client):
    upstream.get(RUN_PATH).respond(404, text="no such route " + "x" * 1000)

    error = await raised_by(client.get_run("thread_1", "run_1"))

    assert error.message.startswith("HTTP 404 Not Found: no such route xxx")
    assert len(error.message) < 350


async def test_an_empty_error_body_gives_a_message_naming_the_status(upstream, client):
    upstream.get(RUN_PATH).respond(409)

    error = await raised_by(client.get_run("thread_1", "run_1"))

    assert type(error) is Conflict
    assert error.message == "The upstream answered HTTP 409 Conflict."


async def test_a_very_long_upstream_message_is_clipped(upstream, client):
    upstream.get(RUN_PATH).respond(400, json=error_json("y" * 5000))

    error = await raised_by(client.get_run("thread_1", "run_1"))

    assert len(error.message) == MAX_MESSAGE_CHARS
    assert error.message.endswith("…")


async def test_json_nested_too_deep_to_parse_raises_bad_response(upstream, client):
    upstream.get(RUN_PATH).respond(200, text="[" * 100_000 + "]" * 100_000)

    error = await raised_by(client.get_run("thread_1", "run_1"))

    assert type(error) is BadResponse


async def test_an_error_body_nested_too_deep_to_parse_still_gives_its_status(upstream, client):
    upstream.get(RUN_PATH).respond(404, json=None, text="[" * 100_000)

    error = await raised_by(client.get_run("thread_1", "run_1"))

    assert type(error) is NotFound


async def test_absurd_retry_after_and_poll_after_hints_are_cut_to_an_hour(upstream, make_client):
    upstream.get(RUN_PATH).respond(429, json=error_json("Slow down."), headers={"retry-after": "99999999999"})
    error = await raised_by(make_client(retries=0).get_run("thread_1", "run_1"))
    assert error.retry_after == 3600.0

    upstream.get(RUN_PATH).respond(200, json=run_json(), headers={"openai-poll-after-ms": "99999999999"})
    run = await make_client().get_run("thread_1", "run_1")
    assert run.info.poll_after_ms == 3_600_000


async def test_an_azure_request_id_header_is_used_when_there_is_no_x_request_id(upstream, client):
    upstream.get(RUN_PATH).respond(404, json=error_json("gone"), headers={"apim-request-id": "apim-42"})

    error = await raised_by(client.get_run("thread_1", "run_1"))

    assert error.request_id == "apim-42"


async def test_a_429_carries_how_long_the_upstream_asked_to_wait(upstream, make_client):
    upstream.get(RUN_PATH).respond(
        429, json=error_json("Slow down.", code="rate_limit_exceeded"), headers={"retry-after": "12"}
    )

    error = await raised_by(make_client(retries=0).get_run("thread_1", "run_1"))

    assert type(error) is RateLimited
    assert error.retry_after == 12.0
    assert error.code == "rate_limit_exceeded"


async def test_a_transport_error_does_not_chain_the_httpx_exception(upstream, make_client):
    upstream.get(RUN_PATH).mock(side_effect=httpx.ConnectError)

    error = await raised_by(make_client(retries=0).get_run("thread_1", "run_1"))

    assert error.__cause__ is None
    assert error.__suppress_context__


async def test_objects_answered_without_their_ids_are_placed_where_they_were_asked_for(upstream, client):
    bare = {k: v for k, v in run_json().items() if k not in ("id", "thread_id")}
    upstream.get(RUN_PATH).respond(200, json=bare)
    upstream.get("/threads/thread_1/runs").respond(200, json=page_json([{**bare, "id": "run_2"}]))
    upstream.get(RUN_PATH + "/steps/step_1").respond(200, json={"type": "message_creation"})
    upstream.get(RUN_PATH + "/steps").respond(200, json=page_json([{"id": "step_2"}]))

    run = await client.get_run("thread_1", "run_1")
    (listed,) = (await client.list_runs("thread_1")).data
    step = await client.get_step("thread_1", "run_1", "step_1")
    (listed_step,) = (await client.list_steps("thread_1", "run_1")).data

    assert (run.id, run.thread_id) == ("run_1", "thread_1")
    assert "id" not in run.raw  # shown as sent
    assert (listed.id, listed.thread_id) == ("run_2", "thread_1")
    assert (step.id, step.run_id, step.thread_id) == ("step_1", "run_1", "thread_1")
    assert (listed_step.id, listed_step.run_id, listed_step.thread_id) == ("step_2", "run_1", "thread_1")
