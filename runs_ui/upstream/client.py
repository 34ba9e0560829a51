"""The upstream client: every Run, Run Step, Thread, Message, Assistant and File call, over httpx.

This is the only module that imports httpx or knows upstream paths, headers and JSON. It returns the
typed objects of `objects.py` and raises the errors of `errors.py`; httpx exceptions never leave it.

Nothing an upstream sends is trusted, its size and pace included: every call has a total deadline (all its
attempts together, not only each read), every body is read in chunks up to a byte cap, every walk over
pages and every stream has caps (limits.py); every string is made safe on the way in (text.py); an answer
whose ids contradict the path it was asked for is refused. Each connection has its own pool of HTTP
connections, so one slow upstream cannot take the others' connections. The API key lives only in the
connection's `KeyAuth`.

GETs are retried on connection errors, timeouts, 429 and 5xx (exponential backoff with jitter,
Retry-After honoured up to a cap), as long as the deadline leaves time for the wait. A POST is retried
only when its connection was never made, so it never reached the upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import email.utils
import logging
import math
import os
import random
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from contextlib import asynccontextmanager
from dataclasses import InitVar, dataclass, field, replace
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from httpx_sse import aconnect_sse

from . import sse, text
from .errors import (
    BadResponse,
    ConnectFailed,
    LimitExceeded,
    Misconfigured,
    RateLimited,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
    for_status,
)
from .limits import Limits, exceeded, read_capped
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

#: Of an error answer, only this much is read: enough for any message worth quoting.
MAX_ERROR_BODY = 64 * 1024
#: Request ids are ids: anything longer is not one (audit records keep 200 characters).
MAX_REQUEST_ID = 200
#: HTTP connections open at once to one upstream connection (its own pool).
MAX_CONNECTIONS = 200

# Pools of HTTP connections: one per upstream connection (its name) and event loop (daphne runs one loop
# per process), so an upstream that holds its connections open cannot starve the others. Weak keys: a
# loop that goes away takes its pools with it.
_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, httpx.AsyncClient]] = (
    weakref.WeakKeyDictionary()
)


def _pool(connection: str) -> httpx.AsyncClient:
    pools = _pools.setdefault(asyncio.get_running_loop(), {})
    pool = pools.get(connection)
    if pool is None or pool.is_closed:
        pool = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=50),
            follow_redirects=False,
            # Says which dashboard process called (an upstream's logs can then tell pollers apart).
            headers={"User-Agent": f"runs-dashboard/0.1 (pid {os.getpid()})"},
        )
        pools[connection] = pool
    return pool


async def close_pool() -> None:
    """Close this event loop's pools (process shutdown, end of a command or a test session)."""
    pools = _pools.pop(asyncio.get_running_loop(), {})
    for pool in pools.values():
        await pool.aclose()


class KeyAuth(httpx.Auth):
    """A connection's API key, added to each request the way its profile asks (Bearer or api-key).

    The one place the key is kept: no header dict, no local variable of a frame that handles a request,
    no repr holds it (a debug page or an error reporter that captures locals shows none of it).
    """

    def __init__(self, profile: Profile, api_key: str):
        self._profile = profile
        self._key = api_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._key:
            request.headers.update(self._profile.credential(self._key))
        yield request

    def redact(self, message: str) -> str:
        """Some servers echo the key they rejected; what they say is shown to people who must not see it.
        Redacted before any clipping, so no part of the key survives a cut."""
        return message.replace(self._key, "[redacted]") if self._key else message

    def __repr__(self) -> str:
        return f"<KeyAuth {self._profile.auth}: {'a key' if self._key else 'no key'}>"


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
    return ResponseInfo(text.clean_text(request_id[:MAX_REQUEST_ID]) if request_id else None, poll_after)


