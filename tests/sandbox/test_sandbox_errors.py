"""Validation and errors: each gives the real service's status and `{"error": {...}}` envelope."""

import pytest


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["x-request-id"].startswith("req_")
    body = response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


@pytest.fixture(scope="module")
def thread(sandbox_api_module):
    return sandbox_api_module.post("/threads", json={"messages": [{"role": "user", "content": "Hi"}]}).json()


@pytest.fixture(scope="module")
def sandbox_api_module(sandbox):
    with sandbox.client() as client:
        yield client


def test_a_missing_beta_header_is_refused_with_invalid_beta(sandbox):
    error = _error(sandbox.request("GET", "/assistants", headers={"OpenAI-Beta": ""}), 400)
    assert error["code"] == "invalid_beta" and error["param"] is None
    assert "OpenAI-Beta: assistants=v2" in error["message"]
    v1 = _error(sandbox.request("GET", "/assistants", headers={"OpenAI-Beta": "assistants=v1"}), 400)
    assert v1["code"] == "invalid_beta"


def test_files_endpoints_need_no_beta_header(sandbox, runs):
    run = runs.finish("code")
    step = runs.steps(run)[0]
    file_id = step["step_details"]["tool_calls"][0]["code_interpreter"]["outputs"][1]["image"]["file_id"]
    assert sandbox.request("GET", f"/files/{file_id}", headers={"OpenAI-Beta": ""}).status_code == 200
    content = sandbox.request("GET", f"/files/{file_id}/content", headers={"OpenAI-Beta": ""})
    assert content.headers["content-type"] == "image/png"
    assert (
        _error(sandbox.request("GET", "/files/file-missing"), 404)["message"]
        == "No file found with id 'file-missing'."
    )


def test_a_missing_key_is_refused_with_invalid_api_key(sandbox):
    error = _error(sandbox.request("GET", "/assistants", headers={"Authorization": ""}), 401)
    assert error["code"] == "invalid_api_key"


def test_a_wrong_key_is_refused_without_echoing_it(sandbox):
    wrong = "sk-wrong-key-that-must-stay-secret-1234"
    error = _error(sandbox.request("GET", "/assistants", headers={"Authorization": f"Bearer {wrong}"}), 401)
    assert error["code"] == "invalid_api_key"
    assert wrong not in error["message"] and sandbox.api_key not in error["message"]
    assert "sk-" in error["message"] and "1234" in error["message"]  # masked, like the real service


def test_azure_style_api_key_with_api_version_needs_no_beta_header(sandbox):
    headers = {"Authorization": "", "OpenAI-Beta": "", "api-key": sandbox.api_key}
    assert (
        sandbox.request(
            "GET", "/assistants", headers=headers, params={"api-version": "2024-08-01-preview"}
        ).status_code
        == 200
    )
    assert _error(sandbox.request("GET", "/assistants", headers=headers), 401)["code"] == "invalid_api_key"
    wrong = {**headers, "api-key": "nope"}
    assert _error(sandbox.request("GET", "/assistants", headers=wrong, params={"api-version": "v1"}), 401)


