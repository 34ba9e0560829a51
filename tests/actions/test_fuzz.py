"""Hypothesis-generated form data for every action: arbitrary text (huge, unicode, control characters),
arbitrary and repeated field names, missing fields. Never a 500; and each answer is the one the API's
rules call for: a redirect exactly when the input is valid (checked against an independent model of the
rules, and against what reached the upstream), else 400 with the form again and no audit record.

The view tests go through the real middleware stack (sessions, CSRF, login, roles) and the real views;
respx stands in for the upstream with JSON recorded from the sandbox, so each example takes milliseconds.
The form tests run the form classes directly, for many more examples. Every URL id (thread, run, step,
file, connection) goes through every page, partial and form that takes one, and the index's own forms
(filters, the go-to box, pasted ids, logging in) get any input: over 10,000 examples in all, none a 500.
"""

from __future__ import annotations

import json
import os
from urllib.parse import quote, urlencode

import httpx
import pytest
import respx
from django.conf import settings as django_settings
from django.http import QueryDict
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from runs_ui.forms import (
    FORM_TOKEN,
    INSTRUCTIONS_MAX_CHARS,
    MESSAGE_MAX_CHARS,
    METADATA_MAX_KEY,
    METADATA_MAX_PAIRS,
    METADATA_MAX_VALUE,
    TOOL_OUTPUT_MAX_CHARS,
    CancelForm,
    CreateThreadAndRunForm,
    MetadataForm,
    StartRunForm,
    ToolOutputsForm,
)
from runs_ui.reconcile import MARK
from runs_ui.upstream.objects import Assistant, Run, is_id
from tests.actions.conftest import (
    delete_records,
    pending_calls,
    post_form,
    records,
)
from tests.fixtures import csrf_token

FAKE_BASE = "https://upstream.invalid/v1"
# Thousands of examples per test: bounded by their counts, not by the suite's 120 s per test, which a busy
# machine can stretch them past.
pytestmark = pytest.mark.timeout(600)

#: Deterministic in CI: a fixed derivation of examples, no example database, no deadline.
FUZZ = hypothesis_settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
#: The suite's counts (over 10,000 examples in all); FUZZ=quick runs a tenth of each, for
#: iterating on one form.
SCALE = 0.1 if os.environ.get("FUZZ") == "quick" else 1
VIEW_EXAMPLES, FORM_EXAMPLES = int(200 * SCALE), int(1500 * SCALE)


# --- what hypothesis sends ------------------------------------------------------------------------------

SPECIAL = [
    "",
    " ",
    "\t\r\n",
    "\x00",
    "a\x00b",
    "null",
    "{}",
    '{"ok": true}',
    "[1,",
    "NaN",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "asst_abc",
    " asst_abc ",
    "asst_" + "a" * 200,
    "call_x",
    "😀",
    "\u202e\u200b\ufeff",
    "%00%2F..%2F",
    "false",
    "0",
    "on",
]


def repeated(lengths, chars=None):
    if chars is None:
        chars = st.characters(codec="utf-8")  # any character a form can carry (no lone surrogates)
    return st.builds(lambda ch, n: ch * n, chars, st.sampled_from(lengths))


# Huge values are plain "x": percent-decoding megabytes of escapes costs seconds per example.
HUGE = repeated([TOOL_OUTPUT_MAX_CHARS, TOOL_OUTPUT_MAX_CHARS + 1, 3_000_000], st.just("x"))
VALUES = st.one_of(
    st.text(max_size=40),  # any code point but surrogates: unicode, control characters, RTL marks
    st.sampled_from(SPECIAL),
    repeated([63, 64, 65, 140, 141, 256, 257, 511, 512, 513, 1000, 1001]),
    st.integers(1, 40).flatmap(lambda k: HUGE if k == 1 else st.just("x")),  # rarely: huge
)


def pairs_for(known: list[str]):
    """(name, value) pairs: mostly the form's own fields, sometimes anything; names repeat or are missing."""
    names = st.one_of(
        st.sampled_from(known),
        st.text(max_size=20),
        st.builds(lambda s: "output_" + s, st.text(max_size=12)),
        st.builds(lambda i: f"key_{i}", st.integers(-2, 30)),
        st.builds(lambda i: f"value_{i}", st.integers(-2, 30)),
    ).filter(lambda n: n != "csrfmiddlewaretoken")
    return st.lists(st.tuples(names, VALUES), max_size=16)