def _error_for(response: httpx.Response, body: bytes, info: ResponseInfo, auth: KeyAuth) -> UpstreamError:
    """Map a 4xx/5xx answer (its first bytes) to the client's own error, quoting the upstream's message,
    never its HTML."""
    status = response.status_code
    message, code, param = None, None, None
    content_type = response.headers.get("content-type", "")
    try:
        data = text.loads(body)
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            message = err.get("message")
            code = err.get("code") if isinstance(err.get("code"), str) else None
            param = err.get("param") if isinstance(err.get("param"), str) else None
        elif isinstance(err, str):
            message = err
    if not isinstance(message, str) or not message:
        reason = response.reason_phrase or "error"
        plain = text.clean_text(body.decode("utf-8", "replace").strip())
        if "html" in content_type:
            message = f"The upstream answered HTTP {status} {reason} with an HTML page."
        elif plain:
            message = f"HTTP {status} {reason}: {_clip(auth.redact(plain), 300)}"
        else:
            message = f"The upstream answered HTTP {status} {reason}."
    return for_status(status)(
        _clip(auth.redact(message)),
        status=status,
        request_id=info.request_id,
        code=code,
        param=param,
        retry_after=_retry_after(response.headers),
    )


def _json_body(response: httpx.Response, body: bytes, info: ResponseInfo) -> Any:
    try:
        return text.loads(body)
    except (ValueError, RecursionError):  # json raises RecursionError for very deep nesting
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        raise BadResponse(
            f"The upstream answered HTTP {response.status_code} with something that is not JSON "
            f"({text.clean_text(kind)[:100]}).",
            status=response.status_code,
            request_id=info.request_id,
        ) from None


async def _until(chunks: AsyncIterator[bytes], deadline: float, too_late: Callable[[], Exception]):
    """`chunks`, each awaited no later than `deadline` (loop time): a trickle cannot outlast it."""
    iterator = aiter(chunks)
    while True:
        try:
            async with asyncio.timeout_at(deadline):
                chunk = await anext(iterator)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise too_late() from None
        yield chunk


def _transport_error(exc: httpx.HTTPError, host: str) -> UpstreamError:
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        return ConnectFailed(f"Could not connect to {host}.")
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(f"{host} did not answer in time.")
    return Unavailable(f"The connection to {host} failed ({type(exc).__name__}).")


def _retryable(exc: BaseException, *, idempotent: bool) -> bool:
    if isinstance(exc, LimitExceeded):
        return False  # the same upstream would send the same again (and the deadline covers every attempt)
    if isinstance(exc, ConnectFailed):
        return True  # the request never left, so even a POST is safe to send again
    return idempotent and isinstance(exc, (Unavailable, RateLimited))


def _wait(exc: UpstreamError, attempt: int) -> float:
    """Seconds before attempt `attempt + 1`: what the upstream asked for, else 0.5·2ⁿ s plus jitter."""
    if exc.retry_after is not None:
        return min(exc.retry_after, MAX_RETRY_WAIT)
    return min(0.5 * 2 ** (attempt - 1) + random.uniform(0, 0.5), 8.0)


#: An object's id attribute → what it names, for messages.
_ID_NAMES = {"thread_id": "thread", "run_id": "run"}
_KINDS = {Run: "run", Step: "run step", Message: "message", Thread: "thread", Assistant: "assistant"}


def _place(obj, **ids: str):
    """`obj` with the ids it leaves out taken from the path that was asked (the object is where it was asked
    for; its raw JSON still shows what was sent). An id that contradicts the path makes the whole answer
    an upstream error: no page, link, write or push may use another thread's or run's id."""
    missing = {}
    for name, expected in ids.items():
        got = getattr(obj, name)
        if not got:
            missing[name] = expected
        elif got != expected:
            kind = _KINDS.get(type(obj), "object")
            what = kind if name == "id" else f"{kind}'s {_ID_NAMES.get(name, name)}"
            shown = got if len(got) <= 80 else got[:80] + "…"
            raise BadResponse(
                f"The upstream answered with a {what} “{shown}” where “{expected}” was asked for; "
                "the answer is refused, so nothing here uses it."
            )
    return replace(obj, **missing) if missing else obj


