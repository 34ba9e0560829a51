"""SANDBOX_LATENCY_MS: every request waits, and waiting requests do not hold each other up."""

import asyncio
import json
import time

from tests.sandbox_server import running_sandbox


async def test_latency_delays_each_request_but_not_the_others():
    with running_sandbox(latency_ms=400) as server:
        async with server.async_client() as client:
            started = time.monotonic()
            responses = await asyncio.gather(*(client.get("/threads") for _ in range(10)))
            elapsed = time.monotonic() - started
    assert all(r.status_code == 200 for r in responses)
    assert 0.4 <= elapsed < 2.0  # ten requests of 0.4 s each, side by side


async def test_only_a_caller_with_the_key_waits_or_is_logged(tmp_path):
    log = tmp_path / "requests.jsonl"
    with running_sandbox(latency_ms=3000, env={"SANDBOX_REQUEST_LOG": str(log)}) as server:
        async with server.async_client() as client:
            started = time.monotonic()
            anonymous = await client.get("/threads", headers={"Authorization": ""})
            wrong_key = await client.get("/threads", headers={"Authorization": "Bearer sk-wrong"})
            refused_in = time.monotonic() - started
            started = time.monotonic()
            allowed = await client.get("/assistants")
            allowed_in = time.monotonic() - started
    assert (anonymous.status_code, wrong_key.status_code, allowed.status_code) == (401, 401, 200)
    assert refused_in < 3.0  # two refusals together, faster than one added latency
    assert allowed_in >= 3.0
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(line["method"], line["path"]) for line in lines] == [("GET", "/v1/assistants")]
