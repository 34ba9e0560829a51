"""The watcher: one poller per watched, non-terminal run (and per watched thread), however many sockets.

Sockets, polling pages and actions register interest with this process's `watcher`; a run with interest
gets one task here. Across processes, a lease in the shared state decides which process's task polls;
the others wait and take over if the holder stops renewing. A poll compares the run (and, less often,
its newest steps and messages) with what was seen before and publishes only the changes. When a run
ends, its final state is fetched once and the task stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict

from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import timezone

from . import index, live
from .assistants import assistant_name, assistant_names
from .connections import aget_client
from .models import ThreadEntry
from .shared_state import shared
from .tasks import background
from .upstream.errors import NotFound, UpstreamError
from .upstream.objects import Message, MessageCreation, Run, Step

log = logging.getLogger(__name__)

#: The run is polled every tick; its newest steps every STEPS_EVERY ticks, and whenever the run changed.
STEPS_EVERY = 5
#: Newest steps and messages compared on each steps poll (and kept as the state a socket resyncs with).
TAIL = 20
#: Per-run budget of upstream GETs.
RUN_GETS_PER_SECOND = 2.0
#: The share of that budget for steps and messages; the rest keeps the run's own polls on time, so a new
#: status is seen within one poll interval however busy the run's steps are.
DETAIL_GETS_PER_SECOND = 1 / 3
#: After this long without a change, polling slows down gradually to WATCH_SLOW_SECONDS.
QUIET_AFTER = 15.0
#: How often a process that does not hold a lease checks whether it is free.
LEASE_RETRY = 1.0
#: An action keeps its run watched this long, whether or not anybody is looking.
PIN_SECONDS = 180.0
MAX_ERROR_DELAY = 60.0


class TokenBucket:
    """At most `rate` acquisitions per second on average, `burst` at once."""

    def __init__(self, rate: float, burst: float = 1.0, initial: float | None = None):
        self.rate, self.burst = rate, burst
        self.tokens, self.updated = burst if initial is None else initial, time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
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
        while not self.try_take():  # noqa: ASYNC110 - it sleeps exactly until the next token
            await asyncio.sleep((1 - self.tokens) / self.rate)


class _Watch:
    """What run and thread watches share: holders, a wake-up event, a lease, error backoff."""

    kind = ""

    def __init__(self, watcher: Watcher, conn: str, thread_id: str):
        self.watcher, self.conn, self.thread_id = watcher, conn, thread_id
        self.holders: dict[str, bool] = {}
        self.pinned_until = 0.0
        self.wake = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.errors = 0
        #: Set when the last holder left and the task was told to stop.
        self.stopping = False
        #: True while a stream started here relays the run's events (then the poller stands by).
        self.streaming = False

    @property
    def pinned(self) -> bool:
        return time.monotonic() < self.pinned_until

    def interested(self) -> bool:
        return bool(self.holders) or self.pinned

    def fast(self) -> bool:
        return any(self.holders.values()) or self.pinned

    def alive(self) -> bool:
        # Not `task.cancelling()`: a wait_for timeout in sleep() cancels the task for a moment too,
        # and a watch replaced then keeps polling, unreachable, next to its successor.
        return self.task is not None and not self.task.done() and not self.stopping

    def stop(self) -> None:
        self.stopping = True
        if self.task is not None:
            self.task.cancel()

    async def sleep(self, seconds: float) -> None:
        """Sleep, unless woken early (new interest, an action just changed the run)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout=max(0.0, seconds))
        self.wake.clear()

    async def main(self) -> None:
        lease = f"lease:{self.kind}:{self.lease_id}"
        store = shared()
        holding = False
        try:
            client = await aget_client(self.conn)
            while self.interested():
                pause = self.interval()
                if not await store.acquire(lease, max(settings.WATCH_LEASE_SECONDS, pause * 2)):
                    holding = False
                    await self.sleep(LEASE_RETRY)
                    continue
                holding = True
                if self.streaming:
                    await self.sleep(LEASE_RETRY)  # the stream is the source; the lease stays ours
                    continue
                try:
                    finished = await self.poll(client)
                except NotFound as exc:
                    await self.gone(exc)
                    return
                except UpstreamError as exc:
                    self.errors += 1
                    delay = min(MAX_ERROR_DELAY, 2**self.errors) * random.uniform(0.75, 1.25)
                    delay = max(delay, min(exc.retry_after or 0, MAX_ERROR_DELAY))
                    log.warning(
                        "watching %s %s: %s; retrying in %.0f s", self.kind, self.lease_id, exc, delay
                    )
                    await self.stale(exc, delay)
                    # Held through the wait, so no other process asks before the upstream said to; not
                    # wakeable either, for the same reason.
                    await store.acquire(lease, delay + settings.WATCH_LEASE_SECONDS)
                    await asyncio.sleep(delay)
                    continue
                if self.errors:
                    self.errors = 0
                    await self.stale(None, 0)
                if finished:
                    return
                await self.sleep(self.interval())
        except Exception:  # not CancelledError (a BaseException): a stopped watch ends quietly
            log.exception("watching %s %s failed", self.kind, self.lease_id)
        finally:
            if holding:
                with contextlib.suppress(Exception):
                    await store.release(lease)
            self.watcher.forget(self)

    # Subclasses: lease_id, interval(), poll(client) -> finished?, gone(exc), stale(exc, delay)


