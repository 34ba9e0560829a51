"""The watcher: one poller per watched, non-terminal run (and per watched thread), across the cluster.

Sockets, polling pages and actions register interest with this process's `watcher`, each with a priority
(budget.Priority); a run with interest gets one task here. Across processes, a lease in the shared store
decides which task publishes: the holder polls, renews its lease in a side task (so a slow poll or a wait
for the budget never lets it lapse), and publishes with its fencing token — a holder that stalled and lost
its lease has its result refused. A stream relayed here (relay.py) takes the lease from the poller while
it lasts, so a run always has exactly one publisher.

A watch ends only when interest ends (or its run ended and its final state went out, twice). Every error
— upstream, shared store, database, rendering — is backed off and retried, and shown on the pages as
staleness while it lasts.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections.abc import Callable

from django.conf import settings
from django.http import Http404
from django.utils import timezone

from .. import index
from ..assistants import cached_name, cached_names
from ..connections import aget_client
from ..models import ThreadEntry
from ..tasks import background
from ..upstream.errors import NotFound, RateLimited, UpstreamError
from ..upstream.objects import Message, Run
from . import bus, fragments, metrics
from .budget import Priority, budget
from .clock import Clock, clock
from .state import TAIL, Change, RunState
from .store import PROCESS_ID, StoreUnavailable, Version, store

log = logging.getLogger(__name__)

#: Per-run budget of upstream GETs (whatever the connection's budget allows).
RUN_GETS_PER_SECOND = 2.0
#: The share of that budget for steps and messages; the rest keeps the run's own polls on time, so a new
#: status is seen within one poll interval however busy the run's steps are.
DETAIL_GETS_PER_SECOND = 1 / 3
#: The run is polled every tick; its newest steps every STEPS_EVERY ticks, and whenever the run changed.
STEPS_EVERY = 5
#: The longest a run page's watch waits before checking its lease again (others wait until the holder's
#: lease would expire: the store says when).
LEASE_RETRY = 1.0
#: The keeper renews every held lease of this process in one round trip, looking this often.
KEEPER_TICK = 0.25
#: An action keeps its run watched this long, whether or not anybody is looking.
PIN_SECONDS = 180.0
MAX_ERROR_DELAY = 60.0
#: The shared store or the database failing is retried sooner: pages catch up as soon as it is back.
MAX_STORE_ERROR_DELAY = 2.0
#: The final state of an ended run is published again after this long, for sockets that missed it.
FINAL_RESEND_SECONDS = 2.0
#: While a stream relays deltas, the saved state is re-rendered at most this often (pushes since the saved
#: state are kept, so a socket that connects in between still gets everything).
STATE_SAVE_SECONDS = 0.5
#: Stream deltas (text growing) are pushed at most this often.
DELTA_PUSH_SECONDS = 0.05

_ids = itertools.count(1)

#: What else happens when the run's one publisher (the lease holder, cluster-wide) looks at a run:
#: notifications hang here (registered by their app at start-up). Each is `async hook(conn, thread_id,
#: run, transitions)`, `transitions` being the statuses the dashboard observed and when (the index's
#: RunSnapshot.transitions; its last entry is the run's status). `on_status` hooks run after a push that
#: showed a status this publisher had not shown (a new status, or its first push after taking the lease
#: over: a hook must treat a transition it already handled as done), `on_look` hooks after every look.
#: They run in the background: a slow hook never holds up a publish.
on_status: list = []
on_look: list = []


def _run_hooks(hooks: list, *args) -> None:
    for hook in hooks:
        task = background(hook(*args), "live-hook")
        task.add_done_callback(_log_hook_failure)


def _log_hook_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("a live hook failed", exc_info=task.exception())


class TokenBucket:
    """At most `rate` acquisitions per second on average, `burst` at once."""

    def __init__(self, rate: float, burst: float = 1.0, initial: float | None = None, clock: Clock = clock):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = burst if initial is None else initial
        self.updated = clock.monotonic()

    def _refill(self) -> None:
        now = self.clock.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def try_take(self) -> bool:
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def borrow(self) -> None:
        """Take a token now even if there is none: the debt delays the next ones, so the rate still holds."""
        self._refill()
        self.tokens -= 1

    async def take(self) -> None:
        while not self.try_take():
            await self.clock.sleep((1 - self.tokens) / self.rate)


class LeaseKeeper:
    """Renews every lease this process holds, whatever each watch is doing (a poll may wait long for the
    budget or an upstream): one task and one round trip for all of them, each renewed every third of its
    life. A process that stalls stops renewing, and another takes over."""

    def __init__(self, clock: Clock):
        self.clock = clock
        self._leases: dict[bus.Fence, tuple[Callable[[], None], float]] = {}
        self._task: asyncio.Task | None = None

    def keep(self, fence: bus.Fence, on_lost: Callable[[], None]) -> None:
        self._leases[fence] = (on_lost, self.clock.monotonic() + fence.ttl / 3)
        if self._task is None or self._task.done():
            self._task = background(self._run(), "lease-keeper")

    def drop(self, fence: bus.Fence) -> None:
        self._leases.pop(fence, None)

    async def _run(self) -> None:
        while self._leases:
            await self.clock.sleep(KEEPER_TICK)
            now = self.clock.monotonic()
            due = [f for f, (_, at) in self._leases.items() if at <= now]
            if not due:
                continue
            try:
                held = await store().renew_many([(f.key, f.owner, f.token, f.ttl) for f in due])
            except StoreUnavailable:
                continue  # if one expires meanwhile, its next publish is refused and says so
            except Exception:
                log.exception("renewing leases failed")
                continue
            for fence, still in zip(due, held, strict=True):
                entry = self._leases.get(fence)
                if entry is None:
                    continue
                if still:
                    self._leases[fence] = (entry[0], now + fence.ttl / 3)
                else:
                    del self._leases[fence]
                    entry[0]()

    async def stop(self) -> None:
        self._leases.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        self._task = None


class LeaseLost(Exception):
    """This publisher no longer holds the object's lease: its result was refused."""


