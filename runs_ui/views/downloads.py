"""Downloads: a thread or run as JSON (every page of runs, steps and messages, streamed), and file content."""

from __future__ import annotations

from django.http import HttpResponse, StreamingHttpResponse
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_GET

from .. import export
from .responses import check_id, upstream_view

#: Image types a browser may show inline; anything else from the upstream is downloaded, never rendered.
INLINE_IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}


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


# --- files -----------------------------------------------------------------------------------------


@require_GET
@upstream_view
async def file_content(request, client, file_id):
    """Code-interpreter images, fetched with the server's key; only known image types are shown inline."""
    check_id("file", file_id)
    content, content_type = await client.get_file_content(file_id)
    kind = content_type.split(";")[0].strip().lower()
    response = HttpResponse(
        content, content_type=kind if kind in INLINE_IMAGE_TYPES else "application/octet-stream"
    )
    if kind not in INLINE_IMAGE_TYPES:
        response["Content-Disposition"] = f'attachment; filename="{file_id}"'
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    patch_cache_control(response, private=True, max_age=3600)
    return response
