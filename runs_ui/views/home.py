"""The thread index: home (recently seen and watched threads, filters; the newest conversations of the
Responses shape), adding and importing threads, the go-to box, and the inbox of runs waiting for tool
outputs and responses waiting for a person. These read the database, not the upstream (except to check
pasted ids, import a listing and name assistants).
"""

from __future__ import annotations

import asyncio
import re
import time
from urllib.parse import urlencode, urlsplit

from django.contrib import messages as flash
from django.db.models import F
from django.shortcuts import redirect
from django.urls import Resolver404, resolve, reverse
from django.views.decorators.http import require_GET, require_POST

from .. import index
from ..assistants import assistant_names
from ..connections import default_client
from ..discovery import import_listed_threads
from ..forms import AddThreadsForm, IndexFilterForm
from ..links import url_for
from ..models import DEFAULT_CONNECTION, ConversationEntry, ResponseSnapshot, RunSnapshot, ThreadEntry
from ..upstream.errors import NotFound, UpstreamError
from ..upstream.objects import is_id
from .response_list import import_if_empty as import_responses_if_empty
from .responses import render_page

HOME_PAGE = 50
INBOX_LIMIT = 200
#: The home page shows the newest conversations of the Responses shape too (the index has them all).
HOME_CONVERSATIONS = 5
#: Pasted ids checked upstream at once.
CONCURRENCY = 8


# --- home ----------------------------------------------------------------------------------------


@require_GET
async def home(request):
    user = await request.auser()
    form = IndexFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_bound and form.is_valid() else {}
    filtering = any(filters.values()) if filters else False
    imported = await _import_if_empty()
    imported_responses = await import_responses_if_empty()
    try:
        # Clamped: an offset beyond a 64-bit integer is a database error, not an empty page.
        offset = min(max(0, int(request.GET.get("offset", 0))), 10**9)
    except ValueError:
        offset = 0
    queryset = index.search(ThreadEntry.objects.order_by("-last_seen", "-id"), **filters)
    entries = [e async for e in queryset[offset : offset + HOME_PAGE + 1]]
    has_more = len(entries) > HOME_PAGE
    entries = entries[:HOME_PAGE]
    watched = []
    if not filtering and offset == 0:
        watched = [e async for e in ThreadEntry.objects.filter(watchers=user).order_by("-last_seen")[:20]]
    query = {k: v for k, v in request.GET.items() if k not in ("offset", "part")}
    context = {
        "form": form,
        "entries": entries,
        "watched": watched,
        "filtering": filtering,
        "imported": imported,
        "imported_responses": imported_responses,
        "add_form": AddThreadsForm(),
        "next_url": f"?{urlencode({**query, 'offset': offset + HOME_PAGE, 'part': 'list'})}"
        if has_more
        else "",
        "page_url": f"?{urlencode(query)}" if query else "?",
        # New threads first seen after this page was drawn come with the socket's resync.
        "live_url": f"/ws/index/?since={time.time():.3f}" if not filtering and offset == 0 else "/ws/index/",
        "live_poll_url": reverse("runs_ui:live-index"),
        "names": await _names_soon(),
        "conversations": [
            c async for c in ConversationEntry.objects.order_by("-last_seen")[:HOME_CONVERSATIONS]
        ]
        if not filtering and offset == 0
        else [],
    }
    partial = "thread-rows" if request.GET.get("part") == "list" else None
    return render_page(request, "runs_ui/home.html", context, partial=partial)


async def _names_soon() -> dict[str, str]:
    """Assistant names for the index (cached a minute); a slow upstream only costs the names, not the page."""
    try:
        return await asyncio.wait_for(assistant_names(default_client()), timeout=1.0)
    except TimeoutError:
        return {}


_import_retry_at = 0.0


async def _import_if_empty() -> int:
    """A fresh install on a listing upstream (the sandbox, Azure agents) starts with its threads indexed.

    After a failure it waits a minute before trying again, so an unreachable upstream does not slow down
    every home page.
    """
    global _import_retry_at
    client = default_client()
    if not client.profile.can_list_threads or time.monotonic() < _import_retry_at:
        return 0
    if await ThreadEntry.objects.filter(connection=DEFAULT_CONNECTION).aexists():
        return 0
    try:
        return await import_listed_threads(client)
    except UpstreamError:
        _import_retry_at = time.monotonic() + 60
        return 0  # the home page still works; opening a thread will say what is wrong


@require_POST
async def import_threads(request):
    client = default_client()
    if not client.profile.can_list_threads:
        flash.error(request, f"{client.profile.label} upstreams cannot list threads: add them by id instead.")
        return redirect("runs_ui:home")
    try:
        count = await import_listed_threads(client)
    except UpstreamError as exc:
        flash.error(request, f"Could not list threads: {exc}")
    else:
        flash.success(request, f"Imported {count} threads from {client.host}.")
    return redirect("runs_ui:home")