def _placed(parse: Callable[[Any], Any], **ids: str) -> Callable[[Any], Any]:
    """`parse`, then `_place` with the path's ids."""
    return lambda data: _place(parse(data), **ids)


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
    #: Only passed in: it is kept in `auth` (a KeyAuth), never as an attribute of its own.
    api_key: InitVar[str]
    profile: Profile
    api_version: str = ""
    name: str = "default"
    timeout: float = 20.0
    connect_timeout: float = 5.0
    retries: int = 3
    limits: Limits = field(default_factory=Limits)
    #: Why the connection's key cannot be used (e.g. it no longer decrypts): every call then raises
    #: Misconfigured with this, before sending anything, instead of going out without a key.
    key_problem: str = ""
    #: Injectable so tests do not wait for real backoff.
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)
    auth: KeyAuth = field(init=False, repr=False)

    def __post_init__(self, api_key: str) -> None:
        self.auth = KeyAuth(self.profile, api_key)

    def without_retries(self) -> AssistantsClient:
        """This client, asking once: for callers that retry on their own terms (the live watcher's loop)."""
        other = copy.copy(self)
        other.retries = 0
        return other

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

    def _usable(self) -> None:
        if self.key_problem:
            raise Misconfigured(self.key_problem, setting="the connection's API key")

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
        """One call, retried where safe, all of it within the deadline."""
        self._usable()
        query = self._params(params, include_content)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.deadline
        attempt = 0
        while True:
            try:
                try:
                    async with asyncio.timeout_at(deadline):
                        return await self._send(method, path, query, json, raw)
                except TimeoutError:
                    log.warning("%s %s %s: no answer within the deadline", self.name, method, path)
                    raise exceeded(self.limits, "deadline", f"{method} {path} on {self.host}") from None
            except UpstreamError as exc:
                attempt += 1
                if attempt > self.retries or not _retryable(exc, idempotent=method == "GET"):
                    raise
                wait = _wait(exc, attempt)
                if loop.time() + wait >= deadline:
                    raise  # no time left to wait for another attempt: the last answer stands
                await self.sleep(wait)

    async def _send(self, method, path, query, json, raw) -> tuple[Any, ResponseInfo]:
        started = time.monotonic()
        try:
            async with _pool(self.name).stream(
                method,
                self._url(path),
                params=query,
                json=json,
                headers=dict(self.profile.extra_headers),
                auth=self.auth,
                timeout=self._timeout(),
            ) as response:
                info = _info(response.headers)
                status = response.status_code
                declared = response.headers.get("content-length")
                if status >= 400:
                    body = await read_capped(response.aiter_bytes(), MAX_ERROR_BODY, None, truncate=True)
                elif raw:
                    body = await read_capped(
                        response.aiter_bytes(),
                        MAX_FILE_BYTES,
                        lambda: BadResponse("The file is too large to show.", status=status, **_ids(info)),
                        declared,
                    )
                else:
                    body = await read_capped(
                        response.aiter_bytes(),
                        self.limits.max_body_bytes,
                        lambda: exceeded(
                            self.limits, "max_body_bytes", f"{method} {path}", status=status, **_ids(info)
                        ),
                        declared,
                    )
        except httpx.HTTPError as exc:
            log.warning("%s %s %s failed: %s", self.name, method, path, type(exc).__name__)
            raise _transport_error(exc, self.host) from None
        log.info(
            "%s %s %s -> %s in %.0f ms (request %s)",
            self.name,
            method,
            path,
            status,
            (time.monotonic() - started) * 1000,
            info.request_id or "-",
        )
        if status >= 400:
            raise _error_for(response, body, info, self.auth)
        if raw:
            return (bytes(body), response.headers.get("content-type", "application/octet-stream")), info
        return _json_body(response, body, info), info

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

    async def _all(self, fetch: Callable[[str | None], Awaitable[Page]], what: str) -> AsyncIterator:
        """Follow `has_more` to the end, one page at a time; stops if a cursor repeats, and raises
        LimitExceeded past UPSTREAM_MAX_PAGES pages or UPSTREAM_MAX_ITEMS items."""
        after, seen, pages, items = None, set(), 0, 0
        while True:
            if pages == self.limits.max_pages:
                raise exceeded(self.limits, "max_pages", what)
            page = await fetch(after)
            pages += 1
            for item in page.data:
                if items == self.limits.max_items:
                    raise exceeded(self.limits, "max_items", what)
                items += 1
                yield item
            after = page.next_after
            if after is None or after in seen:
                return
            if items == self.limits.max_items:
                raise exceeded(self.limits, "max_items", what)  # there is more: no page fetched for it
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
        return self._all(
            lambda after: self.list_runs(thread_id, limit=MAX_PAGE, order=order, after=after),
            f"The runs of {thread_id}",
        )

    async def create_run(self, thread_id: str, assistant_id: str, **options) -> Run:
        data, info = await self._call(
            "POST", f"/threads/{_seg(thread_id)}/runs", json=_body(assistant_id=assistant_id, **options)
        )
        return replace(_placed(Run.from_json, thread_id=thread_id)(data), info=info)

    def stream_create_run(self, thread_id: str, assistant_id: str, **options):
        return self._stream(
            f"/threads/{_seg(thread_id)}/runs",
            _body(assistant_id=assistant_id, **options),
            thread_id=thread_id,
        )

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
            f"/threads/{_seg(thread_id)}/runs/{_seg(run_id)}/submit_tool_outputs",
            {"tool_outputs": outputs},
            thread_id=thread_id,
            run_id=run_id,
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
            ),
            f"The steps of {run_id}",
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
        return _place(Thread.from_json(data), id=thread_id)

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
            ),
            f"The messages of {run_id or thread_id}",
        )

    async def get_message(self, thread_id: str, message_id: str) -> Message:
        data, _ = await self._call("GET", f"/threads/{_seg(thread_id)}/messages/{_seg(message_id)}")
        return _placed(Message.from_json, id=message_id, thread_id=thread_id)(data)

    async def list_assistants(self, **page) -> Page[Assistant]:
        return await self._page("/assistants", Assistant.from_json, **page)

    def iter_assistants(self) -> AsyncIterator[Assistant]:
        return self._all(
            lambda after: self.list_assistants(limit=MAX_PAGE, order="desc", after=after), "The assistants"
        )

    async def get_assistant(self, assistant_id: str) -> Assistant:
        data, _ = await self._call("GET", f"/assistants/{_seg(assistant_id)}")
        return _place(Assistant.from_json(data), id=assistant_id)

    async def get_file_content(self, file_id: str) -> tuple[bytes, str]:
        """A file's bytes and content type (code-interpreter images), refusing anything huge."""
        (content, content_type), _ = await self._call("GET", f"/files/{_seg(file_id)}/content", raw=True)
        return content, content_type

    # --- streaming ---------------------------------------------------------------------------------

    @asynccontextmanager
    async def _stream(self, path: str, body: dict, **ids: str) -> AsyncIterator[EventStream]:
        """POST with `stream: true`; yields the events (async iterator, ending at `done`) and `.info`.

        `ids`: the thread (and run) the path names; events about another are refused (BadResponse).
        Opening the stream (up to its first byte) has the call's deadline; the stream then has its own
        caps. Not retried: a stream that fails part-way may already have changed the run.
        """
        self._usable()
        what = f"POST {path}"
        opened_by = asyncio.get_running_loop().time() + self.limits.deadline
        try:
            async with contextlib.AsyncExitStack() as stack:
                try:
                    async with asyncio.timeout_at(opened_by):
                        events = await self._open_stream(stack, path, body, ids)
                except TimeoutError:
                    raise exceeded(self.limits, "deadline", f"{what} on {self.host}") from None
                yield events
        except httpx.HTTPError as exc:
            raise _transport_error(exc, self.host) from None

    async def _open_stream(self, stack, path: str, body: dict, ids: dict) -> EventStream:
        source = await stack.enter_async_context(
            aconnect_sse(
                _pool(self.name),
                "POST",
                self._url(path),
                params=self._params(),
                json={**body, "stream": True},
                headers=dict(self.profile.extra_headers),
                auth=self.auth,
                timeout=self._timeout(),
            )
        )
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
            error_body = await read_capped(response.aiter_bytes(), MAX_ERROR_BODY, None, truncate=True)
            raise _error_for(response, error_body, info, self.auth)
        if "text/event-stream" not in response.headers.get("content-type", ""):
            # An upstream that ignores `stream` answers with the Run itself.
            answer = await read_capped(
                response.aiter_bytes(),
                self.limits.max_body_bytes,
                lambda: exceeded(self.limits, "max_body_bytes", f"POST {path}", **_ids(info)),
                response.headers.get("content-length"),
            )
            run = Run.from_json(_json_body(response, answer, info))
            events = _single(StreamEvent(f"thread.run.{run.status}", run))
        else:
            events = self._events(source)
        return EventStream(_placed_events(events, dict(ids)), info)

    async def _events(self, source) -> AsyncIterator[StreamEvent]:
        """The stream's events as they arrive, within the stream's caps (time, bytes, events, lines)."""
        what = f"POST {source.response.request.url.path}"
        closes_at = asyncio.get_running_loop().time() + self.limits.stream_seconds
        chunks = _until(
            source.response.aiter_bytes(),
            closes_at,
            lambda: exceeded(self.limits, "stream_seconds", what),
        )
        try:
            async for frame in sse.frames(chunks, self.limits, what):
                event = sse.parse_event(frame)
                if event.event == sse.DONE:
                    return
                yield event
        except httpx.HTTPError as exc:
            raise _transport_error(exc, self.host) from None
        except LimitExceeded:
            log.warning("%s %s: a stream limit was reached; closing it", self.name, what)
            raise
        except UpstreamError as exc:
            # An error event mid-stream: the upstream's words, clipped and without the key.
            exc.message = _clip(self.auth.redact(exc.message))
            exc.args = (exc.message,)
            raise


