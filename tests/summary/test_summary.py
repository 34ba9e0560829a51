"""A run in plain words, from real sandbox runs fetched through the client, and from hand-made JSON."""

import re
import time

import pytest
from asgiref.sync import sync_to_async
from django.template.loader import render_to_string

from runs_ui.connections import default_client
from runs_ui.models import AuditRecord
from runs_ui.summary import RunSummary, person_answer_times, plain, summarize
from runs_ui.upstream.objects import Message, Run, Step


async def _summary(sandbox_run, **options) -> RunSummary:
    client = default_client()
    t, r = sandbox_run.thread_id, sandbox_run.run_id
    run = await client.get_run(t, r)
    steps = await client.list_steps(t, r, limit=100, order="asc")
    messages = await client.list_messages(t, limit=100, order="asc")
    return summarize(
        run, steps.data, messages.data, link=f"https://dash.example.com/threads/{t}/runs/{r}/", **options
    )


def _steps(summary: RunSummary) -> list[str]:
    return [plain(line.sentence) for line in summary.steps]


def _html(summary: RunSummary) -> str:
    return render_to_string("runs_ui/summary.html#run-summary", {"summary": summary})


async def test_an_answer_says_what_was_asked_what_was_written_and_that_it_finished(make_run, wait_for):
    run = make_run("answer", message="Where is my parcel?", sandbox_queued_seconds=15)  # 1.5 s at speed 10
    await sync_to_async(wait_for)(run, "completed")
    summary = await _summary(run)
    assert summary.asked.text == "Where is my parcel?"
    [wrote] = _steps(summary)
    assert wrote.startswith("Wrote “Here is what I found about **Where is my parcel?**")
    assert summary.outcome.tone == "ok" and plain(summary.outcome.sentence).startswith(
        "It finished successfully at "
    )
    shares = {t.label: t.seconds for t in summary.time}
    assert 1 <= shares["queued"] <= 3  # whole-second upstream timestamps; the 0.3 s of work shows as 0 or 1 s
    assert summary.time_source == "upstream" and summary.total == sum(shares.values())
    markdown = summary.markdown()
    assert f"[open in the dashboard](<{summary.link}>)" in markdown
    assert "**Asked:** “Where is my parcel?”" in markdown
    assert "\\*\\*Where is my parcel?\\*\\*" in markdown  # the upstream's own markup is shown, not applied


async def test_function_calls_read_as_calls_with_their_arguments_and_when_the_answers_came(
    make_run, wait_for, upstream
):
    run = make_run("functions")
    raw = await sync_to_async(wait_for)(run, "requires_action")
    waiting = await _summary(run)
    [called] = _steps(waiting)
    assert called.startswith("Called `get_weather` with city ") or "Called get_weather with city " in called
    assert "and get_time with timezone " in called and called.endswith(
        "; waiting for the answers (tool outputs)."
    )
    assert plain(waiting.outcome.sentence).startswith(
        "It is waiting for tool outputs for get_weather, get_time"
    )
    assert waiting.outcome.tone == "running"
    calls = raw["required_action"]["submit_tool_outputs"]["tool_calls"]
    await sync_to_async(upstream.api)(
        "POST",
        f"/threads/{run.thread_id}/runs/{run.run_id}/submit_tool_outputs",
        json={"tool_outputs": [{"tool_call_id": c["id"], "output": "ok"} for c in calls]},
    )
    await sync_to_async(wait_for)(run, "completed")
    done = await _summary(run)
    assert "; the answers came back" in _steps(done)[0]
    assert done.time and done.total is not None


async def test_code_and_file_search_say_what_ran_what_printed_and_what_was_found(make_run, wait_for):
    code_run, search_run = make_run("code"), make_run("search")
    await sync_to_async(wait_for)(code_run, "completed")
    await sync_to_async(wait_for)(search_run, "completed")
    ran = _steps(await _summary(code_run))[0]
    assert ran == "Ran code (6 lines); it printed “60 Q4” and made 1 image."
    searched = _steps(await _summary(search_run))[0]
    assert searched == "Searched the files and found 3 results (refund-policy.md, shipping.md, warranty.md)."


