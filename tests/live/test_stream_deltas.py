"""Stream deltas applied to steps and messages (runs_ui.stream_relay): what grows; garbage never raises."""

from __future__ import annotations

import copy
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runs_ui.live.state import apply_message_delta, apply_step_delta
from runs_ui.upstream.objects import (
    CodeInterpreterCall,
    FunctionCall,
    Message,
    MessageDelta,
    Step,
    StepDelta,
    TextPart,
)


def tool_step(*calls: dict) -> Step:
    return Step.from_json(
        {
            "id": "step_1",
            "object": "thread.run.step",
            "type": "tool_calls",
            "status": "in_progress",
            "step_details": {"type": "tool_calls", "tool_calls": list(calls)},
        }
    )


def step_delta(*pieces: dict) -> StepDelta:
    return StepDelta.from_json(
        {
            "id": "step_1",
            "object": "thread.run.step.delta",
            "delta": {"step_details": {"tool_calls": list(pieces)}},
        }
    )


def message(*content: dict) -> Message:
    return Message.from_json(
        {
            "id": "msg_1",
            "object": "thread.message",
            "role": "assistant",
            "status": "in_progress",
            "content": list(content),
        }
    )


def message_delta(*parts: dict) -> MessageDelta:
    return MessageDelta.from_json(
        {"id": "msg_1", "object": "thread.message.delta", "delta": {"content": list(parts)}}
    )


def text(value: str, annotations=None) -> dict:
    return {"type": "text", "text": {"value": value, "annotations": annotations or []}}


# --- what the deltas do ------------------------------------------------------------------------------


def test_function_arguments_grow_piece_by_piece_at_their_call_index():
    step = tool_step()
    step = apply_step_delta(
        step,
        step_delta(
            {
                "index": 0,
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": ""},
            }
        ),
    )
    for piece in ('{"ci', 'ty": ', '"Paris"}'):
        step = apply_step_delta(step, step_delta({"index": 0, "function": {"arguments": piece}}))
    (call,) = step.details.tool_calls
    assert isinstance(call, FunctionCall)
    assert (call.id, call.name, call.arguments) == ("call_1", "get_weather", '{"city": "Paris"}')


def test_parallel_calls_grow_independently():
    step = tool_step()
    step = apply_step_delta(
        step,
        step_delta(
            {"index": 0, "id": "call_a", "type": "function", "function": {"name": "a", "arguments": "{"}},
            {"index": 1, "id": "call_b", "type": "function", "function": {"name": "b", "arguments": "["}},
        ),
    )
    step = apply_step_delta(
        step,
        step_delta(
            {"index": 1, "function": {"arguments": "]"}}, {"index": 0, "function": {"arguments": "}"}}
        ),
    )
    assert [(c.id, c.arguments) for c in step.details.tool_calls] == [("call_a", "{}"), ("call_b", "[]")]


def test_code_interpreter_input_and_logs_are_appended_and_outputs_kept_by_index():
    step = tool_step(
        {"id": "call_c", "type": "code_interpreter", "code_interpreter": {"input": "", "outputs": []}}
    )
    step = apply_step_delta(step, step_delta({"index": 0, "code_interpreter": {"input": "print("}}))
    step = apply_step_delta(step, step_delta({"index": 0, "code_interpreter": {"input": "1)"}}))
    step = apply_step_delta(
        step,
        step_delta(
            {"index": 0, "code_interpreter": {"outputs": [{"index": 0, "type": "logs", "logs": "1"}]}}
        ),
    )
    step = apply_step_delta(
        step,
        step_delta(
            {"index": 0, "code_interpreter": {"outputs": [{"index": 0, "type": "logs", "logs": "\n"}]}}
        ),
    )
    step = apply_step_delta(
        step,
        step_delta(
            {
                "index": 0,
                "code_interpreter": {
                    "outputs": [{"index": 1, "type": "image", "image": {"file_id": "file_1"}}]
                },
            }
        ),
    )
    (call,) = step.details.tool_calls
    assert isinstance(call, CodeInterpreterCall)
    assert call.input == "print(1)"
    assert [(o.type, o.logs, o.file_id) for o in call.outputs] == [
        ("logs", "1\n", None),
        ("image", None, "file_1"),
    ]


def test_message_text_grows_and_annotations_accumulate():
    msg = message(text(""))
    msg = apply_message_delta(msg, message_delta({"index": 0, "type": "text", "text": {"value": "Hello"}}))
    msg = apply_message_delta(
        msg,
        message_delta(
            {
                "index": 0,
                "type": "text",
                "text": {
                    "value": " world【4:0†a.md】",
                    "annotations": [
                        {"type": "file_citation", "text": "【4:0†a.md】", "start_index": 11, "end_index": 21}
                    ],
                },
            }
        ),
    )
    (part,) = msg.content
    assert isinstance(part, TextPart)
    assert part.value == "Hello world【4:0†a.md】"
    assert [a.type for a in part.annotations] == ["file_citation"]


def test_a_delta_for_a_new_content_index_adds_a_part():
    msg = apply_message_delta(
        message(text("one")), message_delta({"index": 1, "type": "text", "text": {"value": "two"}})
    )
    assert [p.value for p in msg.content] == ["one", "two"]


def test_applying_a_delta_leaves_the_original_untouched():
    step = tool_step({"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{"}})
    msg = message(text("Hi"))
    step_before, msg_before = copy.deepcopy(step.raw), copy.deepcopy(msg.raw)
    apply_step_delta(step, step_delta({"index": 0, "function": {"arguments": "}"}}))
    apply_message_delta(msg, message_delta({"index": 0, "text": {"value": "!"}}))
    assert (step.raw, msg.raw) == (step_before, msg_before)


