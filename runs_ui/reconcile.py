"""Settling actions whose outcome is not known yet, from what the upstream shows now.

A record is open while its call is in flight or was interrupted ("pending"), or when the call ended
without a usable answer ("unknown"). The state of what it acted on settles it: a sign that it landed
settles it as succeeded at once; no sign settles it as failed only once it is SETTLE_AFTER old (a
gateway's 504 can come before the upstream has acted, and a younger pending record may be in flight).

A start is found by the mark its form puts in the metadata of the run (and of a new thread): the form's
one-time token under MARK. A new thread is found through the audit record (the stream's
`thread.created` event names it), the thread index (the stream relay records that thread with its
metadata), or the upstream's list of threads where it has one.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone

from .models import AuditRecord, RunSnapshot, ThreadEntry
from .upstream.errors import UpstreamError
from .upstream.objects import Run, is_id

log = logging.getLogger(__name__)

SETTLE_AFTER = timedelta(seconds=60)
#: The metadata key a start puts on its run (and new thread), holding the form's one-time token.
MARK = "dashboard_form"
#: Upstream and dashboard clocks differ, and upstream timestamps are whole seconds.
CLOCK_SLACK = timedelta(seconds=5)
#: Runs of a found thread looked at for the marked one (a new thread has one; a busy thread, more).
RUNS_LOOKED_AT = 20


def _old(record: AuditRecord) -> bool:
    return record.created_at < timezone.now() - SETTLE_AFTER


def _may_be_in_flight(record: AuditRecord) -> bool:
    return record.outcome == AuditRecord.PENDING and not _old(record)


async def _settle(record: AuditRecord, landed: bool, evidence: str) -> None:
    record.outcome = AuditRecord.SUCCEEDED if landed else AuditRecord.FAILED
    record.reconciled_at = timezone.now()
    if record.completed_at is None:
        record.note = f"Interrupted before its outcome was recorded; reconciled from the run: {evidence}."
    else:
        record.note = f"No usable answer came back; reconciled from the run: {evidence}."
    await record.asave()


def _inferred(record: AuditRecord, run: Run) -> tuple[bool, str]:
    """Did an action land? What the run's state says about it."""
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


async def settle_run(connection: str, run: Run) -> None:
    """Settle the open records of actions on this run from its current state."""
    records = AuditRecord.objects.filter(connection=connection, run_id=run.id, outcome__in=AuditRecord.OPEN)
    async for record in records:
        if _may_be_in_flight(record):
            continue
        landed, evidence = _inferred(record, run)
        if landed or _old(record):
            await _settle(record, landed, evidence)


# --- starts ------------------------------------------------------------------------------------------


def _started_by(record: AuditRecord, runs: list[Run]) -> Run | None:
    """The run this start created, among `runs`: the one carrying its form's mark. A record from before
    forms were marked takes the first run of its assistant created after it."""
    runs = [r for r in runs if is_id("run", r.id) and is_id("thread", r.thread_id)]
    if record.form_token:
        return next((r for r in runs if r.metadata.get(MARK) == record.form_token), None)
    since = (record.created_at - CLOCK_SLACK).timestamp()
    started = [
        r
        for r in runs
        if r.assistant_id == record.payload.get("assistant_id") and (r.created_at or 0) >= since
    ]
    return min(started, key=lambda r: r.created_at or 0) if started else None


async def _settle_start(record: AuditRecord, runs: list[Run]) -> bool:
    run = _started_by(record, runs)
    if run is None:
        return False
    record.run_id, record.thread_id = run.id, run.thread_id
    await _settle(record, True, f"the run exists ({run.status})")
    return True


async def settle_starts(connection: str, thread_id: str, runs: list[Run]) -> None:
    """Settle the open starts on this thread whose run is among `runs` (a page just fetched them); one
    whose run is not there stays as it is."""
    records = AuditRecord.objects.filter(
        connection=connection,
        thread_id=thread_id,
        run_id="",
        action__in=("create_run", "create_thread_and_run"),
        outcome__in=AuditRecord.OPEN,
    )
    async for record in records:
        if not _may_be_in_flight(record):
            await _settle_start(record, runs)


async def find_starts(client, records: list[AuditRecord]) -> None:
    """Look for the runs of these open starts upstream (their thread first, for a new one) and settle
    the ones found. Nothing here fails a page: an upstream error leaves a record as it was."""
    for record in records:
        if _may_be_in_flight(record) or record.run_id:
            continue
        try:
            thread_id = record.thread_id or await _marked_thread(client, record.form_token)
            if not thread_id:
                continue
            if not record.thread_id:
                record.thread_id = thread_id
                await AuditRecord.objects.filter(pk=record.pk).aupdate(thread_id=thread_id)
            runs = await client.list_runs(thread_id, limit=RUNS_LOOKED_AT, order="desc")
        except UpstreamError as exc:
            log.info("looking for the run of audit record %s: %s", record.pk, exc.kind)
            continue
        if not await _settle_start(record, runs.data) and _old(record) and not runs.has_more:
            await _settle(record, False, "its thread exists, and none of its runs carries this form's mark")


async def _marked_thread(client, form_token: str) -> str:
    """The thread a start created, found by its form's mark; "" when nothing here knows it."""
    if not form_token:
        return ""
    marked = {f"metadata__{MARK}": form_token}
    snapshot = await (
        RunSnapshot.objects.filter(connection=client.name, **marked).select_related("thread").afirst()
    )
    if snapshot is not None:
        return snapshot.thread.thread_id
    entry = await ThreadEntry.objects.filter(connection=client.name, **marked).afirst()
    if entry is not None:
        return entry.thread_id
    if client.profile.can_list_threads:
        threads = await client.list_threads(limit=100, order="desc")
        for thread in threads.data:
            if thread.metadata.get(MARK) == form_token and is_id("thread", thread.id):
                return thread.id
    return ""
