"""Read-only pages of one thread: its timeline, a run, a step.

Each page's shell arrives first (one round of concurrent upstream calls: the object the URL names and
what its header needs); its lists fill in through htmx partials served by the same view (`?part=…`),
whose upstream requests run concurrently too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from urllib.parse import urlencode

from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from .. import audit, index, reconcile
from ..assistants import assistant_names
from ..connections import info_for
from ..links import url_for
from ..live import bus
from ..live.fragments import header_context
from ..models import RunSnapshot
from ..timeline import interleave, message_of, run_durations, waterfall
from ..upstream.client import MAX_PAGE
from ..upstream.errors import NotFound, UpstreamError
from ..upstream.objects import MessageCreation, is_id
from .responses import check_id, render_page, upstream_view, wants_partial

TIMELINE_PAGE = 30
STEPS_PAGE = 100
#: Upstream requests one page (or export) makes at once.
CONCURRENCY = 8


async def _nothing():
    return None


def _cursor(request, name: str, kind: str) -> str | None:
    """A cursor from the query string, ignored unless it is an id of the right kind."""
    value = request.GET.get(name, "")
    return value if is_id(kind, value) else None


def _conn(client) -> str:
    return client.name


# --- thread ----------------------------------------------------------------------------------------


@require_GET
@upstream_view
async def thread_detail(request, client, thread_id):
    check_id("thread", thread_id)
    order = "asc" if request.GET.get("order") == "asc" else "desc"
    if wants_partial(request) and request.GET.get("part") == "timeline":
        return await _timeline(request, client, thread_id, order)
    thread = await client.get_thread(thread_id)
    entry = await index.record_thread(_conn(client), thread_id, "opened", thread)
    user = await request.auser()
    cursors = {
        k: request.GET[k]
        for k in ("runs_after", "messages_after", "runs_done", "messages_done")
        if k in request.GET
    }
    context = {
        "conn": _conn(client),
        "connection": info_for(client),
        "thread_id": thread_id,
        "thread": thread,
        "order": order,
        "watched": await entry.watchers.filter(pk=user.pk).aexists(),
        "timeline_url": "?" + urlencode({"part": "timeline", "order": order, **cursors}),
        "live_url": f"/ws/threads/{_conn(client)}/{thread_id}/",
        "live_poll_url": reverse(
            "runs_ui:live-thread", kwargs={"conn": _conn(client), "thread_id": thread_id}
        ),
    }
    return render_page(request, "runs_ui/thread_detail.html", context)


async def _timeline(request, client, thread_id, order):
    runs_after = _cursor(request, "runs_after", "run")
    messages_after = _cursor(request, "messages_after", "message")
    runs_done = request.GET.get("runs_done") == "1"
    messages_done = request.GET.get("messages_done") == "1"
    conn = _conn(client)
    stamps = await _run_stamps(conn, thread_id)
    runs, messages, names = await asyncio.gather(
        _nothing()
        if runs_done
        else client.list_runs(thread_id, limit=TIMELINE_PAGE, order=order, after=runs_after),
        _nothing()
        if messages_done
        else client.list_messages(thread_id, limit=TIMELINE_PAGE, order=order, after=messages_after),
        assistant_names(client),
    )
    page = interleave(runs, messages, order=order, runs_after=runs_after, messages_after=messages_after)
    if runs:
        await index.record_runs(conn, thread_id, runs.data)
        await reconcile.settle_starts(conn, thread_id, runs.data)
    if messages:
        await index.record_ids(conn, thread_id, messages.data)
    next_url = ""
    # An upstream that ignores the cursor would send the same page again: no endless "load more".
    moved = (page.runs_after, page.messages_after) != (runs_after, messages_after)
    if page.has_more and moved:
        query = {"part": "timeline", "order": order}
        for key, value in (("runs_after", page.runs_after), ("messages_after", page.messages_after)):
            if value:
                query[key] = value
        if page.runs_done:
            query["runs_done"] = "1"
        if page.messages_done:
            query["messages_done"] = "1"
        next_url = "?" + urlencode(query)
    now = time.time()
    context = {
        "conn": conn,
        "thread_id": thread_id,
        "page": page,
        "items": [_decorate(item, names, now, conn, stamps) for item in page.items],
        "next_url": next_url,
    }
    return render_page(request, "runs_ui/thread_detail.html", context, partial="timeline-page")


async def _run_stamps(conn: str, thread_id: str) -> dict[str, str]:
    """Version stamps of the thread's runs the index knows, read before the timeline is fetched."""
    known = RunSnapshot.objects.filter(connection=conn, thread__thread_id=thread_id).order_by("-id")
    keys = {
        bus.run_key(conn, thread_id, run_id): run_id
        async for run_id in known.values_list("run_id", flat=True)[:200]
    }
    return {keys[key]: stamp for key, stamp in (await bus.page_stamps(list(keys))).items()}


