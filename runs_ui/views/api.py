"""JSON endpoints for agent applications: register the threads, responses and conversations they create,
so the dashboard lists them (OpenAI's APIs cannot list either).

    POST /api/threads/   Authorization: Bearer <INDEX_API_TOKEN>
    {"thread_ids": ["thread_…", …], "connection": "default", "metadata": {"customer": "…"}}

    POST /api/responses/   Authorization: Bearer <INDEX_API_TOKEN>
    {"response_ids": ["resp_…"], "conversation_ids": ["conv_…"], "connection": "default", "metadata": {…}}

Off (404) until INDEX_API_TOKEN is set. No session, no CSRF: the bearer token is the credential.
"""

from __future__ import annotations

import hmac
import json

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .. import index, response_index
from ..forms import MAX_PASTED_IDS, METADATA_MAX_KEY, METADATA_MAX_PAIRS, METADATA_MAX_VALUE
from ..models import DEFAULT_CONNECTION, Connection, ThreadEntry
from ..upstream import text
from ..upstream.objects import is_id


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _metadata_error(metadata) -> str:
    if not isinstance(metadata, dict):
        return "metadata must be an object of strings."
    if len(metadata) > METADATA_MAX_PAIRS:
        return f"metadata has at most {METADATA_MAX_PAIRS} pairs."
    for key, value in metadata.items():
        if not isinstance(value, str) or len(key) > METADATA_MAX_KEY or len(value) > METADATA_MAX_VALUE:
            return (
                f"metadata keys are strings of at most {METADATA_MAX_KEY} characters, values of at most "
                f"{METADATA_MAX_VALUE}."
            )
    return ""


def _refused(request, what: str) -> JsonResponse | None:
    """The token check both endpoints make (None when the request may go on)."""
    token = settings.INDEX_API_TOKEN
    if not token:
        return _error(f"{what} registration is switched off (set INDEX_API_TOKEN to enable it).", 404)
    given = request.headers.get("Authorization", "").encode()
    if not hmac.compare_digest(given, f"Bearer {token}".encode()):
        response = _error("A valid 'Authorization: Bearer <token>' header is required.", 401)
        response["WWW-Authenticate"] = "Bearer"
        return response
    return None


def _body(request, example: str):
    """The JSON object of the request, or the error to answer."""
    try:
        # Safe text (no NUL, no lone surrogate) before any of it reaches the index (upstream/text.py).
        body = text.loads(request.body or b"null")
    except (ValueError, RecursionError):  # RecursionError: very deep nesting
        return None, _error("The body must be JSON.", 400)
    if not isinstance(body, dict):
        return None, _error(f"The body must be an object like {example}.", 400)
    return body, None


async def _known_connection(connection) -> bool:
    return connection == DEFAULT_CONNECTION or (
        isinstance(connection, str) and await Connection.objects.filter(slug=connection).aexists()
    )


@csrf_exempt
@login_not_required
@require_POST
async def register_threads(request):
    if refused := _refused(request, "Thread"):
        return refused
    body, problem = _body(request, '{"thread_ids": ["thread_…"]}')
    if problem:
        return problem
    ids = body.get("thread_ids", [body["thread_id"]] if "thread_id" in body else None)
    if not isinstance(ids, list) or not ids or len(ids) > MAX_PASTED_IDS:
        return _error(f"Give thread_ids: a list of 1 to {MAX_PASTED_IDS} thread ids.", 400)
    bad = [i for i in ids if not is_id("thread", i)]
    if bad:
        return _error(f"Not thread ids: {json.dumps(bad[:5])[:300]}", 400)
    connection = body.get("connection", DEFAULT_CONNECTION)
    if not await _known_connection(connection):
        return _error("Unknown connection.", 400)
    metadata = body.get("metadata", {})
    if problem := _metadata_error(metadata):
        return _error(problem, 400)
    created = 0
    for thread_id in dict.fromkeys(ids):
        existed = await ThreadEntry.objects.filter(connection=connection, thread_id=thread_id).aexists()
        entry = await index.record_thread(connection, thread_id, "registered")
        if metadata:
            await ThreadEntry.objects.filter(pk=entry.pk).aupdate(metadata={**entry.metadata, **metadata})
        created += not existed
    return JsonResponse({"registered": len(set(ids)), "new": created}, status=201 if created else 200)


@csrf_exempt
@login_not_required
@require_POST
async def register_responses(request):
    if refused := _refused(request, "Response"):
        return refused
    body, problem = _body(request, '{"response_ids": ["resp_…"], "conversation_ids": ["conv_…"]}')
    if problem:
        return problem
    response_ids = body.get("response_ids", [])
    conversation_ids = body.get("conversation_ids", [])
    if (
        not isinstance(response_ids, list)
        or not isinstance(conversation_ids, list)
        or not (response_ids or conversation_ids)
        or len(response_ids) + len(conversation_ids) > MAX_PASTED_IDS
    ):
        return _error(
            f"Give response_ids and/or conversation_ids: lists of 1 to {MAX_PASTED_IDS} ids in all.", 400
        )
    bad = [i for i in response_ids if not is_id("response", i)]
    bad += [i for i in conversation_ids if not is_id("conversation", i)]
    if bad:
        return _error(f"Not response (resp_…) or conversation (conv_…) ids: {json.dumps(bad[:5])[:300]}", 400)
    connection = body.get("connection", DEFAULT_CONNECTION)
    if not await _known_connection(connection):
        return _error("Unknown connection.", 400)
    metadata = body.get("metadata", {})
    if problem := _metadata_error(metadata):
        return _error(problem, 400)
    new = await response_index.register(
        connection,
        response_ids=response_ids,
        conversation_ids=conversation_ids,
        source="registered",
        metadata=metadata,
    )
    registered = len(set(response_ids)) + len(set(conversation_ids))
    return JsonResponse({"registered": registered, "new": new}, status=201 if new else 200)
