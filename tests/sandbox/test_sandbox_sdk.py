"""The official `openai` SDK, as a client over real HTTP, drives every run and step method of the sandbox."""

import pytest
from openai import AssistantEventHandler, AzureOpenAI, BadRequestError, NotFoundError, OpenAI

# The SDK warns on every Assistants call (docs/WIRE.md §11); the assistants methods just say "deprecated".
pytestmark = [
    pytest.mark.filterwarnings("ignore:The Assistants API is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning"),
]

SEARCH_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"


@pytest.fixture(scope="module")
def client(sandbox):
    return OpenAI(base_url=sandbox.base_url, api_key=sandbox.api_key, max_retries=0)


def _thread(client, text="Hello"):
    return client.beta.threads.create(messages=[{"role": "user", "content": text}])


def test_create_run_then_poll_reaches_completed(client, runs):
    thread = _thread(client)
    run = client.beta.threads.runs.create(
        thread_id=thread.id, assistant_id=runs.assistant("answer"), metadata={"sandbox_speed": "50"}
    )
    assert run.status == "queued"
    assert run.expires_at is not None
    done = client.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=20)
    assert done.status == "completed"
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens > 0
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).completed_at == done.completed_at


def test_create_and_poll_honours_the_poll_header(client, runs):
    thread = _thread(client)
    raw = client.beta.threads.runs.with_raw_response.create(
        thread_id=thread.id, assistant_id=runs.assistant("answer"), metadata={"sandbox_speed": "50"}
    )
    assert raw.headers["openai-poll-after-ms"] == "50"
    assert raw.headers["x-request-id"].startswith("req_")
    client.beta.threads.runs.poll(raw.parse().id, thread_id=thread.id)
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=runs.assistant("answer"), metadata={"sandbox_speed": "50"}
    )
    assert run.status == "completed"


def test_create_thread_and_run_makes_a_thread_with_the_messages(client, runs):
    run = client.beta.threads.create_and_run(
        assistant_id=runs.assistant("answer"),
        thread={
            "messages": [{"role": "user", "content": "What is the sandbox?"}],
            "metadata": {"from": "sdk"},
        },
        metadata={"sandbox_speed": "50"},
    )
    thread = client.beta.threads.retrieve(run.thread_id)
    assert thread.metadata == {"from": "sdk"}
    client.beta.threads.runs.poll(run.id, thread_id=run.thread_id, poll_interval_ms=20)
    messages = client.beta.threads.messages.list(thread_id=run.thread_id, order="asc").data
    assert [m.role for m in messages] == ["user", "assistant"]
    assert "What is the sandbox?" in messages[1].content[0].text.value
    assert client.beta.threads.messages.list(thread_id=run.thread_id, run_id=run.id).data == messages[1:]


def test_runs_list_pages_to_the_end_newest_first(client, runs):
    thread = _thread(client)
    created = []
    for _ in range(5):
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id,
            assistant_id=runs.assistant("answer"),
            metadata={"sandbox_speed": "200"},
            poll_interval_ms=10,
        )
        created.append(run.id)
    listed = [r.id for r in client.beta.threads.runs.list(thread_id=thread.id, limit=2)]
    assert listed == created[::-1]
    first_page = client.beta.threads.runs.list(thread_id=thread.id, limit=2, order="asc")
    assert [r.id for r in first_page.data] == created[:2] and first_page.has_more
    pages = list(first_page.iter_pages())
    assert [len(p.data) for p in pages] == [2, 2, 1] and not pages[-1].has_more
    assert [r.id for r in client.beta.threads.runs.list(thread_id=thread.id, order="asc")] == created


def test_steps_list_auto_paginates_a_long_run(client, runs):
    run = runs.finish("long", speed=200, metadata={"sandbox_steps": "45"})
    steps = list(
        client.beta.threads.runs.steps.list(run["id"], thread_id=run["thread_id"], limit=7, order="asc")
    )
    assert len(steps) == 45
    assert len({s.id for s in steps}) == 45
    assert [s.created_at for s in steps] == sorted(s.created_at for s in steps)
    newest_first = [
        s.id for s in client.beta.threads.runs.steps.list(run["id"], thread_id=run["thread_id"], limit=100)
    ]
    assert newest_first == [s.id for s in steps][::-1]


def test_retrieve_step_with_include_shows_file_search_content(client, runs):
    run = runs.finish("search")
    step = next(s for s in runs.steps(run) if s["type"] == "tool_calls")
    plain = client.beta.threads.runs.steps.retrieve(step["id"], thread_id=run["thread_id"], run_id=run["id"])
    results = plain.step_details.tool_calls[0].file_search.results
    assert len(results) == 3 and all(r.content is None for r in results)
    full = client.beta.threads.runs.steps.retrieve(
        step["id"], thread_id=run["thread_id"], run_id=run["id"], include=[SEARCH_CONTENT]
    )
    assert all(r.content[0].text for r in full.step_details.tool_calls[0].file_search.results)
    assert full.step_details.tool_calls[0].file_search.ranking_options.ranker == "default_2024_08_21"
    listed = client.beta.threads.runs.steps.list(
        run["id"], thread_id=run["thread_id"], include=[SEARCH_CONTENT]
    )
    assert any(
        s.type == "tool_calls" and s.step_details.tool_calls[0].file_search.results[0].content for s in listed
    )


def test_update_run_replaces_its_metadata(client, runs):
    run = runs.start("answer")
    updated = client.beta.threads.runs.update(
        run["id"], thread_id=run["thread_id"], metadata={"ticket": "T-1"}
    )
    assert updated.metadata == {"ticket": "T-1"}
    assert client.beta.threads.runs.retrieve(run["id"], thread_id=run["thread_id"]).metadata == {
        "ticket": "T-1"
    }


