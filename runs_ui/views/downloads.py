"""Downloads: a thread or run as JSON (every page of runs, steps and messages). File content: files.py."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from django.http import JsonResponse
from django.views.decorators.http import require_GET

from ..connections import info_for
from .pages import CONCURRENCY
from .responses import check_id, upstream_view

# --- export ----------------------------------------------------------------------------------------


def _download(data: dict, filename: str) -> JsonResponse:
    response = JsonResponse(data, json_dumps_params={"indent": 2, "ensure_ascii": False})
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


async def _run_export(client, run) -> dict:
    steps = [s.raw async for s in client.iter_steps(run.thread_id, run.id, include_content=True)]
    return {"run": run.raw, "steps": steps}


@require_GET
@upstream_view
async def export_thread(request, client, thread_id):
    """The whole thread as JSON: every page of messages, runs and each run's steps (fetched concurrently)."""
    check_id("thread", thread_id)
    thread = await client.get_thread(thread_id)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def run_with_steps(run):
        async with gate:
            return await _run_export(client, run)

    async def all_runs():
        return [r async for r in client.iter_runs(thread_id, order="asc")]

    async def all_messages():
        return [m.raw async for m in client.iter_messages(thread_id, order="asc")]

    runs, messages = await asyncio.gather(all_runs(), all_messages())
    exported = await asyncio.gather(*(run_with_steps(r) for r in runs))
    return _download(
        {
            "exported_at": datetime.now(UTC).isoformat(),
            "upstream": info_for(client).host,
            "thread": thread.raw,
            "messages": messages,
            "runs": list(exported),
        },
        f"{thread_id}.json",
    )


@require_GET
@upstream_view
async def export_run(request, client, thread_id, run_id):
    check_id("thread", thread_id)
    check_id("run", run_id)
    run = await client.get_run(thread_id, run_id)

    async def run_messages():
        return [m.raw async for m in client.iter_messages(thread_id, order="asc", run_id=run_id)]

    exported, messages = await asyncio.gather(_run_export(client, run), run_messages())
    return _download(
        {
            "exported_at": datetime.now(UTC).isoformat(),
            "upstream": info_for(client).host,
            **exported,
            "messages": messages,
        },
        f"{run_id}.json",
    )
