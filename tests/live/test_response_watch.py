"""The live layer for the Responses shape: background responses watched on the same leases, budget and
versioned pushes as runs; responses started here stream, and a broken stream resumes after its last
sequence number. Against the sandbox over HTTP, sockets on the full ASGI app."""

from __future__ import annotations

import asyncio
import re
import time
from urllib.parse import urlsplit

import pytest

from runs_ui.connections import aget_responses_client
from runs_ui.live import response_relay
from runs_ui.live.response_watch import response_watcher
from runs_ui.models import ResponseSnapshot
from runs_ui.upstream.responses_client import ResponsesClient
from tests.e2e.stack import CuttableProxy
from tests.fixtures import eventually
from tests.live.support import sandbox_get, sandbox_post

pytestmark = pytest.mark.django_db(transaction=True)


def statuses(html: str, response_id: str) -> list[str]:
    """The status badges of a response in a push (its header, its row in a conversation)."""
    pattern = rf'id="response-status-{re.escape(response_id)}"><span class="badge[^"]*" title="([^"]*)"'
    return re.findall(pattern, html)


def plain(messages: list[str]) -> str:
    """What the pushed HTML says, tags dropped."""
    return re.sub(r"<[^>]+>", "", "".join(messages))


def shown(socket, response_id: str) -> list[str]:
    """Each status the socket showed, in order, without repeats."""
    out = []
    for html in socket.messages:
        for status in statuses(html, response_id):
            if not out or out[-1] != status:
                out.append(status)
    return out


async def background(sandbox, model: str, text: str, **options) -> dict:
    metadata = {"sandbox_speed": "10", **options.pop("metadata", {})}
    return await sandbox_post(
        sandbox,
        "/responses",
        {"model": model, "input": text, "background": True, "metadata": metadata, **options},
    )


async def test_a_watched_background_response_shows_each_status_on_its_page_as_it_changes(
    open_socket, users, upstream, requests_log
):
    # Queued a second, then writing for about a second: each status lasts longer than a poll.
    created = await background(
        upstream, "sandbox-answer", "Explain.", metadata={"sandbox_speed": "2", "sandbox_queued_seconds": "2"}
    )
    socket = await open_socket(f"/ws/responses/default/{created['id']}/", user=users.viewer)

    await socket.expect(lambda html: "completed" in statuses(html, created["id"]), within=15)

    assert shown(socket, created["id"]) == ["queued", "in_progress", "completed"]
    final = next(html for html in socket.messages if "completed" in statuses(html, created["id"]))
    assert "tokens" in final  # usage comes with the final state
    assert "Here is what I found about Explain." in plain(socket.messages)  # its message, pushed
    snapshot = await ResponseSnapshot.objects.aget(response_id=created["id"])
    assert [t["status"] for t in snapshot.transitions] == ["queued", "in_progress", "completed"]
    # One watcher, one GET per look, whatever the socket count.
    gets = [e for e in requests_log.entries(method="GET") if e["path"].endswith(created["id"])]
    assert gets


async def test_an_ended_response_costs_nothing_to_keep_on_screen(open_socket, users, upstream, requests_log):
    created = await background(upstream, "sandbox-answer", "Done already.")
    client = await aget_responses_client("default")
    await asyncio.sleep(0.5)
    from runs_ui import response_index

    await response_index.record_responses("default", [await client.get_response(created["id"])])
    assert (await ResponseSnapshot.objects.aget(response_id=created["id"])).status == "completed"
    since = time.time()

    socket = await open_socket(f"/ws/responses/default/{created['id']}/", user=users.viewer)
    await socket.quiet(1.0)

    assert socket.accepted and ("default", created["id"]) not in response_watcher.responses
    assert [e for e in requests_log.entries(since=since) if created["id"] in e["path"]] == []


async def test_an_operator_sees_the_answer_button_and_a_viewer_does_not_in_pushed_headers(
    open_socket, users, upstream
):
    created = await background(upstream, "sandbox-functions", "Weather?")
    viewer = await open_socket(f"/ws/responses/default/{created['id']}/", user=users.viewer)
    operator = await open_socket(f"/ws/responses/default/{created['id']}/", user=users.operator)

    done = await operator.expect(lambda html: "completed" in statuses(html, created["id"]), within=15)
    seen = await viewer.expect(lambda html: "completed" in statuses(html, created["id"]), within=15)

    assert "Answer…" in done and "Waiting for a person" in done
    assert "Answer…" not in seen and "Waiting for a person" in seen


