"""The audit trail: a record written before an action's upstream call and completed after it.

If the process dies in between, the record stays "outcome unknown" (pending); `reconcile` later infers
the outcome from the run's state. While a record is pending, the database refuses a second one of the
same action on the same run (see the model's constraint), so a double submit never reaches the upstream.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone

from .models import AuditRecord
from .upstream.errors import UpstreamError, UpstreamTimeout
from .upstream.objects import RUN_TERMINAL, Run

#: A pending record older than this is treated as interrupted and reconciled from the run.
STALE_PENDING = timedelta(seconds=60)


class ActionInFlight(Exception):
    """Another request is doing the same action on the same run right now."""


def payload_for(action: str, payload: dict) -> tuple[dict, str, int]:
    """What is stored: the payload, or (if AUDIT_HASH_TOOL_OUTPUTS) tool outputs replaced by their hash."""
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False)
    digest, size = hashlib.sha256(text.encode()).hexdigest(), len(text.encode())
    if action in ("submit_tool_outputs", "answer_response") and settings.AUDIT_HASH_TOOL_OUTPUTS:
        payload = {
            **payload,
            "tool_outputs": [
                {
                    "tool_call_id": o["tool_call_id"],
                    "output_sha256": hashlib.sha256(o["output"].encode()).hexdigest(),
                    "output_size": len(o["output"].encode()),
                }
                for o in payload.get("tool_outputs", [])
            ],
        }
    return payload, digest, size


async def begin(
    user,
    action: str,
    connection: str,
    *,
    thread_id: str = "",
    run_id: str = "",
    reason: str = "",
    payload: dict | None = None,
) -> AuditRecord:
    """Write the record before the upstream call. Raises ActionInFlight if the same action is pending.

    The record's latency, written by `succeed` or `fail`, counts from the end of this call.
    """
    stored, digest, size = payload_for(action, payload or {})
    try:
        record = await AuditRecord.objects.acreate(
            user=user,
            username=user.get_username(),
            action=action,
            connection=connection,
            thread_id=thread_id,
            run_id=run_id,
            reason=reason,
            payload=stored,
            payload_sha256=digest,
            payload_size=size,
        )
    except IntegrityError:
        raise ActionInFlight(action) from None
    record.started = time.monotonic()  # not a field: lives as long as the call it times
    return record


async def succeed(
    record: AuditRecord,
    *,
    run: Run | None = None,
    status: int = 200,
    request_id: str | None = None,
    message: str = "",
) -> None:
    record.outcome = AuditRecord.SUCCEEDED
    record.upstream_status = status
    record.request_id = (request_id or (run.info.request_id if run and run.info else "") or "")[:200]
    record.upstream_message = message
    if run is not None:
        record.upstream_message = message or f"the run is {run.status.replace('_', ' ')}"
        record.run_id = record.run_id or run.id
        record.thread_id = record.thread_id or run.thread_id
    await _complete(record)


async def fail(record: AuditRecord, exc: UpstreamError) -> None:
    record.upstream_status = exc.status
    record.upstream_message = f"{exc.kind}: {exc.message}"[:4000]
    record.request_id = (exc.request_id or "")[:200]
    if isinstance(exc, UpstreamTimeout):
        # The call went out and no answer came back: it may have landed. Like a crash, it stays
        # "outcome unknown" until the run's state settles it (reconcile), and blocks a blind retry.
        record.latency_ms = _latency_ms(record)
        await record.asave()
        return
    record.outcome = AuditRecord.FAILED
    await _complete(record)


def _latency_ms(record: AuditRecord) -> int:
    return int((time.monotonic() - record.started) * 1000)


async def _complete(record: AuditRecord) -> None:
    record.latency_ms = _latency_ms(record)
    record.completed_at = timezone.now()
    await record.asave()


def _inferred(record: AuditRecord, run: Run) -> tuple[bool, str]:
    """Did an interrupted action land? What the run's state says about it."""
    if record.action == "cancel_run":
        landed = run.status in ("cancelling", "cancelled")
        return landed, f"the run is {run.status}"
    if record.action == "submit_tool_outputs":
        pending = {c.id for c in run.pending_calls}
        submitted = {o.get("tool_call_id") for o in record.payload.get("tool_outputs", [])}
        landed = not (pending & submitted)
        return landed, "those calls are no longer pending" if landed else "those calls are still pending"
    if record.action == "modify_metadata":
        landed = run.metadata == record.payload.get("metadata")
        return landed, "the run's metadata matches" if landed else "the run's metadata differs"
    # A run that exists was created by it.
    return True, f"the run exists ({run.status})"