class RunWatch(_Watch):
    kind = "run"

    def __init__(self, watcher: Watcher, conn: str, thread_id: str, run_id: str):
        super().__init__(watcher, conn, thread_id)
        self.run_id = run_id
        self.lease_id = live.run_group(conn, run_id).removeprefix("run.")
        # No bursts: the budget holds over short spans too, not only on average.
        self.run_budget = TokenBucket(RUN_GETS_PER_SECOND - DETAIL_GETS_PER_SECOND, burst=1)
        # Starts empty: the page that started this watch was just drawn with the run's steps.
        self.detail_budget = TokenBucket(DETAIL_GETS_PER_SECOND, burst=1, initial=0)
        self.run: Run | None = None
        self.steps: OrderedDict[str, Step] = OrderedDict()
        self.messages: OrderedDict[str, Message] = OrderedDict()
        self.transitions: list[dict] = []
        self.polls = 0
        #: Steps (and messages) to fetch as soon as the budget allows.
        self.steps_due = self.messages_due = False
        self.poll_after: float | None = None
        self.last_change = time.monotonic()
        self.client = None
        #: Set once this watch has looked at the run (and published what it saw).
        self.polled = asyncio.Event()
        self.state_saved = 0.0

    @property
    def groups(self) -> list[str]:
        return [live.run_group(self.conn, self.run_id), live.thread_group(self.conn, self.thread_id)]

    def interval(self) -> float:
        run = self.run
        if not self.fast():
            base = settings.WATCH_SLOW_SECONDS
        elif run is not None and run.status == "requires_action" and not self.pinned:
            # Waiting for a person: check now and then, and right after it would expire.
            base = settings.WATCH_SLOW_SECONDS
            if run.expires_at:
                base = min(base, max(settings.WATCH_FAST_SECONDS, run.expires_at - time.time() + 0.5))
        else:
            base = settings.WATCH_FAST_SECONDS
        quiet = time.monotonic() - self.last_change
        if quiet > QUIET_AFTER and not self.pinned:
            base = min(
                max(base, settings.WATCH_SLOW_SECONDS), base * (1 + (quiet - QUIET_AFTER) / QUIET_AFTER)
            )
        return max(base, self.poll_after or 0)

    async def _pace(self) -> None:
        await self.watcher.limit(self.conn)

    def _detail_allowed(self, now: bool) -> bool:
        if now:
            self.detail_budget.borrow()
            return True
        return self.detail_budget.try_take()

    async def _get(self, call, budget: TokenBucket | None = None):
        """`call()` once the per-connection cap and `budget` (if given) allow. The call is made only then,
        so a watch cancelled while it waits leaves no coroutine behind."""
        await self.watcher.limit(self.conn)
        if budget is not None:
            await budget.take()
        return await call()

    async def poll(self, client) -> bool:
        self.client = client
        run = await self._get(lambda: client.get_run(self.thread_id, self.run_id), self.run_budget)
        observed_at = time.time()
        self.polls += 1
        if run.info and run.info.poll_after_ms:
            self.poll_after = run.info.poll_after_ms / 1000
        primed = self.run is not None
        run_changed = not primed or run.raw != self.run.raw
        status_changed = await self.observe_run(run, observed_at)
        # A new status goes out at once, then the steps and messages it brought: under the per-run budget
        # each of those GETs can wait ~0.5 s (docs/PERFORMANCE.md), and a status should not.
        early = primed and status_changed
        if early:
            await self.publish(True, status_changed, [], [], [])
        # Steps and messages are fetched when their share of the budget allows (within a few seconds),
        # never holding up the next poll of the run; the one final look at an ended run takes them at once,
        # on credit.
        now = run.is_terminal
        self.steps_due = self.steps_due or run_changed or self.polls % STEPS_EVERY == 0
        steps, messages, new_messages = [], [], []
        if self.steps_due and self._detail_allowed(now):
            self.steps_due = False
            steps = await self._changed_steps(client)
            self.messages_due = self.messages_due or self._messages_due(steps, run)
        if (self.messages_due or run.is_terminal) and self._detail_allowed(now):
            self.messages_due = False
            messages, new_messages = await self._changed_messages(client)
        if (run_changed and not early) or steps or messages:
            await self.publish(
                run_changed, status_changed and not early, steps, messages, new_messages if primed else []
            )
        self.polled.set()
        return run.is_terminal

    async def observe_run(self, run: Run, observed_at: float) -> bool:
        """Take in the run's latest state; record it in the index. Returns whether its status changed."""
        previous, self.run = self.run, run
        status_changed = previous is None or run.status != previous.status
        if status_changed:
            snapshot = await index.record_transition(self.conn, run, observed_at)
            self.transitions = snapshot.transitions if snapshot else self.transitions
        elif run.raw != previous.raw:
            await index.record_runs(self.conn, self.thread_id, [run])
        return status_changed

    async def _changed_steps(self, client) -> list[Step]:
        page = await self._get(
            lambda: client.list_steps(self.thread_id, self.run_id, limit=TAIL, order="desc")
        )
        changed = []
        for step in reversed(page.data):  # oldest first, so new steps are appended in order
            if not step.id:
                continue
            known = self.steps.get(step.id)
            if known is None or known.raw != step.raw:
                changed.append(step)
            self.steps[step.id] = step
        while len(self.steps) > TAIL * 2:
            self.steps.popitem(last=False)
        return changed

    def _messages_due(self, steps: list[Step], run: Run) -> bool:
        """Messages are fetched when a message step appeared or changed, or is still being written."""

        def writes(s):
            return isinstance(s.details, MessageCreation)

        return (
            run.is_terminal
            or any(writes(s) for s in steps)
            or any(writes(s) and not s.is_terminal for s in self.steps.values())
        )

    async def _changed_messages(self, client) -> tuple[list[Message], list[Message]]:
        page = await self._get(
            lambda: client.list_messages(self.thread_id, run_id=self.run_id, limit=TAIL, order="desc")
        )
        changed, new = [], []
        for message in reversed(page.data):
            if not message.id:
                continue
            known = self.messages.get(message.id)
            if known is None:
                new.append(message)
            if known is None or known.raw != message.raw:
                changed.append(message)
            self.messages[message.id] = message
        while len(self.messages) > TAIL * 2:
            self.messages.popitem(last=False)
        return changed, new

    async def publish(
        self,
        run_changed: bool,
        status_changed: bool,
        steps: list[Step],
        messages: list[Message],
        new_messages: list[Message],
        save: bool = True,
    ) -> None:
        """Push what changed to the run's and thread's pages (and the home list when its status changed)."""
        run = self.run
        self.last_change = time.monotonic()
        # The header and row are rendered once: for the push when the run changed, and for the saved state.
        name = await assistant_name(self.client, run.assistant_id, self._pace)
        header, row_head = None, ""
        if run_changed or save:
            header = live.render_header(self.conn, run, name, self.transitions, list(self.steps.values()))
            row_head = live.render_row_head(self.conn, run, name)
        merge = live.merge_box(
            steps=live.render_steps(self.conn, run, steps, dict(self.messages)),
            run_id=run.id,
            bodies=live.render_message_bodies(self.conn, messages),
            # Thread pages replace the messages they show and add new ones.
            timeline=live.render_message_items(self.conn, messages),
            insert=bool(new_messages),
            bars=live.render_waterfall(run, steps) if (steps or run_changed) else "",
            run=run,
        )
        if save:
            # Saved before it is pushed, so a socket connecting in between still resyncs to it; shielded,
            # so a watch stopped meanwhile (its last viewer left) does not leave an older state behind.
            await asyncio.shield(self.save_state(header, row_head))
        await live.publish(
            self.groups, merge, header if run_changed else None, row_head if run_changed else ""
        )
        if (
            status_changed
            and await ThreadEntry.objects.filter(
                connection=self.conn, thread_id=self.thread_id, latest_run_id=run.id
            ).aexists()
        ):
            error = (run.last_error.code or "error") if run.last_error else ""
            await live.publish(
                [live.INDEX_GROUP], live.render_index_cell(self.conn, self.thread_id, run.status, error)
            )

    async def save_state(self, header: dict[str, str], row_head: str) -> None:
        """The full state a (re)connecting socket gets: header, row, newest steps and message bodies."""
        run = self.run
        self.state_saved = time.monotonic()
        state = live.merge_box(
            steps=live.render_steps(self.conn, run, list(self.steps.values())[-TAIL:], dict(self.messages)),
            run_id=run.id,
            bodies=live.render_message_bodies(self.conn, list(self.messages.values())[-TAIL:]),
            bars=live.render_waterfall(run, list(self.steps.values())[-TAIL:]),
            run=run,
        )
        await live.save_state(
            live.run_state_key(self.conn, self.run_id),
            state + live.stale_notice(),
            header,
            row_head,
        )

    async def stale(self, exc: UpstreamError | None, delay: float) -> None:
        if exc is None:
            notice = live.stale_notice()
        else:
            seen = timezone.now().strftime("%H:%M:%S UTC")
            notice = live.stale_notice(
                f"Live updates for {self.run_id} are delayed ({exc.kind}); showing what was known before "
                f"{seen}, retrying in {delay:.0f} s."
            )
        await live.publish(self.groups, notice)

    async def gone(self, exc: UpstreamError) -> None:
        await live.publish(
            self.groups, live.stale_notice(f"{self.run_id} no longer exists upstream: {exc.message}")
        )
        # The run's own page has nothing left to show: its sockets close with 4404.
        await get_channel_layer().group_send(live.run_group(self.conn, self.run_id), {"type": "live.gone"})