async def test_a_conversation_page_gets_new_responses_and_what_was_given_to_them(
    open_socket, users, upstream
):
    conversation = await sandbox_post(upstream, "/conversations", {})
    socket = await open_socket(f"/ws/conversations/default/{conversation['id']}/", user=users.viewer)
    await asyncio.sleep(0.5)  # the conversation's watch has taken its first look

    created = await background(upstream, "sandbox-answer", "A new question.", conversation=conversation["id"])

    group = await socket.expect(lambda html: f'id="response-{created["id"]}"' in html, within=10)
    assert 'data-merge="timeline"' in group and "A new question." in plain([group])
    assert group.index("A new question.") < group.index(f'id="response-{created["id"]}"')
    # Its items come with its group (those it has so far), or into it (the list carrying its id) as its own
    # watch sees them.
    await socket.expect(
        lambda html: f'data-run="{created["id"]}"' in html and "Here is what I found" in plain([html]),
        within=15,
    )


async def test_the_index_socket_gets_a_responses_status_cell_when_it_changes(open_socket, users, upstream):
    created = await background(
        upstream, "sandbox-answer", "Index me.", metadata={"sandbox_queued_seconds": "5"}
    )
    client = await aget_responses_client("default")
    from runs_ui import response_index

    await response_index.record_responses("default", [await client.get_response(created["id"])])
    socket = await open_socket("/ws/index/", user=users.viewer)
    cell = f'id="response-cell-default-{created["id"]}"'

    first = await socket.expect(lambda html: cell in html, within=5)
    done = await socket.expect(lambda html: cell in html and 'title="completed"' in html, within=20)

    assert 'title="queued"' in first
    assert done


async def test_the_polling_fallback_answers_the_saved_state(operator_client, upstream):
    created = await background(upstream, "sandbox-answer", "Poll me.")

    answer = await operator_client.get(f"/live/responses/default/{created['id']}/")

    assert answer.status_code == 200
    assert f'id="response-header-{created["id"]}"' in answer.content.decode()
    missing = await operator_client.get("/live/responses/default/not-a-response/")
    assert missing.status_code == 404


# --- streams -------------------------------------------------------------------------------------------


class ResumeSpy(ResponsesClient):
    """The dashboard's client, recording where each resumed stream starts (the calls go through)."""

    resumed_after: list

    def stream_response(self, response_id, starting_after=None):
        self.resumed_after.append(starting_after)
        return super().stream_response(response_id, starting_after)


@pytest.fixture
def proxy(upstream):
    proxy = CuttableProxy(urlsplit(upstream.base_url).port)
    yield proxy
    proxy.close()


async def test_a_response_started_here_streams_to_its_page(open_socket, users, upstream):
    client = await aget_responses_client("default")
    started = await response_relay.start(
        "default",
        client,
        {"model": "sandbox-answer", "input": "Stream it.", "metadata": {"sandbox_speed": "2"}},
    )
    assert started.response.status in ("queued", "in_progress") and started.request_id
    assert response_watcher.responses[("default", started.response.id)].stream is not None
    socket = await open_socket(f"/ws/responses/default/{started.response.id}/", user=users.viewer)

    await socket.expect(lambda html: "completed" in statuses(html, started.response.id), within=15)

    assert shown(socket, started.response.id)[-2:] == ["in_progress", "completed"]
    assert "Here is what I found about Stream it." in plain(socket.messages)


async def test_a_broken_stream_resumes_after_its_last_sequence_number_instead_of_starting_over(
    settings, upstream, proxy
):
    settings.ASSISTANTS_API_BASE_URL = upstream.base_url.replace(
        f":{urlsplit(upstream.base_url).port}/", f":{proxy.port}/"
    )
    client = ResumeSpy((await aget_responses_client("default")).transport)
    client.resumed_after = []
    started = await response_relay.start(
        "default",
        client,
        {"model": "sandbox-functions", "input": "Weather?", "metadata": {"sandbox_speed": "1"}},
    )
    watch = response_watcher.responses[("default", started.response.id)]
    # Cut every connection once the stream is half-way through the first call's arguments.
    await eventually(lambda: watch.state.items and not watch.state.response.is_terminal, timeout=15)
    proxy.cut()

    await eventually(lambda: watch.state.response and watch.state.response.is_terminal, timeout=30)
    # As the stream left it (the poller then takes over, from a state of its own).
    state = watch.state

    assert client.resumed_after, "the stream was reopened"
    # After the response's first item was added (created, queued, in_progress and that item came before).
    assert all(isinstance(n, int) and n >= 3 for n in client.resumed_after), client.resumed_after
    final = await sandbox_get(upstream, f"/responses/{started.response.id}")
    assert [i.raw for i in state.items.values()] == final["output"]  # each item once, whole
    assert state.response.status == "completed"
