"""Downloads: a thread or run as JSON (every page of runs, steps and messages, streamed). File content:
views/files.py."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from django.views.decorators.http import require_GET

from .. import export
from .responses import check_id, upstream_view

# --- export ----------------------------------------------------------------------------------------


async def _download(exported: export.Export, filename: str) -> StreamingHttpResponse:
    """The export as a file, streamed as it is fetched (see runs_ui/export.py); its first pages are
    fetched first, so an upstream that fails at once gets the error page instead."""
    await exported.start()
    # The export itself is the content: Django closes it (stopping its read-ahead) when the response ends.
    response = StreamingHttpResponse(exported, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
@upstream_view
async def export_thread(request, client, thread_id):
    """The whole thread as JSON: every page of messages, runs and each run's steps (fetched concurrently)."""
    check_id("thread", thread_id)
    thread = await client.get_thread(thread_id)
    return await _download(export.thread_export(client, thread), f"{thread_id}.json")


@require_GET
@upstream_view
async def export_run(request, client, thread_id, run_id):
    check_id("thread", thread_id)
    check_id("run", run_id)
    run = await client.get_run(thread_id, run_id)
    return await _download(export.run_export(client, run), f"{run_id}.json")
