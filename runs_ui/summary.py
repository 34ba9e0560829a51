"""A run in plain words: what was asked, what the agent did step by step, where the time went, how it ended.

Built from the typed objects (so it is as tolerant as they are) into sentences made of `Bit`s — plain
words, `code` (names, ids, the upstream's codes) and quotes (what the upstream wrote) — which the HTML
partial (templates/runs_ui/summary.html#run-summary) escapes and `RunSummary.markdown()` escapes for a
ticket. Nothing here renders HTML itself.

    summary = summarize(run, steps, messages, transitions, link=absolute_run_url, now=time.time(),
                        person_answers=await person_answer_times(conn, run.id))
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from .models import AuditRecord
from .templatetags.runs import duration
from .timeline import waiting_for_outputs
from .upstream.objects import (
    CodeInterpreterCall,
    FileSearchCall,
    FunctionCall,
    Message,
    MessageCreation,
    Run,
    Step,
    ToolCalls,
    UnknownToolCall,
)

MAX_STEPS = 20
QUESTION_CHARS = 500
QUOTE_CHARS = 160
#: A person's submission this close to the end of a wait is what ended it (clocks and whole seconds).
PERSON_SLACK = 5.0


@dataclass(frozen=True, slots=True)
class Bit:
    text: str
    #: "text" (the dashboard's own words), "words" (the upstream's, shown as plain text), "code" (names, ids,
    #: codes) or "quote" (what the upstream wrote).
    kind: str = "text"


Sentence = tuple[Bit, ...]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def code(text: object, limit: int = 80) -> Bit:
    return Bit(_clip(_one_line(text), limit), "code")


def quote(text: object, limit: int = QUOTE_CHARS) -> Bit:
    return Bit(_clip(_one_line(text), limit), "quote")


def words(text: object, limit: int = 40) -> Bit:
    return Bit(_clip(_one_line(text), limit), "words")


def sentence(*parts: str | Bit) -> Sentence:
    return tuple(p if isinstance(p, Bit) else Bit(p) for p in parts if p != "")


def plain(s: Sentence) -> str:
    return "".join(f"“{b.text}”" if b.kind == "quote" else b.text for b in s)


@dataclass(frozen=True)
class StepLine:
    step_id: str
    status: str
    sentence: Sentence


@dataclass(frozen=True)
class TimeShare:
    label: str
    seconds: float
    percent: int
    running: bool = False


@dataclass(frozen=True)
class Outcome:
    tone: str  # "ok", "error", "warning" or "running"
    sentence: Sentence
    #: The upstream's own words, shown beside ours.
    code: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    thread_id: str
    status: str
    link: str
    asked: Bit | None
    asked_message_id: str
    steps: list[StepLine]
    steps_more: Sentence | None
    time: list[TimeShare]
    time_source: str  # "observed" (by the dashboard, sub-second) or "upstream" (whole seconds)
    total: float | None
    outcome: Outcome

    @property
    def time_note(self) -> str:
        if self.time_source == "observed":
            return "as the dashboard saw it"
        return "from the upstream's timestamps (whole seconds)"

    def markdown(self) -> str:
        return to_markdown(self)


# --- what was asked --------------------------------------------------------------------------------


def _message_words(message: Message) -> str:
    if message.text.strip():
        return message.text
    kinds = sorted({part.type for part in message.content})
    return f"(a message with no text: {', '.join(kinds) or 'empty'})"


def question_of(run: Run, messages: Iterable[Message]) -> Message | None:
    """The first user message of the run: one the run names, else the first of the user messages that
    came just before the run was created (after the previous answer)."""
    ordered = sorted(messages, key=lambda m: m.created_at if m.created_at is not None else -1)
    own = [m for m in ordered if m.role == "user" and m.run_id == run.id and run.id]
    if own:
        return own[0]
    before = [
        m
        for m in ordered
        if (run.created_at is None or m.created_at is None or m.created_at <= run.created_at)
        and not (m.role != "user" and m.run_id == run.id)
    ]
    block: list[Message] = []
    for m in reversed(before):
        if m.role == "user":
            block.append(m)
        elif block:
            break
    return block[-1] if block else None


# --- what the agent did --------------------------------------------------------------------------

AZURE_TOOLS = {
    "bing_grounding": "searched the web with Bing",
    "bing_custom_search": "searched the web with Bing Custom Search",
    "azure_ai_search": "searched an Azure AI Search index",
    "sharepoint_grounding": "searched SharePoint",
    "fabric_dataagent": "asked a Microsoft Fabric data agent",
    "openapi": "called an OpenAPI tool",
    "azure_function": "called an Azure Function",
    "deep_research": "ran deep research",
    "connected_agent": "asked another agent",
    "mcp": "called an MCP tool",
}


def _arguments_words(arguments: str) -> list[str | Bit]:
    text = arguments.strip()
    if not text or text == "{}":
        return ["with no arguments"]
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return ["with arguments ", code(text)]
    scalar = (str, int, float, bool, type(None))
    if isinstance(value, dict) and 0 < len(value) <= 4 and all(isinstance(v, scalar) for v in value.values()):
        parts: list[str | Bit] = ["with "]
        items = list(value.items())
        for i, (key, v) in enumerate(items):
            if i:
                parts.append(" and " if i == len(items) - 1 else ", ")
            shown = v if isinstance(v, str) else json.dumps(v)
            parts += [words(str(key).replace("_", " ")), " ", code(shown, 60)]
        return parts
    return ["with arguments ", code(text)]


def _after(step: Step) -> str:
    if step.created_at is None or step.ended_at is None:
        return ""
    return f" {duration(step.ended_at - step.created_at)} later"


def _error_words(step: Step) -> list[str | Bit]:
    if step.last_error is None:
        return ["; it failed"]
    return ["; it failed: ", code(step.last_error.code or "error"), " — ", quote(step.last_error.message)]


def _ending(step: Step, run: Run) -> list[str | Bit]:
    """What became of a step that did not complete."""
    if step.status == "failed":
        return _error_words(step)
    if step.status == "cancelled":
        return ["; it was cancelled"]
    if step.status == "expired":
        return ["; it expired with the run"]
    if step.status == "in_progress":
        return ["; still going" if not run.is_terminal else "; it never finished"]
    if step.status != "completed":
        return ["; its status is ", code(step.status)]
    return []


def _function_calls(calls: list[FunctionCall], step: Step, run: Run) -> list[str | Bit]:
    parts: list[str | Bit] = ["Called "]
    for i, call in enumerate(calls[:4]):
        if i:
            parts.append(" and " if i == min(len(calls), 4) - 1 else ", ")
        parts += [code(call.name or "(unnamed function)"), " ", *_arguments_words(call.arguments)]
    if len(calls) > 4:
        parts.append(f" (and {len(calls) - 4} more calls)")
    answered = all(c.output is not None for c in calls)
    plural = "answers" if len(calls) > 1 else "answer"
    if step.status == "completed" or (answered and step.status not in ("failed", "cancelled", "expired")):
        parts.append(f"; the {plural} came back{_after(step)}")
    elif step.status == "in_progress" and run.status == "requires_action":
        parts.append(f"; waiting for the {plural} (tool outputs)")
    elif step.status == "expired" or (run.status == "expired" and not answered):
        parts.append(f"; no {plural.rstrip('s') if len(calls) == 1 else plural} came before the run expired")
    else:
        parts += _ending(step, run)
    return parts


def _code_call(call: CodeInterpreterCall) -> list[str | Bit]:
    lines = len([line for line in call.input.splitlines() if line.strip()])
    parts: list[str | Bit] = [f"Ran code ({lines} line{'s' if lines != 1 else ''})" if lines else "Ran code"]
    logs = [o.logs for o in call.outputs if o.type == "logs" and o.logs and o.logs.strip()]
    images = sum(1 for o in call.outputs if o.type == "image")
    if logs:
        parts += ["; it printed ", quote(logs[0], 80)]
    if images:
        parts.append(f"{' and' if logs else ';'} made {images} image{'s' if images > 1 else ''}")
    return parts


def _search_call(call: FileSearchCall, step: Step) -> list[str | Bit]:
    if not call.results:
        return [
            "Searched the files" if step.status == "in_progress" else "Searched the files and found nothing"
        ]
    names = [r.file_name or r.file_id or "(unnamed)" for r in call.results]
    parts: list[str | Bit] = [
        f"Searched the files and found {len(names)} result{'s' if len(names) > 1 else ''} ("
    ]
    for i, name in enumerate(names[:3]):
        parts += [", " if i else "", words(name)]
    return [*parts, f" and {len(names) - 3} more)" if len(names) > 3 else ")"]


def _other_call(call) -> list[str | Bit]:
    words = AZURE_TOOLS.get(call.type)
    if words:
        return [words[0].upper() + words[1:], " (", code(call.type), ")"]
    return ["Used a tool of a type this dashboard does not know (", code(call.type), ")"]


def step_sentence(step: Step, run: Run, messages: dict[str, Message]) -> Sentence:
    details = step.details
    if isinstance(details, MessageCreation):
        message = messages.get(details.message_id)
        if step.status == "in_progress" and not (message and message.text):
            parts: list[str | Bit] = ["Is writing a message"]
        elif message is not None:
            parts = ["Wrote ", quote(_message_words(message))]
        else:
            parts = ["Wrote a message (", code(details.message_id or "no id"), ")"]
        if step.status != "completed" and not (
            step.status == "in_progress" and parts[0] == "Is writing a message"
        ):
            parts += _ending(step, run)
        return sentence(*parts, ".")
    if isinstance(details, ToolCalls):
        functions = [c for c in details.tool_calls if isinstance(c, FunctionCall)]
        others = [c for c in details.tool_calls if not isinstance(c, FunctionCall)]
        if not details.tool_calls:
            return sentence("Started a tool call", *_ending(step, run), ".")
        parts = []
        if functions:
            parts += _function_calls(functions, step, run)
        for call in others:
            if parts:
                parts.append("; then ")
            if isinstance(call, CodeInterpreterCall):
                parts += _code_call(call)
            elif isinstance(call, FileSearchCall):
                parts += _search_call(call, step)
            elif isinstance(call, UnknownToolCall):
                parts += _other_call(call)
        if others and not functions:
            parts += _ending(step, run)
        return sentence(*parts, ".")
    return sentence(
        "Did a step of a type this dashboard does not know (",
        code(details.type),
        ")",
        *_ending(step, run),
        ".",
    )


def _roll_up(steps: Sequence[Step]) -> Sentence:
    kinds: Counter[str] = Counter()
    for step in steps:
        if isinstance(step.details, MessageCreation):
            kinds["message"] += 1
        elif isinstance(step.details, ToolCalls):
            for call in step.details.tool_calls:
                kinds[call.name if isinstance(call, FunctionCall) else call.type] += 1
        else:
            kinds[step.details.type] += 1
    parts: list[str | Bit] = [f"…and {len(steps)} more steps"]
    for i, (name, n) in enumerate(kinds.most_common(5)):
        parts += [", " if i else " (", words(name), f" ×{n}"]
    return sentence(*parts, ")." if kinds else ".")


# --- where the time went -----------------------------------------------------------------------

LABELS = {
    "queued": "queued",
    "in_progress": "model working",
    "requires_action": "waiting for tool outputs",
    "cancelling": "stopping",
}


def _shares(buckets: dict[str, float], running: str | None) -> tuple[list[TimeShare], float | None]:
    total = sum(max(v, 0.0) for v in buckets.values())
    shares = [
        TimeShare(label, seconds, round(100 * max(seconds, 0.0) / total) if total else 0, label == running)
        for label, seconds in buckets.items()
        if seconds > 0 or label == running or not total  # a run quicker than a second shows its "0 s"
    ]
    return shares, (total if buckets else None)


def _person_ended(end: float | None, person_answers: Sequence[float]) -> bool:
    return end is not None and any(end - PERSON_SLACK <= t <= end + PERSON_SLACK for t in person_answers)


def time_spent(
    run: Run, steps: Sequence[Step], transitions: Sequence[dict], now: float, person_answers: Sequence[float]
) -> tuple[list[TimeShare], str, float | None]:
    """(shares, source, total): from the transitions the dashboard observed when there are any, else
    from the upstream's own timestamps."""
    points = [
        (str(t.get("status")), float(t["at"]))
        for t in transitions
        if isinstance(t, dict) and isinstance(t.get("at"), (int, float)) and not isinstance(t.get("at"), bool)
    ]
    buckets: dict[str, float] = {}
    running = None
    if points:
        if run.created_at is not None and points[0][0] != "queued" and points[0][1] - run.created_at > 1:
            buckets["before the dashboard saw it"] = points[0][1] - run.created_at
        for i, (status, at) in enumerate(points):
            last = i + 1 == len(points)
            if status in ("completed", "failed", "cancelled", "expired", "incomplete"):
                continue
            end = now if last else points[i + 1][1]
            label = LABELS.get(status, f"in status {status}")
            if status == "requires_action" and not last and _person_ended(end, person_answers):
                label = "waiting for a person"
            buckets[label] = buckets.get(label, 0.0) + max(end - at, 0.0)
            if last and not run.is_terminal:
                running = label
        shares, total = _shares(buckets, running)
        return shares, "observed", total
    end = run.ended_at if run.ended_at is not None else (None if run.is_terminal else now)
    if run.created_at is not None:
        started = run.started_at if run.started_at is not None else (now if run.status == "queued" else None)
        if started is not None:
            buckets["queued"] = max(started - run.created_at, 0.0)
            if run.status == "queued":
                running = "queued"
    waiting_person = sum(
        (s.ended_at - s.created_at)
        for s in steps
        if isinstance(s.details, ToolCalls)
        and any(isinstance(c, FunctionCall) for c in s.details.tool_calls)
        and s.created_at is not None
        and s.ended_at is not None
        and _person_ended(s.ended_at, person_answers)
    )
    waiting = (waiting_for_outputs(run, list(steps), now) or 0.0) - waiting_person
    if run.started_at is not None and end is not None:
        buckets["model working"] = max(end - run.started_at - waiting - waiting_person, 0.0)
    if waiting > 0:
        buckets["waiting for tool outputs"] = waiting
    if waiting_person > 0:
        buckets["waiting for a person"] = waiting_person
    if run.status == "requires_action":
        running = "waiting for tool outputs"
    elif run.status == "in_progress":
        running = "model working"
    shares, total = _shares(buckets, running)
    return shares, "upstream", total


