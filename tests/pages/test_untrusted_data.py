"""Upstream objects are untrusted: unknown types and statuses are shown with their names and raw JSON, missing
fields do not crash a page, odd timestamps are shown as sent, and every string is escaped or sanitised.

The sandbox's `azure` script and its seeded hostile thread are real upstream data; respx serves only what
no compliant server sends (unknown statuses, nulls everywhere, contradictory timestamps, hostile markup)."""

import json
import re

import httpx
import pytest
from django.utils.html import escape

from sandbox.wire import page as list_body  # the list envelope as the sandbox sends it
from tests.pages.conftest import (
    HX,
    all_pages,
    assert_inert,
    assert_no_secret,
    json_response,
    step_ids,
    text,
)

T = "thread_fake01"
R = "run_fake01"
NOW = 1_790_000_000

SCRIPT = "<script>alert(1)</script>"


# --- builders (the wire shape, as a server would send it) ---------------------------------------------


def run_json(**fields) -> dict:
    return {
        "id": R,
        "object": "thread.run",
        "created_at": NOW,
        "thread_id": T,
        "assistant_id": "asst_fake01",
        "status": "completed",
        "required_action": None,
        "last_error": None,
        "expires_at": None,
        "started_at": NOW + 1,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": NOW + 5,
        "incomplete_details": None,
        "model": "gpt-4o",
        "instructions": None,
        "tools": [],
        "metadata": {},
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        "temperature": 1.0,
        "top_p": 1.0,
        "max_prompt_tokens": None,
        "max_completion_tokens": None,
        "truncation_strategy": {"type": "auto", "last_messages": None},
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "response_format": "auto",
        **fields,
    }


def step_json(step_id: str, details: dict, **fields) -> dict:
    return {
        "id": step_id,
        "object": "thread.run.step",
        "created_at": NOW + 2,
        "assistant_id": "asst_fake01",
        "thread_id": T,
        "run_id": R,
        "type": details.get("type"),
        "status": "completed",
        "step_details": details,
        "last_error": None,
        "expired_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": NOW + 3,
        "metadata": {},
        "usage": None,
        **fields,
    }


def function_step(step_id: str, name: str, arguments: str, output: str | None) -> dict:
    call = {
        "id": "call_fake01",
        "type": "function",
        "function": {"name": name, "arguments": arguments, "output": output},
    }
    return step_json(step_id, {"type": "tool_calls", "tool_calls": [call]})


def message_json(message_id: str, text_value: str, **fields) -> dict:
    return {
        "id": message_id,
        "object": "thread.message",
        "created_at": NOW + 3,
        "thread_id": T,
        "status": "completed",
        "incomplete_details": None,
        "completed_at": NOW + 3,
        "incomplete_at": None,
        "role": "assistant",
        "content": [{"type": "text", "text": {"value": text_value, "annotations": []}}],
        "assistant_id": "asst_fake01",
        "run_id": R,
        "attachments": [],
        "metadata": {},
        **fields,
    }


@pytest.fixture
def serve(faults):
    """serve(run=…, steps=[…], messages=[…], thread=…): the fake thread and run, answered by respx."""

    def setup(*, run=None, steps=(), messages=(), thread=None, runs=None):
        run = run if run is not None else run_json()
        thread = (
            thread if thread is not None else {"id": T, "object": "thread", "created_at": NOW, "metadata": {}}
        )
        faults.on("GET", rf"/threads/{T}", json_response(200, thread))
        faults.on(
            "GET", rf"/threads/{T}/runs", json_response(200, list_body(runs if runs is not None else [run]))
        )
        faults.on("GET", rf"/threads/{T}/runs/{R}", json_response(200, run))
        faults.on("GET", rf"/threads/{T}/runs/{R}/steps", json_response(200, list_body(list(steps))))
        for step in steps:
            faults.on(
                "GET", rf"/threads/{T}/runs/{R}/steps/{re.escape(step['id'])}", json_response(200, step)
            )
        faults.on("GET", rf"/threads/{T}/messages", json_response(200, list_body(list(messages))))
        for message in messages:
            faults.on(
                "GET", rf"/threads/{T}/messages/{re.escape(message['id'])}", json_response(200, message)
            )
        return faults

    return setup