def outputs_pairs(call_ids: list[str]):
    """A tool-outputs form: often a complete one drawn for these calls, then (or instead) anything."""
    known = ["call_ids", "require_json", *(f"output_{c}" for c in call_ids)]
    drawn_for = st.sampled_from(
        [" ".join(call_ids), " ".join(reversed(call_ids)), f"  {call_ids[0]}\n{call_ids[1]} "]
    )
    good = st.one_of(
        st.text(min_size=1, max_size=40), st.sampled_from(['{"ok": true}', "[1, 2]", "42", "null", " "])
    )
    complete = st.tuples(
        st.tuples(st.just("call_ids"), drawn_for),
        *(st.tuples(st.just(f"output_{c}"), good) for c in call_ids),
    ).map(list)
    json_box = st.lists(
        st.tuples(st.just("require_json"), st.sampled_from(["on", "", "false", "0"])), max_size=1
    )
    noise = st.one_of(
        st.just([]), st.lists(st.tuples(st.sampled_from(known), VALUES), max_size=3), pairs_for(known)
    )
    start = st.one_of(complete, st.just([]))
    return st.tuples(start, json_box, noise).map(lambda parts: parts[0] + parts[1] + parts[2])


def query(pairs) -> QueryDict:
    """The pairs as Django parses a posted form (repeated names kept; `get` gives the last value)."""
    data = QueryDict(mutable=True)
    for name, value in pairs:
        data.appendlist(name, value)
    return data


def too_big(pairs) -> bool:
    return len(urlencode(pairs)) > django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def clean_char(value: str | None, max_length: int, *, required: bool, strip: bool = True) -> tuple[bool, str]:
    """(valid, cleaned) for a Django CharField, modelled independently."""
    value = value or ""
    if strip:
        value = value.strip()
    if not value:
        return not required, ""
    return len(value) <= max_length and "\x00" not in value, value


# --- models of the rules: what a valid form is and what the upstream must receive ----------------------


def expected_cancel(data: QueryDict):
    ok, reason = clean_char(data.get("reason"), 1000, required=True)
    return {"reason": reason} if ok else None


def expected_outputs(data: QueryDict, call_ids: list[str]):
    ok, drawn = clean_char(data.get("call_ids"), 10**9, required=True)
    if not ok or set(drawn.split()) != set(call_ids):
        return None
    if any(k.startswith("output_") and k.removeprefix("output_") not in call_ids for k in data):
        return None
    flag = data.get("require_json")
    require_json = "require_json" in data and {"true": True, "false": False}.get(flag.lower(), bool(flag))
    outputs = []
    for call_id in call_ids:
        value = data.get(f"output_{call_id}")
        if not value or len(value) > TOOL_OUTPUT_MAX_CHARS or "\x00" in value:
            return None
        if require_json:
            try:
                json.loads(value)
            except ValueError:
                return None
        outputs.append({"tool_call_id": call_id, "output": value})
    return outputs


def expected_metadata(data: QueryDict, rows: int):
    pairs = {}
    for i in range(rows):
        key, value = data.get(f"key_{i}", ""), data.get(f"value_{i}", "")
        if "\x00" in key or "\x00" in value or len(key) > 10_000 or len(value) > 100_000:
            return None
        if not key and not value:
            continue
        if not key or len(key) > METADATA_MAX_KEY or key in pairs or len(value) > METADATA_MAX_VALUE:
            return None
        pairs[key] = value
    return pairs if len(pairs) <= METADATA_MAX_PAIRS else None