async def _placed_events(events: AsyncIterator[StreamEvent], where: dict) -> AsyncIterator[StreamEvent]:
    """A stream is about one thread and one run: the path's, else the first it reports. An event about
    another is refused (BadResponse); ids an event leaves out are filled in."""
    async for event in events:
        data = event.data
        if isinstance(data, Thread):
            data = _place(data, **_known(where, id="thread_id"))
            where.setdefault("thread_id", data.id)
        elif isinstance(data, Run):
            data = _place(data, **_known(where, id="run_id", thread_id="thread_id"))
            where.setdefault("run_id", data.id)
            where.setdefault("thread_id", data.thread_id)
        elif isinstance(data, Step):
            data = _place(data, **_known(where, run_id="run_id", thread_id="thread_id"))
        elif isinstance(data, Message):
            data = _place(data, **_known(where, thread_id="thread_id"))
        yield event if data is event.data else StreamEvent(event.event, data)


def _known(where: dict, **fields: str) -> dict:
    """Object attribute → the id `where` knows for it (empty ids are unknown)."""
    return {attr: where[key] for attr, key in fields.items() if where.get(key)}


def _ids(info: ResponseInfo) -> dict:
    return {"request_id": info.request_id}


@dataclass
class EventStream:
    """A streamed call's events, and what its response headers said (the request id)."""

    events: AsyncIterator[StreamEvent]
    info: ResponseInfo

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self.events


async def _single(event: StreamEvent) -> AsyncIterator[StreamEvent]:
    yield event
