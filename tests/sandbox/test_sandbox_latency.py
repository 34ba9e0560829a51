"""SANDBOX_LATENCY_MS: every request waits, and waiting requests do not hold each other up."""

import asyncio
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
