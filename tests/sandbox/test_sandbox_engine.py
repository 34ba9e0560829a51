"""The engine: each script reaches its terminal state with the right fields; cancel, expiry, concurrency."""

import asyncio
import json
import time

import httpx


def test_answer_completes_with_a_markdown_message_and_usage(runs):
    run = runs.finish("answer", content="How do refunds work?")
    assert run["status"] == "completed"
    assert run["started_at"] >= run["created_at"] and run["completed_at"] >= run["started_at"]
    assert run["expires_at"] is None and run["required_action"] is None and run["last_error"] is None
    assert run["usage"]["total_tokens"] == run["usage"]["prompt_tokens"] + run["usage"]["completion_tokens"]
    (step,) = runs.steps(run)
    assert (
        step["type"] == "message_creation"
        and step["status"] == "completed"
        and step["usage"]["completion_tokens"] > 0
    )
    (message,) = runs.messages(run)
    assert step["step_details"]["message_creation"]["message_id"] == message["id"]
    text = message["content"][0]["text"]["value"]
    assert "How do refunds work?" in text and "\n- " in text and "```python" in text
    assert message["status"] == "completed" and message["run_id"] == run["id"]
    assert message["assistant_id"] == run["assistant_id"]


def test_functions_waits_for_two_parallel_calls_then_answers_with_the_outputs(runs):
    run = runs.wait(runs.start("functions"))
    assert run["status"] == "requires_action" and run["usage"] is None
    calls = run["required_action"]["submit_tool_outputs"]["tool_calls"]
    assert [(c["type"], c["function"]["name"]) for c in calls] == [
        ("function", "get_weather"),
        ("function", "get_time"),
    ]
    assert set(json.loads(calls[0]["function"]["arguments"])) == {"city"}
    (step,) = runs.steps(run)
    assert step["status"] == "in_progress" and step["usage"] is None
    assert [c["function"]["output"] for c in step["step_details"]["tool_calls"]] == [None, None]
    time.sleep(0.3)
    assert runs.get(run)["status"] == "requires_action"  # it waits, however long
    resumed = runs.submit_all(run, output="sunny, 22 degrees")
    assert resumed["status"] == "queued" and resumed["required_action"] is None
    done = runs.wait(resumed)
    assert done["status"] == "completed"
    tool_step, message_step = runs.steps(done)
    assert tool_step["status"] == "completed" and tool_step["usage"] is not None
    assert [c["function"]["output"] for c in tool_step["step_details"]["tool_calls"]] == [
        "sunny, 22 degrees"
    ] * 2
    assert "sunny, 22 degrees" in runs.messages(done)[0]["content"][0]["text"]["value"]
    assert message_step["type"] == "message_creation"


def test_code_logs_and_draws_a_real_png(runs, sandbox_api):
    run = runs.finish("code")
    assert run["status"] == "completed"
    tool_step, _ = runs.steps(run)
    call = tool_step["step_details"]["tool_calls"][0]
    assert call["type"] == "code_interpreter" and "plt.bar" in call["code_interpreter"]["input"]
    logs, image = call["code_interpreter"]["outputs"]
    assert logs == {"type": "logs", "logs": "60 Q4\n"}
    png = sandbox_api.get(f"/files/{image['image']['file_id']}/content").content
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and b"IEND" in png
    (message,) = runs.messages(run)
    assert message["content"][1] == {
        "type": "image_file",
        "image_file": {"file_id": image["image"]["file_id"], "detail": "auto"},
    }