def test_a_delta_cannot_make_a_list_grow_without_bound():
    step = tool_step({"id": "call_c", "type": "code_interpreter", "code_interpreter": {"outputs": []}})
    started = time.monotonic()
    grown = apply_step_delta(
        step,
        step_delta(
            {"index": 10**7, "type": "function", "function": {"arguments": "x"}},
            {"index": 0, "code_interpreter": {"outputs": [{"index": 10**7, "logs": "x"}]}},
        ),
    )
    msg = apply_message_delta(message(text("")), message_delta({"index": 10**7, "text": {"value": "x"}}))
    assert time.monotonic() - started < 0.5
    assert len(grown.details.tool_calls) == 1
    assert len(grown.raw["step_details"]["tool_calls"][0]["code_interpreter"]["outputs"]) <= 101
    assert len(msg.content) == 1


# --- garbage in: a step or message back, never an exception -----------------------------------------

HOSTILE_STEPS = [
    ({"step_details": "garbage"}, {"index": 0, "type": "function", "function": {"arguments": "x"}}),
    (
        {"step_details": {"tool_calls": None}},
        {"index": 0, "type": "function", "function": {"arguments": "x"}},
    ),
    (
        {"step_details": {"tool_calls": {"0": {}}}},
        {"index": 0, "type": "function", "function": {"arguments": "x"}},
    ),
    ({"step_details": {"tool_calls": ["not a call"]}}, {"index": 0, "function": {"arguments": "x"}}),
    (
        {"step_details": {"tool_calls": [{"type": "function", "function": "str"}]}},
        {"index": 0, "function": {"arguments": "x"}},
    ),
    (
        {"step_details": {"tool_calls": [{"type": "function", "function": {"arguments": 5}}]}},
        {"index": 0, "function": {"arguments": "x"}},
    ),
    (
        {
            "step_details": {
                "tool_calls": [{"type": "code_interpreter", "code_interpreter": {"outputs": "x"}}]
            }
        },
        {"index": 0, "code_interpreter": {"outputs": [{"index": 0, "logs": "a"}]}},
    ),
    (
        {
            "step_details": {
                "tool_calls": [{"type": "code_interpreter", "code_interpreter": {"outputs": ["x"]}}]
            }
        },
        {"index": 0, "code_interpreter": {"outputs": [{"index": 0, "logs": "a"}]}},
    ),
    (
        {"step_details": {"tool_calls": [{"type": "code_interpreter", "code_interpreter": {"outputs": []}}]}},
        {"index": 0, "code_interpreter": {"outputs": [{"index": -3, "logs": "a"}]}},
    ),
    (
        {
            "step_details": {
                "tool_calls": [{"type": "code_interpreter", "code_interpreter": {"outputs": [{"logs": 7}]}}]
            }
        },
        {"index": 0, "code_interpreter": {"outputs": [{"index": 0, "logs": "a"}]}},
    ),
    ({"step_details": {"tool_calls": []}}, {"index": -1, "type": "function"}),
    (
        {"step_details": {"tool_calls": []}},
        {"index": "0", "type": "function", "function": {"arguments": "x"}},
    ),
    (
        {"step_details": {"tool_calls": []}},
        {"index": 0, "type": ["function"], "function": {"arguments": "x"}},
    ),
]

HOSTILE_MESSAGES = [
    ({"content": ["not a part"]}, {"index": 0, "type": "text", "text": {"value": "a"}}),
    ({"content": [{"type": "text", "text": {"value": 5}}]}, {"index": 0, "text": {"value": "a"}}),
    (
        {"content": [{"type": "text", "text": {"value": "x", "annotations": None}}]},
        {"index": 0, "text": {"annotations": [{}]}},
    ),
    ({"content": [{"type": "text", "text": "flat"}]}, {"index": 0, "text": {"value": "a"}}),
    ({"content": "a string"}, {"index": 0, "text": {"value": "a"}}),
    ({"content": []}, {"index": 0, "type": 5, "text": {"value": "a"}}),
    ({"content": []}, {"index": 0, "text": ["value"]}),
]


@pytest.mark.parametrize(("raw", "piece"), HOSTILE_STEPS)
def test_a_hostile_step_delta_never_raises(raw, piece):
    step = Step.from_json({"id": "step_1", **raw})
    result = apply_step_delta(step, step_delta(piece))
    assert isinstance(result, Step) and result.id == "step_1"


@pytest.mark.parametrize(("raw", "part"), HOSTILE_MESSAGES)
def test_a_hostile_message_delta_never_raises(raw, part):
    msg = Message.from_json({"id": "msg_1", **raw})
    result = apply_message_delta(msg, message_delta(part))
    assert isinstance(result, Message) and result.id == "msg_1"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "index",
                    "type",
                    "id",
                    "function",
                    "arguments",
                    "name",
                    "code_interpreter",
                    "input",
                    "outputs",
                    "logs",
                    "output",
                    "text",
                    "value",
                    "annotations",
                    "tool_calls",
                    "step_details",
                    "content",
                    "delta",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(step_raw=json_values, delta_raw=json_values)
def test_garbage_step_deltas_never_raise(step_raw, delta_raw):
    step = Step.from_json({"id": "step_1", "step_details": step_raw})
    delta = StepDelta.from_json({"id": "step_1", "delta": {"step_details": delta_raw}})
    assert isinstance(apply_step_delta(step, delta), Step)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=json_values, parts=json_values)
def test_garbage_message_deltas_never_raise(content, parts):
    msg = Message.from_json({"id": "msg_1", "content": content})
    delta = MessageDelta.from_json({"id": "msg_1", "delta": {"content": parts}})
    assert isinstance(apply_message_delta(msg, delta), Message)
