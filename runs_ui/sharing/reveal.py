"""Revealing one redacted value to an authorised person, on the server, with an audit record.

A page that shows redacted text can give each redaction a reference (`ref_for`): a signed, opaque token
naming where the value is — connection, thread, run, the object's id, the path to the string in the
object's JSON, and which redaction in that string (the n-th). The token holds no part of the value. To
reveal, the server verifies the token, fetches the object again from the upstream, finds the string at
that path, redacts it again with the same rules, and returns the original text of the n-th span — after
writing a RevealRecord. If the rules changed in between (the n-th span has another label), it refuses.

    html = reveal_html(*redactor.text_with_spans(text), lambda n: ref_for(place, n, label_of(n)))
    value = await reveal(user, roles, client, token, redactor, reason="ticket 123")
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core import signing
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from .models import RevealRecord
from .redaction import UNCHECKED, RedactedSpan, Redactor

SALT = "runs_ui.sharing.reveal"
#: A reference older than this must be fetched again with its page.
MAX_AGE_SECONDS = 24 * 3600
KINDS = ("run", "step", "message", "thread")


class RevealRefused(Exception):
    """Why a value cannot be revealed, in words for the person asking."""


@dataclass(frozen=True)
class Place:
    """Where a string is: an upstream object, and the path to the string in its JSON."""

    connection: str
    kind: str  # "run", "step", "message" or "thread"
    thread_id: str
    run_id: str
    object_id: str
    path: tuple[str | int, ...]

    @property
    def path_text(self) -> str:
        return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in self.path)[:500]


@dataclass(frozen=True)
class SpanRef:
    place: Place
    n: int
    label: str


def ref_for(place: Place, span: RedactedSpan) -> str:
    """The opaque token for one redaction (goes in the page, e.g. a button's data attribute)."""
    p = place
    return signing.dumps(
        [p.connection, p.kind, p.thread_id, p.run_id, p.object_id, list(p.path), span.n, span.label],
        salt=SALT,
        compress=True,
    )


def read_ref(token: str) -> SpanRef:
    try:
        conn, kind, thread_id, run_id, object_id, path, n, label = signing.loads(
            token, salt=SALT, max_age=MAX_AGE_SECONDS
        )
    except signing.SignatureExpired:
        raise RevealRefused("This page is too old to reveal values from; reload it.") from None
    except (signing.BadSignature, ValueError, TypeError):
        raise RevealRefused("This is not a reference to a redacted value.") from None
    if kind not in KINDS:
        raise RevealRefused("This is not a reference to a redacted value.")
    return SpanRef(Place(conn, kind, thread_id, run_id, object_id, tuple(path)), n, label)


def value_at(raw: object, path: tuple[str | int, ...]) -> str | None:
    """The string at `path` in a JSON tree, or None."""
    node = raw
    for step in path:
        if isinstance(node, dict) and isinstance(step, str):
            node = node.get(step)
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            node = node[step]
        else:
            return None
    return node if isinstance(node, str) else None


def resolve(ref: SpanRef, raw: object, redactor: Redactor) -> str:
    """The original text of the referenced redaction in `raw` (the object fetched again), or RevealRefused."""
    text = value_at(raw, ref.place.path)
    if text is None:
        raise RevealRefused("The value is no longer there (the object changed upstream).")
    spans = redactor.spans(text)
    if spans is None or ref.n >= len(spans) or spans[ref.n][2] != ref.label:
        raise RevealRefused("The redaction rules or the object changed since the page was shown; reload it.")
    start, end, _ = spans[ref.n]
    return text[start:end]


async def fetch_raw(client, place: Place) -> dict:
    """The object's JSON as the upstream has it now (through the client, so its errors are the client's)."""
    if place.kind == "run":
        obj = await client.get_run(place.thread_id, place.object_id)
    elif place.kind == "step":
        obj = await client.get_step(place.thread_id, place.run_id, place.object_id)
    elif place.kind == "message":
        obj = await client.get_message(place.thread_id, place.object_id)
    else:
        obj = await client.get_thread(place.object_id)
    return obj.raw


async def reveal(user, roles, client, token: str, redactor: Redactor, reason: str = "") -> str:
    """Check the person may, fetch, resolve, audit: the original value (RevealRefused otherwise).

    The record is written before the value is returned, so no reveal goes unaudited.
    """
    if not roles.is_operator:
        raise RevealRefused("Only operators can reveal redacted values.")
    ref = read_ref(token)
    if client.name != ref.place.connection:
        raise RevealRefused("This reference belongs to another connection.")
    value = resolve(ref, await fetch_raw(client, ref.place), redactor)
    await RevealRecord.objects.acreate(
        user=user,
        username=user.get_username(),
        connection=ref.place.connection,
        thread_id=ref.place.thread_id,
        run_id=ref.place.run_id,
        object_id=ref.place.object_id,
        path=ref.place.path_text,
        label=ref.label,
        reason=reason[:2000],
    )
    return value


def reveal_html(text: str, spans: list[RedactedSpan], token_for) -> SafeString:
    """Redacted text as escaped HTML, each redaction a button carrying its reference (`token_for(span)`).

    The page's script posts the reference to the reveal view and swaps the answer in; without it the
    button is just the label.
    """
    if text == UNCHECKED:
        return mark_safe(escape(text))
    out, last = [], 0
    for span in spans:
        out.append(escape(text[last : span.start]))
        out.append(
            format_html(
                '<button type="button" class="redacted" data-reveal="{}" title="Reveal (recorded)">'
                "{}</button>",
                token_for(span),
                text[span.start : span.end],
            )
        )
        last = span.end
    out.append(escape(text[last:]))
    return mark_safe("".join(out))