@require_POST
async def add_threads(request):
    """Add one or many pasted thread ids to the index, checking each exists upstream (concurrently)."""
    form = AddThreadsForm(request.POST)
    if not form.is_valid():
        for error in form.errors.get("ids", []):
            flash.error(request, error)
        return redirect("runs_ui:home")
    client = default_client()
    gate = asyncio.Semaphore(CONCURRENCY)
    missing, failed = [], []

    async def add(thread_id):
        async with gate:
            try:
                thread = await client.get_thread(thread_id)
            except NotFound:
                missing.append(thread_id)
                return
            except UpstreamError as exc:
                failed.append(f"{thread_id} ({exc.kind})")
                return
        await index.record_thread(client.name, thread_id, "added", thread)

    ids = form.cleaned_data["ids"]
    await asyncio.gather(*(add(t) for t in ids))
    added = len(ids) - len(missing) - len(failed)
    if added:
        flash.success(request, f"Added {added} thread{'s' if added != 1 else ''}.")
    if missing:
        flash.error(request, f"Not found upstream: {', '.join(missing)}")
    if failed:
        flash.error(request, f"Could not check: {', '.join(failed)}")
    return redirect("runs_ui:home")


# --- go to -----------------------------------------------------------------------------------------

_API_PATH = re.compile(
    r"/threads/(?P<thread_id>thread_[\w-]+)(?:/runs/(?P<run_id>run_[\w-]+)(?:/steps/(?P<step_id>step_[\w-]+))?"
    r"|/messages/(?P<message_id>msg_[\w-]+))?"
)
_RESPONSES_API_PATH = re.compile(
    r"/(?:responses/(?P<response_id>resp_[\w-]+)|conversations/(?P<conversation_id>conv_[\w-]+))"
)


@require_GET
async def goto(request):
    """Land on the page for whatever was pasted: an id of any kind, a dashboard URL or an API URL."""
    query = request.GET.get("q", "").strip()
    if not query:
        return redirect("runs_ui:home")
    target = await _target_for(query)
    if target:
        return redirect(target)
    flash.error(
        request,
        f"Nothing to open for “{query[:120]}”: paste a thread_, run_, step_, msg_, asst_, resp_ or conv_ id, "
        "or a dashboard or API URL. Runs and steps are found once their thread has been opened.",
    )
    return redirect("runs_ui:home")


async def _target_for(query: str) -> str | None:
    if "/" in query:
        try:
            path = urlsplit(query).path or query
        except ValueError:  # e.g. "http://[x/": not a URL, so nothing to open
            return None
        try:
            match = resolve(path)
        except Resolver404:
            match = None
        if match and match.namespace == "runs_ui":
            return path
        if m := _RESPONSES_API_PATH.search(path):
            found = {k: v for k, v in m.groupdict().items() if v}
            return await _target_for(found.get("response_id") or found["conversation_id"])
        if m := _API_PATH.search(path):
            ids = {k: v for k, v in m.groupdict().items() if v}
            if not all(is_id(k.removesuffix("_id"), v) for k, v in ids.items()):
                return None  # \w takes any letter; an id takes only ASCII ones
            if "message_id" in ids:
                return url_for("thread", thread_id=ids["thread_id"]) + f"#{ids['message_id']}"
            name = "step" if "step_id" in ids else "run" if "run_id" in ids else "thread"
            return url_for(name, **ids)
        return None
    if is_id("thread", query):
        return url_for("thread", thread_id=query)
    if is_id("response", query):
        known = await ResponseSnapshot.objects.filter(response_id=query).order_by("-last_seen").afirst()
        return url_for("response", known.connection if known else DEFAULT_CONNECTION, response_id=query)
    if is_id("conversation", query):
        entry = await ConversationEntry.objects.filter(conversation_id=query).order_by("-last_seen").afirst()
        connection = entry.connection if entry else DEFAULT_CONNECTION
        return url_for("conversation", connection, conversation_id=query)
    if is_id("assistant", query):
        return url_for("home") + "?" + urlencode({"assistant": query})
    if is_id("run", query):
        snapshot = await index.find_run(query)
        if snapshot:
            return url_for("run", snapshot.connection, thread_id=snapshot.thread.thread_id, run_id=query)
        return None
    if is_id("step", query) or is_id("message", query):
        known = await index.find_id(query)
        if known is None:
            return None
        if query.startswith("step_") and known.run_id:
            return url_for(
                "step", known.connection, thread_id=known.thread_id, run_id=known.run_id, step_id=query
            )
        return url_for("thread", known.connection, thread_id=known.thread_id) + f"#{query}"
    return None


# --- inbox -----------------------------------------------------------------------------------------


@require_GET
async def inbox(request):
    """Every indexed run waiting for tool outputs, the soonest to expire first, and every indexed response
    waiting for a person (function outputs, MCP approvals), the longest waiting first."""
    waiting = (
        RunSnapshot.objects.filter(status="requires_action")
        .select_related("thread")
        .order_by(F("expires_at").asc(nulls_last=True), "created_at")
    )
    runs = [s async for s in waiting[:INBOX_LIMIT]]
    asking = ResponseSnapshot.objects.filter(waiting=True).order_by(
        F("ended_at").asc(nulls_last=True), "created_at"
    )
    responses = [s async for s in asking[:INBOX_LIMIT]]
    context = {
        "runs": runs,
        "responses": responses,
        "now": time.time(),
        "live_url": "/ws/inbox/",
        "live_poll_url": "",
    }
    partial = "inbox-rows" if request.GET.get("part") == "rows" else None
    return render_page(request, "runs_ui/inbox.html", context, partial=partial)