class _Watch:
    """What run and thread watches share: holders, a wake-up event, a lease kept alive, error backoff."""

    kind = ""

    def __init__(self, watcher: Watcher, conn: str, thread_id: str, key: str, label: str):
        self.watcher, self.conn, self.thread_id, self.key = watcher, conn, thread_id, key
        #: The object in the pages' words (its id).
        self.label = label
        self.clock: Clock = watcher.clock
        self.holders: dict[str, Priority] = {}
        self.pinned_until = 0.0
        self.wake = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.errors = 0
        #: Set when the last holder left and the task was told to stop.
        self.stopping = False
        self.owner = f"{PROCESS_ID}/{self.kind}-{next(_ids)}"
        self.fence: bus.Fence | None = None
        #: Set by the keeper when a renewal found the lease gone.
        self.lost = asyncio.Event()
        #: Seconds until another holder's lease expires, as last seen.
        self.lease_free_in = 0.0
        self._waited_for_lease = False
        #: What the pages' "delayed" banner says ("" when live updates are current).
        self.notice = ""
        self.client = None

    # --- interest ------------------------------------------------------------------------------

    @property
    def pinned(self) -> bool:
        return self.clock.monotonic() < self.pinned_until

    def interested(self) -> bool:
        return bool(self.holders) or self.pinned

    def priority(self) -> Priority:
        if self.pinned:
            return Priority.FOREGROUND
        return min(self.holders.values(), default=Priority.BACKGROUND)

    def alive(self) -> bool:
        # Not `task.cancelling()`: a wait_for timeout in sleep() cancels the task for a moment too,
        # and a watch replaced then keeps polling, unreachable, next to its successor.
        return self.task is not None and not self.task.done() and not self.stopping

    def stop(self) -> None:
        self.stopping = True
        if self.task is not None:
            self.task.cancel()

    async def sleep(self, seconds: float) -> None:
        """Sleep, unless woken early (new interest, an action just changed the run, the lease lost)."""
        await self.clock.wait_for(self.wake, seconds)
        self.wake.clear()

    # --- the lease -----------------------------------------------------------------------------

    def lease_ttl(self) -> float:
        """Long enough to outlast two polls: a run page's lease is taken over within WATCH_LEASE_SECONDS
        of its holder dying; the home list's slower watches renew (and are taken over) less often."""
        interval = self.interval() if self.holders or self.pinned else 0.0
        return max(settings.WATCH_LEASE_SECONDS, 2 * interval + 1)

    async def hold(self) -> bool:
        """Whether this watch holds its lease, taking it if it is free."""
        if self.fence is not None and not self.lost.is_set():
            return True
        self._drop_lease()
        ttl = self.lease_ttl()
        token, left = await store().claim(self.key, self.owner, ttl)
        if not token:
            self._waited_for_lease = True
            # Another process holds it: look again right after it would expire (if it stops renewing).
            self.lease_free_in = left
            return False
        if self._waited_for_lease:
            metrics.lease_takeovers.inc()
            self._waited_for_lease = False
        self.fence = bus.Fence(self.key, self.owner, token, ttl)
        self.lost.clear()
        self.watcher.keeper.keep(self.fence, self._lease_gone)
        self.lease_taken()
        return True

    def _lease_gone(self) -> None:
        """The keeper found the lease taken (or expired and taken): stop publishing, look again."""
        self.lost.set()
        self.wake.set()

    def lease_retry(self) -> float:
        """How long a watch that does not hold its lease waits before trying again."""
        longest = LEASE_RETRY if self.priority() == Priority.FOREGROUND else 10.0
        return min(max(self.lease_free_in + 0.05, 0.2), longest)

    def _drop_lease(self) -> None:
        if self.fence is not None:
            self.watcher.keeper.drop(self.fence)
            self.fence = None
            self.lease_lost()

    async def _release(self) -> None:
        fence = self.fence
        self._drop_lease()
        if fence is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(store().release(fence.key, fence.owner, fence.token), timeout=2)

    def lease_taken(self) -> None:
        """This watch just became the publisher (subclasses start from a clean slate)."""

    def lease_lost(self) -> None:
        """Another publisher has the object now."""

    # --- the loop ------------------------------------------------------------------------------

    async def main(self) -> None:
        try:
            while self.interested():
                try:
                    if self.client is None:
                        # The loop is the retry: a poll fails fast and the watch backs off, holding its lease.
                        self.client = (await aget_client(self.conn)).without_retries()
                    if await self.step(self.client):
                        return
                except Http404:
                    log.warning("watching %s %s: its connection is gone", self.kind, self.key)
                    return
                except NotFound as exc:
                    if await self.gone(exc):
                        return
                except LeaseLost:
                    self.lost.set()
                except Exception as exc:  # not CancelledError (a BaseException): a stopped watch ends
                    await self.back_off(exc)
        finally:
            with contextlib.suppress(BaseException):
                await asyncio.shield(self._release())
            self.watcher.forget(self)

    async def back_off(self, exc: Exception) -> None:
        """Any error: wait (longer each time), tell the pages their view is delayed, and try again."""
        self.errors += 1
        upstream = isinstance(exc, UpstreamError)
        cap = MAX_ERROR_DELAY if upstream else MAX_STORE_ERROR_DELAY
        delay = min(cap, 2**self.errors) * random.uniform(0.75, 1.25)
        if upstream:
            delay = max(delay, min(exc.retry_after or 0, MAX_ERROR_DELAY))
            kind = exc.kind
        elif isinstance(exc, StoreUnavailable):
            kind = "shared store unreachable"
        else:
            kind = f"internal error: {type(exc).__name__}"
        metrics.watch_errors.labels(kind).inc()
        if upstream or isinstance(exc, StoreUnavailable):
            log.warning("watching %s %s: %s; retrying in %.1f s", self.kind, self.key, exc, delay)
        else:
            log.exception("watching %s %s failed; retrying in %.1f s", self.kind, self.key, delay)
        if isinstance(exc, RateLimited):
            await budget.slow_down(self.conn, exc.retry_after)
        seen = timezone.now().strftime("%H:%M:%S UTC")
        self.notice = (
            f"Live updates for {self.label} are delayed ({kind}); showing what was known before {seen}, "
            f"retrying in {delay:.0f} s."
        )
        with contextlib.suppress(Exception):
            await self.publish_notice()
        # Not wakeable: nobody makes this watch ask the upstream before it said it may.
        await self.clock.sleep(delay)

    async def recovered(self) -> None:
        if self.errors or self.notice:
            self.errors = 0
            self.notice = ""
            await self.publish_notice()

    # Subclasses: step(client) -> finished?, gone(exc) -> ended?, publish_notice()


