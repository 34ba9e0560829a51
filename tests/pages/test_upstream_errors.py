"""Upstream failures become pages that say what happened and what to do — never a 500, never a traceback,
never the API key. Unknown ids, bad credentials and unreachable hosts come from the real sandbox; respx
makes only what it cannot (timeouts, 5xx and HTML pages, 429, malformed JSON, echoed keys)."""

import socket

import httpx
import pytest
from asgiref.sync import sync_to_async

from runs_ui.connections import encrypt_key
from runs_ui.file_links import file_url
from runs_ui.models import Connection
from tests.fixtures import csrf_token
from tests.pages.conftest import (
    HX,
    assert_fragment,
    assert_full_page,
    assert_no_secret,
    error_body,
    json_response,
    text,
)

RUN_PATH = r"/threads/[^/]+/runs/[^/]+"


def _sane(response, secret: str) -> str:
    """Checks every error page must pass; returns its text."""
    assert response.status_code != 500
    html = text(response)
    assert "Traceback" not in html and "Something went wrong on the dashboard" not in html
    assert_no_secret(response, secret)
    return html


# --- not found -----------------------------------------------------------------------------------------


async def test_it_shows_a_404_naming_the_thread_it_looked_up(viewer_client, upstream):
    response = await viewer_client.get("/threads/thread_doesnotexist000/")
    assert response.status_code == 404
    html = _sane(response, upstream.api_key)
    host = upstream.base_url.split("/")[2]
    assert 'Looked up: <span class="mono">thread thread_doesnotexist000</span> on ' + host in html
    assert "Not found" in html


async def test_it_shows_a_404_naming_the_run_it_looked_up(viewer_client, finished, upstream):
    run = finished("answer")
    response = await viewer_client.get(f"/threads/{run.thread_id}/runs/run_doesnotexist000/")
    assert response.status_code == 404
    html = _sane(response, upstream.api_key)
    assert f"run run_doesnotexist000 in thread {run.thread_id}" in html


async def test_it_shows_a_404_naming_the_step_it_looked_up(viewer_client, finished, upstream):
    run = finished("answer")
    response = await viewer_client.get(f"/threads/{run.thread_id}/runs/{run.run_id}/steps/step_nope000/")
    assert response.status_code == 404
    html = _sane(response, upstream.api_key)
    assert f"run step step_nope000 in run {run.run_id} in thread {run.thread_id}" in html


async def test_an_unknown_step_is_a_404_even_when_the_upstream_refuses_it_as_a_cursor_first(
    viewer_client, finished, faults, upstream
):
    # The step page also lists the step before it (`after=<step id>`); for an unknown id the upstream
    # answers that with a 400 — here instantly, so it arrives before the 404 of the step itself.
    run = finished("answer")
    faults.on("GET", r"/threads/[^/]+/runs/[^/]+/steps", json_response(400, error_body("Invalid 'after'.")))
    response = await viewer_client.get(f"/threads/{run.thread_id}/runs/{run.run_id}/steps/step_nope000/")
    assert response.status_code == 404
    assert "run step step_nope000" in _sane(response, upstream.api_key)


async def test_a_step_page_renders_when_only_the_lookup_of_the_step_before_it_fails(
    viewer_client, finished, faults, upstream, api
):
    run = finished("answer")
    step = api("GET", f"/threads/{run.thread_id}/runs/{run.run_id}/steps")["data"][0]
    faults.on("GET", r"/threads/[^/]+/runs/[^/]+/steps", httpx.ReadTimeout("read timed out"))
    response = await viewer_client.get(f"/threads/{run.thread_id}/runs/{run.run_id}/steps/{step['id']}/")
    assert response.status_code == 200
    assert f'<li class="step" id="{step["id"]}"' in _sane(response, upstream.api_key)


async def test_an_export_of_an_unknown_thread_is_a_404_page_not_a_download(viewer_client, upstream):
    response = await viewer_client.get("/threads/thread_doesnotexist000/export.json")
    assert response.status_code == 404
    assert "Content-Disposition" not in response
    assert "thread thread_doesnotexist000" in _sane(response, upstream.api_key)


