"""Scripted agents: for each script, the timed actions a run goes through (no model, no network).

A plan is a list of actions, each due some script-seconds after its phase began. Phase 0 starts when
the run is created; phase 1 starts when tool outputs are submitted (only `functions` has one). The
engine (engine.py) applies the actions whose time has come; the plan itself is pure and deterministic.
"""

import json
import re
from dataclasses import dataclass, field

DEFAULT_SCRIPT = "answer"
DEFAULT_INCOMPLETE_CAP = 256
DEFAULT_LONG_STEPS = 600
# Script-seconds from creation to expiry (the real service uses 10 minutes).
DEFAULT_EXPIRES_SECONDS = 600.0
EXPIRE_SCRIPT_EXPIRES_SECONDS = 30.0

_CITIES = [
    ("Paris", "Europe/Paris"),
    ("Lisbon", "Europe/Lisbon"),
    ("Tokyo", "Asia/Tokyo"),
    ("Nairobi", "Africa/Nairobi"),
    ("Montréal", "America/Toronto"),
]

KNOWLEDGE_BASE = [
    (
        "refund-policy.md",
        "# Refund policy\n\nCustomers may return any item within 30 days of delivery for a full refund. "
        "Refunds are issued to the original payment method within 5 business days.\n",
    ),
    (
        "shipping.md",
        "# Shipping\n\nStandard shipping takes 3 to 5 business days. Express shipping arrives the next "
        "business day when ordered before 14:00.\n",
    ),
    (
        "warranty.md",
        "# Warranty\n\nElectronics carry a two-year limited warranty covering manufacturing defects. "
        "Accidental damage is not covered.\n",
    ),
]


@dataclass(frozen=True)
class Action:
    at: float
    op: str
    args: dict = field(default_factory=dict)


class Plan:
    """Builds a plan in script order: `wait` moves the clock, `do` schedules an action at it."""

    def __init__(self):
        self.t = 0.0
        self.actions: list[Action] = []

    def wait(self, seconds: float) -> "Plan":
        self.t += seconds
        return self

    def do(self, op: str, **args) -> "Plan":
        self.actions.append(Action(round(self.t, 6), op, args))
        return self

    def message(self, text: str, seconds: float, *, annotations=(), image: bool = False) -> "Plan":
        """A message_creation step whose text grows piece by piece over `seconds`."""
        self.do("message_step")
        pieces = split_text(text)
        placed = _place_annotations(text, pieces, annotations)
        for piece, piece_annotations in zip(pieces, placed, strict=True):
            self.wait(seconds / len(pieces))
            self.do("text", piece=piece, annotations=piece_annotations)
        if image:
            self.wait(0.1).do("message_image")
        self.wait(0.1).do("message_done", status="completed")
        return self.do("step_done")

    def function_calls(self, calls: list[tuple[str, dict]], seconds: float) -> "Plan":
        """A tool_calls step whose function arguments stream in pieces, as the spec's example shows."""
        self.do("tool_step")
        for index, (name, arguments) in enumerate(calls):
            self.wait(0.1).do(
                "tool_call",
                call={"type": "function", "function": {"name": name, "arguments": "", "output": None}},
            )
            text = json.dumps(arguments)
            pieces = [text[i : i + 5] for i in range(0, len(text), 5)]
            for piece in pieces:
                self.wait(seconds / len(calls) / len(pieces))
                self.do("tool_args", index=index, piece=piece)
        return self


def split_text(text: str, size: int = 3) -> list[str]:
    """Words (with their trailing spaces) grouped `size` at a time: the pieces a stream sends."""
    words = re.findall(r"\S+\s*|\s+", text) or [text]
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)]


def _place_annotations(text, pieces, annotations):
    """Each annotation goes with the piece where its marker ends, with indexes into the whole text."""
    placed = [[] for _ in pieces]
    ends, total = [], 0
    for piece in pieces:
        total += len(piece)
        ends.append(total)
    for annotation in annotations:
        start = text.index(annotation["text"])
        end = start + len(annotation["text"])
        piece_index = next(i for i, piece_end in enumerate(ends) if piece_end >= end)
        placed[piece_index].append({**annotation, "start_index": start, "end_index": end})
    return placed


@dataclass(frozen=True)
class Context:
    """What a plan may depend on, fixed when the run was created (or its outputs submitted)."""

    seed: int
    question: str
    max_completion_tokens: int | None
    steps: int
    queued_seconds: float | None
    outputs: tuple = ()


def _queued(ctx: Context, default: float) -> float:
    return default if ctx.queued_seconds is None else ctx.queued_seconds


