"""How views answer: the full page or its htmx partial, and upstream failures as pages that say what to do."""

from __future__ import annotations

import logging
from functools import wraps

from django.http import Http404
from django.shortcuts import render
from django.utils.cache import patch_vary_headers

from ..connections import aget_client, info_for
from ..models import DEFAULT_CONNECTION
from ..upstream.errors import (
    AuthError,
    DeadlineExceeded,
    LimitExceeded,
    Misconfigured,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unavailable,
    UpstreamError,
)
from ..upstream.objects import is_id
from ..upstream.text import one_line

log = logging.getLogger(__name__)

ID_LABELS = {
    "thread": "thread",
    "run": "run",
    "step": "run step",
    "message": "message",
    "assistant": "assistant",
    "file": "file",
    "call": "tool call",
    "response": "response",
    "conversation": "conversation",
    "item": "item",
}


def wants_partial(request) -> bool:
    """An htmx request gets the fragment; anything else (including history restore) the full page."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def render_page(request, template: str, context: dict, *, partial: str | None = None, status: int = 200):
    name = f"{template}#{partial}" if partial and wants_partial(request) else template
    response = render(request, name, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def check_id(kind: str, value: str) -> str:
    """Refuse anything that is not an id of this kind before it gets near an upstream URL."""
    if not is_id(kind, value):
        shown = value if len(value) <= 80 else value[:80] + "…"
        raise Http404(f"“{shown}” is not a valid {ID_LABELS[kind]} id.")
    return value


def _lookup(kwargs: dict) -> str:
    """What a page was looking up, in words: "run run_1 in thread thread_1"."""
    parts = [f"{ID_LABELS.get(k.removesuffix('_id'), k)} {v}" for k, v in kwargs.items() if k.endswith("_id")]
    return " in ".join(reversed(parts))


def upstream_error(request, exc: UpstreamError, client, lookup: str = ""):
    """An upstream failure as a page (or, for htmx, a banner in place) — never a 500."""
    connection = info_for(client)
    context = {"error": exc, "lookup": lookup, "connection": connection, "retry_url": request.get_full_path()}
    if isinstance(exc, DeadlineExceeded):
        status, context["title"] = 504, "The upstream took longer than the dashboard waits"
        context["retryable"] = True
    elif isinstance(exc, LimitExceeded):
        status, context["title"] = 502, "The upstream sent more than the dashboard reads"
    elif isinstance(exc, NotFound):
        status, context["title"] = 404, "Not found"
    elif isinstance(exc, (AuthError, PermissionDenied, Misconfigured)):
        status, context["title"] = 502, "The upstream refused the dashboard's credentials"
        if isinstance(exc, Misconfigured):
            context["title"] = "The connection is not configured completely"
            context["fix"] = exc.setting if connection.is_default else connection.settings_hint
        else:
            context["fix"] = connection.settings_hint
    elif isinstance(exc, (Unavailable, RateLimited)):
        status, context["title"] = 503, "The upstream is not answering right now"
        context["retryable"] = True
    else:
        status, context["title"] = 502, "The upstream sent something unreadable"
    log.warning(
        "upstream %s for %s: %s (request %s)",
        exc.kind,
        lookup or request.path,
        one_line(exc.message),
        exc.request_id or "-",
    )
    if wants_partial(request):
        response = render(request, "runs_ui/upstream_error.html#error-banner", context)
    else:
        response = render(request, "runs_ui/upstream_error.html", context, status=status)
    if getattr(exc, "retry_after", None):
        response["Retry-After"] = str(int(exc.retry_after) or 1)
    patch_vary_headers(response, ["HX-Request"])
    return response


def upstream_view(view):
    """Resolve the connection from the URL and turn upstream errors into pages for the wrapped view."""

    @wraps(view)
    async def wrapper(request, *args, connection: str = DEFAULT_CONNECTION, **kwargs):
        client = await aget_client(connection)
        if not client.profile.speaks("assistants"):
            raise Http404(
                f"The connection “{info_for(client).name}” speaks the Responses shape "
                f"({client.profile.label}): it has no threads or runs."
            )
        try:
            return await view(request, client, *args, **kwargs)
        except UpstreamError as exc:
            return upstream_error(request, exc, client, _lookup(kwargs))

    return wrapper
