"""Webhook delivery against a real receiver: signed, retried after a 500, delivered once, logged."""

import logging
import time

import pytest
from asgiref.sync import sync_to_async

from runs_ui.notify.events import Event, run_event, trial_event
from runs_ui.notify.models import WebhookDelivery
from runs_ui.notify.webhooks import ATTEMPTS, EXCERPT_CHARS, deliver, deliver_to, sign, verify
from runs_ui.upstream.objects import Run
from tests.notify.conftest import SECRET, Sleeps


def _event(n: int = 1) -> Event:
    return Event(
        id=f"run.failed:default:run_x:{n}", type="run.failed", created=1764070000, summary="Run failed."
    )


async def test_a_delivery_answered_500_is_retried_and_arrives_once_signed(webhook, receiver):
    receiver.script(500)
    sleeps = Sleeps()
    deliveries = await deliver(_event(), sleep=sleeps)
    assert [r.answered for r in receiver.received] == [500, 200]
    assert all(r.signature_ok for r in receiver.received)
    assert len(receiver.delivered()) == 1
    assert {r.headers["X-Runs-Event-Id"] for r in receiver.received} == {"run.failed:default:run_x:1"}
    assert len(sleeps) == 1 and 1 <= sleeps[0] <= 2  # exponential backoff from 1 s, with jitter
    [delivery] = deliveries
    await delivery.arefresh_from_db()
    assert delivery.status == WebhookDelivery.SUCCEEDED
    assert (delivery.attempts, delivery.http_status, delivery.response_excerpt) == (2, 200, "ok")
    assert delivery.latency_ms is not None and delivery.completed_at is not None


async def test_the_same_event_is_delivered_once_however_often_it_is_sent(webhook, receiver):
    first = await deliver(_event(), sleep=Sleeps())
    again = await deliver(_event(), sleep=Sleeps())
    assert len(first) == 1 and again == []
    assert len(receiver.received) == 1
    assert await WebhookDelivery.objects.acount() == 1


async def test_a_refusal_other_than_429_is_not_retried(webhook, receiver):
    receiver.script(400)
    sleeps = Sleeps()
    delivery = await deliver_to(webhook, _event(), sleep=sleeps)
    assert (delivery.status, delivery.attempts, delivery.http_status) == (WebhookDelivery.FAILED, 1, 400)
    assert sleeps == []


async def test_a_429_waits_as_long_as_the_receiver_asks_up_to_a_cap(webhook, receiver):
    receiver.script(429, 429)
    sleeps = Sleeps()
    delivery = await deliver_to(webhook, _event(), sleep=sleeps)
    assert delivery.status == WebhookDelivery.SUCCEEDED and delivery.attempts == 3
    assert len(sleeps) == 2


async def test_an_unreachable_receiver_is_tried_every_time_then_logged_as_failed(webhook, caplog):
    from tests.processes import free_port

    webhook.url = f"http://127.0.0.1:{free_port()}/nobody"
    sleeps = Sleeps()
    with caplog.at_level(logging.DEBUG):
        delivery = await deliver_to(webhook, _event(), sleep=sleeps)
    assert (delivery.status, delivery.attempts, delivery.http_status) == (
        WebhookDelivery.FAILED,
        ATTEMPTS,
        None,
    )
    assert "ConnectError" in delivery.error
    assert len(sleeps) == ATTEMPTS - 1 and sleeps == sorted(sleeps, key=lambda s: s // 1)
    assert SECRET not in caplog.text and "not delivered" in caplog.text


async def test_a_huge_answer_is_read_only_up_to_the_cap(webhook, receiver):
    receiver.body = b"x" * (5 * 1024 * 1024)
    delivery = await deliver_to(webhook, _event(), sleep=Sleeps())
    assert delivery.status == WebhookDelivery.SUCCEEDED
    assert delivery.response_excerpt == "x" * EXCERPT_CHARS


async def test_the_secret_is_nowhere_but_in_the_signature(webhook, receiver, caplog):
    receiver.script(500, 500)
    with caplog.at_level(logging.DEBUG):
        await deliver_to(webhook, _event(), sleep=Sleeps())
    rows = await sync_to_async(list)(WebhookDelivery.objects.values())
    assert SECRET not in caplog.text and SECRET not in repr(rows)
    assert all(SECRET.encode() not in r.body and SECRET not in repr(r.headers) for r in receiver.received)


def test_a_signature_fails_for_another_body_another_secret_or_an_old_timestamp():
    body, now = b'{"id": "e1"}', time.time()
    header = sign(SECRET, int(now), body)
    assert verify(SECRET, header, body, now=now)
    assert not verify(SECRET, header, body + b" ", now=now)
    assert not verify("another-secret-0123456789", header, body, now=now)
    assert not verify(SECRET, header, body, now=now + 301)  # a replay five minutes later
    assert not verify(SECRET, "garbage", body, now=now)


@pytest.mark.parametrize("status", ["failed", "requires_action"])
async def test_a_run_event_carries_links_the_error_and_a_slack_text(upstream, make_run, wait_for, status):
    script = "fail" if status == "failed" else "functions"
    raw = await sync_to_async(wait_for)(make_run(script), status)
    run = Run.from_json(raw)
    event = run_event(
        f"run.{status}", run, connection="default", transition=3, base_url="https://dash.example.com/"
    )
    body = event.body()
    assert body["id"] == f"run.{status}:default:{run.id}:3"
    assert body["links"]["run"] == f"https://dash.example.com/threads/{run.thread_id}/runs/{run.id}/"
    assert body["run"]["status"] == status
    if status == "failed":
        assert body["run"]["last_error"] == {
            "code": "server_error",
            "message": "Sorry, something went wrong.",
        }
        assert "server_error" in body["text"]
    else:
        assert body["run"]["pending_calls"] == ["get_weather", "get_time"]
    assert body["text"].endswith(f"<{body['links']['run']}|Open the run in the dashboard>")


def test_upstream_text_in_a_slack_text_cannot_make_links_or_mentions():
    run = Run.from_json(
        {
            "id": "run_1",
            "thread_id": "thread_1",
            "status": "failed",
            "last_error": {
                "code": "server_error",
                "message": "<!channel> <https://evil.example|click> & more",
            },
        }
    )
    text = run_event("run.failed", run, connection="default", transition=1, base_url="https://d").slack_text()
    assert "<!channel>" not in text and "<https://evil" not in text
    assert "&lt;!channel&gt; &lt;https://evil.example|click&gt; &amp; more" in text


def test_a_test_event_has_the_same_shape():
    body = trial_event("Ops", "n1", created=5).body()
    assert set(body) == {"id", "type", "created", "text", "summary", "run", "links"}
    assert body["type"] == "test" and body["id"] == "test:n1"


async def test_hostile_upstream_text_is_delivered_as_valid_json(webhook, receiver):
    run = Run.from_json(
        {
            "id": "run_1",
            "thread_id": "thread_1",
            "status": "failed",
            "last_error": {"code": "server_error", "message": "\ud800 \x00 <script>"},
        }
    )
    event = run_event("run.failed", run, connection="default", transition=1, base_url="https://d")
    delivery = await deliver_to(webhook, event, sleep=Sleeps())
    assert delivery.status == WebhookDelivery.SUCCEEDED
    assert receiver.delivered()[0].json["run"]["last_error"]["message"] == "\ud800 \x00 <script>"