def _topic(ctx: Context) -> str:
    question = " ".join(ctx.question.split())
    return (question[:60] + "…") if len(question) > 60 else (question or "your question")


def answer(ctx: Context, phase: int) -> list[Action]:
    plan = Plan().wait(_queued(ctx, 1.0)).do("start").wait(0.5)
    plan.message(answer_text(ctx), 2.0)
    return plan.wait(0.2).do("complete").actions


def answer_text(ctx: Context) -> str:
    return (
        f"Here is what I found about **{_topic(ctx)}**:\n\n"
        "- The sandbox answers without a model, so every run is repeatable.\n"
        "- Each step takes a couple of seconds at speed 1.\n"
        "- A run can be cancelled while it is `queued` or `in_progress`.\n\n"
        "```python\ndef answer():\n    return 42\n```\n\n"
        "Let me know if you need more detail."
    )


def functions(ctx: Context, phase: int) -> list[Action]:
    city, timezone = _CITIES[ctx.seed % len(_CITIES)]
    if phase == 0:
        plan = Plan().wait(_queued(ctx, 1.0)).do("start").wait(0.5)
        plan.function_calls([("get_weather", {"city": city}), ("get_time", {"timezone": timezone})], 1.0)
        return plan.wait(0.2).do("require_action").actions
    quoted = "\n".join(f"- `{o['name']}` returned: {o['output']}" for o in ctx.outputs)
    text = f"I called two tools for {city}:\n\n{quoted}\n\nThat is all I needed to answer."
    plan = Plan().wait(1.0).do("start").wait(0.3)
    plan.message(text, 2.0)
    return plan.wait(0.2).do("complete").actions


CODE_INPUT = (
    "import matplotlib.pyplot as plt\n"
    "sales = {'Q1': 12, 'Q2': 18, 'Q3': 9, 'Q4': 21}\n"
    "plt.bar(sales.keys(), sales.values())\n"
    "plt.title('Sales per quarter')\n"
    "plt.savefig('chart.png')\n"
    "print(sum(sales.values()), max(sales, key=sales.get))\n"
)


def code(ctx: Context, phase: int) -> list[Action]:
    plan = Plan().wait(_queued(ctx, 1.0)).do("start").wait(0.5).do("tool_step").wait(0.1)
    plan.do("tool_call", call={"type": "code_interpreter", "code_interpreter": {"input": "", "outputs": []}})
    pieces = split_text(CODE_INPUT, size=4)
    for piece in pieces:
        plan.wait(1.0 / len(pieces)).do("code_input", index=0, piece=piece)
    plan.wait(0.5).do("code_logs", index=0, logs="60 Q4\n")
    plan.wait(0.3).do("code_image", index=0).wait(0.2).do("step_done").wait(0.3)
    text = "Total sales were **60**, and Q4 was the strongest quarter (21). The chart is attached."
    plan.message(text, 1.5, image=True)
    return plan.wait(0.2).do("complete").actions


def search(ctx: Context, phase: int) -> list[Action]:
    plan = Plan().wait(_queued(ctx, 1.0)).do("start").wait(0.5).do("tool_step").wait(0.1)
    plan.do("tool_call", call={"type": "file_search", "file_search": {}})
    plan.wait(1.0).do(
        "search_results",
        index=0,
        ranking_options={"ranker": "default_2024_08_21", "score_threshold": 0.5},
        scores=[0.91, 0.78, 0.64],
    )
    plan.wait(0.2).do("step_done").wait(0.3)
    text = (
        "You can return an item within 30 days for a full refund【4:0†refund-policy.md】. "
        "Standard shipping takes 3 to 5 business days【4:1†shipping.md】, and electronics carry a "
        "two-year warranty【4:2†warranty.md】."
    )
    annotations = [
        {"type": "file_citation", "text": "【4:0†refund-policy.md】", "kb": 0},
        {"type": "file_citation", "text": "【4:1†shipping.md】", "kb": 1},
        {"type": "file_citation", "text": "【4:2†warranty.md】", "kb": 2},
    ]
    plan.message(text, 2.0, annotations=annotations)
    return plan.wait(0.2).do("complete").actions


def fail(ctx: Context, phase: int) -> list[Action]:
    plan = Plan().wait(_queued(ctx, 1.0)).do("start").wait(0.5).do("tool_step").wait(0.1)
    plan.do("tool_call", call={"type": "code_interpreter", "code_interpreter": {"input": "", "outputs": []}})
    plan.wait(0.5).do("code_input", index=0, piece="rows = load_everything()\n")
    plan.wait(1.5).do("step_fail", message="The code interpreter ran out of memory.")
    return plan.wait(0.2).do("fail", message="Sorry, something went wrong.").actions


