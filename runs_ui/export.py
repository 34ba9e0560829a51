"""Exports: a thread or a run as one JSON file, written while it is fetched, in constant memory.

Lists are fetched a page at a time by tasks that read ahead of the writer (a bounded queue each), so
fetching overlaps with writing and several runs' steps are fetched at once, as before, while memory holds
only a few pages whatever the size of the thread. An export holds at most UPSTREAM_MAX_ITEMS objects
(runs, steps and messages together). When that cap, another limit or an upstream failure stops it part
way, every open list is closed, and the file ends with `"complete": false` and a `"stopped"` object that
says why: it stays valid JSON and says plainly that it is not whole. A whole export ends with
`"complete": true`.

The first page of each list is fetched before the response starts (`Export.start`), so an upstream that
fails at once gets an error page, not a download.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

from .upstream.client import MAX_PAGE, AssistantsClient
from .upstream.errors import LimitExceeded, UpstreamError
from .upstream.limits import exceeded
from .upstream.objects import Run, Thread
from .upstream.text import to_json

log = logging.getLogger(__name__)

#: Runs whose steps are fetched at once in a thread export (as the pages do: views/pages.py).
CONCURRENCY = 8
#: Text is sent in pieces of about this size.
CHUNK_CHARS = 64 * 1024

_END = object()


class Ahead:
    """An async iterator read ahead by a task of its own, at most `size` items ahead of its reader."""

    def __init__(self, source: AsyncIterator, size: int = MAX_PAGE):
        self._queue: asyncio.Queue = asyncio.Queue(size)
        self._head: tuple | None = None
        self._task = asyncio.get_running_loop().create_task(self._fill(source), name="export-read-ahead")

    async def _fill(self, source: AsyncIterator) -> None:
        async with contextlib.aclosing(source):
            try:
                async for item in source:
                    try:
                        await self._queue.put((item, None))
                    except asyncio.CancelledError:
                        if isinstance(item, Closes):
                            item.close()  # read, never handed over: its own read-ahead stops too
                        raise
                await self._queue.put((_END, None))
            except UpstreamError as exc:
                await self._queue.put((_END, exc))

    async def start(self):
        """The first item (None at the end), once it is there; an upstream error that came first is
        raised here."""
        if self._head is None:
            self._head = await self._queue.get()
        item, error = self._head
        if error is not None:
            raise error
        return None if item is _END else item

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self._head is not None:
            (item, error), self._head = self._head, None
        else:
            item, error = await self._queue.get()
        if item is not _END:
            return item
        self._head = (_END, None)  # stays ended
        if error is not None:
            raise error
        raise StopAsyncIteration

    def close(self) -> None:
        """Stop reading ahead; what was read and not taken is dropped (closed, if it can be)."""
        self._task.cancel()
        if self._head is not None and isinstance(self._head[0], Closes):
            self._head[0].close()
        while not self._queue.empty():
            item, _ = self._queue.get_nowait()
            if isinstance(item, Closes):
                item.close()


class Closes:
    """Something read ahead that has read-ahead of its own to stop."""

    def close(self) -> None:
        raise NotImplementedError


class RunWithSteps(Closes):
    def __init__(self, run: Run, steps: Ahead):
        self.run = run
        self.steps = steps

    def close(self) -> None:
        self.steps.close()


class _Stopped(Exception):
    """The export ends here; `reason` is what the file says about it."""

    def __init__(self, reason: dict):
        self.reason = reason


def _reason(exc: UpstreamError) -> dict:
    reason = {"what": exc.kind, "message": exc.message}
    if isinstance(exc, LimitExceeded):
        reason.update(limit=exc.limit, setting=exc.setting, value=exc.value)
    if exc.status:
        reason["upstream_status"] = exc.status
    if exc.request_id:
        reason["upstream_request_id"] = exc.request_id
    return reason


class _Json:
    """One JSON object written piece by piece, two-space indented, keeping what is open so that it can be
    closed properly wherever the export stops."""

    def __init__(self):
        self._levels: list[list] = []  # [closer, has members] per open object or list
        self._pieces: list[str] = []
        self._size = 0

    def _put(self, piece: str) -> None:
        self._pieces.append(piece)
        self._size += len(piece)

    def _member(self, key: str | None) -> str:
        level = self._levels[-1]
        separator = ",\n" if level[1] else "\n"
        level[1] = True
        return separator + "  " * len(self._levels) + (f"{json.dumps(key)}: " if key is not None else "")

    def begin(self, closer: str, key: str | None = None) -> None:
        opener = "{" if closer == "}" else "["
        self._put((self._member(key) if self._levels else "") + opener)
        self._levels.append([closer, False])

    def value(self, value, key: str | None = None) -> None:
        text = to_json(value, indent=2).replace("\n", "\n" + "  " * len(self._levels))
        self._put(self._member(key) + text)

    def end(self) -> None:
        closer, had_members = self._levels.pop()
        self._put(("\n" + "  " * len(self._levels) if had_members else "") + closer)

    @property
    def depth(self) -> int:
        return len(self._levels)

    def full(self) -> bool:
        return self._size >= CHUNK_CHARS

    def take(self) -> str:
        text, self._pieces, self._size = "".join(self._pieces), [], 0
        return text


class Export:
    """One export: `await start()`, then iterate it (async) for the file's text; `close()` stops it."""

    def __init__(self, client: AssistantsClient, header: dict, lists: dict[str, Ahead], write):
        self._client = client
        self._header = header
        self._lists = lists
        # (export, json) → an async iterator of text pieces: writes the lists into the open object.
        self._write = write
        self._count = 0
        self._loop = asyncio.get_running_loop()

    def __aiter__(self):
        return self.chunks()

    async def start(self) -> None:
        """The first page of each list (concurrently), and of the first run's steps: a failure here is an
        error page rather than a download."""
        try:
            firsts = await asyncio.gather(*(ahead.start() for ahead in self._lists.values()))
            await asyncio.gather(*(f.steps.start() for f in firsts if isinstance(f, RunWithSteps)))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop every read-ahead. Also called by Django, from a worker thread, when the response is closed
        (the download ended, or the browser went away before it started)."""
        try:
            here = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            here = False
        if here:
            for ahead in self._lists.values():
                ahead.close()
        else:
            with contextlib.suppress(RuntimeError):  # the loop is gone: so are its tasks
                self._loop.call_soon_threadsafe(self.close)

    def count(self) -> None:
        """One more object goes into the file, unless the export's cap says no."""
        if self._count == self._client.limits.max_items:
            raise _Stopped(_reason(exceeded(self._client.limits, "max_items", "The export")))
        self._count += 1

    async def items(self, out: _Json, key: str, source: AsyncIterator, to_value: Callable = lambda o: o.raw):
        """A list written item by item, each counted; the text goes out whenever a piece is full."""
        out.begin("]", key)
        try:
            async for item in source:
                self.count()
                out.value(to_value(item))
                if out.full():
                    yield out.take()
        except UpstreamError as exc:
            log.warning("export from %s stopped: %s", self._client.host, exc.message)
            raise _Stopped(_reason(exc)) from None
        out.end()

    async def chunks(self) -> AsyncIterator[str]:
        out = _Json()
        out.begin("}")
        try:
            for key, value in self._header.items():
                out.value(value, key)
            try:
                async for piece in self._write(self, out):
                    yield piece
            except _Stopped as stop:
                while out.depth > 1:
                    out.end()
                out.value(False, "complete")
                out.value(stop.reason, "stopped")
            else:
                out.value(True, "complete")
            out.end()
            yield out.take() + "\n"
        finally:
            self.close()