def test_search_returns_scored_results_and_cites_them(runs, sandbox_api):
    run = runs.finish("search")
    tool_step = runs.steps(run)[0]
    search = tool_step["step_details"]["tool_calls"][0]["file_search"]
    assert search["ranking_options"] == {"ranker": "default_2024_08_21", "score_threshold": 0.5}
    assert [r["score"] for r in search["results"]] == [0.91, 0.78, 0.64]
    assert all("content" not in r for r in search["results"])
    with_content = runs.steps(run, include=True)[0]["step_details"]["tool_calls"][0]["file_search"]["results"]
    assert (
        with_content[0]["content"][0]["type"] == "text" and "30 days" in with_content[0]["content"][0]["text"]
    )
    text = runs.messages(run)[0]["content"][0]["text"]
    cited = {a["file_citation"]["file_id"] for a in text["annotations"]}
    assert cited == {r["file_id"] for r in search["results"]}
    for annotation in text["annotations"]:
        assert text["value"][annotation["start_index"] : annotation["end_index"]] == annotation["text"]
    document = sandbox_api.get(f"/files/{search['results'][0]['file_id']}").json()
    assert document["filename"] == search["results"][0]["file_name"]


def test_fail_ends_failed_with_errors_on_the_step_and_the_run(runs):
    run = runs.finish("fail")
    assert run["status"] == "failed" and run["failed_at"] is not None and run["expires_at"] is None
    assert run["last_error"] == {"code": "server_error", "message": "Sorry, something went wrong."}
    (step,) = runs.steps(run)
    assert step["status"] == "failed" and step["failed_at"] is not None
    assert step["last_error"]["code"] == "server_error"


def test_incomplete_stops_at_max_completion_tokens(runs):
    run = runs.finish("incomplete", max_completion_tokens=300)
    assert run["status"] == "incomplete"
    assert run["incomplete_details"] == {"reason": "max_completion_tokens"}
    assert run["usage"]["completion_tokens"] == 300
    (message,) = runs.messages(run)
    assert message["status"] == "incomplete" and message["incomplete_details"] == {"reason": "max_tokens"}
    assert message["incomplete_at"] is not None and message["completed_at"] is None
    assert runs.finish("incomplete")["usage"]["completion_tokens"] == 256  # the default cap


def test_expire_reaches_requires_action_then_expires(runs):
    run = runs.start("expire", speed=100)
    assert run["expires_at"] - run["created_at"] <= 1  # 30 script-seconds at speed 100
    expired = runs.wait(run, until={"expired"}, timeout=10)
    assert expired["required_action"] is None and expired["usage"] is not None
    (step,) = runs.steps(expired)
    assert step["status"] == "expired" and step["expired_at"] is not None


def test_a_waiting_functions_run_expires_at_expires_at(runs):
    run = runs.wait(runs.start("functions", speed=100, metadata={"sandbox_expires_seconds": "100"}))
    assert run["status"] == "requires_action"
    expired = runs.wait(run, until={"expired"}, timeout=10)
    assert [s["status"] for s in runs.steps(expired)] == ["expired"]


def test_azure_emits_bing_grounding_and_activities(runs):
    run = runs.finish("azure")
    assert run["status"] == "completed"
    tool, activities, _ = runs.steps(run)
    assert tool["step_details"]["tool_calls"][0]["type"] == "bing_grounding"
    assert "requesturl" in tool["step_details"]["tool_calls"][0]["bing_grounding"]
    assert (
        activities["type"] == "activities"
        and activities["step_details"]["activities"][0]["type"] == "mcp_list_tools"
    )
    assert runs.messages(run)[0]["content"][0]["text"]["annotations"][0]["type"] == "url_citation"


def test_long_makes_the_requested_number_of_steps_of_every_type(runs, sandbox_api):
    run = runs.finish("long", speed=400, metadata={"sandbox_steps": "120"})
    assert run["status"] == "completed"
    steps, after = [], None
    while True:
        page = sandbox_api.get(
            f"/threads/{run['thread_id']}/runs/{run['id']}/steps",
            params={"limit": 50, "order": "asc", **({"after": after} if after else {})},
        ).json()
        steps += page["data"]
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert len(steps) == 120 and len({s["id"] for s in steps}) == 120
    kinds = {
        s["type"] if s["type"] == "message_creation" else s["step_details"]["tool_calls"][0]["type"]
        for s in steps
    }
    assert kinds == {"message_creation", "function", "code_interpreter", "file_search"}


