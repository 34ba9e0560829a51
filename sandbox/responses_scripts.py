"""Scripted agents of the Responses API: the timed actions a response goes through (no model, no network).

A script is chosen by the model name (`sandbox-functions`), as a client of the official SDK can send it
(see README.md). A response's plan depends on its phase: `start` for a new question, `outputs` when its
input answers function calls, `approval` when it answers an MCP approval request. Plans are pure and
deterministic; responses_engine.py applies their actions when they come due.
"""

import json
from dataclasses import dataclass, field

from .scripts import Action, split_text

MODEL_PREFIX = "sandbox-"
DEFAULT_SCRIPT = "answer"
DEFAULT_QUEUED_SECONDS = 1.0
DEFAULT_LONG_ITEMS = 600
# A plan is built whenever the response advances: keep it a size that stays quick.
MAX_LONG_ITEMS = 5000
DEFAULT_INCOMPLETE_CAP = 256

_CITIES = [
    ("Paris", "Europe/Paris"),
    ("Lisbon", "Europe/Lisbon"),
    ("Tokyo", "Asia/Tokyo"),
    ("Nairobi", "Africa/Nairobi"),
    ("Montréal", "America/Toronto"),
]
MCP_SERVER = "docs"
MCP_TOOLS = [
    {
        "name": "search_docs",
        "description": "Search the product documentation.",
        "input_schema": {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "What to look for"}},
            "required": ["query"],
        },
        "annotations": {"read_only": True},
    }
]


@dataclass(frozen=True)
class Context:
    """What a plan may depend on, fixed when the response was created."""

    seed: int
    question: str
    phase: str = "start"
    background: bool = True
    queued_seconds: float | None = None
    max_output_tokens: int | None = None
    items: int = DEFAULT_LONG_ITEMS
    # phase `outputs`: (function name, output) for each answered call, in call order.
    outputs: tuple = ()
    # phase `approval`: the request answered and the answer (approve, reason, name, arguments, request_id).
    approval: dict = field(default_factory=dict)


class Plan:
    """Builds a plan in script order: `wait` moves the clock, `do` schedules an action at it."""

    def __init__(self, ctx: Context, queued: float = DEFAULT_QUEUED_SECONDS):
        self.t = 0.0
        self.actions: list[Action] = []
        # Only background responses wait in the queue; the others are in progress from the start.
        if ctx.background:
            self.wait(queued if ctx.queued_seconds is None else ctx.queued_seconds).do("start")

    def wait(self, seconds: float) -> "Plan":
        self.t += seconds
        return self

    def do(self, op: str, **args) -> "Plan":
        self.actions.append(Action(round(self.t, 6), op, args))
        return self

    def message(self, text: str, seconds: float, annotations=()) -> "Plan":
        """An assistant message whose text grows piece by piece over `seconds`."""
        self.do("message_add")
        pieces = split_text(text)
        placed = _place(text, pieces, annotations)
        for piece, piece_annotations in zip(pieces, placed, strict=True):
            self.wait(seconds / len(pieces)).do("text", piece=piece, annotations=piece_annotations)
        return self.wait(0.1).do("message_done", status="completed")

    def reasoning(self, summary: str, seconds: float) -> "Plan":
        self.do("reasoning_add")
        pieces = split_text(summary, size=4)
        for piece in pieces:
            self.wait(seconds / len(pieces)).do("reasoning_text", piece=piece)
        return self.wait(0.1).do("reasoning_done")

    def function_call(self, name: str, arguments: dict, seconds: float) -> "Plan":
        self.do("call_add", name=name)
        text = json.dumps(arguments)
        pieces = [text[i : i + 5] for i in range(0, len(text), 5)]
        for piece in pieces:
            self.wait(seconds / len(pieces)).do("call_args", piece=piece)
        return self.wait(0.05).do("call_done")

    def web_search(self, query: str, sources: list[str], seconds: float) -> "Plan":
        self.do("web_add", query=query).wait(0.1).do("web_searching")
        return self.wait(seconds).do("web_done", sources=sources)

    def file_search(self, query: str, scores: list[float], seconds: float) -> "Plan":
        self.do("files_add", query=query).wait(0.1).do("files_searching")
        return self.wait(seconds).do("files_done", scores=scores)

    def code(self, code: str, logs: str, seconds: float, *, image: bool = True) -> "Plan":
        self.do("code_add")
        pieces = split_text(code, size=4)
        for piece in pieces:
            self.wait(seconds / 2 / len(pieces)).do("code_text", piece=piece)
        self.wait(0.1).do("code_interpreting")
        return self.wait(seconds / 2).do("code_done", logs=logs, image=image)