@pytest.mark.parametrize(
    ("path", "kind", "object_id"),
    [
        ("/threads/thread_nope", "thread", "thread_nope"),
        ("/threads/thread_nope/runs", "thread", "thread_nope"),
        ("/assistants/asst_nope", "assistant", "asst_nope"),
    ],
)
def test_unknown_ids_are_404_naming_the_id(sandbox_api, path, kind, object_id):
    error = _error(sandbox_api.get(path), 404)
    assert error == {
        "message": f"No {kind} found with id '{object_id}'.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


def test_unknown_run_step_and_message_ids_are_404(sandbox_api, runs):
    run = runs.finish("answer")
    base = f"/threads/{run['thread_id']}"
    assert (
        _error(sandbox_api.get(f"{base}/runs/run_nope"), 404)["message"] == "No run found with id 'run_nope'."
    )
    assert _error(sandbox_api.get(f"{base}/runs/{run['id']}/steps/step_nope"), 404)["message"] == (
        "No step found with id 'step_nope'."
    )
    assert (
        _error(sandbox_api.get(f"{base}/messages/msg_nope"), 404)["message"]
        == "No message found with id 'msg_nope'."
    )
    other = sandbox_api.post("/threads", json={}).json()
    assert _error(sandbox_api.get(f"/threads/{other['id']}/runs/{run['id']}"), 404)  # a run of another thread


def test_unknown_urls_are_json_404s(sandbox_api):
    assert _error(sandbox_api.get("/threads/t/nothing/here"), 404)["message"].startswith("Invalid URL (GET ")
    assert _error(sandbox_api.delete("/assistants"), 404)["message"].startswith("Invalid URL (DELETE ")


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"assistant_id": "a", "bogus": 1}, "bogus", "unknown_parameter"),
        ({}, "assistant_id", "missing_required_parameter"),
        ({"assistant_id": 5}, "assistant_id", "invalid_type"),
        ({"assistant_id": "a", "temperature": "hot"}, "temperature", "invalid_type"),
        ({"assistant_id": "a", "temperature": 3}, "temperature", "decimal_above_max_value"),
        (
            {"assistant_id": "a", "max_completion_tokens": 10},
            "max_completion_tokens",
            "integer_below_min_value",
        ),
        ({"assistant_id": "a", "stream": "yes"}, "stream", "invalid_type"),
        ({"assistant_id": "a", "tools": [{"type": "web"}]}, "tools[0].type", "invalid_value"),
        (
            {"assistant_id": "a", "tools": [{"type": "function"}]},
            "tools[0].function",
            "missing_required_parameter",
        ),
        (
            {"assistant_id": "a", "truncation_strategy": {"type": "auto", "x": 1}},
            "truncation_strategy.x",
            "unknown_parameter",
        ),
        (
            {"assistant_id": "a", "additional_messages": [{"role": "robot", "content": "x"}]},
            "additional_messages[0].role",
            "invalid_value",
        ),
        ({"assistant_id": "a", "metadata": "x"}, "metadata", "invalid_type"),
        (
            {"assistant_id": "a", "metadata": {str(n): "v" for n in range(17)}},
            "metadata",
            "object_above_max_properties",
        ),
        ({"assistant_id": "a", "metadata": {"k" * 65: "v"}}, "metadata", "string_above_max_length"),
        ({"assistant_id": "a", "metadata": {"k": "v" * 513}}, "metadata.k", "string_above_max_length"),
        ({"assistant_id": "a", "metadata": {"k": 1}}, "metadata.k", "invalid_type"),
    ],
)
def test_create_run_bodies_are_checked_like_the_spec(sandbox_api, thread, body, param, code):
    error = _error(sandbox_api.post(f"/threads/{thread['id']}/runs", json=body), 400)
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")


def test_metadata_at_the_limits_is_accepted(sandbox_api):
    metadata = {f"{n:02d}" + "k" * 62: "v" * 512 for n in range(16)}
    assert sandbox_api.post("/threads", json={"metadata": metadata}).json()["metadata"] == metadata


def test_other_bodies_refuse_unknown_fields(sandbox_api, thread):
    assert _error(sandbox_api.post("/threads", json={"title": "x"}), 400)["param"] == "title"
    assert (
        _error(sandbox_api.post(f"/threads/{thread['id']}", json={"messages": []}), 400)["param"]
        == "messages"
    )
    message = {"role": "user", "content": "x", "file_ids": []}
    assert (
        _error(sandbox_api.post(f"/threads/{thread['id']}/messages", json=message), 400)["param"]
        == "file_ids"
    )
    content = {"role": "user", "content": []}
    assert (
        _error(sandbox_api.post(f"/threads/{thread['id']}/messages", json=content), 400)["code"]
        == "empty_array"
    )
    assert (
        _error(sandbox_api.post("/threads/runs", json={"assistant_id": "a", "thread": {"x": 1}}), 400)[
            "param"
        ]
        == "thread.x"
    )


def test_malformed_json_is_a_400(sandbox_api, thread):
    response = sandbox_api.post(
        f"/threads/{thread['id']}/runs",
        content=b'{"assistant_id": ',
        headers={"Content-Type": "application/json"},
    )
    assert "could not parse the JSON body" in _error(response, 400)["message"]
    assert _error(sandbox_api.post("/threads", content=b"[1, 2]"), 400)["code"] == "invalid_type"


def test_bad_list_parameters_are_400s(sandbox_api, thread):
    base = f"/threads/{thread['id']}/runs"
    assert _error(sandbox_api.get(base, params={"limit": 0}), 400)["code"] == "integer_below_min_value"
    assert _error(sandbox_api.get(base, params={"limit": 101}), 400)["code"] == "integer_above_max_value"
    assert _error(sandbox_api.get(base, params={"limit": "ten"}), 400)["code"] == "invalid_type"
    assert _error(sandbox_api.get(base, params={"order": "newest"}), 400)["param"] == "order"
    assert _error(sandbox_api.get(base, params={"after": "run_elsewhere"}), 400)["param"] == "after"


def test_an_unknown_include_value_is_a_400(sandbox_api, runs):
    run = runs.finish("answer")
    response = sandbox_api.get(
        f"/threads/{run['thread_id']}/runs/{run['id']}/steps", params={"include[]": "everything"}
    )
    assert _error(response, 400)["param"] == "include"