def test_cancel_holds_in_cancelling_then_cancels_open_steps_and_messages(runs, sandbox_api):
    metadata = {"sandbox_queued_seconds": "0", "sandbox_cancel_seconds": "5"}
    run = runs.start("slow", speed=5, metadata=metadata)
    time.sleep(0.5)  # the first message is being written (script-seconds 1 to 4.9)
    url = f"/threads/{run['thread_id']}/runs/{run['id']}/cancel"
    assert sandbox_api.post(url).json()["status"] == "cancelling"
    assert runs.get(run)["status"] == "cancelling"  # held for 5 script-seconds (1 s)
    assert sandbox_api.post(url).json()["status"] == "cancelling"  # cancelling again changes nothing
    cancelled = runs.wait(run, timeout=10)
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_at"] is not None
    assert cancelled["usage"] is not None and cancelled["expires_at"] is None
    *earlier, last = runs.steps(cancelled)
    assert last["status"] == "cancelled" and last["cancelled_at"] is not None
    assert all(step["status"] == "completed" for step in earlier)
    message = runs.messages(cancelled)[-1]
    assert message["status"] == "incomplete" and message["incomplete_details"] == {"reason": "run_cancelled"}


def test_cancel_works_in_queued_and_requires_action(runs, sandbox_api):
    queued = runs.start("answer", speed=1, metadata={"sandbox_queued_seconds": "600"})
    waiting = runs.wait(runs.start("functions"))
    for run in (queued, waiting):
        assert (
            sandbox_api.post(f"/threads/{run['thread_id']}/runs/{run['id']}/cancel").json()["status"]
            == "cancelling"
        )
    assert runs.wait(queued, timeout=5)["status"] == "cancelled"
    done = runs.wait(waiting, timeout=5)
    assert done["status"] == "cancelled" and done["required_action"] is None
    assert [s["status"] for s in runs.steps(done)] == ["cancelled"]


def test_timestamps_are_when_transitions_were_due_not_when_read(runs):
    run = runs.start("answer", speed=2, metadata={"sandbox_queued_seconds": "1"})
    time.sleep(2.5)
    done = runs.get(run)  # the first read after the whole script (4 script-seconds) was due
    assert done["status"] == "completed"
    assert done["started_at"] - run["created_at"] <= 1
    assert done["completed_at"] - run["created_at"] <= 3


def test_speed_comes_from_run_metadata_else_the_server_setting(runs):
    fast = runs.start("answer", speed=1000)
    assert runs.wait(fast, timeout=3)["status"] == "completed"
    default = runs.start("answer", speed=None)  # the fixture's server speed, 10: expires in 60 s
    assert 59 <= default["expires_at"] - default["created_at"] <= 61


async def test_concurrent_readers_on_two_processes_never_duplicate_a_step(runs, sandbox):
    with sandbox.peer() as peer:
        # At speed 0.5 the 60 steps come due over about 2.4 s, so the readers overlap with the transitions
        # even when a round of reads is slow (at speed 2, 0.6 s, one round could outlast the run).
        run = runs.start("long", speed=0.5, metadata={"sandbox_steps": "60", "sandbox_queued_seconds": "0"})
        base = f"/threads/{run['thread_id']}/runs/{run['id']}"
        clients = [
            sandbox.async_client(),
            httpx.AsyncClient(base_url=peer.base_url, headers=sandbox.headers, timeout=30),
        ]
        rounds = 0
        try:
            deadline = time.monotonic() + 30
            while True:
                readers = [
                    client.get(f"{base}/steps", params={"limit": 100}) if n % 2 else client.get(base)
                    for n, client in enumerate(clients * 8)
                ]
                responses = await asyncio.gather(*readers)
                assert all(r.status_code == 200 for r in responses)
                rounds += 1
                if runs.get(run)["status"] == "completed":
                    break
                assert time.monotonic() < deadline
        finally:
            for client in clients:
                await client.aclose()
    assert rounds > 1  # the readers really raced the clock
    steps = runs.steps(run)
    assert len(steps) == 60 and len({s["id"] for s in steps}) == 60
    assert sum(1 for s in steps if s["type"] == "message_creation") == len(runs.messages(run)) == 15