# --- how it ended ------------------------------------------------------------------------------

#: last_error.code → what it means (CONTRACT §2.2, and what Azure adds).
ERROR_WORDS = {
    "server_error": "the provider had an internal error; trying again may work",
    "rate_limit_exceeded": "the provider's rate limit or quota was exceeded; try again later, or check the "
    "quota and billing",
    "invalid_prompt": "the provider refused the prompt (it was malformed or broke a usage policy)",
    "content_filter": "the provider's content filter blocked the prompt or the answer",
    "tool_user_error": "a tool the agent used refused its input or failed (often the tool's configuration "
    "or permissions)",
}
#: incomplete_details.reason → what it means (§2.3, and Azure's guardrail stop).
INCOMPLETE_WORDS = {
    "max_completion_tokens": "it used up its allowance of completion tokens",
    "max_prompt_tokens": "the conversation grew past its allowance of prompt tokens",
    "max_output_tokens": "it used up its allowance of output tokens",
    "content_filter": "a content filter stopped it",
    "max_tokens": "it reached the token limit",
    "run_cancelled": "the run was cancelled",
    "run_expired": "the run expired",
    "run_failed": "the run failed",
}


def _when(ts: int | None) -> str:
    if ts is None:
        return ""
    try:
        return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (ValueError, OverflowError, OSError):
        return ""


