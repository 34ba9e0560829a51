"""The wire: async views for the Assistants v2 endpoints, with the real service's auth, headers and errors.

Each URL gets one view from `endpoint()`, which checks the key (Bearer, or Azure's `api-key` with
`?api-version=`), then logs the request (SANDBOX_REQUEST_LOG) and sleeps SANDBOX_LATENCY_MS, checks, for
the Assistants endpoints, the `OpenAI-Beta: assistants=v2` header, dispatches on the method, and turns
errors into `{"error": {...}}` envelopes. Database work runs in sync_to_async. The Responses and
Conversations views (responses_api.py) use the same helpers.
"""

import asyncio
import hmac
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from . import operations, streaming, validation, wire
from .errors import ApiError, bad_request
from .pagination import ListParams

logger = logging.getLogger(__name__)

SEARCH_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"
Handler = Callable[..., Awaitable[HttpResponse]]


# --- requests -------------------------------------------------------------------------------------


def _mask(key: str) -> str:
    if len(key) <= 12:
        return "*" * len(key)
    return key[:3] + "*" * (len(key) - 7) + key[-4:]


def _authenticate(request: HttpRequest) -> bool:
    """Raises 401 unless a valid key came; returns True for Azure's surface (`?api-version=`)."""
    azure = "api-version" in request.GET
    offered = []
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        offered.append(token.strip())
    if azure and request.headers.get("api-key"):
        offered.append(request.headers["api-key"].strip())
    if not offered:
        raise ApiError(
            401,
            "You didn't provide an API key. You need to provide your API key in an Authorization header "
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the api-key header with an "
            "api-version query parameter.",
            code="invalid_api_key",
        )
    if not any(hmac.compare_digest(key.encode(), settings.SANDBOX_API_KEY.encode()) for key in offered):
        raise ApiError(
            401,
            f"Incorrect API key provided: {_mask(offered[0])}. "
            "The sandbox accepts the key in its SANDBOX_API_KEY setting.",
            code="invalid_api_key",
        )
    return azure


def _require_beta(request: HttpRequest) -> None:
    values = [value.strip() for value in request.headers.get("OpenAI-Beta", "").split(",")]
    if "assistants=v2" in values:
        return
    if "assistants=v1" in values:
        message = (
            "The v1 Assistants API has been deprecated. "
            "Please try again by setting the header 'OpenAI-Beta: assistants=v2'."
        )
    else:
        message = (
            "You must provide the 'OpenAI-Beta' header to access the Assistants API. "
            "Please try again by setting the header 'OpenAI-Beta: assistants=v2'."
        )
    raise ApiError(400, message, code="invalid_beta")


def _reject_constant(name: str):
    raise ValueError(name)


def read_body(request: HttpRequest, operation: str) -> dict:
    try:
        raw = request.body
    except RequestDataTooBig:
        raise ApiError(413, "The request body is too large.") from None
    if not raw.strip():
        data = {}
    else:
        try:
            data = json.loads(raw, parse_constant=_reject_constant)
        except (ValueError, RecursionError):  # RecursionError: very deep nesting
            raise bad_request(
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
                "your HTTP library correctly. The API expects a JSON payload, but what was sent was not "
                "valid JSON.)"
            ) from None
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object.", code="invalid_type")
    where = _unstorable(data)
    if where is not None:
        raise bad_request(
            f"Invalid '{where}': the string holds a character the sandbox cannot store "
            "(NUL, or half of a surrogate pair).",
            param=where or None,
            code="invalid_value",
        )
    return validation.validate(operation, data)


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate, which JSON can carry and UTF-8 cannot
        return False
    return True


