"""Start a run on a thread, or create a thread and run: an assistant picker from the upstream; both stream."""

import json

import pytest

from runs_ui.models import ThreadEntry
from runs_ui.reconcile import MARK
from tests.actions.conftest import (
    calls_to,
    error_response,
    fault,
    follow,
    post_start,
    records,
    text,
)


@pytest.fixture
def finished_run(make_run, wait_for):
    run = make_run("answer", speed=50)
    wait_for(run, "completed")
    return run


def new_run_in(location: str) -> tuple[str, str]:
    """(thread_id, run_id) from a run page's path."""
    parts = location.strip("/").split("/")
    assert parts[0] == "threads" and parts[2] == "runs", location
    return parts[1], parts[3]


def messages_of(upstream, thread_id: str) -> list[str]:
    listing = upstream.request("GET", f"/threads/{thread_id}/messages?order=asc").json()
    return [part["text"]["value"] for m in listing["data"] for part in m["content"] if part["type"] == "text"]


async def test_the_start_form_offers_the_upstreams_assistants(operator_client, finished_run):
    page = await operator_client.get(f"/threads/{finished_run.thread_id}/runs/new/")

    assert page.status_code == 200
    assert (
        f'<option value="{finished_run.assistant_id}">Test answer (gpt-4o)</option>' in page.content.decode()
    )


async def test_the_start_form_takes_a_typed_assistant_id_when_the_list_is_unavailable(
    operator_client, finished_run, spy, settings
):
    settings.UPSTREAM_RETRIES = 0
    fault(spy, "GET", "/assistants", return_value=error_response(503, "down"))

    page = await operator_client.get(f"/threads/{finished_run.thread_id}/runs/new/")

    assert page.status_code == 200
    assert '<input type="text" name="assistant_id"' in page.content.decode()


async def test_starting_a_run_with_overrides_streams_lands_on_the_run_and_it_completes(
    operator_client, finished_run, upstream, spy, wait_for
):
    form = {
        "assistant_id": finished_run.assistant_id,
        "model": "gpt-4o-mini",
        "instructions": "Answer in one line.",
        "message": "And once more, please.",
    }

    response = await post_start(operator_client, f"/threads/{finished_run.thread_id}/runs/new/", form)

    thread_id, run_id = new_run_in(response["Location"])
    assert thread_id == finished_run.thread_id and run_id != finished_run.run_id
    [call] = calls_to(spy, "POST", f"/threads/{thread_id}/runs")
    [record] = await records()
    assert json.loads(call.request.content) == {
        "assistant_id": finished_run.assistant_id,
        "model": "gpt-4o-mini",
        "instructions": "Answer in one line.",
        "metadata": {MARK: record.form_token},
        "additional_messages": [{"role": "user", "content": "And once more, please."}],
        "stream": True,
    }
    page = await follow(operator_client, response)
    assert page.status_code == 200
    assert run_id in text(page)
    done = wait_for(type(finished_run)(finished_run.assistant_id, thread_id, run_id, {}), "completed")
    assert (done["model"], done["instructions"]) == ("gpt-4o-mini", "Answer in one line.")
    assert "And once more, please." in messages_of(upstream, thread_id)
    [record] = await records()
    assert (record.action, record.outcome, record.thread_id, record.run_id) == (
        "create_run",
        "succeeded",
        thread_id,
        run_id,
    )


async def test_starting_a_run_without_overrides_sends_only_the_assistant(
    operator_client, finished_run, spy, wait_for
):
    form = {"assistant_id": finished_run.assistant_id, "model": "", "instructions": "", "message": ""}

    response = await post_start(operator_client, f"/threads/{finished_run.thread_id}/runs/new/", form)

    thread_id, run_id = new_run_in(response["Location"])
    [call] = calls_to(spy, "POST", f"/threads/{thread_id}/runs")
    [record] = await records()
    assert json.loads(call.request.content) == {
        "assistant_id": finished_run.assistant_id,
        "metadata": {MARK: record.form_token},
        "stream": True,
    }
    wait_for(type(finished_run)(finished_run.assistant_id, thread_id, run_id, {}), "completed")


