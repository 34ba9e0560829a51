"""Fixtures shared by every test package."""

import pytest

from tests.sandbox_server import SandboxServer, running_sandbox

pytest_plugins = ["tests.fixtures"]

#: Tests whose behaviour does not depend on the database or the channel layer (or that start processes
#: and a Redis of their own): `make test` runs them once, in the PostgreSQL + Redis pass; the SQLite pass
#: runs the rest (`-m "not once"`).
ONCE = (
    "tests/upstream/",
    "tests/settings/",
    "tests/e2e/",
    "tests/live/test_faults.py",
    "tests/live/test_multiprocess.py",
    "tests/live/test_budget.py",
    "tests/live/test_store.py",
    "tests/live/test_stream_deltas.py",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(part in item.nodeid for part in ONCE):
            item.add_marker(pytest.mark.once)


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


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """On SQLite, the test database is a file, as in production, not shared-cache memory.

    A request and the stream relay it starts write at the same time from two threads (as under daphne).
    A file database makes one wait for the other (WAL, busy timeout); shared-cache memory fails at once
    with "database table is locked".
    """
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        database.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("db") / "test.sqlite3")