def incomplete(ctx: Context, phase: int) -> list[Action]:
    cap = ctx.max_completion_tokens or DEFAULT_INCOMPLETE_CAP
    sentence = "The quarterly report keeps going with more and more detail about every region. "
    text = (sentence * (cap * 4 // len(sentence) + 1))[: cap * 4]
    plan = Plan().wait(_queued(ctx, 1.0)).do("start").wait(0.5)
    plan.do("message_step")
    pieces = [text[i : i + len(text) // 24 + 1] for i in range(0, len(text), len(text) // 24 + 1)]
    for piece in pieces:
        plan.wait(2.0 / len(pieces)).do("text", piece=piece, annotations=[])
    plan.wait(0.1).do("message_done", status="incomplete").do("step_done")
    return plan.wait(0.1).do("incomplete", reason="max_completion_tokens").actions


def expire(ctx: Context, phase: int) -> list[Action]:
    plan = Plan().wait(_queued(ctx, 1.0)).do("start").wait(0.5)
    plan.function_calls([("lookup_order", {"order_id": f"A-{1000 + ctx.seed % 9000}"})], 0.5)
    return plan.wait(0.2).do("require_action").actions


def slow(ctx: Context, phase: int) -> list[Action]:
    plan = Plan().wait(_queued(ctx, 5.0)).do("start")
    for n in range(24):
        plan.wait(1.0)
        if n % 3 == 1:
            plan.do("tool_step").wait(0.2)
            plan.do(
                "tool_call",
                call={"type": "code_interpreter", "code_interpreter": {"input": "", "outputs": []}},
            )
            plan.wait(1.0).do("code_input", index=0, piece=f"step = {n}\nprint(step * step)\n")
            plan.wait(2.0).do("code_logs", index=0, logs=f"{n * n}\n").wait(0.8).do("step_done")
        elif n % 3 == 2:
            plan.do("tool_step").wait(0.2).do("tool_call", call={"type": "file_search", "file_search": {}})
            plan.wait(3.0).do(
                "search_results",
                index=0,
                ranking_options={"ranker": "auto", "score_threshold": 0.0},
                scores=[0.8, 0.6, 0.4],
            )
            plan.wait(0.8).do("step_done")
        else:
            plan.message(f"Part {n // 3 + 1} of the slow answer: still thinking about {_topic(ctx)}.", 3.8)
    return plan.wait(0.5).do("complete").actions


def long(ctx: Context, phase: int) -> list[Action]:
    plan = Plan().wait(_queued(ctx, 0.5)).do("start")
    for n in range(ctx.steps):
        plan.wait(0.02).do("quick_step", n=n)
    return plan.wait(0.1).do("complete").actions


def azure(ctx: Context, phase: int) -> list[Action]:
    plan = Plan().wait(_queued(ctx, 1.0)).do("start").wait(0.5).do("tool_step").wait(0.1)
    plan.do(
        "tool_call",
        call={
            "type": "bing_grounding",
            "bing_grounding": {
                "requesturl": "https://api.bing.microsoft.com/v7.0/search?q=sandbox+weather",
                "response_metadata": "{'market': 'en-US', 'num_docs_retrieved': 5}",
            },
        },
    )
    plan.wait(1.0).do("step_done").wait(0.2)
    plan.do(
        "activities_step",
        activities=[
            {
                "type": "mcp_list_tools",
                "id": "activity_sandbox_1",
                "server_label": "docs",
                "tools": {
                    "search_docs": {
                        "description": "Search the product documentation.",
                        "parameters": {
                            "type": "object",
                            "properties": {"query": {"type": "string", "description": "What to look for"}},
                            "required": ["query"],
                        },
                    }
                },
            }
        ],
    )
    plan.wait(0.5).do("step_done").wait(0.2)
    text = "Bing says it will be sunny this afternoon【3:0†source】."
    annotations = [
        {
            "type": "url_citation",
            "text": "【3:0†source】",
            "url": "https://www.example.com/weather",
            "title": "Weather today",
        }
    ]
    plan.message(text, 1.0, annotations=annotations)
    return plan.wait(0.2).do("complete").actions


SCRIPTS = {
    "answer": answer,
    "functions": functions,
    "code": code,
    "search": search,
    "fail": fail,
    "incomplete": incomplete,
    "expire": expire,
    "slow": slow,
    "long": long,
    "azure": azure,
}


def plan(script: str, ctx: Context, phase: int) -> list[Action]:
    return SCRIPTS[script](ctx, phase)


def default_expires_seconds(script: str) -> float:
    return EXPIRE_SCRIPT_EXPIRES_SECONDS if script == "expire" else DEFAULT_EXPIRES_SECONDS