class ThreadWatch(_Watch):
    """New runs and messages on a watched thread (slower cadence); its active runs get run watches."""

    kind = "thread"

    def __init__(self, watcher: Watcher, conn: str, thread_id: str):
        super().__init__(watcher, conn, thread_id)
        self.lease_id = live.thread_group(conn, thread_id).removeprefix("thread.")
        self.known: set[str] = set()
        self.primed = False
        self.holder = f"thread:{thread_id}"
        self.watched_runs: set[str] = set()

    def interval(self) -> float:
        return settings.WATCH_SLOW_SECONDS

    async def poll(self, client) -> bool:
        await self.watcher.limit(self.conn)
        await self.watcher.limit(self.conn)  # two requests
        runs, messages = await asyncio.gather(
            client.list_runs(self.thread_id, limit=TAIL, order="desc"),
            client.list_messages(self.thread_id, limit=TAIL, order="desc"),
        )
        fresh_runs = [r for r in runs.data if r.id and r.id not in self.known]
        fresh_messages = [m for m in messages.data if m.id and m.id not in self.known]
        self.known.update(r.id for r in runs.data if r.id)
        self.known.update(m.id for m in messages.data if m.id)
        if fresh_runs:
            await index.record_runs(self.conn, self.thread_id, fresh_runs)
        if self.primed and (fresh_runs or fresh_messages):
            names = await assistant_names(client, lambda: self.watcher.limit(self.conn))
            # Oldest first: the page inserts each at the top (newest first) or bottom (oldest first).
            items = sorted(
                [("run", r) for r in fresh_runs] + [("message", m) for m in fresh_messages],
                key=lambda item: item[1].created_at or 0,
            )
            html = "".join(
                live.render_run_rows(self.conn, [obj], names)
                if kind == "run"
                else live.render_message_items(self.conn, [obj])
                for kind, obj in items
            )
            await live.publish([live.thread_group(self.conn, self.thread_id)], live.merge_box(timeline=html))
        self.primed = True
        for run in runs.data:
            if run.id and not run.is_terminal and run.id not in self.watched_runs:
                self.watched_runs.add(run.id)
                self.watcher.watch_run(self.conn, self.thread_id, run.id, self.holder)
        return False

    async def stale(self, exc, delay) -> None:
        return None  # run watches report their own staleness

    async def gone(self, exc) -> None:
        return None

    def release_runs(self) -> None:
        for run_id in self.watched_runs:
            self.watcher.unwatch_run(self.conn, run_id, self.holder)