async def test_a_failure_is_told_in_words_with_the_upstreams_code_and_message_beside_it(make_run, wait_for):
    run = make_run("fail")
    await sync_to_async(wait_for)(run, "failed")
    summary = await _summary(run)
    assert _steps(summary) == [
        "Ran code (1 line); it failed: server_error — “The code interpreter ran out of memory.”."
    ]
    assert (
        plain(summary.outcome.sentence)
        == "It failed: the provider had an internal error; trying again may work."
    )
    assert (summary.outcome.code, summary.outcome.message) == ("server_error", "Sorry, something went wrong.")
    html = _html(summary)
    assert "<code>server_error</code> — Sorry, something went wrong." in html


async def test_incomplete_and_expired_runs_say_why(make_run, wait_for):
    capped, expiring = make_run("incomplete"), make_run("expire")
    await sync_to_async(wait_for)(capped, "incomplete")
    await sync_to_async(wait_for)(expiring, "expired", timeout=30)
    incomplete = await _summary(capped)
    assert (
        plain(incomplete.outcome.sentence)
        == "It stopped before finishing: it used up its allowance of completion tokens."
    )
    assert incomplete.outcome.code == "max_completion_tokens"
    expired = await _summary(expiring)
    assert (
        plain(expired.outcome.sentence)
        == "It expired: nobody submitted the tool outputs before its deadline."
    )
    assert "no answer came before the run expired" in _steps(expired)[0]


async def test_azure_tool_types_and_unknown_step_types_get_sentences_too(make_run, wait_for):
    run = make_run("azure")
    await sync_to_async(wait_for)(run, "completed")
    lines = _steps(await _summary(run))
    assert lines[0] == "Searched the web with Bing (bing_grounding)."
    assert lines[1] == "Did a step of a type this dashboard does not know (activities)."
    assert lines[2].startswith("Wrote “Bing says it will be sunny")


# --- hand-made JSON: edge cases --------------------------------------------------------------------

HOSTILE = "<script>alert(1)</script> <img src=x onerror=alert(2)> [x](javascript:alert(3)) ` \x00 \ud800"


def _run(**fields) -> Run:
    return Run.from_json({"id": "run_1", "thread_id": "thread_1", **fields})


def test_a_run_with_nothing_but_an_id_still_gets_a_summary():
    summary = summarize(Run.from_json({}), [Step.from_json({})], [Message.from_json({})])
    assert (
        plain(summary.outcome.sentence)
        == "Its status is (missing status), which this dashboard does not know."
    )
    assert _steps(summary) == [
        "Did a step of a type this dashboard does not know ((missing type)); its status is (missing status)."
    ]
    assert summary.asked is None and summary.markdown()
    assert "In plain words" in _html(summary)


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("rate_limit_exceeded", "rate limit or quota was exceeded"),
        ("invalid_prompt", "refused the prompt"),
        ("content_filter", "content filter blocked"),
        ("tool_user_error", "a tool the agent used refused its input"),
        ("brand_new_code", "the provider gave the code brand_new_code, which this dashboard does not know"),
        (None, "the provider gave no reason code"),
    ],
)
def test_every_known_error_code_has_words_and_an_unknown_one_a_generic_sentence(code, words):
    run = _run(status="failed", last_error={"code": code, "message": "as sent"})
    assert words in plain(summarize(run).outcome.sentence)


@pytest.mark.parametrize(
    ("status", "start"),
    [
        ("queued", "It is waiting to start."),
        ("in_progress", "It is still working."),
        ("cancelling", "It is being cancelled"),
        ("cancelled", "It was cancelled"),
        ("incomplete", "It stopped before finishing: the provider gave no reason."),
    ],
)
def test_every_status_ends_in_words(status, start):
    assert plain(summarize(_run(status=status)).outcome.sentence).startswith(start)


def test_the_incomplete_reasons_of_azure_and_unknown_ones_are_told():
    guard = _run(status="incomplete", incomplete_details={"reason": "content_filter"})
    assert (
        plain(summarize(guard).outcome.sentence)
        == "It stopped before finishing: a content filter stopped it."
    )
    odd = _run(status="incomplete", incomplete_details={"reason": "solar_flare"})
    assert "the provider gave the reason solar_flare" in plain(summarize(odd).outcome.sentence)


