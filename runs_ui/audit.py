"""The audit trail: every action is done through `perform`, which writes its record before the upstream
call and completes it after, with an outcome that says no more than what is known.

- "failed": the upstream cannot have acted (the connection never opened, or it refused: a 3xx or 4xx).
- "unknown": the request may have reached it and no usable answer came back (a timeout, a connection
  broken after sending, a 5xx from it or a gateway, an unreadable 2xx, a stream that ended early).
- "pending": the call is in flight, or the process died during it.
The last two are settled later from the upstream's state (reconcile.py). While one is open, the database
refuses a second record of the same action on the same run, so a double submit or a blind retry never
reaches the upstream; a form that starts a run or a thread carries a one-time token the database also
holds unique, so submitting it twice starts one thing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import IntegrityError, close_old_connections
from django.utils import timezone

from .models import AuditRecord
from .tasks import background
from .upstream.errors import BadResponse, ConnectFailed, Misconfigured, UpstreamError
from .upstream.objects import RUN_TERMINAL, Run

log = logging.getLogger(__name__)

START_ACTIONS = ("create_run", "create_thread_and_run")
#: How often a second submission of a form looks whether the first has settled.
SETTLED_POLL_SECONDS = 0.1
_tasks: set[asyncio.Task] = set()


class ActionInFlight(Exception):
    """The same action on the same run is in flight, or its outcome is not known yet."""


class FormAlreadySubmitted(Exception):
    """This form (its one-time token) was submitted before: `record` is what that submission did."""

    def __init__(self, record: AuditRecord):
        super().__init__(record.form_token)
        self.record = record


class ActionFailed(Exception):
    """The upstream call went wrong; the record says whether it may have landed anyway."""

    def __init__(self, record: AuditRecord, error: UpstreamError):
        super().__init__(str(error))
        self.record = record
        self.error = error

    @property
    def may_have_landed(self) -> bool:
        return self.record.outcome == AuditRecord.UNKNOWN


@dataclass(frozen=True)
class Action:
    """What an operator asked for, as it is recorded."""

    user: Any
    action: str
    connection: str
    thread_id: str = ""
    run_id: str = ""
    reason: str = ""
    payload: dict = field(default_factory=dict)
    form_token: str = ""


@dataclass(frozen=True)
class Done:
    """What a call that went through reports: the run as the upstream answered it, and its request id."""

    run: Run | None = None
    request_id: str | None = None
    message: str = ""


def outcome_after(exc: UpstreamError) -> str:
    """FAILED when the upstream cannot have acted, UNKNOWN when the request may have reached it."""
    if isinstance(exc, (ConnectFailed, Misconfigured)):
        return AuditRecord.FAILED  # it never left
    if exc.status is not None and 300 <= exc.status < 500:
        return AuditRecord.FAILED  # it was answered, and refused (or redirected) without acting
    if isinstance(exc, BadResponse) or exc.status is None or exc.status >= 500:
        # An unreadable success, a broken connection, a timeout, a 5xx from the upstream or a gateway.
        return AuditRecord.UNKNOWN
    return AuditRecord.FAILED


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


async def perform(action: Action, call: Callable[[AuditRecord], Awaitable[Done]]) -> AuditRecord:
    """Write the record, make the call, complete the record; returns the completed record.

    Raises ActionInFlight or FormAlreadySubmitted before any call is made, ActionFailed after a call
    that went wrong. It all runs in a task of its own: a request cancelled meanwhile (the browser went
    away, or a double click replaced it) still records what its call did, for the second to find.
    """
    task = background(_perform(action, call), f"audited {action.action}")
    _tasks.add(task)
    task.add_done_callback(_finished)
    return await asyncio.shield(task)


def _finished(task: asyncio.Task) -> None:
    _tasks.discard(task)
    if task.cancelled():
        return
    # Retrieved here, so an outcome nobody waited for (a cancelled request) is not reported as lost.
    exc = task.exception()
    if exc is not None and not isinstance(exc, (ActionFailed, ActionInFlight, FormAlreadySubmitted)):
        log.error("an audited action failed: %s", type(exc).__name__, exc_info=exc)


async def _perform(action: Action, call) -> AuditRecord:
    # Outside any request, nothing else retires a database connection that went stale (a restarted
    # server, CONN_MAX_AGE): this task's thread does it before it writes.
    await sync_to_async(close_old_connections)()
    record = await _begin(action)
    try:
        done = await call(record)
    except UpstreamError as exc:
        await _fail(record, exc)
        raise ActionFailed(record, exc) from exc
    await _succeed(record, done)
    return record


async def _begin(action: Action) -> AuditRecord:
    if action.form_token and (earlier := await _submitted(action.form_token)):
        raise FormAlreadySubmitted(earlier)
    stored, digest, size = payload_for(action.action, action.payload)
    try:
        record = await AuditRecord.objects.acreate(
            user=action.user,
            username=action.user.get_username(),
            action=action.action,
            connection=action.connection,
            thread_id=action.thread_id,
            run_id=action.run_id,
            reason=action.reason,
            payload=stored,
            payload_sha256=digest,
            payload_size=size,
            form_token=action.form_token,
        )
    except IntegrityError:
        if action.form_token and (earlier := await _submitted(action.form_token)):
            raise FormAlreadySubmitted(earlier) from None
        raise ActionInFlight(action.action) from None
    record.started = time.monotonic()  # not a field: lives as long as the call it times
    return record


async def _submitted(form_token: str) -> AuditRecord | None:
    return await AuditRecord.objects.filter(form_token=form_token).afirst()


async def _succeed(record: AuditRecord, done: Done) -> None:
    run = done.run
    record.outcome = AuditRecord.SUCCEEDED
    record.upstream_status = 200
    record.request_id = (done.request_id or (run.info.request_id if run and run.info else "") or "")[:200]
    record.upstream_message = done.message
    if run is not None:
        record.upstream_message = done.message or f"the run is {run.status.replace('_', ' ')}"
        record.run_id = record.run_id or run.id
        record.thread_id = record.thread_id or run.thread_id
    await _complete(record)


async def _fail(record: AuditRecord, exc: UpstreamError) -> None:
    record.outcome = outcome_after(exc)
    record.upstream_status = exc.status
    record.upstream_message = f"{exc.kind}: {exc.message}"[:4000]
    record.request_id = (exc.request_id or "")[:200]
    if record.outcome == AuditRecord.UNKNOWN:
        record.note = (
            "The request may have reached the upstream, and no usable answer came back: the outcome "
            "stays unknown until the upstream's state settles it."
        )
    await _complete(record)


async def _complete(record: AuditRecord) -> None:
    record.latency_ms = int((time.monotonic() - record.started) * 1000)
    record.completed_at = timezone.now()
    await record.asave()


async def note_thread(record: AuditRecord, thread_id: str) -> None:
    """A start's stream named the thread it created: kept at once, so an interrupted start can be found."""
    record.thread_id = thread_id
    await AuditRecord.objects.filter(pk=record.pk, thread_id="").aupdate(thread_id=thread_id)