def test_streamed_run_yields_typed_events_in_order(client, runs):
    thread = _thread(client)
    stream = client.beta.threads.runs.create(
        thread_id=thread.id,
        assistant_id=runs.assistant("answer"),
        metadata={"sandbox_speed": "50"},
        stream=True,
    )
    events = [event.event for event in stream]
    assert events[:3] == ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
    assert events[-1] == "thread.run.completed"
    assert "thread.message.delta" in events


def test_stream_helper_accumulates_the_final_message(client, runs):
    thread = _thread(client, "Tell me about streams")
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=runs.assistant("answer"), metadata={"sandbox_speed": "50"}
    ) as stream:
        stream.until_done()
        final = stream.get_final_messages()
        run = stream.get_final_run()
    assert run.status == "completed"
    stored = client.beta.threads.messages.retrieve(final[0].id, thread_id=thread.id)
    assert final[0].content[0].text.value == stored.content[0].text.value


def test_submit_tool_outputs_completes_the_run_with_outputs_on_the_step(client, runs):
    run = client.beta.threads.create_and_run_poll(
        assistant_id=runs.assistant("functions"),
        thread={"messages": [{"role": "user", "content": "Weather?"}]},
        metadata={"sandbox_speed": "50"},
        poll_interval_ms=20,
    )
    assert run.status == "requires_action"
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    done = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=run.thread_id,
        tool_outputs=[{"tool_call_id": c.id, "output": f"result of {c.function.name}"} for c in calls],
        poll_interval_ms=20,
    )
    assert done.status == "completed"
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id, order="asc").data
    tool_step = steps[0]
    assert tool_step.status == "completed"
    assert [c.function.output for c in tool_step.step_details.tool_calls] == [
        "result of get_weather",
        "result of get_time",
    ]


def test_streamed_submit_resumes_with_the_completed_tool_step(client, runs):
    run = runs.wait(runs.start("functions"))
    calls = run["required_action"]["submit_tool_outputs"]["tool_calls"]

    class Collect(AssistantEventHandler):
        names: list

        def on_event(self, event):
            self.names.append(event.event)

    handler = Collect()
    handler.names = []
    with client.beta.threads.runs.submit_tool_outputs_stream(
        run_id=run["id"],
        thread_id=run["thread_id"],
        tool_outputs=[{"tool_call_id": c["id"], "output": "ok"} for c in calls],
        event_handler=handler,
    ) as stream:
        stream.until_done()
    assert handler.names[:3] == ["thread.run.step.completed", "thread.run.queued", "thread.run.in_progress"]
    assert handler.names[-1] == "thread.run.completed"
    plain = runs.wait(runs.start("functions"))
    stream = client.beta.threads.runs.submit_tool_outputs(
        plain["id"],
        thread_id=plain["thread_id"],
        tool_outputs=[
            {"tool_call_id": c["id"], "output": "ok"}
            for c in plain["required_action"]["submit_tool_outputs"]["tool_calls"]
        ],
        stream=True,
    )
    assert [e.event for e in stream][-1] == "thread.run.completed"


def test_cancel_moves_to_cancelling_then_cancelled_and_refuses_terminal_runs(client, runs):
    run = runs.start("slow", speed=20)
    cancelling = client.beta.threads.runs.cancel(run["id"], thread_id=run["thread_id"])
    assert cancelling.status == "cancelling"
    cancelled = client.beta.threads.runs.poll(run["id"], thread_id=run["thread_id"], poll_interval_ms=20)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at is not None
    with pytest.raises(BadRequestError) as caught:
        client.beta.threads.runs.cancel(run["id"], thread_id=run["thread_id"])
    assert caught.value.body["message"] == "Cannot cancel run with status 'cancelled'."
    assert caught.value.request_id.startswith("req_")


def test_assistants_list_and_retrieve(client, runs):
    assistant_id = runs.assistant("code")
    assert client.beta.assistants.retrieve(assistant_id).metadata == {"sandbox_script": "code"}
    assert assistant_id in [a.id for a in client.beta.assistants.list(limit=100)]
    with pytest.raises(NotFoundError):
        client.beta.assistants.retrieve("asst_missing")


def test_files_retrieve_and_content_serve_the_chart(client, runs):
    run = runs.finish("code")
    step = client.beta.threads.runs.steps.list(run["id"], thread_id=run["thread_id"], order="asc").data[0]
    file_id = step.step_details.tool_calls[0].code_interpreter.outputs[1].image.file_id
    info = client.files.retrieve(file_id)
    content = client.files.content(file_id).read()
    assert info.filename == "chart.png" and info.bytes == len(content)
    assert content.startswith(b"\x89PNG\r\n\x1a\n")


def test_azure_client_works_with_api_key_and_api_version(sandbox, runs):
    azure = AzureOpenAI(
        base_url=sandbox.base_url, api_key=sandbox.api_key, api_version="2024-08-01-preview", max_retries=0
    )
    run = azure.beta.threads.create_and_run_poll(
        assistant_id=runs.assistant("answer"),
        thread={"messages": [{"role": "user", "content": "Hi from Azure"}]},
        metadata={"sandbox_speed": "50"},
        poll_interval_ms=20,
    )
    assert run.status == "completed"
    assert azure.beta.threads.runs.retrieve(run.id, thread_id=run.thread_id).id == run.id
    assert len(azure.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id).data) == 1
