"""Any string JSON can carry, through every path: pages, partials, exports, audit records, index rows.

Lone surrogates (a truncated emoji) cannot be encoded; PostgreSQL refuses NUL in text and jsonb. The
upstream here sends them as real servers do, as JSON escapes, with control characters and a 100 KB line;
respx serves them (the sandbox stores what it is sent, so it cannot hold them on PostgreSQL). Run this file
on PostgreSQL too (DATABASE_URL): that is where a NUL used to answer 500.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest
from django.test import AsyncClient
from django.utils.html import escape

from runs_ui.models import AuditRecord, KnownId, RunSnapshot, ThreadEntry
from tests.actions.conftest import post_form, records
from tests.pages.conftest import HX, downloaded, text
from tests.pages.test_untrusted_data import NOW, R, T, function_step, message_json, run_json

CONTROL = "".join(chr(c) for c in range(1, 32)) + "\x7f\x85\u2028\u2029"
#: Every case in one string, as the upstream means it (json.loads of what it sends).
HOSTILE = f"half \ud83d, low \ude00, NUL \u0000, controls {CONTROL}, a long line {'y' * 100_000} end"
#: …and as the dashboard shows it: one marker per character that cannot be shown or stored.
SHOWN = HOSTILE.replace("\ud83d", "�").replace("\ude00", "�").replace("\u0000", "␀")


def sent(body) -> httpx.Response:
    """JSON as servers send it: non-ASCII as escapes (httpx itself would refuse a lone surrogate)."""
    return httpx.Response(
        200, content=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )


def serve_sent(faults, *, run: dict, steps=(), messages=(), thread: dict | None = None):
    """The fake thread and run (test_untrusted_data's ids), answered as `sent` bodies."""
    from sandbox.wire import page as list_body

    thread = thread or {"id": T, "object": "thread", "created_at": NOW, "metadata": {}}
    faults.on("GET", rf"/threads/{T}", sent(thread))
    faults.on("GET", rf"/threads/{T}/runs", sent(list_body([run])))
    faults.on("GET", rf"/threads/{T}/runs/{R}", sent(run))
    faults.on("GET", rf"/threads/{T}/runs/{R}/steps", sent(list_body(list(steps))))
    for step in steps:
        faults.on("GET", rf"/threads/{T}/runs/{R}/steps/{step['id']}", sent(step))
    faults.on("GET", rf"/threads/{T}/messages", sent(list_body(list(messages))))
    for message in messages:
        faults.on("GET", rf"/threads/{T}/messages/{message['id']}", sent(message))
    return faults


@pytest.fixture
def hostile(faults):
    """The hostile string in the thread's and run's metadata (a key too), the run's model, a message, and
    a function call's arguments and output."""
    return serve_sent(
        faults,
        run=run_json(status="in_progress", model=HOSTILE, metadata={"note": HOSTILE, "k\u0000ey": "v"}),
        steps=[function_step("step_fake01", "lookup", json.dumps({"q": HOSTILE}), HOSTILE)],
        messages=[message_json("msg_fake01", HOSTILE)],
        thread={"id": T, "object": "thread", "created_at": NOW, "metadata": {"note": HOSTILE}},
    )


def assert_shown(html: str) -> None:
    """A page with the markers for what could not be shown, and the escapes in its raw JSON views."""
    assert "\x00" not in html
    assert escape(SHOWN[:60]) in html
    assert "y" * 100_000 in html
    assert "\\ud83d" in html and "\\u0000" in html  # the raw JSON view, exactly as sent


PAGES = {
    "thread": (f"/threads/{T}/", {}),
    "timeline": (f"/threads/{T}/?part=timeline", HX),
    "run": (f"/threads/{T}/runs/{R}/", {}),
    "run header": (f"/threads/{T}/runs/{R}/?part=header", HX),
    "steps": (f"/threads/{T}/runs/{R}/?part=steps", HX),
    "step": (f"/threads/{T}/runs/{R}/steps/step_fake01/", {}),
}


@pytest.mark.parametrize(("url", "headers"), PAGES.values(), ids=PAGES.keys())
async def test_every_page_and_partial_shows_any_string_with_markers_and_exact_raw_json(
    viewer_client, hostile, url, headers
):
    response = await viewer_client.get(url, headers=headers)

    assert response.status_code == 200, text(response)[:500]
    html = response.content.decode("utf-8")
    assert "\x00" not in html
    assert "�" in html or "␀" in html


async def test_the_run_page_and_its_steps_show_every_case(viewer_client, hostile):
    run_page = (await viewer_client.get(f"/threads/{T}/runs/{R}/")).content.decode()
    steps = (await viewer_client.get(f"/threads/{T}/runs/{R}/?part=steps", headers=HX)).content.decode()

    assert_shown(run_page)
    assert_shown(steps)
    assert "k␀ey" in run_page


async def test_exports_are_valid_json_holding_exactly_what_was_sent(viewer_client, hostile):
    run_file = await downloaded(await viewer_client.get(f"/threads/{T}/runs/{R}/export.json"))
    thread_file = await downloaded(await viewer_client.get(f"/threads/{T}/export.json"))

    for exported in (run_file, thread_file["runs"][0]):
        assert exported["run"]["metadata"] == {"note": HOSTILE, "k\u0000ey": "v"}
        call = exported["steps"][0]["step_details"]["tool_calls"][0]["function"]
        assert call["output"] == HOSTILE and json.loads(call["arguments"]) == {"q": HOSTILE}
    assert thread_file["thread"]["metadata"] == {"note": HOSTILE}
    assert thread_file["messages"][0]["content"][0]["text"]["value"] == HOSTILE
    assert run_file["complete"] is True and thread_file["complete"] is True


async def test_index_rows_hold_safe_text(viewer_client, hostile):
    await viewer_client.get(f"/threads/{T}/")
    await viewer_client.get(f"/threads/{T}/?part=timeline", headers=HX)
    await viewer_client.get(f"/threads/{T}/runs/{R}/?part=steps", headers=HX)

    entry = await ThreadEntry.objects.aget(thread_id=T)
    snapshot = await RunSnapshot.objects.aget(run_id=R)
    assert entry.metadata == {"note": SHOWN}
    assert snapshot.metadata == {"note": SHOWN, "k␀ey": "v"}
    assert snapshot.model == SHOWN[:200]
    assert entry.latest_model == SHOWN[:200]
    assert {k.object_id async for k in KnownId.objects.all()} == {"step_fake01", "msg_fake01"}


async def test_a_status_holding_a_nul_is_indexed_as_an_unknown_status(viewer_client, faults):
    serve_sent(faults, run=run_json(status="done\u0000"))

    response = await viewer_client.get(f"/threads/{T}/runs/{R}/")

    assert response.status_code == 200
    assert (await RunSnapshot.objects.aget(run_id=R)).status == "done␀"


async def test_audit_records_hold_safe_text_of_the_run_and_of_the_upstreams_words(operator_client, hostile):
    # Editing the metadata keeps what it was before, hostile as it came.
    hostile.on("POST", rf"/threads/{T}/runs/{R}", sent(run_json(metadata={"owner": "ops"})))
    saved = await post_form(
        operator_client, f"/threads/{T}/runs/{R}/metadata/", {"key_0": "owner", "value_0": "ops"}
    )
    # A cancel the upstream refuses in words that hold every case.
    refusal = {"error": {"message": HOSTILE[:300], "type": "invalid_request_error", "code": None}}
    hostile.on(
        "POST",
        rf"/threads/{T}/runs/{R}/cancel",
        httpx.Response(
            400, content=json.dumps(refusal).encode(), headers={"content-type": "application/json"}
        ),
    )
    refused = await post_form(operator_client, f"/threads/{T}/runs/{R}/cancel/", {"reason": "stop"})

    assert saved.status_code == 302
    assert refused.status_code == 400
    edit, cancel = await records()
    assert edit.outcome == AuditRecord.SUCCEEDED
    assert edit.payload["before"] == {"note": SHOWN, "k␀ey": "v"}
    assert cancel.outcome == AuditRecord.FAILED
    assert SHOWN[:200] in cancel.upstream_message
    assert "\x00" not in cancel.upstream_message


async def test_threads_registered_with_hostile_metadata_are_indexed_safely(transactional_db, settings):
    settings.INDEX_API_TOKEN = "t" * 40
    client = AsyncClient()
    body = json.dumps({"thread_ids": ["thread_reg01"], "metadata": {"who\u0000": "half \ud83d"}})

    response = await client.post(
        "/api/threads/",
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {settings.INDEX_API_TOKEN}"},
    )

    assert response.status_code == 201, response.content
    entry = await ThreadEntry.objects.aget(thread_id="thread_reg01")
    assert entry.metadata == {"who␀": "half �"}
    assert re.fullmatch(r"thread_reg01", entry.thread_id)
