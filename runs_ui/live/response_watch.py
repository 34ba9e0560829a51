"""Watches of the Responses shape: one poller per watched, unfinished response (and per watched
conversation), on the same leases, budget, versioned pushes and backoff as the run watches (watcher.py).

A response is one GET away (it carries its whole output), so its watch polls that alone, at the pace its
viewers ask (budget.Priority), within the per-run budget. A response started here streams (response_relay):
the relay takes the response's lease and publishes each event through this watch, as runs do. A
conversation's watch looks at its newest items (and, where the upstream can list them, its responses):
new responses get watches of their own and a group on the conversation's page; items given to it (a
person's message, a function's output) join its timeline.

This process's response and conversation watches are kept by `response_watcher` (not by watcher.py's
`watcher`, which keeps the runs and threads); they share its clock, budget and store.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging

from django.conf import settings

from .. import response_index
from ..models import ResponseSnapshot
from ..tasks import background
from ..upstream.errors import NotFound
from ..upstream.responses_client import ResponsesClient
from ..upstream.responses_objects import Response, ResponseEvent, produced_by_a_response
from . import bus, fragments, metrics
from . import response_fragments as rf
from .budget import Priority, budget
from .clock import Clock, clock
from .response_state import TAIL, ResponseChange, ResponseState
from .store import PROCESS_ID, StoreUnavailable, store
from .watcher import (
    DELTA_PUSH_SECONDS,
    FINAL_RESEND_SECONDS,
    LEASE_RETRY,
    PIN_SECONDS,
    RUN_GETS_PER_SECOND,
    STATE_SAVE_SECONDS,
    LeaseKeeper,
    LeaseLost,
    TokenBucket,
    _Watch,
)

log = logging.getLogger(__name__)

_ids = itertools.count(1)
#: Newest conversation items and responses compared on each look of a conversation.
CONVERSATION_TAIL = 20


class ResponseWatch(_Watch):
    kind = "response"

    def __init__(self, registry: ResponseWatcher, conn: str, response_id: str):
        super().__init__(registry, conn, "", bus.response_key(conn, response_id), response_id)
        self.response_id = response_id
        # One GET per look: the whole per-run budget goes to the response itself.
        self.budget = TokenBucket(RUN_GETS_PER_SECOND, clock=self.clock)
        self.state = ResponseState()
        #: Set once this watch has looked at the response (and published what it saw).
        self.polled = asyncio.Event()
        self.state_saved = -1e9
        self.not_found = 0
        #: Set while a stream relays this response; the poller stands by.
        self.streaming = False
        self.stream: bus.Fence | None = None
        self._pending = ResponseChange()
        self._pushed_at = -1e9
        self.responses: ResponsesClient | None = None
        #: Whether this watch told the inbox about this response following another (it may have answered
        #: a response waiting for a person).
        self._told_inbox = False

    @property
    def conversation_id(self) -> str:
        response = self.state.response
        return response.conversation_id if response is not None else ""

    @property
    def groups(self) -> list[str]:
        groups = [bus.group_of(self.key)]
        if self.conversation_id:
            groups.append(bus.group_of(bus.conversation_key(self.conn, self.conversation_id)))
        return groups

    def interval(self) -> float:
        priority = self.priority()
        if priority == Priority.FOREGROUND:
            return settings.WATCH_FAST_SECONDS
        if priority == Priority.THREAD:
            return settings.WATCH_THREAD_SECONDS
        return settings.WATCH_SLOW_SECONDS

    def lease_taken(self) -> None:
        # What this process knew may be behind what another holder published: the first look publishes
        # the whole state.
        self.state = ResponseState()
        self.state_saved = -1e9

    def _client(self, client) -> ResponsesClient:
        if self.responses is None or self.responses.transport is not client:
            self.responses = ResponsesClient(client)
        return self.responses

    async def step(self, client) -> bool:
        if self.streaming:
            await self.sleep(LEASE_RETRY)  # the stream is the source while it lasts
            return False
        if not await self.hold():
            await self.sleep(self.lease_retry())
            return False
        started = self.clock.monotonic()
        finished = await self.poll(self._client(client))
        await self.recovered()
        if finished:
            await self.finish()
            return True
        # Looks start every interval (the time a look took is not added to the wait between them).
        await self.sleep(self.interval() - (self.clock.monotonic() - started))
        return False

    async def poll(self, client: ResponsesClient) -> bool:
        fence = self.fence
        await self.budget.take()
        await budget.take(self.conn, self.priority())
        response = await client.get_response(self.response_id)
        observed_at = self.clock.time()
        self.not_found = 0
        metrics.polls.labels("response").inc()
        primed = self.state.primed
        state, change = self.state.diff(response)
        state = await self._observe(state, change, response, observed_at)
        if change or not primed:
            await self.publish(fence, state, change, observed_at)
        else:
            self.state = state
        self.polled.set()
        return response.is_terminal

    async def _observe(
        self, state: ResponseState, change: ResponseChange, response: Response, observed_at: float
    ) -> ResponseState:
        """Record what a look found in the index (and when each status was first seen)."""
        if change.status_changed:
            snapshot = await response_index.record_transition(self.conn, response, observed_at)
            if snapshot is not None:
                return state.with_index(snapshot.transitions or [], snapshot.answered_by)
        elif change.response_changed:
            await response_index.record_responses(self.conn, [response], touch=False)
        return state

    async def finish(self) -> None:
        """It ended: its final state goes out once more a little later, for any socket that missed it."""
        await self.clock.sleep(FINAL_RESEND_SECONDS)
        if self.fence is not None and self.state.response is not None:
            with contextlib.suppress(LeaseLost, StoreUnavailable):
                # As a status change: the index's cells go out again too.
                again = ResponseChange(response_changed=True, status_changed=True)
                await self.publish(self.fence, self.state, again, self.clock.time())

    async def gone(self, exc: NotFound) -> bool:
        """A 404, asked once more before its pages are told it is gone (a passing hiccup ends nothing)."""
        self.not_found += 1
        if self.not_found < 2:
            return False
        self.notice = f"{self.response_id} no longer exists upstream: {exc.message}"
        with contextlib.suppress(Exception):
            await self.publish_notice()
        with contextlib.suppress(Exception):
            await bus.get_channel_layer().group_send(bus.group_of(self.key), {"type": "live.gone"})
        return True

    # --- publishing ----------------------------------------------------------------------------

    async def publish(
        self,
        fence: bus.Fence | None,
        state: ResponseState,
        change: ResponseChange,
        observed_at: float,
        save: bool = True,
    ) -> None:
        """Push what changed to the response's and its conversation's pages (the index and inbox when its
        status changed), and save the full state; refused (LeaseLost) if `fence` lost the lease."""
        version = await bus.reserve(fence) if fence is not None else None
        if version is None:
            raise LeaseLost(self.key)
        live_v = fragments.stamp(self.key, version)
        response = state.response
        groups = list(_groups(self.conn, self.key, response))
        push = {}
        if change.response_changed:
            push.update(rf.header(self.conn, response, state.transitions, state.answered_by, live_v))
            push["row"] = rf.row_head(self.conn, response, live_v)
        push["common"] = fragments.merge_box(
            steps=rf.items(self.conn, response.id, list(change.items), live_v), run_id=response.id
        )
        if change.status_changed:
            error = (response.error.code or "error") if response.error else ""
            push["cell"] = rf.response_cell(self.conn, response.id, response.status, error, live_v)
            if response.conversation_id:
                push["cell"] += rf.conversation_cell(
                    self.conn, response.conversation_id, response.status, error, live_v
                )
            groups.append(bus.INDEX_GROUP)
            # It may now wait for a person, or (a follow-up, first seen) have answered one.
            follows = bool(response.previous_response_id or response.conversation_id)
            if response.asks_a_person or (follows and not self._told_inbox):
                push["inbox"] = fragments.inbox_refresh()
                groups.append(bus.INBOX_GROUP)
        saved = None
        if save or change.response_changed:
            saved = self._saved_state(state, live_v)
            self.state_saved = self.clock.monotonic()
        if not await bus.publish(fence, version, push, groups, saved, observed_at):
            raise LeaseLost(self.key)
        metrics.pushes.labels("response").inc()
        self._told_inbox = self._told_inbox or "inbox" in push
        self.state = state

    def _saved_state(self, state: ResponseState, live_v: str) -> dict:
        """What a (re)connecting socket starts from: header, row, newest items, and the banner."""
        response = state.response
        common = fragments.merge_box(
            steps=rf.items(self.conn, response.id, state.newest(TAIL), live_v), run_id=response.id
        )
        return {
            "common": common + fragments.stale_notice(self.notice, live_v),
            "row": rf.row_head(self.conn, response, live_v),
            **rf.header(self.conn, response, state.transitions, state.answered_by, live_v),
        }

    async def publish_notice(self) -> None:
        """The "delayed" banner (or its removal) to the response's pages, saved with the state."""
        fence = self.stream or self.fence
        if fence is None:
            return
        version = await bus.reserve(fence)
        if version is None:
            raise LeaseLost(self.key)
        live_v = fragments.stamp(self.key, version)
        push = {"common": fragments.stale_notice(self.notice, live_v)}
        saved = self._saved_state(self.state, live_v) if self.state.response is not None else None
        if not await bus.publish(fence, version, push, self.groups, saved):
            raise LeaseLost(self.key)

    # --- a stream relayed here (response_relay.py) ---------------------------------------------

    async def begin_stream(self, client, known: Response | None = None) -> None:
        """A stream of this response was opened here: it becomes the one publisher, taking the lease."""
        self.streaming = True  # at once: the poller must not start a poll while the lease changes hands
        self._drop_lease()
        owner = f"{PROCESS_ID}/response-relay-{next(_ids)}"
        ttl = self.lease_ttl()
        token = await store().acquire(self.key, owner, ttl, steal=True)
        self.stream = bus.Fence(self.key, owner, token, ttl)
        # If it is lost (another publisher took over), the stream's next publish is refused and it stops.
        self.watcher.keeper.keep(self.stream, lambda: None)
        self.state = ResponseState()
        self._pending = ResponseChange()
        if known is not None:
            await self.stream_event(
                ResponseEvent(f"response.{known.status}", None, known, None, "", None, None, None, None, {})
            )

    async def stream_event(self, event: ResponseEvent) -> None:
        """One event: applied to the state and pushed (text deltas at most every DELTA_PUSH_SECONDS).
        Raises LeaseLost when another publisher took over: stop relaying."""
        observed_at = self.clock.time()
        state, change = self.state.apply(event)
        if not change:
            return
        if state.response is not None and change.response_changed:
            state = await self._observe(state, change, state.response, observed_at)
        self.state = state
        self._pending = self._pending.merged(change)
        if state.response is None:
            return  # nothing to show before the response itself
        if change.delta and self.clock.monotonic() - self._pushed_at < DELTA_PUSH_SECONDS:
            return
        await self._flush(observed_at)

    async def _flush(self, observed_at: float | None = None) -> None:
        change, self._pending = self._pending, ResponseChange()
        if not change or self.state.response is None:
            return
        self._pushed_at = self.clock.monotonic()
        save = not change.delta or self.clock.monotonic() - self.state_saved > STATE_SAVE_SECONDS
        await self.publish(self.stream, self.state, change, observed_at or self.clock.time(), save=save)

    async def end_stream(self) -> None:
        """The stream ended or broke for good: what is pending goes out, then the poller takes over."""
        fence = self.stream
        try:
            if fence is not None and self._pending:
                with contextlib.suppress(LeaseLost, StoreUnavailable):
                    await self._flush()
        finally:
            if fence is not None:
                self.watcher.keeper.drop(fence)
            self.stream = None
            self.streaming = False
            if fence is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(store().release(fence.key, fence.owner, fence.token), timeout=2)
            self.wake.set()


