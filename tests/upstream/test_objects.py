"""Typed, tolerant parsing of what an upstream sends: nothing it says is lost, nothing odd crashes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runs_ui.upstream.errors import BadResponse
from runs_ui.upstream.objects import (
    Annotation,
    Assistant,
    CodeInterpreterCall,
    FileSearchCall,
    FunctionCall,
    ImageFilePart,
    ImageUrlPart,
    Message,
    MessageCreation,
    MessageDelta,
    Page,
    RefusalPart,
    Run,
    Step,
    StepDelta,
    TextPart,
    Thread,
    ToolCalls,
    UnknownDetails,
    UnknownPart,
    UnknownToolCall,
    Usage,
    is_id,
    pretty_json,
)

from .conftest import message_json, run_json, step_json, thread_json

# --- runs ------------------------------------------------------------------------------------------


def test_a_full_run_is_read_field_by_field():
    run = Run.from_json(
        run_json(
            status="completed",
            started_at=1_700_000_010,
            completed_at=1_700_000_020,
            expires_at=None,
            metadata={"team": "support"},
            usage={"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14},
            max_prompt_tokens=1000,
            temperature=0.5,
            instructions="Be brief.",
        )
    )

    assert (run.id, run.thread_id, run.assistant_id, run.model) == ("run_1", "thread_1", "asst_1", "gpt-4o")
    assert run.status == "completed" and run.is_terminal and run.status_known
    assert (run.created_at, run.started_at, run.completed_at, run.expires_at) == (
        1_700_000_000,
        1_700_000_010,
        1_700_000_020,
        None,
    )
    assert run.ended_at == 1_700_000_020
    assert run.metadata == {"team": "support"}
    assert run.usage == Usage(10, 4, 14)
    assert run.temperature == 0.5 and run.top_p == 1.0
    assert run.max_prompt_tokens == 1000 and run.max_completion_tokens is None
    assert run.instructions == "Be brief."
    assert run.truncation_strategy == {"type": "auto", "last_messages": None}
    assert run.tool_choice == "auto" and run.response_format == "auto"
    assert run.parallel_tool_calls is True
    assert run.raw["object"] == "thread.run"


def test_a_run_with_only_an_id_reads_every_other_field_as_absent():
    run = Run.from_json({"id": "run_1"})

    assert run.status == "(missing status)"
    assert not run.status_known and not run.is_terminal
    assert (run.thread_id, run.assistant_id, run.model) == ("", "", "")
    assert run.created_at is None and run.ended_at is None
    assert run.tools == [] and run.metadata == {}
    assert run.usage is None and run.last_error is None and run.required_action is None
    assert run.incomplete_reason is None and run.parallel_tool_calls is None
    assert run.pending_calls == []


def test_null_fields_of_a_run_read_as_absent():
    nulls = {key: None for key in run_json()} | {"id": "run_1"}

    run = Run.from_json(nulls)

    assert run.status == "(missing status)"
    assert run.model == "" and run.instructions is None
    assert run.metadata == {} and run.tools == []
    assert run.temperature is None and run.truncation_strategy is None


def test_fields_of_the_wrong_type_read_as_absent():
    run = Run.from_json(
        run_json(
            id=42,
            status=["queued"],
            created_at="yesterday",
            started_at=True,
            model={"name": "gpt"},
            tools={"type": "function"},
            temperature="hot",
            top_p=False,
            usage=[1, 2, 3],
            last_error="boom",
            incomplete_details="too long",
            required_action=["call_1"],
            parallel_tool_calls="yes",
            metadata=["a", "b"],
        )
    )

    assert run.id == ""
    assert run.status == "(missing status)"
    assert run.created_at is None and run.started_at is None
    assert run.model == "" and run.tools == []
    assert run.temperature is None and run.top_p is None
    assert run.usage is None and run.last_error is None
    assert run.incomplete_reason is None and run.required_action is None
    assert run.parallel_tool_calls is None
    assert run.metadata == {}


def test_an_unknown_run_status_is_kept_as_sent():
    run = Run.from_json(run_json(status="paused_for_review"))

    assert run.status == "paused_for_review"
    assert not run.status_known
    assert not run.is_terminal


@pytest.mark.parametrize("status", ["cancelled", "failed", "completed", "incomplete", "expired"])
def test_the_five_terminal_statuses_are_terminal(status):
    assert Run.from_json(run_json(status=status)).is_terminal


@pytest.mark.parametrize("status", ["queued", "in_progress", "requires_action", "cancelling"])
def test_the_live_statuses_are_not_terminal(status):
    assert not Run.from_json(run_json(status=status)).is_terminal


def test_metadata_values_that_are_not_strings_are_shown_as_json():
    run = Run.from_json(run_json(metadata={"n": 3, "flag": True, "nested": {"a": None}, "s": "x"}))

    assert run.metadata == {"n": "3", "flag": "true", "nested": '{"a": null}', "s": "x"}


def test_a_failed_run_carries_its_last_error_and_an_incomplete_run_its_reason():
    failed = Run.from_json(
        run_json(
            status="failed", failed_at=5, last_error={"code": "rate_limit_exceeded", "message": "Too many."}
        )
    )
    incomplete = Run.from_json(
        run_json(status="incomplete", incomplete_details={"reason": "max_completion_tokens"})
    )
    no_message = Run.from_json(run_json(last_error={"code": 7}))

    assert (failed.last_error.code, failed.last_error.message) == ("rate_limit_exceeded", "Too many.")
    assert failed.ended_at == 5
    assert incomplete.incomplete_reason == "max_completion_tokens"
    assert (no_message.last_error.code, no_message.last_error.message) == (None, "")


def test_required_action_lists_the_function_calls_waiting_for_outputs():
    run = Run.from_json(
        run_json(
            status="requires_action",
            required_action={
                "type": "submit_tool_outputs",
                "submit_tool_outputs": {
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "get_time", "arguments": "{}"},
                        },
                        {"id": "call_3", "type": "bing_grounding", "bing_grounding": {}},
                        "not a call",
                    ]
                },
            },
        )
    )

    assert run.required_action.type == "submit_tool_outputs"
    assert [(c.id, c.name) for c in run.pending_calls] == [("call_1", "get_weather"), ("call_2", "get_time")]
    assert run.pending_calls[0].output is None
    assert run.pending_calls[0].pretty_arguments == '{\n  "city": "Oslo"\n}'


def test_pending_calls_are_empty_unless_the_run_requires_action():
    action = {
        "type": "submit_tool_outputs",
        "submit_tool_outputs": {
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
        },
    }

    run = Run.from_json(run_json(status="in_progress", required_action=action))

    assert run.required_action is not None
    assert run.pending_calls == []


def test_a_required_action_of_the_wrong_shape_has_no_calls():
    run = Run.from_json(run_json(status="requires_action", required_action={"submit_tool_outputs": 3}))

    assert run.required_action.type == "(missing type)"
    assert run.pending_calls == []


# --- usage -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usage", "consistent"),
    [
        ({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}, True),
        ({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 16}, False),
        ({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}, True),
        ({"prompt_tokens": 10, "completion_tokens": None, "total_tokens": 99}, True),
        ({"prompt_tokens": "10", "completion_tokens": 5, "total_tokens": 15}, True),
        ({"prompt_tokens": True, "completion_tokens": 5, "total_tokens": 6}, True),
    ],
    ids=["adds up", "does not add up", "all zero", "a part missing", "a part as text", "a part as a bool"],
)
def test_usage_is_consistent_when_its_parts_add_up_or_cannot_be_checked(usage, consistent):
    assert Usage.from_json(usage).consistent is consistent


def test_usage_that_is_not_an_object_is_absent():
    assert Usage.from_json(None) is None
    assert Usage.from_json(15) is None


# --- steps -----------------------------------------------------------------------------------------


def test_a_message_creation_step_links_to_its_message():
    step = Step.from_json(step_json())

    assert step.details == MessageCreation("msg_1")
    assert step.type == "message_creation" and step.status == "completed"
    assert step.is_terminal and step.status_known
    assert step.usage.consistent
    assert step.metadata == {}
    assert step.ended_at == 1_700_000_002


def test_a_step_reads_expires_at_as_the_spec_examples_write_it():
    assert Step.from_json(step_json(expired_at=None, expires_at=99)).expired_at == 99
    assert Step.from_json(step_json(expired_at=77, expires_at=99)).expired_at == 77


def test_an_unknown_step_type_keeps_its_details_raw():
    details = {"type": "activities", "activities": [{"kind": "search"}]}

    step = Step.from_json(step_json(type="activities", status="in_progress", step_details=details))

    assert isinstance(step.details, UnknownDetails)
    assert step.details.type == "activities"
    assert step.details.raw == details
    assert step.type == "activities"
    assert not step.is_terminal


def test_a_step_without_details_or_status_is_still_read():
    step = Step.from_json({"id": "step_1", "step_details": None, "status": "thinking"})

    assert step.details == UnknownDetails("(missing type)", {})
    assert step.status == "thinking" and not step.status_known
    assert step.last_error is None and step.usage is None


def tool_step(*calls) -> Step:
    return Step.from_json(
        step_json(type="tool_calls", step_details={"type": "tool_calls", "tool_calls": list(calls)})
    )


def test_a_function_call_step_carries_name_arguments_and_output():
    step = tool_step(
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "lookup", "arguments": '{"q":"x"}', "output": '{"hits": 2}'},
        }
    )

    [call] = step.details.tool_calls
    assert isinstance(step.details, ToolCalls)
    assert call == FunctionCall("call_1", "lookup", '{"q":"x"}', '{"hits": 2}', call.raw)
    assert call.pretty_arguments == '{\n  "q": "x"\n}'
    assert call.pretty_output == '{\n  "hits": 2\n}'


def test_a_code_interpreter_call_carries_its_input_logs_and_images():
    step = tool_step(
        {
            "id": "call_2",
            "type": "code_interpreter",
            "code_interpreter": {
                "input": "print(2 + 2)",
                "outputs": [
                    {"type": "logs", "logs": "4\n"},
                    {"type": "image", "image": {"file_id": "file-png"}},
                    {"type": "audio", "audio": {}},
                    "junk",
                ],
            },
        }
    )

    [call] = step.details.tool_calls
    assert isinstance(call, CodeInterpreterCall)
    assert call.input == "print(2 + 2)"
    assert [(o.type, o.logs, o.file_id) for o in call.outputs] == [
        ("logs", "4\n", None),
        ("image", None, "file-png"),
        ("audio", None, None),
    ]


def test_a_file_search_call_with_content_carries_the_text_of_each_result():
    step = tool_step(
        {
            "id": "call_3",
            "type": "file_search",
            "file_search": {
                "ranking_options": {"ranker": "default_2024_08_21", "score_threshold": 0.5},
                "results": [
                    {
                        "file_id": "file-1",
                        "file_name": "faq.md",
                        "score": 0.91,
                        "content": [{"type": "text", "text": "Refunds take 5 days."}, {"type": "text"}],
                    }
                ],
            },
        }
    )

    [call] = step.details.tool_calls
    assert isinstance(call, FileSearchCall)
    assert (call.ranker, call.score_threshold) == ("default_2024_08_21", 0.5)
    [result] = call.results
    assert (result.file_id, result.file_name, result.score) == ("file-1", "faq.md", 0.91)
    assert result.content == ["Refunds take 5 days.", ""]


def test_a_file_search_call_without_content_says_it_was_not_asked_for():
    step = tool_step(
        {
            "id": "call_3",
            "type": "file_search",
            "file_search": {"results": [{"file_id": "file-1", "file_name": "faq.md", "score": 1}]},
        }
    )

    [result] = step.details.tool_calls[0].results
    assert result.content is None
    assert result.score == 1.0
    assert step.details.tool_calls[0].ranker is None


def test_an_empty_file_search_call_has_no_results():
    [call] = tool_step({"id": "call_3", "type": "file_search", "file_search": {}}).details.tool_calls

    assert call.results == [] and call.score_threshold is None


def test_an_unknown_tool_call_type_is_kept_raw():
    bing = {
        "id": "call_4",
        "type": "bing_grounding",
        "bing_grounding": {"requesturl": "https://api.bing.microsoft.com/?q=x"},
    }

    [call, missing] = tool_step(bing, {"id": "call_5"}).details.tool_calls

    assert isinstance(call, UnknownToolCall)
    assert (call.id, call.type, call.raw) == ("call_4", "bing_grounding", bing)
    assert missing.type == "(missing type)"


def test_tool_calls_that_are_not_objects_are_skipped():
    assert tool_step("call_1", None, 3).details.tool_calls == []


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ('{"a":1,"b":[1,2]}', '{\n  "a": 1,\n  "b": [\n    1,\n    2\n  ]\n}'),
        ('"Ålesund"', '"Ålesund"'),
        ("{not json", "{not json"),
        ("", ""),
        (None, ""),
        ("[" * 100_000, "[" * 100_000),
    ],
    ids=["object", "non-ascii", "invalid json", "empty", "none", "too deep"],
)
def test_pretty_json_indents_valid_json_and_shows_anything_else_as_sent(text, shown):
    assert pretty_json(text) == shown


def test_a_function_call_with_invalid_json_arguments_shows_them_as_sent():
    [call] = tool_step(
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "f", "arguments": "{'single': quotes}", "output": None},
        }
    ).details.tool_calls

    assert call.pretty_arguments == "{'single': quotes}"
    assert call.pretty_output == ""


# --- messages, threads, assistants -------------------------------------------------------------------


def test_a_message_reads_its_text_and_annotations():
    message = Message.from_json(
        message_json(
            content=[
                {
                    "type": "text",
                    "text": {
                        "value": "See the FAQ【4:0†faq.md】 and the chart.",
                        "annotations": [
                            {
                                "type": "file_citation",
                                "text": "【4:0†faq.md】",
                                "file_citation": {"file_id": "file-1"},
                                "start_index": 11,
                                "end_index": 24,
                            },
                            {
                                "type": "file_path",
                                "text": "sandbox:/chart.png",
                                "file_path": {"file_id": "file-2"},
                                "start_index": 30,
                                "end_index": 40,
                            },
                            {
                                "type": "url_citation",
                                "text": "x",
                                "url_citation": {"url": "https://example.test"},
                            },
                        ],
                    },
                }
            ]
        )
    )

    [part] = message.content
    assert isinstance(part, TextPart)
    assert part.annotations == [
        Annotation("file_citation", "【4:0†faq.md】", "file-1", 11, 24),
        Annotation("file_path", "sandbox:/chart.png", "file-2", 30, 40),
        Annotation("url_citation", "x", "", None, None),
    ]
    assert message.text == "See the FAQ【4:0†faq.md】 and the chart."
    assert (message.role, message.run_id, message.assistant_id) == ("assistant", "run_1", "asst_1")


def test_a_message_reads_every_kind_of_content_part():
    message = Message.from_json(
        message_json(
            content=[
                {"type": "text", "text": {"value": "one"}},
                {"type": "image_file", "image_file": {"file_id": "file-img", "detail": "high"}},
                {"type": "image_url", "image_url": {"url": "https://example.test/a.png"}},
                {"type": "refusal", "refusal": "I can't help with that."},
                {"type": "text", "text": "two"},
                {"type": "audio", "audio": {"id": "a"}},
                "junk",
            ]
        )
    )

    assert message.content == [
        TextPart("one", []),
        ImageFilePart("file-img"),
        ImageUrlPart("https://example.test/a.png"),
        RefusalPart("I can't help with that."),
        TextPart("two", []),
        UnknownPart("audio", {"type": "audio", "audio": {"id": "a"}}),
    ]
    assert message.text == "one\n\ntwo"


def test_a_message_with_string_content_or_none_is_still_read():
    assert Message.from_json({"id": "msg_1", "content": "plain"}).text == "plain"
    empty = Message.from_json({"id": "msg_2", "content": None, "role": None, "run_id": 5})
    assert empty.content == [] and empty.role == "(missing role)" and empty.run_id is None


def test_an_incomplete_message_carries_its_reason():
    message = Message.from_json(
        message_json(status="incomplete", incomplete_at=9, incomplete_details={"reason": "max_tokens"})
    )

    assert (message.status, message.incomplete_at, message.incomplete_reason) == (
        "incomplete",
        9,
        "max_tokens",
    )


def test_a_thread_and_an_assistant_are_read_tolerantly():
    thread = Thread.from_json(thread_json(metadata={"k": "v"}, tool_resources={"file_search": {}}))
    bare = Thread.from_json({"id": "thread_2", "tool_resources": None, "metadata": None})
    assistant = Assistant.from_json(
        {
            "id": "asst_1",
            "name": "Helper",
            "model": "gpt-4o",
            "tools": [{"type": "code_interpreter"}, "junk"],
            "instructions": None,
            "created_at": 1,
        }
    )
    nameless = Assistant.from_json({"id": "asst_2", "name": None})

    assert (thread.id, thread.metadata, thread.tool_resources) == (
        "thread_1",
        {"k": "v"},
        {"file_search": {}},
    )
    assert (bare.tool_resources, bare.metadata, bare.created_at) == ({}, {}, None)
    assert assistant.label == "Helper" and assistant.tools == [{"type": "code_interpreter"}]
    assert assistant.instructions is None and assistant.model == "gpt-4o"
    assert nameless.label == "asst_2"


def test_deltas_are_read_tolerantly():
    delta = MessageDelta.from_json(
        {
            "id": "msg_1",
            "delta": {
                "content": [
                    {"index": 0, "type": "text", "text": {"value": "Hi"}},
                    {"index": 1, "type": "image_file"},
                    3,
                ]
            },
        }
    )
    step_delta = StepDelta.from_json({"id": "step_1", "delta": None})

    assert delta.text == "Hi" and len(delta.parts) == 2
    assert step_delta.details == {} and step_delta.tool_call_pieces == []


# --- lists -----------------------------------------------------------------------------------------


def test_a_page_uses_the_last_items_id_as_the_next_cursor():
    page = Page.from_json(
        {"data": [run_json("run_1"), run_json("run_2")], "has_more": True, "last_id": "run_zzz"},
        Run.from_json,
    )

    assert page.next_after == "run_2"
    assert page.first_id is None


@pytest.mark.parametrize("has_more", [False, None, "true", 1])
def test_a_page_has_more_only_when_the_upstream_says_true(has_more):
    page = Page.from_json({"data": [run_json()], "has_more": has_more}, Run.from_json)

    assert page.has_more is False
    assert page.next_after is None


# --- ids ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("thread", "thread_abc123"),
        ("run", "run_A-b_9"),
        ("step", "step_1"),
        ("message", "msg_1"),
        ("assistant", "asst_1"),
        ("call", "call_XyZ"),
        ("file", "file-abc"),
        ("file", "assistant-xyz"),
        ("file", "file_abc"),
    ],
)
def test_is_id_accepts_ids_of_the_right_kind(kind, value):
    assert is_id(kind, value)


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("thread", "run_1"),
        ("thread", "thread_"),
        ("thread", "thread_a/b"),
        ("thread", "thread_a?b"),
        ("thread", "thread_.."),
        ("run", "run_1\n"),
        ("run", " run_1"),
        ("run", None),
        ("run", 12),
        ("step", "step_" + "x" * 129),
        ("message", "message_1"),
        ("file", "img-1"),
        ("call", "call_ä"),
    ],
)
def test_is_id_refuses_anything_else(kind, value):
    assert not is_id(kind, value)


def test_is_id_accepts_the_longest_id_allowed():
    assert is_id("step", "step_" + "x" * 128)


# --- fuzzing ---------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=8,
)


def shaped_like(example: dict, nested: dict | None = None):
    """Objects with the wire keys of `example`, each present or not, holding any JSON (or a nested shape)."""
    nested = nested or {}
    return st.fixed_dictionaries(
        {},
        optional={
            key: st.one_of(json_values, nested[key]) if key in nested else json_values for key in example
        },
    )


tool_call_shapes = st.one_of(
    shaped_like({"id": 0, "type": 0}).map(lambda d: d | {"type": "function"}),
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["function", "code_interpreter", "file_search", "x"]),
            "function": st.fixed_dictionaries(
                {}, optional={"name": json_values, "arguments": json_values, "output": json_values}
            ),
            "code_interpreter": st.fixed_dictionaries(
                {},
                optional={
                    "input": json_values,
                    "outputs": st.lists(
                        st.fixed_dictionaries(
                            {"type": st.sampled_from(["logs", "image"])},
                            optional={"logs": json_values, "image": json_values},
                        ),
                        max_size=3,
                    ),
                },
            ),
            "file_search": st.fixed_dictionaries(
                {},
                optional={
                    "ranking_options": json_values,
                    "results": st.lists(
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "file_id": json_values,
                                "score": json_values,
                                "content": st.lists(json_values, max_size=3),
                            },
                        ),
                        max_size=3,
                    ),
                },
            ),
        }
    ),
)
run_shapes = shaped_like(
    run_json(),
    {
        "required_action": st.fixed_dictionaries(
            {
                "type": json_values,
                "submit_tool_outputs": st.fixed_dictionaries(
                    {"tool_calls": st.lists(tool_call_shapes, max_size=3)}
                ),
            }
        ),
        "usage": shaped_like({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}),
    },
)
step_shapes = shaped_like(
    step_json(),
    {
        "step_details": st.fixed_dictionaries(
            {
                "type": st.sampled_from(["message_creation", "tool_calls", "activities"]),
                "message_creation": json_values,
                "tool_calls": st.lists(tool_call_shapes | json_values, max_size=3),
            }
        ),
    },
)
message_shapes = shaped_like(
    message_json(),
    {
        "content": st.lists(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["text", "image_file", "image_url", "refusal", "other"])},
                optional={
                    "text": json_values
                    | st.fixed_dictionaries(
                        {},
                        optional={
                            "value": json_values,
                            "annotations": st.lists(
                                st.fixed_dictionaries(
                                    {"type": st.sampled_from(["file_citation", "file_path", "x"])},
                                    optional={
                                        "text": json_values,
                                        "file_citation": json_values,
                                        "file_path": json_values,
                                        "start_index": json_values,
                                    },
                                ),
                                max_size=3,
                            ),
                        },
                    ),
                    "image_file": json_values,
                    "image_url": json_values,
                    "refusal": json_values,
                },
            ),
            max_size=4,
        ),
    },
)

PARSERS = {
    "run": (Run.from_json, run_shapes),
    "step": (Step.from_json, step_shapes),
    "message": (Message.from_json, message_shapes),
}


def parse_or_bad_response(parse, data):
    """Parse; the only error allowed is BadResponse, and only for something that is not an object."""
    try:
        parsed = parse(data)
    except BadResponse:
        assert not isinstance(data, dict)
        return None
    assert isinstance(data, dict)
    assert parsed.raw is data
    return parsed


@pytest.mark.parametrize(
    "parse", [Run.from_json, Step.from_json, Message.from_json], ids=["run", "step", "message"]
)
@settings(max_examples=100, deadline=None)
@given(data=json_values)
def test_parsers_never_raise_anything_but_bad_response_for_any_json_value(parse, data):
    parse_or_bad_response(parse, data)


@pytest.mark.parametrize(("parse", "shapes"), PARSERS.values(), ids=PARSERS.keys())
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_parsers_never_raise_for_objects_shaped_like_the_wire_with_any_values(parse, shapes, data):
    parsed = parse_or_bad_response(parse, data.draw(shapes))

    json.dumps([parsed.metadata])  # metadata is always str -> str
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in parsed.metadata.items())
    if isinstance(parsed, Run):
        assert isinstance(parsed.status, str) and isinstance(parsed.pending_calls, list)
        assert parsed.usage is None or isinstance(parsed.usage.consistent, bool)
    if isinstance(parsed, Step):
        calls = parsed.details.tool_calls if isinstance(parsed.details, ToolCalls) else []
        for call in calls:
            if isinstance(call, FunctionCall):
                assert isinstance(call.pretty_arguments, str) and isinstance(call.pretty_output, str)
    if isinstance(parsed, Message):
        assert isinstance(parsed.text, str)