class RunWatch(_Watch):
    kind = "run"

    def __init__(self, watcher: Watcher, conn: str, thread_id: str, run_id: str):
        super().__init__(watcher, conn, thread_id, bus.run_key(conn, thread_id, run_id), run_id)
        self.run_id = run_id
        # No bursts: the budget holds over short spans too, not only on average.
        self.run_budget = TokenBucket(RUN_GETS_PER_SECOND - DETAIL_GETS_PER_SECOND, clock=self.clock)
        # Starts empty: the page that started this watch was just drawn with the run's steps.
        self.detail_budget = TokenBucket(DETAIL_GETS_PER_SECOND, initial=0, clock=self.clock)
        self.state = RunState()
        self.polls = 0
        #: Steps (and messages) to fetch as soon as the budget allows.
        self.steps_due = self.messages_due = False
        self.poll_after: float | None = None
        #: Set once this watch has looked at the run (and published what it saw).
        self.polled = asyncio.Event()
        self.state_saved = -1e9
        self.not_found = 0
        #: Set (before anything else happens) while a stream relays this run; the poller stands by.
        self.streaming = False
        #: That stream's own lease and fence.
        self.stream: bus.Fence | None = None
        self._pending = Change()
        self._pushed_at = -1e9
        #: The status this watch last published (the inbox hears when a run enters or leaves
        #: requires_action).
        self._published_status = ""

    @property
    def groups(self) -> list[str]:
        return [bus.group_of(self.key), bus.group_of(bus.thread_key(self.conn, self.thread_id))]

    def interval(self) -> float:
        run = self.state.run
        priority = self.priority()
        if priority == Priority.FOREGROUND:
            # Someone is looking at this run: every change counts, leaving requires_action included.
            base = settings.WATCH_FAST_SECONDS
        elif priority == Priority.THREAD:
            base = settings.WATCH_THREAD_SECONDS
        else:
            base = settings.WATCH_SLOW_SECONDS
        if run is not None and run.status == "requires_action" and run.expires_at:
            # Waiting for a person: look again right after it would expire.
            base = min(base, max(settings.WATCH_FAST_SECONDS, run.expires_at - self.clock.time() + 0.5))
        return max(base, self.poll_after or 0)

    def lease_taken(self) -> None:
        # Whatever this process knew may be behind what another holder published: start over, so the
        # first look publishes the whole state.
        self.state = RunState()
        self.state_saved = -1e9
        self._published_status = ""

    async def _get(self, call, run_budget: TokenBucket | None = None):
        """`call()` once this run's budget (if given) and the connection's allow. The call is made only
        then, so a watch cancelled while it waits leaves no request behind."""
        if run_budget is not None:
            await run_budget.take()
        await budget.take(self.conn, self.priority())
        return await call()

    def _detail_allowed(self, now: bool) -> bool:
        if now:
            self.detail_budget.borrow()
            return True
        return self.detail_budget.try_take()

    async def step(self, client) -> bool:
        if self.streaming:
            await self.sleep(LEASE_RETRY)  # the stream is the source while it lasts
            return False
        if not await self.hold():
            await self.sleep(self.lease_retry())
            return False
        started = self.clock.monotonic()
        finished = await self.poll(client)
        await self.recovered()
        if finished:
            await self.finish()
            return True
        # Polls start every interval (the time a poll took is not added to the wait between them).
        await self.sleep(self.interval() - (self.clock.monotonic() - started))
        return False

    async def poll(self, client) -> bool:
        fence = self.fence
        run = await self._get(lambda: client.get_run(self.thread_id, self.run_id), self.run_budget)
        observed_at = self.clock.time()
        self.polls += 1
        self.not_found = 0
        metrics.polls.labels("run").inc()
        if run.info and run.info.poll_after_ms is not None:
            self.poll_after = run.info.poll_after_ms / 1000
        primed = self.state.primed
        state, change = self.state.diff(run)
        state = await self._observe(state, change, run, observed_at)
        # A new status goes out at once, then the steps and messages it brought: under the per-run budget
        # each of those GETs can wait ~0.5 s (docs/PERFORMANCE.md), and a status should not.
        if primed and change.status_changed:
            await self.publish(fence, state, change, observed_at)
            state, change = self.state, Change()
        # Steps and messages are fetched when their share of the budget allows (within a few seconds),
        # never holding up the next poll of the run; the one final look at an ended run takes them at once,
        # on credit. Runs only the home list or inbox follow need neither: those pages show statuses.
        now = run.is_terminal
        detailed = self.priority() != Priority.BACKGROUND
        self.steps_due = detailed and (self.steps_due or change.run_changed or self.polls % STEPS_EVERY == 0)
        if self.steps_due and self._detail_allowed(now):
            self.steps_due = False
            page = await self._get(
                lambda: client.list_steps(self.thread_id, self.run_id, limit=TAIL, order="desc")
            )
            state, found = state.diff(run, steps=page.data)
            change = change.merged(found)
            self.messages_due = self.messages_due or state.messages_due(found.steps)
        if detailed and (self.messages_due or run.is_terminal) and self._detail_allowed(now):
            self.messages_due = False
            page = await self._get(
                lambda: client.list_messages(self.thread_id, run_id=self.run_id, limit=TAIL, order="desc")
            )
            state, found = state.diff(run, messages=page.data)
            change = change.merged(found)
        if change or not primed:
            await self.publish(fence, state, change, observed_at)
        else:
            self.state = state
        self.polled.set()
        _run_hooks(on_look, self.conn, self.thread_id, run, list(self.state.transitions))
        return run.is_terminal

    async def _observe(self, state: RunState, change: Change, run: Run, observed_at: float) -> RunState:
        """Record what a look found in the index (and when each status was first seen)."""
        if change.status_changed:
            snapshot = await index.record_transition(self.conn, run, observed_at)
            if snapshot is not None:
                return state.with_transitions(snapshot.transitions or [])
        elif change.run_changed:
            await index.record_runs(self.conn, self.thread_id, [run])
        return state

    async def finish(self) -> None:
        """The run ended: its final state goes out once more a little later, for any socket that missed
        the first (the channel layer drops messages past a socket's capacity)."""
        await self.clock.sleep(FINAL_RESEND_SECONDS)
        if self.fence is not None and self.state.run is not None:
            with contextlib.suppress(LeaseLost, StoreUnavailable):
                # As a status change: the home list's cell goes out again too.
                again = Change(run_changed=True, status_changed=True)
                await self.publish(self.fence, self.state, again, self.clock.time())

    async def gone(self, exc: NotFound) -> bool:
        """A 404 for this (thread, run): asked once more before this pair's pages are told it is gone, so a
        passing hiccup ends nobody's live view. Other threads' pages of the same run id are not touched."""
        self.not_found += 1
        if self.not_found < 2:
            return False
        self.notice = f"{self.run_id} no longer exists upstream: {exc.message}"
        with contextlib.suppress(Exception):
            await self.publish_notice()
        with contextlib.suppress(Exception):
            await bus.get_channel_layer().group_send(bus.group_of(self.key), {"type": "live.gone"})
        return True

    # --- publishing ----------------------------------------------------------------------------

    async def publish(
        self, fence: bus.Fence | None, state: RunState, change: Change, observed_at: float, save: bool = True
    ) -> None:
        """Push what changed to the run's and thread's pages (the home list and inbox when its status
        changed), and save the full state; refused (LeaseLost) if `fence` no longer holds the lease."""
        version = await bus.reserve(fence) if fence is not None else None
        if version is None:
            raise LeaseLost(self.key)
        live_v = fragments.stamp(self.key, version)
        run = state.run
        name = cached_name(self.client, run.assistant_id, self._names_pace)
        steps = list(state.steps.values())
        push = {}
        groups = list(self.groups)
        rendered = {}
        if change.run_changed or save:
            rendered = fragments.header(self.conn, run, name, state.transitions, steps, live_v)
            rendered["row"] = fragments.row_head(self.conn, run, name, live_v)
        if change.run_changed:
            push.update(rendered)
        push["common"] = fragments.merge_box(
            steps=fragments.steps(self.conn, run, list(change.steps), dict(state.messages), live_v),
            run_id=run.id,
            bodies=fragments.message_bodies(self.conn, list(change.messages), live_v),
            # Thread pages replace the messages they show and add new ones.
            timeline=fragments.message_items(self.conn, list(change.messages), live_v),
            insert=bool(change.new_messages),
            bars=fragments.waterfall_bars(run, list(change.steps), live_v)
            if (change.steps or change.run_changed)
            else "",
            run=run,
        )
        if change.status_changed:
            if await self._is_latest_run(run):
                error = (run.last_error.code or "error") if run.last_error else ""
                push["cell"] = fragments.index_cell(self.conn, self.thread_id, run.status, error, live_v)
                groups.append(bus.INDEX_GROUP)
            if "requires_action" in (run.status, self._published_status):
                push["inbox"] = fragments.inbox_refresh()
                groups.append(bus.INBOX_GROUP)
        saved = None
        if save or change.run_changed:
            saved = self._saved_state(state, name, live_v, rendered)
            self.state_saved = self.clock.monotonic()
        if not await bus.publish(fence, version, push, groups, saved, observed_at):
            raise LeaseLost(self.key)
        metrics.pushes.labels("run").inc()
        previous, self._published_status = self._published_status, run.status
        self.state = state
        if change.status_changed and previous != run.status:
            _run_hooks(on_status, self.conn, self.thread_id, run, list(state.transitions))

    def _saved_state(self, state: RunState, name: str, live_v: str, rendered: dict | None = None) -> dict:
        """The full state a (re)connecting socket starts from: header, row, newest steps and bodies, and
        the banner (clear, or why updates are delayed). `rendered`: the header and row of this version,
        when the push already has them."""
        run = state.run
        steps = list(state.steps.values())[-TAIL:]
        common = fragments.merge_box(
            steps=fragments.steps(self.conn, run, steps, dict(state.messages), live_v),
            run_id=run.id,
            bodies=fragments.message_bodies(self.conn, list(state.messages.values())[-TAIL:], live_v),
            bars=fragments.waterfall_bars(run, steps, live_v),
            run=run,
        )
        if not rendered:
            rendered = fragments.header(
                self.conn, run, name, state.transitions, list(state.steps.values()), live_v
            )
            rendered["row"] = fragments.row_head(self.conn, run, name, live_v)
        return {"common": common + fragments.stale_notice(self.notice, live_v), **rendered}

    async def publish_notice(self) -> None:
        """The "delayed" banner (or its removal) to the run's pages, saved with the state."""
        fence = self.stream or self.fence
        if fence is None:
            return
        version = await bus.reserve(fence)
        if version is None:
            raise LeaseLost(self.key)
        live_v = fragments.stamp(self.key, version)
        push = {"common": fragments.stale_notice(self.notice, live_v)}
        saved = None
        if self.state.run is not None:
            name = cached_name(self.client, self.state.run.assistant_id, self._names_pace)
            saved = self._saved_state(self.state, name, live_v)
        if not await bus.publish(fence, version, push, self.groups, saved):
            raise LeaseLost(self.key)

    async def _names_pace(self) -> None:
        await budget.take(self.conn, Priority.BACKGROUND)

    async def _is_latest_run(self, run: Run) -> bool:
        return await ThreadEntry.objects.filter(
            connection=self.conn, thread_id=self.thread_id, latest_run_id=run.id
        ).aexists()

    # --- a stream relayed here (relay.py) ------------------------------------------------------

    async def begin_stream(self, client, known: Run | None = None) -> None:
        """A stream of this run was opened here: it becomes the run's one publisher, taking the lease
        from whoever polls it (their next publish is refused)."""
        self.streaming = True  # at once: the poller must not start a poll while the lease changes hands
        self.client = self.client or client.without_retries()
        self._drop_lease()
        owner = f"{PROCESS_ID}/relay-{next(_ids)}"
        ttl = self.lease_ttl()
        token = await store().acquire(self.key, owner, ttl, steal=True)
        self.stream = bus.Fence(self.key, owner, token, ttl)
        # If it is lost (another publisher took over), the stream's next publish is refused and it stops.
        self.watcher.keeper.keep(self.stream, lambda: None)
        self.state = RunState()
        self._pending = Change()
        if known is not None:
            await self.stream_event_run(known)

    async def stream_event_run(self, run: Run) -> None:
        from ..upstream.objects import StreamEvent

        await self.stream_event(StreamEvent(f"thread.run.{run.status}", run))

    async def stream_event(self, event) -> None:
        """One event of the stream: applied to the run's state and pushed (text deltas at most every
        DELTA_PUSH_SECONDS). Raises LeaseLost when another publisher took over: stop relaying."""
        observed_at = self.clock.time()
        state, change = self.state.apply(event)
        if not change:
            return
        if state.run is not None:
            state = await self._observe(state, change, state.run, observed_at)
        # The relay is this state's only writer while it streams: it moves on at once, and what changed
        # waits in `_pending` until it is pushed.
        self.state = state
        self._pending = self._pending.merged(change)
        if state.run is None:
            return  # nothing to show before the run itself
        if change.delta and self.clock.monotonic() - self._pushed_at < DELTA_PUSH_SECONDS:
            return
        await self._flush(observed_at)

    async def _flush(self, observed_at: float | None = None) -> None:
        change, self._pending = self._pending, Change()
        if not change or self.state.run is None:
            return
        self._pushed_at = self.clock.monotonic()
        save = not change.delta or self.clock.monotonic() - self.state_saved > STATE_SAVE_SECONDS
        await self.publish(self.stream, self.state, change, observed_at or self.clock.time(), save=save)

    async def end_stream(self) -> None:
        """The stream ended or broke: what is pending goes out, then the poller takes over at once (it
        checks what the stream may not have said)."""
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