def _groups(conn: str, key: str, response: Response) -> list[str]:
    groups = [bus.group_of(key)]
    if response.conversation_id:
        groups.append(bus.group_of(bus.conversation_key(conn, response.conversation_id)))
    return groups


class ConversationWatch(_Watch):
    """New responses and given items of a watched conversation; its unfinished responses get watches.

    Its saved state is the ids it knows: a process that takes the lease over knows what is new.
    """

    kind = "conversation"

    def __init__(self, registry: ResponseWatcher, conn: str, conversation_id: str):
        super().__init__(registry, conn, "", bus.conversation_key(conn, conversation_id), conversation_id)
        self.conversation_id = conversation_id
        self.known: set[str] = set()
        self.primed = False
        self.holder = f"conversation:{conversation_id}"
        self.watched: set[str] = set()

    def interval(self) -> float:
        return settings.WATCH_THREAD_SECONDS

    def lease_taken(self) -> None:
        self.primed = False

    async def step(self, client) -> bool:
        if not await self.hold():
            await self.sleep(self.lease_retry())
            return False
        if not self.primed:
            saved = await store().state(self.key)
            if saved:
                self.known = set(saved.get("known") or [])
                self.primed = True
        started = self.clock.monotonic()
        await self.poll(ResponsesClient(client))
        await self.recovered()
        await self.sleep(self.interval() - (self.clock.monotonic() - started))
        return False

    async def poll(self, client: ResponsesClient) -> None:
        fence = self.fence
        priority = self.priority()
        await budget.take(self.conn, priority)
        items = (
            await client.list_conversation_items(self.conversation_id, limit=CONVERSATION_TAIL, order="desc")
        ).data
        responses = await self._responses(client, priority)
        metrics.polls.labels("conversation").inc()
        items = [i for i in reversed(items) if i.id]  # oldest first
        fresh_responses = [r for r in responses if r.id not in self.known]
        # Items a response wrote reach the page through that response's watch (into its group).
        fresh_items = [i for i in items if i.id not in self.known and not produced_by_a_response(i)]
        if fresh_responses:
            await response_index.record_responses(self.conn, fresh_responses, "listed", touch=False)
        if fresh_responses or fresh_items or not self.primed:
            # The page shows what it was given before what answered it.
            fresh = rf.given_items(self.conn, fresh_items) + rf.response_rows(self.conn, fresh_responses)
            given = [i for i in items if not produced_by_a_response(i)]
            tail = rf.given_items(self.conn, given) + rf.response_rows(self.conn, responses, max_items=TAIL)
            # Only the newest come back in a look, so the ids of the last look are enough.
            self.known = {i.id for i in items} | {r.id for r in responses}
            await self._publish(fence, fresh if self.primed else "", tail)
            self.primed = True
        for response in responses:
            if not response.is_terminal and response.id not in self.watched:
                self.watched.add(response.id)
                self.watcher.watch(
                    "response", self.conn, self.conversation_id, response.id, self.holder, Priority.THREAD
                )

    async def _responses(self, client: ResponsesClient, priority: Priority) -> list[Response]:
        """Its newest responses: listed where the upstream can, else those the index knows (the snapshot's
        state; the response's own watch reads it)."""
        if client.profile.can_list_responses:
            await budget.take(self.conn, priority)
            page = await client.list_responses(
                conversation_id=self.conversation_id, limit=CONVERSATION_TAIL, order="desc"
            )
            return list(reversed([r for r in page.data if r.id]))
        known = (
            ResponseSnapshot.objects.filter(connection=self.conn, conversation_id=self.conversation_id)
            .exclude(status="")
            .order_by("-created_at")[:CONVERSATION_TAIL]
        )
        snapshots = [s async for s in known]
        return [_placeholder(s) for s in reversed(snapshots)]

    async def _publish(self, fence: bus.Fence | None, fresh: str, tail: str) -> None:
        """New rows to the conversation's pages; the newest rows and the ids known saved, for a page whose
        socket was away (it adds the rows it lacks) and for a process that takes the lease over."""
        version = await bus.reserve(fence) if fence is not None else None
        if version is None:
            raise LeaseLost(self.key)
        saved = {"common": fragments.merge_box(timeline=tail), "known": sorted(self.known)}
        push = {"common": fragments.merge_box(timeline=fresh)} if fresh else {}
        if not await bus.publish(fence, version, push, [bus.group_of(self.key)], saved):
            raise LeaseLost(self.key)
        metrics.pushes.labels("conversation").inc()

    async def gone(self, exc) -> bool:
        return True  # the conversation is gone: nothing left to follow

    async def publish_notice(self) -> None:
        return None  # response watches report their own staleness

    def release_responses(self) -> None:
        for response_id in self.watched:
            self.watcher.unwatch("response", self.conn, self.conversation_id, response_id, self.holder)