def _waited_for_outputs(run: Run, steps: Sequence[Step], transitions: Sequence[dict]) -> bool:
    seen = [t.get("status") for t in transitions if isinstance(t, dict)]
    if len(seen) >= 2 and seen[-1] == "expired":
        return seen[-2] == "requires_action"
    return any(
        isinstance(s.details, ToolCalls)
        and any(isinstance(c, FunctionCall) and c.output is None for c in s.details.tool_calls)
        for s in steps
    )


def outcome_of(run: Run, steps: Sequence[Step], transitions: Sequence[dict], now: float) -> Outcome:
    status = run.status
    error = run.last_error
    upstream_code = error.code if error else run.incomplete_reason
    upstream_message = error.message if error and error.message else None
    if status == "completed":
        ended = _when(run.completed_at)
        return Outcome("ok", sentence("It finished successfully", f" at {ended}" if ended else "", "."))
    if status == "failed":
        if error is None or not error.code:
            why: list[str | Bit] = [": the provider gave no reason code"]
        elif error.code in ERROR_WORDS:
            why = [": ", ERROR_WORDS[error.code]]
        else:
            why = [": the provider gave the code ", code(error.code), ", which this dashboard does not know"]
        return Outcome("error", sentence("It failed", *why, "."), upstream_code, upstream_message)
    if status == "incomplete":
        reason = run.incomplete_reason
        if reason in INCOMPLETE_WORDS:
            why = [": ", INCOMPLETE_WORDS[reason]]
            cap = {
                "max_completion_tokens": run.max_completion_tokens,
                "max_prompt_tokens": run.max_prompt_tokens,
            }
            if cap.get(reason) is not None:
                why.append(f" ({reason} = {cap[reason]})")
        elif reason:
            why = [": the provider gave the reason ", code(reason), ", which this dashboard does not know"]
        else:
            why = [": the provider gave no reason"]
        return Outcome(
            "warning", sentence("It stopped before finishing", *why, "."), upstream_code, upstream_message
        )
    if status == "expired":
        if _waited_for_outputs(run, steps, transitions):
            words = "It expired: nobody submitted the tool outputs before its deadline"
        else:
            words = "It expired: it ran past its time limit"
        return Outcome("error", sentence(words, "."), upstream_code, upstream_message)
    if status == "cancelled":
        ended = _when(run.cancelled_at)
        return Outcome("warning", sentence("It was cancelled", f" at {ended}" if ended else "", "."))
    if status == "cancelling":
        return Outcome(
            "warning",
            sentence("It is being cancelled (cancelling is best effort: it may still end another way)."),
        )
    if status == "requires_action":
        names = [c.name for c in run.pending_calls]
        parts: list[str | Bit] = ["It is waiting for tool outputs"]
        if names:
            parts.append(" for ")
            for i, name in enumerate(names[:5]):
                if i:
                    parts.append(", ")
                parts.append(code(name or "(unnamed)"))
        if run.expires_at is not None:
            left = run.expires_at - now
            parts.append(
                f"; it expires at {_when(run.expires_at)} (in {duration(left)})"
                if left > 0
                else "; it is past its deadline"
            )
        return Outcome("running", sentence(*parts, "."))
    if status == "queued":
        return Outcome("running", sentence("It is waiting to start."))
    if status == "in_progress":
        return Outcome("running", sentence("It is still working."))
    return Outcome(
        "warning",
        sentence("Its status is ", code(status), ", which this dashboard does not know."),
        upstream_code,
        upstream_message,
    )


