"""The thread page: its shell, the timeline partial (runs and messages in time order, cursor paging),
export."""

import itertools

from django.utils.html import escape

from tests.pages.conftest import (
    HX,
    all_pages,
    assert_fragment,
    assert_full_page,
    downloaded,
    load_more_url,
    text,
    timeline_ids,
    wait_terminal,
)


async def _page_through(client, thread_id: str, order: str) -> tuple[list[str], int]:
    """Follow the timeline's "load more" links to the end; returns the ids shown, in order, and the pages."""
    base = f"/threads/{thread_id}/"
    url, shown, pages = f"{base}?part=timeline&order={order}", [], 0
    while url:
        response = await client.get(url if url.startswith("/") else base + url, headers=HX)
        assert response.status_code == 200
        html = text(response)
        page = timeline_ids(html)
        assert page, f"page {pages + 1} of the timeline is empty"
        shown += page
        pages += 1
        url = load_more_url(html)
        assert pages < 20, "the timeline does not end"
    return shown, pages


async def test_the_thread_shell_shows_the_thread_and_loads_its_timeline_lazily(viewer_client, api, faults):
    thread = api("POST", "/threads", json={"metadata": {"customer": "ACME-42", "ticket": "T-1001"}})
    response = await viewer_client.get(f"/threads/{thread['id']}/")
    assert response.status_code == 200
    assert_full_page(response)
    html = text(response)
    assert f'<span class="mono">{thread["id"]}</span>' in html
    assert "<dt>customer</dt><dd>ACME-42</dd>" in html and "<dt>ticket</dt><dd>T-1001</dd>" in html
    assert escape(f'"id": "{thread["id"]}"') in html  # raw JSON
    assert 'hx-get="?part=timeline&amp;order=desc" hx-trigger="load"' in html
    assert f'href="/threads/{thread["id"]}/export.json" download' in html
    # The shell arrives after one upstream call: the thread itself; runs and messages come with the partial.
    assert faults.paths() == [f"/threads/{thread['id']}"]


async def test_the_timeline_of_a_thread_without_runs_or_messages_says_so(viewer_client, api):
    thread = api("POST", "/threads", json={})
    response = await viewer_client.get(f"/threads/{thread['id']}/?part=timeline", headers=HX)
    assert_fragment(response)
    assert "This thread has no runs or messages." in text(response)
    assert load_more_url(text(response)) == ""


async def test_the_timeline_shows_a_runs_status_assistant_model_duration_and_usage(
    viewer_client, finished, api
):
    run = finished("answer")
    body = api("GET", f"/threads/{run.thread_id}/runs/{run.run_id}")
    html = text(await viewer_client.get(f"/threads/{run.thread_id}/?part=timeline", headers=HX))
    row = html[html.index(f'id="run-{run.run_id}"') :]
    row = row[: row.index("</li>")]
    assert 'title="completed">completed</span>' in row
    assert f'<span title="{run.assistant_id}">Test answer</span>' in row
    assert '<span class="muted">gpt-4o</span>' in row
    assert f'title="total duration">{body["completed_at"] - body["created_at"]} s</span>' in row
    assert f"{body['usage']['total_tokens']} tokens</span>" in row
    # The run expands lazily into its steps.
    assert f'hx-get="/threads/{run.thread_id}/runs/{run.run_id}/?part=steps" hx-trigger="toggle once"' in row


async def test_the_timeline_shows_message_text_and_which_run_wrote_it(viewer_client, finished):
    run = finished("answer", message="What is *the* answer?")
    html = text(await viewer_client.get(f"/threads/{run.thread_id}/?part=timeline", headers=HX))
    assert "<p>What is <em>the</em> answer?</p>" in html  # the user's message, as markdown
    assert (
        f'<a class="small" href="/threads/{run.thread_id}/runs/{run.run_id}/">from {run.run_id}</a>' in html
    )


async def test_the_timeline_interleaves_runs_and_messages_in_time_order(viewer_client, busy_thread):
    html = text(
        await viewer_client.get(f"/threads/{busy_thread.thread_id}/?part=timeline&order=asc", headers=HX)
    )
    shown = timeline_ids(html)
    assert len(shown) >= 20
    times = [busy_thread.created[i] for i in shown]
    assert times == sorted(times)
    # Timestamps are whole seconds and the thread was made within a few, so only a few alternations are
    # guaranteed by time alone; a page that listed all runs, then all messages, would have one.
    kinds = ["run" if i.startswith("run_") else "msg" for i in shown]
    changes = sum(a != b for a, b in itertools.pairwise(kinds))
    assert changes >= 2, f"runs and messages are not interleaved: {kinds}"


