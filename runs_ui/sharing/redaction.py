"""The redaction engine: strings, whole upstream JSON trees and typed objects, with their values replaced by
what they were (`[email]`, `[card]`, `[customer-id]`).

A redacted value shows its kind and nothing else: not its length, not a prefix. The engine works on the
raw JSON an upstream sent, so the typed objects are parsed again from the redacted tree and every page,
export and push renders them unchanged:

    redactor = await redactor_for(SHARED)            # rules.py: the rules in force, compiled once
    run = redactor.object(run)                       # Run.from_json(redactor.json(run.raw))
    page = redactor.object(page_of_steps)

Cost: the built-in rules are one combined pattern (one scan per string); short strings, dictionary keys
and the many repeated values (statuses, types, names) are answered from a memo. Admin rules run with a
timeout per string and a time budget per call; what they could not check in time is replaced whole by
`[unchecked]`, never shown unchecked.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .builtin_rules import BRANCHES, BUILTINS
from .custom_rules import MATCH_TIMEOUT, CustomRule

#: What replaces a string the engine could not check (an admin rule timed out, nesting too deep).
UNCHECKED = "[unchecked]"
#: Shortest text a built-in rule can match ("a@b.co"); shorter strings skip the scan.
MIN_BUILTIN_CHARS = 6
#: Strings up to this length are memoised (ids, statuses, names, keys repeat across a page).
MEMO_CHARS = 64
MEMO_ENTRIES = 20_000
#: Deeper JSON than this is not walked (objects.py keeps such values only as raw JSON).
MAX_DEPTH = 64
#: Seconds admin rules may spend on one call (a page, an export, a push) before failing closed.
CUSTOM_BUDGET = 1.0

_DIGIT = re.compile(r"[0-9]")
#: Text already in the shape of a redaction: admin rules never match inside it (redaction stays
#: idempotent whatever the rule, and "[word]" cannot become "[[word]]").
PLACEHOLDER = re.compile(r"\[[a-z][a-z0-9-]{0,30}\]")
#: Fields the typed objects parse as ids or enums: admin rules leave identifier-shaped values there alone,
#: so links and types survive (the built-in rules, which never match inside an identifier, still apply).
STRUCTURAL_KEYS = frozenset({"id", "object", "type", "status", "role"})
IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[_.-][A-Za-z0-9]+)*")


@dataclass(frozen=True, slots=True)
class RedactedSpan:
    """One redaction in a redacted string: where its label is (in the redacted text), and its order."""

    start: int
    end: int
    label: str
    n: int


@functools.lru_cache(maxsize=256)
def _combined(
    builtins: frozenset[str], at: bool, colon: bool, digit: bool
) -> tuple[re.Pattern | None, re.Pattern | None, dict]:
    """One pattern for the enabled built-in rules (each branch named by an empty group `b<i>`, in BRANCHES
    order), and the same without the branches' opening look-behinds, for right after a redacted value.

    Every branch costs time at every position of a text, so branches that need a character the text
    does not have (an email needs "@", an IPv6 address ":", a card number a digit) are left out of the
    pattern for that text.
    """
    parts, after, branches = [], [], {}
    for i, branch in enumerate(BRANCHES):
        if (
            branch.rule not in builtins
            or (branch.needs == "@" and not at)
            or (branch.needs == ":" and not colon)
            or (branch.needs == "digit" and not digit)
        ):
            continue
        # An empty group at the end names the branch (m.lastgroup): a group around the branch would hide
        # its first character from the engine's quick skip.
        parts.append(f"{branch.pattern}(?P<b{i}>)")
        after.append(f"{branch.after_label}(?P<b{i}>)")
        branches[f"b{i}"] = branch
    if not parts:
        return None, None, branches
    return re.compile("|".join(parts)), re.compile("|".join(after)), branches


class Redactor:
    """Applies one set of rules. Immutable once built; safe to share between requests and threads."""

    def __init__(
        self,
        builtins: Iterable[str] = (),
        custom: Sequence[CustomRule] = (),
        hidden_keys: Iterable[str] = (),
        *,
        budget: float = CUSTOM_BUDGET,
        clock=time.monotonic,
    ):
        unknown = set(builtins) - set(BUILTINS)
        if unknown:
            raise ValueError(f"unknown built-in rules: {sorted(unknown)}")
        self.builtins = frozenset(builtins)
        self.custom = tuple(custom)
        self.hidden_keys = tuple(k.casefold() for k in hidden_keys)
        self._budget = budget
        self._clock = clock
        # Memos of short strings, with and without the admin rules (ids are checked without them).
        self._memo: dict[str, str] = {}
        self._memo_plain: dict[str, str] = {}

    @property
    def active(self) -> bool:
        return bool(self.builtins or self.custom or self.hidden_keys)

    # --- strings -----------------------------------------------------------------------------------

    def text(self, text: str) -> str:
        """`text` with every value a rule finds replaced by its label."""
        return self._redact(text, True, self._deadline())

    def spans(self, text: str) -> list[tuple[int, int, str]] | None:
        """(start, end, label) of each redaction in the original `text`; None if it could not be checked."""
        return self._spans(text, True, self._deadline())

    def text_with_spans(self, text: str) -> tuple[str, list[RedactedSpan]]:
        """The redacted text and where each label sits in it (for reveal buttons, see reveal.py)."""
        spans = self._spans(text, True, self._deadline())
        if spans is None:
            return UNCHECKED, [RedactedSpan(0, len(UNCHECKED), "unchecked", 0)]
        out, placed, last = [], [], 0
        length = 0
        for n, (start, end, label) in enumerate(spans):
            out.append(text[last:start])
            length += start - last
            tag = f"[{label}]"
            placed.append(RedactedSpan(length, length + len(tag), label, n))
            out.append(tag)
            length += len(tag)
            last = end
        out.append(text[last:])
        return "".join(out), placed

    def _deadline(self) -> list[float] | None:
        # A one-item list, so the string walk can spend it; None when no admin rule needs the budget.
        return [self._clock() + self._budget] if self.custom else None

    def _redact(self, text: str, custom_ok: bool, deadline) -> str:
        memo = len(text) <= MEMO_CHARS
        if memo:
            cached = (self._memo if custom_ok else self._memo_plain).get(text)
            if cached is not None:
                return cached
        spans = self._spans(text, custom_ok, deadline)
        if spans is None:
            return UNCHECKED  # never memoised: a timeout depends on the moment, not on the text
        result = _apply(text, spans) if spans else text
        if memo:
            table = self._memo if custom_ok else self._memo_plain
            if len(table) >= MEMO_ENTRIES:
                table.clear()
            table[text] = result
        return result

    def _spans(self, text: str, custom_ok: bool, deadline) -> list[tuple[int, int, str]] | None:
        """Sorted, non-overlapping (start, end, label) in `text`; None when it could not be checked."""
        found = self._builtin_pass(text)
        # A value next to a redacted one may only be seen once its neighbour reads "[label]" (look-arounds
        # saw the raw neighbour): scan the redacted text again until nothing more turns up, so that
        # redacting a redacted text changes nothing. Texts with no redaction (almost all) scan once.
        for _ in range(3):
            if not found or not _may_hide_more(text, found):
                break
            more = self._builtin_pass(_apply(text, found))
            if not more:
                break
            found = sorted(found + [_to_original(span, found) for span in more])
        if custom_ok and self.custom:
            extra = self._custom_spans(text, deadline)
            if extra is None:
                return None
            if extra:
                found = _merge(found + extra)
        return found

    def _builtin_pass(self, text: str) -> list[tuple[int, int, str]]:
        if not self.builtins or len(text) < MIN_BUILTIN_CHARS:
            return []
        pattern, after_label, branches = _combined(
            self.builtins, "@" in text, ":" in text, _DIGIT.search(text) is not None
        )
        if pattern is None:
            return []
        found, pos, floor, search = [], 0, 0, pattern.search
        while True:
            # Right after a redacted value the text will read "]": match there as if it did already, so
            # that "a@b.com+44 20 7946 0958" redacts both in one scan, and redacting again changes nothing.
            m = after_label.match(text, pos) if found and pos == found[-1][1] else None
            if m is None:
                m = search(text, pos)
                if m is None:
                    break
            branch = branches[m.lastgroup]
            start = m.start()
            if branch.prefix is not None:
                kept = branch.prefix.match(text, start)
                start = kept.end() if kept else m.end()  # no prefix: refused below
            end = branch.check(text, start, m.end(), floor)
            if end is None or end <= start:
                # Refused as a whole: its parts are not read as other kinds (the digits of an IBAN with
                # a bad checksum are not a card number).
                pos = m.end()
                continue
            found.append((start, end, branch.label))
            pos = floor = end
        return found

    def _custom_spans(self, text: str, deadline) -> list[tuple[int, int, str]] | None:
        if deadline[0] < self._clock():
            return None
        spans = []
        try:
            for rule in self.custom:
                spans += [
                    (m.start(), m.end(), rule.label)
                    for m in rule.pattern.finditer(text, timeout=MATCH_TIMEOUT)
                    if m.end() > m.start()
                ]
        except TimeoutError:
            return None
        if spans and "[" in text:
            taken = [m.span() for m in PLACEHOLDER.finditer(text)]
            spans = [s for s in spans if not any(s[0] < e and b < s[1] for b, e in taken)]
        return spans

    # --- JSON trees ------------------------------------------------------------------------------

    def json(self, value: Any) -> Any:
        """A copy of a JSON tree with every string (values and keys) redacted, and the hidden keys of every
        `metadata` object left out. Numbers, booleans and null are kept as they are."""
        if not self.active:
            return value
        return self._walk(value, None, 0, self._deadline())

    def _walk(self, value: Any, key: str | None, depth: int, deadline) -> Any:
        # Exact type checks: json.loads makes exactly these, and they are the hot path of a page.
        kind = type(value)
        if kind is str:
            if not self.custom:
                return value if len(value) < MIN_BUILTIN_CHARS else self._redact(value, False, deadline)
            custom_ok = not (
                (key in STRUCTURAL_KEYS or (key is not None and key.endswith("_id")))
                and len(value) <= 200
                and IDENTIFIER.fullmatch(value)
            )
            return self._redact(value, custom_ok, deadline)
        if kind is dict:
            if depth >= MAX_DEPTH:
                return UNCHECKED
            out: dict = {}
            depth += 1
            for k, v in value.items():
                if k == "metadata" and self.hidden_keys and type(v) is dict:
                    v = {mk: mv for mk, mv in v.items() if not self.hides_key(mk)}
                if type(k) is str:
                    name = (
                        k
                        if len(k) < MIN_BUILTIN_CHARS and not self.custom
                        else self._redact(k, True, deadline)
                    )
                    while name in out:  # two keys that redact alike both stay
                        name = f"{name} "
                    out[name] = self._walk(v, k, depth, deadline)
                else:
                    out[k] = self._walk(v, None, depth, deadline)
            return out
        if kind is list:
            if depth >= MAX_DEPTH:
                return UNCHECKED
            return [self._walk(item, None, depth + 1, deadline) for item in value]
        # Subclasses (not from json.loads): as their base type.
        if isinstance(value, str):
            return self._walk(str(value), key, depth, deadline)
        if isinstance(value, dict):
            return self._walk(dict(value), key, depth, deadline)
        if isinstance(value, list):
            return self._walk(list(value), key, depth, deadline)
        return value

    def hides_key(self, key: Any) -> bool:
        """A metadata key an admin chose to hide (exact, case-insensitive, `*` and `?` as wildcards)."""
        name = str(key).casefold()
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.hidden_keys)

    # --- typed objects ---------------------------------------------------------------------------

    def object(self, obj):
        """A typed upstream object (Run, Step, Message, Thread, Assistant, or a Page of them) parsed again
        from its redacted raw JSON; response info (request id, poll hint) is kept."""
        if not self.active or obj is None:
            return obj
        data = getattr(obj, "data", None)
        if isinstance(data, list) and hasattr(obj, "has_more"):
            return dataclasses.replace(obj, data=[self.object(item) for item in data])
        redacted = type(obj).from_json(self.json(obj.raw))
        if getattr(obj, "info", None) is not None:
            redacted = dataclasses.replace(redacted, info=obj.info)
        return redacted


#: After a redacted value, "[label]" may let a branch start where the value's last character stopped it:
#: only a character a branch can start with matters.
_MAY_START = re.compile(r"[\w.%+\-:(]")
#: Before a redacted value: a candidate that reached into the value (and failed on it) may match once the
#: value reads "[label]". Candidates only cross into a value from a word character or one of ")+-.=:", or
#: across spaces from one of those (digit groups, "Bearer x"): a quote, comma or bracket stops them all.
_SAFE_BEFORE = frozenset("\"',;([<{>")
_SPACES = " \t"
_REACHES = re.compile(r"[\w)+\-.=:]")


def _may_hide_more(text: str, spans: list[tuple[int, int, str]]) -> bool:
    """Whether a second scan of the redacted text could find more (rarely: values mostly stand between
    quotes, commas and plain words)."""
    for start, end, _ in spans:
        if end < len(text) and _MAY_START.match(text, end):
            return True
        before = start - 1
        while before >= 0 and text[before] in _SPACES:
            before -= 1
        if before >= 0 and text[before] not in _SAFE_BEFORE and _REACHES.match(text, before):
            return True
    return False


def _apply(text: str, spans: list[tuple[int, int, str]]) -> str:
    out, last = [], 0
    for start, end, label in spans:
        out += (text[last:start], "[", label, "]")
        last = end
    out.append(text[last:])
    return "".join(out)


def _to_original(span: tuple[int, int, str], applied: list[tuple[int, int, str]]) -> tuple[int, int, str]:
    """A span found in `_apply(text, applied)` in `text`'s own positions (it never covers a label)."""
    start, end, label = span
    shift = 0
    for a_start, a_end, a_label in applied:
        if a_start - shift + len(a_label) + 2 > start:
            break
        shift += (a_end - a_start) - (len(a_label) + 2)
    return start + shift, end + shift, label


def _merge(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Overlapping spans become one, with the label of the one that starts first (the longest of those):
    redacting their union leaks nothing."""
    spans.sort(key=lambda span: (span[0], -span[1]))
    merged = [spans[0]]
    for start, end, label in spans[1:]:
        last_start, last_end, last_label = merged[-1]
        if start < last_end:
            merged[-1] = (last_start, max(last_end, end), last_label)
        else:
            merged.append((start, end, label))
    return merged


#: Every built-in rule on, nothing else: the default for shared views.
def all_builtins() -> Redactor:
    return Redactor(BUILTINS)
