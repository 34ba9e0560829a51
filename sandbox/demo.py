"""Demo data for `manage.py sandbox_seed`: an assistant per script, threads with runs in every status, and
(responses_demo.py) conversations and responses of every script.

Finished runs are created back-dated and advanced to now, so their timestamps look like history. Demo
objects carry metadata `sandbox_demo=<key>`, which is how a second seeding finds them instead of
duplicating them; threads meant to look alive get a fresh run whenever their last one has finished.
"""

import json
import time
from dataclasses import dataclass

from django.db import transaction

from . import engine, operations, responses_demo
from .hostile import HOSTILE_TEXTS
from .models import ACTIVE_RUN_STATUSES, Assistant, Message, Run, RunStep, Thread, new_id

DAY = 86_400.0
FUNCTION_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "Local time in a time zone.",
            "parameters": {
                "type": "object",
                "properties": {"timezone": {"type": "string"}},
                "required": ["timezone"],
            },
        },
    },
]

ASSISTANTS = {
    "answer": ("Helpdesk agent (answer)", "Answers questions in markdown.", []),
    "functions": (
        "Weather agent (functions)",
        "Calls two functions in parallel and waits for you.",
        FUNCTION_TOOLS,
    ),
    "code": ("Data analyst (code)", "Runs Python and draws a chart.", [{"type": "code_interpreter"}]),
    "search": (
        "Policy expert (search)",
        "Searches the policy documents and cites them.",
        [{"type": "file_search"}],
    ),
    "fail": ("Flaky agent (fail)", "Fails in its tool step.", [{"type": "code_interpreter"}]),
    "incomplete": ("Verbose agent (incomplete)", "Talks until it hits its token cap.", []),
    "expire": ("Order agent (expire)", "Asks for a tool output and gives up after 30 s.", FUNCTION_TOOLS[:1]),
    "slow": (
        "Research agent (slow)",
        "Takes two minutes, a step every five seconds.",
        [{"type": "code_interpreter"}],
    ),
    "long": (
        "Batch agent (long)",
        "Makes 600 steps.",
        [{"type": "code_interpreter"}, {"type": "file_search"}],
    ),
    "azure": ("Foundry agent (azure)", "Sends Azure AI Foundry's extra step and tool types.", []),
}


@dataclass(frozen=True)
class DemoThread:
    key: str
    title: str
    question: str
    script: str
    # Seconds before now the run starts; None = started now and left to run live.
    ago: float | None
    metadata: dict | None = None
    # Held runs: how long ago they started, so the seed already shows them in their held status.
    lead: float = 0.0
    submit_after: float | None = None
    cancel_after: float | None = None


FINISHED = [
    DemoThread("completed", "A plain answer", "How do I reset my password?", "answer", 3 * 3600),
    DemoThread(
        "functions-done",
        "Weather, answered",
        "What's the weather and time in Paris?",
        "functions",
        2.9 * 3600,
        submit_after=20,
    ),
    DemoThread("code", "Quarterly sales chart", "Plot our sales per quarter.", "code", 2.8 * 3600),
    DemoThread("search", "Refund policy with citations", "What is the refund policy?", "search", 2.7 * 3600),
    DemoThread("failed", "A tool that crashes", "Load every row and summarise.", "fail", 2.6 * 3600),
    DemoThread(
        "incomplete", "Cut off at the token cap", "Write the full quarterly report.", "incomplete", 2.5 * 3600
    ),
    DemoThread("expired", "Nobody answered the tool call", "Where is order A-1042?", "expire", 2.4 * 3600),
    DemoThread(
        "cancelled",
        "Cancelled half-way",
        "Research the market in depth.",
        "slow",
        2.3 * 3600,
        cancel_after=30,
    ),
    DemoThread("azure", "Azure agent extras", "Will it rain this afternoon?", "azure", 2.2 * 3600),
    DemoThread("long", "A run with 600 steps", "Process the whole batch.", "long", 2.1 * 3600),
]
HELD = [
    DemoThread(
        "queued",
        "Waiting in the queue",
        "Can you look into this later?",
        "answer",
        None,
        {"sandbox_queued_seconds": str(30 * DAY), "sandbox_expires_seconds": str(60 * DAY)},
    ),
    DemoThread(
        "in-progress",
        "Thinking for a long time",
        "Research everything about tides.",
        "slow",
        None,
        {"sandbox_speed": "0.02", "sandbox_queued_seconds": "0"},
        lead=1.0,
    ),
    DemoThread(
        "requires-action",
        "Waiting for your tool outputs",
        "What's the weather and time right now?",
        "functions",
        None,
        {"sandbox_speed": "1", "sandbox_expires_seconds": str(30 * DAY)},
        lead=10.0,
    ),
    DemoThread(
        "cancelling",
        "Stuck in cancelling",
        "Summarise the archive.",
        "slow",
        None,
        {"sandbox_cancel_seconds": str(30 * DAY), "sandbox_expires_seconds": str(60 * DAY)},
        cancel_after=0,
    ),
    DemoThread(
        "live-slow",
        "Live: a slow research run",
        "Watch me work, step by step.",
        "slow",
        None,
        {"sandbox_speed": "1"},
    ),
    DemoThread(
        "live-functions",
        "Live: needs tool outputs",
        "Weather and time in Tokyo, please.",
        "functions",
        None,
        {"sandbox_speed": "1"},
    ),
]


