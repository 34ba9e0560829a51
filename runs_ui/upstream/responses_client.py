"""The Responses + Conversations client: every response, conversation and item call, on the shared transport.

It speaks through an `AssistantsClient` of the same connection (client.py: its pool, key, profile, retries,
error mapping), adding only what this shape has of its own: its paths and JSON (responses_objects.py),
streams read with GET as well as POST (a broken stream of a background response resumes after its last
`sequence_number`), and `include` lists. Answers whose id contradicts the path asked are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from . import client as transport_module
from . import sse, text
from .client import MAX_PAGE, AssistantsClient, EventStream, _body, _seg
from .errors import BadResponse, LimitExceeded, UpstreamError
from .limits import exceeded, read_capped
from .objects import Page
from .responses_objects import Conversation, Item, Response, ResponseEvent, parse_item

log = logging.getLogger(__name__)

#: What a response's page asks to see in full: results, outputs and sources are left out unless asked for.
FULL_ITEMS = ("file_search_call.results", "code_interpreter_call.outputs", "web_search_call.action.sources")


class _Query(list):
    """Query parameters as pairs, a name repeated as often as needed (`include[]=a&include[]=b`), which a
    dict cannot say; the transport reads them with `.items()`."""

    def items(self):
        return [(name, value) for name, value in self if value is not None]


def _query(include: tuple[str, ...] = (), **params) -> _Query:
    return _Query([*params.items(), *(("include[]", value) for value in include)])


def _check_id(kind: str, got: str, expected: str) -> str:
    """The id an answer carries: the one asked for (filled in when missing); another is refused. Nothing
    asked for (a stream that creates the response): whatever it says."""
    if not expected:
        return got
    if got and got != expected:
        shown = got if len(got) <= 80 else got[:80] + "…"
        raise BadResponse(
            f"The upstream answered with a {kind} “{shown}” where “{expected}” was asked for; "
            "the answer is refused, so nothing here uses it."
        )
    return expected


def _response_at(response_id: str):
    def parse(data: Any) -> Response:
        response = Response.from_json(data)
        return replace(response, id=_check_id("response", response.id, response_id))

    return parse


@dataclass
class ResponsesClient:
    """One connection, in the Responses shape. `transport` is that connection's client (client.py)."""

    transport: AssistantsClient

    @property
    def name(self) -> str:
        return self.transport.name

    @property
    def profile(self):
        return self.transport.profile

    @property
    def host(self) -> str:
        return self.transport.host

    # --- responses -----------------------------------------------------------------------------------

    async def _page(
        self, path, parse, *, limit=20, order="desc", after=None, before=None, include=FULL_ITEMS, **filters
    ) -> Page:
        query = _query(
            include,
            limit=max(1, min(int(limit), MAX_PAGE)),
            order=order,
            after=after,
            before=before,
            **filters,
        )
        data, info = await self.transport._call("GET", path, params=query)
        return replace(Page.from_json(data, parse), info=info)

    async def get_response(self, response_id: str, *, include: tuple[str, ...] = FULL_ITEMS) -> Response:
        data, info = await self.transport._call(
            "GET", f"/responses/{_seg(response_id)}", params=_query(include)
        )
        return replace(_response_at(response_id)(data), info=info)

    async def list_responses(
        self,
        *,
        conversation_id: str | None = None,
        agent_name: str | None = None,
        **page,
    ) -> Page[Response]:
        """Azure AI Foundry and the sandbox list responses (`Profile.can_list_responses`); OpenAI cannot."""
        return await self._page(
            "/responses",
            Response.from_json,
            conversation_id=conversation_id,
            agent_name=agent_name,
            include=(),
            **page,
        )

    def iter_responses(self, *, conversation_id: str | None = None, order: str = "asc"):
        return self.transport._all(
            lambda after: self.list_responses(
                conversation_id=conversation_id, limit=MAX_PAGE, order=order, after=after
            ),
            f"The responses of {conversation_id}" if conversation_id else "The responses",
        )

    async def list_input_items(self, response_id: str, **page) -> Page[Item]:
        return await self._page(f"/responses/{_seg(response_id)}/input_items", parse_item, **page)

    def iter_input_items(self, response_id: str, order: str = "asc") -> AsyncIterator[Item]:
        return self.transport._all(
            lambda after: self.list_input_items(response_id, limit=MAX_PAGE, order=order, after=after),
            f"The input items of {response_id}",
        )

    async def create_response(self, **fields) -> Response:
        data, info = await self.transport._call("POST", "/responses", json=_body(**fields))
        return replace(Response.from_json(data), info=info)

    async def cancel_response(self, response_id: str) -> Response:
        data, info = await self.transport._call("POST", f"/responses/{_seg(response_id)}/cancel")
        return replace(_response_at(response_id)(data), info=info)

    # --- conversations -------------------------------------------------------------------------------

    async def get_conversation(self, conversation_id: str) -> Conversation:
        data, _ = await self.transport._call("GET", f"/conversations/{_seg(conversation_id)}")
        conversation = Conversation.from_json(data)
        return replace(conversation, id=_check_id("conversation", conversation.id, conversation_id))

    async def list_conversations(self, **page) -> Page[Conversation]:
        """Azure AI Foundry and the sandbox list conversations; OpenAI cannot."""
        return await self._page("/conversations", Conversation.from_json, include=(), **page)

    async def create_conversation(self, *, items: list[dict] | None = None, metadata: dict | None = None):
        data, _ = await self.transport._call(
            "POST", "/conversations", json=_body(items=items or None, metadata=metadata or None)
        )
        return Conversation.from_json(data)

    async def list_conversation_items(self, conversation_id: str, **page) -> Page[Item]:
        return await self._page(f"/conversations/{_seg(conversation_id)}/items", parse_item, **page)

    def iter_conversation_items(self, conversation_id: str, order: str = "asc") -> AsyncIterator[Item]:
        return self.transport._all(
            lambda after: self.list_conversation_items(
                conversation_id, limit=MAX_PAGE, order=order, after=after
            ),
            f"The items of {conversation_id}",
        )

    # --- streams -------------------------------------------------------------------------------------

    def stream_create_response(self, **fields):
        """POST /responses with `stream: true`: the events of the response it creates."""
        return self._stream("POST", "/responses", json={**_body(**fields), "stream": True})

    def stream_response(self, response_id: str, starting_after: int | None = None):
        """The events of a background response, from the start or after `starting_after` (a stream that
        broke resumes there instead of starting over)."""
        query = {"stream": "true", "starting_after": starting_after}
        return self._stream("GET", f"/responses/{_seg(response_id)}", query=query, response_id=response_id)

    @asynccontextmanager
    async def _stream(self, method: str, path: str, *, json=None, query=None, response_id: str = ""):
        """Yields an EventStream of ResponseEvents; ends after the response's terminal event (or the end
        of the stream). As the transport's own streams: opening it (up to its first byte) has the call's
        deadline, the stream then its caps (limits.py). Not retried here: the relay decides whether to
        resume."""
        t = self.transport
        t._usable()
        what = f"{method} {path}"
        opened_by = asyncio.get_running_loop().time() + t.limits.deadline
        try:
            async with contextlib.AsyncExitStack() as stack:
                try:
                    async with asyncio.timeout_at(opened_by):
                        events = await self._open(stack, method, path, json, query, response_id)
                except TimeoutError:
                    raise exceeded(t.limits, "deadline", f"{what} on {t.host}") from None
                yield events
        except httpx.HTTPError as exc:
            raise transport_module._transport_error(exc, t.host) from None

    async def _open(self, stack, method: str, path: str, json, query, response_id: str) -> EventStream:
        t = self.transport
        source = await stack.enter_async_context(
            aconnect_sse(
                transport_module._pool(t.name),
                method,
                t._url(path),
                params=t._params(query),
                json=json,
                headers=dict(t.profile.extra_headers),
                auth=t.auth,
                timeout=t._timeout(),
            )
        )
        response = source.response
        info = transport_module._info(response.headers)
        log.info(
            "%s %s %s -> %s (stream, request %s)",
            t.name,
            method,
            path,
            response.status_code,
            info.request_id or "-",
        )
        if response.status_code >= 400:
            body = await read_capped(
                response.aiter_bytes(), transport_module.MAX_ERROR_BODY, None, truncate=True
            )
            raise transport_module._error_for(response, body, info, t.auth)
        if "text/event-stream" not in response.headers.get("content-type", ""):
            # An upstream that ignores `stream` answers with the response itself.
            body = await read_capped(
                response.aiter_bytes(),
                t.limits.max_body_bytes,
                lambda: exceeded(t.limits, "max_body_bytes", f"{method} {path}", request_id=info.request_id),
                response.headers.get("content-length"),
            )
            answer = _response_at(response_id)(transport_module._json_body(response, body, info))
            event = ResponseEvent(
                f"response.{answer.status}", None, answer, None, "", None, None, None, None, {}
            )
            return EventStream(_single(event), info)
        return EventStream(self._events(source, f"{method} {path}", response_id), info)

    async def _events(self, source, what: str, response_id: str) -> AsyncIterator[ResponseEvent]:
        """The stream's events as they arrive, within the stream's caps (time, bytes, events, lines)."""
        t = self.transport
        closes_at = asyncio.get_running_loop().time() + t.limits.stream_seconds
        chunks = transport_module._until(
            source.response.aiter_bytes(), closes_at, lambda: exceeded(t.limits, "stream_seconds", what)
        )
        try:
            async for frame in sse.frames(chunks, t.limits, what):
                event = parse_event(frame.event, frame.data)
                if event is None:
                    return
                if event.response is not None:
                    # A stream is about one response: the path's, else the first it reports.
                    response_id = response_id or event.response.id
                    checked = _check_id("response", event.response.id, response_id)
                    event = replace(event, response=replace(event.response, id=checked))
                yield event
        except httpx.HTTPError as exc:
            raise transport_module._transport_error(exc, t.host) from None
        except LimitExceeded:
            log.warning("%s %s: a stream limit was reached; closing it", t.name, what)
            raise
        except UpstreamError as exc:
            exc.message = transport_module._clip(t.auth.redact(exc.message))
            exc.args = (exc.message,)
            raise


def parse_event(name: str, data: str) -> ResponseEvent | None:
    """One SSE frame of a response stream; None at a `[DONE]` line (the Responses stream has none, but
    gateways add it). An `error` frame is an event too: the response's own terminal event follows it.
    Every string is made safe on the way in (text.py)."""
    name = text.clean_text(name or "message")[:200]
    if data.strip() == "[DONE]" or name == "done":
        return None
    try:
        parsed = text.loads(data)
    except (ValueError, RecursionError):
        raise BadResponse(f"The stream sent an unreadable '{name[:100]}' event.") from None
    if not isinstance(parsed, dict):
        raise BadResponse(f"The stream sent a '{name[:100]}' event that is not an object.")
    return ResponseEvent.from_json(name, parsed)


async def _single(event: ResponseEvent) -> AsyncIterator[ResponseEvent]:
    yield event
