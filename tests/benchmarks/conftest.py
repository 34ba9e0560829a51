"""Fixtures for the benchmarks (`make benchmark`; never in CI: every test here is marked `benchmark`).

Every benchmark talks to real processes over real sockets: the sandbox API in its own daphne process
with 50 ms added to every request, and the dashboard in its own daphne process (see harness.py).
"""

import logging
import tempfile
from pathlib import Path

import pytest

from tests.benchmarks.harness import LATENCY_MS, RequestLog, raise_fd_limit
from tests.sandbox_server import running_sandbox


def pytest_collection_modifyitems(items):
    for item in items:
        if "benchmarks" in str(item.path):
            assert item.get_closest_marker("benchmark"), f"{item.nodeid} must be marked benchmark"


@pytest.fixture(scope="session", autouse=True)
def _quiet_client_log():
    """The in-process client logs every request at INFO; the figures are what this output is for."""
    logging.getLogger("runs_ui").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def fd_limit() -> int:
    """Thousands of sockets: raised before any server starts, so the daphne processes inherit it."""
    return raise_fd_limit()


@pytest.fixture(scope="session")
def request_log_path() -> Path:
    with tempfile.NamedTemporaryFile(prefix="sandbox-requests-", suffix=".jsonl", delete=False) as f:
        path = Path(f.name)
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def bench_sandbox(fd_limit, request_log_path):
    """The sandbox at speed 1 with 50 ms added latency and a request log (one JSON line per request)."""
    with running_sandbox(
        speed=1,
        latency_ms=LATENCY_MS,
        env={"SANDBOX_REQUEST_LOG": str(request_log_path), "LOG_LEVEL": "WARNING"},
    ) as server:
        yield server


@pytest.fixture(scope="session")
def request_log(bench_sandbox, request_log_path) -> RequestLog:
    return RequestLog(request_log_path)
