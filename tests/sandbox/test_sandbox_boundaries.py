"""The sandbox inside the dashboard: reachable through its middleware without login or CSRF token,
and independent of the dashboard's code."""

import re
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.test import AsyncClient, override_settings

SANDBOX_DIR = Path(__file__).resolve().parents[2] / "sandbox"


def test_the_sandbox_imports_nothing_from_runs_ui():
    offenders = [
        p.name
        for p in SANDBOX_DIR.rglob("*.py")
        if re.search(r"^\s*(from|import)\s+runs_ui", p.read_text(), re.M)
    ]
    assert offenders == []


@pytest.mark.django_db(transaction=True)
@override_settings(ROOT_URLCONF="sandbox.standalone_urls", SANDBOX_LATENCY_MS=0)
async def test_the_api_needs_no_login_and_no_csrf_token_under_the_dashboard_middleware():
    assert "django.contrib.auth.middleware.LoginRequiredMiddleware" in settings.MIDDLEWARE
    client = AsyncClient(enforce_csrf_checks=True)
    headers = {"Authorization": f"Bearer {settings.SANDBOX_API_KEY}", "OpenAI-Beta": "assistants=v2"}
    created = await client.post("/v1/threads", data={}, content_type="application/json", headers=headers)
    assert created.status_code == 200, created.content
    listed = await client.get("/v1/threads", headers=headers)
    assert listed.json()["data"][0]["id"] == created.json()["id"]
    anonymous = await client.get("/v1/threads")
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "invalid_api_key"
    # The views' queries ran on sync_to_async's thread; its connection would keep PostgreSQL's test
    # database busy at teardown.
    await sync_to_async(connections.close_all)()
