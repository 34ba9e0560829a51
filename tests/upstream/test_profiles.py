"""Each provider profile addresses and authenticates the way its upstream wants, and the key stays secret."""

from __future__ import annotations

import logging

import httpx
import pytest

from runs_ui.upstream.errors import Misconfigured, UpstreamError
from runs_ui.upstream.profiles import PROFILES
from sandbox.wire import page as page_json  # the list envelope as the sandbox sends it

from .conftest import BASE, KEY, error_json, json_response, run_json, sse_response

RUN_PATH = "/threads/thread_1/runs/run_1"


def mock_every_kind_of_call(upstream):
    upstream.get(RUN_PATH).respond(200, json=run_json())
    upstream.get("/threads/thread_1/runs").respond(200, json=page_json([run_json()]))
    upstream.post(f"{RUN_PATH}/cancel").respond(200, json=run_json(status="cancelling"))
    upstream.post("/threads/thread_1/runs").mock(return_value=sse_response(("done", "[DONE]")))


async def make_every_kind_of_call(client) -> None:
    await client.get_run("thread_1", "run_1")
    await client.list_runs("thread_1")
    await client.cancel_run("thread_1", "run_1")
    async with client.stream_create_run("thread_1", "asst_1") as events:
        assert [e async for e in events] == []


async def test_the_openai_profile_sends_a_bearer_key_and_the_beta_header_and_no_api_version(
    upstream, make_client
):
    mock_every_kind_of_call(upstream)

    await make_every_kind_of_call(make_client("openai"))

    assert len(upstream.calls) == 4
    for request in (call.request for call in upstream.calls):
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert request.headers["openai-beta"] == "assistants=v2"
        assert "api-key" not in request.headers
        assert "api-version" not in request.url.params


async def test_the_azure_openai_profile_sends_an_api_key_header_and_the_api_version_on_every_call(
    upstream, make_client
):
    mock_every_kind_of_call(upstream)

    await make_every_kind_of_call(make_client("azure-openai", api_version="2024-08-01-preview"))

    assert len(upstream.calls) == 4
    for request in (call.request for call in upstream.calls):
        assert request.headers["api-key"] == KEY
        assert "authorization" not in request.headers
        assert "openai-beta" not in request.headers
        assert request.url.params.get_list("api-version") == ["2024-08-01-preview"]


async def test_the_azure_agents_profile_sends_a_bearer_token_and_the_api_version_on_every_call(
    upstream, make_client
):
    mock_every_kind_of_call(upstream)

    await make_every_kind_of_call(make_client("azure-agents", api_version="2025-05-01"))

    assert len(upstream.calls) == 4
    for request in (call.request for call in upstream.calls):
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert "api-key" not in request.headers
        assert request.url.params.get_list("api-version") == ["2025-05-01"]


async def test_the_sandbox_profile_sends_a_bearer_key_and_the_beta_header(upstream, make_client):
    mock_every_kind_of_call(upstream)

    await make_every_kind_of_call(make_client("sandbox"))

    for request in (call.request for call in upstream.calls):
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert request.headers["openai-beta"] == "assistants=v2"
        assert "api-version" not in request.url.params


async def test_the_api_version_goes_with_the_other_query_parameters(upstream, make_client):
    route = upstream.get("/threads/thread_1/runs/run_1/steps").respond(200, json=page_json([]))

    await make_client("azure-agents", api_version="2025-05-01").list_steps(
        "thread_1", "run_1", after="step_9", include_content=True
    )

    params = route.calls.last.request.url.params
    assert params["api-version"] == "2025-05-01"
    assert params["after"] == "step_9"
    assert params["include[]"]


async def test_a_client_without_a_key_sends_no_credentials(upstream):
    from runs_ui.upstream.client import AssistantsClient

    route = upstream.get(RUN_PATH).respond(200, json=run_json())

    await AssistantsClient(BASE, "", PROFILES["sandbox"]).get_run("thread_1", "run_1")

    assert "authorization" not in route.calls.last.request.headers


