"""The upstream client: every Run, Run Step, Thread, Message, Assistant and File call, over httpx.

This is the only module that imports httpx or knows upstream paths, headers and JSON. It returns the
typed objects of `objects.py` and raises the errors of `errors.py`; httpx exceptions never leave it.
GETs are retried on connection errors, timeouts, 429 and 5xx (exponential backoff with jitter,
Retry-After honoured up to a cap). A POST is retried only when it never reached the upstream.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import os
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from httpx_sse import SSEError, aconnect_sse
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from . import sse
from .errors import (
    BadResponse,
    ConnectFailed,
    RateLimited,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
    for_status,
)
from .objects import (
    Assistant,
    Message,
    Page,
    ResponseInfo,
    Run,
    Step,
    StreamEvent,
    Thread,
)
from .profiles import Profile

log = logging.getLogger(__name__)

INCLUDE_FILE_SEARCH_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"
MAX_PAGE = 100
#: Never sleep longer than this between retries, whatever Retry-After says.
MAX_RETRY_WAIT = 30.0
#: The longest Retry-After or openai-poll-after-ms taken as said; longer ones are cut to this.
MAX_HINT_SECONDS = 3600.0
#: Cap on a downloaded file (code-interpreter images).
MAX_FILE_BYTES = 20 * 1024 * 1024
#: Cap on an upstream message quoted back to a person.
MAX_MESSAGE_CHARS = 1000

# One pooled AsyncClient per event loop (daphne runs one loop per process); weak keys, so a loop that
# goes away takes its pool with it. Connections of different upstreams share the pool.
_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()


def _pool() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None or pool.is_closed:
        pool = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            follow_redirects=False,
            # Says which dashboard process called (an upstream's logs can then tell pollers apart).
            headers={"User-Agent": f"runs-dashboard/0.1 (pid {os.getpid()})"},
        )
        _pools[loop] = pool
    return pool


async def close_pool() -> None:
    """Close this event loop's pool (process shutdown, end of a command or a test session)."""
    pool = _pools.pop(asyncio.get_running_loop(), None)
    if pool is not None:
        await pool.aclose()


def _clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _seconds(value: float) -> float | None:
    """A wait the upstream asked for, within reason: `inf`, `nan` or a year are not waits to honour."""
    return min(max(0.0, value), MAX_HINT_SECONDS) if math.isfinite(value) else None


