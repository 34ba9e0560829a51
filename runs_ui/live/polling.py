"""The polling fallback: while a page's socket is down, it polls the same state over HTTP.

It reads what the (single) publisher last saved and keeps the run or thread watched, so a hundred polling
pages still cost the upstream one poller. Pages drop what is older than what they show (data-v), so a
poll can never set a page back.
"""

from __future__ import annotations

import asyncio
import contextlib

from django.http import Http404, HttpResponse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from ..connections import aget_client
from ..models import RunSnapshot, ThreadEntry
from ..upstream.objects import RUN_TERMINAL, is_id
from . import bus, fragments
from .store import StoreUnavailable, store
from .watcher import watcher

#: A page polling while its socket is down keeps its run (or thread) watched this long after each poll.
POLL_PIN_SECONDS = 15
#: How long a poll waits for a just-started watcher's first look, when nothing was saved yet.
FIRST_POLL_WAIT = 3.0
#: The home list's polling fallback returns this many status cells.
INDEX_CELLS = 50

UNAVAILABLE = (
    "Live updates are interrupted: the dashboard cannot reach its message bus. "
    "This page catches up as soon as it is back."
)


def _answer(html: str) -> HttpResponse:
    response = HttpResponse(html)
    patch_vary_headers(response, ["HX-Request"])
    response["Cache-Control"] = "no-store"
    return response


async def _check(conn: str, thread_id: str, run_id: str | None = None) -> None:
    if not is_id("thread", thread_id) or (run_id is not None and not is_id("run", run_id)):
        raise Http404("Not a valid id.")
    await aget_client(conn)  # an unknown connection is a 404


def _variant(request) -> str:
    return "operator" if request.roles.can_act else "viewer"


@require_GET
async def run_state(request, conn, thread_id, run_id):
    await _check(conn, thread_id, run_id)
    key = bus.run_key(conn, thread_id, run_id)
    # As on the socket: a run known to have ended costs nothing to keep on screen.
    snapshot = await RunSnapshot.objects.filter(connection=conn, run_id=run_id).afirst()
    ended = snapshot is not None and snapshot.status in RUN_TERMINAL
    try:
        state = await store().state(key)
        if state is None and not ended:
            watch = watcher.touch_run(conn, thread_id, run_id, POLL_PIN_SECONDS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watch.polled.wait(), timeout=FIRST_POLL_WAIT)
            state = await store().state(key)
        elif not ended:
            watcher.touch_run(conn, thread_id, run_id, POLL_PIN_SECONDS)
    except StoreUnavailable:
        return _answer(fragments.stale_notice(UNAVAILABLE))
    return _answer(bus.html_for(state, _variant(request), "run"))


@require_GET
async def thread_state(request, conn, thread_id):
    await _check(conn, thread_id)
    watcher.touch_thread(conn, thread_id, POLL_PIN_SECONDS)
    active = (
        RunSnapshot.objects.filter(connection=conn, thread__thread_id=thread_id)
        .exclude(status__in=RUN_TERMINAL)
        .values_list("run_id", flat=True)[:50]
    )
    keys = [bus.thread_key(conn, thread_id)] + [bus.run_key(conn, thread_id, r) async for r in active]
    try:
        states = await store().states(keys)
    except StoreUnavailable:
        return _answer(fragments.stale_notice(UNAVAILABLE))
    variant = _variant(request)
    return _answer("".join(bus.html_for(s, variant, "thread") for s in states if s))


@require_GET
async def index_state(request):
    """The home list's status cells, from the index (no upstream calls)."""
    entries = ThreadEntry.objects.exclude(latest_status="").order_by("-last_seen")[:INDEX_CELLS]
    cells = [
        fragments.index_cell(e.connection, e.thread_id, e.latest_status, e.latest_error_code)
        async for e in entries
    ]
    return _answer("".join(cells))