async def settled(record: AuditRecord, within: float) -> AuditRecord:
    """The record once its call has ended (its outcome is no longer "pending"), or as it is `within`
    seconds from now."""
    deadline = time.monotonic() + within
    while record.outcome == AuditRecord.PENDING and time.monotonic() < deadline:
        await asyncio.sleep(SETTLED_POLL_SECONDS)
        await record.arefresh_from_db()
    return record


# --- what the pages ask --------------------------------------------------------------------------


async def open_record(connection: str, run_id: str, action: str) -> AuditRecord | None:
    """The record of this action on this run whose outcome is not known yet (it blocks another)."""
    return await AuditRecord.objects.filter(
        connection=connection, run_id=run_id, action=action, outcome__in=AuditRecord.OPEN
    ).afirst()


async def recent_for_run(connection: str, run_id: str, limit: int = 20) -> list[AuditRecord]:
    return [r async for r in AuditRecord.objects.filter(connection=connection, run_id=run_id)[:limit]]


async def open_starts(connection: str, action: str, user, limit: int = 5) -> list[AuditRecord]:
    """This user's latest starts on this connection whose outcome is not known yet."""
    records = AuditRecord.objects.filter(
        connection=connection, action=action, user=user, outcome__in=AuditRecord.OPEN
    )
    return [r async for r in records[:limit]]


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