def _retry_after(headers: httpx.Headers) -> float | None:
    if ms := headers.get("retry-after-ms"):
        try:
            return _seconds(float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return _seconds(float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return _seconds(when.timestamp() - time.time())


def _info(headers: httpx.Headers) -> ResponseInfo:
    request_id = (
        headers.get("x-request-id") or headers.get("apim-request-id") or headers.get("x-ms-request-id")
    )
    try:
        poll_after = min(max(0, int(headers["openai-poll-after-ms"])), int(MAX_HINT_SECONDS * 1000))
    except (KeyError, ValueError):
        poll_after = None
    return ResponseInfo(request_id, poll_after)


def _error_for(response: httpx.Response, info: ResponseInfo, secret: str = "") -> UpstreamError:
    """Map a 4xx/5xx answer to the client's own error, quoting the upstream's message, never its HTML."""
    status = response.status_code
    message, code, param = None, None, None
    content_type = response.headers.get("content-type", "")
    try:
        body = response.json()
    except (ValueError, RecursionError):
        body = None
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            message = err.get("message")
            code = err.get("code") if isinstance(err.get("code"), str) else None
            param = err.get("param") if isinstance(err.get("param"), str) else None
        elif isinstance(err, str):
            message = err
    if not isinstance(message, str) or not message:
        reason = response.reason_phrase or "error"
        if "html" in content_type:
            message = f"The upstream answered HTTP {status} {reason} with an HTML page."
        elif response.text.strip():
            message = f"HTTP {status} {reason}: {_clip(_redact(response.text.strip(), secret), 300)}"
        else:
            message = f"The upstream answered HTTP {status} {reason}."
    return for_status(status)(
        _clip(_redact(message, secret)),
        status=status,
        request_id=info.request_id,
        code=code,
        param=param,
        retry_after=_retry_after(response.headers),
    )


def _redact(text: str, secret: str) -> str:
    """Some servers echo the key they rejected; what they say is shown to people who must not see it.
    Redacted before any clipping, so no part of the key survives a cut."""
    return text.replace(secret, "[redacted]") if secret else text


def _json_body(response: httpx.Response, info: ResponseInfo) -> Any:
    try:
        return response.json()
    except (ValueError, RecursionError):  # json raises RecursionError for very deep nesting
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        raise BadResponse(
            f"The upstream answered HTTP {response.status_code} with something that is not JSON ({kind}).",
            status=response.status_code,
            request_id=info.request_id,
        ) from None


async def _read_capped(response: httpx.Response, info: ResponseInfo) -> bytes:
    """The body, read in pieces so that a huge file is refused before it is all in memory."""
    too_large = BadResponse(
        "The file is too large to show.", status=response.status_code, request_id=info.request_id
    )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FILE_BYTES:
        raise too_large
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _transport_error(exc: httpx.HTTPError, host: str) -> UpstreamError:
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        return ConnectFailed(f"Could not connect to {host}.")
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(f"{host} did not answer in time.")
    return Unavailable(f"The connection to {host} failed ({type(exc).__name__}).")


def _retryable(exc: BaseException, *, idempotent: bool) -> bool:
    if isinstance(exc, ConnectFailed):
        return True  # the request never left, so even a POST is safe to send again
    return idempotent and isinstance(exc, (Unavailable, RateLimited))


_backoff = wait_exponential_jitter(multiplier=0.5, max=8, jitter=0.5)


def _wait(state) -> float:
    exc = state.outcome.exception()
    if isinstance(exc, UpstreamError) and exc.retry_after is not None:
        return min(exc.retry_after, MAX_RETRY_WAIT)
    return _backoff(state)


def _placed(parse: Callable[[Any], Any], **ids: str) -> Callable[[Any], Any]:
    """`parse`, with the ids an answer leaves out taken from the path that was asked (the object is where
    it was asked for; its raw JSON still shows what was sent)."""

    def parse_here(data: Any):
        obj = parse(data)
        missing = {name: value for name, value in ids.items() if not getattr(obj, name)}
        return replace(obj, **missing) if missing else obj

    return parse_here


def _body(**fields: Any) -> dict:
    """A request body without the fields left at None (so the upstream applies its defaults)."""
    return {k: v for k, v in fields.items() if v is not None}


def _seg(value: str) -> str:
    """An id as one URL path segment: views validate ids, this makes sure nothing else slips in."""
    segment = quote(value, safe="")
    # httpx resolves "." and ".." segments, which would climb out of the path; encoded, they stay ids.
    return segment.replace(".", "%2E") if segment in (".", "..") else segment


@dataclass
class AssistantsClient:
    """One upstream connection: where it is, how to authenticate, and every call the dashboard makes."""

    base_url: str
    api_key: str = field(repr=False)
    profile: Profile
    api_version: str = ""
    name: str = "default"
    timeout: float = 20.0
    connect_timeout: float = 5.0
    retries: int = 3
    #: Injectable so tests do not wait for real backoff.
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)

    @property
    def host(self) -> str:
        """Host and port, for messages and pages: never the `user:password@` a URL may carry."""
        try:
            parts = urlsplit(self.base_url)
            host = parts.hostname or ""
            return f"{host}:{parts.port}" if parts.port else host or "the upstream"
        except ValueError:
            return "the upstream"

    def _url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def _params(self, params: dict | None = None, include_content: bool = False) -> list[tuple[str, str]]:
        pairs = [(k, str(v)) for k, v in (params or {}).items() if v is not None]
        pairs += list(self.profile.params(self.api_version).items())
        if include_content:
            pairs.append(("include[]", INCLUDE_FILE_SEARCH_CONTENT))
        return pairs

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.timeout, connect=self.connect_timeout)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params=None,
        json=None,
        include_content: bool = False,
        raw: bool = False,
    ) -> tuple[Any, ResponseInfo]:
        query = self._params(params, include_content)
        headers = self.profile.headers(self.api_key)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=_wait,
            retry=retry_if_exception(lambda e: _retryable(e, idempotent=method == "GET")),
            sleep=self.sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._send(method, path, query, headers, json, raw)
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def _send(self, method, path, query, headers, json, raw) -> tuple[Any, ResponseInfo]:
        started = time.monotonic()
        try:
            async with _pool().stream(
                method, self._url(path), params=query, json=json, headers=headers, timeout=self._timeout()
            ) as response:
                info = _info(response.headers)
                if raw and response.status_code < 400:
                    content = await _read_capped(response, info)
                else:
                    await response.aread()
        except httpx.HTTPError as exc:
            log.warning("%s %s %s failed: %s", self.name, method, path, type(exc).__name__)
            raise _transport_error(exc, self.host) from None
        log.info(
            "%s %s %s -> %s in %.0f ms (request %s)",
            self.name,
            method,
            path,
            response.status_code,
            (time.monotonic() - started) * 1000,
            info.request_id or "-",
        )
        if response.status_code >= 400:
            raise _error_for(response, info, self.api_key)
        if raw:
            return (content, response.headers.get("content-type", "application/octet-stream")), info
        return _json_body(response, info), info

    async def _page(
        self,
        path: str,
        parse,
        *,
        limit=20,
        order="desc",
        after=None,
        before=None,
        include_content=False,
        **filters,
    ) -> Page:
        params = {
            "limit": max(1, min(int(limit), MAX_PAGE)),
            "order": order,
            "after": after,
            "before": before,
            **filters,
        }
        data, info = await self._call("GET", path, params=params, include_content=include_content)
        return replace(Page.from_json(data, parse), info=info)

    async def _all(self, fetch: Callable[[str | None], Awaitable[Page]]) -> AsyncIterator:
        """Follow `has_more` to the end, one page at a time; stops if a cursor repeats."""
        after, seen = None, set()
        while True:
            page = await fetch(after)
            for item in page.data:
                yield item
            after = page.next_after
            if after is None or after in seen:
                return
            seen.add(after)

    # --- runs --------------------------------------------------------------------------------------

    async def get_run(self, thread_id: str, run_id: str) -> Run:
        data, info = await self._call("GET", f"/threads/{_seg(thread_id)}/runs/{_seg(run_id)}")
        return replace(_placed(Run.from_json, id=run_id, thread_id=thread_id)(data), info=info)

    async def list_runs(self, thread_id: str, **page) -> Page[Run]:
        return await self._page(
            f"/threads/{_seg(thread_id)}/runs", _placed(Run.from_json, thread_id=thread_id), **page
        )

    def iter_runs(self, thread_id: str, order: str = "asc") -> AsyncIterator[Run]:
        return self._all(lambda after: self.list_runs(thread_id, limit=MAX_PAGE, order=order, after=after))

    async def create_run(self, thread_id: str, assistant_id: str, **options) -> Run:
        data, info = await self._call(
            "POST", f"/threads/{_seg(thread_id)}/runs", json=_body(assistant_id=assistant_id, **options)
        )
        return replace(Run.from_json(data), info=info)

    def stream_create_run(self, thread_id: str, assistant_id: str, **options):
        return self._stream(f"/threads/{_seg(thread_id)}/runs", _body(assistant_id=assistant_id, **options))

    async def create_thread_and_run(self, assistant_id: str, **options) -> Run:
        data, info = await self._call(
            "POST", "/threads/runs", json=_body(assistant_id=assistant_id, **options)
        )
        return replace(Run.from_json(data), info=info)

    def stream_create_thread_and_run(self, assistant_id: str, **options):
        return self._stream("/threads/runs", _body(assistant_id=assistant_id, **options))

    async def modify_run(self, thread_id: str, run_id: str, metadata: dict[str, str]) -> Run:
        data, info = await self._call(
            "POST", f"/threads/{_seg(thread_id)}/runs/{_seg(run_id)}", json={"metadata": metadata}
        )
        return replace(_placed(Run.from_json, id=run_id, thread_id=thread_id)(data), info=info)

    async def cancel_run(self, thread_id: str, run_id: str) -> Run:
        data, info = await self._call("POST", f"/threads/{_seg(thread_id)}/runs/{_seg(run_id)}/cancel")
        return replace(_placed(Run.from_json, id=run_id, thread_id=thread_id)(data), info=info)

    async def submit_tool_outputs(self, thread_id: str, run_id: str, outputs: list[dict]) -> Run:
        data, info = await self._call(
            "POST",
            f"/threads/{_seg(thread_id)}/runs/{_seg(run_id)}/submit_tool_outputs",
            json={"tool_outputs": outputs},
        )
        return replace(_placed(Run.from_json, id=run_id, thread_id=thread_id)(data), info=info)

    def stream_submit_tool_outputs(self, thread_id: str, run_id: str, outputs: list[dict]):
        return self._stream(
            f"/threads/{_seg(thread_id)}/runs/{_seg(run_id)}/submit_tool_outputs", {"tool_outputs": outputs}
        )

    # --- steps -------------------------------------------------------------------------------------

    async def list_steps(
        self, thread_id: str, run_id: str, *, include_content: bool = False, **page
    ) -> Page[Step]:
        return await self._page(
            f"/threads/{_seg(thread_id)}/runs/{_seg(run_id)}/steps",
            _placed(Step.from_json, run_id=run_id, thread_id=thread_id),
            include_content=include_content,
            **page,
        )

    def iter_steps(
        self, thread_id: str, run_id: str, order: str = "asc", include_content: bool = False
    ) -> AsyncIterator[Step]:
        return self._all(
            lambda after: self.list_steps(
                thread_id, run_id, limit=MAX_PAGE, order=order, after=after, include_content=include_content
            )
        )

    async def get_step(
        self, thread_id: str, run_id: str, step_id: str, *, include_content: bool = False
    ) -> Step:
        data, _ = await self._call(
            "GET",
            f"/threads/{_seg(thread_id)}/runs/{_seg(run_id)}/steps/{_seg(step_id)}",
            include_content=include_content,
        )
        return _placed(Step.from_json, id=step_id, run_id=run_id, thread_id=thread_id)(data)

    # --- threads, messages, assistants, files --------------------------------------------------

    async def get_thread(self, thread_id: str) -> Thread:
        data, _ = await self._call("GET", f"/threads/{_seg(thread_id)}")
        return Thread.from_json(data)

    async def list_threads(self, **page) -> Page[Thread]:
        """Only Azure agents and the sandbox have this (see `Profile.can_list_threads`)."""
        return await self._page("/threads", Thread.from_json, **page)

    async def list_messages(self, thread_id: str, *, run_id: str | None = None, **page) -> Page[Message]:
        return await self._page(
            f"/threads/{_seg(thread_id)}/messages",
            _placed(Message.from_json, thread_id=thread_id),
            run_id=run_id,
            **page,
        )

    def iter_messages(
        self, thread_id: str, order: str = "asc", run_id: str | None = None
    ) -> AsyncIterator[Message]:
        return self._all(
            lambda after: self.list_messages(
                thread_id, run_id=run_id, limit=MAX_PAGE, order=order, after=after
            )
        )

    async def get_message(self, thread_id: str, message_id: str) -> Message:
        data, _ = await self._call("GET", f"/threads/{_seg(thread_id)}/messages/{_seg(message_id)}")
        return _placed(Message.from_json, id=message_id, thread_id=thread_id)(data)

    async def list_assistants(self, **page) -> Page[Assistant]:
        return await self._page("/assistants", Assistant.from_json, **page)

    def iter_assistants(self) -> AsyncIterator[Assistant]:
        return self._all(lambda after: self.list_assistants(limit=MAX_PAGE, order="desc", after=after))

    async def get_assistant(self, assistant_id: str) -> Assistant:
        data, _ = await self._call("GET", f"/assistants/{_seg(assistant_id)}")
        return Assistant.from_json(data)

    async def get_file_content(self, file_id: str) -> tuple[bytes, str]:
        """A file's bytes and content type (code-interpreter images), refusing anything huge."""
        (content, content_type), _ = await self._call("GET", f"/files/{_seg(file_id)}/content", raw=True)
        return content, content_type

    # --- streaming ---------------------------------------------------------------------------------

    @asynccontextmanager
    async def _stream(self, path: str, body: dict) -> AsyncIterator[EventStream]:
        """POST with `stream: true`; yields the events (async iterator, ending at `done`) and `.info`.

        Not retried: a stream that fails part-way may already have changed the run.
        """
        try:
            async with aconnect_sse(
                _pool(),
                "POST",
                self._url(path),
                params=self._params(),
                json={**body, "stream": True},
                headers=self.profile.headers(self.api_key),
                timeout=self._timeout(),
            ) as source:
                response = source.response
                info = _info(response.headers)
                log.info(
                    "%s POST %s -> %s (stream, request %s)",
                    self.name,
                    path,
                    response.status_code,
                    info.request_id or "-",
                )
                if response.status_code >= 400:
                    await response.aread()
                    raise _error_for(response, info, self.api_key)
                if "text/event-stream" not in response.headers.get("content-type", ""):
                    # An upstream that ignores `stream` answers with the Run itself.
                    await response.aread()
                    run = Run.from_json(_json_body(response, info))
                    yield EventStream(_single(StreamEvent(f"thread.run.{run.status}", run)), info)
                else:
                    yield EventStream(self._events(source), info)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, self.host) from None

    async def _events(self, source) -> AsyncIterator[StreamEvent]:
        try:
            async for frame in source.aiter_sse():
                event = sse.parse_event(frame)
                if event.event == sse.DONE:
                    return
                yield event
        except httpx.HTTPError as exc:
            raise _transport_error(exc, self.host) from None
        except SSEError as exc:
            raise BadResponse(f"The stream was not readable: {exc}") from None
        except UpstreamError as exc:
            # An error event mid-stream: the upstream's words, clipped and without the key.
            exc.message = _clip(_redact(exc.message, self.api_key))
            exc.args = (exc.message,)
            raise


@dataclass
class EventStream:
    """A streamed call's events, and what its response headers said (the request id)."""

    events: AsyncIterator[StreamEvent]
    info: ResponseInfo

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self.events


async def _single(event: StreamEvent) -> AsyncIterator[StreamEvent]:
    yield event