def _unstorable(data) -> str | None:
    """The path of the first string (or key) JSON can carry but the database cannot hold, if any.

    A walk with its own stack: the body may be nested as deep as the JSON parser allowed.
    """
    stack = [((), data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if not _storable(value):
                return validation.path_text(path)
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                if not _storable(key):
                    return validation.path_text(path)
                stack.append(((*path, key), item))
        elif isinstance(value, list):
            stack.extend(((*path, n), item) for n, item in reversed(list(enumerate(value))))
    return None


def _include_content(request: HttpRequest) -> bool:
    values = request.GET.getlist("include[]") + request.GET.getlist("include")
    for value in values:
        if value != SEARCH_CONTENT:
            raise bad_request(
                f"Invalid value: '{value}'. Supported values are: '{SEARCH_CONTENT}'.",
                param="include",
                code="invalid_value",
            )
    return bool(values)


# --- responses ------------------------------------------------------------------------------------


def json_response(body: dict, status: int = 200) -> HttpResponse:
    return HttpResponse(json.dumps(body, ensure_ascii=False), status=status, content_type="application/json")


def _error(e: ApiError) -> HttpResponse:
    return json_response(wire.error(e.message, e.type, e.param, e.code), status=e.status)


def sse(frames) -> StreamingHttpResponse:
    response = StreamingHttpResponse(frames, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


def _run_response(result: operations.RunResult, stream: bool) -> HttpResponse:
    if stream:
        return sse(streaming.run_events(result.run_pk, result.stream_after or 0))
    response = json_response(result.body)
    # How long a poller should wait: scaled by the run's speed so fast test runs poll fast.
    response["openai-poll-after-ms"] = str(max(50, int(settings.SANDBOX_POLL_AFTER_MS / result.speed)))
    return response


def _log_request(request: HttpRequest) -> None:
    line = json.dumps(
        {
            "t": time.time(),
            "method": request.method,
            "path": request.path,
            "agent": request.headers.get("User-Agent", ""),
        }
    )
    with open(settings.SANDBOX_REQUEST_LOG, "a") as log:
        log.write(line + "\n")


def endpoint(*, beta: bool = True, **handlers: Handler):
    """One URL's view; `handlers` maps HTTP methods to async handlers taking the request and URL args."""

    @csrf_exempt
    @login_not_required
    async def view(request: HttpRequest, **kwargs) -> HttpResponse:
        request_id = "req_" + secrets.token_hex(16)
        try:
            azure = _authenticate(request)
            # Only a caller with the key costs the sandbox anything: no log line to fill a disk, no
            # latency to hold a connection open for whoever knocks.
            if settings.SANDBOX_REQUEST_LOG:
                await asyncio.to_thread(_log_request, request)
            await asyncio.sleep(settings.SANDBOX_LATENCY_MS / 1000)
            if not all(_storable(value) for value in [*kwargs.values(), *request.GET.values()]):
                raise bad_request(
                    f"Invalid URL ({request.method} {request.path}): it holds a character no id or parameter "
                    "can contain (NUL, or half of a surrogate pair).",
                )
            handler = handlers.get(request.method)
            if handler is None:
                raise ApiError(404, f"Invalid URL ({request.method} {request.path})")
            if beta and not azure:
                _require_beta(request)
            response = await handler(request, **kwargs)
        except ApiError as e:
            response = _error(e)
        except Exception:
            logger.exception("sandbox request %s failed", request_id)
            response = _error(
                ApiError(
                    500,
                    "The server had an error while processing your request. Sorry about that!",
                    type_="server_error",
                )
            )
        response["x-request-id"] = request_id
        return response

    return view


@csrf_exempt
@login_not_required
async def invalid_url(request: HttpRequest) -> HttpResponse:
    response = _error(ApiError(404, f"Invalid URL ({request.method} {request.path})"))
    response["x-request-id"] = "req_" + secrets.token_hex(16)
    return response


# --- handlers -------------------------------------------------------------------------------------


def _call(fn):
    return sync_to_async(fn)


async def _create_assistant(request):
    return json_response(await _call(operations.create_assistant)(read_body(request, "createAssistant")))


async def _list_assistants(request):
    return json_response(await _call(operations.list_assistants)(ListParams.from_query(request.GET)))


async def _get_assistant(request, assistant_id):
    return json_response(await _call(operations.get_assistant)(assistant_id))


async def _create_thread(request):
    return json_response(await _call(operations.create_thread)(read_body(request, "createThread")))


async def _list_threads(request):
    return json_response(await _call(operations.list_threads)(ListParams.from_query(request.GET)))


async def _get_thread(request, thread_id):
    return json_response(await _call(operations.get_thread)(thread_id))


async def _modify_thread(request, thread_id):
    return json_response(await _call(operations.modify_thread)(thread_id, read_body(request, "modifyThread")))


async def _create_message(request, thread_id):
    return json_response(
        await _call(operations.create_message)(thread_id, read_body(request, "createMessage"))
    )


async def _list_messages(request, thread_id):
    params = ListParams.from_query(request.GET)
    return json_response(await _call(operations.list_messages)(thread_id, params, request.GET.get("run_id")))


async def _get_message(request, thread_id, message_id):
    return json_response(await _call(operations.get_message)(thread_id, message_id))


async def _create_run(request, thread_id):
    body = read_body(request, "createRun")
    result = await _call(operations.create_run)(thread_id, body, _include_content(request))
    return _run_response(result, bool(body.get("stream")))


async def _create_thread_and_run(request):
    body = read_body(request, "createThreadAndRun")
    result = await _call(operations.create_thread_and_run)(body)
    return _run_response(result, bool(body.get("stream")))


async def _list_runs(request, thread_id):
    return json_response(await _call(operations.list_runs)(thread_id, ListParams.from_query(request.GET)))


async def _get_run(request, thread_id, run_id):
    return _run_response(await _call(operations.get_run)(thread_id, run_id), False)


async def _modify_run(request, thread_id, run_id):
    body = read_body(request, "modifyRun")
    return _run_response(await _call(operations.modify_run)(thread_id, run_id, body), False)


async def _cancel_run(request, thread_id, run_id):
    read_body(request, "cancelRun")
    return _run_response(await _call(operations.cancel_run)(thread_id, run_id), False)


async def _submit_tool_outputs(request, thread_id, run_id):
    body = read_body(request, "submitToolOuputsToRun")
    result = await _call(operations.submit_tool_outputs)(thread_id, run_id, body)
    return _run_response(result, bool(body.get("stream")))


async def _list_steps(request, thread_id, run_id):
    params = ListParams.from_query(request.GET)
    include = _include_content(request)
    return json_response(await _call(operations.list_steps)(thread_id, run_id, params, include))


async def _get_step(request, thread_id, run_id, step_id):
    include = _include_content(request)
    return json_response(await _call(operations.get_step)(thread_id, run_id, step_id, include))


async def _get_file(request, file_id):
    return json_response(await _call(operations.get_file)(file_id))


async def _file_content(request, file_id):
    data, media_type, filename = await _call(operations.file_content)(file_id)
    response = HttpResponse(data, content_type=media_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


assistants = endpoint(GET=_list_assistants, POST=_create_assistant)
assistant = endpoint(GET=_get_assistant)
threads = endpoint(GET=_list_threads, POST=_create_thread)
thread_and_run = endpoint(POST=_create_thread_and_run)
thread = endpoint(GET=_get_thread, POST=_modify_thread)
messages = endpoint(GET=_list_messages, POST=_create_message)
message = endpoint(GET=_get_message)
runs = endpoint(GET=_list_runs, POST=_create_run)
run = endpoint(GET=_get_run, POST=_modify_run)
cancel = endpoint(POST=_cancel_run)
submit_tool_outputs = endpoint(POST=_submit_tool_outputs)
steps = endpoint(GET=_list_steps)
step = endpoint(GET=_get_step)
file = endpoint(beta=False, GET=_get_file)
file_content = endpoint(beta=False, GET=_file_content)
