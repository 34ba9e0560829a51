"""Threads the dashboard learns from upstreams that can list them (Azure agents, the sandbox)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from django.utils import timezone

from . import index
from .upstream.client import AssistantsClient
from .upstream.errors import UpstreamError

CONCURRENCY = 8


async def import_listed_threads(client: AssistantsClient, limit: int = 100) -> int:
    """Index the newest `limit` threads and each one's latest run; returns how many threads were listed."""
    page = await client.list_threads(limit=limit, order="desc")
    gate = asyncio.Semaphore(CONCURRENCY)
    now = timezone.now()

    async def one(position, thread):
        # "Seen" in the upstream's order (newest first), so the home page lists them that way too.
        seen_at = now - timedelta(microseconds=position)
        await index.record_thread(client.name, thread.id, "listed", thread, seen_at=seen_at)
        async with gate:
            try:
                runs = await client.list_runs(thread.id, limit=1, order="desc")
            except UpstreamError:
                return  # the thread is indexed; its status shows once it is opened
        await index.record_runs(client.name, thread.id, runs.data, touch=False)

    await asyncio.gather(*(one(i, t) for i, t in enumerate(page.data) if t.id))
    return len(page.data)