def test_only_azure_agents_and_the_sandbox_can_list_threads():
    assert {name for name, p in PROFILES.items() if p.can_list_threads} == {"azure-agents", "sandbox"}


def test_only_the_azure_profiles_need_an_api_version():
    assert {name for name, p in PROFILES.items() if p.needs_api_version} == {"azure-openai", "azure-agents"}


async def test_list_threads_uses_the_threads_endpoint(upstream, make_client):
    route = upstream.get("/threads").respond(200, json=page_json([{"id": "thread_1", "object": "thread"}]))

    page = await make_client("azure-agents", api_version="2025-05-01").list_threads(limit=5)

    assert [t.id for t in page.data] == ["thread_1"]
    assert route.calls.last.request.url.params["limit"] == "5"


CALLS = {
    "get run": lambda c: c.get_run("thread_1", "run_1"),
    "list runs": lambda c: c.list_runs("thread_1"),
    "cancel run": lambda c: c.cancel_run("thread_1", "run_1"),
    "file content": lambda c: c.get_file_content("file-1"),
}


@pytest.mark.parametrize("profile", ["azure-openai", "azure-agents"])
@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
async def test_an_azure_profile_without_an_api_version_is_refused_before_any_http_call(
    upstream, make_client, profile, call
):
    catch_all = upstream.route().respond(200, json=run_json())

    with pytest.raises(Misconfigured) as caught:
        await call(make_client(profile, api_version=""))

    assert caught.value.setting == "ASSISTANTS_API_VERSION"
    assert isinstance(caught.value, UpstreamError)
    assert "API version" in caught.value.message
    assert catch_all.call_count == 0


@pytest.mark.parametrize("profile", ["azure-openai", "azure-agents"])
async def test_an_azure_stream_without_an_api_version_is_refused_before_any_http_call(
    upstream, make_client, profile
):
    catch_all = upstream.route().respond(200, json=run_json())

    with pytest.raises(Misconfigured) as caught:
        async with make_client(profile).stream_create_run("thread_1", "asst_1"):
            pass

    assert caught.value.setting == "ASSISTANTS_API_VERSION"
    assert catch_all.call_count == 0


# --- the key stays secret ----------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_the_api_key_is_not_in_the_clients_repr(make_client, profile):
    client = make_client(profile, api_version="2025-05-01")

    assert KEY not in repr(client)
    assert KEY not in str(client)


FAILURES = {
    "401 echoing the key": httpx.Response(
        401, json=error_json(f"Incorrect API key provided: {KEY}.", code="invalid_api_key")
    ),
    "plain-text 403 echoing the key": httpx.Response(403, text=f"key {KEY} is not allowed here"),
    "500": httpx.Response(500, json=error_json("Oops.")),
    "html 502": httpx.Response(502, html=f"<html>{KEY}</html>"),
    "malformed json": httpx.Response(200, text="{oops"),
    "wrong shape": httpx.Response(200, json=[1, 2]),
    "connect error": httpx.ConnectError(f"cannot connect with {KEY}"),
    "read timeout": httpx.ReadTimeout("slow"),
}


def leaks(error: BaseException) -> bool:
    texts = [str(error), repr(error), *map(str, error.args), str(getattr(error, "message", ""))]
    return any(KEY in text for text in texts)


@pytest.mark.parametrize("profile", ["openai", "azure-openai"])
@pytest.mark.parametrize("fault", FAILURES.values(), ids=FAILURES.keys())
async def test_the_api_key_is_in_no_exception_message(upstream, make_client, profile, fault):
    upstream.get(RUN_PATH).mock(side_effect=[fault])

    with pytest.raises(UpstreamError) as caught:
        await make_client(profile, api_version="2024-08-01-preview", retries=0).get_run("thread_1", "run_1")

    assert not leaks(caught.value)


async def test_a_key_echoed_by_the_upstream_is_redacted_from_the_message(upstream, make_client):
    upstream.get(RUN_PATH).respond(401, json=error_json(f"Incorrect API key provided: {KEY}."))

    with pytest.raises(UpstreamError) as caught:
        await make_client(retries=0).get_run("thread_1", "run_1")

    assert caught.value.message == "Incorrect API key provided: [redacted]."


