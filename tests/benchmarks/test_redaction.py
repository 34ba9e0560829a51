"""Issue 10: what redaction costs — the engine alone on a realistic 600-step run, and on the first screen's
share of it against rendering that screen's steps.

    .venv/bin/pytest tests/benchmarks/test_redaction.py -m benchmark -s

The run is generated here, deterministically, in the shapes the sandbox and real agents produce (function
calls whose arguments and outputs carry emails, phone numbers, card numbers and order data, code with
logs, file search with content, assistant messages in Markdown), since the sandbox's own 600-step script
writes one-line notes. Every built-in rule is on. Timings are in-process (`time.perf_counter`), the best
and the median of REPETITIONS. Two comparisons: against rendering the first screen's step partial alone
(in-process, the strictest), and the engine's time added to the page's measured first screen (issue 3);
the page-level figure through daphne belongs with the shared views once they are wired.
"""

from __future__ import annotations

import json
import random
import statistics
import time

import pytest
from django.template.loader import render_to_string
from django.test import RequestFactory

from runs_ui.sharing.builtin_rules import BUILTINS
from runs_ui.sharing.redaction import Redactor
from runs_ui.timeline import waterfall
from runs_ui.upstream.objects import Message, Run, Step
from tests.benchmarks.harness import record

STEPS = 600
FIRST_SCREEN = 100
REPETITIONS = 15
#: The first screen of the 600-step run on a normal page, p95 (docs/PERFORMANCE.md, issue 3).
PAGE_FIRST_SCREEN_MS = 249.0

pytestmark = pytest.mark.benchmark

FIRST = ["Jane", "Omar", "Li", "Sofia", "Kwame", "Ana", "Lukas", "Priya"]
LAST = ["Doe", "Haddad", "Wei", "Rossi", "Mensah", "Silva", "Bauer", "Nair"]
CITIES = ["Lisbon", "Paris", "Nairobi", "Tokyo", "Montréal"]


def realistic_run(seed: int = 7) -> tuple[dict, list[dict], list[dict]]:
    """(run, steps, messages) as an Assistants upstream would send them, for a 600-step support agent run."""
    rnd = random.Random(seed)
    t0, thread, run_id = 1764070000, "thread_bench0000000000000001", "run_bench00000000000000001"
    steps, messages = [], []
    for n in range(STEPS):
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        email = f"{first.lower()}.{last.lower()}{n}@example.com"
        base = {
            "id": f"step_{n:024d}",
            "object": "thread.run.step",
            "created_at": t0 + n,
            "run_id": run_id,
            "assistant_id": "asst_bench000000000000001",
            "thread_id": thread,
            "status": "completed",
            "cancelled_at": None,
            "completed_at": t0 + n + 1,
            "expired_at": None,
            "failed_at": None,
            "last_error": None,
            "metadata": {},
            "usage": {"prompt_tokens": 900 + n, "completion_tokens": 40, "total_tokens": 940 + n},
        }
        kind = n % 5
        if kind in (0, 3):
            msg_id = f"msg_{n:024d}"
            text = (
                f"Thanks {first}, I checked order **A-{10000 + n}**. It left our {rnd.choice(CITIES)} "
                f"warehouse on 2026-11-{1 + n % 28:02d} and should arrive within 3 to 5 business days.\n\n"
                f"- Tracking: `1Z999AA1{n:010d}`\n- Contact on file: {email}, +44 20 7946 {n % 10000:04d}\n\n"
                "If anything else comes up, reply here and I will look into it right away."
            )
            base |= {
                "type": "message_creation",
                "step_details": {"type": "message_creation", "message_creation": {"message_id": msg_id}},
            }
            messages.append(
                {
                    "id": msg_id,
                    "object": "thread.message",
                    "created_at": t0 + n,
                    "thread_id": thread,
                    "role": "assistant",
                    "run_id": run_id,
                    "assistant_id": "asst_bench000000000000001",
                    "status": "completed",
                    "attachments": [],
                    "metadata": {},
                    "content": [{"type": "text", "text": {"value": text, "annotations": []}}],
                }
            )
        elif kind in (1, 4):
            arguments = {
                "order_id": f"A-{10000 + n}",
                "customer_email": email,
                "note": "Customer says the parcel "
                "never arrived; please check with the courier and call back on +1 (555) 123-4567.",
            }
            output = {
                "status": "shipped",
                "tracking": f"1Z999AA1{n:010d}",
                "eta": "2026-11-25",
                "payment": {"card": "4111 1111 1111 1111" if n % 10 == 1 else "ending 1111", "iban": None},
                "history": [
                    {"at": f"2026-11-{20 + i}T10:00:00Z", "where": rnd.choice(CITIES) + " hub"}
                    for i in range(3)
                ],
                "client_ip": f"203.0.113.{n % 250}",
            }
            base |= {
                "type": "tool_calls",
                "step_details": {
                    "type": "tool_calls",
                    "tool_calls": [
                        {
                            "id": f"call_{n:024d}",
                            "type": "function",
                            "function": {
                                "name": "lookup_order",
                                "arguments": json.dumps(arguments),
                                "output": json.dumps(output),
                            },
                        }
                    ],
                },
            }
        else:
            code = (
                "import pandas as pd\ndf = pd.read_csv('orders.csv')\n"
                "print(df.groupby('region').total.sum())\n"
            )
            logs = "region\nEU    1234.5\nUS    2345.6\nAPAC   987.0\nName: total, dtype: float64\n"
            base |= {
                "type": "tool_calls",
                "step_details": {
                    "type": "tool_calls",
                    "tool_calls": [
                        {
                            "id": f"call_{n:024d}",
                            "type": "code_interpreter",
                            "code_interpreter": {"input": code, "outputs": [{"type": "logs", "logs": logs}]},
                        }
                    ],
                },
            }
        steps.append(base)
    run = {
        "id": run_id,
        "object": "thread.run",
        "created_at": t0,
        "thread_id": thread,
        "assistant_id": "asst_bench000000000000001",
        "status": "completed",
        "started_at": t0,
        "completed_at": t0 + STEPS + 1,
        "model": "gpt-4o",
        "instructions": "You are a support agent.",
        "tools": [{"type": "code_interpreter"}, {"type": "function", "function": {"name": "lookup_order"}}],
        "metadata": {"customer_email": "jane.doe@example.com", "ticket": "T-1234"},
        "usage": {"prompt_tokens": 600000, "completion_tokens": 24000, "total_tokens": 624000},
        "parallel_tool_calls": True,
        "response_format": "auto",
        "tool_choice": "auto",
        "truncation_strategy": {"type": "auto", "last_messages": None},
    }
    return run, steps, messages


