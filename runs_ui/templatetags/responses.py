"""Template filters for the Responses shape: item labels, item statuses, images carried as data URLs."""

from __future__ import annotations

import re

from django import template

from ..upstream.objects import RUN_STATUSES

register = template.Library()

#: Item statuses that mean "working" (a web search searching, a code interpreter interpreting, …).
WORKING = frozenset({"searching", "interpreting", "calling", "generating", "in_progress"})
#: Only these images are shown inline: a data URL cannot call home, and no script rides in a PNG.
_DATA_IMAGE = re.compile(r"^data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]+$")

LABELS = {
    "message": "Message",
    "function_call": "Function call",
    "function_call_output": "Function output",
    "reasoning": "Reasoning",
    "web_search_call": "Web search",
    "file_search_call": "File search",
    "code_interpreter_call": "Code interpreter",
    "mcp_list_tools": "MCP tools listed",
    "mcp_approval_request": "MCP approval request",
    "mcp_approval_response": "MCP approval",
    "mcp_call": "MCP call",
}


@register.filter
def item_label(item_type: str) -> str:
    return LABELS.get(item_type, "")


@register.filter
def item_status_class(status: str) -> str:
    if status in WORKING:
        return "status-in_progress"
    return f"status-{status}" if status in RUN_STATUSES else "status-unknown"


@register.filter
def data_image(url) -> str:
    """A data: URL of a PNG, JPEG, GIF or WebP image (shown inline), else "" (shown as text or a link)."""
    text = str(url or "")
    return text if len(text) < 10_000_000 and _DATA_IMAGE.fullmatch(text) else ""
