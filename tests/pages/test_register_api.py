"""The agent registration API (POST /api/threads/): off without INDEX_API_TOKEN, bearer-protected, strict
about its input, and the threads it registers show up (and are searchable) on the home page."""

import json

import pytest

from runs_ui.models import Connection, ThreadEntry
from tests.pages.conftest import text

TOKEN = "index-token-0123456789abcdef"


@pytest.fixture
def token(settings):
    settings.INDEX_API_TOKEN = TOKEN
    return TOKEN


async def _post(client, body, *, auth: str | None = f"Bearer {TOKEN}", raw: bool = False):
    headers = {"Authorization": auth} if auth is not None else {}
    data = body if raw else json.dumps(body)
    return await client.post("/api/threads/", data, content_type="application/json", headers=headers)


async def test_it_is_off_without_a_token_configured(anon_client, settings):
    settings.INDEX_API_TOKEN = ""
    response = await _post(anon_client, {"thread_ids": ["thread_abc"]})
    assert response.status_code == 404
    assert response.json() == {
        "error": "Thread registration is switched off (set INDEX_API_TOKEN to enable it)."
    }
    assert not await ThreadEntry.objects.aexists()


WRONG_AUTH = [None, "", f"Bearer {TOKEN}x", f"bearer {TOKEN}", TOKEN, f"Basic {TOKEN}", f"Bearer  {TOKEN}"]


async def test_it_refuses_a_missing_or_wrong_bearer_token(anon_client, token, subtests):
    for auth in WRONG_AUTH:
        with subtests.test(auth=auth):
            response = await _post(anon_client, {"thread_ids": ["thread_abc"]}, auth=auth)
            assert response.status_code == 401
            assert response["WWW-Authenticate"] == "Bearer"
            assert response.json()["error"] == "A valid 'Authorization: Bearer <token>' header is required."
            assert TOKEN not in text(response)
    assert not await ThreadEntry.objects.aexists()


async def test_a_signed_in_session_is_not_a_credential(viewer_client, token):
    response = await _post(viewer_client, {"thread_ids": ["thread_abc"]}, auth=None)
    assert response.status_code == 401


async def test_it_registers_new_threads_with_201_and_known_ones_with_200(anon_client, token):
    first = await _post(anon_client, {"thread_ids": ["thread_new1", "thread_new2", "thread_new1"]})
    assert first.status_code == 201
    assert first.json() == {"registered": 2, "new": 2}
    again = await _post(anon_client, {"thread_ids": ["thread_new2"]})
    assert again.status_code == 200 and again.json() == {"registered": 1, "new": 0}
    single = await _post(anon_client, {"thread_id": "thread_new3"})
    assert single.status_code == 201 and single.json() == {"registered": 1, "new": 1}
    entries = {e.thread_id: e.source async for e in ThreadEntry.objects.all()}
    assert entries == {"thread_new1": "registered", "thread_new2": "registered", "thread_new3": "registered"}


async def test_registered_metadata_is_searchable_from_the_home_page(anon_client, viewer_client, token):
    response = await _post(
        anon_client, {"thread_ids": ["thread_cust1"], "metadata": {"customer": "ACME-7731"}}
    )
    assert response.status_code == 201
    await _post(anon_client, {"thread_ids": ["thread_other1"]})
    html = text(await viewer_client.get("/?q=ACME-7731"))
    assert 'href="/threads/thread_cust1/"' in html and "thread_other1" not in html


async def test_it_registers_threads_on_another_connection(anon_client, token):
    await Connection.objects.acreate(slug="azure-eu", name="Azure EU", base_url="https://eu.example/v1")
    response = await _post(anon_client, {"thread_ids": ["thread_eu1"], "connection": "azure-eu"})
    assert response.status_code == 201
    assert await ThreadEntry.objects.filter(connection="azure-eu", thread_id="thread_eu1").aexists()


BAD_INPUT = [
    ("{not json", "The body must be JSON."),
    (b"\xff\xfe\x00", "The body must be JSON."),
    ("[" * 100_000, "The body must be JSON."),  # nested too deep for the parser
    ("", 'The body must be an object like {"thread_ids": ["thread_…"]}.'),
    ('["thread_abc"]', 'The body must be an object like {"thread_ids": ["thread_…"]}.'),
    ("{}", "Give thread_ids: a list of 1 to 200 thread ids."),
    ('{"thread_ids": []}', "Give thread_ids: a list of 1 to 200 thread ids."),
    ('{"thread_ids": "thread_abc"}', "Give thread_ids: a list of 1 to 200 thread ids."),
    (
        json.dumps({"thread_ids": [f"thread_{i}" for i in range(201)]}),
        "Give thread_ids: a list of 1 to 200",
    ),
    ('{"thread_ids": ["thread_ok", "run_1", 7, null]}', 'Not thread ids: ["run_1", 7, null]'),
    ('{"thread_ids": ["thread_<script>"]}', 'Not thread ids: ["thread_<script>"]'),
    ('{"thread_ids": ["thread_ok"], "connection": "nowhere"}', "Unknown connection."),
    ('{"thread_ids": ["thread_ok"], "connection": ["default"]}', "Unknown connection."),
    ('{"thread_ids": ["thread_ok"], "metadata": "customer=1"}', "metadata must be an object of strings."),
    ('{"thread_ids": ["thread_ok"], "metadata": {"n": 1}}', "metadata keys are strings of at most 64"),
    (json.dumps({"thread_ids": ["thread_ok"], "metadata": {"k": "v" * 513}}), "values of at most 512"),
    (
        json.dumps({"thread_ids": ["thread_ok"], "metadata": {"k" * 65: "v"}}),
        "keys are strings of at most 64",
    ),
    (
        json.dumps({"thread_ids": ["thread_ok"], "metadata": {f"k{i}": "v" for i in range(17)}}),
        "at most 16 pairs",
    ),
]


async def test_bad_input_is_a_400_with_a_clear_error(anon_client, token, subtests):
    for body, error in BAD_INPUT:
        with subtests.test(body=body[:80]):
            response = await _post(anon_client, body, raw=True)
            assert response.status_code == 400
            assert response["Content-Type"] == "application/json"
            assert error in response.json()["error"]
    assert not await ThreadEntry.objects.aexists()


async def test_it_only_accepts_post(anon_client, token):
    response = await anon_client.get("/api/threads/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 405