def _assistant(script: str) -> Assistant:
    found = Assistant.objects.filter(metadata__sandbox_demo=script).first()
    if found:
        return found
    name, description, tools = ASSISTANTS[script]
    return Assistant.objects.create(
        public_id=new_id("asst_"),
        created_at=int(time.time() - 4 * 3600),
        name=name,
        description=description,
        model="gpt-4o",
        instructions=f"You are the sandbox's {script} script. {description}",
        tools=tools,
        metadata={"sandbox_script": script, "sandbox_demo": script},
        temperature=1.0,
        top_p=1.0,
        response_format="auto",
    )


def _thread(key: str, title: str, created: float) -> tuple[Thread, bool]:
    found = Thread.objects.filter(metadata__sandbox_demo=key).first()
    if found:
        return found, False
    thread = operations.new_thread({"metadata": {"sandbox_demo": key, "title": title}}, int(created))
    return thread, True


def _start(thread: Thread, demo: DemoThread, started: float, metadata: dict | None = None) -> Run:
    operations.add_message(thread, {"role": "user", "content": demo.question}, int(started))
    body = {"assistant_id": "", "metadata": {**(demo.metadata or {}), **(metadata or {})}}
    run = operations.new_run(thread, _assistant(demo.script), body, include_content=False, now=started)
    engine.begin(run)
    return run


def _play(run: Run, demo: DemoThread, started: float, now: float) -> Run:
    """Advances a run from `started` to now, submitting outputs or cancelling at the demo's moments."""
    if demo.submit_after is not None:
        run = engine.lock_and_advance(run, now=started + demo.submit_after)
        if run.status == "requires_action":
            calls = run.required_action["submit_tool_outputs"]["tool_calls"]
            outputs = [
                {"tool_call_id": c["id"], "output": json.dumps({"result": "22°C, sunny"})} for c in calls
            ]
            engine.submit_tool_outputs(run, outputs, started + demo.submit_after)
    if demo.cancel_after is not None:
        run = engine.lock_and_advance(run, now=started + demo.cancel_after)
        if not run.is_terminal:
            engine.cancel(run, started + demo.cancel_after)
    return engine.lock_and_advance(run, now=now)


def _hostile(now: float) -> bool:
    thread, created = _thread("hostile", "<script>alert('title')</script> Hostile content", now - 1.5 * 3600)
    if not created:
        return False
    thread.metadata["note"] = "<img src=x onerror=alert('metadata')>"
    thread.save()
    started = now - 1.5 * 3600
    for n, text in enumerate(HOSTILE_TEXTS):
        operations.add_message(thread, {"role": "user", "content": text}, int(started + n))
    demo = DemoThread("hostile", "", "<script>alert(3)</script>", "functions", 1.5 * 3600)
    run = _start(thread, demo, started + 10, {"note": "<b>html in metadata</b>", "sandbox_speed": "1"})
    run = engine.lock_and_advance(run, now=started + 20)
    # HTML in function arguments and outputs, for the dashboard's escaping of tool calls.
    step = run.current_step
    for call in step.details["tool_calls"]:
        call["function"]["arguments"] = json.dumps(
            {"city": "<script>alert('args')</script>", "unit": "<i>C</i>"}
        )
    step.save()
    for call in run.required_action["submit_tool_outputs"]["tool_calls"]:
        call["function"]["arguments"] = json.dumps(
            {"city": "<script>alert('args')</script>", "unit": "<i>C</i>"}
        )
    run.save()
    calls = run.required_action["submit_tool_outputs"]["tool_calls"]
    outputs = [
        {"tool_call_id": c["id"], "output": "<b>22°C</b><script>alert('output')</script>"} for c in calls
    ]
    engine.submit_tool_outputs(run, outputs, started + 30)
    engine.lock_and_advance(run, now=now)
    return True


def _history(now: float) -> bool:
    """One thread with several runs over time, as a real conversation has."""
    thread, created = _thread("history", "A conversation with several runs", now - 5 * 3600)
    if not created:
        return False
    for n, script in enumerate(["answer", "fail", "code", "answer", "search"]):
        demo = DemoThread("history", "", f"Question number {n + 1}?", script, 0)
        started = now - 5 * 3600 + n * 1800
        _play(_start(thread, demo, started, {"sandbox_speed": "1"}), demo, started, now)
    return True


