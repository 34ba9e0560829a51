"""Ids that are not ids get a clear 404 naming what was asked for, and never reach the upstream.

These point the dashboard at the seeded sandbox, whose request log shows every call it answered.
"""

from tests.pages.conftest import HX, assert_inert, text

GOOD_THREAD = "thread_abc123"
GOOD_RUN = "run_abc123"
LONG = "thread_" + "a" * 300

CASES = [
    # (path, headers, what the 404 page must say)
    ("/threads/../", {}, "“..” is not a valid thread id."),
    ("/threads/run_1/", {}, "“run_1” is not a valid thread id."),
    ("/threads/run_1/?part=timeline", HX, "“run_1” is not a valid thread id."),
    (
        "/threads/thread_<img src=x onerror=alert(1)>/",
        {},
        "“thread_&lt;img src=x onerror=alert(1)&gt;” is not",
    ),
    # An encoded slash splits the path: no page matches, and the page says which path it was.
    ("/threads/thread_<script>alert(1)<%2Fscript>/", {}, "There is no page at /threads/thread_%3Cscript%3E"),
    ('/threads/thread_a"b/', {}, "“thread_a&quot;b” is not a valid thread id."),
    ("/threads/thread_a'b/", {}, "“thread_a&#x27;b” is not a valid thread id."),
    # (The test client decodes paths as Latin-1, so the é is not quoted back here.)
    ("/threads/thread_caf%C3%A9/", {}, "is not a valid thread id."),
    ("/threads/thread_a%20b/", {}, "“thread_a b” is not a valid thread id."),
    (f"/threads/{LONG}/", {}, f"“{LONG[:80]}…” is not a valid thread id."),
    (f"/threads/{GOOD_THREAD}/runs/thread_x/", {}, "“thread_x” is not a valid run id."),
    (f"/threads/{GOOD_THREAD}/runs/{GOOD_RUN}/steps/msg_1/", {}, "“msg_1” is not a valid run step id."),
    (f"/threads/{GOOD_THREAD}/runs/{GOOD_RUN}/steps/..%2e/?part=step", HX, "is not a valid run step id."),
    ("/threads/thread_%2e%2e/export.json", {}, "“thread_..” is not a valid thread id."),
    (f"/threads/{GOOD_THREAD}/runs/run_$1/export.json", {}, "“run_$1” is not a valid run id."),
    ("/files/report.html/content", {}, "“report.html” is not a valid file id."),
    ("/c/no-such-connection/threads/thread_abc/", {}, "No connection named “no-such-connection”."),
]


async def test_it_answers_a_clear_404_for_an_id_that_is_not_an_id_without_calling_the_upstream(
    viewer_client, seeded, subtests
):
    # One test (one database flush) with a subtest per case: each is reported on its own.
    for path, headers, message in CASES:
        with subtests.test(path=path[:80]):
            before = len(seeded.requests())
            response = await viewer_client.get(path, headers=headers)
            assert response.status_code == 404
            html = text(response)
            assert message in html
            assert_inert(html)
            assert "<img src=x" not in html and "Traceback" not in html
            assert len(seeded.requests()) == before, seeded.requests()[before:]


async def test_a_slash_smuggled_into_an_id_matches_no_page_and_calls_nothing(viewer_client, seeded):
    before = len(seeded.requests())
    response = await viewer_client.get(f"/threads/{GOOD_THREAD}/runs/run_1%2F..%2F..%2Fassistants/")
    assert response.status_code == 404
    assert len(seeded.requests()) == before


async def test_an_invalid_id_cannot_be_watched(operator_client, seeded):
    from tests.fixtures import csrf_token

    token = await csrf_token(operator_client, "/accounts/login/")
    response = await operator_client.post(
        "/threads/run_1/watch/", {"watch": "1"}, headers={"X-CSRFToken": token}
    )
    assert response.status_code == 404
    assert "“run_1” is not a valid thread id." in text(response)
