"""The engine on whole upstream JSON trees, typed objects, admin rules, and hostile input."""

import dataclasses
import time

import pytest
import regex

from runs_ui.sharing.builtin_rules import BUILTINS
from runs_ui.sharing.custom_rules import CustomRule, PatternRefused, check_label, check_pattern
from runs_ui.sharing.redaction import UNCHECKED, Redactor
from runs_ui.upstream.objects import Message, Page, ResponseInfo, Run, Step

ALL = Redactor(BUILTINS)


def _run(**extra):
    return {
        "id": "run_abc123",
        "object": "thread.run",
        "thread_id": "thread_abc123",
        "assistant_id": "asst_abc123",
        "status": "requires_action",
        "created_at": 1764070000,
        "instructions": "Help jane@example.com with her order.",
        "metadata": {
            "customer_email": "jane@example.com",
            "tier": "gold",
            "Customer_Phone": "+44 20 7946 0958",
        },
        "required_action": {
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "charge", "arguments": '{"card": "4111 1111 1111 1111"}'},
                    }
                ]
            },
        },
        **extra,
    }


def test_every_string_of_a_tree_is_redacted_and_everything_else_kept():
    raw = _run(usage={"prompt_tokens": 4111111111111111, "total_tokens": 3}, tools=[{"type": "function"}])
    out = ALL.json(raw)
    assert out["instructions"] == "Help [email] with her order."
    assert out["metadata"]["customer_email"] == "[email]"
    call = out["required_action"]["submit_tool_outputs"]["tool_calls"][0]
    assert call["function"]["arguments"] == '{"card": "[card]"}'
    assert out["usage"]["prompt_tokens"] == 4111111111111111  # numbers are not text
    assert out["id"] == "run_abc123" and out["status"] == "requires_action"
    assert raw["instructions"].startswith("Help jane@")  # the input is not changed


def test_the_redacted_tree_parses_into_the_same_typed_objects():
    run = Run.from_json(_run())
    run = dataclasses.replace(run, info=ResponseInfo("req_1", 500))
    redacted = ALL.object(run)
    assert isinstance(redacted, Run)
    assert redacted.id == run.id and redacted.status == "requires_action" and redacted.info == run.info
    assert redacted.pending_calls[0].arguments == '{"card": "[card]"}'
    assert "jane@example.com" not in repr(redacted.raw)


def test_a_page_of_steps_is_redacted_item_by_item():
    step = {
        "id": "step_1",
        "type": "tool_calls",
        "status": "completed",
        "step_details": {
            "type": "tool_calls",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "code_interpreter",
                    "code_interpreter": {
                        "input": "print('10.0.0.1')",
                        "outputs": [{"type": "logs", "logs": "10.0.0.1\n"}],
                    },
                }
            ],
        },
    }
    page = Page([Step.from_json(step)], True, "step_1", "step_1")
    redacted = ALL.object(page)
    call = redacted.data[0].details.tool_calls[0]
    assert call.input == "print('[ip]')" and call.outputs[0].logs == "[ip]\n"
    assert redacted.has_more and redacted.next_after == "step_1"


def test_hidden_metadata_keys_are_left_out_of_every_metadata_object():
    redactor = Redactor(hidden_keys=["customer_*", "TIER"])
    out = redactor.json(
        {
            "metadata": {"customer_email": "x", "Customer_Phone": "y", "tier": "gold", "keep": "1"},
            "data": [{"metadata": {"tier": "t", "other": "2"}}],
            "tier": "not metadata",
        }
    )
    assert out == {"metadata": {"keep": "1"}, "data": [{"metadata": {"other": "2"}}], "tier": "not metadata"}


def test_keys_are_redacted_too_and_keys_that_redact_alike_both_stay():
    out = ALL.json({"metadata": {"bob@example.com": "1", "ann@example.com": "2"}})
    assert sorted(out["metadata"].values()) == ["1", "2"]
    assert all(key.startswith("[email]") for key in out["metadata"])


def test_a_message_with_hostile_content_still_parses():
    raw = {
        "id": "msg_1",
        "role": "user",
        "content": [
            {
                "type": "text",
                "text": {
                    "value": "<script>alert(1)</script> call +1 (555) 123-4567 \x00 \ud800",
                    "annotations": [],
                },
            }
        ],
    }
    message = ALL.object(Message.from_json(raw))
    assert message.text == "<script>alert(1)</script> call [phone] \x00 \ud800"


