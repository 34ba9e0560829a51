"""Fixtures for the Responses shape's pages and actions: responses and conversations made in the sandbox
(over real HTTP, through its API), read back through the dashboard.

- `make_response(model, input, **options)`: a background response in the sandbox (its JSON);
  `model="sandbox-<script>"` chooses the script (sandbox/README.md), `speed=` its pace.
- `wait_response(response, *statuses)`: polls the sandbox until the response has one of them.
- `make_conversation(**metadata)`: a new conversation's JSON.
- `answer_calls(response)`: the sandbox's follow-up answering a `functions` response, through its API.
"""

from __future__ import annotations

import json
import re
import time

import pytest

HX = {"HX-Request": "true"}


def body(response) -> str:
    return response.content.decode()


def item_ids(html: str) -> list[str]:
    """The items a page or partial shows, in order (each an <li class="step item …" id=…>)."""
    return re.findall(r'<li class="step item [^"]*" id="([^"]+)"', html)


def load_more_url(html: str) -> str:
    match = re.search(r'<li class="loader" hx-get="([^"]+)" hx-trigger="revealed"', html)
    return match.group(1).replace("&amp;", "&") if match else ""


@pytest.fixture
def make_response(upstream):
    def make(model: str = "sandbox-answer", input="Hello", *, speed: float = 10, background=True, **options):
        metadata = {
            "sandbox_speed": str(speed),
            **{k: str(v) for k, v in options.pop("metadata", {}).items()},
        }
        request = {"model": model, "input": input, "background": background, "metadata": metadata, **options}
        return upstream.api("POST", "/responses", json=request)

    return make


@pytest.fixture
def wait_response(upstream):
    def wait(response: dict, *statuses: str, timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            current = upstream.api("GET", f"/responses/{response['id']}")
            if current["status"] in statuses:
                return current
            if time.monotonic() > deadline:
                raise AssertionError(f"{response['id']} is {current['status']}, not {statuses}")
            time.sleep(0.05)

    return wait


@pytest.fixture
def make_conversation(upstream):
    def make(**metadata) -> dict:
        return upstream.api(
            "POST", "/conversations", json={"metadata": {k: str(v) for k, v in metadata.items()}}
        )

    return make


@pytest.fixture
def answer_calls(upstream):
    def answer(response: dict, outputs: dict | None = None) -> dict:
        """A follow-up carrying an output for each of the response's function calls (by function name)."""
        calls = [i for i in response["output"] if i["type"] == "function_call"]
        follow_up = {
            "model": response["model"],
            "background": True,
            "input": [
                {
                    "type": "function_call_output",
                    "call_id": c["call_id"],
                    "output": json.dumps((outputs or {}).get(c["name"], {"ok": c["name"]})),
                }
                for c in calls
            ],
            "metadata": {"sandbox_speed": "10"},
        }
        if response.get("conversation"):
            follow_up["conversation"] = response["conversation"]["id"]
        else:
            follow_up["previous_response_id"] = response["id"]
        return upstream.api("POST", "/responses", json=follow_up)

    return answer


@pytest.fixture(autouse=True)
async def _relays_end_before_the_database(request):
    """Streams of responses a test started end (or are stopped) before its database is flushed."""
    yield
    import asyncio

    from runs_ui.live import response_relay
    from runs_ui.live.response_watch import response_watcher

    tasks = list(response_relay._tasks)
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=10)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    await response_watcher.stop()