async def test_newest_first_is_the_default_order_and_oldest_first_is_a_link_away(viewer_client, busy_thread):
    thread_id = busy_thread.thread_id
    shell = text(await viewer_client.get(f"/threads/{thread_id}/"))
    assert "<strong>Newest first</strong>" in shell and '<a href="?order=asc">Oldest first</a>' in shell
    newest = timeline_ids(text(await viewer_client.get(f"/threads/{thread_id}/?part=timeline", headers=HX)))
    assert newest[0] in (busy_thread.runs[-1]["id"], busy_thread.messages[-1]["id"])
    oldest_shell = text(await viewer_client.get(f"/threads/{thread_id}/?order=asc"))
    assert "<strong>Oldest first</strong>" in oldest_shell
    assert 'hx-get="?part=timeline&amp;order=asc"' in oldest_shell
    oldest = timeline_ids(
        text(await viewer_client.get(f"/threads/{thread_id}/?part=timeline&order=asc", headers=HX))
    )
    assert oldest[0] == busy_thread.messages[0]["id"]  # "A note without a run, number 0"
    times = [busy_thread.created[i] for i in newest]
    assert times == sorted(times, reverse=True)


async def test_paging_newest_first_through_a_busy_thread_shows_every_run_and_message_once(
    viewer_client, busy_thread
):
    shown, pages = await _page_through(viewer_client, busy_thread.thread_id, "desc")
    expected = {item["id"] for item in busy_thread.runs + busy_thread.messages}
    assert len(expected) > 100 and pages >= 3  # 75 messages: three pages of 30
    assert len(shown) == len(set(shown)), "an item was shown twice"
    assert set(shown) == expected
    times = [busy_thread.created[i] for i in shown]
    assert times == sorted(times, reverse=True)


async def test_paging_oldest_first_through_a_busy_thread_shows_every_run_and_message_once(
    viewer_client, busy_thread
):
    shown, pages = await _page_through(viewer_client, busy_thread.thread_id, "asc")
    expected = {item["id"] for item in busy_thread.runs + busy_thread.messages}
    assert pages >= 3
    assert len(shown) == len(set(shown)) and set(shown) == expected
    times = [busy_thread.created[i] for i in shown]
    assert times == sorted(times)


async def test_a_timeline_page_shows_at_most_30_items_and_links_to_the_next_by_cursor(
    viewer_client, busy_thread
):
    html = text(await viewer_client.get(f"/threads/{busy_thread.thread_id}/?part=timeline", headers=HX))
    assert len(timeline_ids(html)) <= 60  # one page of runs and one of messages, at most
    runs_shown = [i for i in timeline_ids(html) if i.startswith("run_")]
    assert len(runs_shown) <= 30
    more = load_more_url(html)
    assert more.startswith("?part=timeline&order=desc&runs_after=run_")
    # The plain link works without JavaScript too (same URL).
    assert f'<a href="{escape(more)}"' in html


async def test_a_cursor_that_is_not_an_id_is_ignored_rather_than_sent_upstream(
    viewer_client, busy_thread, faults
):
    url = f"/threads/{busy_thread.thread_id}/?part=timeline&runs_after=../../x&messages_after=%22%3E"
    response = await viewer_client.get(url, headers=HX)
    assert response.status_code == 200
    assert timeline_ids(text(response))[0] in (busy_thread.runs[-1]["id"], busy_thread.messages[-1]["id"])
    assert not [r for r in faults.calls if "after" in r.url.params]


async def test_reloading_a_later_timeline_page_shows_the_same_items(viewer_client, busy_thread):
    base = f"/threads/{busy_thread.thread_id}/"
    first = text(await viewer_client.get(f"{base}?part=timeline", headers=HX))
    second_url = base + load_more_url(first)
    again = [timeline_ids(text(await viewer_client.get(second_url, headers=HX))) for _ in range(2)]
    assert again[0] == again[1] and not set(again[0]) & set(timeline_ids(first))


# --- export -----------------------------------------------------------------------------------------


async def test_a_thread_exports_as_json_with_all_its_runs_steps_and_messages(
    viewer_client, busy_thread, sandbox
):
    response = await viewer_client.get(f"/threads/{busy_thread.thread_id}/export.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == f'attachment; filename="{busy_thread.thread_id}.json"'
    data = await downloaded(response)
    assert data["thread"]["id"] == busy_thread.thread_id
    assert [r["run"]["id"] for r in data["runs"]] == [r["id"] for r in busy_thread.runs]
    assert [m["id"] for m in data["messages"]] == [m["id"] for m in busy_thread.messages]
    last = busy_thread.runs[-1]["id"]
    steps = all_pages(sandbox, f"/threads/{busy_thread.thread_id}/runs/{last}/steps")
    assert [s["id"] for s in data["runs"][-1]["steps"]] == [s["id"] for s in steps] and steps


async def test_a_thread_export_follows_every_page_of_messages_and_steps(viewer_client, make_run, upstream):
    run = make_run("long", speed=100, sandbox_steps=420)  # 105 answer messages + the question: two pages
    wait_terminal(upstream, run.thread_id, run.run_id)
    data = await downloaded(await viewer_client.get(f"/threads/{run.thread_id}/export.json"))
    messages = all_pages(upstream, f"/threads/{run.thread_id}/messages")
    assert len(messages) == 106
    assert [m["id"] for m in data["messages"]] == [m["id"] for m in messages]
    assert len(data["runs"]) == 1 and len(data["runs"][0]["steps"]) == 420
    assert len({s["id"] for s in data["runs"][0]["steps"]}) == 420
