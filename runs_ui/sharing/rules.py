"""The redaction rules in force for an audience, read from the database and compiled once per change.

Two audiences: SHARED (shared links' pages, exports and pushes) and VIEWER (normal pages seen by the
viewer role). Each request reads the (few) rule rows; the compiled `Redactor` is reused until a row
changes, in every process, with no signal to miss.
"""

from __future__ import annotations

import logging
import threading

from asgiref.sync import sync_to_async

from .builtin_rules import BUILTINS
from .custom_rules import CustomRule, PatternRefused, check_pattern
from .models import HiddenMetadataKey, RedactionRule
from .redaction import Redactor

log = logging.getLogger(__name__)

SHARED, VIEWER = "shared", "viewer"
AUDIENCES = (SHARED, VIEWER)

_compiled: dict[tuple, Redactor] = {}
_lock = threading.Lock()


def _applies(row, audience: str) -> bool:
    return row.applies_to_shares if audience == SHARED else row.applies_to_viewers


def build(audience: str, rules: list[RedactionRule], keys: list[HiddenMetadataKey]) -> Redactor:
    """The Redactor for these rows (compiled once per distinct set of rows)."""
    if audience not in AUDIENCES:
        raise ValueError(f"unknown audience {audience!r}")
    fingerprint = (
        audience,
        tuple((r.pk, r.updated_at, r.builtin, r.pattern, r.label, _applies(r, audience)) for r in rules),
        tuple((k.pk, k.key, _applies(k, audience)) for k in keys),
    )
    with _lock:
        cached = _compiled.get(fingerprint)
    if cached is not None:
        return cached
    configured = {r.builtin: r for r in rules if r.builtin}
    # A built-in with no row: on for shared views, off for viewers.
    builtins = [
        name
        for name in BUILTINS
        if (_applies(configured[name], audience) if name in configured else audience == SHARED)
    ]
    custom = []
    for rule in rules:
        if rule.builtin or not _applies(rule, audience):
            continue
        try:
            custom.append(CustomRule(rule.name, rule.label, check_pattern(rule.pattern)))
        except PatternRefused as exc:
            # Saved before a stricter check, or edited in the database: it cannot run safely. Shared
            # pages still get every other rule; the admin sees why on the rule's page when saving it.
            log.warning("Redaction rule %s (#%s) is not applied: %s", rule.name, rule.pk, exc)
    redactor = Redactor(builtins, custom, [k.key for k in keys if _applies(k, audience)])
    with _lock:
        if len(_compiled) > 32:
            _compiled.clear()
        _compiled[fingerprint] = redactor
    return redactor


def redactor_for_sync(audience: str) -> Redactor:
    return build(audience, list(RedactionRule.objects.all()), list(HiddenMetadataKey.objects.all()))


async def redactor_for(audience: str) -> Redactor:
    """The rules in force for `audience` (SHARED or VIEWER), from the event loop."""
    rules = [r async for r in RedactionRule.objects.all()]
    keys = [k async for k in HiddenMetadataKey.objects.all()]
    return await sync_to_async(build, thread_sensitive=False)(audience, rules, keys)