def test_hostile_strings_are_escaped_in_the_page_and_inert_in_the_markdown():
    run = _run(status="failed", last_error={"code": HOSTILE, "message": HOSTILE})
    step = Step.from_json(
        {
            "id": "step_1",
            "status": "completed",
            "step_details": {
                "type": "tool_calls",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": HOSTILE, "arguments": f'{{"q": "{HOSTILE[:30]}"}}'},
                    }
                ],
            },
        }
    )
    user = Message.from_json({"id": "msg_1", "role": "user", "created_at": 1, "content": HOSTILE})
    summary = summarize(run, [step], [user], link="javascript:alert(4)")
    html = _html(summary)
    assert "<script>" not in html and "<img" not in html and "javascript:alert(4)" not in html
    assert "&lt;script&gt;" in html
    markdown = summary.markdown()
    outside_code = re.sub(r"(`+).*?\1", "", markdown)  # code spans show their text literally
    assert "<script>" not in outside_code and "](javascript:" not in outside_code
    assert "javascript:alert(4)" not in markdown  # not a link the ticket gets
    assert "\\<script\\>" in markdown


def test_where_the_time_went_uses_the_observed_transitions_and_knows_a_person_answered():
    run = _run(status="completed", created_at=100, started_at=101, completed_at=120)
    transitions = [
        {"status": "queued", "at": 100.2},
        {"status": "in_progress", "at": 101.0},
        {"status": "requires_action", "at": 103.0},
        {"status": "queued", "at": 113.0},
        {"status": "in_progress", "at": 113.5},
        {"status": "completed", "at": 120.0},
    ]
    summary = summarize(run, transitions=transitions, person_answers=[112.8], now=200)
    shares = {t.label: round(t.seconds, 1) for t in summary.time}
    assert shares == {"queued": 1.3, "model working": 8.5, "waiting for a person": 10.0}
    assert summary.time_source == "observed" and sum(t.percent for t in summary.time) in (99, 100, 101)
    unanswered = summarize(run, transitions=transitions, now=200)
    assert "waiting for tool outputs" in {t.label for t in unanswered.time}


def test_a_running_run_counts_its_current_status_so_far():
    run = _run(status="requires_action", created_at=100, started_at=101, expires_at=1000)
    summary = summarize(
        run,
        transitions=[{"status": "in_progress", "at": 101}, {"status": "requires_action", "at": 105}],
        now=130,
    )
    current = summary.time[-1]
    assert (current.label, current.seconds, current.running) == ("waiting for tool outputs", 25, True)


def test_the_question_is_the_first_user_message_after_the_previous_answer():
    messages = [
        Message.from_json({"id": "msg_1", "role": "user", "created_at": 10, "content": "first question"}),
        Message.from_json(
            {"id": "msg_2", "role": "assistant", "created_at": 20, "run_id": "run_0", "content": "a"}
        ),
        Message.from_json({"id": "msg_3", "role": "user", "created_at": 30, "content": "second question"}),
        Message.from_json({"id": "msg_4", "role": "user", "created_at": 31, "content": "and more"}),
        Message.from_json(
            {"id": "msg_5", "role": "assistant", "created_at": 41, "run_id": "run_1", "content": "b"}
        ),
        Message.from_json({"id": "msg_6", "role": "user", "created_at": 50, "content": "later"}),
    ]
    summary = summarize(_run(status="completed", created_at=40), messages=messages)
    assert (summary.asked.text, summary.asked_message_id) == ("second question", "msg_3")


def test_hundreds_of_steps_are_summarised_by_the_first_ones_and_a_count_of_the_rest():
    steps = [
        Step.from_json(
            {
                "id": f"step_{n}",
                "status": "completed",
                "created_at": n,
                "step_details": {
                    "type": "tool_calls",
                    "tool_calls": [
                        {"id": "c", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
                    ],
                },
            }
        )
        for n in range(600)
    ]
    summary = summarize(_run(status="completed"), steps, more_steps=True)
    assert len(summary.steps) == 20
    assert plain(summary.steps_more) == (
        "…and 580 more steps (lookup ×580). The run has more steps than the 600 summarised here."
    )


async def test_person_answers_come_from_the_audit_trail(transactional_db, users):
    record = await AuditRecord.objects.acreate(
        user=users.operator,
        username="olivia",
        action="submit_tool_outputs",
        run_id="run_1",
        outcome="succeeded",
    )
    await AuditRecord.objects.acreate(
        user=users.operator, username="olivia", action="cancel_run", run_id="run_1"
    )
    assert await person_answer_times("default", "run_1") == [record.created_at.timestamp()]
    assert abs((await person_answer_times("default", "run_1"))[0] - time.time()) < 60