async def test_a_key_echoed_before_a_stream_is_redacted_too(upstream, client):
    upstream.post("/threads/thread_1/runs").respond(401, json=error_json(f"Bad key {KEY}"))

    with pytest.raises(UpstreamError) as caught:
        async with client.stream_create_run("thread_1", "asst_1"):
            pass

    assert not leaks(caught.value)


async def test_a_key_that_straddles_where_a_long_plain_text_body_is_cut_leaves_no_piece_of_itself(
    upstream, make_client
):
    # The body is quoted up to 300 characters; the key starts just before the cut.
    upstream.get(RUN_PATH).respond(403, text="x" * 280 + f" key {KEY} refused")

    with pytest.raises(UpstreamError) as caught:
        await make_client(retries=0).get_run("thread_1", "run_1")

    assert KEY[:12] not in caught.value.message
    assert "[redacted]" in caught.value.message


async def test_a_key_echoed_in_an_error_event_mid_stream_is_redacted(upstream, client):
    upstream.post("/threads/thread_1/runs").mock(
        return_value=sse_response(("error", {"message": f"key {KEY} expired " + "z" * 5000}))
    )

    with pytest.raises(UpstreamError) as caught:
        async with client.stream_create_run("thread_1", "asst_1") as events:
            async for _ in events:
                pass

    assert not leaks(caught.value)
    assert caught.value.message.startswith("key [redacted] expired")
    assert len(caught.value.message) <= 2000


async def test_credentials_in_the_base_url_are_never_shown_as_the_host(upstream, make_client):
    client = make_client(base_url=BASE.replace("://", "://admin:hunter2@"))
    upstream.get(RUN_PATH).mock(side_effect=httpx.ConnectError("refused"))

    with pytest.raises(UpstreamError) as caught:
        await make_client(base_url=client.base_url, retries=0).get_run("thread_1", "run_1")

    assert "hunter2" not in client.host and "admin" not in client.host
    assert "hunter2" not in str(caught.value)


def log_everything(caplog) -> None:
    # The settings quiet httpx and httpcore; an operator debugging a connection may not.
    for name in (None, "httpx", "httpcore", "runs_ui"):
        caplog.set_level(logging.DEBUG, logger=name)


def logged_text(caplog) -> str:
    return "\n".join(f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)


@pytest.mark.parametrize("profile", ["openai", "azure-openai"])
async def test_the_api_key_is_in_no_log_record_of_a_call_that_fails_or_succeeds(
    upstream, make_client, caplog, profile
):
    log_everything(caplog)
    upstream.get(RUN_PATH).mock(
        side_effect=[
            httpx.ConnectError("refused"),
            httpx.Response(401, json=error_json(f"Incorrect API key provided: {KEY}.")),
            httpx.Response(200, json=run_json()),
        ]
    )
    client = make_client(profile, api_version="2024-08-01-preview", retries=0)

    for _ in range(2):
        with pytest.raises(UpstreamError):
            await client.get_run("thread_1", "run_1")
    await client.get_run("thread_1", "run_1")

    text = logged_text(caplog)
    assert "GET /threads/thread_1/runs/run_1" in text  # the calls were logged...
    assert "HTTP Request: GET" in text
    assert KEY not in text  # ...without the key


async def test_the_api_key_is_in_no_log_record_of_a_real_http_exchange(make_client, loopback, caplog):
    # Over a real socket httpcore logs its own trace at DEBUG; the key must not be in it either.
    log_everything(caplog)
    loopback.script.extend([json_response(500, error_json("Oops.")), json_response(200, run_json())])
    client = make_client("azure-openai", base_url=loopback.url, api_version="2024-08-01-preview", retries=0)

    with pytest.raises(UpstreamError):
        await client.get_run("thread_1", "run_1")
    await client.get_run("thread_1", "run_1")

    text = logged_text(caplog)
    assert "httpcore" in text
    assert KEY not in text
    assert KEY.encode() in loopback.requests[0]  # it was sent, just not logged
