"""Page partials rendered as pushed HTML: the same partials the pages render, so a page and its live
updates cannot disagree.

Each pushed element carries `data-v="<key>@<version>"` (the live object it belongs to, and the version of
the push), as does the same element on a page drawn over HTTP; the page keeps an element's newer copy and
drops an older one (static/runs_ui/dashboard.js), so a late push never sets a page back in time.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from ..forms import ToolOutputsForm
from ..timeline import message_of, observed_durations, out_of_order, run_durations, waterfall
from ..upstream.objects import Message, Run, Step

VARIANTS = ("viewer", "operator")


def stamp(key: str, version) -> str:
    """The data-v value of elements rendered from this object's state at this version."""
    return f"{key}@{version}" if key and version is not None else ""


def header_context(
    conn: str,
    run: Run,
    assistant_name: str,
    transitions: list[dict],
    can_act: bool,
    steps: list[Step] = (),
    now: float | None = None,
    live_v: str = "",
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
        "live_v": live_v,
    }


def oob(html: str) -> str:
    """Mark the first element of a rendered partial for an out-of-band swap by its id."""
    return html.replace(">", ' hx-swap-oob="true">', 1) if html.lstrip().startswith("<") else html


def header(
    conn: str, run: Run, assistant_name: str, transitions: list[dict], steps: list[Step], live_v: str
) -> dict[str, str]:
    """The run header, once per role: operators get the actions."""
    out = {}
    for variant in VARIANTS:
        ctx = header_context(
            conn, run, assistant_name, transitions, variant == "operator", steps, live_v=live_v
        )
        out[variant] = oob(render_to_string("runs_ui/run_detail.html#run-header", ctx).strip())
    return out


def row_head(conn: str, run: Run, assistant_name: str, live_v: str) -> str:
    html = render_to_string(
        "runs_ui/components.html#run-row-head",
        {
            "conn": conn,
            "thread_id": run.thread_id,
            "run": run,
            "assistant_name": assistant_name,
            "total": run_durations(run, time.time())[-1].seconds,
            "live_v": live_v,
        },
    )
    return oob(html.strip())


def run_rows(conn: str, runs: list[Run], names: dict[str, str]) -> str:
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


def steps(conn: str, run: Run, items: list[Step], messages: dict[str, Message], live_v: str) -> str:
    return "".join(
        render_to_string(
            "runs_ui/components.html#step-item",
            {
                "conn": conn,
                "thread_id": run.thread_id,
                "run": run,
                "item": {"step": s, "message": message_of(s, messages)},
                "live_v": live_v,
            },
        )
        for s in items
    )


def message_bodies(conn: str, messages: list[Message], live_v: str) -> str:
    return "".join(
        render_to_string(
            "runs_ui/components.html#message-content",
            {"conn": conn, "thread_id": m.thread_id, "message": m, "live_v": live_v},
        )
        for m in messages
    )


def message_items(conn: str, messages: list[Message], live_v: str = "") -> str:
    return "".join(
        render_to_string(
            "runs_ui/components.html#message-item",
            {"conn": conn, "thread_id": m.thread_id, "message": m, "live_v": live_v},
        )
        for m in messages
    )


def index_cell(conn: str, thread_id: str, status: str, error_code: str = "", live_v: str = "") -> str:
    badge = render_to_string("runs_ui/components.html#status-badge", {"status": status})
    error = format_html(' <span class="small muted">{}</span>', error_code) if error_code else ""
    version = format_html(' data-v="{}"', live_v) if live_v else ""
    return format_html(
        '<td id="thread-status-{}-{}"{} hx-swap-oob="true">{}{}</td>', conn, thread_id, version, badge, error
    )


def waterfall_bars(run: Run, items: list[Step], live_v: str) -> str:
    bars = waterfall(run, items, time.time())
    if not bars:
        return ""
    return render_to_string("runs_ui/components.html#waterfall-bars", {"bars": bars, "live_v": live_v})


def index_rows(entries: list) -> str:
    """Home list rows of threads first seen since the page was drawn: merged in at the top."""
    html = "".join(
        render_to_string("runs_ui/home.html#thread-row", {"entry": e, "names": {}}) for e in entries
    )
    if not html:
        return ""
    return format_html(
        '<div id="live-merge" hx-swap-oob="true" hidden><template data-merge="rows">{}</template></div>',
        mark_safe(html),
    )


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
    """Items the page merges into lists by id (replace if present and not newer, else add) — see
    dashboard.js. The items are rendered partials (already escaped), hence mark_safe."""
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


def stale_notice(message: str = "", live_v: str = "") -> str:
    """The banner saying live updates are delayed (empty: they are not)."""
    version = format_html(' data-v="{}"', live_v) if live_v else ""
    if not message:
        return format_html('<div id="live-stale"{} hx-swap-oob="true"></div>', version)
    return format_html(
        '<div id="live-stale"{} class="banner warning" hx-swap-oob="true">{}</div>', version, message
    )


def inbox_refresh() -> str:
    """Tells an open inbox to read its rows again (a run started or stopped waiting for outputs)."""
    return (
        '<div id="inbox-refresh" hx-swap-oob="true" hx-get="?part=rows" hx-trigger="load" '
        'hx-target="#inbox-rows" hx-swap="innerHTML"></div>'
    )