def _decorate(item, names: dict, now: float, conn: str, stamps: dict[str, str]):
    """What a timeline row needs beyond the object: the assistant's name, the run's total duration and the
    version its live updates must be newer than."""
    if item.kind == "run":
        run = item.obj
        return {
            "kind": "run",
            "run": run,
            "assistant_name": names.get(run.assistant_id, ""),
            "total": run_durations(run, now)[-1].seconds,
            "live_v": stamps.get(run.id, ""),
        }
    return {"kind": "message", "message": item.obj}


@require_POST
@upstream_view
async def watch_thread(request, client, thread_id):
    check_id("thread", thread_id)
    user = await request.auser()
    entry = await index.record_thread(_conn(client), thread_id)
    if request.POST.get("watch") == "1":
        await entry.watchers.aadd(user)
    else:
        await entry.watchers.aremove(user)
    return redirect(url_for("thread", _conn(client), thread_id=thread_id))


# --- run -------------------------------------------------------------------------------------------


@require_GET
@upstream_view
async def run_detail(request, client, thread_id, run_id):
    check_id("thread", thread_id)
    check_id("run", run_id)
    part = request.GET.get("part")
    stamp = await bus.page_stamp(bus.run_key(_conn(client), thread_id, run_id))
    if wants_partial(request) and part == "steps":
        return await _steps(request, client, thread_id, run_id, stamp)
    # The first steps come along (concurrently) for the header's "waiting for tool outputs" duration.
    run, names, first_steps = await asyncio.gather(
        client.get_run(thread_id, run_id),
        assistant_names(client),
        client.list_steps(thread_id, run_id, limit=STEPS_PAGE, order="asc"),
    )
    context = await run_context(request, client, run, names, first_steps.data, stamp)
    context["thread_id"], context["run_id"] = thread_id, run_id  # the URL's, whatever the answer says
    context["steps_after"] = after = _cursor(request, "after", "step")
    context["steps_url"] = "?" + urlencode({"part": "steps", **({"after": after} if after else {})})
    context["live_url"] = f"/ws/runs/{_conn(client)}/{thread_id}/{run_id}/"
    context["live_poll_url"] = reverse(
        "runs_ui:live-run", kwargs={"conn": _conn(client), "thread_id": thread_id, "run_id": run_id}
    )
    partial = "run-header" if part == "header" else None
    return render_page(request, "runs_ui/run_detail.html", context, partial=partial)


async def run_context(request, client, run, names: dict, steps: list = (), stamp: str = "") -> dict:
    """Everything the run page shows above its steps; the live pushes build the header the same way."""
    conn = _conn(client)
    await index.record_runs(conn, run.thread_id, [run])
    snapshot = await RunSnapshot.objects.filter(connection=conn, run_id=run.id).afirst()
    context = header_context(
        conn,
        run,
        names.get(run.assistant_id, ""),
        snapshot.transitions if snapshot else [],
        request.roles.can_act,
        steps,
        live_v=stamp,
    )
    context["connection"] = info_for(client)
    await reconcile.settle_run(conn, run)
    await reconcile.settle_starts(conn, run.thread_id, [run])
    context["audit_records"] = await audit.recent_for_run(conn, run.id)
    return context