class ThreadWatch(_Watch):
    """New runs and messages on a watched thread; its active runs get run watches.

    Its saved state is the thread's newest runs and messages as timeline rows, with the ids it knows: a
    page whose socket was away merges them (runs created meanwhile appear), and a process that takes the
    lease over knows what is new.
    """

    kind = "thread"

    def __init__(self, watcher: Watcher, conn: str, thread_id: str):
        super().__init__(watcher, conn, thread_id, bus.thread_key(conn, thread_id), thread_id)
        self.known: set[str] = set()
        self.primed = False
        self.holder = f"thread:{thread_id}"
        self.watched_runs: set[str] = set()

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
        await self.poll(client)
        await self.recovered()
        await self.sleep(self.interval() - (self.clock.monotonic() - started))
        return False

    async def poll(self, client) -> None:
        fence = self.fence
        priority = self.priority()
        await budget.take(self.conn, priority)
        await budget.take(self.conn, priority)  # two requests
        runs, messages = await asyncio.gather(
            client.list_runs(self.thread_id, limit=TAIL, order="desc"),
            client.list_messages(self.thread_id, limit=TAIL, order="desc"),
        )
        metrics.polls.labels("thread").inc()
        runs_seen = [r for r in runs.data if r.id]
        messages_seen = [m for m in messages.data if m.id]
        fresh_runs = [r for r in runs_seen if r.id not in self.known]
        fresh_messages = [m for m in messages_seen if m.id not in self.known]
        if fresh_runs:
            await index.record_runs(self.conn, self.thread_id, fresh_runs)
        if fresh_runs or fresh_messages or not self.primed:
            names = cached_names(client, self._names_pace)
            # Oldest first: the page inserts each at the top (newest first) or bottom (oldest first).
            fresh = self._rows(fresh_runs, fresh_messages, names) if self.primed else ""
            tail = self._rows(runs_seen, messages_seen, names)
            # Only the newest items ever come back in a look, so the ids of the last look are enough.
            self.known = {o.id for o in [*runs_seen, *messages_seen]}
            await self._publish(fence, fresh, tail)
            self.primed = True
        for run in runs_seen:
            if not run.is_terminal and run.id not in self.watched_runs:
                self.watched_runs.add(run.id)
                self.watcher.watch_run(self.conn, self.thread_id, run.id, self.holder, Priority.THREAD)

    def _rows(self, runs: list[Run], messages: list[Message], names: dict[str, str]) -> str:
        items = sorted(
            [("run", r) for r in runs] + [("message", m) for m in messages],
            key=lambda item: item[1].created_at or 0,
        )
        return "".join(
            fragments.run_rows(self.conn, [obj], names)
            if kind == "run"
            else fragments.message_items(self.conn, [obj])
            for kind, obj in items
        )

    async def _publish(self, fence: bus.Fence | None, fresh: str, tail: str) -> None:
        version = await bus.reserve(fence) if fence is not None else None
        if version is None:
            raise LeaseLost(self.key)
        saved = {"common": fragments.merge_box(timeline=tail), "known": sorted(self.known)}
        push = {"common": fragments.merge_box(timeline=fresh)} if fresh else {}
        groups = [bus.group_of(self.key)]
        if not await bus.publish(fence, version, push, groups, saved):
            raise LeaseLost(self.key)
        metrics.pushes.labels("thread").inc()

    async def _names_pace(self) -> None:
        await budget.take(self.conn, Priority.BACKGROUND)

    async def gone(self, exc) -> bool:
        return True  # the thread is gone: nothing left to follow

    async def publish_notice(self) -> None:
        return None  # run watches report their own staleness

    def release_runs(self) -> None:
        for run_id in self.watched_runs:
            self.watcher.unwatch_run(self.conn, self.thread_id, run_id, self.holder)


