"""The Responses shape's page partials rendered as pushed HTML (as fragments.py is for runs): the response
header per role, its row in a conversation, its items, new groups and given items of a conversation,
and index cells. The pages render the same partials."""

from __future__ import annotations

import time

from django.template.loader import render_to_string
from django.utils.html import format_html

from ..timeline import Duration, observed_durations
from ..upstream.responses_objects import Item, Response
from .fragments import VARIANTS, oob

COMPONENTS = "runs_ui/response_components.html"


def durations(response: Response, now: float) -> list[Duration]:
    """From the upstream's own timestamps: a response says when it was created and completed, no more."""
    end = response.completed_at
    running = not response.is_terminal
    last = end if end is not None else (now if running else None)
    total = None if response.created_at is None or last is None else float(last - response.created_at)
    return [Duration("total", total, running=running)]


def header_context(
    conn: str,
    response: Response,
    transitions: list[dict],
    answered_by: str,
    can_act: bool,
    now: float | None = None,
    live_v: str = "",
) -> dict:
    """What the response header partial needs; the page and the pushes build it the same way."""
    now = time.time() if now is None else now
    return {
        "conn": conn,
        "response": response,
        "answered_by": answered_by,
        "waiting": response.asks_a_person and not answered_by,
        "durations": durations(response, now),
        "observed": observed_durations(transitions, now, response.is_terminal),
        "can_act": can_act,
        "live_v": live_v,
    }


def header(conn: str, response: Response, transitions: list[dict], answered_by: str, live_v: str) -> dict:
    out = {}
    for variant in VARIANTS:
        ctx = header_context(conn, response, transitions, answered_by, variant == "operator", live_v=live_v)
        out[variant] = oob(render_to_string("runs_ui/response_detail.html#response-header", ctx).strip())
    return out


def row_head(conn: str, response: Response, live_v: str) -> str:
    html = render_to_string(
        f"{COMPONENTS}#response-row-head", {"conn": conn, "response": response, "live_v": live_v}
    )
    return oob(html.strip())


def items(conn: str, response_id: str, shown: list[Item], live_v: str) -> str:
    return "".join(
        render_to_string(
            f"{COMPONENTS}#item", {"conn": conn, "response_id": response_id, "item": item, "live_v": live_v}
        )
        for item in shown
    )


def response_rows(conn: str, responses: list[Response], max_items: int | None = None) -> str:
    """Responses of a conversation, as groups with the items they have so far (their watches push the rest
    into them); a response with more than `max_items` comes without them (its page has them all)."""
    return "".join(
        render_to_string(
            f"{COMPONENTS}#response-row",
            {
                "conn": conn,
                "response": r,
                "items": r.output if max_items is None or len(r.output) <= max_items else [],
                "live_list": True,
                "live_v": "",
            },
        )
        for r in responses
    )


def given_items(conn: str, shown: list[Item]) -> str:
    """Items given to a conversation (a person's message, a function's output, an approval)."""
    return "".join(
        render_to_string(f"{COMPONENTS}#given-item", {"conn": conn, "item": item, "live_v": ""})
        for item in shown
    )


def response_cell(conn: str, response_id: str, status: str, error_code: str = "", live_v: str = "") -> str:
    """The index's status cell of a response."""
    return _cell(f"response-cell-{conn}-{response_id}", status, error_code, live_v)


def conversation_cell(conn: str, conversation_id: str, status: str, error_code: str = "", live_v: str = ""):
    """The index's status cell of a conversation: its latest response's."""
    return _cell(f"conversation-cell-{conn}-{conversation_id}", status, error_code, live_v)


def _cell(element_id: str, status: str, error_code: str, live_v: str) -> str:
    badge = render_to_string("runs_ui/components.html#status-badge", {"status": status})
    error = format_html(' <span class="small muted">{}</span>', error_code) if error_code else ""
    version = format_html(' data-v="{}"', live_v) if live_v else ""
    return format_html('<td id="{}"{} hx-swap-oob="true">{}{}</td>', element_id, version, badge, error)