def expected_start(data: QueryDict, *, message_required: bool):
    ok_f, form_token = clean_char(data.get("form_token"), 64, required=True)
    if not (ok_f and FORM_TOKEN.fullmatch(form_token)):
        return None
    ok_a, assistant = clean_char(data.get("assistant_id"), 140, required=True)
    ok_m, model = clean_char(data.get("model"), 256, required=False)
    ok_i, instructions = clean_char(data.get("instructions"), INSTRUCTIONS_MAX_CHARS, required=False)
    ok_t, message = clean_char(data.get("message"), MESSAGE_MAX_CHARS, required=message_required)
    if not (ok_a and ok_m and ok_i and ok_t and is_id("assistant", assistant)):
        return None
    options = {k: v for k, v in (("model", model), ("instructions", instructions)) if v}
    return {"assistant_id": assistant, **options, "metadata": {MARK: form_token}}, message


# --- the upstream, recorded from the sandbox and replayed by respx ---------------------------------------


@pytest.fixture(scope="module")
def recorded(sandbox):
    """The wire JSON of a run waiting for two tool outputs, and of the assistants list, from the sandbox."""
    run = sandbox.start_run("functions", speed=20, sandbox_expires_seconds=1000000)
    waiting = sandbox.wait_run(run["thread_id"], run["id"], "requires_action")
    return waiting, sandbox.api("GET", "/assistants?limit=100")


@pytest.fixture
def fake_upstream(upstream, settings, recorded):
    """respx answers every call of the dashboard at FAKE_BASE with the recorded JSON."""
    waiting, assistants = recorded
    thread_id, run_id = waiting["thread_id"], waiting["id"]
    settings.ASSISTANTS_API_BASE_URL = FAKE_BASE
    moved = {**waiting, "status": "queued", "required_action": None}
    new_run = {**moved, "id": "run_started"}
    empty = {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}

    def modified(request):
        return httpx.Response(200, json={**waiting, "metadata": json.loads(request.content)["metadata"]})

    with respx.mock(base_url=FAKE_BASE, assert_all_called=False, using="httpx") as router:
        router.get(f"/threads/{thread_id}/runs/{run_id}", name="get").respond(json=waiting)
        router.post(f"/threads/{thread_id}/runs/{run_id}/cancel", name="cancel").respond(
            json={**waiting, "status": "cancelling", "required_action": None}
        )
        router.post(f"/threads/{thread_id}/runs/{run_id}/submit_tool_outputs", name="submit").respond(
            json=moved
        )
        router.post(f"/threads/{thread_id}/runs/{run_id}", name="modify").mock(side_effect=modified)
        router.post(f"/threads/{thread_id}/runs", name="create").respond(json=new_run)
        router.post("/threads/runs", name="create_thread").respond(json=new_run)
        router.get("/assistants", name="assistants").respond(json=assistants)
        router.get(path__regex=r"/runs/run_started$").respond(json=new_run)
        router.get(path__regex=r"/(steps|messages)$").respond(json=empty)
        router.route().respond(404, json={"error": {"message": "Not in the recording.", "type": "x"}})
        router.waiting = waiting
        yield router


@pytest.fixture
async def token(operator_client):
    return await csrf_token(operator_client, "/accounts/login/")


async def post(client, router, path: str, pairs, token: str):
    await delete_records()
    router.reset()
    response = await post_form(client, path, pairs, token=token)
    assert response.status_code in (302, 400), response.status_code
    return response


async def check(response, router, route: str, expected):
    """A redirect and one upstream call exactly when the model says the form is valid."""
    event("valid" if expected is not None else "invalid")
    posted = router.routes[route].calls
    if expected is None:
        assert response.status_code == 400
        assert posted.call_count == 0
        assert await records() == []
        assert b'role="alert"' in response.content or b'class="errorlist"' in response.content
        return None
    assert response.status_code == 302, response.content.decode()[:3000]
    assert posted.call_count == 1
    [record] = await records()
    assert record.outcome == "succeeded"
    return json.loads(posted.last.request.content or b"null")


# --- through the views ---------------------------------------------------------------------------------


def run_url(router, suffix: str) -> str:
    return f"/threads/{router.waiting['thread_id']}/runs/{router.waiting['id']}/{suffix}/"