async def _all_views(client, step_id: str | None = None) -> dict[str, str]:
    """The thread, run and step pages and their partials, each checked to answer 200."""
    urls = {
        "thread": (f"/threads/{T}/", {}),
        "timeline": (f"/threads/{T}/?part=timeline", HX),
        "run": (f"/threads/{T}/runs/{R}/", {}),
        "steps": (f"/threads/{T}/runs/{R}/?part=steps", HX),
    }
    if step_id:
        urls["step"] = (f"/threads/{T}/runs/{R}/steps/{step_id}/", {})
    out = {}
    for name, (url, headers) in urls.items():
        response = await client.get(url, headers=headers)
        assert response.status_code == 200, (name, response.status_code, text(response)[:500])
        out[name] = text(response)
    return out


# --- unknown types and statuses ------------------------------------------------------------------------


async def test_azure_tool_calls_and_steps_the_dashboard_does_not_know_are_shown_with_their_raw_json(
    viewer_client, finished
):
    run = finished("azure")
    html = text(
        await viewer_client.get(f"/threads/{run.thread_id}/runs/{run.run_id}/?part=steps", headers=HX)
    )
    assert len(step_ids(html)) == 3
    # The bing_grounding call: its type name and everything it carried.
    assert '<span class="unknown-type">bing_grounding</span>' in html
    assert escape("https://api.bing.microsoft.com/v7.0/search?q=sandbox+weather") in html
    # The activities step: its type name and details as sent.
    assert (
        '<span class="type unknown-type" title="A step type this dashboard does not know">activities</span>'
        in html
    )
    assert 'Details of type <span class="unknown-type">activities</span>, shown as sent:' in html
    assert escape('"server_label": "docs"') in html and "search_docs" in html
    # The url_citation annotation is listed with its type.
    assert "[1] url citation" in html


async def test_a_run_status_the_dashboard_does_not_know_is_shown_as_sent_with_a_warning(viewer_client, serve):
    serve(run=run_json(status="paused_by_operator", completed_at=None))
    views = await _all_views(viewer_client)
    assert (
        'Status <span class="mono">paused_by_operator</span> is not one this dashboard knows' in views["run"]
    )
    badge = '<span class="badge status-unknown big" title="paused_by_operator">paused by operator</span>'
    assert badge in views["run"]
    assert 'class="badge status-unknown" title="paused_by_operator"' in views["timeline"]


async def test_unknown_step_statuses_tool_calls_and_content_parts_are_shown_not_dropped(viewer_client, serve):
    steps = [
        step_json(
            "step_fake01",
            {
                "type": "tool_calls",
                "tool_calls": [
                    {
                        "id": "call_x",
                        "type": "computer_use",
                        "computer_use": {"action": "click", "x": 10, "y": 20},
                    },
                ],
            },
            status="throttled",
        ),
        step_json("step_fake02", {"type": "reasoning", "reasoning": {"summary": "thought hard"}}),
        step_json(
            "step_fake03", {"type": "message_creation", "message_creation": {"message_id": "msg_fake01"}}
        ),
    ]
    message = message_json(
        "msg_fake01",
        "ignored",
        content=[
            {"type": "text", "text": {"value": "Known part", "annotations": []}},
            {"type": "audio", "audio": {"transcript": "a spoken answer"}},
        ],
    )
    serve(steps=steps, messages=[message])
    views = await _all_views(viewer_client, "step_fake01")
    html = views["steps"]
    assert step_ids(html) == ["step_fake01", "step_fake02", "step_fake03"]
    assert 'class="badge status-unknown" title="throttled">throttled</span>' in html
    assert '<span class="unknown-type">computer_use</span>' in html and escape('"action": "click"') in html
    assert (
        '<span class="type unknown-type" title="A step type this dashboard does not know">reasoning</span>'
        in html
    )
    assert escape('"summary": "thought hard"') in html
    assert "<p>Known part</p>" in html
    assert 'Content of type <span class="unknown-type">audio</span>' in html and "a spoken answer" in html
    assert '<span class="unknown-type">computer_use</span>' in views["step"]


