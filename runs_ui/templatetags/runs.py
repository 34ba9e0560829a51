"""Template filters for upstream data: times, durations, statuses, markdown and JSON."""

from __future__ import annotations

from datetime import UTC, datetime

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from .. import rendering
from ..upstream.objects import ID_PATTERNS, RUN_STATUSES, STEP_STATUSES, is_id

#: Message roles a class name may carry; any other role is drawn as "role-unknown".
ROLES = ("user", "assistant")

register = template.Library()


@register.filter
def ts(value):
    """A Unix timestamp as a <time> element: UTC in the markup, the viewer's timezone after JS runs."""
    if value is None or isinstance(value, bool):
        return mark_safe('<span class="muted">—</span>')
    try:
        moment = datetime.fromtimestamp(float(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return format_html('<span class="muted">{}</span>', value)
    utc = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return format_html('<time datetime="{}" title="{}" data-local>{}</time>', moment.isoformat(), utc, utc)


@register.filter
def duration(seconds):
    """1.2 s, 3 min 4 s, 2 h 5 min; negative values (out-of-order timestamps) keep their sign."""
    if seconds is None:
        return "—"
    sign = "−" if seconds < 0 else ""
    s = abs(float(seconds))
    if s < 10:
        text = f"{s:.1f} s" if s % 1 else f"{int(s)} s"
    elif s < 60:
        text = f"{s:.0f} s"
    elif s < 3600:
        text = f"{int(s // 60)} min {int(s % 60)} s"
    elif s < 86400:
        text = f"{int(s // 3600)} h {int(s % 3600 // 60)} min"
    else:
        text = f"{int(s // 86400)} d {int(s % 86400 // 3600)} h"
    return sign + text


def _known_status(status) -> str:
    return status if isinstance(status, str) and (status in RUN_STATUSES or status in STEP_STATUSES) else ""


@register.filter
def status_class(status):
    """A status as a class name, from the known ones only: "status-completed", else "status-unknown"."""
    return f"status-{_known_status(status) or 'unknown'}"


@register.filter
def known_status(status):
    """A status for a class name suffix: a known one, else "unknown"."""
    return _known_status(status) or "unknown"


@register.filter
def role_class(role):
    return f"role-{role if role in ROLES else 'unknown'}"


@register.filter
def valid_id(value, kind):
    """{{ run.id|valid_id:"run" }}: the value if it is an id of that kind, else "" (for DOM ids, selectors
    and links, which only validated ids may enter)."""
    return value if is_id(kind, value) else ""


@register.filter
def any_id(value):
    """The value if it is an id of any kind the dashboard knows, else "" (copy buttons copy only ids)."""
    return value if any(is_id(kind, value) for kind in ID_PATTERNS) else ""


@register.filter
def status_label(status):
    return str(status).replace("_", " ")


@register.filter
def pretty(value):
    return rendering.pretty(value)


@register.filter
def markdown(text):
    return rendering.markdown(text or "")


@register.filter
def clip(text, limit=2000):
    """Long upstream strings shortened for a summary line (the full value is one click away)."""
    text = "" if text is None else str(text)
    return text if len(text) <= int(limit) else text[: int(limit)] + "…"


@register.filter
def lookup(mapping, key):
    """{{ names|lookup:run.assistant_id }}: a dict entry by a variable key."""
    return mapping.get(key, "") if isinstance(mapping, dict) else ""


@register.filter
def type_name(value):
    return type(value).__name__


@register.simple_tag(takes_context=True)
def url_for(context, name, conn=None, **kwargs):
    """{% url_for "run" thread_id=… run_id=… %}: the URL on the page's connection (`conn` in the context)."""
    from django.urls import NoReverseMatch

    from ..links import url_for as _url_for
    from ..models import DEFAULT_CONNECTION

    try:
        return _url_for(name, conn or context.get("conn", DEFAULT_CONNECTION), **kwargs)
    except NoReverseMatch:
        return ""  # an upstream object without a usable id gets no link, not a 500


@register.simple_tag(takes_context=True)
def file_url(context, file_id):
    """{% file_url out.file_id as image_url %}: the file's proxied content, its link signed as referred to
    by this page ("" for what is not a file id)."""
    from ..file_links import file_url as _file_url
    from ..models import DEFAULT_CONNECTION

    return _file_url(context.get("conn", DEFAULT_CONNECTION), file_id)


@register.simple_tag
def message_part(part):
    """A text part as sanitised markdown with numbered citations: {"html": …, "citations": […]}."""
    html, citations = rendering.message_text(part)
    return {"html": html, "citations": citations}


@register.simple_tag
def step_duration(step):
    start, end = step.created_at, step.ended_at
    return None if start is None or end is None else end - start


@register.filter
def safe_url(url):
    """Only http(s) URLs become links; anything else (javascript:, data:, …) is shown as text."""
    from urllib.parse import urlsplit

    text = str(url or "").strip()
    try:
        scheme = urlsplit(text).scheme.lower()
    except ValueError:
        return ""
    return text if scheme in ("http", "https") else ""
