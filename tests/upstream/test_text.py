"""Any string JSON can carry comes out of the client safe: lone surrogates and NUL become visible markers,
and the JSON views write back the escapes that were sent."""

from __future__ import annotations

import json

import pytest

from runs_ui.rendering import pretty
from runs_ui.upstream import text
from runs_ui.upstream.objects import Run, pretty_json

from .conftest import message_json, run_json

# What a model's truncated emoji and a NUL look like on the wire: JSON escapes.
HOSTILE_JSON = r'"half an emoji \ud83d, a NUL \u0000, a low half \ude00 alone"'


def encodable(value) -> bool:
    """Whether a page, a push, a file or a database could hold it: it encodes as UTF-8, with no NUL."""
    dumped = json.dumps(value, ensure_ascii=False)
    dumped.encode("utf-8")
    return "\x00" not in str(value) and "\\u0000" not in dumped


def test_lone_surrogates_and_nul_become_visible_markers_one_character_for_one():
    value = text.loads(HOSTILE_JSON)

    assert value == "half an emoji �, a NUL ␀, a low half � alone"
    assert len(value) == len(json.loads(HOSTILE_JSON))  # offsets (citation indices) still hold
    assert encodable(value)


def test_a_mended_string_remembers_what_was_sent():
    value = text.loads(HOSTILE_JSON)

    assert isinstance(value, text.Mended)
    assert value.sent == json.loads(HOSTILE_JSON)


def test_a_safe_string_is_left_alone_even_with_a_valid_surrogate_pair_or_other_control_characters():
    value = text.loads(r'"an emoji \ud83d\ude00, a bell \u0007, a tab \t"')

    assert value == "an emoji 😀, a bell \x07, a tab \t"
    assert type(value) is str


def test_keys_and_strings_at_any_depth_are_made_safe():
    raw = r'{"meta\u0000data": {"k": ["\ud800", {"deep": ["\u0000"]}]}, "ok": "fine"}'

    value = text.loads(raw)

    assert value == {"meta␀data": {"k": ["�", {"deep": ["␀"]}]}, "ok": "fine"}
    assert encodable(value)


def test_surrogates_sent_as_raw_bytes_are_made_safe_too():
    # CESU-8: a surrogate encoded as three bytes, which strict UTF-8 refuses and json reads anyway.
    value = text.loads(b'{"a": "x\xed\xa0\xbdy"}')

    assert value == {"a": "x�y"}
    assert value["a"].sent == "x\ud83dy"


def test_a_raw_control_character_inside_a_string_is_read_not_refused():
    assert text.loads(b'{"a": "line\none\x00"}') == {"a": "line\none␀"}


def test_the_raw_json_view_shows_the_escapes_that_were_sent():
    value = text.loads(r'{"k\u0000": "half \ud83d and \u0000"}')

    shown = pretty(value)

    assert shown == '{\n  "k\\u0000": "half \\ud83d and \\u0000"\n}'
    assert json.loads(shown) == json.loads(r'{"k\u0000": "half \ud83d and \u0000"}')  # exactly what was sent
    shown.encode("utf-8")


def test_a_genuine_replacement_character_is_shown_as_itself_not_as_an_escape():
    value = text.loads(r'{"a": "\ufffd sent as such", "b": "\ud800"}')

    assert pretty(value) == '{\n  "a": "� sent as such",\n  "b": "\\ud800"\n}'


def test_function_arguments_whose_json_holds_escapes_keep_them_in_the_view():
    arguments = r'{"city": "Par\ud83d", "note": "\u0000"}'

    shown = pretty_json(arguments)

    assert "\\ud83d" in shown and "\\u0000" in shown
    shown.encode("utf-8")


def test_typed_objects_carry_only_safe_text():
    raw = json.dumps(run_json(model="gpt\u0000", metadata={"note": "x\ud800"}), ensure_ascii=True)

    run = Run.from_json(text.loads(raw))

    assert run.model == "gpt␀"
    assert run.metadata == {"note": "x�"}
    assert encodable(run.raw)


@pytest.mark.parametrize("depth", [5, 64, 65, 5_000])
def test_json_nested_deep_is_written_compact_so_its_view_stays_linear_in_size(depth):
    value = text.loads("[" * depth + r'"\u0000"' + "]" * depth)

    shown = pretty(value)

    # At most 64 levels are indented; indenting all 5,000 would take 50 MB.
    assert len(shown) <= 4 * 64 * depth + 100
    assert "\\u0000" in shown


def test_a_hundred_kilobyte_line_passes_through_whole():
    line = "x" * 100_000 + "\u0000"

    value = text.loads(json.dumps({"line": line}))

    assert value["line"] == "x" * 100_000 + "␀"


def test_one_line_escapes_what_could_forge_a_log_line():
    assert text.one_line("ok\r\n2026-01-01 ERROR forged\u2028\x1b[31m") == (
        "ok\\r\\n2026-01-01 ERROR forged\\u2028\\x1b[31m"
    )


def test_a_message_with_hostile_text_reads_as_safe_text():
    raw = json.dumps(message_json(text="hello \udc00\u0000"))

    value = text.loads(raw)

    assert value["content"][0]["text"]["value"] == "hello �␀"
