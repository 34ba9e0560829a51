"""Delivering events to outgoing webhooks: signed, retried with backoff, logged, never blocking the loop.

Signature (docs/WEBHOOKS.md), as Stripe and Slack do it, so a captured request cannot be replayed later:

    X-Runs-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>
    X-Runs-Event-Id: <event id>      (the same on every retry of one event: drop repeats by it)

A receiver recomputes the HMAC over the raw body with the shared secret, compares in constant time, and
refuses a timestamp more than 5 minutes from its clock (`verify` below does exactly that). Each attempt is
signed afresh with its own timestamp.

    await deliver(event)                       # every enabled webhook, concurrently
    await deliver_to(webhook, event)           # one; returns its WebhookDelivery (or None: already sent)
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass

import httpx
from django.db import IntegrityError
from django.utils import timezone
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from ..connections import decrypt_key
from .events import Event
from .models import Webhook, WebhookDelivery

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Runs-Signature"
EVENT_HEADER = "X-Runs-Event-Id"
TOLERANCE_SECONDS = 300
ATTEMPTS = 5
#: Backoff between attempts: 1, 2, 4, 8 s (+ up to 1 s jitter), and never more than this.
MAX_WAIT = 60.0
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
#: A receiver's answer is read up to this many bytes (the log keeps an excerpt of it).
MAX_RESPONSE_BYTES = 64 * 1024
EXCERPT_CHARS = 500
USER_AGENT = "runs-dashboard-webhooks/1"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(
    secret: str, header: str, body: bytes, *, now: float, tolerance: float = TOLERANCE_SECONDS
) -> bool:
    """What a receiver does: the signature matches the body and the timestamp is recent."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), f"t={timestamp},v1={parts.get('v1', '')}")


@dataclass
class Outcome:
    """One attempt: the receiver's status (None when no answer came), how long, what it said."""

    status: int | None
    latency_ms: int
    excerpt: str = ""
    error: str = ""

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def worth_retrying(self) -> bool:
        # No answer, a server error, or "too many requests" / "timeout": another try may land. Other 4xx
        # (and redirects, which are not followed) will not change by themselves.
        return self.status is None or self.status >= 500 or self.status in (408, 429)


class _Retry(Exception):
    def __init__(self, outcome: Outcome, retry_after: float | None):
        self.outcome, self.retry_after = outcome, retry_after


_exponential = wait_exponential_jitter(initial=1, max=MAX_WAIT, jitter=1)


def _wait(state) -> float:
    """Exponential backoff with jitter, or longer when the receiver said so (Retry-After), capped."""
    exponential = _exponential(state)
    exc = state.outcome.exception() if state.outcome else None
    hinted = getattr(exc, "retry_after", None) or 0.0
    return min(max(exponential, hinted), MAX_WAIT)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: the exponential wait will do


async def _post(client: httpx.AsyncClient, url: str, body: bytes, secret: str, event_id: str, clock):
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: sign(secret, int(clock()), body),
        EVENT_HEADER: event_id,
    }
    started = time.monotonic()
    try:
        async with client.stream("POST", url, content=body, headers=headers) as response:
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size >= MAX_RESPONSE_BYTES:
                    break  # the rest is not read: a receiver cannot make us hold megabytes
            text = b"".join(chunks)[:MAX_RESPONSE_BYTES].decode("utf-8", "replace")
            outcome = Outcome(response.status_code, _ms(started), text[:EXCERPT_CHARS])
            return outcome, _retry_after(response)
    except httpx.TimeoutException:
        return Outcome(None, _ms(started), error="no answer in time"), None
    except httpx.HTTPError as exc:
        # The exception's text names the host, never the headers (so never the signature).
        return Outcome(None, _ms(started), error=f"{type(exc).__name__}: {exc}"[:500]), None


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


async def deliver_to(
    webhook: Webhook,
    event: Event,
    *,
    sleep=asyncio.sleep,
    clock=time.time,
    client: httpx.AsyncClient | None = None,
    attempts: int = ATTEMPTS,
) -> WebhookDelivery | None:
    """Deliver `event` to one webhook, retrying with backoff; the delivery log row, or None when this
    event was already delivered (or is being delivered) to it — by this process or another."""
    try:
        delivery = await WebhookDelivery.objects.acreate(
            webhook=webhook, event_id=event.id, event_type=event.type
        )
    except IntegrityError:
        return None
    # ASCII JSON: a lone surrogate from an upstream string becomes "\ud800", not an encoding error.
    body = json.dumps(event.body()).encode()
    secret = decrypt_key(webhook.secret_encrypted)
    own_client = client is None
    client = client or httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False)
    try:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=_wait,
            retry=retry_if_exception_type(_Retry),
            sleep=sleep,
            reraise=True,
        )
        outcome = None
        try:
            async for attempt in retrying:
                with attempt:
                    outcome, retry_after = await _post(client, webhook.url, body, secret, event.id, clock)
                    await _log_attempt(delivery, outcome)
                    if not outcome.delivered and outcome.worth_retrying:
                        raise _Retry(outcome, retry_after)
        except _Retry:
            pass  # attempts used up: the log says what the last one got
    finally:
        if own_client:
            await client.aclose()
    delivery.status = WebhookDelivery.SUCCEEDED if outcome and outcome.delivered else WebhookDelivery.FAILED
    delivery.completed_at = timezone.now()
    await delivery.asave(update_fields=["status", "completed_at"])
    if delivery.status == WebhookDelivery.FAILED:
        log.warning(
            "Webhook %s (#%s): %s not delivered after %s attempts (last: %s)",
            webhook.name,
            webhook.pk,
            event.type,
            delivery.attempts,
            delivery.http_status or delivery.error,
        )
    return delivery


async def _log_attempt(delivery: WebhookDelivery, outcome: Outcome) -> None:
    delivery.attempts += 1
    delivery.http_status = outcome.status
    delivery.latency_ms = outcome.latency_ms
    delivery.response_excerpt = outcome.excerpt
    delivery.error = outcome.error
    await delivery.asave(update_fields=["attempts", "http_status", "latency_ms", "response_excerpt", "error"])


async def deliver(event: Event, **options) -> list[WebhookDelivery]:
    """Deliver `event` to every enabled webhook, concurrently; the deliveries made by this call."""
    webhooks = [w async for w in Webhook.objects.filter(enabled=True)]
    results = await asyncio.gather(*(deliver_to(w, event, **options) for w in webhooks))
    return [d for d in results if d is not None]
