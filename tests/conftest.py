"""Fixtures shared by every test package."""

import pytest

pytest_plugins = ["tests.fixtures"]

from tests.sandbox_server import SandboxServer, running_sandbox


@pytest.fixture(scope="session")
def sandbox() -> SandboxServer:
    """The stand-alone sandbox API at speed 10, no added latency, in its own process and database.

    `sandbox.base_url` (…/v1), `sandbox.api_key`, `sandbox.headers`, `sandbox.request(method, path, …)`.
    """
    with running_sandbox(speed=10, latency_ms=0) as server:
        yield server


@pytest.fixture
def sandbox_api(sandbox):
    """An httpx client for the sandbox with key and beta header set: `sandbox_api.get("/threads")`."""
    with sandbox.client() as client:
        yield client