def _header(client: AssistantsClient) -> dict:
    return {"exported_at": datetime.now(UTC).isoformat(), "upstream": client.host}


def run_export(client: AssistantsClient, run: Run) -> Export:
    """The run, every step (with file-search content) and every message it made."""
    steps = Ahead(client.iter_steps(run.thread_id, run.id, include_content=True))
    messages = Ahead(client.iter_messages(run.thread_id, order="asc", run_id=run.id))

    async def write(export: Export, out: _Json):
        async for piece in export.items(out, "steps", steps):
            yield piece
        async for piece in export.items(out, "messages", messages):
            yield piece

    return Export(client, {**_header(client), "run": run.raw}, {"steps": steps, "messages": messages}, write)


def thread_export(client: AssistantsClient, thread: Thread) -> Export:
    """The thread, every message, every run and each run's steps; up to CONCURRENCY runs' steps are
    fetched at once while earlier ones are written."""

    async def runs_with_steps():
        async for run in client.iter_runs(thread.id, order="asc"):
            yield RunWithSteps(run, Ahead(client.iter_steps(thread.id, run.id, include_content=True)))

    messages = Ahead(client.iter_messages(thread.id, order="asc"))
    runs = Ahead(runs_with_steps(), size=CONCURRENCY - 1)

    async def write(export: Export, out: _Json):
        async for piece in export.items(out, "messages", messages):
            yield piece
        out.begin("]", "runs")
        async for entry in _each(runs):
            try:
                export.count()
                out.begin("}")
                out.value(entry.run.raw, "run")
                async for piece in export.items(out, "steps", entry.steps):
                    yield piece
                out.end()
            finally:
                entry.close()
        out.end()

    header = {**_header(client), "thread": thread.raw}
    return Export(client, header, {"messages": messages, "runs": runs}, write)


async def _each(ahead: Ahead) -> AsyncIterator:
    """`ahead`'s items, with an upstream failure of the list itself as the export's stop."""
    try:
        async for item in ahead:
            yield item
    except UpstreamError as exc:
        raise _Stopped(_reason(exc)) from None
