"""The live socket: a signed-in page subscribes to what it shows and gets HTML fragments pushed.

Close codes say why a socket was refused or ended: 4401 not signed in (or signed out since), 4403 another
site's page (socket_origin), 4404 no such thread or connection, or a run the upstream does not know
under this thread.

On (re)connect a socket first gets the saved state of what its page shows and the pushes since. Then it
gets every push in order: one older than what it sent is dropped, and one that skips versions makes it
replay the missed ones (or resync from the saved state), so a page never shows an older state after a
newer one and never stays behind. The socket survives the channel layer going away: it says so on the
page, and joins its groups again and resyncs when it is back (hub.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from urllib.parse import parse_qs

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch
from django.conf import settings
from django.http import Http404

from ..connections import aget_client
from ..models import RunSnapshot, ThreadEntry
from ..roles import roles_for
from ..upstream.objects import RUN_TERMINAL, is_id
from . import bus, fragments, metrics, response_sockets
from .budget import Priority
from .hub import hub
from .response_watch import response_watcher
from .store import StoreUnavailable, Version, store
from .watcher import watcher

log = logging.getLogger(__name__)

NOT_SIGNED_IN = 4401
NOT_FOUND = 4404
#: Pages whose pushes form one unbroken sequence per object (a gap means something was missed).
SEQUENCED = ("run", "thread", "response", "conversation")
#: Pages of the Responses shape (response_sockets.py says what they subscribe to).
RESPONSE_PAGES = ("response", "conversation")
#: The most pushes replayed one by one to catch a socket up; further behind, it resyncs from the state.
MAX_REPLAY = 200
#: An inbox reads its rows again at most this often, however many runs change at once.
INBOX_REFRESH_SECONDS = 1.0


def _entries_since(since: float):
    """Threads first seen after `since` (a Unix time), newest first."""
    from datetime import UTC, datetime

    try:
        moment = datetime.fromtimestamp(since, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return ThreadEntry.objects.none()
    return ThreadEntry.objects.filter(first_seen__gt=moment).order_by("-last_seen")[:50]


#: What the home list and the inbox follow, read once for all of this process's sockets every few seconds.
_followed_cache: dict[str, tuple[float, set]] = {}
FOLLOWED_CACHE_SECONDS = 5.0


async def _followed(page: str) -> set[tuple[str, str, str, str]]:
    """("run", connection, thread, run) of the runs a home list or inbox page follows, and ("response",
    connection, "", response) of the unfinished responses (which may end waiting for a person, or change
    the index)."""
    hit = _followed_cache.get(page)
    if hit and time.monotonic() - hit[0] < FOLLOWED_CACHE_SECONDS:
        return hit[1]
    if page == "index":
        active = ThreadEntry.objects.exclude(latest_status__in=[*RUN_TERMINAL, ""])
        entries = active.order_by("-last_seen").values_list("connection", "thread_id", "latest_run_id")
        wanted = {
            ("run", c, t, r)
            async for c, t, r in entries[: settings.LIVE_INDEX_WATCH_LIMIT]
            if is_id("run", r)
        }
    else:
        active = RunSnapshot.objects.exclude(status__in=RUN_TERMINAL).order_by("-updated_at")
        rows = active.values_list("connection", "thread__thread_id", "run_id")
        wanted = {("run", c, t, r) async for c, t, r in rows[: settings.LIVE_INBOX_WATCH_LIMIT]}
    wanted |= set(await response_sockets.followed(page))
    _followed_cache[page] = (time.monotonic(), wanted)
    return wanted


def _layer_error(exc: BaseException) -> bool:
    return isinstance(exc, (OSError, ConnectionError, StoreUnavailable)) or type(exc).__module__.startswith(
        "redis"
    )


class LiveConsumer(AsyncWebsocketConsumer):
    page = ""
    variant = "viewer"

    # --- lifetime ------------------------------------------------------------------------------

    async def __call__(self, scope, receive, send):
        """Channels' consumer loop, with a channel receive that survives the layer going away, and an
        undo of every registration however the socket ends (a crash included)."""
        self.scope = scope
        self.groups_joined: list[str] = []
        self.interest: list[tuple] = []
        self.state_keys: list[str] = []
        self.seen: dict[str, Version] = {}
        self.session_key = getattr(scope.get("session"), "session_key", None)
        self._inbox_refresh: asyncio.Task | None = None
        self._inbox_sent = 0.0
        # One delivery at a time: pushes from the channel layer, catch-ups from the hub and resyncs all
        # decide by `seen`, then send; interleaved, a slow one could send an older state after a newer.
        self._delivering = asyncio.Lock()
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.channel_receive = self._receive_from_layer
        self.base_send = send
        try:
            await await_many_dispatch([receive, self.channel_receive], self.dispatch)
        except StopConsumer:
            pass
        finally:
            await self._leave()

    async def _receive_from_layer(self):
        while True:
            try:
                return await self.channel_layer.receive(self.channel_name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not _layer_error(exc):
                    raise
                # A read timing out under load is not an outage: the hub asks Redis before telling pages.
                await hub.check_bus(exc)
                await asyncio.sleep(0.2 if not hub.down else 1.0)

    async def dispatch(self, message):
        # A push touches no database, so it skips Channels' per-message close_old_connections: a hop
        # through the process's one sync thread, taken by every socket of a push in turn (a quarter of
        # the CPU of a 1,000-socket push; docs/PERFORMANCE.md).
        if message["type"] == "live.push":
            await self.live_push(message)
        else:
            await super().dispatch(message)

    async def connect(self):
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
            self.groups_joined = await self._subscribe(kwargs) + [bus.user_group(user.pk)]
        except Http404:
            await self.accept()
            await self.close(code=NOT_FOUND)
            return
        await self.accept()
        metrics.sockets.labels(self.page).inc()
        self._counted = True
        hub.join(self)
        try:
            await self._join_groups()
            async with self._delivering:
                await self._resync()
        except StoreUnavailable as exc:
            await hub.bus_down(exc)
            await self.interrupted()

    async def disconnect(self, code):
        await self._leave()

    async def _leave(self) -> None:
        """Undo everything connect did; safe to call twice."""
        hub.leave(self)
        if getattr(self, "_counted", False):
            metrics.sockets.labels(self.page).dec()
            self._counted = False
        if self._inbox_refresh is not None:
            self._inbox_refresh.cancel()
        for group in self.groups_joined:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.channel_layer.group_discard(group, self.channel_name), 2)
        self.groups_joined = []
        for kind, conn, thread_id, object_id, _ in self.interest:
            self._unregister(kind, conn, thread_id, object_id)
        self.interest = []

    async def receive(self, text_data=None, bytes_data=None):
        """Pages only listen; anything they send is ignored."""

    # --- what the page shows -------------------------------------------------------------------

    async def _subscribe(self, kwargs) -> list[str]:
        """Register interest with the watcher; returns the groups to join (and sets the state keys)."""
        scope = kwargs["scope"]
        if scope == "index":
            await self.refresh_interest()
            return [bus.INDEX_GROUP]
        if scope == "inbox":
            await self.refresh_interest()
            return [bus.INBOX_GROUP]
        if scope in RESPONSE_PAGES:
            return await response_sockets.subscribe(self, kwargs)
        conn, thread_id = kwargs["conn"], kwargs["thread_id"]
        if not is_id("thread", thread_id):
            raise Http404
        await aget_client(conn)  # an unknown connection is a 404
        if scope == "run":
            run_id = kwargs["run_id"]
            if not is_id("run", run_id):
                raise Http404
            snapshot = (
                await RunSnapshot.objects.filter(connection=conn, run_id=run_id)
                .select_related("thread")
                .afirst()
            )
            if snapshot is not None and snapshot.thread.thread_id != thread_id:
                raise Http404  # the index knows this run under another thread
            key = bus.run_key(conn, thread_id, run_id)
            self.state_keys = [key]
            # A run known to have ended costs nothing to keep on screen.
            if snapshot is None or snapshot.status not in RUN_TERMINAL:
                self._watch("run", conn, thread_id, run_id, Priority.FOREGROUND)
            return [bus.group_of(key)]
        key = bus.thread_key(conn, thread_id)
        self._watch("thread", conn, thread_id, None, Priority.THREAD)
        active = (
            RunSnapshot.objects.filter(connection=conn, thread__thread_id=thread_id)
            .exclude(status__in=RUN_TERMINAL)
            .values_list("run_id", flat=True)[:50]
        )
        self.state_keys = [key] + [bus.run_key(conn, thread_id, r) async for r in active]
        return [bus.group_of(key)]

    def _watch(self, kind: str, conn: str, thread_id: str, run_id: str | None, priority: Priority) -> None:
        self.interest.append((kind, conn, thread_id, run_id, priority))
        self._register(kind, conn, thread_id, run_id, priority)

    def _register(self, kind, conn, thread_id, run_id, priority, wake: bool = True) -> None:
        if kind == "run":
            watcher.watch_run(conn, thread_id, run_id, self.channel_name, priority, wake=wake)
        elif kind == "thread":
            watcher.watch_thread(conn, thread_id, self.channel_name, wake=wake)
        else:  # a response or a conversation
            response_watcher.watch(kind, conn, thread_id, run_id, self.channel_name, priority, wake=wake)

    def _unregister(self, kind, conn, thread_id, run_id) -> None:
        if kind == "run":
            watcher.unwatch_run(conn, thread_id, run_id, self.channel_name)
        elif kind == "thread":
            watcher.unwatch_thread(conn, thread_id, self.channel_name)
        else:
            response_watcher.unwatch(kind, conn, thread_id, run_id, self.channel_name)

    def keep_watching(self) -> None:
        """Called by the hub: a watch of this page's that ended (it should not) starts again."""
        for interest in self.interest:
            self._register(*interest, wake=False)

    async def refresh_interest(self) -> None:
        """The home list follows (slowly) the active latest runs of the threads it shows; the inbox every
        active indexed run, so the runs that start waiting for tool outputs show up."""
        if self.page not in ("index", "inbox"):
            return
        wanted = await _followed(self.page)
        current = {(k, c, t, r) for k, c, t, r, _ in self.interest}
        for kind, conn, thread_id, run_id in wanted - current:
            self._watch(kind, conn, thread_id, run_id, Priority.BACKGROUND)
        gone = current - wanted
        for kind, conn, thread_id, run_id in gone:
            self._unregister(kind, conn, thread_id, run_id)
        self.interest = [i for i in self.interest if (i[0], i[1], i[2], i[3]) not in gone]

    def tracked_keys(self) -> list[str]:
        """What the hub probes for this socket: the objects whose pushes it gets in sequence."""
        if self.page not in SEQUENCED:
            return []
        return list(dict.fromkeys([*self.state_keys, *self.seen]))

    # --- delivering ----------------------------------------------------------------------------

    async def live_push(self, event):
        version = Version.parse(event.get("v"))
        key = event.get("key")
        if version is None or not isinstance(key, str):
            return
        try:
            async with self._delivering:
                await self._deliver(key, version)
        except StoreUnavailable as exc:
            await hub.bus_down(exc)

    def _newer(self, key: str, version: Version) -> bool:
        last = self.seen.get(key)
        return last is None or version > last

    async def _deliver(self, key: str, version: Version) -> None:
        last = self.seen.get(key)
        if last is not None and version <= last:
            return  # older than (or the same as) what this socket already has
        if self.page in SEQUENCED and last is not None and not version.follows(last):
            await self._catch_up(key, version)
            return
        push = await bus.push_cache.get(key, version)
        if push is None:  # expired before this process read it: the saved state has it
            await self._catch_up(key, version)
            return
        if self._newer(key, version):
            self.seen[key] = version
            await self._send_push(push)

    async def _send_push(self, push: dict) -> None:
        if self.page == "inbox":
            if push.get("inbox"):
                self._schedule_inbox_refresh()
            return
        html = bus.html_for(push, self.variant, self.page)
        if html:
            await self.send(text_data=html)
            if isinstance(push.get("at"), (int, float)):
                metrics.push_latency.observe(max(0.0, time.time() - push["at"]))

    def _schedule_inbox_refresh(self) -> None:
        """The inbox rereads its rows; many runs changing at once cost it one read a second."""
        if self._inbox_refresh is not None and not self._inbox_refresh.done():
            return

        async def refresh():
            await asyncio.sleep(max(0.0, self._inbox_sent + INBOX_REFRESH_SECONDS - time.monotonic()))
            self._inbox_sent = time.monotonic()
            await self.send(text_data=fragments.inbox_refresh())

        self._inbox_refresh = asyncio.get_running_loop().create_task(refresh())

    async def catch_up(self, key: str, upto: Version) -> None:
        """Bring this socket up to `upto` for `key`: replay the pushes it missed, or (too many, expired,
        or from another epoch) send the saved state and the pushes since."""
        async with self._delivering:
            await self._catch_up(key, upto)

    async def _catch_up(self, key: str, upto: Version) -> None:
        last = self.seen.get(key)
        if last is not None and upto <= last:
            return
        how = "replay"
        start = last
        if last is None or last.epoch != upto.epoch or upto.seq - last.seq > MAX_REPLAY:
            start = await self._send_state(key, last) or last
            how = "state"
        missing = []
        if start is not None and start.epoch == upto.epoch:
            missing = [Version(upto.epoch, s) for s in range(int(start.seq) + 1, int(upto.seq) + 1)]
        pushes = await store().pushes(key, missing)
        if any(p is None for p in pushes) and how == "replay":
            # Some expired: the saved state has them.
            start = await self._send_state(key, last) or last
            how = "state"
            pushes = [p for v, p in zip(missing, pushes, strict=True) if start is None or v > start]
            missing = [v for v in missing if start is None or v > start]
        for version, push in zip(missing, pushes, strict=True):
            if push is not None and self._newer(key, version):
                self.seen[key] = version
                await self._send_push(push)
        if self.seen.get(key) != last:
            metrics.gaps_repaired.labels(how).inc()

    async def _send_state(self, key: str, newer_than: Version | None) -> Version | None:
        state = await store().state(key)
        version = Version.parse((state or {}).get("v"))
        if version is None or (newer_than is not None and version <= newer_than):
            return None
        if not self._newer(key, version):
            return None
        self.seen[key] = version
        html = bus.html_for(state, self.variant, self.page)
        if html:
            await self.send(text_data=html)
        return version

    async def resync(self) -> None:
        async with self._delivering:
            await self._resync()

    async def _resync(self) -> None:
        """What a (re)connecting page needs: the saved states of what it shows and the pushes since."""
        if self.page == "index":
            await self._send_index_state()
            return
        if self.page not in SEQUENCED:
            return
        heads = await store().heads(self.state_keys)
        for key, head in zip(self.state_keys, heads, strict=True):
            await self._send_state(key, self.seen.get(key))
            if head is not None:
                await self._catch_up(key, head)

    async def _send_index_state(self) -> None:
        """The home list's status cells from the index, and the rows of threads first seen since the page
        was drawn (`?since=` on the socket's URL)."""
        entries = ThreadEntry.objects.exclude(latest_status="").order_by("-last_seen")
        cells = [
            fragments.index_cell(e.connection, e.thread_id, e.latest_status, e.latest_error_code)
            async for e in entries[: settings.LIVE_INDEX_WATCH_LIMIT]
        ]
        cells += await response_sockets.index_cells()
        query = parse_qs(self.scope.get("query_string", b"").decode("latin1"))
        try:
            since = float(query.get("since", [""])[0])
        except ValueError:
            since = None
        rows = ""
        if since is not None:
            rows = fragments.index_rows([e async for e in _entries_since(since)])
        if cells or rows:
            await self.send(text_data="".join(cells) + rows)

    # --- the bus going away and coming back ----------------------------------------------------

    async def _join_groups(self) -> None:
        try:
            for group in self.groups_joined:
                await self.channel_layer.group_add(group, self.channel_name)
        except Exception as exc:
            if _layer_error(exc):
                raise StoreUnavailable(f"the channel layer: {type(exc).__name__}") from exc
            raise

    async def rejoin(self) -> None:
        """The store is back (perhaps empty): join the groups again, and send the whole state again (the
        page was told updates were interrupted; the state says what is true now)."""
        await self._join_groups()
        async with self._delivering:
            self.seen.clear()
            await self._resync()

    async def interrupted(self) -> None:
        """Said on the page while the bus is away (no version: the resync replaces it)."""
        await self.send(
            text_data=fragments.stale_notice(
                "Live updates are interrupted: the dashboard cannot reach its message bus. "
                "Retrying; this page catches up as soon as it is back."
            )
        )

    # --- the session ---------------------------------------------------------------------------

    async def session_checked(self, user, roles) -> None:
        """Signed out, deactivated: the socket closes. Another role: the page gets that role's variant."""
        if not user.is_authenticated:
            await self.close(code=NOT_SIGNED_IN)
            return
        variant = "operator" if roles.can_act else "viewer"
        if variant != self.variant:
            async with self._delivering:
                self.variant = variant
                self.seen.clear()  # everything again, in the new variant
                await self._resync()

    async def live_user(self, event):
        """Something for this user (a notification), whatever page the socket is on."""
        if isinstance(event.get("html"), str):
            await self.send(text_data=event["html"])

    async def live_gone(self, event):
        """The watcher found that the upstream does not know this page's run (under this thread), or its
        response."""
        if self.page in ("run", "response"):
            await self.close(code=NOT_FOUND)
