"""Every body the sandbox sends validates against the official spec's schemas (docs/WIRE.md's tolerances)."""

import pytest

SCRIPTS = ["answer", "functions", "code", "search", "fail", "incomplete", "expire", "azure", "long", "slow"]
SPEEDS = {"slow": 400, "expire": 100, "long": 200}


def _metadata(script: str) -> dict:
    return {"sandbox_steps": "40"} if script == "long" else {}


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_object_a_script_produces_matches_the_spec(script, runs, spec, sandbox_api):
    azure = script == "azure"
    run = runs.finish(script, speed=SPEEDS.get(script, 50), metadata=_metadata(script))
    thread_id, run_id = run["thread_id"], run["id"]

    steps = sandbox_api.get(f"/threads/{thread_id}/runs/{run_id}/steps", params={"limit": 100}).json()
    spec.validate("ListRunStepsResponse", steps, azure=azure)
    assert steps["data"], "every script makes at least one step"
    for step in steps["data"]:
        for params in ({}, {"include[]": "step_details.tool_calls[*].file_search.results[*].content"}):
            one = sandbox_api.get(
                f"/threads/{thread_id}/runs/{run_id}/steps/{step['id']}", params=params
            ).json()
            if not (azure and one["type"] == "activities"):
                spec.validate("RunStepObject", one, azure=azure)

    messages = sandbox_api.get(f"/threads/{thread_id}/messages").json()
    spec.validate("ListMessagesResponse", messages, azure=azure)
    for message in messages["data"]:
        spec.validate(
            "MessageObject",
            sandbox_api.get(f"/threads/{thread_id}/messages/{message['id']}").json(),
            azure=azure,
        )

    runs_page = sandbox_api.get(f"/threads/{thread_id}/runs").json()
    spec.validate("ListRunsResponse", runs_page)
    spec.validate("ThreadObject", sandbox_api.get(f"/threads/{thread_id}").json())
    spec.validate("AssistantObject", sandbox_api.get(f"/assistants/{run['assistant_id']}").json())


def test_files_the_code_interpreter_makes_match_the_spec(runs, spec, sandbox_api):
    run = runs.finish("code")
    step = next(s for s in runs.steps(run) if s["type"] == "tool_calls")
    image = step["step_details"]["tool_calls"][0]["code_interpreter"]["outputs"][1]["image"]
    spec.validate("OpenAIFile", sandbox_api.get(f"/files/{image['file_id']}").json())


def test_empty_lists_match_the_spec_with_null_cursor_ids(runs, spec, sandbox_api):
    thread = sandbox_api.post("/threads", json={}).json()
    spec.validate("ThreadObject", thread)
    page = sandbox_api.get(f"/threads/{thread['id']}/runs").json()
    assert page == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}
    spec.validate("ListRunsResponse", page)
    spec.validate("ListMessagesResponse", sandbox_api.get(f"/threads/{thread['id']}/messages").json())


def test_assistant_and_thread_lists_match_the_spec(runs, spec, sandbox_api):
    runs.assistant("answer")
    spec.validate("ListAssistantsResponse", sandbox_api.get("/assistants").json())
    threads = sandbox_api.get("/threads", params={"limit": 5}).json()
    # List-threads is Azure's extension; OpenAI has no schema for it, so its items are checked one by one.
    assert set(threads) == {"object", "data", "first_id", "last_id", "has_more"}
    for thread in threads["data"]:
        spec.validate("ThreadObject", thread)


def test_created_and_modified_objects_match_the_spec(runs, spec, sandbox_api):
    thread = sandbox_api.post(
        "/threads",
        json={
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Look"},
                        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                    ],
                }
            ],
            "metadata": {"team": "ops"},
        },
    ).json()
    spec.validate("ThreadObject", thread)
    spec.validate(
        "ThreadObject",
        sandbox_api.post(f"/threads/{thread['id']}", json={"metadata": {"team": "dev"}}).json(),
    )
    message = sandbox_api.post(
        f"/threads/{thread['id']}/messages", json={"role": "user", "content": "More"}
    ).json()
    spec.validate("MessageObject", message)
    run = sandbox_api.post(
        f"/threads/{thread['id']}/runs",
        json={"assistant_id": runs.assistant("answer"), "metadata": {"sandbox_speed": "50"}},
    ).json()
    spec.validate("RunObject", run)
    modified = sandbox_api.post(
        f"/threads/{thread['id']}/runs/{run['id']}", json={"metadata": {"k": "v"}}
    ).json()
    spec.validate("RunObject", modified)
    spec.validate("RunObject", runs.wait(run))


def test_error_bodies_match_the_spec(spec, sandbox, sandbox_api):
    responses = [
        sandbox_api.get("/threads/thread_missing"),
        sandbox_api.post("/threads", json={"bogus": 1}),
        sandbox.request("GET", "/assistants", headers={"OpenAI-Beta": ""}),
        sandbox.request("GET", "/assistants", headers={"Authorization": "Bearer nope"}),
        sandbox_api.get("/nowhere"),
    ]
    for response in responses:
        assert response.status_code >= 400
        spec.validate("ErrorResponse", response.json())


def test_the_validator_rejects_what_the_spec_forbids(runs, spec):
    """Guards against a vacuous check: the translated spec still refuses bad objects."""
    run = runs.start("answer")
    for broken in (
        {k: v for k, v in run.items() if k != "status"},
        {**run, "status": "bogus"},
        {**run, "usage": {}},
    ):
        with pytest.raises(AssertionError, match="does not match the spec"):
            spec.validate("RunObject", broken)
    spec.validate("RunObject", {**run, "instructions": None, "required_action": None})
