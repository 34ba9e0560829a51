"""The home page (the thread index), its filters and load-more partial, the go-to box, adding, importing and
watching threads."""

import re
from datetime import UTC, datetime

import pytest
from django.utils.html import escape

from runs_ui.models import ThreadEntry
from tests.fixtures import SandboxRun, csrf_token
from tests.pages.conftest import HX, api_call, assert_fragment, assert_full_page, text, wait_terminal


def _rows(html: str) -> list[str]:
    """Thread ids of the index rows, in order (watched rows included)."""
    return re.findall(r'<td class="id"><a href="/threads/(thread_[^/"]+)/"', html)


def _list(html: str) -> list[str]:
    """Thread ids of the main list only (not the Watched table)."""
    return (
        _rows(html[html.index('<tbody id="thread-rows">') :])
        if '<tbody id="thread-rows">' in html
        else _rows(html)
    )


def _messages(html: str) -> list[str]:
    return [
        re.sub(r"\s+", " ", m).strip() for m in re.findall(r'<li class="banner [^"]*">(.*?)</li>', html, re.S)
    ]


async def _open(client, thread_id: str) -> None:
    """Open a thread and its timeline, as a person would: the index learns the thread and its runs."""
    assert (await client.get(f"/threads/{thread_id}/")).status_code == 200
    assert (await client.get(f"/threads/{thread_id}/?part=timeline", headers=HX)).status_code == 200


@pytest.fixture(scope="session")
def _index_runs(sandbox):
    """Three finished runs, made once: a failed one, one on another model with searchable metadata, and a
    plain answer by another assistant."""

    def assistant(script):
        return api_call(
            sandbox, "POST", "/assistants", json={"model": "gpt-4o", "metadata": {"sandbox_script": script}}
        )["id"]

    def run(assistant_id, **body):
        thread = {"messages": [{"role": "user", "content": "hi"}], **body.pop("thread", {})}
        made = api_call(
            sandbox, "POST", "/threads/runs", json={"assistant_id": assistant_id, "thread": thread, **body}
        )
        wait_terminal(sandbox, made["thread_id"], made["id"])
        return SandboxRun(assistant_id, made["thread_id"], made["id"], made)

    failing = assistant("fail")
    failed = run(failing, metadata={"sandbox_speed": "200"})
    done = run(
        failing,
        model="gpt-4o-mini",
        thread={"metadata": {"customer": "ZEBRA-7"}},
        metadata={"sandbox_speed": "200", "sandbox_script": "answer", "ticket": "T-99"},
    )
    other = run(assistant("answer"), metadata={"sandbox_speed": "200"})
    return failed, done, other


@pytest.fixture
def indexed(viewer_client, upstream, _index_runs):
    """The three runs' threads opened in the dashboard (oldest first), so the index has them."""

    async def make():
        for run in _index_runs:
            await _open(viewer_client, run.thread_id)
        return _index_runs

    return make


async def test_the_home_page_lists_opened_threads_with_their_latest_run(viewer_client, indexed):
    failed, done, other = await indexed()
    html = text(await viewer_client.get("/"))
    assert _list(html) == [other.thread_id, done.thread_id, failed.thread_id]  # most recently seen first
    row = html[html.index(f'id="thread-status-default-{failed.thread_id}"') :]
    row = row[: row.index("</tr>")]
    assert 'title="failed">failed</span>' in row and "server_error" in row
    assert failed.run_id in row and failed.assistant_id in row and "gpt-4o" in row


FILTERS = [
    ("status=failed", ["failed"]),
    ("status=completed", ["other", "done"]),
    ("model=gpt-4o-mini", ["done"]),
    ("error=any", ["failed"]),
    ("error=server_error", ["failed"]),
    ("error=rate_limit_exceeded", []),
    ("q=ZEBRA-7", ["done"]),  # thread metadata
    ("q=T-99", ["done"]),  # run metadata
]


async def test_the_home_page_filters_the_index(viewer_client, indexed, subtests):
    failed, done, other = await indexed()
    ids = {"failed": failed.thread_id, "done": done.thread_id, "other": other.thread_id}
    for query, expected in FILTERS:
        with subtests.test(query=query):
            html = text(await viewer_client.get(f"/?{query}"))
            assert _list(html) == [ids[name] for name in expected]
            assert "Matching threads" in html
            if not expected:
                assert "No thread matches these filters." in html


async def test_the_home_page_searches_thread_and_run_ids(viewer_client, indexed):
    failed, done, _ = await indexed()
    assert _list(text(await viewer_client.get(f"/?q={failed.thread_id[7:20]}"))) == [failed.thread_id]
    assert _list(text(await viewer_client.get(f"/?q={done.run_id}"))) == [done.thread_id]


