"""The polling fallback of the Responses shape's pages (as polling.py is for runs): while a page's socket is
down it reads what the one publisher last saved, and keeps what it shows watched."""

from __future__ import annotations

import asyncio
import contextlib

from django.http import Http404
from django.views.decorators.http import require_GET

from ..connections import aget_client
from ..models import ResponseSnapshot
from ..upstream.objects import is_id
from ..upstream.responses_objects import RESPONSE_TERMINAL
from . import bus, fragments, response_sockets
from .polling import FIRST_POLL_WAIT, POLL_PIN_SECONDS, UNAVAILABLE, _answer, _variant
from .response_watch import response_watcher
from .store import StoreUnavailable, store


async def _check(conn: str, kind: str, object_id: str) -> None:
    if not is_id(kind, object_id):
        raise Http404("Not a valid id.")
    await aget_client(conn)  # an unknown connection is a 404


@require_GET
async def response_state(request, conn, response_id):
    await _check(conn, "response", response_id)
    key = bus.response_key(conn, response_id)
    snapshot = await ResponseSnapshot.objects.filter(connection=conn, response_id=response_id).afirst()
    ended = snapshot is not None and snapshot.status in RESPONSE_TERMINAL
    try:
        state = await store().state(key)
        if not ended:
            watch = response_watcher.touch_response(conn, response_id, POLL_PIN_SECONDS)
            if state is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(watch.polled.wait(), timeout=FIRST_POLL_WAIT)
                state = await store().state(key)
    except StoreUnavailable:
        return _answer(fragments.stale_notice(UNAVAILABLE))
    return _answer(bus.html_for(state, _variant(request), "response"))


@require_GET
async def conversation_state(request, conn, conversation_id):
    await _check(conn, "conversation", conversation_id)
    response_watcher.touch_conversation(conn, conversation_id, POLL_PIN_SECONDS)
    active = (
        ResponseSnapshot.objects.filter(connection=conn, conversation_id=conversation_id)
        .exclude(status__in=[*RESPONSE_TERMINAL, ""])
        .values_list("response_id", flat=True)[:50]
    )
    keys = [bus.conversation_key(conn, conversation_id)] + [bus.response_key(conn, r) async for r in active]
    try:
        states = await store().states(keys)
    except StoreUnavailable:
        return _answer(fragments.stale_notice(UNAVAILABLE))
    variant = _variant(request)
    return _answer("".join(bus.html_for(s, variant, "conversation") for s in states if s))


@require_GET
async def index_state(request):
    """The responses index's status cells, from the index (no upstream calls)."""
    return _answer("".join(await response_sockets.index_cells()))
