"""File content: code-interpreter images and image parts of messages, fetched with the server's key.

Only files something on a page refers to are served (the link carries its proof, see file_links.py);
any other id is a 404 without asking the upstream. Only known image types are shown inline.
"""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_GET

from ..file_links import referred
from .responses import check_id, upstream_view

#: Image types a browser may show inline; anything else from the upstream is downloaded, never rendered.
INLINE_IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}


@require_GET
@upstream_view
async def file_content(request, client, file_id):
    check_id("file", file_id)
    if not referred(client.name, file_id, request.GET.get("ref", "")):
        raise Http404(
            f"“{file_id}” is not a file any page of this dashboard refers to: only files a message or a run "
            "step shows are served here (open it from that page)."
        )
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
