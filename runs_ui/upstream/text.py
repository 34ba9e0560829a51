"""Upstream text made safe for every place it goes: pages, pushes, exports, audit records and index rows.

JSON can carry two things that break what comes after it. A lone UTF-16 surrogate ("\\ud800", the half of
an emoji a model's output was cut at) cannot be encoded as UTF-8, so a page or a push that holds one fails;
NUL ("\\u0000") is refused by PostgreSQL in text and in jsonb. Other control characters are legal
everywhere and pass through (templates escape them; JSON writes them as escapes).

Where the marker and the escape live:

- The marker lives in the text. Every JSON value the client decodes passes `loads` once, at the boundary:
  each lone surrogate becomes U+FFFD "�" and each NUL U+2400 "␀", one character for one (so offsets such
  as citation indices still point where they did). Typed objects, their `raw` JSON, the thread index, the
  audit trail and the live state only ever hold that clean text, so nothing after the boundary can fail
  on it, and a person sees where something could not be shown.
- The escape lives with the string that needed it. A string that was changed is a `Mended` str: its
  value is the clean text, and `.sent` keeps what the upstream sent. Only the JSON views read `.sent`:
  `to_json` (the raw-JSON view, exports) writes it back as the JSON escape that was sent ("\\ud800",
  "\\u0000"), which is valid UTF-8 JSON meaning exactly the upstream's value. A genuine "�" or "␀" from the
  upstream is a plain str and is written as itself, so a marker never passes for what was sent, nor the
  other way round.
- Text built from a Mended string (a stream delta appended to it) or read back from storage is plain
  clean text: it shows the marker, and it is still safe.
"""

from __future__ import annotations

import json
import re
from typing import Any

SURROGATE_MARK = "\ufffd"
NUL_MARK = "\u2400"

#: What cannot go on: NUL and lone surrogates (json combines valid pairs into one character).
_UNSAFE = re.compile("[\x00\ud800-\udfff]")
#: What a JSON text needs to hold to decode into something unsafe: the escapes, or the raw characters
#: (bytes decode with "surrogatepass", as json itself does).
_MAYBE_UNSAFE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])|[\x00\ud800-\udfff]")
_LONE = re.compile("[\ud800-\udfff]")


class Mended(str):
    """Clean text of a string that was sent with lone surrogates or NUL; `.sent` is what was sent."""

    sent: str


def _mark(match: re.Match) -> str:
    return NUL_MARK if match.group() == "\x00" else SURROGATE_MARK


def clean_text(text: str) -> str:
    """The string itself if it is safe, else a `Mended` string with markers."""
    if not _UNSAFE.search(text):
        return text
    mended = Mended(_UNSAFE.sub(_mark, text))
    mended.sent = text
    return mended


def clean(value: Any) -> Any:
    """A decoded JSON value with every string (keys too) made safe, in place where it can be."""
    if isinstance(value, str):
        return clean_text(value)
    # Iterative: a value json could decode may be nested deeper than this function could recurse.
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            for i, item in enumerate(node):
                if isinstance(item, str):
                    node[i] = clean_text(item)
                elif isinstance(item, (list, dict)):
                    stack.append(item)
        elif isinstance(node, dict):
            if any(isinstance(k, str) and _UNSAFE.search(k) for k in node):
                items = [(clean_text(k), v) for k, v in node.items()]
                node.clear()
                node.update(items)
            for key, item in node.items():
                if isinstance(item, str):
                    node[key] = clean_text(item)
                elif isinstance(item, (list, dict)):
                    stack.append(item)
    return value


def loads(data: bytes | str) -> Any:
    """JSON → Python with every string safe. Raises ValueError (or RecursionError) as `json.loads` does.

    Lenient where servers are sloppy and nothing is lost: raw control characters inside strings are read.
    """
    if isinstance(data, bytes | bytearray):
        data = data.decode(json.detect_encoding(data), "surrogatepass")
    value = json.loads(data, strict=False)
    return clean(value) if _MAYBE_UNSAFE.search(data) else value


def _as_sent(value: Any) -> Any:
    """A copy of `value` with every Mended string (key or value) replaced by what was sent. Iterative, as
    `clean` is: anything json could read, however deep, can be written back."""

    def sent(item):
        return item.sent if isinstance(item, Mended) else item

    def shell(item):
        return {} if isinstance(item, dict) else []

    if not isinstance(value, dict | list | tuple):
        return sent(value)
    top = shell(value)
    stack = [(value, top)]
    while stack:
        source, copy = stack.pop()
        pairs = source.items() if isinstance(source, dict) else enumerate(source)
        for key, item in pairs:
            if isinstance(item, dict | list | tuple):
                child = shell(item)
                stack.append((item, child))
            else:
                child = sent(item)
            if isinstance(copy, dict):
                copy[sent(key)] = child
            else:
                copy.append(child)
    return top


def _escape(match: re.Match) -> str:
    return f"\\u{ord(match.group()):04x}"


#: Deeper than this, JSON is written without indentation: indenting costs two spaces per level per line,
#: so 10 KB nested 5,000 deep would indent to 50 MB.
MAX_INDENTED_DEPTH = 64


def nested_deeper_than(value: Any, depth: int) -> bool:
    """Whether lists and objects in `value` nest more than `depth` levels (level by level: it stops at
    `depth`, and costs a few microseconds for an ordinary object)."""
    level = [value] if isinstance(value, dict | list) else []
    for _ in range(depth):
        below = []
        for node in level:
            children = node.values() if isinstance(node, dict) else node
            below += [child for child in children if isinstance(child, dict | list)]
        if not below:
            return False
        level = below
    return bool(level)


def to_json(value: Any, *, indent: int | None = None) -> str:
    """JSON text of upstream data, exactly as sent: mended strings are written with the upstream's escapes.

    The result is always encodable (valid UTF-8 JSON); non-ASCII text stays readable. Values nested
    deeper than MAX_INDENTED_DEPTH are written compact whatever `indent` says.
    """
    if indent is not None and nested_deeper_than(value, MAX_INDENTED_DEPTH):
        indent = None
    text = json.dumps(value, indent=indent, ensure_ascii=False, default=str)
    if SURROGATE_MARK not in text and NUL_MARK not in text:
        return text  # nothing was mended (the common case): no second pass
    # A lone surrogate can only be inside a JSON string here, where its escape means the same value.
    sent = json.dumps(_as_sent(value), indent=indent, ensure_ascii=False, default=str)
    return _LONE.sub(_escape, sent)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _control_escape(match: re.Match) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def one_line(text: str) -> str:
    """`text` for a log line: every control character (CR and LF too) written as an escape, so what an
    upstream says can never start a line of its own."""
    return _CONTROL.sub(_control_escape, text)