async def test_an_unknown_file_is_a_404(viewer_client, upstream):
    # Referred to by a page (its link is signed), yet gone upstream.
    response = await viewer_client.get(file_url("default", "file-doesnotexist000"))
    assert response.status_code == 404
    assert "file file-doesnotexist000" in _sane(response, upstream.api_key)


async def test_an_unknown_thread_in_an_htmx_partial_is_a_banner_in_place(viewer_client, upstream):
    response = await viewer_client.get("/threads/thread_doesnotexist000/?part=timeline", headers=HX)
    assert response.status_code == 200  # htmx swaps 2xx only: the banner replaces the loader
    assert_fragment(response)
    html = _sane(response, upstream.api_key)
    assert 'role="alert"' in html and "thread thread_doesnotexist000" in html


# --- credentials and configuration ---------------------------------------------------------------------


async def test_a_rejected_api_key_shows_which_settings_to_fix(viewer_client, finished, settings, upstream):
    run = finished("answer")
    settings.ASSISTANTS_API_KEY = "sk-wrong-key-0123456789abcdef"
    response = await viewer_client.get(f"/threads/{run.thread_id}/runs/{run.run_id}/")
    assert response.status_code == 502
    html = _sane(response, "sk-wrong-key-0123456789abcdef")
    assert_no_secret(response, upstream.api_key)
    assert "The upstream refused the dashboard&#x27;s credentials" in html
    assert "Authentication failed (HTTP 401)" in html
    assert "To fix it, check ASSISTANTS_API_BASE_URL, ASSISTANTS_API_KEY" in html


async def test_a_key_echoed_back_by_the_upstream_is_redacted(viewer_client, faults, upstream):
    key = upstream.api_key
    faults.on("GET", r"/threads/[^/]+", json_response(401, error_body(f"Incorrect API key provided: {key}.")))
    response = await viewer_client.get("/threads/thread_abc123/")
    assert response.status_code == 502
    html = _sane(response, key)
    assert "Incorrect API key provided: [redacted]." in html


async def test_a_403_shows_which_settings_to_fix(viewer_client, faults, upstream):
    faults.on("GET", RUN_PATH, json_response(403, error_body("This key may not read runs.")))
    response = await viewer_client.get("/threads/thread_abc123/runs/run_abc123/")
    assert response.status_code == 502
    html = _sane(response, upstream.api_key)
    assert "Permission denied (HTTP 403): This key may not read runs." in html
    assert "To fix it, check ASSISTANTS_API_BASE_URL, ASSISTANTS_API_KEY" in html


async def test_an_azure_profile_without_an_api_version_names_the_setting_and_calls_nothing(
    viewer_client, settings, faults, upstream
):
    settings.ASSISTANTS_API_PROFILE = "azure-openai"
    settings.ASSISTANTS_API_VERSION = ""
    response = await viewer_client.get("/threads/thread_abc123/")
    assert response.status_code == 502
    html = _sane(response, upstream.api_key)
    assert "The connection is not configured completely" in html
    assert "To fix it, check ASSISTANTS_API_VERSION." in html
    assert faults.calls == []


async def test_a_connection_from_the_admin_with_a_bad_key_points_at_the_admin(
    viewer_client, finished, upstream
):
    run = finished("answer")
    await Connection.objects.acreate(
        slug="backup",
        name="Backup sandbox",
        profile="sandbox",
        base_url=upstream.base_url,
        api_key_encrypted=await sync_to_async(encrypt_key)("sk-not-the-key-0123456789"),
    )
    response = await viewer_client.get(f"/c/backup/threads/{run.thread_id}/")
    assert response.status_code == 502
    html = _sane(response, "sk-not-the-key-0123456789")
    assert "To fix it, check the connection “backup” in the admin." in html  # its slug, as in its URLs