def _placeholder(snapshot) -> Response:
    """A response as the index knows it: enough for a new group's row (its watch then reads it whole)."""
    raw = {
        "id": snapshot.response_id,
        "object": "response",
        "status": snapshot.status,
        "model": snapshot.model,
        "created_at": int(snapshot.created_at.timestamp()) if snapshot.created_at else None,
        "conversation": {"id": snapshot.conversation_id} if snapshot.conversation_id else None,
        "output": [],
    }
    return Response.from_json(raw)


class ResponseWatcher:
    """This process's response and conversation watches (watcher.py's `watcher` keeps runs and threads).
    One instance per process (`response_watcher`), used from its event loop."""

    def __init__(self, clock: Clock = clock):
        self.clock = clock
        #: Renews the leases of these watches (and of their streams), as watcher.py's keeper does for runs.
        self.keeper = LeaseKeeper(clock)
        self.responses: dict[tuple[str, str], ResponseWatch] = {}
        self.conversations: dict[tuple[str, str], ConversationWatch] = {}

    def _start(self, watch: _Watch, wake: bool = True) -> None:
        if not watch.alive():
            watch.wake.clear()
            watch.task = background(watch.main(), f"watch-{watch.kind}")
        elif wake:
            watch.wake.set()

    def response(self, conn: str, response_id: str) -> ResponseWatch:
        watch = self.responses.get((conn, response_id))
        if watch is None or not watch.alive():
            watch = self.responses[(conn, response_id)] = ResponseWatch(self, conn, response_id)
        return watch

    def conversation(self, conn: str, conversation_id: str) -> ConversationWatch:
        watch = self.conversations.get((conn, conversation_id))
        if watch is None or not watch.alive():
            watch = self.conversations[(conn, conversation_id)] = ConversationWatch(
                self, conn, conversation_id
            )
        return watch

    def watch(
        self,
        kind: str,
        conn: str,
        conversation_id: str,
        response_id: str | None,
        holder: str,
        priority: Priority = Priority.FOREGROUND,
        *,
        wake: bool = True,
    ) -> _Watch:
        """Interest in a response (kind "response") or a conversation (kind "conversation"), as a socket
        registers it (consumers.py: `kind, conn, thread-or-conversation id, object id`)."""
        if kind == "response":
            watch = self.response(conn, response_id)
        else:
            watch = self.conversation(conn, conversation_id)
            priority = Priority.THREAD
        watch.holders[holder] = priority
        self._start(watch, wake)
        return watch

    def unwatch(self, kind: str, conn: str, conversation_id: str, response_id: str | None, holder: str):
        table = self.responses if kind == "response" else self.conversations
        watch = table.get((conn, response_id if kind == "response" else conversation_id))
        if watch is not None:
            watch.holders.pop(holder, None)
            if not watch.interested():
                watch.stop()

    def touch_response(self, conn: str, response_id: str, seconds: float = PIN_SECONDS) -> ResponseWatch:
        """An action just changed this response, or a page polls it: follow it closely for a while."""
        watch = self.response(conn, response_id)
        watch.pinned_until = max(watch.pinned_until, self.clock.monotonic() + seconds)
        self._start(watch)
        return watch

    def touch_conversation(self, conn: str, conversation_id: str, seconds: float = 15.0) -> ConversationWatch:
        watch = self.conversation(conn, conversation_id)
        watch.pinned_until = max(watch.pinned_until, self.clock.monotonic() + seconds)
        self._start(watch)
        return watch

    def forget(self, watch: _Watch) -> None:
        if isinstance(watch, ResponseWatch):
            if self.responses.get((watch.conn, watch.response_id)) is watch:
                del self.responses[(watch.conn, watch.response_id)]
        elif isinstance(watch, ConversationWatch):
            if self.conversations.get((watch.conn, watch.conversation_id)) is watch:
                del self.conversations[(watch.conn, watch.conversation_id)]
            watch.release_responses()

    async def stop(self) -> None:
        """Cancel every watch and its side tasks (process shutdown, end of a test)."""
        watches = [*self.responses.values(), *self.conversations.values()]
        tasks = [w.task for w in watches if w.task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for watch in watches:
            watch._drop_lease()
        self.responses.clear()
        self.conversations.clear()
        await self.keeper.stop()


response_watcher = ResponseWatcher()