class Watcher:
    """This process's watches. One instance per process (`watcher`), used from its event loop."""

    def __init__(self, clock: Clock = clock):
        self.clock = clock
        self.keeper = LeaseKeeper(clock)
        self.runs: dict[tuple[str, str, str], RunWatch] = {}
        self.threads: dict[tuple[str, str], ThreadWatch] = {}

    def _start(self, watch: _Watch, wake: bool = True) -> None:
        """Start the watch's task if it is not running; else wake it (new interest: look now)."""
        if not watch.alive():
            # A new task polls at once; a wake-up left set would also cut short its first sleep.
            watch.wake.clear()
            watch.task = background(watch.main(), f"watch-{watch.kind}")
        elif wake:
            watch.wake.set()

    def _run(self, conn: str, thread_id: str, run_id: str) -> RunWatch:
        watch = self.runs.get((conn, thread_id, run_id))
        if watch is None or not watch.alive():
            watch = self.runs[(conn, thread_id, run_id)] = RunWatch(self, conn, thread_id, run_id)
        return watch

    def watch_run(
        self,
        conn: str,
        thread_id: str,
        run_id: str,
        holder: str,
        priority: Priority = Priority.FOREGROUND,
        *,
        wake: bool = True,
    ) -> RunWatch:
        watch = self._run(conn, thread_id, run_id)
        watch.holders[holder] = priority
        self._start(watch, wake)
        return watch

    def unwatch_run(self, conn: str, thread_id: str, run_id: str, holder: str) -> None:
        watch = self.runs.get((conn, thread_id, run_id))
        if watch is not None:
            watch.holders.pop(holder, None)
            if not watch.interested():
                watch.stop()

    def touch_run(self, conn: str, thread_id: str, run_id: str, seconds: float = PIN_SECONDS) -> RunWatch:
        """An action just changed this run, or a page polls it: follow it closely for a while, now."""
        watch = self._run(conn, thread_id, run_id)
        watch.pinned_until = max(watch.pinned_until, self.clock.monotonic() + seconds)
        self._start(watch)
        return watch

    def _thread(self, conn: str, thread_id: str) -> ThreadWatch:
        watch = self.threads.get((conn, thread_id))
        if watch is None or not watch.alive():
            watch = self.threads[(conn, thread_id)] = ThreadWatch(self, conn, thread_id)
        return watch

    def touch_thread(self, conn: str, thread_id: str, seconds: float = 15.0) -> ThreadWatch:
        """A page polls this thread (its socket is down): keep following it for a while."""
        watch = self._thread(conn, thread_id)
        watch.pinned_until = max(watch.pinned_until, self.clock.monotonic() + seconds)
        self._start(watch)
        return watch

    def watch_thread(self, conn: str, thread_id: str, holder: str, *, wake: bool = True) -> ThreadWatch:
        watch = self._thread(conn, thread_id)
        watch.holders[holder] = Priority.THREAD
        self._start(watch, wake)
        return watch

    def unwatch_thread(self, conn: str, thread_id: str, holder: str) -> None:
        watch = self.threads.get((conn, thread_id))
        if watch is not None:
            watch.holders.pop(holder, None)
            if not watch.interested():
                watch.stop()

    def forget(self, watch: _Watch) -> None:
        if isinstance(watch, RunWatch):
            if self.runs.get((watch.conn, watch.thread_id, watch.run_id)) is watch:
                del self.runs[(watch.conn, watch.thread_id, watch.run_id)]
        else:
            if self.threads.get((watch.conn, watch.thread_id)) is watch:
                del self.threads[(watch.conn, watch.thread_id)]
            watch.release_runs()

    def count(self, priority: Priority) -> int:
        """Runs watched here at this priority (read by the metrics at scrape time)."""
        return sum(1 for watch in self.runs.values() if watch.priority() == priority)

    async def stop(self) -> None:
        """Cancel every watch and its side tasks (process shutdown, end of a test)."""
        watches = [*self.runs.values(), *self.threads.values()]
        tasks = [w.task for w in watches if w.task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for watch in watches:
            watch._drop_lease()
        self.runs.clear()
        self.threads.clear()
        await self.keeper.stop()
        await budget.stop()


watcher = Watcher()
for _priority in Priority:
    metrics.watched_runs.labels(_priority.name.lower()).set_function(
        lambda priority=_priority: watcher.count(priority)
    )


def version_of(push_or_state: dict | None) -> Version | None:
    return Version.parse((push_or_state or {}).get("v"))