async def test_objects_with_missing_and_null_fields_do_not_crash_any_page(viewer_client, serve):
    bare_run = {
        "id": R,
        "thread_id": T,
        "status": None,
        "created_at": None,
        "usage": None,
        "tools": None,
        "metadata": None,
        "required_action": {"type": "submit_tool_outputs"},
        "last_error": {},
    }
    steps = [
        {"id": "step_fake01"},
        {
            "id": "step_fake02",
            "step_details": None,
            "created_at": "yesterday",
            "usage": {"total_tokens": None},
        },
        {
            "id": "step_fake03",
            "step_details": {"type": "tool_calls", "tool_calls": [{"type": "function"}, None, 7]},
        },
        {"id": "step_fake04", "step_details": {"type": "message_creation", "message_creation": None}},
        {
            "id": "step_fake05",
            "step_details": {
                "type": "tool_calls",
                "tool_calls": [
                    {
                        "id": "call_a",
                        "type": "file_search",
                        "file_search": {"results": [{"score": "high"}, {}]},
                    },
                    {
                        "id": "call_b",
                        "type": "code_interpreter",
                        "code_interpreter": {"outputs": [{"type": "image"}, None]},
                    },
                ],
            },
        },
    ]
    messages = [
        {"id": "msg_fake01", "content": None, "role": None, "created_at": None},
        {"id": "msg_fake02", "content": [{"type": "text", "text": None}, {"type": "image_file"}]},
        {"id": "msg_fake03", "content": "a bare string", "metadata": {"n": 1, "deep": {"x": [1, 2]}}},
    ]
    thread = {"id": T, "metadata": None, "created_at": None, "tool_resources": None}
    serve(run=bare_run, steps=steps, messages=messages, thread=thread)
    views = await _all_views(viewer_client, "step_fake02")
    assert "(missing status)" in views["run"]
    assert step_ids(views["steps"]) == [s["id"] for s in steps]
    assert "(missing type)" in views["steps"]
    assert "a bare string" in views["timeline"]
    assert escape('{"x": [1, 2]}') in views["timeline"]  # a non-string metadata value shown as its JSON
    for name in ("msg_fake01", "msg_fake02", "msg_fake03"):
        assert f'id="{name}"' in views["timeline"]


async def test_out_of_order_timestamps_are_shown_with_a_warning_not_fixed(viewer_client, serve):
    serve(run=run_json(created_at=NOW + 100, started_at=NOW + 50, completed_at=NOW + 40))
    html = (await _all_views(viewer_client))["run"]
    assert "The upstream's timestamps for this run are out of order" in html
    assert re.search(r"<dt>Queued</dt><dd>−50 s</dd>", html)
    assert re.search(r"<dt>In progress</dt><dd>−10 s</dd>", html)
    assert re.search(r"<dt>Total</dt><dd>−1 min 0 s</dd>", html)


async def test_inconsistent_usage_is_shown_as_sent_and_flagged(viewer_client, serve):
    serve(run=run_json(usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 99}))
    html = (await _all_views(viewer_client))["run"]
    assert "10 prompt + 5 completion = 99 tokens" in html
    assert 'title="prompt + completion ≠ total, as sent by the upstream">inconsistent</span>' in html


async def test_timestamps_in_milliseconds_and_absurd_numbers_do_not_crash_any_page(viewer_client, serve):
    """Millisecond timestamps (year 58,000), numbers past what JSON holds exactly, token counts past the
    index's columns: shown as sent (raw JSON), never a 500, and the index keeps what it can."""
    from runs_ui.models import RunSnapshot

    run = run_json(
        created_at=NOW * 1000,
        started_at=10**400,
        completed_at=NOW + 5,
        usage={"prompt_tokens": 3 * 10**9, "completion_tokens": 5, "total_tokens": 10**30},
    )
    serve(run=run, steps=[step_json("step_fake01", {"type": "message_creation"}, created_at=-(10**40))])
    views = await _all_views(viewer_client, "step_fake01")
    assert str(NOW * 1000) in views["run"]  # in the raw JSON, as sent
    snapshot = await RunSnapshot.objects.aget(run_id=R)
    assert snapshot.created_at is None and snapshot.started_at is None
    assert (snapshot.prompt_tokens, snapshot.completion_tokens, snapshot.total_tokens) == (None, 5, None)


