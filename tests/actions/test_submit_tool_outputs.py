"""Submit tool outputs: one field per pending call, all sent together; the run continues and completes."""

import json

import pytest

from runs_ui.forms import TOOL_OUTPUT_MAX_CHARS
from tests.actions.conftest import (
    calls_to,
    error_response,
    fault,
    follow,
    outputs_form,
    pending_calls,
    post_form,
    records,
    run_path,
    sandbox_run,
    squeeze,
    text,
)

WEATHER, TIME = '{"temperature_c": 21}', '{"time": "14:05"}'


async def test_the_form_shows_each_pending_call_with_its_function_and_pretty_arguments(
    operator_client, waiting_run, upstream
):
    run, calls = waiting_run

    page = await operator_client.get(run_path(run, "submit"))

    body = page.content.decode()
    assert page.status_code == 200
    assert "The run is waiting for 2 tool outputs" in text(page)
    for call in calls:
        arguments = json.loads(call["function"]["arguments"])
        assert f'name="output_{call["id"]}"' in body
        assert f"Output of {call['function']['name']}" in text(page)
        assert squeeze(json.dumps(arguments, indent=2, ensure_ascii=False)) in text(page)
    assert f'value="{calls[0]["id"]} {calls[1]["id"]}"' in body  # the calls the form was drawn for
    expires_at = sandbox_run(upstream, run)["expires_at"]
    assert f'data-countdown="{expires_at}"' in body


async def test_both_outputs_are_submitted_together_and_the_run_completes_with_them(
    operator_client, waiting_run, wait_for, spy
):
    run, calls = waiting_run
    form = outputs_form(calls, get_weather=WEATHER, get_time=TIME) | {"require_json": "on"}

    response = await post_form(operator_client, run_path(run, "submit"), form)

    assert response["Location"] == run_path(run)
    [call] = calls_to(spy, "POST", "/submit_tool_outputs")
    sent = json.loads(call.request.content)
    assert sent["stream"] is True
    assert sent["tool_outputs"] == [
        {"tool_call_id": calls[0]["id"], "output": WEATHER},
        {"tool_call_id": calls[1]["id"], "output": TIME},
    ]
    page = await follow(operator_client, response)
    assert "Outputs submitted: the run continues below, live." in text(page)
    wait_for(run, "completed")
    steps = await operator_client.get(run_path(run) + "?part=steps", headers={"HX-Request": "true"})
    assert squeeze(f"Output {json.dumps(json.loads(WEATHER), indent=2)}") in text(steps)
    assert squeeze(f"Output {json.dumps(json.loads(TIME), indent=2)}") in text(steps)
    assert f"get_weather returned: {WEATHER}" in text(steps)  # the agent's answer quotes them
    [record] = await records()
    assert record.outcome == "succeeded"
    assert record.payload["tool_outputs"] == sent["tool_outputs"]


async def test_outputs_need_not_be_json_unless_the_operator_asks(operator_client, waiting_run, wait_for):
    run, calls = waiting_run
    form = outputs_form(calls, get_weather="sunny, 21 °C", get_time="five past two")

    response = await post_form(operator_client, run_path(run, "submit"), form)

    assert response.status_code == 302
    wait_for(run, "completed")


async def test_the_run_page_offers_the_outputs_form_to_operators_only(
    operator_client, viewer_client, waiting_run
):
    run, calls = waiting_run

    as_operator = await operator_client.get(run_path(run))
    as_viewer = await viewer_client.get(run_path(run))

    assert f'action="{run_path(run, "submit")}"' in as_operator.content.decode()
    assert f'action="{run_path(run, "submit")}"' not in as_viewer.content.decode()
    assert "Waiting for tool outputs" in text(as_viewer)  # viewers still see what the run waits for
    assert calls[0]["id"] in text(as_viewer)


async def test_submitting_to_a_run_that_is_not_waiting_says_so_and_calls_nothing(
    operator_client, make_run, wait_for, spy
):
    run = make_run("answer", speed=50)
    wait_for(run, "completed")
    form = {"call_ids": "call_abc", "output_call_abc": "42"}

    response = await post_form(operator_client, run_path(run, "submit"), form)

    assert response.status_code == 400
    assert "The run is completed: it is not waiting for tool outputs." in text(response)
    assert calls_to(spy, "POST", "/submit_tool_outputs") == []
    assert await records() == []


async def test_outputs_for_a_run_that_expired_while_the_form_was_open_are_refused(
    operator_client, make_run, wait_for, spy
):
    run = make_run("expire", speed=60)  # requires_action, expiring after half a second
    calls = pending_calls(wait_for(run, "requires_action"))
    page = await operator_client.get(run_path(run, "submit"))
    wait_for(run, "expired")

    response = await post_form(
        operator_client, run_path(run, "submit"), outputs_form(calls, get_weather="1", get_time="2")
    )

    assert page.status_code == 200
    assert response.status_code == 400
    assert "The run is expired: it is not waiting for tool outputs." in text(response)
    assert calls_to(spy, "POST", "/submit_tool_outputs") == []