async def test_create_thread_and_run_starts_a_new_thread_with_the_first_message(
    operator_client, finished_run, upstream, wait_for
):
    form = {"assistant_id": finished_run.assistant_id, "message": "Reproduce ticket 42"}

    page = await operator_client.get("/new/")
    response = await post_start(operator_client, "/new/", form)

    assert f'<option value="{finished_run.assistant_id}">' in page.content.decode()
    thread_id, run_id = new_run_in(response["Location"])
    assert thread_id != finished_run.thread_id
    assert (await follow(operator_client, response)).status_code == 200
    wait_for(type(finished_run)(finished_run.assistant_id, thread_id, run_id, {}), "completed")
    assert messages_of(upstream, thread_id)[0] == "Reproduce ticket 42"
    entry = await ThreadEntry.objects.aget(thread_id=thread_id)
    assert entry.source == "created"
    [record] = await records()
    assert (record.action, record.outcome, record.run_id) == ("create_thread_and_run", "succeeded", run_id)
    assert record.payload["thread"] == {
        "messages": [{"role": "user", "content": "Reproduce ticket 42"}],
        "metadata": {MARK: record.form_token},
    }
    # The thread and the run carry the form's mark: an interrupted start can be found by it.
    assert upstream.request("GET", f"/threads/{thread_id}").json()["metadata"] == {MARK: record.form_token}
    assert upstream.request("GET", f"/threads/{thread_id}/runs/{run_id}").json()["metadata"] == {
        MARK: record.form_token
    }


BAD = {
    "no assistant": ({"assistant_id": "", "message": "Hi"}, "This field is required.", "Hi"),
    "an assistant that is not an id": (
        {"assistant_id": "asst_<b>x</b>", "message": "Keep me"},
        "Choose an assistant (its id starts with asst_).",
        "Keep me",
    ),
    "a model name too long": (
        {"assistant_id": "ASSISTANT", "model": "m" * 257, "message": "Keep me"},
        "Ensure this value has at most 256 characters (it has 257).",
        "Keep me",
    ),
}


@pytest.mark.parametrize("path", ["thread", "new"])
@pytest.mark.parametrize("case", list(BAD))
async def test_a_bad_start_form_is_refused_with_the_input_kept(
    case, path, operator_client, finished_run, spy
):
    form, message, kept = BAD[case]
    form = {k: (finished_run.assistant_id if v == "ASSISTANT" else v) for k, v in form.items()}
    url = f"/threads/{finished_run.thread_id}/runs/new/" if path == "thread" else "/new/"

    response = await post_start(operator_client, url, form)

    assert response.status_code == 400
    assert message in text(response)
    assert kept in text(response)
    assert [c for c in spy.calls if c.request.method == "POST"] == []
    assert await records() == []


async def test_create_thread_and_run_needs_a_first_message(operator_client, finished_run, spy):
    response = await post_start(operator_client, "/new/", {"assistant_id": finished_run.assistant_id})

    assert response.status_code == 400
    assert "This field is required." in text(response)
    assert [c for c in spy.calls if c.request.method == "POST"] == []


@pytest.mark.parametrize("path", ["thread", "new"])
async def test_the_upstream_refusing_an_unknown_assistant_is_shown_and_recorded(
    path, operator_client, finished_run
):
    url = f"/threads/{finished_run.thread_id}/runs/new/" if path == "thread" else "/new/"
    form = {"assistant_id": "asst_doesnotexist", "message": "Hello"}

    response = await post_start(operator_client, url, form)

    assert response.status_code == 400
    assert "The upstream did not start the run: No assistant found with id 'asst_doesnotexist'." in text(
        response
    )
    assert "Hello" in text(response)
    [record] = await records()
    assert (record.outcome, record.upstream_status) == ("failed", 404)
    assert "No assistant found with id 'asst_doesnotexist'." in record.upstream_message
