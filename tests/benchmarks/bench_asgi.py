"""The dashboard's ASGI application, plus what only the benchmarks need. Never used by the product.

    daphne -b 127.0.0.1 -p PORT tests.benchmarks.bench_asgi:application

- Every request and every product WebSocket route go to `dashboard.asgi.application`, unchanged.
- Extra WebSocket routes for the *bare* broadcast the live pushes are compared with:
  `/ws/bench/bare/` joins the group `bench.bare` and forwards what the group gets (a plain Channels
  consumer); `/ws/bench/bare-nodb/` the same without Channels' per-message `close_old_connections`
  (a hop through the process's one sync thread); `/ws/bench/control/` takes `broadcast <id> <size>
  <group>` and `group_send`s, to that group, an HTML payload of `size` characters that carries the time
  it was sent (so the receiver needs no log to time it).
- With BENCH_LOG=/path, the product is observed (not changed) by wrapping two functions, which append one
  JSON line per call to that file:
  * `runs_ui.live.bus.publish` — when a push was published, the fingerprint of what each kind of socket
    receives of it (see `wsclient.fingerprint`), and the stream events it carried (below);
  * `AssistantsClient._events` and `ResponsesClient._events` — when each SSE event of a streamed run or
    response arrived from the upstream. A relay handles a stream in one task, so the events that arrived
    since the task's last publish are the ones that publish carries. An event of a response that changes
    nothing on its pages (`response.queued` right after `response.created` says queued) is never shown:
    it is left out (`ResponseWatch.stream_event` is watched for that, by applying the event to a copy of
    the state, which the product's state never sees).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import URLRouter
from django.urls import path

from dashboard.asgi import application as product
from runs_ui.live import bus
from runs_ui.live.response_watch import ResponseWatch
from runs_ui.upstream.client import AssistantsClient
from runs_ui.upstream.responses_client import ResponsesClient


class BareConsumer(AsyncWebsocketConsumer):
    """What a bare Channels group broadcast costs: join a group, forward its messages as they are."""

    group = "bench.bare"

    async def connect(self):
        await self.accept()
        await self.channel_layer.group_add(self.group, self.channel_name)

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def bench_push(self, event):
        await self.send(text_data=event["html"])


class BareNoDbConsumer(BareConsumer):
    group = "bench.bare-nodb"

    async def dispatch(self, message):
        if message["type"] == "bench.push":
            await self.bench_push(message)
        else:
            await super().dispatch(message)


class ControlConsumer(AsyncWebsocketConsumer):
    async def receive(self, text_data=None, bytes_data=None):
        command, push_id, size, group = (text_data or "").split()
        if command != "broadcast":
            return
        sent = time.time()
        head = f'<div id="bench-{push_id}" data-sent="{sent!r}" hx-swap-oob="true">'
        html = head + "x" * max(0, int(size) - len(head) - 6) + "</div>"
        await self.channel_layer.group_send(group, {"type": "bench.push", "html": html})
        await self.send(text_data=f"sent {push_id} {sent!r} {time.time()!r}")


_bench_routes = URLRouter(
    [
        path("ws/bench/bare/", BareConsumer.as_asgi()),
        path("ws/bench/bare-nodb/", BareNoDbConsumer.as_asgi()),
        path("ws/bench/control/", ControlConsumer.as_asgi()),
    ]
)
_product_websocket = product.application_mapping["websocket"]


async def _websocket(scope, receive, send):
    if scope["path"].startswith("/ws/bench/"):
        return await _bench_routes(scope, receive, send)
    return await _product_websocket(scope, receive, send)


async def application(scope, receive, send):
    if scope["type"] == "websocket":
        return await _websocket(scope, receive, send)
    return await product(scope, receive, send)


# --- observing the product -------------------------------------------------------------------------

_LOG = os.environ.get("BENCH_LOG", "")
_pending: dict[asyncio.Task, list] = {}


def _fp(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _write(entry: dict) -> None:
    with open(_LOG, "a") as log:
        log.write(json.dumps(entry) + "\n")


if _LOG:
    _publish = bus.publish
    _events = AssistantsClient._events
    _response_events = ResponsesClient._events
    _stream_event = ResponseWatch.stream_event

    async def publish(fence, version, push, groups, state=None, observed_at=None):
        started = time.time()
        task = asyncio.current_task()
        carried = _pending.pop(task, [])
        published = await _publish(fence, version, push, groups, state, observed_at)
        if published:
            fps = {
                "run-operator": _fp(bus.html_for(push, "operator", "run")),
                "run-viewer": _fp(bus.html_for(push, "viewer", "run")),
                "thread": _fp(bus.html_for(push, "viewer", "thread")),
                "index": _fp(bus.html_for(push, "viewer", "index")),
            }
            _write(
                {
                    "kind": "publish",
                    "t": started,
                    "t_observed": observed_at,
                    "t_sent": time.time(),
                    "groups": groups,
                    "fps": fps,
                    "key": fence.key,
                    "v": str(version),
                    "size": len(bus.html_for(push, "operator", "run")),
                    "events": carried,
                    "pid": os.getpid(),
                }
            )
        return published

    async def events(self, source):
        task = asyncio.current_task()
        async for event in _events(self, source):
            data_id = getattr(event.data, "id", None)
            status = getattr(event.data, "status", None)
            _pending.setdefault(task, []).append([time.time(), event.event, data_id, status])
            yield event

    async def response_events(self, source, *args):
        task = asyncio.current_task()
        async for event in _response_events(self, source, *args):
            status = event.response.status if event.response is not None else None
            _pending.setdefault(task, []).append([time.time(), event.type, event.item_id, status])
            yield event

    async def stream_event(self, event):
        _, change = self.state.apply(event)  # a pure function: the watch's own state is not touched
        pending = _pending.get(asyncio.current_task())
        if not change and pending and pending[-1][1] == event.type:
            pending.pop()  # nothing to show: no fragment is caused by it
            _write({"kind": "no_change", "t": time.time(), "event": event.type, "events": [], "groups": []})
        return await _stream_event(self, event)

    bus.publish = publish
    AssistantsClient._events = events
    ResponsesClient._events = response_events
    ResponseWatch.stream_event = stream_event