# --- all together ----------------------------------------------------------------------------------


def summarize(
    run: Run,
    steps: Sequence[Step] = (),
    messages: Iterable[Message] = (),
    transitions: Sequence[dict] = (),
    *,
    link: str = "",
    now: float | None = None,
    person_answers: Sequence[float] = (),
    more_steps: bool = False,
    max_steps: int = MAX_STEPS,
) -> RunSummary:
    """The summary of one run.

    `steps`: the run's steps (ascending, as many as were fetched; `more_steps` says the list is not all).
    `messages`: the thread's messages around the run — the run's own (for what it wrote) and the user's
    before it (for what was asked). `transitions`: RunSnapshot.transitions. `person_answers`: when people
    submitted tool outputs from the dashboard (see `person_answer_times`). `link`: the run's URL for the
    ticket (absolute, or a path).
    """
    now = time.time() if now is None else now
    messages = list(messages)
    by_id = {m.id: m for m in messages if m.id}
    ordered = sorted(steps, key=lambda s: s.created_at if s.created_at is not None else 0)
    lines = [StepLine(s.id, s.status, step_sentence(s, run, by_id)) for s in ordered[:max_steps]]
    more = _roll_up(ordered[max_steps:]) if len(ordered) > max_steps else None
    if more_steps:
        more = (more or ()) + sentence(
            " The run has more steps than the ", str(len(ordered)), " summarised here."
        )
    question = question_of(run, messages)
    shares, source, total = time_spent(run, ordered, transitions, now, person_answers)
    return RunSummary(
        run_id=run.id,
        thread_id=run.thread_id,
        status=run.status,
        link=link,
        asked=quote(_message_words(question), QUESTION_CHARS) if question else None,
        asked_message_id=question.id if question else "",
        steps=lines,
        steps_more=more,
        time=shares,
        time_source=source,
        total=total,
        outcome=outcome_of(run, ordered, transitions, now),
    )


