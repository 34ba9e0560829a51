"""The index of the Responses shape: every conversation and response the dashboard knows (opened here,
added by id, registered by an agent application, started here, or listed where the upstream can), with
filters; adding ids and importing a listing. These read the database, not the upstream (except to import).
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

from django.contrib import messages as flash
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from .. import response_index
from ..connections import aget_responses_client, default_client
from ..models import DEFAULT_CONNECTION, ConversationEntry, ResponseSnapshot
from ..response_discovery import import_listed, responses_connections
from ..response_forms import AddResponsesForm, ResponseFilterForm
from ..upstream.errors import UpstreamError
from ..upstream.objects import is_id
from ..upstream.responses_client import ResponsesClient
from .responses import render_page

INDEX_PAGE = 50
CONVERSATIONS_SHOWN = 20


@require_GET
async def responses(request):
    form = ResponseFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_bound and form.is_valid() else {}
    filtering = any(filters.values()) if filters else False
    imported = await import_if_empty()
    try:
        offset = min(max(0, int(request.GET.get("offset", 0))), 10**9)
    except ValueError:
        offset = 0
    queryset = response_index.search(ResponseSnapshot.objects.order_by("-last_seen", "-id"), **filters)
    rows = [r async for r in queryset[offset : offset + INDEX_PAGE + 1]]
    has_more = len(rows) > INDEX_PAGE
    conversations = []
    if not filtering and offset == 0:
        conversations = [
            c async for c in ConversationEntry.objects.order_by("-last_seen")[:CONVERSATIONS_SHOWN]
        ]
    query = {k: v for k, v in request.GET.items() if k not in ("offset", "part")}
    connections = await responses_connections()
    context = {
        "form": form,
        "rows": rows[:INDEX_PAGE],
        "conversations": conversations,
        "filtering": filtering,
        "imported": imported,
        "add_form": AddResponsesForm(connections=connections),
        "connections": connections,
        "next_url": f"?{urlencode({**query, 'offset': offset + INDEX_PAGE, 'part': 'list'})}"
        if has_more
        else "",
        "live_url": "/ws/index/",
        "live_poll_url": reverse("runs_ui:live-responses-index"),
    }
    partial = "response-rows" if request.GET.get("part") == "list" else None
    return render_page(request, "runs_ui/responses_index.html", context, partial=partial)


_import_retry_at = 0.0


async def import_if_empty() -> int:
    """A fresh install on a listing upstream (the sandbox, Azure AI Foundry) starts with its responses and
    conversations indexed (`make run` shows both shapes). After a failure it waits a minute."""
    global _import_retry_at
    client = default_client()
    if not client.profile.can_list_responses or time.monotonic() < _import_retry_at:
        return 0
    if await ResponseSnapshot.objects.filter(connection=DEFAULT_CONNECTION).aexists():
        return 0
    try:
        return await import_listed(ResponsesClient(client))
    except UpstreamError:
        _import_retry_at = time.monotonic() + 60
        return 0


async def _connection(request) -> str | None:
    slug = request.POST.get("connection") or DEFAULT_CONNECTION
    return slug if slug in dict(await responses_connections()) else None


@require_POST
async def import_responses(request):
    slug = await _connection(request)
    if slug is None:
        flash.error(request, "That connection does not speak the Responses shape.")
        return redirect("runs_ui:responses")
    client = await aget_responses_client(slug)
    if not client.profile.can_list_responses:
        flash.error(request, f"{client.profile.label} cannot list responses: add them by id instead.")
        return redirect("runs_ui:responses")
    try:
        count = await import_listed(client)
    except UpstreamError as exc:
        flash.error(request, f"Could not list responses: {exc}")
    else:
        flash.success(request, f"Indexed {count} conversations and responses listed by {client.host}.")
    return redirect("runs_ui:responses")


@require_POST
async def add_responses(request):
    """Add pasted response and conversation ids to the index (pages read them when opened)."""
    form = AddResponsesForm(request.POST, connections=await responses_connections())
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                flash.error(request, error)
        return redirect("runs_ui:responses")
    ids = form.cleaned_data["ids"]
    new = await response_index.register(
        form.cleaned_data["connection"],
        response_ids=[i for i in ids if is_id("response", i)],
        conversation_ids=[i for i in ids if is_id("conversation", i)],
        source="added",
    )
    flash.success(request, f"Added {new} new of {len(ids)} id{'s' if len(ids) != 1 else ''}.")
    return redirect("runs_ui:responses")
