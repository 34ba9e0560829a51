"""Upstream objects → what a page shows: the interleaved thread timeline, run durations, the step waterfall.

Nothing here "fixes" upstream data: out-of-order timestamps give negative durations that the page shows
as such, and inconsistent usage is flagged, not recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .upstream.objects import FunctionCall, Message, MessageCreation, Page, Run, Step, ToolCalls


@dataclass(frozen=True)
class Duration:
    label: str
    seconds: float | None
    #: "upstream" (whole-second timestamps) or "observed" (seen here, sub-second).
    source: str = "upstream"
    running: bool = False


def _span(start: int | float | None, end: int | float | None) -> float | None:
    return None if start is None or end is None else float(end - start)


def run_durations(run: Run, now: float, steps: list[Step] = ()) -> list[Duration]:
    """Queued, in progress, waiting for tool outputs and total, from the run's own timestamps."""
    end = run.ended_at
    running = not run.is_terminal
    last = end if end is not None else (now if running else None)
    durations = [
        Duration(
            "queued",
            _span(
                run.created_at,
                run.started_at if run.started_at is not None else (now if run.status == "queued" else None),
            ),
            running=run.status == "queued",
        ),
        Duration("in progress", _span(run.started_at, last), running=running and run.started_at is not None),
    ]
    waiting = waiting_for_outputs(run, steps, now)
    if waiting is not None:
        durations.append(
            Duration("waiting for tool outputs", waiting, running=run.status == "requires_action")
        )
    durations.append(Duration("total", _span(run.created_at, last), running=running))
    return durations


def waiting_for_outputs(run: Run, steps: list[Step], now: float) -> float | None:
    """Time function-call steps sat waiting: from their creation until they completed (or now)."""
    total, seen = 0.0, False
    for step in steps:
        if isinstance(step.details, ToolCalls) and any(
            isinstance(c, FunctionCall) for c in step.details.tool_calls
        ):
            end = (
                step.ended_at
                if step.ended_at is not None
                else (now if run.status == "requires_action" else None)
            )
            span = _span(step.created_at, end)
            if span is not None:
                total, seen = total + span, True
    return total if seen else None


def observed_durations(transitions: list[dict], now: float, terminal: bool) -> list[Duration]:
    """How long each status lasted as the watcher saw it (sub-second), in the order seen."""
    out = []
    for i, t in enumerate(transitions):
        start = t.get("at")
        nxt = transitions[i + 1].get("at") if i + 1 < len(transitions) else None
        is_last = i + 1 == len(transitions)
        if is_last and terminal:
            continue  # a terminal status has no duration
        end = nxt if nxt is not None else now
        out.append(Duration(str(t.get("status")), _span(start, end), "observed", running=is_last))
    return out


def out_of_order(run: Run) -> bool:
    """True when the upstream's timestamps contradict each other (shown as a warning, not corrected)."""
    points = [run.created_at, run.started_at, run.ended_at]
    known = [p for p in points if p is not None]
    return known != sorted(known)


@dataclass(frozen=True)
class TimelineItem:
    kind: str  # "run" or "message"
    at: int | None
    obj: Any


@dataclass(frozen=True)
class TimelinePage:
    items: list[TimelineItem]
    runs_after: str | None
    messages_after: str | None
    runs_done: bool
    messages_done: bool

    @property
    def has_more(self) -> bool:
        return not (self.runs_done and self.messages_done)


def interleave(
    runs: Page[Run] | None,
    messages: Page[Message] | None,
    *,
    order: str,
    runs_after: str | None,
    messages_after: str | None,
) -> TimelinePage:
    """Merge one page of runs and one of messages into a single time-ordered page.

    Each list has its own cursor. Items beyond the point where a list with more pages stops are held
    back for the next page (their cursor does not advance past them), so nothing is skipped or shown twice.
    """
    desc = order != "asc"
    streams = {"run": runs, "message": messages}
    # The boundary: the shallowest last timestamp among the lists that still have pages to come.
    bounds = [
        page.data[-1].created_at or 0 for page in streams.values() if page and page.has_more and page.data
    ]
    bound = (max(bounds) if desc else min(bounds)) if bounds else None

    def shown(obj) -> bool:
        if bound is None:
            return True
        at = obj.created_at or 0
        return at >= bound if desc else at <= bound

    items, cursors = [], {"run": runs_after, "message": messages_after}
    done = {"run": runs is None, "message": messages is None}
    for kind, page in streams.items():
        if page is None:
            continue
        kept = []
        for obj in page.data:
            if not shown(obj):
                break
            kept.append(obj)
        items += [TimelineItem(kind, obj.created_at, obj) for obj in kept]
        if kept and kept[-1].id:
            cursors[kind] = kept[-1].id
        done[kind] = not page.has_more and len(kept) == len(page.data)
    # Within one second, a run follows the message that started it, and precedes the messages it wrote.
    items.sort(
        key=lambda i: (i.at or 0, 1 if i.kind == "run" else 2 if getattr(i.obj, "run_id", None) else 0),
        reverse=desc,
    )
    return TimelinePage(items, cursors["run"], cursors["message"], done["run"], done["message"])


@dataclass(frozen=True)
class Bar:
    step: Step
    start_pct: float
    width_pct: float


def waterfall(run: Run, steps: list[Step], now: float) -> list[Bar]:
    """One bar per step, placed on the run's own time axis (created → ended, or now while running)."""
    origin = run.created_at
    end = run.ended_at if run.ended_at is not None else now
    starts = [s.created_at for s in steps if s.created_at is not None]
    if origin is None:
        origin = min(starts) if starts else None
    if origin is None:
        return []
    ends = [s.ended_at for s in steps if s.ended_at is not None] + [end]
    span = max(max(ends) - origin, 1)
    bars = []
    for s in steps:
        if s.created_at is None:
            continue
        stop = s.ended_at if s.ended_at is not None else (end if not s.is_terminal else s.created_at)
        start_pct = min(max((s.created_at - origin) / span * 100, 0), 100)
        width_pct = min(max((stop - s.created_at) / span * 100, 0.6), 100 - start_pct)
        bars.append(Bar(s, round(start_pct, 2), round(max(width_pct, 0.6), 2)))
    return bars


def message_of(step: Step, messages: dict[str, Message]) -> Message | None:
    """The message a message-creation step made, if it is among `messages`."""
    if isinstance(step.details, MessageCreation):
        return messages.get(step.details.message_id)
    return None