async def test_the_home_page_filters_by_assistant(viewer_client, indexed):
    *_, other = await indexed()
    html = text(await viewer_client.get(f"/?assistant={other.assistant_id}"))
    assert _list(html) == [other.thread_id]


async def test_the_home_page_filters_by_the_date_of_the_latest_run(viewer_client, indexed):
    failed, done, other = await indexed()
    # The sandbox's runs are all from today; one is moved back, as if it had run long ago.
    await ThreadEntry.objects.filter(thread_id=failed.thread_id).aupdate(
        latest_run_created_at=datetime(2020, 3, 1, 12, tzinfo=UTC)
    )
    today = datetime.now(UTC).date().isoformat()
    assert _list(text(await viewer_client.get("/?until=2020-12-31"))) == [failed.thread_id]
    assert failed.thread_id not in _list(text(await viewer_client.get("/?since=2021-01-01")))
    between = _list(text(await viewer_client.get(f"/?since=2020-03-01&until={today}")))
    assert set(between) == {failed.thread_id, done.thread_id, other.thread_id}


INVALID_FILTERS = [
    ("assistant=not-an-assistant", "Not an assistant id (asst_…)."),
    ("since=yesterday", "Enter a valid date."),
    ("since=2025-02-30", "Enter a valid date."),
    ("since=2025-06-02&until=2025-06-01", "“Since” is after “until”."),
    ("status=exploded", "Select a valid choice. exploded is not one of the available choices."),
    ("q=" + "x" * 201, "Ensure this value has at most 200 characters (it has 201)."),
    (
        "status=%3Cscript%3Ealert(1)%3C/script%3E",
        "Select a valid choice. &lt;script&gt;alert(1)&lt;/script&gt;",
    ),
]


async def test_invalid_filter_input_gives_a_clear_form_error_not_a_500(
    viewer_client, index_not_empty, subtests
):
    for query, error in INVALID_FILTERS:
        with subtests.test(query=query[:60]):
            response = await viewer_client.get(f"/?{query}")
            assert response.status_code == 200
            html = text(response)
            errors = re.search(r'<div class="errorlist[^"]*"[^>]*>(.*?)</div>', html, re.S)
            assert errors and error in errors.group(1)
            assert "<script>alert(1)" not in html


@pytest.fixture
def many_threads(viewer_client, settings, anon_client):
    """120 threads registered through the agent API (none exists upstream: the index needs no upstream)."""
    settings.INDEX_API_TOKEN = "index-token-for-tests-0123456789"

    async def make(n=120):
        ids = [f"thread_many{i:04d}" for i in range(n)]
        response = await anon_client.post(
            "/api/threads/",
            {"thread_ids": ids},
            content_type="application/json",
            headers={"Authorization": f"Bearer {settings.INDEX_API_TOKEN}"},
        )
        assert response.status_code == 201
        return ids

    return make


async def test_the_load_more_partial_pages_through_the_whole_index_once(viewer_client, many_threads):
    ids = await many_threads()
    first = await viewer_client.get("/")
    assert_full_page(first)
    shown = _list(text(first))
    assert len(shown) == 50
    url = re.search(r'<tr class="loader" hx-get="([^"]+)"', text(first)).group(1).replace("&amp;", "&")
    assert url == "?offset=50&part=list"
    pages = 1
    while url:
        response = await viewer_client.get("/" + url, headers=HX)
        assert_fragment(response)
        page = _list(text(response))
        assert 0 < len(page) <= 50
        shown += page
        pages += 1
        more = re.search(r'<tr class="loader" hx-get="([^"]+)"', text(response))
        url = more.group(1).replace("&amp;", "&") if more else ""
    assert pages == 3
    assert sorted(shown) == sorted(ids) and len(set(shown)) == len(ids)