async def test_ids_the_upstream_sends_that_are_not_ids_are_never_indexed(viewer_client, serve):
    from runs_ui.models import KnownId, RunSnapshot

    serve(
        runs=[run_json(), run_json(id="", thread_id=""), run_json(id="run_" + "x" * 300)],
        steps=[
            step_json("step_fake01", {"type": "message_creation"}, run_id=None),
            step_json("<b>step</b>", {"type": "message_creation"}),
        ],
        messages=[message_json("msg_fake01", "hi"), message_json("not a message id", "ho")],
    )
    await _all_views(viewer_client, step_id="step_fake01")
    assert [s.run_id async for s in RunSnapshot.objects.all()] == [R]
    known = {(k.object_id, k.run_id) async for k in KnownId.objects.all()}
    # A step that leaves out its run id is where it was listed: in the run of the URL.
    assert known == {("step_fake01", R), ("msg_fake01", R)}


async def test_an_upstream_that_ignores_the_cursor_gets_no_endless_load_more(viewer_client, serve):
    steps = [step_json("step_fake01", {"type": "message_creation"})]
    faults = serve(steps=steps, messages=[message_json("msg_fake01", "hi")])
    # Every page says there is more, and every page is the same.
    same_page_again = json_response(200, list_body(steps, has_more=True))
    faults.rules.insert(0, ("GET", re.compile(rf"/threads/{T}/runs/{R}/steps"), same_page_again))
    first = await viewer_client.get(f"/threads/{T}/runs/{R}/?part=steps", headers=HX)
    assert "after=step_fake01" in first.content.decode()
    again = await viewer_client.get(f"/threads/{T}/runs/{R}/?part=steps&after=step_fake01", headers=HX)
    assert again.status_code == 200
    assert "after=step_fake01" not in again.content.decode()


# --- hostile strings -----------------------------------------------------------------------------------


async def test_the_seeded_hostile_thread_renders_safely_everywhere(viewer_client, seeded):
    thread_id = seeded.threads["hostile"]["id"]
    run = all_pages(seeded.server, f"/threads/{thread_id}/runs")[0]
    views = {
        "thread": await viewer_client.get(f"/threads/{thread_id}/"),
        "timeline": await viewer_client.get(f"/threads/{thread_id}/?part=timeline", headers=HX),
        "run": await viewer_client.get(f"/threads/{thread_id}/runs/{run['id']}/"),
        "steps": await viewer_client.get(f"/threads/{thread_id}/runs/{run['id']}/?part=steps", headers=HX),
    }
    for name, response in views.items():
        assert response.status_code == 200, name
        assert_inert(text(response))
        assert_no_secret(response, seeded.server.api_key)
    thread, timeline, run_page, steps = (text(views[k]) for k in ("thread", "timeline", "run", "steps"))
    assert escape("<script>alert('title')</script> Hostile content") in thread
    assert escape("<img src=x onerror=alert('metadata')>") in thread
    # Messages: HTML in markdown is shown as text, the javascript: link is not a link.
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Is this &lt;b&gt;escaped&lt;/b&gt;?" in timeline
    assert "click me" in timeline
    # The 200 KB message is shown as plain text, escaped.
    assert "&lt;div&gt;big&lt;/div&gt;" in timeline and "<div>big</div>" not in timeline
    # Function arguments and outputs with HTML, escaped inside their <pre>.
    assert escape("<script>alert('args')</script>") in steps
    assert escape("<b>22°C</b><script>alert('output')</script>") in steps
    assert "<b>22°C</b>" not in steps and "<i>C</i>" not in steps
    assert escape("<b>html in metadata</b>") in run_page and "<b>html in metadata</b>" not in run_page


MARKDOWN_ATTACKS = "\n\n".join(
    [
        "[plain](javascript:alert(1))",
        "[mixed case](JaVaScRiPt:alert(2))",
        "[entity](&#106;avascript:alert(3))",
        "[spaced]( javascript:alert(4))",
        "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCg1KTwvc2NyaXB0Pg==)",
        "<a href='javascript:alert(6)'>raw anchor</a>",
        "![pixel](https://tracker.example/p.png) <img src=x onerror=alert(7)>",
        "<iframe src='https://evil.example'></iframe><style>body{display:none}</style>",
        "[fine](https://example.com/docs)",
    ]
)