async def test_a_connection_from_the_admin_serves_its_pages_under_its_prefix(
    viewer_client, finished, upstream
):
    run = finished("answer")
    await Connection.objects.acreate(
        slug="second",
        name="Second",
        profile="sandbox",
        base_url=upstream.base_url,
        api_key_encrypted=await sync_to_async(encrypt_key)(upstream.api_key),
    )
    html = text(await viewer_client.get(f"/c/second/threads/{run.thread_id}/?part=timeline", headers=HX))
    assert f'href="/c/second/threads/{run.thread_id}/runs/{run.run_id}/"' in html
    page = await viewer_client.get(f"/c/second/threads/{run.thread_id}/runs/{run.run_id}/")
    assert page.status_code == 200
    assert_no_secret(page, upstream.api_key)


# --- unavailable ---------------------------------------------------------------------------------------


def _assert_retry_page(response, url: str, secret: str) -> str:
    assert response.status_code == 503
    assert_full_page(response)
    html = _sane(response, secret)
    assert "The upstream is not answering right now" in html
    assert f'<a class="button" href="{url}">Retry</a>' in html
    return html


async def test_a_timeout_shows_the_page_with_a_banner_and_a_retry_link(viewer_client, faults, upstream):
    faults.on("GET", RUN_PATH, httpx.ReadTimeout("read timed out"))
    url = "/threads/thread_abc123/runs/run_abc123/"
    html = _assert_retry_page(await viewer_client.get(url), url, upstream.api_key)
    assert "Upstream timed out" in html and "did not answer in time" in html


async def test_a_5xx_html_page_shows_a_retry_banner_without_the_html(viewer_client, faults, upstream):
    page = "<html><body><h1>Internal explosion</h1><pre>at line 42 in secret_module.py</pre></body></html>"
    faults.on("GET", r"/threads/[^/]+", httpx.Response(500, html=page))
    url = "/threads/thread_abc123/"
    html = _assert_retry_page(await viewer_client.get(url), url, upstream.api_key)
    assert "The upstream answered HTTP 500 Internal Server Error with an HTML page." in html
    assert "Internal explosion" not in html and "secret_module" not in html


async def test_a_502_from_a_proxy_shows_a_retry_banner(viewer_client, faults, upstream):
    faults.on("GET", r"/threads/[^/]+", httpx.Response(502, html="<h1>502 Bad Gateway</h1><hr>nginx"))
    url = "/threads/thread_abc123/?order=asc"
    html = _assert_retry_page(await viewer_client.get(url), url, upstream.api_key)
    assert "HTTP 502" in html and "nginx" not in html


async def test_a_503_with_retry_after_says_how_long_to_wait(viewer_client, faults, upstream):
    faults.on(
        "GET", RUN_PATH, json_response(503, error_body("Overloaded", "server_error"), **{"Retry-After": "12"})
    )
    url = "/threads/thread_abc123/runs/run_abc123/"
    response = await viewer_client.get(url)
    html = _assert_retry_page(response, url, upstream.api_key)
    assert "The upstream asked to wait 12 s." in html
    assert response["Retry-After"] == "12"


async def test_a_429_shows_the_page_with_a_banner_and_how_long_to_wait(viewer_client, faults, upstream):
    faults.on(
        "GET",
        RUN_PATH,
        json_response(
            429, error_body("Rate limit reached for requests", "rate_limit_exceeded"), **{"Retry-After": "7"}
        ),
    )
    url = "/threads/thread_abc123/runs/run_abc123/"
    response = await viewer_client.get(url)
    html = _assert_retry_page(response, url, upstream.api_key)
    assert "Rate limited (HTTP 429): Rate limit reached for requests" in html
    assert "The upstream asked to wait 7 s." in html
    assert response["Retry-After"] == "7"
    assert "req_test_429" in html  # the upstream's request id, for a support ticket