def _place(text: str, pieces: list[str], annotations) -> list[list]:
    """Each annotation goes with the piece where its span ends, with indexes into the whole text."""
    placed = [[] for _ in pieces]
    ends, total = [], 0
    for piece in pieces:
        total += len(piece)
        ends.append(total)
    for annotation in annotations:
        start = text.index(annotation["span"])
        end = start + len(annotation["span"])
        piece_index = next(i for i, piece_end in enumerate(ends) if piece_end >= end)
        placed[piece_index].append({**annotation, "start_index": start, "end_index": end})
    return placed


def _topic(ctx: Context) -> str:
    question = " ".join(ctx.question.split())
    return (question[:60] + "…") if len(question) > 60 else (question or "your question")


# --- the scripts ------------------------------------------------------------------------------------


def answer(ctx: Context) -> Plan:
    plan = Plan(ctx).wait(0.3)
    text = (
        f"Here is what I found about **{_topic(ctx)}**:\n\n"
        "- The sandbox answers without a model, so every response is repeatable.\n"
        "- A background response can be cancelled while it is `queued` or `in_progress`.\n\n"
        "```python\ndef answer():\n    return 42\n```\n\n"
        "Let me know if you need more detail."
    )
    return plan.message(text, 2.0).wait(0.1).do("complete")


def functions(ctx: Context) -> Plan:
    city, timezone = _CITIES[ctx.seed % len(_CITIES)]
    plan = Plan(ctx).wait(0.3)
    if ctx.phase == "outputs":
        quoted = "\n".join(f"- `{name}` returned: {output}" for name, output in ctx.outputs)
        text = f"I called {len(ctx.outputs)} tools for {city}:\n\n{quoted}\n\nThat is all I needed to answer."
        return plan.message(text, 1.5).wait(0.1).do("complete")
    plan.function_call("get_weather", {"city": city}, 0.6).wait(0.05)
    plan.function_call("get_time", {"timezone": timezone}, 0.6)
    # The response completes with its calls; a follow-up response carries their outputs.
    return plan.wait(0.1).do("complete")


def mcp(ctx: Context) -> Plan:
    plan = Plan(ctx).wait(0.3)
    if ctx.phase == "approval":
        approval = ctx.approval
        if approval.get("approve"):
            output = json.dumps(
                {"results": [{"title": "Refunds", "snippet": "Items may be returned within 30 days."}]}
            )
            plan.do("mcp_add", request=approval)
            arguments = approval.get("arguments", "{}")
            for piece in [arguments[i : i + 8] for i in range(0, len(arguments), 8)] or [""]:
                plan.wait(0.05).do("mcp_args", piece=piece)
            plan.wait(0.5).do("mcp_done", output=output).wait(0.2)
            text = "The documentation says items may be returned within **30 days** for a full refund."
        else:
            reason = approval.get("reason") or "no reason given"
            text = f"Understood: I did not call `{approval.get('name', 'the tool')}` ({reason})."
        return plan.message(text, 1.0).wait(0.1).do("complete")
    plan.do("tools_listed", server_label=MCP_SERVER, tools=MCP_TOOLS).wait(0.3)
    plan.do("approval_request", server_label=MCP_SERVER, name="search_docs", arguments={"query": _topic(ctx)})
    # The response completes with the request; a follow-up response carries the person's answer.
    return plan.wait(0.1).do("complete")