async def _steps(request, client, thread_id, run_id, stamp: str):
    """One page of a run's steps (≤ 100), with the messages they created and their waterfall bars."""
    after = _cursor(request, "after", "step")
    messages_after = _cursor(request, "messages_after", "message")
    steps, run, run_messages = await asyncio.gather(
        client.list_steps(thread_id, run_id, limit=STEPS_PAGE, order="asc", after=after),
        client.get_run(thread_id, run_id),
        client.list_messages(thread_id, run_id=run_id, limit=MAX_PAGE, order="asc", after=messages_after),
    )
    messages = await _messages_for(client, thread_id, steps.data, run_messages.data)
    conn = _conn(client)
    await index.record_ids(conn, thread_id, steps.data)
    used = [m for m in run_messages.data if m.id in messages]
    next_url = ""
    if steps.next_after and steps.next_after != after:  # a repeated cursor would loop forever
        query = {"part": "steps", "after": steps.next_after}
        if cursor := (used[-1].id if used else messages_after):
            query["messages_after"] = cursor
        next_url = "?" + urlencode(query)
    now = time.time()
    context = {
        "conn": conn,
        "thread_id": thread_id,
        "run_id": run_id,
        "run": run,
        "steps": [{"step": s, "message": message_of(s, messages)} for s in steps.data],
        "bars": waterfall(run, steps.data, now),
        "first_page": after is None,
        "next_url": next_url,
        "live_v": stamp,
    }
    return render_page(request, "runs_ui/run_detail.html", context, partial="step-page")


async def _messages_for(client, thread_id, steps, listed) -> dict:
    """The messages a page of steps created: from the run's message list, the rest fetched one by one."""
    by_id = {m.id: m for m in listed}
    wanted = [
        s.details.message_id
        for s in steps
        if isinstance(s.details, MessageCreation) and is_id("message", s.details.message_id)
    ]
    missing = [m for m in dict.fromkeys(wanted) if m not in by_id]
    gate = asyncio.Semaphore(CONCURRENCY)

    async def fetch(message_id):
        async with gate:
            # A message that is gone leaves the step showing its message id.
            with contextlib.suppress(NotFound):
                by_id[message_id] = await client.get_message(thread_id, message_id)

    await asyncio.gather(*(fetch(m) for m in missing))
    return {m: by_id[m] for m in wanted if m in by_id}


# --- step ------------------------------------------------------------------------------------------


async def _step_before(client, thread_id, run_id, step_id):
    """The step listed just before this one, or None: a nicety that must not decide the page's answer
    (an unknown step id is also an unknown `after` cursor, which an upstream may answer with a 400)."""
    with contextlib.suppress(UpstreamError):
        return await client.list_steps(thread_id, run_id, limit=1, order="desc", after=step_id)
    return None


@require_GET
@upstream_view
async def step_detail(request, client, thread_id, run_id, step_id):
    check_id("thread", thread_id)
    check_id("run", run_id)
    check_id("step", step_id)
    include = request.GET.get("include") == "content"
    partial = "step-item" if request.GET.get("part") == "step" else None
    # The step just before this one lets "see it in the run" open the run's list at this step.
    step, run, previous = await asyncio.gather(
        client.get_step(thread_id, run_id, step_id, include_content=include),
        client.get_run(thread_id, run_id),
        _nothing() if partial else _step_before(client, thread_id, run_id, step_id),
    )
    message = None
    if isinstance(step.details, MessageCreation) and is_id("message", step.details.message_id):
        with contextlib.suppress(NotFound):
            message = await client.get_message(thread_id, step.details.message_id)
    conn = _conn(client)
    await index.record_ids(conn, thread_id, [step])
    context = {
        "conn": conn,
        "connection": info_for(client),
        "thread_id": thread_id,
        "run_id": run_id,
        "step_id": step_id,
        "run": run,
        "item": {"step": step, "message": message},
        "include_content": include,
        "in_run_url": url_for("run", conn, thread_id=thread_id, run_id=run_id)
        + (
            f"?after={previous.data[0].id}"
            if previous and previous.data and is_id("step", previous.data[0].id)
            else ""
        )
        + f"#{step_id}",
    }
    return render_page(request, "runs_ui/step_detail.html", context, partial=partial)
