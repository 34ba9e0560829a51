"""The run page: everything the Run object says, its steps (paged), step deep links, export and files."""

import json
import re
import time
from datetime import UTC, datetime

from django.utils.html import escape

from tests.pages.conftest import (
    HX,
    all_pages,
    assert_fragment,
    assert_full_page,
    downloaded,
    load_more_url,
    step_ids,
    text,
    wait_terminal,
)


def _time(ts: int) -> str:
    """How a timestamp appears in the markup: a <time> with its ISO moment (the viewer's JS localises it)."""
    return f'<time datetime="{datetime.fromtimestamp(ts, tz=UTC).isoformat()}"'


def _dd(html: str, label: str) -> str:
    """The <dd> that follows a <dt>label</dt> (whitespace-normalised)."""
    match = re.search(rf"<dt>{re.escape(label)}</dt>\s*<dd>(.*?)</dd>", html, re.S)
    assert match, f"no {label!r} on the page"
    return " ".join(match.group(1).split())


def _pretty(arguments: str) -> str:
    """Function arguments as the page shows them: the JSON text parsed and indented, unicode as is."""
    return json.dumps(json.loads(arguments), indent=2, ensure_ascii=False)


def _wait_status(api, thread_id, run_id, status, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        run = api("GET", f"/threads/{thread_id}/runs/{run_id}")
        if run["status"] == status:
            return run
        assert time.monotonic() < deadline, f"{run_id} is {run['status']}, not {status}"
        time.sleep(0.02)


async def test_it_shows_every_field_of_a_run_waiting_for_tool_outputs(viewer_client, api):
    assistant = api(
        "POST",
        "/assistants",
        json={"model": "gpt-4o", "name": "Weather bot", "metadata": {"sandbox_script": "functions"}},
    )
    thread = api("POST", "/threads", json={})
    created = api(
        "POST",
        f"/threads/{thread['id']}/runs",
        json={
            "assistant_id": assistant["id"],
            "model": "gpt-4o-mini",
            "instructions": "Answer in French, briefly. Never guess the weather.",
            "tools": [
                {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
                {"type": "code_interpreter"},
            ],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "response_format": {"type": "json_object"},
            "truncation_strategy": {"type": "last_messages", "last_messages": 7},
            "temperature": 0.3,
            "top_p": 0.9,
            "max_prompt_tokens": 4096,
            "max_completion_tokens": 1024,
            "parallel_tool_calls": False,
            "metadata": {"customer": "ACME-42", "sandbox_speed": "200", "sandbox_expires_seconds": "99999"},
            "additional_messages": [{"role": "user", "content": "Weather?"}],
        },
    )
    run = _wait_status(api, thread["id"], created["id"], "requires_action")

    response = await viewer_client.get(f"/threads/{thread['id']}/runs/{run['id']}/")
    assert response.status_code == 200
    html = text(response)
    assert 'title="requires_action">requires action</span>' in html
    assert _dd(html, "Model") == "gpt-4o-mini"
    assert "Weather bot" in _dd(html, "Assistant") and assistant["id"] in _dd(html, "Assistant")
    assert "Answer in French, briefly. Never guess the weather." in _dd(html, "Instructions")
    tools = _dd(html, "Tools")
    assert 'function <span class="mono">get_weather</span>' in tools and "code_interpreter" in tools
    assert escape('"name": "get_weather"') in _dd(html, "Tool choice")
    assert escape('"type": "json_object"') in _dd(html, "Response format")
    assert escape('"last_messages": 7') in _dd(html, "Truncation")
    assert _dd(html, "Temperature") == "0.3" and _dd(html, "Top p") == "0.9"
    assert _dd(html, "Max prompt tokens") == "4096" and _dd(html, "Max completion tokens") == "1024"
    assert _dd(html, "Parallel tool calls") == "no"
    assert "<dt>customer</dt><dd>ACME-42</dd>" in html
    # The pending calls, each with its name, id and arguments as pretty JSON.
    pending = run["required_action"]["submit_tool_outputs"]["tool_calls"]
    banner = html[html.index(f'id="required-action-{run["id"]}"') :]
    for call in pending:
        assert call["id"] in banner and f'<span class="name">{call["function"]["name"]}</span>' in banner
        assert escape(_pretty(call["function"]["arguments"])) in banner
    # Timestamps as <time> elements (absolute, UTC in the markup), durations while it is still going.
    assert _time(run["created_at"]) in _dd(html, "Created")
    assert _time(run["started_at"]) in _dd(html, "Started")
    assert _time(run["expires_at"]) in _dd(html, "Expires")
    assert "so far" in _dd(html, "In progress") and "so far" in _dd(html, "Total")
    assert "not reported yet" in _dd(html, "Usage")
    # The raw JSON of the run, for anything not drawn above.
    assert escape('"object": "thread.run"') in html


async def test_it_shows_the_usage_and_durations_of_a_finished_run(viewer_client, finished, api):
    run = finished("answer", speed=200)
    body = api("GET", f"/threads/{run.thread_id}/runs/{run.run_id}")
    usage = body["usage"]
    html = text(await viewer_client.get(f"/threads/{run.thread_id}/runs/{run.run_id}/"))
    assert _dd(html, "Usage") == (
        f"{usage['prompt_tokens']} prompt + {usage['completion_tokens']} completion = "
        f"{usage['total_tokens']} tokens"
    )
    assert "inconsistent" not in _dd(html, "Usage")
    assert _time(body["completed_at"]) in _dd(html, "Completed")
    # Whole-second timestamps a few seconds apart at most: "N s", computed from the run's own times.
    assert _dd(html, "Queued") == f"{body['started_at'] - body['created_at']} s"
    assert _dd(html, "Total") == f"{body['completed_at'] - body['created_at']} s"
    assert "so far" not in _dd(html, "Total")


async def test_it_shows_the_last_error_of_a_failed_run(viewer_client, finished, api):
    run = finished("fail")
    body = api("GET", f"/threads/{run.thread_id}/runs/{run.run_id}")
    error = body["last_error"]
    html = text(await viewer_client.get(f"/threads/{run.thread_id}/runs/{run.run_id}/"))
    assert f'<div class="banner error"><strong>{error["code"]}</strong>: {error["message"]}</div>' in html
    assert _time(body["failed_at"]) in _dd(html, "Failed")  # the end is labelled by how it ended


async def test_it_shows_why_a_run_is_incomplete(viewer_client, finished):
    run = finished("incomplete")
    html = text(await viewer_client.get(f"/threads/{run.thread_id}/runs/{run.run_id}/"))
    assert "Incomplete: max completion tokens." in html


async def test_it_shows_how_long_a_run_waited_for_tool_outputs(viewer_client, seeded):
    # The seeded "functions-done" run waited for outputs for several seconds before they were submitted.
    thread_id = seeded.threads["functions-done"]["id"]
    run = all_pages(seeded.server, f"/threads/{thread_id}/runs")[0]
    steps = all_pages(seeded.server, f"/threads/{thread_id}/runs/{run['id']}/steps")
    tool_step = next(s for s in steps if s["type"] == "tool_calls")
    waited = tool_step["completed_at"] - tool_step["created_at"]
    assert waited > 0
    page = text(await viewer_client.get(f"/threads/{thread_id}/runs/{run['id']}/"))
    assert _dd(page, "Waiting for tool outputs") == f"{waited} s"


# --- steps ------------------------------------------------------------------------------------------


async def test_the_steps_partial_shows_a_message_step_with_its_text_as_markdown(viewer_client, finished):
    run = finished("answer")
    response = await viewer_client.get(f"/threads/{run.thread_id}/runs/{run.run_id}/?part=steps", headers=HX)
    assert_fragment(response)
    html = text(response)
    assert '<span class="type">Message</span>' in html
    # The sandbox's answer: bold topic, a list and a fenced code block, rendered (not shown as markdown).
    assert "<strong>Hello</strong>" in html and "<li>The sandbox answers without a model" in html
    assert "<code>" in html and "def answer():" in html


async def test_the_steps_partial_shows_function_names_pretty_arguments_and_outputs(
    viewer_client, make_run, api, upstream
):
    run = make_run("functions", speed=200, sandbox_expires_seconds=99999)
    waiting = _wait_status(api, run.thread_id, run.run_id, "requires_action")
    calls = waiting["required_action"]["submit_tool_outputs"]["tool_calls"]
    url = f"/threads/{run.thread_id}/runs/{run.run_id}/?part=steps"
    before = text(await viewer_client.get(url, headers=HX))
    for call in calls:
        assert f'<span class="name">{call["function"]["name"]}</span>' in before
        assert escape(_pretty(call["function"]["arguments"])) in before
    assert "No output yet — the run is waiting for it." in before

    outputs = [
        {"tool_call_id": c["id"], "output": json.dumps({"answer": f"<{c['function']['name']}>", "n": 1})}
        for c in calls
    ]
    api(
        "POST",
        f"/threads/{run.thread_id}/runs/{run.run_id}/submit_tool_outputs",
        json={"tool_outputs": outputs},
    )
    wait_terminal(upstream, run.thread_id, run.run_id)
    after = text(await viewer_client.get(url, headers=HX))
    for call in calls:
        pretty = json.dumps({"answer": f"<{call['function']['name']}>", "n": 1}, indent=2)
        assert f"<h4>Output</h4><pre>{escape(pretty)}</pre>" in after
    assert "No output yet" not in after


async def test_the_steps_partial_shows_code_input_logs_and_the_image(viewer_client, finished, api):
    run = finished("code")
    steps = api("GET", f"/threads/{run.thread_id}/runs/{run.run_id}/steps", params={"order": "asc"})["data"]
    call = steps[0]["step_details"]["tool_calls"][0]["code_interpreter"]
    image = next(o for o in call["outputs"] if o["type"] == "image")["image"]["file_id"]
    html = text(
        await viewer_client.get(f"/threads/{run.thread_id}/runs/{run.run_id}/?part=steps", headers=HX)
    )
    assert f"<h4>Input</h4><pre><code>{escape(call['input'])}</code></pre>" in html
    assert "<h4>Logs</h4><pre>60 Q4\n</pre>" in html
    assert f'<img class="code-image" src="/files/{image}/content"' in html
    # The image is served through the dashboard (with the server's key), inline, as a PNG.
    picture = await viewer_client.get(f"/files/{image}/content")
    assert picture.status_code == 200 and picture["Content-Type"] == "image/png"
    assert picture.content.startswith(b"\x89PNG") and "Content-Disposition" not in picture


async def test_file_search_results_show_scores_and_content_only_on_request(viewer_client, finished, api):
    run = finished("search")
    steps = api("GET", f"/threads/{run.thread_id}/runs/{run.run_id}/steps", params={"order": "asc"})["data"]
    step = next(s for s in steps if s["type"] == "tool_calls")
    results = step["step_details"]["tool_calls"][0]["file_search"]["results"]
    html = text(
        await viewer_client.get(f"/threads/{run.thread_id}/runs/{run.run_id}/?part=steps", headers=HX)
    )
    for result in results:
        assert result["file_name"] in html and f"{result['score']:.3f}" in html
    assert "ranker default_2024_08_21, threshold 0.5" in html
    assert html.count("not fetched") == len(results)
    step_url = f"/threads/{run.thread_id}/runs/{run.run_id}/steps/{step['id']}/"
    assert f'hx-get="{step_url}?include=content&part=step"' in html

    with_content = api(
        "GET",
        f"/threads/{run.thread_id}/runs/{run.run_id}/steps/{step['id']}",
        params={"include[]": "step_details.tool_calls[*].file_search.results[*].content"},
    )
    texts = [
        part["text"]
        for r in with_content["step_details"]["tool_calls"][0]["file_search"]["results"]
        for part in r["content"]
    ]
    partial = await viewer_client.get(f"{step_url}?include=content&part=step", headers=HX)
    assert_fragment(partial)
    shown = text(partial)
    assert "not fetched" not in shown and "Show result content" not in shown
    for content in texts:
        assert f"<pre>{escape(content)}</pre>" in shown
    # The citations of the answer are listed under the message, numbered, with their file ids.
    assert '<ol class="citations"><li>[1] file citation' in html


async def test_a_run_of_250_steps_pages_through_in_pages_of_at_most_100_showing_every_step_once(
    viewer_client, make_run, upstream
):
    run = make_run("long", speed=100, sandbox_steps=250)
    wait_terminal(upstream, run.thread_id, run.run_id)
    expected = [s["id"] for s in all_pages(upstream, f"/threads/{run.thread_id}/runs/{run.run_id}/steps")]
    assert len(expected) == 250
    base = f"/threads/{run.thread_id}/runs/{run.run_id}/"
    url, seen, pages = f"{base}?part=steps", [], 0
    while url:
        html = text(await viewer_client.get(url if url.startswith("/") else base + url, headers=HX))
        page = step_ids(html)
        assert 0 < len(page) <= 100
        seen += page
        pages += 1
        url = load_more_url(html)
        # Every message step of the page shows its message's text, whichever page it is on.
        numbers = re.findall(r"<p>Step (\d+): a short note.</p>", html)
        assert numbers == [str(i) for i in range(len(seen) - len(page), len(seen)) if i % 4 == 0]
    assert pages == 3
    assert seen == expected


async def test_a_run_with_600_steps_shows_its_first_100_with_a_working_load_more_link(
    viewer_client, make_run, upstream
):
    run = make_run("long", speed=100, sandbox_steps=600)
    wait_terminal(upstream, run.thread_id, run.run_id)
    base = f"/threads/{run.thread_id}/runs/{run.run_id}/"
    page = await viewer_client.get(base)
    assert page.status_code == 200 and step_ids(text(page)) == []  # the shell: steps come lazily
    first = text(await viewer_client.get(f"{base}?part=steps&waterfall=1", headers=HX))
    first_ids = step_ids(first)
    assert len(first_ids) == 100
    more = load_more_url(first)
    assert more.startswith(f"?part=steps&after={first_ids[-1]}") and "waterfall=1" in more
    assert f'<a href="?part=steps&amp;after={first_ids[-1]}' in first  # also a plain link
    # The waterfall gets one bar per step of the page, out of band.
    assert first.count('class="wf-row"') == 100 and 'hx-swap-oob="beforeend:#waterfall-' in first
    second = text(await viewer_client.get(base + more, headers=HX))
    second_ids = step_ids(second)
    assert len(second_ids) == 100 and not set(second_ids) & set(first_ids)
    expected = [
        s["id"]
        for s in upstream.request(
            "GET",
            f"/threads/{run.thread_id}/runs/{run.run_id}/steps",
            params={"limit": 100, "order": "asc", "after": first_ids[-1]},
        ).json()["data"]
    ]
    assert second_ids == expected


async def test_the_steps_partial_of_a_run_without_steps_says_so(viewer_client, make_run):
    run = make_run("answer", speed=0.01)  # still queued for minutes
    html = text(
        await viewer_client.get(f"/threads/{run.thread_id}/runs/{run.run_id}/?part=steps", headers=HX)
    )
    assert "No steps yet." in html and load_more_url(html) == ""


# --- step page ----------------------------------------------------------------------------------------


async def test_a_step_has_its_own_page_linking_back_to_its_run_and_thread(viewer_client, finished, api):
    run = finished("code")
    step = api("GET", f"/threads/{run.thread_id}/runs/{run.run_id}/steps", params={"order": "asc"})["data"][0]
    response = await viewer_client.get(f"/threads/{run.thread_id}/runs/{run.run_id}/steps/{step['id']}/")
    assert response.status_code == 200
    assert_full_page(response)
    html = text(response)
    assert f'<li class="step" id="{step["id"]}"' in html
    assert f'href="/threads/{run.thread_id}/runs/{run.run_id}/#{step["id"]}"' in html
    assert f'href="/threads/{run.thread_id}/"' in html
    assert escape(f'"id": "{step["id"]}"') in html  # raw JSON
    assert "code interpreter" in html


async def test_a_deep_link_to_a_late_step_opens_the_run_page_at_that_step(viewer_client, make_run, upstream):
    run = make_run("long", speed=100, sandbox_steps=120)
    wait_terminal(upstream, run.thread_id, run.run_id)
    steps = [s["id"] for s in all_pages(upstream, f"/threads/{run.thread_id}/runs/{run.run_id}/steps")]
    base = f"/threads/{run.thread_id}/runs/{run.run_id}/"
    html = text(await viewer_client.get(f"{base}steps/{steps[110]}/"))
    link = f'href="{base}?after={steps[109]}#{steps[110]}"'
    assert link in html  # "see it among the run's steps": the run's list, starting at this step
    page = text(await viewer_client.get(f"{base}?after={steps[109]}"))
    loader = re.search(r'<li class="loader" hx-get="([^"]+)" hx-trigger="load"', page).group(1)
    shown = step_ids(text(await viewer_client.get(base + loader.replace("&amp;", "&"), headers=HX)))
    assert shown == steps[110:]


async def test_a_message_step_page_shows_the_message_it_created(viewer_client, finished, api):
    run = finished("answer")
    step = api("GET", f"/threads/{run.thread_id}/runs/{run.run_id}/steps")["data"][0]
    html = text(await viewer_client.get(f"/threads/{run.thread_id}/runs/{run.run_id}/steps/{step['id']}/"))
    assert "<strong>Hello</strong>" in html


async def test_a_file_search_step_page_includes_result_content_when_asked(viewer_client, finished, api):
    run = finished("search")
    steps = api("GET", f"/threads/{run.thread_id}/runs/{run.run_id}/steps", params={"order": "asc"})["data"]
    step = next(s for s in steps if s["type"] == "tool_calls")
    url = f"/threads/{run.thread_id}/runs/{run.run_id}/steps/{step['id']}/"
    plain = text(await viewer_client.get(url))
    assert "not fetched" in plain and "Customers may return any item" not in plain
    assert '<a href="?include=content">Include file-search content</a>' in plain
    included = await viewer_client.get(url + "?include=content")
    assert_full_page(included)
    assert "Customers may return any item within 30 days" in text(included)
    assert '<a href="?">Hide file-search content</a>' in text(included)


# --- export -------------------------------------------------------------------------------------------


async def test_a_run_exports_as_json_with_every_step_and_message(viewer_client, make_run, upstream):
    run = make_run("long", speed=100, sandbox_steps=230)
    wait_terminal(upstream, run.thread_id, run.run_id)
    response = await viewer_client.get(f"/threads/{run.thread_id}/runs/{run.run_id}/export.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == f'attachment; filename="{run.run_id}.json"'
    data = await downloaded(response)
    assert data["run"]["id"] == run.run_id and data["run"]["status"] == "completed"
    steps = all_pages(upstream, f"/threads/{run.thread_id}/runs/{run.run_id}/steps")
    messages = all_pages(upstream, f"/threads/{run.thread_id}/messages", run_id=run.run_id)
    assert [s["id"] for s in data["steps"]] == [s["id"] for s in steps]  # 230: three upstream pages
    assert [m["id"] for m in data["messages"]] == [m["id"] for m in messages]
    assert len(data["messages"]) == 58  # one message per 4 steps


async def test_an_export_carries_file_search_content(viewer_client, finished):
    run = finished("search")
    data = await downloaded(
        await viewer_client.get(f"/threads/{run.thread_id}/runs/{run.run_id}/export.json")
    )
    results = [
        r
        for s in data["steps"]
        if s["type"] == "tool_calls"
        for r in s["step_details"]["tool_calls"][0]["file_search"]["results"]
    ]
    assert results and all(r["content"] for r in results)