async def person_answer_times(connection: str, run_id: str) -> list[float]:
    """When people submitted tool outputs to this run from the dashboard (the audit trail's record)."""
    return [
        r.created_at.timestamp()
        async for r in AuditRecord.objects.filter(
            connection=connection, run_id=run_id, action="submit_tool_outputs", outcome=AuditRecord.SUCCEEDED
        ).only("created_at")
    ]


# --- Markdown for a ticket -------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~])")


def _md_text(text: str) -> str:
    # Whitespace runs become one space (a line break would end the list item), edges kept.
    return _MD_SPECIAL.sub(r"\\\1", re.sub(r"\s+", " ", text))


def _md_code(text: str) -> str:
    text = _one_line(text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_sentence(s: Sentence) -> str:
    out = []
    for bit in s:
        if bit.kind == "code":
            out.append(_md_code(bit.text))
        elif bit.kind == "quote":
            out.append(f"“{_md_text(bit.text)}”")
        elif bit.kind == "words":
            out.append(_md_text(bit.text))
        else:
            out.append(bit.text)  # the dashboard's own words: nothing to neutralise
    return "".join(out)


def to_markdown(summary: RunSummary) -> str:
    head = f"**Run {_md_code(summary.run_id or '(no id)')}** — {_md_text(summary.status.replace('_', ' '))}"
    if summary.link.startswith(("https://", "http://", "/")):
        head += f" · [open in the dashboard](<{summary.link.replace('>', '%3E').replace(' ', '%20')}>)"
    lines = [head, ""]
    if summary.asked:
        lines += [f"**Asked:** “{_md_text(summary.asked.text)}”", ""]
    lines.append("**What the agent did:**")
    if summary.steps:
        lines += [f"{n}. {md_sentence(line.sentence)}" for n, line in enumerate(summary.steps, start=1)]
    else:
        lines.append("nothing yet.")
    if summary.steps_more:
        lines.append(md_sentence(summary.steps_more))
    lines.append("")
    if summary.time:
        shares = " · ".join(
            f"{_md_text(t.label)} {duration(t.seconds)} ({t.percent} %)" + (" so far" if t.running else "")
            for t in summary.time
        )
        lines += [f"**Where the time went** ({summary.time_note}): {shares}", ""]
    ending = f"**How it ended:** {md_sentence(summary.outcome.sentence)}"
    if summary.outcome.code or summary.outcome.message:
        ending += " (upstream: "
        ending += _md_code(summary.outcome.code) if summary.outcome.code else ""
        if summary.outcome.message:
            ending += (
                " — " if summary.outcome.code else ""
            ) + f"“{_md_text(_clip(summary.outcome.message, 300))}”"
        ending += ")"
    lines.append(ending)
    return "\n".join(lines) + "\n"