def big_thread(now: float, runs: int = 1000) -> bool:
    """A thread with `runs` finished runs (each with a message step), for paging and timeline tests."""
    thread, created = _thread("big", f"A thread with {runs} runs", now - runs * 60 - 60)
    if not created:
        return False
    assistant = _assistant("answer")
    run_rows, step_rows, message_rows = [], [], []
    for n in range(runs):
        at = int(now - (runs - n) * 60)
        run_rows.append(
            Run(
                public_id=new_id("run_"),
                thread=thread,
                assistant=assistant,
                created_at=at,
                status="completed",
                started_at=at + 1,
                completed_at=at + 4,
                model=assistant.model,
                instructions=assistant.instructions,
                tools=[],
                metadata={"n": str(n)},
                temperature=1.0,
                top_p=1.0,
                truncation_strategy={"type": "auto", "last_messages": None},
                tool_choice="auto",
                response_format="auto",
                script="answer",
                speed=1.0,
                phase_started=at,
                usage={"prompt_tokens": 40, "completion_tokens": 8, "total_tokens": 48},
            )
        )
    Run.objects.bulk_create(run_rows)
    created_runs = list(Run.objects.filter(thread=thread).order_by("seq"))
    for run in created_runs:
        message = Message(
            public_id=new_id("msg_"),
            thread=thread,
            run=run,
            assistant=assistant,
            created_at=run.created_at + 2,
            status="completed",
            completed_at=run.completed_at,
            role="assistant",
            attachments=[],
            content=[
                {"type": "text", "text": {"value": f"Answer for run {run.metadata['n']}.", "annotations": []}}
            ],
        )
        message_rows.append(message)
    Message.objects.bulk_create(message_rows)
    for run, message in zip(created_runs, message_rows, strict=True):
        step_rows.append(
            RunStep(
                public_id=new_id("step_"),
                run=run,
                thread=thread,
                assistant=assistant,
                created_at=run.created_at + 2,
                step_type="message_creation",
                status="completed",
                completed_at=run.completed_at,
                details={"type": "message_creation", "message_creation": {"message_id": message.public_id}},
                usage={"prompt_tokens": 40, "completion_tokens": 8, "total_tokens": 48},
            )
        )
    RunStep.objects.bulk_create(step_rows)
    return True


@dataclass
class SeedSummary:
    assistants: int
    new_threads: int
    live_runs: int
    statuses: set
    step_types: set
    # The Responses shape: every demo conversation and response id, by demo key.
    responses: "responses_demo.Seeded"
    response_statuses: set
    item_types: set


def seed(*, big: bool = False) -> SeedSummary:
    now = time.time()
    new_threads = live_runs = 0
    with transaction.atomic():
        for script in ASSISTANTS:
            _assistant(script)
        for demo in FINISHED:
            started = now - demo.ago
            thread, created = _thread(demo.key, demo.title, started)
            if created:
                new_threads += 1
                # Speed 1 whatever SANDBOX_SPEED is, so the history always reads the same.
                _play(_start(thread, demo, started, {"sandbox_speed": "1"}), demo, started, now)
        new_threads += _hostile(now) + _history(now)
        if big:
            new_threads += big_thread(now)
    for demo in HELD:
        with transaction.atomic():
            thread, created = _thread(demo.key, demo.title, now)
            new_threads += created
            if operations.advance_thread(thread):
                continue
            run = _start(thread, demo, now - demo.lead)
            if demo.cancel_after is not None:
                engine.cancel(run, now)
            engine.lock_and_advance(run, now=now)
            live_runs += 1
    for run in Run.objects.filter(thread__metadata__has_key="sandbox_demo", status__in=ACTIVE_RUN_STATUSES):
        engine.advance(run, now)
    demo_runs = Run.objects.filter(thread__metadata__has_key="sandbox_demo")
    seeded_responses = responses_demo.seed(now)
    return SeedSummary(
        assistants=Assistant.objects.filter(metadata__has_key="sandbox_demo").count(),
        new_threads=new_threads,
        live_runs=live_runs,
        statuses=set(demo_runs.values_list("status", flat=True).distinct()),
        step_types=_step_types(),
        responses=seeded_responses,
        response_statuses=responses_demo.statuses(),
        item_types=responses_demo.item_types(),
    )


def _step_types() -> set:
    kinds = set()
    for details in (
        RunStep.objects.filter(thread__metadata__has_key="sandbox_demo")
        .values_list("details", flat=True)
        .iterator()
    ):
        if details.get("type") == "tool_calls":
            kinds.update(f"tool_calls/{call['type']}" for call in details["tool_calls"])
        else:
            kinds.add(details.get("type"))
    return kinds