def test_an_unknown_script_is_a_400_listing_the_scripts(sandbox_api, runs, thread):
    body = {"assistant_id": runs.assistant("answer"), "metadata": {"sandbox_script": "dance"}}
    error = _error(sandbox_api.post(f"/threads/{thread['id']}/runs", json=body), 400)
    assert error["param"] == "metadata.sandbox_script" and "'functions'" in error["message"]
    speed = {"assistant_id": runs.assistant("answer"), "metadata": {"sandbox_speed": "fast"}}
    assert (
        _error(sandbox_api.post(f"/threads/{thread['id']}/runs", json=speed), 400)["param"]
        == "metadata.sandbox_speed"
    )


def test_a_second_active_run_on_a_thread_is_refused(sandbox_api, runs):
    run = runs.start("slow", speed=1)
    body = {"assistant_id": runs.assistant("answer")}
    error = _error(sandbox_api.post(f"/threads/{run['thread_id']}/runs", json=body), 400)
    assert error["message"] == f"Thread {run['thread_id']} already has an active run {run['id']}."
    sandbox_api.post(f"/threads/{run['thread_id']}/runs/{run['id']}/cancel")


def test_adding_a_message_while_a_run_is_active_is_refused(sandbox_api, runs):
    run = runs.start("slow", speed=1)
    response = sandbox_api.post(
        f"/threads/{run['thread_id']}/messages", json={"role": "user", "content": "More"}
    )
    assert (
        _error(response, 400)["message"]
        == f"Can't add messages to {run['thread_id']} while a run {run['id']} is active."
    )
    sandbox_api.post(f"/threads/{run['thread_id']}/runs/{run['id']}/cancel")


def test_cancelling_a_terminal_run_is_refused(sandbox_api, runs):
    for script, status in [("answer", "completed"), ("fail", "failed")]:
        run = runs.finish(script)
        error = _error(sandbox_api.post(f"/threads/{run['thread_id']}/runs/{run['id']}/cancel"), 400)
        assert error == {
            "message": f"Cannot cancel run with status '{status}'.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }


def test_tool_outputs_are_refused_unless_the_run_requires_action(sandbox_api, runs):
    run = runs.finish("answer")
    url = f"/threads/{run['thread_id']}/runs/{run['id']}/submit_tool_outputs"
    error = _error(sandbox_api.post(url, json={"tool_outputs": []}), 400)
    assert error["message"] == 'Runs in status "completed" do not accept tool outputs.'


def test_tool_outputs_must_cover_exactly_the_pending_calls(sandbox_api, runs):
    run = runs.wait(runs.start("functions", speed=20))
    first, second = (c["id"] for c in run["required_action"]["submit_tool_outputs"]["tool_calls"])
    url = f"/threads/{run['thread_id']}/runs/{run['id']}/submit_tool_outputs"

    def refused(outputs):
        return _error(sandbox_api.post(url, json={"tool_outputs": outputs}), 400)

    missing = refused([{"tool_call_id": first, "output": "a"}])
    assert missing["param"] == "tool_outputs" and second in missing["message"]
    extra = refused(
        [
            {"tool_call_id": first, "output": "a"},
            {"tool_call_id": second, "output": "b"},
            {"tool_call_id": "call_x", "output": "c"},
        ]
    )
    assert extra["param"] == "tool_outputs[2].tool_call_id" and "call_x" in extra["message"]
    duplicate = refused([{"tool_call_id": first, "output": "a"}, {"tool_call_id": first, "output": "b"}])
    assert duplicate["param"] == "tool_outputs[1].tool_call_id" and first in duplicate["message"]
    not_string = refused([{"tool_call_id": first, "output": 1}, {"tool_call_id": second, "output": "b"}])
    assert (not_string["param"], not_string["code"]) == ("tool_outputs[0].output", "invalid_type")
    no_output = refused([{"tool_call_id": first}, {"tool_call_id": second, "output": "b"}])
    assert no_output["code"] == "missing_required_parameter"
    assert runs.get(run)["status"] == "requires_action"  # nothing was applied
    ok = sandbox_api.post(
        url,
        json={
            "tool_outputs": [{"tool_call_id": second, "output": "b"}, {"tool_call_id": first, "output": "a"}]
        },
    )
    assert ok.status_code == 200 and ok.json()["status"] == "queued"


def test_every_response_has_a_request_id_and_runs_a_poll_hint(sandbox_api, sandbox, runs):
    run = runs.start("answer", speed=50)
    response = sandbox_api.get(f"/threads/{run['thread_id']}/runs/{run['id']}")
    # SANDBOX_POLL_AFTER_MS (500) divided by the run's speed, never below 50.
    assert response.headers["openai-poll-after-ms"] == "50"
    assert response.headers["x-request-id"].startswith("req_")
    slow = runs.start("answer", speed=2)
    assert (
        sandbox_api.get(f"/threads/{slow['thread_id']}/runs/{slow['id']}").headers["openai-poll-after-ms"]
        == "250"
    )
    for response in (
        sandbox_api.get("/threads"),
        sandbox.request("GET", "/threads", headers={"Authorization": ""}),
    ):
        assert response.headers["x-request-id"].startswith("req_")
