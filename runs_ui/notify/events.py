"""What a notification says: the event's shape, its JSON body (with a Slack-compatible `text`), and how a
run's transition becomes one.

The body a webhook receives (see docs/WEBHOOKS.md):

    {
      "id": "run.failed:default:run_abc:7",      # unique per transition: receivers drop repeats by it
      "type": "run.failed",                      # run.requires_action | run.failed | run.expired |
                                                 # run.cancelling_stuck | run.expiring_soon | test
      "created": 1764070000,                     # when it happened (Unix seconds)
      "text": "Run run_abc failed: …",           # Slack mrkdwn; Slack-compatible receivers show it as is
      "summary": "Run run_abc failed: …",        # the same sentence, plain
      "run": {"connection": "default", "thread_id": "thread_…", "id": "run_…", "status": "failed",
              "assistant_id": "asst_…", "last_error": {"code": "…", "message": "…"} | null,
              "expires_at": 1764070600 | null, "pending_calls": ["lookup_order"]},
      "links": {"run": "https://dash/threads/…/runs/…", "thread": "https://dash/threads/…"}
    }
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from django.urls import NoReverseMatch

from ..links import url_for
from ..upstream.objects import Run

TYPES = {
    "run.requires_action": "is waiting for tool outputs",
    "run.failed": "failed",
    "run.expired": "expired",
    "run.cancelling_stuck": "is stuck cancelling",
    "run.expiring_soon": "will expire soon while waiting for tool outputs",
    "test": "is a test notification",
}
MAX_TEXT = 1000


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    created: float
    summary: str
    run: dict[str, Any] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict:
        return {
            "id": self.id,
            "type": self.type,
            "created": int(self.created),
            "text": self.slack_text(),
            "summary": self.summary,
            "run": self.run,
            "links": self.links,
        }

    def slack_text(self) -> str:
        """Slack's mrkdwn: &, < and > escaped in what the upstream wrote; links as <url|label>."""
        text = _slack_escape(self.summary)
        if link := self.links.get("run"):
            text += f"\n<{_slack_escape(link)}|Open the run in the dashboard>"
        return text


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def run_event(
    type: str,
    run: Run,
    *,
    connection: str,
    transition: str | int,
    base_url: str,
    created: float | None = None,
    redact=None,
) -> Event:
    """The event for `run` having made the transition `type`.

    `transition` tells this transition apart from the run's others of the same type (a run can wait for
    tool outputs several times): the live state's version, say. `base_url` is the dashboard's own
    (https://dash.example.com) for the links. `redact` (e.g. a shared-view Redactor's `text`) is applied
    to what the upstream wrote (the error message) before it leaves the dashboard.
    """
    if type not in TYPES:
        raise ValueError(f"unknown event type {type!r}")
    redact = redact or (lambda text: text)
    base = base_url.rstrip("/")
    links = {}
    if run.thread_id and run.id:
        try:
            links = {
                "run": base + url_for("run", connection, thread_id=run.thread_id, run_id=run.id),
                "thread": base + url_for("thread", connection, thread_id=run.thread_id),
            }
        except NoReverseMatch:  # an id no URL can hold gets no link, not a lost notification
            links = {}
    error = run.last_error
    pending = [c.name for c in run.pending_calls]
    summary = f"Run {run.id or '(no id)'} {TYPES[type]}"
    if error:
        summary += f": {error.code or 'error'} — {_clip(redact(error.message), 300)}"
    elif pending:
        summary += f" ({', '.join(_clip(name, 60) for name in pending[:5])})"
    summary += "."
    return Event(
        id=f"{type}:{connection}:{run.id}:{transition}"[:200],
        type=type,
        created=time.time() if created is None else created,
        summary=_clip(summary),
        run={
            "connection": connection,
            "thread_id": run.thread_id,
            "id": run.id,
            "status": run.status,
            "assistant_id": run.assistant_id,
            "last_error": {"code": error.code, "message": _clip(redact(error.message))} if error else None,
            "expires_at": run.expires_at,
            "pending_calls": pending,
        },
        links=links,
    )


def trial_event(webhook_name: str, nonce: str, created: float | None = None) -> Event:
    """What "send a test" delivers: the same shape, no run."""
    return Event(
        id=f"test:{nonce}",
        type="test",
        created=time.time() if created is None else created,
        summary=f"This is a test notification from the runs dashboard to “{webhook_name}”.",
    )