CODE = (
    "import matplotlib.pyplot as plt\n"
    "sales = {'Q1': 12, 'Q2': 18, 'Q3': 9, 'Q4': 21}\n"
    "plt.bar(sales.keys(), sales.values())\n"
    "print(sum(sales.values()), max(sales, key=sales.get))\n"
)


def tools(ctx: Context) -> Plan:
    """One of every common output item: reasoning, web search, file search, code interpreter, a message."""
    plan = Plan(ctx).wait(0.2)
    plan.reasoning(f"The user asks about {_topic(ctx)}. I should search the web and our files.", 0.8)
    plan.wait(0.1).web_search("sandbox weather today", ["https://www.example.com/weather"], 0.8)
    plan.wait(0.1).file_search("refund policy", [0.91, 0.78, 0.64], 0.8)
    plan.wait(0.1).code(CODE, "60 Q4\n", 1.0)
    text = (
        "It will be sunny this afternoon according to Example Weather. Refunds are possible within "
        "30 days under the refund policy, and sales totalled 60, with Q4 the strongest quarter."
    )
    annotations = [
        {
            "type": "url_citation",
            "span": "Example Weather",
            "url": "https://www.example.com/weather",
            "title": "Weather today",
        },
        {"type": "file_citation", "span": "the refund policy", "kb": 0},
    ]
    return plan.wait(0.2).message(text, 1.5, annotations).wait(0.1).do("complete")


def slow(ctx: Context) -> Plan:
    """About two minutes at speed 1, a new item every few seconds: for watching and cancelling."""
    plan = Plan(ctx, queued=5.0)
    for n in range(24):
        plan.wait(1.0)
        if n % 3 == 0:
            plan.reasoning(f"Step {n + 1}: thinking about {_topic(ctx)}.", 3.0)
        elif n % 3 == 1:
            plan.web_search(f"{_topic(ctx)} part {n // 3 + 1}", [f"https://www.example.com/{n}"], 3.5)
        else:
            plan.message(f"Part {n // 3 + 1} of the slow answer about {_topic(ctx)}.", 3.5)
    return plan.wait(0.5).do("complete")


def fail(ctx: Context) -> Plan:
    plan = Plan(ctx).wait(0.2)
    plan.reasoning("I need every row to answer this.", 0.5)
    plan.wait(0.1).do("code_add").wait(0.3).do("code_text", piece="rows = load_everything()\n")
    return plan.wait(1.0).do("fail", message="The code interpreter ran out of memory.")


def incomplete(ctx: Context) -> Plan:
    cap = ctx.max_output_tokens or DEFAULT_INCOMPLETE_CAP
    sentence = "The quarterly report keeps going with more and more detail about every region. "
    text = (sentence * (cap * 4 // len(sentence) + 1))[: cap * 4]
    plan = Plan(ctx).wait(0.2).do("message_add")
    size = len(text) // 24 + 1
    pieces = [text[i : i + size] for i in range(0, len(text), size)]
    for piece in pieces:
        plan.wait(2.0 / len(pieces)).do("text", piece=piece, annotations=[])
    plan.wait(0.1).do("message_done", status="incomplete")
    return plan.wait(0.1).do("incomplete", reason="max_output_tokens")


def long(ctx: Context) -> Plan:
    """`items` output items of five kinds, 0.02 s apart (sandbox_items, default 600)."""
    plan = Plan(ctx, queued=0.5)
    for n in range(ctx.items):
        plan.wait(0.02).do("quick_item", n=n)
    return plan.wait(0.1).do("complete")


SCRIPTS = {
    "answer": answer,
    "functions": functions,
    "mcp": mcp,
    "tools": tools,
    "slow": slow,
    "fail": fail,
    "incomplete": incomplete,
    "long": long,
}


def plan(script: str, ctx: Context) -> list[Action]:
    return SCRIPTS[script](ctx).actions


def model_for(script: str) -> str:
    return MODEL_PREFIX + script