def _times(fn, repetitions: int = REPETITIONS) -> dict:
    values = []
    for _ in range(repetitions):
        started = time.perf_counter()
        fn()
        values.append(time.perf_counter() - started)
    return {"best_ms": min(values) * 1000, "median_ms": statistics.median(values) * 1000}


def _render_steps(run: Run, steps: list[Step], messages: dict[str, Message]) -> str:
    """The first screen's step page as the run page's htmx partial renders it (with its waterfall)."""
    request = RequestFactory().get("/threads/t/runs/r/", {"part": "steps", "waterfall": "1"})
    items = [{"step": s, "message": messages.get(getattr(s.details, "message_id", ""))} for s in steps]
    context = {
        "conn": "default",
        "thread_id": run.thread_id,
        "run": run,
        "steps": items,
        "bars": waterfall(run, steps, time.time()),
        "first_page": True,
        "next_url": "?part=steps&after=x",
    }
    return render_to_string("runs_ui/run_detail.html#step-page", context, request=request)


def test_redaction_engine_on_a_600_step_run(db):
    raw_run, raw_steps, raw_messages = realistic_run()
    size = len(json.dumps([raw_run, raw_steps, raw_messages]))
    tree = {"run": raw_run, "steps": raw_steps, "messages": raw_messages}

    def cold():
        Redactor(BUILTINS).json(tree)  # a new engine: no memo

    shared = Redactor(BUILTINS)
    whole_cold, whole_warm = _times(cold), _times(lambda: shared.json(tree))

    # The first screen: the run, its first 100 steps and the messages they made, as typed objects.
    run = Run.from_json(raw_run)
    steps = [Step.from_json(s) for s in raw_steps[:FIRST_SCREEN]]
    wanted = {getattr(s.details, "message_id", None) for s in steps}
    messages = {m["id"]: Message.from_json(m) for m in raw_messages if m["id"] in wanted}

    def redact_screen(engine):
        r = engine.object(run)
        s = [engine.object(step) for step in steps]
        m = {k: engine.object(v) for k, v in messages.items()}
        return r, s, m

    def shared_screen():
        _render_steps(*redact_screen(Redactor(BUILTINS)))

    html = _render_steps(*redact_screen(Redactor(BUILTINS)))
    assert "[email]" in html and "[card]" in html and "[phone]" in html and "[ip]" in html
    assert "@example.com" not in html and "4111 1111 1111 1111" not in html
    screen_redaction = _times(lambda: redact_screen(Redactor(BUILTINS)))
    normal = _times(lambda: _render_steps(run, steps, messages))
    redacted = _times(shared_screen)
    figures = {
        "run": {"steps": STEPS, "messages": len(raw_messages), "json_bytes": size},
        "whole_run_cold_ms": whole_cold,
        "whole_run_warm_ms": whole_warm,
        "whole_run_mb_per_s_cold": size / 1e6 / (whole_cold["median_ms"] / 1000),
        "first_screen": {"steps": FIRST_SCREEN, "messages": len(messages)},
        "first_screen_redaction_ms": screen_redaction,
        "first_screen_render_normal_ms": normal,
        "first_screen_render_shared_ms": redacted,
        "first_screen_render_ratio_best": redacted["best_ms"] / normal["best_ms"],
        "first_screen_render_ratio_median": redacted["median_ms"] / normal["median_ms"],
        # Against the whole first screen of the same run on a normal page (issue 3: 0.249 s p95 through
        # daphne with 50 ms upstream latency), which is what the 1.2x target compares.
        "first_screen_page_ms_issue3_p95": PAGE_FIRST_SCREEN_MS,
        "estimated_page_ratio": (PAGE_FIRST_SCREEN_MS + screen_redaction["median_ms"]) / PAGE_FIRST_SCREEN_MS,
    }
    record("issue10_redaction_engine", figures)
    assert figures["estimated_page_ratio"] <= 1.2