def _rule(pattern, label="customer-id"):
    return CustomRule("test", label, regex.compile(pattern))


def test_admin_rules_apply_with_their_label_and_merge_with_built_ins():
    redactor = Redactor(BUILTINS, [_rule(r"ACME-\d{4,}")])
    assert redactor.text("ticket ACME-123456 from bob@example.com") == "ticket [customer-id] from [email]"
    # Overlaps become their union, labelled by the span that starts first (the longer at the same start).
    assert Redactor(BUILTINS, [_rule(r"mail bob")]).text("mail bob@example.com now") == "[customer-id] now"
    assert Redactor(BUILTINS, [_rule(r"bob@\w+")]).text("mail bob@example.com now") == "mail [email] now"


def test_admin_rules_leave_ids_types_and_statuses_alone_but_not_free_text():
    redactor = Redactor(custom=[_rule(r"abc")])
    out = redactor.json(
        {
            "id": "run_abc",
            "thread_id": "thread_abc",
            "type": "abc",
            "status": "abc",
            "instructions": "abc",
            "id_note": "abc",
        }
    )
    assert out == {
        "id": "run_abc",
        "thread_id": "thread_abc",
        "type": "abc",
        "status": "abc",
        "instructions": "[customer-id]",
        "id_note": "[customer-id]",
    }


def test_admin_rules_never_match_inside_a_label_so_redaction_stays_idempotent():
    redactor = Redactor(BUILTINS, [_rule(r"[a-z]+", "word")])
    once = redactor.text("bob@example.com")
    assert once == "[email]"
    assert redactor.text(once) == once


def test_a_rule_that_runs_out_of_time_hides_the_whole_string():
    slow = Redactor(custom=[_rule(r"(\w+\s?)+$")])
    started = time.perf_counter()
    assert slow.text("ab " * 5000 + "!") == UNCHECKED
    assert time.perf_counter() - started < 2


def test_once_the_budget_is_spent_the_rest_of_the_tree_is_unchecked_not_shown():
    ticks = iter(range(100))
    redactor = Redactor(custom=[_rule(r"secret")], budget=2.5, clock=lambda: next(ticks))
    out = redactor.json(["a secret", "b secret", "c secret", "d secret"])
    assert out[:2] == ["a [customer-id]", "b [customer-id]"]
    assert out[2:] == [UNCHECKED, UNCHECKED]


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"(\w+\s?)+$", "very long"),
        (r"(a|aa)+$", "very long"),
        (r"x*", "empty text"),
        (r"[unclosed", "not a valid"),
        ("a" * 400, "under 300"),
        ("", "Enter"),
    ],
)
def test_patterns_that_cannot_work_are_refused_with_a_reason(pattern, why):
    with pytest.raises(PatternRefused, match=why):
        check_pattern(pattern)


def test_a_sound_pattern_and_label_are_accepted():
    assert check_pattern(r"(?i)order[ -]?\d{4,}").search("ORDER 12345")
    assert check_label("customer-id") == "customer-id"
    with pytest.raises(PatternRefused):
        check_label("Has Spaces")


HOSTILE = [
    "a" * 100_000,
    "1" * 100_000,
    "1 " * 50_000,
    "a@" * 50_000,
    "a." * 50_000 + "@",
    "x@" + "a." * 50_000,
    "1." * 50_000,
    "a:" * 50_000,
    ":" * 100_000,
    "+1 " * 33_000,
    "eyJ" + "a" * 100_000,
    "Bearer " * 14_000,
    "password=" * 11_000,
    "DE89 " * 20_000,
    "\x00" * 100_000,
    "\ud800" * 50_000 + "bob@example.com",
]


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: repr(t[:12]))
def test_hostile_100_kb_strings_neither_crash_nor_take_long(text):
    started = time.perf_counter()
    out = ALL.text(text)
    assert time.perf_counter() - started < 1.0  # linear scans take ~30 ms; a quadratic one, minutes
    assert ALL.text(out) == out


def test_lone_surrogates_and_nul_survive_redaction_around_them():
    assert ALL.text("\ud800bob@example.com\x00") == "\ud800[email]\x00"


def test_too_deep_json_is_unchecked_rather_than_walked():
    deep = "bob@example.com"
    for _ in range(200):
        deep = [deep]
    out = ALL.json({"x": deep})
    node = out["x"]
    depth = 0
    while isinstance(node, list):
        node, depth = node[0], depth + 1
    assert node == UNCHECKED and depth < 200
