"""The thread index: every thread and run the dashboard has shown or been told about, kept in the database.

The OpenAI shape cannot list threads, so this is what the home page lists, filters and searches. Pages
record what they fetch here (one bulk upsert per page); the watcher records what it observes.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from django.db.models import Q
from django.utils import timezone

from .models import KnownId, RunSnapshot, ThreadEntry
from .upstream.objects import Message, Run, Step, Thread, is_id

# Snapshot columns a page may overwrite; `transitions` belongs to the watcher and is merged, not replaced.
SNAPSHOT_FIELDS = [
    "status",
    "assistant_id",
    "model",
    "error_code",
    "created_at",
    "started_at",
    "ended_at",
    "expires_at",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "metadata",
]


def _dt(ts: int | None) -> datetime | None:
    """A timestamp for the index; None when it is no time a database can hold (e.g. milliseconds)."""
    if ts is None:
        return None
    try:
        return datetime.fromtimestamp(ts, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _count(n: int | None) -> int | None:
    """A token count for the index's integer columns; one that does not fit is left out (the run's own
    page still shows it)."""
    return n if n is not None and 0 <= n < 2**31 else None


def snapshot_values(run: Run) -> dict:
    usage = run.usage
    return {
        "status": run.status[:40],
        "assistant_id": run.assistant_id[:140],
        "model": run.model[:200],
        "error_code": ((run.last_error.code or "error") if run.last_error else "")[:100],
        "created_at": _dt(run.created_at),
        "started_at": _dt(run.started_at),
        "ended_at": _dt(run.ended_at),
        "expires_at": _dt(run.expires_at),
        "prompt_tokens": _count(usage.prompt_tokens) if usage else None,
        "completion_tokens": _count(usage.completion_tokens) if usage else None,
        "total_tokens": _count(usage.total_tokens) if usage else None,
        "metadata": run.metadata,
    }


async def record_thread(
    connection: str,
    thread_id: str,
    source: str = "opened",
    thread: Thread | None = None,
    seen_at: datetime | None = None,
) -> ThreadEntry | None:
    """Remember a thread (creating its entry if new) and mark it seen now (or at `seen_at`).

    Ids come from URLs (checked) and from upstream answers (not): one that is not a thread id is not
    recorded (None), so the index only ever holds ids a page can be made for.
    """
    if not is_id("thread", thread_id):
        return None
    defaults = {"last_seen": seen_at or timezone.now()}
    if thread is not None:
        defaults["metadata"] = thread.metadata
        defaults["upstream_created_at"] = _dt(thread.created_at)
    entry, _ = await ThreadEntry.objects.aupdate_or_create(
        connection=connection,
        thread_id=thread_id,
        defaults=defaults,
        create_defaults={**defaults, "source": source},  # the source is how it was first seen
    )
    return entry


async def record_runs(connection: str, thread_id: str, runs: list[Run], touch: bool = True) -> None:
    """Upsert snapshots of runs a page just fetched, and the thread's latest-run columns.

    `touch`: the thread counts as seen now (not when the runs only came along with a listing).
    """
    runs = [r for r in runs if is_id("run", r.id)]
    if not runs or not is_id("thread", thread_id):
        return
    if touch:
        entry = await record_thread(connection, thread_id)
    else:
        entry, _ = await ThreadEntry.objects.aget_or_create(connection=connection, thread_id=thread_id)
    await RunSnapshot.objects.abulk_create(
        [RunSnapshot(thread=entry, connection=connection, run_id=r.id, **snapshot_values(r)) for r in runs],
        update_conflicts=True,
        unique_fields=["connection", "run_id"],
        update_fields=SNAPSHOT_FIELDS,
    )
    await refresh_latest(entry.pk)


async def refresh_latest(thread_pk: int) -> None:
    """The thread entry's latest-run columns, from its newest snapshot."""
    latest = await RunSnapshot.objects.filter(thread_id=thread_pk).order_by("-created_at", "-id").afirst()
    if latest is None:
        return
    await ThreadEntry.objects.filter(pk=thread_pk).aupdate(
        latest_run_id=latest.run_id,
        latest_status=latest.status,
        latest_assistant_id=latest.assistant_id,
        latest_model=latest.model,
        latest_error_code=latest.error_code,
        latest_run_created_at=latest.created_at,
    )


async def record_transition(
    connection: str, run: Run, observed_at: float | None = None
) -> RunSnapshot | None:
    """The watcher saw `run` in a status: store the snapshot and, if the status is new, when it was seen."""
    snapshot = await RunSnapshot.objects.filter(connection=connection, run_id=run.id).afirst()
    if snapshot is None:  # first seen here: recorded with its latest-run columns, then its transition
        await record_runs(connection, run.thread_id, [run])
        snapshot = await RunSnapshot.objects.filter(connection=connection, run_id=run.id).afirst()
        if snapshot is None:
            return None
    transitions = list(snapshot.transitions or [])
    if not transitions or transitions[-1].get("status") != run.status:
        transitions.append({"status": run.status, "at": round(observed_at or time.time(), 3)})
    for name, value in snapshot_values(run).items():
        setattr(snapshot, name, value)
    snapshot.transitions = transitions
    await snapshot.asave()
    await refresh_latest(snapshot.thread_id)
    return snapshot


async def record_ids(connection: str, thread_id: str, objects: list[Step | Message]) -> None:
    """Remember where step and message ids live (for the go-to box)."""
    if not is_id("thread", thread_id):
        return
    rows = [
        KnownId(
            connection=connection,
            object_id=o.id,
            thread_id=thread_id,
            run_id=o.run_id if is_id("run", o.run_id) else "",
        )
        for o in objects
        if is_id("step", o.id) or is_id("message", o.id)
    ]
    if rows:
        await KnownId.objects.abulk_create(rows, ignore_conflicts=True)


async def find_run(run_id: str) -> RunSnapshot | None:
    return (
        await RunSnapshot.objects.select_related("thread")
        .filter(run_id=run_id)
        .order_by("-updated_at")
        .afirst()
    )


async def find_id(object_id: str) -> KnownId | None:
    return await KnownId.objects.filter(object_id=object_id).afirst()


def search(
    queryset,
    *,
    q: str = "",
    status: str = "",
    assistant: str = "",
    model: str = "",
    error: str = "",
    since=None,
    until=None,
):
    """Filter thread entries the way the home page's form asks (latest run's status, assistant, …)."""
    if q:
        queryset = queryset.filter(
            Q(thread_id__icontains=q)
            | Q(latest_run_id__icontains=q)
            | Q(runs__run_id__icontains=q)
            | Q(metadata__icontains=q)
            | Q(runs__metadata__icontains=q)
        ).distinct()
    if status:
        queryset = queryset.filter(latest_status=status)
    if assistant:
        queryset = queryset.filter(latest_assistant_id=assistant)
    if model:
        queryset = queryset.filter(latest_model=model)
    if error == "any":
        queryset = queryset.exclude(latest_error_code="")
    elif error:
        queryset = queryset.filter(latest_error_code=error)
    if since:
        queryset = queryset.filter(latest_run_created_at__date__gte=since)
    if until:
        queryset = queryset.filter(latest_run_created_at__date__lte=until)
    return queryset
