"""Live updates: page partials rendered as pushed fragments, and how they travel to the sockets.

A change is rendered once (by the process that observed it) into a "push": HTML fragments swapped in by
element id, with the run header in two variants (viewers, operators). The push is stored in the shared
state and only its id goes over the channel layer, so events stay small however big the fragments; each
process loads a push once and hands it to all its sockets. The last push of each run and thread is also
kept as the "state" a reconnecting socket (or a polling page) is resynced with.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections import OrderedDict

from channels.layers import get_channel_layer
from django.conf import settings
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from .forms import ToolOutputsForm
from .models import RunSnapshot
from .shared_state import shared
from .timeline import message_of, observed_durations, out_of_order, run_durations, waterfall
from .upstream.objects import RUN_TERMINAL, Message, Run, Step

INDEX_GROUP = "index"
PUSH_TTL_SECONDS = 120
VARIANTS = ("viewer", "operator")


def _digest(*parts: str) -> str:
    # Group names must be ASCII and under 100 characters; ids can be 140, so hash them.
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def run_group(conn: str, run_id: str) -> str:
    return f"run.{_digest(conn, run_id)}"


def thread_group(conn: str, thread_id: str) -> str:
    return f"thread.{_digest(conn, thread_id)}"


def run_state_key(conn: str, run_id: str) -> str:
    return f"state:run:{_digest(conn, run_id)}"


async def thread_state_keys(conn: str, thread_id: str, limit: int = 50) -> list[str]:
    """A thread page resyncs with the states of its runs that were still active when last seen."""
    active = (
        RunSnapshot.objects.filter(connection=conn, thread__thread_id=thread_id)
        .exclude(status__in=RUN_TERMINAL)
        .values_list("run_id", flat=True)[:limit]
    )
    return [run_state_key(conn, run_id) async for run_id in active]


# --- rendering -------------------------------------------------------------------------------------


def header_context(
    conn: str,
    run: Run,
    assistant_name: str,
    transitions: list[dict],
    can_act: bool,
    steps: list[Step] = (),
    now: float | None = None,
) -> dict:
    """What the run header partial needs; the page and the pushes build it the same way.

    `steps` (the first page, or the watcher's newest) give the time spent waiting for tool outputs.
    """
    now = time.time() if now is None else now
    stuck = None
    if run.status == "cancelling" and transitions and transitions[-1].get("status") == "cancelling":
        waited = now - (transitions[-1].get("at") or now)
        stuck = waited if waited > settings.CANCEL_STUCK_SECONDS else None
    return {
        "stuck_cancelling": stuck,
        "tool_form": ToolOutputsForm(calls=run.pending_calls) if can_act and run.pending_calls else None,
        "conn": conn,
        "thread_id": run.thread_id,
        "run": run,
        "assistant_name": assistant_name,
        "durations": run_durations(run, now, steps),
        "observed": observed_durations(transitions, now, run.is_terminal),
        "out_of_order": out_of_order(run),
        "can_act": can_act,
    }


def _oob(html: str) -> str:
    """Mark the first element of a rendered partial for an out-of-band swap by its id."""
    return html.replace(">", ' hx-swap-oob="true">', 1) if html.lstrip().startswith("<") else html


def render_header(
    conn: str, run: Run, assistant_name: str, transitions: list[dict], steps: list[Step] = ()
) -> dict[str, str]:
    out = {}
    for variant in VARIANTS:
        ctx = header_context(
            conn, run, assistant_name, transitions, can_act=variant == "operator", steps=steps
        )
        out[variant] = _oob(render_to_string("runs_ui/run_detail.html#run-header", ctx).strip())
    return out


def render_row_head(conn: str, run: Run, assistant_name: str) -> str:
    total = run_durations(run, time.time())[-1].seconds
    html = render_to_string(
        "runs_ui/components.html#run-row-head",
        {
            "conn": conn,
            "thread_id": run.thread_id,
            "run": run,
            "assistant_name": assistant_name,
            "total": total,
        },
    )
    return _oob(html.strip())


def render_run_rows(conn: str, runs: list[Run], names: dict[str, str]) -> str:
    now = time.time()
    return "".join(
        render_to_string(
            "runs_ui/components.html#run-row",
            {
                "conn": conn,
                "thread_id": r.thread_id,
                "run": r,
                "assistant_name": names.get(r.assistant_id, ""),
                "total": run_durations(r, now)[-1].seconds,
            },
        )
        for r in runs
    )


def render_steps(conn: str, run: Run, steps: list[Step], messages: dict[str, Message]) -> str:
    return "".join(
        render_to_string(
            "runs_ui/components.html#step-item",
            {
                "conn": conn,
                "thread_id": run.thread_id,
                "run": run,
                "item": {"step": s, "message": message_of(s, messages)},
            },
        )
        for s in steps
    )


def render_message_bodies(conn: str, messages: list[Message]) -> str:
    return "".join(
        render_to_string(
            "runs_ui/components.html#message-content", {"conn": conn, "thread_id": m.thread_id, "message": m}
        )
        for m in messages
    )


def render_message_items(conn: str, messages: list[Message]) -> str:
    return "".join(
        render_to_string(
            "runs_ui/components.html#message-item", {"conn": conn, "thread_id": m.thread_id, "message": m}
        )
        for m in messages
    )


def render_index_cell(conn: str, thread_id: str, status: str, error_code: str = "") -> str:
    badge = render_to_string("runs_ui/components.html#status-badge", {"status": status})
    error = format_html(' <span class="small muted">{}</span>', error_code) if error_code else ""
    return format_html(
        '<td id="thread-status-{}-{}" hx-swap-oob="true">{}{}</td>', conn, thread_id, badge, error
    )


def render_waterfall(run: Run, steps: list[Step]) -> str:
    bars = waterfall(run, steps, time.time())
    return render_to_string("runs_ui/components.html#waterfall-bars", {"bars": bars}) if bars else ""


def merge_box(
    *,
    steps: str = "",
    run_id: str = "",
    bodies: str = "",
    timeline: str = "",
    insert: bool = True,
    bars: str = "",
    run: Run | None = None,
) -> str:
    """Items the page merges into lists by id (replace if present, else add) — see dashboard.js.

    The items are rendered partials (already escaped), hence mark_safe.
    """
    steps, bodies, timeline = mark_safe(steps), mark_safe(bodies), mark_safe(timeline)
    parts = []
    if steps:
        parts.append(format_html('<template data-merge="steps" data-run="{}">{}</template>', run_id, steps))
    if bodies:
        parts.append(format_html('<template data-merge="bodies">{}</template>', bodies))
    if bars and run is not None:
        parts.append(
            format_html(
                '<template data-merge="waterfall" data-run="{}" data-origin="{}" data-end="{}">{}</template>',
                run.id,
                run.created_at or "",
                run.ended_at or "",
                mark_safe(bars),
            )
        )
    if timeline:
        parts.append(
            format_html(
                '<template data-merge="timeline" data-insert="{}">{}</template>', int(insert), timeline
            )
        )
    if not parts:
        return ""
    return format_html('<div id="live-merge" hx-swap-oob="true" hidden>{}</div>', mark_safe("".join(parts)))


def stale_notice(message: str = "") -> str:
    if not message:
        return '<div id="live-stale" hx-swap-oob="true"></div>'
    return format_html('<div id="live-stale" class="banner warning" hx-swap-oob="true">{}</div>', message)


# --- publishing and loading pushes ---------------------------------------------------------------


def _push(common: str, variants: dict[str, str] | None, row: str) -> dict:
    return {
        "common": common,
        "row": row,
        **{v: (variants or {}).get(v, "") for v in VARIANTS},
        "at": time.time(),
    }


async def publish(
    groups: list[str], common: str, variants: dict[str, str] | None = None, row: str = ""
) -> None:
    """Store a push and tell the groups its id (the event on the channel layer stays tiny).

    `variants` (the run header, per role) go to run pages only, `row` (the run's timeline row) to thread
    pages only, `common` to both.
    """
    push_id = uuid.uuid4().hex
    # A push is only needed until every process has loaded it.
    await shared().set_state(f"push:{push_id}", _push(common, variants, row), ttl=PUSH_TTL_SECONDS)
    layer = get_channel_layer()
    for group in groups:
        await layer.group_send(group, {"type": "live.push", "push": push_id})


async def save_state(key: str, common: str, variants: dict[str, str] | None = None, row: str = "") -> None:
    """The full current state of a run, sent to a socket when it (re)connects."""
    await shared().set_state(key, _push(common, variants, row))


class _PushCache:
    """Each process loads a push once, however many of its sockets want it."""

    def __init__(self, size: int = 256):
        self._items: OrderedDict[str, asyncio.Future] = OrderedDict()
        self._size = size

    async def get(self, push_id: str) -> dict | None:
        future = self._items.get(push_id)
        if future is None or future.get_loop() is not asyncio.get_running_loop():
            future = asyncio.get_running_loop().create_future()
            self._items[push_id] = future
            while len(self._items) > self._size:
                self._items.popitem(last=False)
            try:
                future.set_result(await shared().get_state(f"push:{push_id}"))
            except Exception as exc:
                future.set_exception(exc)
                self._items.pop(push_id, None)  # it may have been evicted meanwhile
                raise
        return await asyncio.shield(future)


push_cache = _PushCache()


def html_for(push: dict | None, variant: str, scope: str) -> str:
    """What one socket gets of a push: run pages the header (for its role), thread pages the row."""
    if not push:
        return ""
    return push.get("common", "") + push.get(
        variant if scope == "run" else "row" if scope == "thread" else "", ""
    )


async def current_state(keys: list[str]) -> list[dict]:
    store = shared()
    states = [await store.get_state(k) for k in keys]
    return [s for s in states if s]
