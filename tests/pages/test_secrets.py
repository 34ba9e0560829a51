"""Secrets stay on the server: no key in an error report's frames or settings, no password of a URL on a debug
page, no forged log line, and a stored key that no longer decrypts is said, not silently sent empty."""

from __future__ import annotations

import logging

import pytest
import respx
from cryptography.fernet import Fernet
from django.test import RequestFactory
from django.views.debug import ExceptionReporter

from dashboard.log_lines import OneLineFormatter
from runs_ui.connections import default_client
from runs_ui.models import Connection
from runs_ui.upstream.errors import UpstreamError
from tests.fixtures import csrf_token
from tests.pages.conftest import error_body, json_response

KEY = "sk-live-KEEP-ME-SECRET-0123456789abcdef"
PASSWORD = "hunter2-" + "in-a-url"  # built, so that no source line a debug page quotes holds it
BASE = "https://upstream.invalid/v1"


async def _failed_call(settings) -> UpstreamError:
    settings.ASSISTANTS_API_BASE_URL = BASE
    settings.ASSISTANTS_API_KEY = KEY
    settings.ASSISTANTS_API_PROFILE = "openai"
    settings.UPSTREAM_RETRIES = 0
    with respx.mock(base_url=BASE) as upstream:
        upstream.get("/threads/thread_1/runs/run_1").respond(500, json=error_body("boom", "server_error"))
        with pytest.raises(UpstreamError) as caught:
            await default_client().get_run("thread_1", "run_1")
    return caught.value


def _report(exc: BaseException) -> str:
    request = RequestFactory().get("/threads/thread_1/runs/run_1/")
    return ExceptionReporter(request, type(exc), exc, exc.__traceback__).get_traceback_html()


async def test_no_frame_of_a_failed_upstream_call_holds_the_key_in_a_local_variable(settings):
    exc = await _failed_call(settings)

    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    assert {f.f_code.co_name for f in frames} >= {"get_run", "_call"}
    for frame in frames:
        for name, value in frame.f_locals.items():
            assert KEY not in repr(value), (frame.f_code.co_name, name)


async def test_an_error_report_of_a_failed_upstream_call_shows_no_key(settings):
    exc = await _failed_call(settings)

    html = _report(exc)

    assert "get_run" in html  # the frames are there, with their variables
    assert KEY not in html


def test_the_debug_page_masks_passwords_inside_redis_and_database_urls(settings):
    settings.REDIS_URL = f"redis://:{PASSWORD}@127.0.0.1:6379/0"
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "x", "CONFIG": {"hosts": [{"address": settings.REDIS_URL}]}}
    }
    settings.SANDBOX_BASE_URL = f"http://user:{PASSWORD}@127.0.0.1:8000/sandbox/v1"
    request = RequestFactory().get("/", DATABASE_URL=f"postgres://app:{PASSWORD}@db:5432/runs")

    html = _debug_page(request)

    assert PASSWORD not in html
    assert "127.0.0.1:6379/0" in html  # what is not a secret still shows


def test_every_log_line_stays_one_line_whatever_a_message_quotes(settings):
    formatter = settings.LOGGING["formatters"]["plain"]
    assert formatter["()"] == "dashboard.log_lines.OneLineFormatter"
    record = logging.LogRecord(
        "runs_ui.views.responses",
        logging.WARNING,
        __file__,
        1,
        "upstream: %s",
        ("ok\r\nERROR forged",),
        None,
    )

    line = OneLineFormatter(formatter["format"]).format(record)

    assert "\n" not in line and "\r" not in line
    assert line.endswith("upstream: ok\\r\\nERROR forged")


async def test_an_upstream_message_with_line_breaks_is_logged_on_one_line(viewer_client, faults, caplog):
    faults.on("GET", r"/threads/[^/]+", json_response(400, error_body("bad\r\n2026 ERROR forged")))

    with caplog.at_level(logging.WARNING, logger="runs_ui.views.responses"):
        await viewer_client.get("/threads/thread_abc123/")

    [record] = [r for r in caplog.records if r.name == "runs_ui.views.responses"]
    assert "\n" not in record.getMessage() and "bad\\r\\n2026 ERROR forged" in record.getMessage()


# --- a stored key that no longer decrypts ------------------------------------------------------------


@pytest.fixture
async def orphaned(upstream, transactional_db):
    """An admin-added connection whose key was encrypted under another encryption key."""
    token = Fernet(Fernet.generate_key()).encrypt(b"sk-lost").decode()
    return await Connection.objects.acreate(
        name="Lost key", slug="lost", profile="sandbox", base_url=upstream.base_url, api_key_encrypted=token
    )


async def test_a_connection_whose_key_no_longer_decrypts_says_so_and_sends_nothing(viewer_client, orphaned):
    with respx.mock(assert_all_called=False) as spy:
        spy.route(host="127.0.0.1").pass_through()
        page = await viewer_client.get("/c/lost/threads/thread_abc123/")

    assert page.status_code == 502
    html = page.content.decode()
    assert "cannot be decrypted" in html
    assert "the connection “lost” in the admin" in html
    assert [c for c in spy.calls if "/threads/" in str(c.request.url)] == []


async def test_the_admin_says_which_connection_key_cannot_be_decrypted(admin_client, orphaned):
    listing = await admin_client.get("/admin/runs_ui/connection/")
    form = await admin_client.get(f"/admin/runs_ui/connection/{orphaned.pk}/change/")

    assert "cannot be decrypted — enter it again" in listing.content.decode()
    assert "Lost key cannot be decrypted" in listing.content.decode()
    assert "cannot be decrypted" in form.content.decode()


async def test_a_key_typed_into_the_admin_is_a_sensitive_post_parameter(admin_client):
    token = await csrf_token(admin_client, "/admin/runs_ui/connection/add/")
    response = await admin_client.post(
        "/admin/runs_ui/connection/add/",
        {"name": "New", "slug": "new", "profile": "openai", "base_url": "https://x.example/v1",
         "api_key": KEY, "csrfmiddlewaretoken": token},
    )  # fmt: skip

    request = response.asgi_request
    assert request.sensitive_post_parameters == ("api_key",)
    try:
        raise RuntimeError("while saving")
    except RuntimeError as exc:
        html = ExceptionReporter(request, type(exc), exc, exc.__traceback__).get_traceback_html()
    assert KEY not in html


def _debug_page(request) -> str:
    """Django's debug page for an error raised while `request` was handled (as DEBUG shows it)."""
    try:
        raise RuntimeError("for the report")
    except RuntimeError as exc:
        return ExceptionReporter(request, type(exc), exc, exc.__traceback__).get_traceback_html()