async def test_markdown_in_messages_is_sanitised_and_only_http_links_are_clickable(viewer_client, serve):
    steps = [
        step_json(
            "step_fake01", {"type": "message_creation", "message_creation": {"message_id": "msg_fake01"}}
        )
    ]
    hostile = message_json(
        "msg_fake01",
        MARKDOWN_ATTACKS,
        content=[
            {"type": "text", "text": {"value": MARKDOWN_ATTACKS, "annotations": []}},
            {"type": "image_url", "image_url": {"url": "javascript:alert(8)"}},
            {"type": "refusal", "refusal": SCRIPT},
        ],
    )
    serve(steps=steps, messages=[hostile])
    views = await _all_views(viewer_client, "step_fake01")
    for name, html in views.items():
        assert_inert(html)
        assert "<iframe" not in html and "<style>body" not in html, name
        assert '<img src="https://tracker.example' not in html, name
    timeline = views["timeline"]
    assert re.search(r'<a href="https://example.com/docs" rel="[^"]*noopener[^"]*">fine</a>', timeline)
    assert "image URL not shown: javascript:alert(8)" in timeline
    assert f"Refused: {escape(SCRIPT)}" in timeline


async def test_html_in_function_arguments_and_a_300_kb_output_are_escaped(viewer_client, serve):
    huge = "<b>" + "x" * 300_000 + "</b>" + SCRIPT
    arguments = json.dumps({"query": '"><img src=x onerror=alert(1)>', "html": SCRIPT})
    serve(steps=[function_step("step_fake01", f"lookup{SCRIPT}", arguments, huge)])
    views = await _all_views(viewer_client, "step_fake01")
    steps = views["steps"]
    for html in views.values():
        assert_inert(html)
    assert f'<span class="name">lookup{escape(SCRIPT)}</span>' in steps
    assert escape('"query": "\\"><img src=x onerror=alert(1)>"') in steps
    assert escape("<b>" + "x" * 300_000 + "</b>") in steps  # shown whole, escaped


async def test_ids_with_markup_from_the_upstream_are_escaped_and_never_linked(viewer_client, serve):
    bad_run = run_json(id='run_x"><script>alert(1)</script>')
    messages = [message_json('msg_"onmouseover="alert(1)', "hi", run_id="run_<b>")]
    serve(runs=[bad_run], messages=messages)
    html = text(await viewer_client.get(f"/threads/{T}/?part=timeline", headers=HX))
    assert_inert(html)
    assert 'onmouseover="alert' not in html
    assert escape('run_x"><script>alert(1)</script>') in html
    # No link leads to a page for an id that is not an id (it would 404 anyway).
    assert not re.search(r'href="[^"]*run_x%22', html)


# --- files ---------------------------------------------------------------------------------------------


FILE_TYPES = [
    ("image/png", True),
    ("image/jpeg; charset=binary", True),
    ("text/html; charset=utf-8", False),
    ("image/svg+xml", False),
    ("application/javascript", False),
    ("application/pdf", False),
    ("", False),
]


async def test_file_content_is_inline_only_for_safe_images(viewer_client, faults, upstream, subtests):
    for content_type, inline in FILE_TYPES:
        with subtests.test(content_type=content_type):
            body = (
                b"\x89PNG\r\n\x1a\n" if "png" in content_type else b"<html><script>alert(1)</script></html>"
            )
            headers = {"content-type": content_type} if content_type else {}
            faults.rules.clear()
            faults.on(
                "GET", r"/files/file-fake01/content", httpx.Response(200, content=body, headers=headers)
            )
            response = await viewer_client.get("/files/file-fake01/content")
            assert response.status_code == 200
            assert response.content == body
            assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
            assert response["X-Content-Type-Options"] == "nosniff"
            assert "html" not in response["Content-Type"] and "javascript" not in response["Content-Type"]
            if inline:
                assert response["Content-Type"] == content_type.split(";")[0]
                assert "Content-Disposition" not in response
            else:
                assert response["Content-Type"] == "application/octet-stream"
                assert response["Content-Disposition"] == 'attachment; filename="file-fake01"'
            assert_no_secret(response, upstream.api_key)


async def test_a_file_too_large_to_show_is_refused_with_a_page(viewer_client, faults, upstream):
    faults.on(
        "GET",
        r"/files/file-fake01/content",
        httpx.Response(
            200,
            content=b"x" * 10,
            headers={"content-type": "image/png", "content-length": str(50 * 1024 * 1024)},
        ),
    )
    response = await viewer_client.get("/files/file-fake01/content")
    assert response.status_code == 502
    assert "The file is too large to show." in text(response)
