"""htmx requests get the partial; normal requests and history restores get the full page; Back/Reload work."""

import re

import pytest

from tests.pages.conftest import (
    HISTORY_RESTORE,
    HX,
    assert_fragment,
    assert_full_page,
    assert_no_secret,
    load_more_url,
    step_ids,
    text,
    timeline_ids,
)


@pytest.fixture
def pages(finished, api, viewer_client, index_not_empty):
    """url name → (full page URL, its partial's query) for a finished code run."""
    run = finished("code")
    step = api("GET", f"/threads/{run.thread_id}/runs/{run.run_id}/steps")["data"][0]
    thread = f"/threads/{run.thread_id}/"
    run_url = f"{thread}runs/{run.run_id}/"
    return {
        "home": ("/", "?part=list"),
        "thread": (thread, "?part=timeline"),
        "run": (run_url, "?part=steps"),
        "run-header": (run_url, "?part=header"),
        "step": (f"{run_url}steps/{step['id']}/", "?part=step"),
    }


PAGES = ["home", "thread", "run", "run-header", "step"]


def _vary(response) -> set[str]:
    return {v.strip().lower() for v in response.get("Vary", "").split(",")}


async def test_an_htmx_request_gets_only_the_partial(viewer_client, pages, upstream, subtests):
    for name in PAGES:
        with subtests.test(page=name):
            url, part = pages[name]
            response = await viewer_client.get(url + part, headers=HX)
            assert response.status_code == 200
            assert_fragment(response)
            assert "hx-request" in _vary(response)
            assert_no_secret(response, upstream.api_key)


async def test_a_normal_request_for_a_partial_url_gets_the_full_page(
    viewer_client, pages, upstream, subtests
):
    for name in PAGES:
        with subtests.test(page=name):
            url, part = pages[name]
            response = await viewer_client.get(url + part)
            assert response.status_code == 200
            assert_full_page(response)
            assert "hx-request" in _vary(response)
            assert_no_secret(response, upstream.api_key)


async def test_a_history_restore_request_gets_the_full_page(viewer_client, pages, upstream, subtests):
    for name in PAGES:
        with subtests.test(page=name):
            url, part = pages[name]
            response = await viewer_client.get(url + part, headers=HISTORY_RESTORE)
            assert response.status_code == 200
            assert_full_page(response)
            assert "hx-request" in _vary(response)
            assert_no_secret(response, upstream.api_key)


def _stable(html: str) -> str:
    """A page without what changes on every response (CSRF tokens are masked differently each time)."""
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)
    html = re.sub(r'"X-CSRFToken": "[^"]+"', "", html)
    return re.sub(r'<meta name="csrf-token" content="[^"]+">', "", html)


async def test_reloading_a_page_shows_the_same_page(viewer_client, pages, subtests):
    for name in ["thread", "run", "step"]:
        url, part = pages[name]
        for target, headers in ((url, {}), (url + part, HX)):
            with subtests.test(url=target):
                first = await viewer_client.get(target, headers=headers)
                again = await viewer_client.get(target, headers=headers)
                assert _stable(text(first)) == _stable(text(again))


async def test_a_load_more_link_opened_without_htmx_shows_the_run_page_continuing_from_its_cursor(
    viewer_client, make_run, upstream
):
    from tests.pages.conftest import wait_terminal

    run = make_run("long", speed=100, sandbox_steps=120)
    wait_terminal(upstream, run.thread_id, run.run_id)
    base = f"/threads/{run.thread_id}/runs/{run.run_id}/"
    first = text(await viewer_client.get(f"{base}?part=steps", headers=HX))
    more = load_more_url(first)
    after = step_ids(first)[-1]
    page = await viewer_client.get(base + more)  # e.g. opened in a new tab, or reloaded
    assert_full_page(page)
    loader = re.search(r'<li class="loader" hx-get="([^"]+)" hx-trigger="load"', text(page)).group(1)
    rest = step_ids(text(await viewer_client.get(base + loader.replace("&amp;", "&"), headers=HX)))
    assert len(rest) == 20 and after not in rest


async def test_a_thread_page_opened_at_a_cursor_continues_its_timeline_from_there(viewer_client, busy_thread):
    base = f"/threads/{busy_thread.thread_id}/"
    first = text(await viewer_client.get(f"{base}?part=timeline", headers=HX))
    more = load_more_url(first)
    shell = text(await viewer_client.get(base + more))
    loader = re.search(r'<li class="loader first-load" hx-get="([^"]+)" hx-trigger="load"', shell).group(1)
    continued = timeline_ids(text(await viewer_client.get(base + loader.replace("&amp;", "&"), headers=HX)))
    assert continued and not set(continued) & set(timeline_ids(first))


async def test_the_home_filter_form_swaps_the_list_and_pushes_its_url(viewer_client, index_not_empty):
    html = text(await viewer_client.get("/"))
    form = re.search(r'<form class="filters panel"[^>]*>', html).group(0)
    assert 'method="get"' in form and 'hx-push-url="true"' in form and 'hx-target="#thread-list"' in form
    # The list it swaps exists on the full page, so a filtered URL reloads to the same list.
    assert '<div id="thread-list">' in html


async def test_the_body_carries_the_csrf_token_for_htmx_requests(viewer_client, index_not_empty):
    html = text(await viewer_client.get("/"))
    assert re.search(r"""<body hx-headers='\{"X-CSRFToken": "[^"]+"\}'""", html)
