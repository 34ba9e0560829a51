"""What an action's form carries (tool outputs, messages, metadata, reasons may hold secrets) never shows in
Django's error reports: the POST of every action view is reported as stars."""

import re
import secrets
import sys

import pytest
from django.core.signals import got_request_exception
from django.views.debug import ExceptionReporter

from tests.actions.conftest import fault, outputs_form, post_form, run_path

SECRET = "sk-live-customer-" + secrets.token_hex(8)


@pytest.fixture
def reports():
    """The error reports Django would send for the requests that raise in this test (as text)."""
    made = []

    def report(sender, request, **kwargs):
        made.append(ExceptionReporter(request, *sys.exc_info()).get_traceback_text())

    got_request_exception.connect(report)
    yield made
    got_request_exception.disconnect(report)


def posted_section(report: str) -> str:
    return re.search(r"\nPOST:(.*?)\nFILES:", report, re.S).group(1)


def forms(run, calls) -> dict:
    """Each action's path, the end of the first upstream path it reads, and a form with the secret in
    every field a person types."""
    return {
        "cancel": (run_path(run, "cancel"), f"/runs/{run.run_id}", {"reason": SECRET}),
        "submit": (
            run_path(run, "submit"),
            f"/runs/{run.run_id}",
            outputs_form(calls, get_weather=SECRET, get_time=SECRET),
        ),
        "metadata": (run_path(run, "metadata"), f"/runs/{run.run_id}", {"key_0": "k", "value_0": SECRET}),
        "start": (
            f"/threads/{run.thread_id}/runs/new/",
            "/assistants",
            {"assistant_id": run.assistant_id, "message": SECRET, "instructions": SECRET},
        ),
        "new thread": ("/new/", "/assistants", {"assistant_id": run.assistant_id, "message": SECRET}),
    }


@pytest.mark.parametrize("action", ["cancel", "submit", "metadata", "start", "new thread"])
async def test_an_error_report_of_an_action_shows_none_of_what_was_posted(
    action, operator_client, waiting_run, spy, reports
):
    run, calls = waiting_run
    path, first_read, form = forms(run, calls)[action]
    form = {**form, "form_token": secrets.token_urlsafe(24)}
    fault(spy, "GET", first_read, side_effect=RuntimeError("a bug in the dashboard"))

    with pytest.raises(RuntimeError):
        await post_form(operator_client, path, form)

    [report] = reports
    posted = posted_section(report)
    assert SECRET not in posted
    assert "********************" in posted