@hypothesis_settings(FUZZ, max_examples=VIEW_EXAMPLES)
@given(pairs=pairs_for(["reason"]))
async def test_any_cancel_form_is_answered_by_the_rules_never_a_500(
    operator_client, fake_upstream, token, pairs
):
    response = await post(operator_client, fake_upstream, run_url(fake_upstream, "cancel"), pairs, token)

    if too_big(pairs):
        assert response.status_code == 400
        return
    expected = expected_cancel(query(pairs))
    await check(response, fake_upstream, "cancel", expected)
    if expected is not None:
        assert (await records())[0].reason == expected["reason"]


@hypothesis_settings(FUZZ, max_examples=VIEW_EXAMPLES)
@given(data=st.data())
async def test_any_tool_outputs_form_is_answered_by_the_rules_never_a_500(
    operator_client, fake_upstream, token, data
):
    call_ids = [c["id"] for c in pending_calls(fake_upstream.waiting)]
    pairs = data.draw(outputs_pairs(call_ids))

    response = await post(operator_client, fake_upstream, run_url(fake_upstream, "submit"), pairs, token)

    if too_big(pairs):
        assert response.status_code == 400
        return
    expected = expected_outputs(query(pairs), call_ids)
    sent = await check(response, fake_upstream, "submit", expected)
    if sent is not None:
        assert sent == {"tool_outputs": expected, "stream": True}


@hypothesis_settings(FUZZ, max_examples=VIEW_EXAMPLES)
@given(data=st.data())
async def test_any_metadata_form_is_answered_by_the_rules_never_a_500(
    operator_client, fake_upstream, token, data
):
    rows = MetadataForm(metadata=fake_upstream.waiting["metadata"]).row_count
    small = st.one_of(
        st.text(max_size=8), st.sampled_from(["", "a", "a", "b", "k" * 64, "k" * 65, "v" * 513])
    )
    table = data.draw(
        st.lists(st.tuples(st.integers(0, rows + 1), small, small), max_size=20).map(
            lambda rs: [p for i, k, v in rs for p in ((f"key_{i}", k), (f"value_{i}", v))]
        )
    )
    pairs = table + data.draw(
        pairs_for([f"key_{i}" for i in range(rows)] + [f"value_{i}" for i in range(rows)])
    )

    response = await post(operator_client, fake_upstream, run_url(fake_upstream, "metadata"), pairs, token)

    if too_big(pairs):
        assert response.status_code == 400
        return
    expected = expected_metadata(query(pairs), rows)
    sent = await check(response, fake_upstream, "modify", expected)
    if sent is not None:
        assert sent == {"metadata": expected}


#: A token as a start form's page draws it (any well-formed one will do once; records are cleared between
#: examples).
DRAWN_TOKEN = "Zm9ybS10b2tlbi1mb3ItZnV6eg"


def start_pairs(data, assistant_id: str):
    known = ["form_token", "assistant_id", "model", "instructions", "message"]
    token = data.draw(
        st.one_of(
            st.just([("form_token", DRAWN_TOKEN)]),
            st.just([("form_token", f" {DRAWN_TOKEN}\n")]),
            st.just([]),
            st.tuples(st.just("form_token"), VALUES).map(lambda p: [p]),
        )
    )
    chosen = data.draw(st.one_of(st.just([]), st.just([("assistant_id", assistant_id)])))
    said = data.draw(
        st.one_of(st.just([]), st.tuples(st.just("message"), st.text(max_size=30)).map(lambda p: [p]))
    )
    return token + chosen + said + data.draw(pairs_for(known))


@hypothesis_settings(FUZZ, max_examples=VIEW_EXAMPLES)
@given(data=st.data())
async def test_any_start_run_form_is_answered_by_the_rules_never_a_500(
    operator_client, fake_upstream, token, data
):
    waiting = fake_upstream.waiting
    pairs = start_pairs(data, waiting["assistant_id"])

    response = await post(
        operator_client, fake_upstream, f"/threads/{waiting['thread_id']}/runs/new/", pairs, token
    )

    if too_big(pairs):
        assert response.status_code == 400
        return
    expected = expected_start(query(pairs), message_required=False)
    sent = await check(response, fake_upstream, "create", expected)
    if sent is not None:
        body, message = expected
        if message:
            body["additional_messages"] = [{"role": "user", "content": message}]
        assert sent == {**body, "stream": True}