async def test_an_unreachable_upstream_shows_a_retry_banner(viewer_client, settings, upstream):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.ASSISTANTS_API_BASE_URL = f"http://127.0.0.1:{port}/v1"
    settings.UPSTREAM_RETRIES = 0
    url = "/threads/thread_abc123/"
    html = _assert_retry_page(await viewer_client.get(url), url, upstream.api_key)
    assert "Could not connect to 127.0.0.1:" in html


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("/threads/thread_abc123/?part=timeline&order=asc", r"/threads/[^/]+/runs"),
        (
            "/threads/thread_abc123/runs/run_abc123/?part=steps&after=step_abc",
            r"/threads/[^/]+/runs/[^/]+/steps",
        ),
    ],
)
async def test_a_failing_htmx_partial_answers_an_inline_banner_with_a_retry_button(
    viewer_client, faults, upstream, url, path
):
    faults.on("GET", path, httpx.ConnectTimeout("connect timed out"))
    faults.on("GET", r".*", json_response(200, {"object": "list", "data": [], "has_more": False}))
    response = await viewer_client.get(url, headers=HX)
    assert response.status_code == 200
    assert_fragment(response)
    html = _sane(response, upstream.api_key)
    assert 'class="banner warning" role="alert"' in html
    retry = url.replace("&", "&amp;")
    button = f'<button type="button" hx-get="{retry}" hx-target="closest .banner" hx-swap="outerHTML">'
    assert button + "Retry</button>" in html


async def test_the_home_page_still_works_when_the_upstream_is_down(viewer_client, faults):
    faults.on("GET", r".*", httpx.ConnectError("connection refused"))
    response = await viewer_client.get("/")
    assert response.status_code == 200
    assert "No threads yet." in text(response)


async def test_adding_threads_while_the_upstream_times_out_says_which_could_not_be_checked(
    viewer_client, index_not_empty, faults
):
    token = await csrf_token(viewer_client, "/accounts/login/")
    faults.on("GET", r"/threads/[^/]+", httpx.ReadTimeout("read timed out"))
    response = await viewer_client.post(
        "/index/add/", {"ids": "thread_slow1 thread_slow2"}, headers={"X-CSRFToken": token}, follow=True
    )
    html = text(response)
    assert "Could not check: " in html
    assert "thread_slow1 (upstream timed out)" in html and "thread_slow2 (upstream timed out)" in html


# --- unreadable ----------------------------------------------------------------------------------------


UNREADABLE = {
    "truncated JSON": httpx.Response(
        200, text='{"id": "run_abc123", "status": ', headers={"content-type": "application/json"}
    ),
    "HTML 200": httpx.Response(200, html="<html><body>Welcome to the captive portal</body></html>"),
    "a list": httpx.Response(200, json=["not", "a", "run"]),
    "a string": httpx.Response(200, json="run_abc123"),
}


async def test_an_unreadable_answer_shows_a_502_page(viewer_client, faults, upstream, subtests):
    for name, answer in UNREADABLE.items():
        with subtests.test(answer=name):
            faults.rules.clear()
            faults.on("GET", RUN_PATH, answer)
            response = await viewer_client.get("/threads/thread_abc123/runs/run_abc123/")
            assert response.status_code == 502
            html = _sane(response, upstream.api_key)
            assert "The upstream sent something unreadable" in html
            assert "captive portal" not in html


async def test_an_unexpected_status_is_an_error_page_not_a_500(viewer_client, faults, upstream, subtests):
    for status in (418, 451, 499, 520):
        with subtests.test(status=status):
            faults.rules.clear()
            faults.on("GET", r"/threads/[^/]+", json_response(status, error_body(f"Odd status {status}")))
            response = await viewer_client.get("/threads/thread_abc123/")
            assert response.status_code in (502, 503)
            html = _sane(response, upstream.api_key)
            assert f"(HTTP {status}): Odd status {status}" in html


async def test_an_export_that_fails_half_way_is_an_error_page_not_a_partial_download(
    viewer_client, finished, faults, upstream
):
    run = finished("answer")
    faults.on(
        "GET", r"/threads/[^/]+/runs/[^/]+/steps", json_response(500, error_body("boom", "server_error"))
    )
    response = await viewer_client.get(f"/threads/{run.thread_id}/export.json")
    assert response.status_code == 503
    assert "Content-Disposition" not in response
    _sane(response, upstream.api_key)