async def test_a_second_submission_for_the_same_calls_says_the_outputs_were_already_submitted(
    operator_client, admin_client, waiting_run, spy
):
    run, calls = waiting_run
    form = outputs_form(calls, get_weather=WEATHER, get_time=TIME)
    first = await post_form(operator_client, run_path(run, "submit"), form)

    again = await post_form(admin_client, run_path(run, "submit"), form)

    assert first.status_code == 302
    assert again.status_code == 400
    assert "Outputs were already submitted (by olivia)" in text(again)
    assert len(calls_to(spy, "POST", "/submit_tool_outputs")) == 1
    assert [r.outcome for r in await records()] == ["succeeded"]


async def test_the_upstreams_own_refusal_is_shown_verbatim_and_escaped(operator_client, waiting_run, spy):
    run, calls = waiting_run
    hostile = "Bad output <script>alert('owned')</script> & <b>more</b>"
    fault(spy, "POST", "/submit_tool_outputs", return_value=error_response(400, hostile, "req_hostile"))

    response = await post_form(
        operator_client, run_path(run, "submit"), outputs_form(calls, get_weather=WEATHER, get_time=TIME)
    )

    body = response.content.decode()
    assert response.status_code == 400
    assert f"The upstream refused the outputs: {hostile}" in text(response)
    assert "<script>alert('owned')</script>" not in body
    assert "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt;" in body
    assert WEATHER in text(response)  # the operator's input is still in the form
    [record] = await records()
    assert (record.outcome, record.upstream_status, record.request_id) == ("failed", 400, "req_hostile")
    assert hostile in record.upstream_message


# --- bad input: a clear message, the input kept, 400, nothing sent -----------------------------------


def _bad_forms(calls):
    weather, time = calls[0]["id"], calls[1]["id"]
    ids = f"{weather} {time}"
    return {
        "one output empty": (
            {"call_ids": ids, f"output_{weather}": WEATHER, f"output_{time}": ""},
            f"Enter the output of get_time ({time}): every pending call needs one.",
            WEATHER,
        ),
        "one output missing": (
            {"call_ids": ids, f"output_{weather}": WEATHER},
            f"Enter the output of get_time ({time}): every pending call needs one.",
            WEATHER,
        ),
        "no outputs at all": (
            {"call_ids": ids},
            f"Enter the output of get_weather ({weather}): every pending call needs one.",
            None,
        ),
        "an output for a call that is not pending": (
            {"call_ids": ids, f"output_{weather}": WEATHER, f"output_{time}": TIME, "output_call_XYZ": "1"},
            "Outputs for calls the run is not waiting for: call_XYZ.",
            TIME,
        ),
        "an oversized output": (
            {"call_ids": ids, f"output_{weather}": "x" * (TOOL_OUTPUT_MAX_CHARS + 1), f"output_{time}": TIME},
            f"This output is {TOOL_OUTPUT_MAX_CHARS + 1:,} characters; "
            f"the limit is {TOOL_OUTPUT_MAX_CHARS:,}.",
            TIME,
        ),
        "invalid JSON when JSON is required": (
            {"call_ids": ids, f"output_{weather}": "{'c': 21}", f"output_{time}": TIME, "require_json": "on"},
            "Not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1).",
            "{'c': 21}",
        ),
        "a form without the calls it was drawn for": (
            {f"output_{weather}": WEATHER, f"output_{time}": TIME},
            "This form came without the calls it was drawn for: reload the page and submit again.",
            TIME,
        ),
        "a stale form (the pending calls changed)": (
            {"call_ids": f"{weather} call_gone", f"output_{weather}": WEATHER, f"output_{time}": TIME},
            "The run's pending calls changed since this form was drawn: "
            "review the calls below and submit again.",
            WEATHER,
        ),
    }


BAD = list(_bad_forms([{"id": "call_w"}, {"id": "call_t"}]))


@pytest.mark.parametrize("case", BAD)
async def test_bad_outputs_are_refused_with_a_clear_message_and_the_input_kept(
    case, operator_client, waiting_run, upstream, spy
):
    run, calls = waiting_run
    form, message, kept = _bad_forms(calls)[case]

    response = await post_form(operator_client, run_path(run, "submit"), form)

    assert response.status_code == 400
    assert message in text(response)
    if kept is not None:
        assert kept in text(response)
    assert calls_to(spy, "POST", "/submit_tool_outputs") == []
    assert await records() == []
    assert sandbox_run(upstream, run)["status"] == "requires_action"


async def test_the_json_check_box_stays_ticked_when_the_form_comes_back(operator_client, waiting_run):
    run, calls = waiting_run
    form = outputs_form(calls, get_weather="not json", get_time=TIME) | {"require_json": "on"}

    response = await post_form(operator_client, run_path(run, "submit"), form)

    assert response.status_code == 400
    assert 'name="require_json" id="id_require_json" checked' in response.content.decode()
