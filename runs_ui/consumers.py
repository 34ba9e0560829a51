"""The live socket: a signed-in page subscribes to what it shows and gets HTML fragments pushed.

Close codes say why a socket was refused: 4401 not signed in, 4403 another site's page (socket_origin),
4404 no such thread or connection, or a run the upstream does not know (closed as soon as the watcher
hears so). On (re)connect the socket first gets the current state, so a page that was disconnected misses
nothing.
"""

from __future__ import annotations

import contextlib
import math

from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import Http404

from . import live
from .connections import aget_client
from .models import RunSnapshot, ThreadEntry
from .roles import roles_for
from .upstream.objects import RUN_TERMINAL, is_id
from .watcher import watcher

NOT_SIGNED_IN = 4401
NOT_FOUND = 4404
#: The home page follows (slowly) the active latest runs of this many threads it shows.
INDEX_WATCH_LIMIT = 50
#: The inbox follows (slowly) this many active runs of the index.
INBOX_WATCH_LIMIT = 200


def _end_observed_at(snapshot: RunSnapshot) -> float:
    """When a watcher observed the run's terminal status (it saves the final state after), else never."""
    transitions = snapshot.transitions or []
    if transitions and transitions[-1].get("status") in RUN_TERMINAL:
        return float(transitions[-1].get("at") or 0)
    return math.inf


class LiveConsumer(AsyncWebsocketConsumer):
    groups_joined: list[str]
    interest: list[tuple]

    async def connect(self):
        self.groups_joined, self.interest = [], []
        self.state_since = 0.0
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.accept()
            await self.close(code=NOT_SIGNED_IN)
            return
        roles = await roles_for(user)
        self.variant = "operator" if roles.can_act else "viewer"
        kwargs = self.scope["url_route"]["kwargs"]
        self.page = kwargs["scope"]
        try:
            groups, state_keys = await self._subscribe(kwargs)
        except Http404:
            await self.accept()
            await self.close(code=NOT_FOUND)
            return
        await self.accept()
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined = groups
        for state in await live.current_state(state_keys):
            if state.get("at", 0) >= self.state_since:
                await self.send(text_data=live.html_for(state, self.variant, self.page))

    async def _subscribe(self, kwargs) -> tuple[list[str], list[str]]:
        """Join the page's groups, register interest with the watcher; returns (groups, state keys)."""
        scope = kwargs["scope"]
        if scope == "index":
            await self._watch_index()
            return [live.INDEX_GROUP], []
        if scope == "inbox":
            await self._watch_active(INBOX_WATCH_LIMIT)
            return [], []
        conn, thread_id = kwargs["conn"], kwargs["thread_id"]
        if not is_id("thread", thread_id):
            raise Http404
        await aget_client(conn)  # an unknown connection is a 404
        if scope == "run":
            run_id = kwargs["run_id"]
            if not is_id("run", run_id):
                raise Http404
            snapshot = await RunSnapshot.objects.filter(connection=conn, run_id=run_id).afirst()
            # A run known to have ended costs nothing to keep on screen.
            if snapshot is None or snapshot.status not in RUN_TERMINAL:
                watcher.watch_run(conn, thread_id, run_id, self.channel_name)
                self.interest.append(("run", conn, run_id))
            else:
                # Only a state saved after a watcher saw the run end is final. An older one (the watcher
                # stopped, or is saving right now) would set the freshly rendered page back in time.
                self.state_since = _end_observed_at(snapshot)
            return [live.run_group(conn, run_id)], [live.run_state_key(conn, run_id)]
        watcher.watch_thread(conn, thread_id, self.channel_name)
        self.interest.append(("thread", conn, thread_id))
        return [live.thread_group(conn, thread_id)], await live.thread_state_keys(conn, thread_id)

    async def _watch_index(self) -> None:
        """The home list: its threads' active latest runs are followed at the slow pace."""
        entries = ThreadEntry.objects.exclude(latest_status__in=[*RUN_TERMINAL, ""]).order_by("-last_seen")
        async for entry in entries[:INDEX_WATCH_LIMIT]:
            if is_id("run", entry.latest_run_id):
                watcher.watch_run(
                    entry.connection, entry.thread_id, entry.latest_run_id, self.channel_name, fast=False
                )
                self.interest.append(("run", entry.connection, entry.latest_run_id))

    async def _watch_active(self, limit: int) -> None:
        """The inbox: every active indexed run is followed at the slow pace, so the runs that start waiting
        for tool outputs show up (the page re-reads its list from the index)."""
        active = (
            RunSnapshot.objects.exclude(status__in=RUN_TERMINAL)
            .select_related("thread")
            .order_by("-updated_at")
        )
        async for snapshot in active[:limit]:
            watcher.watch_run(
                snapshot.connection, snapshot.thread.thread_id, snapshot.run_id, self.channel_name, fast=False
            )
            self.interest.append(("run", snapshot.connection, snapshot.run_id))

    async def disconnect(self, code):
        for group in self.groups_joined:
            with contextlib.suppress(Exception):
                await self.channel_layer.group_discard(group, self.channel_name)
        for kind, conn, object_id in self.interest:
            if kind == "run":
                watcher.unwatch_run(conn, object_id, self.channel_name)
            else:
                watcher.unwatch_thread(conn, object_id, self.channel_name)
        self.interest = []

    async def receive(self, text_data=None, bytes_data=None):
        """Pages only listen; anything they send is ignored."""

    async def dispatch(self, message):
        # A push touches no database, so it skips Channels' per-message close_old_connections: a hop
        # through the process's one sync thread, taken by every socket of a push in turn (a quarter of
        # the CPU of a 1,000-socket push; docs/PERFORMANCE.md).
        if message["type"] == "live.push":
            await self.live_push(message)
        else:
            await super().dispatch(message)

    async def live_gone(self, event):
        """The watcher found that the upstream does not know this page's run."""
        if self.page == "run":
            await self.close(code=NOT_FOUND)

    async def live_push(self, event):
        push = await live.push_cache.get(event["push"])
        html = live.html_for(push, self.variant, self.page)
        if html:
            await self.send(text_data=html)