async def reconcile(records: list[AuditRecord], run: Run) -> None:
    """Settle interrupted records of this run from its current state."""
    for record in records:
        landed, evidence = _inferred(record, run)
        record.outcome = AuditRecord.SUCCEEDED if landed else AuditRecord.FAILED
        record.reconciled_at = timezone.now()
        record.note = f"Interrupted before its outcome was recorded; reconciled from the run: {evidence}."
        await record.asave()


START_ACTIONS = ("create_run", "create_thread_and_run")
#: Upstream and dashboard clocks differ, and upstream timestamps are whole seconds.
CLOCK_SLACK = timedelta(seconds=5)


async def reconcile_starts(connection: str, thread_id: str, runs: list[Run]) -> None:
    """Settle interrupted "start a run" records of this thread: the run they started is one of `runs`
    (same assistant, created after the record), or it is not known yet and the record stays as it is."""
    records = [
        r
        async for r in AuditRecord.objects.filter(
            connection=connection,
            thread_id=thread_id,
            run_id="",
            action__in=START_ACTIONS,
            outcome=AuditRecord.PENDING,
            created_at__lt=timezone.now() - STALE_PENDING,
        )
    ]
    for record in records:
        since = (record.created_at - CLOCK_SLACK).timestamp()
        started = [
            r
            for r in runs
            if r.assistant_id == record.payload.get("assistant_id") and (r.created_at or 0) >= since and r.id
        ]
        if started:
            run = min(started, key=lambda r: r.created_at or 0)
            record.run_id = run.id
            await reconcile([record], run)


async def settle_interrupted(connection: str, run: Run) -> None:
    """Settle this run's actions interrupted before their outcome was written, from what the run says now."""
    await reconcile(await stale_pending(connection, run.id), run)


async def stale_pending(connection: str, run_id: str) -> list[AuditRecord]:
    cutoff = timezone.now() - STALE_PENDING
    return [
        r
        async for r in AuditRecord.objects.filter(
            connection=connection, run_id=run_id, outcome=AuditRecord.PENDING, created_at__lt=cutoff
        )
    ]


async def recent_for_run(connection: str, run_id: str, limit: int = 20) -> list[AuditRecord]:
    return [r async for r in AuditRecord.objects.filter(connection=connection, run_id=run_id)[:limit]]


async def last_submission(connection: str, run_id: str) -> AuditRecord | None:
    """The newest submission of tool outputs to this run that did not fail (it landed, or may have)."""
    return (
        await AuditRecord.objects.filter(connection=connection, run_id=run_id, action="submit_tool_outputs")
        .exclude(outcome=AuditRecord.FAILED)
        .afirst()
    )


async def already_done(connection: str, run: Run, action: str) -> AuditRecord | None:
    """A succeeded action that makes this one pointless (same cancel, or outputs for the same calls)."""
    records = AuditRecord.objects.filter(
        connection=connection, run_id=run.id, action=action, outcome=AuditRecord.SUCCEEDED
    )
    async for record in records:
        if action == "cancel_run" and run.status not in RUN_TERMINAL:
            return record
        if action == "submit_tool_outputs":
            submitted = {o.get("tool_call_id") for o in record.payload.get("tool_outputs", [])}
            if submitted & {c.id for c in run.pending_calls}:
                return record
    return None
