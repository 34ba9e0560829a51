"""For machines: /healthz for load balancers (no login, no detail) and /metrics for Prometheus."""

from __future__ import annotations

import asyncio
import hmac
import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import Http404, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..live.store import store

log = logging.getLogger(__name__)

#: A dependency that does not answer within this is down, as far as a load balancer is concerned.
CHECK_TIMEOUT = 2.0


def _database_answers() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


@login_not_required
@require_GET
async def healthz(request):
    """200 "ok" when the database (and Redis, when configured) answer; 503 otherwise. What failed goes to
    the log, not to the caller."""
    try:
        await asyncio.wait_for(sync_to_async(_database_answers)(), CHECK_TIMEOUT)
        if settings.REDIS_URL:
            await asyncio.wait_for(store().ping(), CHECK_TIMEOUT)
    except Exception as exc:  # a timeout, the store, the database: any failure is "unavailable"
        log.warning("health check failed: %s", type(exc).__name__)
        return HttpResponse("unavailable\n", status=503, content_type="text/plain")
    return HttpResponse("ok\n", content_type="text/plain")


@login_not_required
@require_GET
async def metrics(request):
    """This process's metrics, for a bearer of METRICS_TOKEN (off when it is empty: 404)."""
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404("Metrics are off (METRICS_TOKEN).")
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(offered.strip().encode(), token.encode()):
        response = HttpResponse("A bearer token is needed.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