@hypothesis_settings(FUZZ, max_examples=VIEW_EXAMPLES)
@given(data=st.data())
async def test_any_new_thread_form_is_answered_by_the_rules_never_a_500(
    operator_client, fake_upstream, token, data
):
    pairs = start_pairs(data, fake_upstream.waiting["assistant_id"])

    response = await post(operator_client, fake_upstream, "/new/", pairs, token)

    if too_big(pairs):
        assert response.status_code == 400
        return
    expected = expected_start(query(pairs), message_required=True)
    sent = await check(response, fake_upstream, "create_thread", expected)
    if sent is not None:
        body, message = expected
        assert sent == {
            **body,
            "thread": {"messages": [{"role": "user", "content": message}], "metadata": body["metadata"]},
            "stream": True,
        }


@hypothesis_settings(FUZZ, max_examples=VIEW_EXAMPLES // 3)
@given(
    pairs=pairs_for(["form_token", "assistant_id", "model", "instructions", "message"]),
    new_thread=st.booleans(),
)
async def test_any_prefill_query_on_the_start_pages_renders(
    operator_client, fake_upstream, pairs, new_thread
):
    thread_id = fake_upstream.waiting["thread_id"]
    path = "/new/" if new_thread else f"/threads/{thread_id}/runs/new/"

    response = await operator_client.get(path + "?" + urlencode([(k, v[:2000]) for k, v in pairs]))

    assert response.status_code == 200
    assert b'name="assistant_id"' in response.content


# --- the form classes directly: many more examples -------------------------------------------------------


@pytest.fixture(scope="module")
def waiting_objects(recorded):
    waiting, assistants = recorded
    return Run.from_json(waiting), [Assistant.from_json(a) for a in assistants["data"]]


def settled(form) -> bool:
    """Validate the form (drawing it with the posted data is what the view tests do)."""
    valid = form.is_valid()
    assert valid or form.errors.as_data()
    return valid


@hypothesis_settings(FUZZ, max_examples=FORM_EXAMPLES)
@given(pairs=pairs_for(["reason"]))
def test_the_cancel_form_follows_the_rules_for_any_data(pairs):
    data = query(pairs)
    assert settled(CancelForm(data)) == (expected_cancel(data) is not None)
    event("valid" if expected_cancel(data) is not None else "invalid")


@hypothesis_settings(FUZZ, max_examples=FORM_EXAMPLES)
@given(data=st.data())
def test_the_tool_outputs_form_follows_the_rules_for_any_data(waiting_objects, data):
    run, _ = waiting_objects
    call_ids = [c.id for c in run.pending_calls]
    pairs = data.draw(outputs_pairs(call_ids))
    form = ToolOutputsForm(query(pairs), calls=run.pending_calls)

    expected = expected_outputs(query(pairs), call_ids)

    assert settled(form) == (expected is not None)
    event("valid" if expected is not None else "invalid")
    if expected is not None:
        assert form.outputs() == expected


@hypothesis_settings(FUZZ, max_examples=FORM_EXAMPLES)
@given(pairs=pairs_for([f"key_{i}" for i in range(6)] + [f"value_{i}" for i in range(6)]))
def test_the_metadata_form_follows_the_rules_for_any_data(waiting_objects, pairs):
    run, _ = waiting_objects
    form = MetadataForm(query(pairs), metadata=run.metadata)

    expected = expected_metadata(query(pairs), form.row_count)

    assert settled(form) == (expected is not None)
    event("valid" if expected is not None else "invalid")
    if expected is not None:
        assert form.cleaned_data["metadata"] == expected


@hypothesis_settings(FUZZ, max_examples=FORM_EXAMPLES)
@given(data=st.data())
def test_the_start_run_forms_follow_the_rules_for_any_data(waiting_objects, data):
    run, assistants = waiting_objects
    pairs = start_pairs(data, run.assistant_id)
    for form_class, message_required in ((StartRunForm, False), (CreateThreadAndRunForm, True)):
        form = form_class(query(pairs), assistants=data.draw(st.sampled_from([(), assistants])))
        expected = expected_start(query(pairs), message_required=message_required)
        assert settled(form) == (expected is not None)
        event(f"{form_class.__name__} {'valid' if expected is not None else 'invalid'}")
        if expected is not None:
            token = {"metadata": {MARK: form.cleaned_data["form_token"]}}
            assert {"assistant_id": form.cleaned_data["assistant_id"], **form.options(), **token} == expected[
                0
            ]


# --- every URL id, through every page, partial and form that takes one --------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
EMPTY_LIST = {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}
URL_EXAMPLES, INDEX_FORM_EXAMPLES = int(2250 * SCALE), int(250 * SCALE)
#: What a server error would be: anything else (a page, a 4xx, an upstream error page) is an answer.
SERVER_ERRORS = range(500, 502)


def _step(step_id: str, run_id: str, thread_id: str) -> dict:
    return {
        "id": step_id,
        "object": "thread.run.step",
        "created_at": 1_790_000_000,
        "run_id": run_id,
        "thread_id": thread_id,
        "type": "message_creation",
        "status": "completed",
        "step_details": {"type": "message_creation", "message_creation": {"message_id": "msg_fuzz"}},
    }


@pytest.fixture
def any_upstream(upstream, settings, recorded):
    """respx answers any path the dashboard asks at FAKE_BASE as an upstream that has every object: the
    recorded run and assistants, under whatever ids the path names."""
    waiting, assistants = recorded
    settings.ASSISTANTS_API_BASE_URL = FAKE_BASE

    def answer(request: httpx.Request) -> httpx.Response:
        parts = request.url.path.removeprefix("/v1/").split("/")
        match parts:
            case ["assistants"]:
                return httpx.Response(200, json=assistants)
            case ["threads", thread_id]:
                return httpx.Response(200, json={"id": thread_id, "object": "thread", "metadata": {}})
            case ["threads", _, "runs" | "messages"] | ["threads", _, "runs", _, "steps"]:
                return httpx.Response(200, json=EMPTY_LIST)
            case ["threads", thread_id, "runs", run_id]:
                return httpx.Response(200, json={**waiting, "id": run_id, "thread_id": thread_id})
            case ["threads", thread_id, "runs", run_id, "steps", step_id]:
                return httpx.Response(200, json=_step(step_id, run_id, thread_id))
            case ["files", _, "content"]:
                return httpx.Response(200, content=PNG, headers={"content-type": "image/png"})
        return httpx.Response(404, json={"error": {"message": "No such object.", "type": "invalid_request"}})

    with respx.mock(base_url=FAKE_BASE, assert_all_called=False, using="httpx") as router:
        router.route().mock(side_effect=answer)
        yield router


def id_like(prefix: str):
    """Ids of a kind, and everything near one: other prefixes, too long, unicode, dots, escapes, markup."""
    tail = st.text(alphabet="abcXYZ019_-", min_size=1, max_size=12)
    near = st.one_of(
        st.sampled_from(
            [
                prefix + "a" * 128,
                prefix + "a" * 129,
                prefix,
                ".",
                "..",
                "%2E%2E",
                prefix + "é",
                prefix + "a b",
                prefix + "a%2Fb",
                prefix + "<b>x</b>",
                prefix + '"x',
                prefix + "%00",
                prefix + "%FF%FE",
                "thread_abc",
                "run_abc",
                "file-abc",
                "assistant-abc",
            ]
        ),
        st.text(min_size=1, max_size=30).map(lambda t: quote(t, safe="")),
    )
    # Half the time an id, so pages get drawn too (one_of would flatten `near` into thirds).
    return st.booleans().flatmap(lambda an_id: tail.map(lambda t: prefix + t) if an_id else near)


HX = {"HX-Request": "true"}
PAGES = [
    ("GET", "/threads/{t}/", {}),
    ("GET", "/threads/{t}/?part=timeline&runs_after={r}&messages_after={m}", HX),
    ("GET", "/threads/{t}/runs/{r}/", {}),
    ("GET", "/threads/{t}/runs/{r}/?part=steps&waterfall=1&after={s}", HX),
    ("GET", "/threads/{t}/runs/{r}/?part=header", HX),
    ("GET", "/threads/{t}/runs/{r}/steps/{s}/", {}),
    ("GET", "/threads/{t}/runs/{r}/steps/{s}/?part=step&include=content", HX),
    ("GET", "/threads/{t}/export.json", {}),
    ("GET", "/threads/{t}/runs/{r}/export.json", {}),
    ("GET", "/files/{f}/content?ref={m}", {}),
    ("GET", "/threads/{t}/runs/{r}/cancel/", {}),
    ("GET", "/threads/{t}/runs/{r}/submit/", {}),
    ("GET", "/threads/{t}/runs/{r}/metadata/", {}),
    ("GET", "/threads/{t}/runs/new/", {}),
    ("POST", "/threads/{t}/runs/{r}/cancel/", {}),
    ("POST", "/threads/{t}/runs/{r}/submit/", {}),
    ("POST", "/threads/{t}/runs/{r}/metadata/", {}),
    ("POST", "/threads/{t}/runs/new/", {}),
    ("POST", "/threads/{t}/watch/", {}),
]


@hypothesis_settings(FUZZ, max_examples=URL_EXAMPLES)
@given(
    page=st.sampled_from(PAGES),
    t=id_like("thread_"),
    r=id_like("run_"),
    s=id_like("step_"),
    f=id_like("file-"),
    m=id_like("msg_"),
    connection=st.sampled_from(["", "", "", "/c/default", "/c/nothere", "/c/a%20b"]),
)
async def test_any_id_in_any_url_is_answered_never_a_500(
    operator_client, any_upstream, token, page, t, r, s, f, m, connection
):
    method, template, headers = page
    path = connection + template.format(t=t, r=r, s=s, f=f, m=m)

    if method == "GET":
        response = await operator_client.get(path, headers=headers)
    else:
        response = await post_form(operator_client, path, [], token=token)

    event(f"{method} {template.split('?')[0]} → {response.status_code}")
    assert response.status_code not in SERVER_ERRORS, (path, response.content[:2000])


# --- the index's forms: filters, the go-to box, pasted ids, logging in ---------------------------------


@hypothesis_settings(FUZZ, max_examples=INDEX_FORM_EXAMPLES)
@given(pairs=pairs_for(["q", "status", "assistant", "model", "error", "since", "until", "offset", "part"]))
async def test_any_filter_query_on_the_home_page_is_answered_never_a_500(
    operator_client, any_upstream, pairs
):
    response = await operator_client.get("/?" + urlencode([(k, v[:3000]) for k, v in pairs]))

    assert response.status_code == 200


@hypothesis_settings(FUZZ, max_examples=INDEX_FORM_EXAMPLES)
@given(
    q=st.one_of(
        VALUES,
        id_like("thread_"),
        id_like("run_"),
        id_like("msg_"),
        st.builds(
            lambda t, r: f"https://api.example.com/v1/threads/{t}/runs/{r}/steps",
            id_like("thread_"),
            id_like("run_"),
        ),
        st.builds(lambda p: "/threads/" + p + "/", st.text(max_size=30)),
    )
)
async def test_anything_pasted_in_the_go_to_box_is_answered_never_a_500(operator_client, any_upstream, q):
    response = await operator_client.get("/go/?" + urlencode({"q": q[:3000]}))

    assert response.status_code == 302


@hypothesis_settings(FUZZ, max_examples=INDEX_FORM_EXAMPLES)
@given(pairs=pairs_for(["ids"]))
async def test_any_pasted_ids_form_is_answered_never_a_500(operator_client, any_upstream, token, pairs):
    response = await post_form(operator_client, "/index/add/", pairs, token=token)

    assert response.status_code in (302, 400)


@hypothesis_settings(FUZZ, max_examples=INDEX_FORM_EXAMPLES)
@given(pairs=pairs_for(["username", "password", "next"]))
async def test_any_log_in_form_is_answered_never_a_500(anon_client, any_upstream, pairs):
    from django.core.cache import cache

    cache.clear()  # the throttle counts failures; this test is about the form's answers
    response = await post_form(anon_client, "/accounts/login/", pairs)

    assert response.status_code in (200, 302, 400, 429)