async def test_load_more_keeps_the_filters(viewer_client, many_threads):
    await many_threads()
    html = text(await viewer_client.get("/?q=thread_many00"))
    assert len(_list(html)) == 50  # thread_many0000 … thread_many0099 match
    url = re.search(r'<tr class="loader" hx-get="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert url == "?q=thread_many00&offset=50&part=list"
    rest = _list(text(await viewer_client.get("/" + url, headers=HX)))
    assert len(rest) == 50 and all(t.startswith("thread_many00") for t in rest)


async def test_an_odd_offset_gives_a_page_not_a_500(viewer_client, many_threads, subtests):
    await many_threads(3)
    for offset in ["-5", "abc", "1e3", "99999999999999999999", "9" * 400]:
        with subtests.test(offset=offset[:30]):
            response = await viewer_client.get(f"/?offset={offset}&part=list", headers=HX)
            assert response.status_code == 200


async def test_a_fresh_install_indexes_the_threads_the_sandbox_lists_on_the_first_visit(
    viewer_client, make_run
):
    run = make_run("answer", speed=200)  # the newest thread: among the 100 the sandbox lists first
    html = text(await viewer_client.get("/"))
    imported = re.search(r"Indexed (\d+) threads listed by the upstream.", html)
    assert imported and int(imported.group(1)) >= 1
    assert run.thread_id in _list(html)


async def test_import_from_upstream_indexes_the_listed_threads_with_their_latest_run(
    viewer_client, make_run, upstream
):
    token = await csrf_token(viewer_client, "/accounts/login/")
    run = make_run("fail", speed=200)
    wait_terminal(upstream, run.thread_id, run.run_id)
    response = await viewer_client.post("/index/import/", headers={"X-CSRFToken": token}, follow=True)
    html = text(response)
    host = upstream.base_url.split("/")[2]
    assert any(re.fullmatch(rf"Imported \d+ threads from {re.escape(host)}\.", m) for m in _messages(html))
    entry = await ThreadEntry.objects.aget(thread_id=run.thread_id)
    assert entry.source == "listed" and entry.latest_status == "failed" and entry.latest_run_id == run.run_id


async def test_import_from_an_upstream_that_cannot_list_says_so(viewer_client, settings):
    settings.ASSISTANTS_API_PROFILE = "openai"
    token = await csrf_token(viewer_client, "/accounts/login/")
    response = await viewer_client.post("/index/import/", headers={"X-CSRFToken": token}, follow=True)
    assert "OpenAI-compatible upstreams cannot list threads: add them by id instead." in _messages(
        text(response)
    )


# --- adding threads by id -------------------------------------------------------------------------------


async def test_pasted_thread_ids_are_added_and_unknown_ones_reported(viewer_client, finished, api):
    first, second = finished("answer"), finished("code")
    token = await csrf_token(viewer_client, "/accounts/login/")
    pasted = f"{first.thread_id},\n{second.thread_id} thread_doesnotexist01 ; {first.thread_id}"
    response = await viewer_client.post(
        "/index/add/", {"ids": pasted}, headers={"X-CSRFToken": token}, follow=True
    )
    assert response.status_code == 200
    messages = _messages(text(response))
    assert "Added 2 threads." in messages
    assert "Not found upstream: thread_doesnotexist01" in messages
    added = {e.thread_id async for e in ThreadEntry.objects.filter(source="added")}
    assert added == {first.thread_id, second.thread_id}
    assert {first.thread_id, second.thread_id} <= set(_list(text(response)))


NOT_THREAD_IDS = [
    ("run_abc thread_ok1 <script>x</script>", "Not thread ids: run_abc, &lt;script&gt;x&lt;/script&gt;"),
    ("  \n ,, ", "Paste at least one thread id."),
    (" ".join(f"thread_n{i}" for i in range(201)), "At most 200 ids at a time (201 pasted)."),
]


async def test_pasted_ids_that_are_not_thread_ids_are_refused(
    viewer_client, index_not_empty, faults, subtests
):
    token = await csrf_token(viewer_client, "/accounts/login/")
    for pasted, message in NOT_THREAD_IDS:
        with subtests.test(pasted=pasted[:40]):
            response = await viewer_client.post(
                "/index/add/", {"ids": pasted}, headers={"X-CSRFToken": token}, follow=True
            )
            html = text(response)
            assert message in " ".join(_messages(html))
            assert "<script>x" not in html
    assert await ThreadEntry.objects.acount() == 1  # the one seen before
    # No id was looked up (the home page shown after the redirect may list the assistants, for their names).
    assert [c for c in faults.calls if "/threads" in str(c.url)] == []


# --- go to ------------------------------------------------------------------------------------------------


async def _goto(client, query: str) -> str:
    response = await client.get("/go/", {"q": query})
    assert response.status_code == 302
    return response["Location"]


async def test_the_go_to_box_opens_any_kind_of_id(viewer_client, finished, api):
    run = finished("answer")
    assert await _goto(viewer_client, run.thread_id) == f"/threads/{run.thread_id}/"
    assert await _goto(viewer_client, run.assistant_id) == f"/?assistant={run.assistant_id}"
    # Runs, steps and messages are found once their thread has been opened.
    await _open(viewer_client, run.thread_id)
    assert await _goto(viewer_client, run.run_id) == f"/threads/{run.thread_id}/runs/{run.run_id}/"
    message = api("GET", f"/threads/{run.thread_id}/messages")["data"][0]["id"]
    assert await _goto(viewer_client, message) == f"/threads/{run.thread_id}/#{message}"
    step = api("GET", f"/threads/{run.thread_id}/runs/{run.run_id}/steps")["data"][0]["id"]
    await viewer_client.get(f"/threads/{run.thread_id}/runs/{run.run_id}/?part=steps", headers=HX)
    assert (
        await _goto(viewer_client, f"  {step}\n")
        == f"/threads/{run.thread_id}/runs/{run.run_id}/steps/{step}/"
    )


async def test_the_go_to_box_opens_pasted_dashboard_and_api_urls(viewer_client):
    t, r, s, m = "thread_abc1", "run_abc1", "step_abc1", "msg_abc1"
    cases = {
        f"https://dash.example.com/threads/{t}/runs/{r}/?part=steps#x": f"/threads/{t}/runs/{r}/",
        f"http://testserver/threads/{t}/": f"/threads/{t}/",
        f"https://api.openai.com/v1/threads/{t}/runs/{r}/steps/{s}": f"/threads/{t}/runs/{r}/steps/{s}/",
        f"https://api.openai.com/v1/threads/{t}/runs/{r}": f"/threads/{t}/runs/{r}/",
        f"https://api.openai.com/v1/threads/{t}/messages/{m}": f"/threads/{t}/#{m}",
        f"https://res.openai.azure.com/openai/threads/{t}?api-version=2024-05-01-preview": f"/threads/{t}/",
        f"http://127.0.0.1:8000/sandbox/v1/threads/{t}/runs/{r}/steps": f"/threads/{t}/runs/{r}/",
    }
    for pasted, target in cases.items():
        assert await _goto(viewer_client, pasted) == target, pasted


NOTHING_TO_OPEN = [
    "run_neverseen01",
    "step_neverseen01",
    "msg_neverseen01",
    "hello world",
    "<script>alert(1)</script>",
    "https://example.com/somewhere/else",
    "http://[not-a-host/threads/",  # not even a URL
]


async def test_the_go_to_box_explains_what_it_could_not_open_and_goes_home(
    viewer_client, index_not_empty, subtests
):
    for query in NOTHING_TO_OPEN:
        with subtests.test(query=query):
            response = await viewer_client.get("/go/", {"q": query}, follow=True)
            assert response.redirect_chain[-1] == ("/", 302)
            html = text(response)
            assert f"Nothing to open for “{escape(query)}”" in html
            assert "<script>alert(1)" not in html


async def test_the_go_to_box_never_redirects_off_site(viewer_client, subtests):
    for query in [
        "https://evil.example/",
        "//evil.example/threads/thread_abc/",
        "https://evil.example//threads/thread_a/",
    ]:
        with subtests.test(query=query):
            response = await viewer_client.get("/go/", {"q": query})
            assert response.status_code == 302
            location = response["Location"]
            assert location.startswith("/") and not location.startswith("//"), location


async def test_an_empty_go_to_goes_home(viewer_client, index_not_empty):
    assert await _goto(viewer_client, "   ") == "/"


# --- watching -----------------------------------------------------------------------------------------------


async def test_watching_a_thread_lists_it_under_watched_until_unwatched(
    viewer_client, finished, many_threads
):
    run = finished("answer")
    await many_threads(3)
    token = await csrf_token(viewer_client, "/accounts/login/")
    url = f"/threads/{run.thread_id}/watch/"
    response = await viewer_client.post(url, {"watch": "1"}, headers={"X-CSRFToken": token})
    assert response.status_code == 302 and response["Location"] == f"/threads/{run.thread_id}/"
    assert "★ Watching" in text(await viewer_client.get(f"/threads/{run.thread_id}/"))
    home = text(await viewer_client.get("/"))
    watched = home[home.index("<h2>Watched</h2>") : home.index('<tbody id="thread-rows">')]
    assert _rows(watched) == [run.thread_id]
    await viewer_client.post(url, {"watch": "0"}, headers={"X-CSRFToken": token})
    assert "☆ Watch" in text(await viewer_client.get(f"/threads/{run.thread_id}/"))
    assert "<h2>Watched</h2>" not in text(await viewer_client.get("/"))


async def test_what_one_user_watches_is_not_listed_for_another(viewer_client, operator_client, finished):
    run = finished("answer")
    token = await csrf_token(operator_client, "/accounts/login/")
    await operator_client.post(
        f"/threads/{run.thread_id}/watch/", {"watch": "1"}, headers={"X-CSRFToken": token}
    )
    assert "<h2>Watched</h2>" in text(await operator_client.get("/"))
    assert "<h2>Watched</h2>" not in text(await viewer_client.get("/"))


async def test_a_watch_without_a_csrf_token_is_refused(viewer_client, finished):
    run = finished("answer")
    response = await viewer_client.post(f"/threads/{run.thread_id}/watch/", {"watch": "1"})
    assert response.status_code == 403
    assert not await ThreadEntry.objects.filter(watchers__isnull=False).aexists()
