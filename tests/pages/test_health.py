"""/healthz for load balancers and /metrics for Prometheus: no login, no detail, the token for metrics."""

from __future__ import annotations

import socket

import pytest

from runs_ui.live import store as live_store
from runs_ui.views import health

pytestmark = pytest.mark.django_db(transaction=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_healthz_answers_ok_without_a_login(anon_client):
    response = await anon_client.get("/healthz")
    assert response.status_code == 200 and response.content == b"ok\n"


async def test_healthz_answers_503_without_detail_when_redis_is_unreachable(anon_client, settings):
    settings.REDIS_URL = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    settings.REDIS_SOCKET_TIMEOUT = settings.REDIS_POOL_TIMEOUT = 0.5
    live_store.reset()
    try:
        response = await anon_client.get("/healthz")
    finally:
        await live_store.store().close()
        live_store.reset()
    assert response.status_code == 503 and response.content == b"unavailable\n"
    assert b"hunter2" not in response.content and b"6379" not in response.content


async def test_healthz_answers_503_when_the_database_does_not(anon_client, monkeypatch):
    from django.db import OperationalError

    def down():
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(health, "_database_answers", down)
    response = await anon_client.get("/healthz")
    assert response.status_code == 503 and b"connect" not in response.content


async def test_metrics_are_off_without_a_token(anon_client, settings):
    settings.METRICS_TOKEN = ""
    assert (await anon_client.get("/metrics")).status_code == 404


async def test_metrics_need_the_bearer_token(anon_client, settings):
    settings.METRICS_TOKEN = "a-long-random-metrics-token-0123456789"
    assert (await anon_client.get("/metrics")).status_code == 401
    wrong = await anon_client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


async def test_metrics_show_the_live_layer(anon_client, settings):
    settings.METRICS_TOKEN = "a-long-random-metrics-token-0123456789"
    response = await anon_client.get(
        "/metrics", headers={"Authorization": f"Bearer {settings.METRICS_TOKEN}"}
    )
    assert response.status_code == 200
    body = response.content.decode()
    for name in (
        "runs_live_sockets",
        'runs_live_watched_runs{priority="foreground"}',
        "runs_live_polls_total",
        "runs_live_upstream_requests_total",
        "runs_live_push_latency_seconds",
        "runs_live_lease_takeovers_total",
        "runs_live_version_gaps_repaired_total",
        "runs_live_watch_errors_total",
    ):
        assert name in body, name
