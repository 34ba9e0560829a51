"""Untrusted upstream text → safe HTML: message markdown (sanitised, citations marked) and pretty JSON."""

from __future__ import annotations

import functools

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

from .upstream.objects import TextPart
from .upstream.text import to_json

# Raw HTML in markdown is escaped, not passed through; markdown-it already refuses javascript: links,
# and nh3 is the second line: only http(s)/mailto links, no images (a remote image is a tracking pixel).
_markdown = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
_ALLOWED_TAGS = nh3.ALLOWED_TAGS - {"img", "area", "map"}
#: Beyond this, message text is shown as plain text: markdown of megabytes is slow and unreadable.
MAX_MARKDOWN_CHARS = 100_000


def sanitize(html: str) -> str:
    return nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


# Cached: a push renders a message's body for run pages and again inside its thread-page item, and the
# saved live state renders the newest messages again; the text is often unchanged.
@functools.lru_cache(maxsize=256)
def markdown(text: str) -> SafeString:
    if len(text) > MAX_MARKDOWN_CHARS:
        from django.utils.html import escape

        return mark_safe(f'<pre class="plain">{escape(text)}</pre>')
    return mark_safe(sanitize(_markdown.render(text)))


def message_text(part: TextPart) -> tuple[SafeString, list[dict]]:
    """Markdown of a text part with each citation's marker replaced by a numbered reference.

    Returns the HTML and the citations ([{n, type, file_id, text}]) to list under the message.
    """
    text, citations = part.value, []
    for n, a in enumerate(part.annotations, start=1):
        citations.append({"n": n, "type": a.type, "file_id": a.file_id, "text": a.text})
        if a.text and a.text in text:
            text = text.replace(a.text, f"[{n}]", 1)
    return markdown(text), citations


def pretty(value) -> str:
    """Any JSON value as indented text (the template escapes it), exactly as sent: a string that had lone
    surrogates or NUL shows their escapes here ("\\ud800"); the page shows markers (upstream/text.py)."""
    try:
        return to_json(value, indent=2)
    except (TypeError, ValueError, RecursionError):
        return repr(value)
