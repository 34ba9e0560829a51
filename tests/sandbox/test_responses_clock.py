"""The responses clock in-process, on an injected time: what is due happens, at the time it was due."""

import json

import pytest

from sandbox import responses_engine as engine
from sandbox import responses_operations as operations
from sandbox.models import Response, ResponseEvent

pytestmark = pytest.mark.django_db

T0 = 1_800_000_000.0


def _start(model: str = "sandbox-answer", **body) -> Response:
    payload = {
        "model": model,
        "input": "Hello",
        "background": True,
        "metadata": {"sandbox_speed": "1"},
        **body,
    }
    return Response.objects.get(pk=operations.create_response(payload, now=T0).pk)


def _events(r: Response) -> list[dict]:
    rows = ResponseEvent.objects.filter(response=r).order_by("sequence_number")
    return [json.loads(data) for data in rows.values_list("data", flat=True)]


def test_a_background_response_waits_in_the_queue_until_its_time():
    r = _start()
    assert engine.advance(r, now=T0 + 0.9).status == "queued"
    assert engine.advance(r, now=T0 + 1.1).status == "in_progress"


def test_transitions_carry_the_time_they_were_due_however_late_they_are_read():
    r = engine.advance(_start(), now=T0 + 3600)
    assert r.status == "completed"
    # queued 1 s, then the message over about 2.4 s: due long before it was read.
    assert T0 + 3 <= r.completed_at <= T0 + 4
    (message,) = r.output_items.all()
    assert T0 + 1 <= message.created_at <= T0 + 2


def test_the_events_are_the_same_however_often_the_response_is_read():
    read_once = engine.advance(_start(), now=T0 + 60)
    read_often = _start()
    for tenth in range(1, 60):
        read_often = engine.advance(read_often, now=T0 + tenth / 10)
    read_often = engine.advance(read_often, now=T0 + 60)

    def shape(r):
        return [(e["sequence_number"], e["type"], e.get("delta")) for e in _events(r)]

    assert shape(read_often) == shape(read_once)
    assert [e["sequence_number"] for e in _events(read_once)] == list(range(len(_events(read_once))))


def test_cancelling_ends_open_items_incomplete_at_the_moment_of_the_cancel():
    r = engine.advance(
        _start("sandbox-slow", metadata={"sandbox_speed": "1", "sandbox_queued_seconds": "0"}), now=T0 + 2
    )
    assert r.status == "in_progress"
    engine.cancel(r, T0 + 2)
    r.refresh_from_db()
    assert r.status == "cancelled" and r.next_due is None and r.usage is not None
    (reasoning,) = r.output_items.all()
    assert reasoning.data["status"] == "incomplete"
    assert _events(r)[-1]["type"] == "response.cancelled"
    assert engine.advance(r, now=T0 + 3600).status == "cancelled"  # nothing more is due


def test_a_response_without_background_is_in_progress_from_the_start():
    r = _start(background=False, stream=True)
    assert r.status == "in_progress"
    assert [e["type"] for e in _events(r)] == ["response.created", "response.in_progress"]
    assert _events(r)[0]["response"]["status"] == "in_progress"