class Watcher:
    """This process's watches. One instance per process (`watcher`), used from its event loop."""

    def __init__(self):
        self.runs: dict[tuple[str, str], RunWatch] = {}
        self.threads: dict[tuple[str, str], ThreadWatch] = {}
        self._buckets: dict[str, TokenBucket] = {}

    async def limit(self, conn: str) -> None:
        """The global cap on upstream requests per second per connection (this process's share)."""
        bucket = self._buckets.get(conn)
        if bucket is None:
            rate = settings.UPSTREAM_MAX_RPS
            bucket = self._buckets[conn] = TokenBucket(rate, burst=max(1.0, rate))
        await bucket.take()

    def _start(self, watch: _Watch) -> None:
        if not watch.alive():
            # A new task polls at once; a wake-up left set would also cut short its first sleep
            # (skipping the upstream's poll-after hint, or the first backoff after an error).
            watch.task = background(watch.main(), f"watch-{watch.kind}")
        else:
            watch.wake.set()

    def watch_run(self, conn: str, thread_id: str, run_id: str, holder: str, fast: bool = True) -> RunWatch:
        watch = self.runs.get((conn, run_id))
        if watch is None or not watch.alive():
            watch = self.runs[(conn, run_id)] = RunWatch(self, conn, thread_id, run_id)
        watch.holders[holder] = fast
        self._start(watch)
        return watch

    def unwatch_run(self, conn: str, run_id: str, holder: str) -> None:
        watch = self.runs.get((conn, run_id))
        if watch is not None:
            watch.holders.pop(holder, None)
            if not watch.interested():
                watch.stop()

    def touch_run(self, conn: str, thread_id: str, run_id: str, seconds: float = PIN_SECONDS) -> RunWatch:
        """An action just changed this run: follow it for a while, and poll it now."""
        watch = self.runs.get((conn, run_id))
        if watch is None or not watch.alive():
            watch = self.runs[(conn, run_id)] = RunWatch(self, conn, thread_id, run_id)
        watch.pinned_until = max(watch.pinned_until, time.monotonic() + seconds)
        watch.last_change = time.monotonic()
        self._start(watch)
        return watch

    def touch_thread(self, conn: str, thread_id: str, seconds: float = 15.0) -> ThreadWatch:
        """A page polls this thread (its socket is down): keep following it for a while."""
        watch = self.threads.get((conn, thread_id))
        if watch is None or not watch.alive():
            watch = self.threads[(conn, thread_id)] = ThreadWatch(self, conn, thread_id)
        watch.pinned_until = max(watch.pinned_until, time.monotonic() + seconds)
        self._start(watch)
        return watch

    def watch_thread(self, conn: str, thread_id: str, holder: str) -> ThreadWatch:
        watch = self.threads.get((conn, thread_id))
        if watch is None or not watch.alive():
            watch = self.threads[(conn, thread_id)] = ThreadWatch(self, conn, thread_id)
        watch.holders[holder] = True
        self._start(watch)
        return watch

    def unwatch_thread(self, conn: str, thread_id: str, holder: str) -> None:
        watch = self.threads.get((conn, thread_id))
        if watch is not None:
            watch.holders.pop(holder, None)
            if not watch.interested():
                watch.stop()

    def forget(self, watch: _Watch) -> None:
        if isinstance(watch, RunWatch):
            if self.runs.get((watch.conn, watch.run_id)) is watch:
                del self.runs[(watch.conn, watch.run_id)]
        else:
            if self.threads.get((watch.conn, watch.thread_id)) is watch:
                del self.threads[(watch.conn, watch.thread_id)]
            watch.release_runs()

    async def stop(self) -> None:
        """Cancel every watch (process shutdown, end of a test)."""
        tasks = [w.task for w in [*self.runs.values(), *self.threads.values()] if w.task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.runs.clear()
        self.threads.clear()


watcher = Watcher()
