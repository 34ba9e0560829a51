"""Rules an admin writes as regular expressions: checked when saved, bounded in time when applied.

Patterns run on the `regex` module, whose matching takes a timeout: a pattern that backtracks
catastrophically (`(\\w+\\s?)+$`) on some hostile text stops after `MATCH_TIMEOUT` instead of holding a
worker for minutes. Before a pattern is saved, `check_pattern` refuses what cannot work (bad syntax,
empty matches, too long) and tries it on texts built to make nested repeats explode, so most such
patterns never reach a page at all.
"""

from __future__ import annotations

import itertools
import re
import string
from dataclasses import dataclass

import regex

MAX_PATTERN_CHARS = 300
#: Per string and rule, when applied to a page's strings.
MATCH_TIMEOUT = 0.02
#: Per probe, when a pattern is checked before it is saved.
PROBE_TIMEOUT = 0.05
PROBE_LENGTH = 4000
LABEL = re.compile(r"[a-z][a-z0-9-]{0,30}")


class PatternRefused(ValueError):
    """Why a pattern cannot be a redaction rule, in words for the admin form."""


@dataclass(frozen=True)
class CustomRule:
    name: str
    label: str
    pattern: regex.Pattern


def compile_pattern(source: str) -> regex.Pattern:
    try:
        return regex.compile(source)
    except regex.error as exc:
        raise PatternRefused(f"This is not a valid regular expression: {exc}.") from None
    except (RecursionError, OverflowError, MemoryError):
        raise PatternRefused("This regular expression is too complex.") from None


def _probe_texts(source: str) -> list[str]:
    """Texts on which nested repeats explode: long runs of characters the pattern itself mentions (and a
    few common classes), each ended by a character that makes the match fail at the very end."""
    mentioned = {ch for ch in source if ch.isprintable() and ch not in "\\()[]{}?*+|^$"}
    chars = sorted(mentioned | set("a1 .-_@\t"))[:24]
    probes = [ch * PROBE_LENGTH for ch in chars]
    probes += [
        (a + b) * (PROBE_LENGTH // 2) for a, b in itertools.islice(itertools.combinations(chars, 2), 24)
    ]
    probes.append((string.ascii_letters + string.digits + " ") * (PROBE_LENGTH // 63))
    return [p + end for p in probes for end in ("\x00", "!")]


def check_pattern(source: str) -> regex.Pattern:
    """The compiled pattern, or PatternRefused saying why it cannot be used."""
    if not source.strip():
        raise PatternRefused("Enter a regular expression.")
    if len(source) > MAX_PATTERN_CHARS:
        raise PatternRefused(f"Keep the pattern under {MAX_PATTERN_CHARS} characters.")
    pattern = compile_pattern(source)
    try:
        if pattern.search("", timeout=PROBE_TIMEOUT) is not None:
            raise PatternRefused(
                "This pattern matches an empty text, so it would redact nothing but insert labels. "
                "Require at least one character (use + rather than *)."
            )
        for probe in _probe_texts(source):
            for _ in pattern.finditer(probe, timeout=PROBE_TIMEOUT):
                pass
    except TimeoutError:
        raise PatternRefused(
            "This pattern can take very long on some texts (nested repeats such as (a+)+ or (\\w+\\s?)+ "
            "backtrack catastrophically). Simplify it, e.g. remove the outer repeat."
        ) from None
    return pattern


def check_label(label: str) -> str:
    if not LABEL.fullmatch(label):
        raise PatternRefused("A label is lower-case letters, digits and dashes, starting with a letter.")
    return label
