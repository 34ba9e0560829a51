"""Fixtures for the sandbox contract tests: the official spec as JSON Schema, and run helpers.

Spec tolerances (each a known difference between the spec and the live service, docs/WIRE.md):
- `first_id`/`last_id` may be null: the live service sends null on an empty list (§6), the Responses
  lists (input items, conversation items) included.
- RunObject `instructions` may be null: every spec example sends null (§2).
- Response `user` and `usage` may be null: the spec's own Response examples send `"user": null`, and its
  stream examples `"usage": null` until the response ends.
- The `azure` script's extra types (a `bing_grounding` tool call, an `activities` step, a `url_citation`
  annotation) are Azure AI Foundry's (§9); they are set aside before validating, and only for that script.
- MCPApprovalResponse(Resource) requires a `request_id` it does not declare (the service sends
  `approval_request_id`, which it declares and also requires): the undeclared name is not required.
- The spec names no event for a cancelled response; the sandbox ends such a stream with
  `response.cancelled`, shaped like `response.completed`, and it is checked as that shape.
Step `expired_at` and step `metadata` need no tolerance: the sandbox sends the schema's `expired_at`
(never the examples' `expires_at`) and `metadata: {}`.

The spec still uses OpenAPI 3.0's `nullable: true`, which JSON Schema ignores; it is translated to
`anyOf [..., null]` once, when the spec is loaded (that is the spec's meaning, not a tolerance).
"""

import copy
import functools
import json
import time
from pathlib import Path

import httpx
import httpx2
import pytest
import yaml
from jsonschema import Draft202012Validator
from openai import OpenAI
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.sandbox.spec_checks import Checker, SpecCheckedTransport

# A copy of ../shared/spec (unchanged; spec/SOURCE.md says where from), so a checkout is self-contained.
SPEC_PATH = Path(__file__).resolve().parent / "spec" / "openai-openapi.yaml"
SPEC_URI = "urn:openai-openapi"
TERMINAL = {"completed", "failed", "cancelled", "expired", "incomplete"}
SEARCH_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"
AZURE_TOOL_TYPES = {"bing_grounding"}
AZURE_STEP_TYPES = {"activities"}
AZURE_ANNOTATION_TYPES = {"url_citation"}


def _nullable_to_null_type(node):
    if isinstance(node, list):
        return [_nullable_to_null_type(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    all_of = node.get("allOf")
    if all_of and {"nullable": True} in all_of:
        # `allOf: [$ref, {nullable: true}]`: the marker makes the whole allOf nullable.
        node["allOf"] = [member for member in all_of if member != {"nullable": True}]
        node["nullable"] = True
    node = {key: _nullable_to_null_type(value) for key, value in node.items()}
    if node.pop("nullable", False):
        return {"anyOf": [node, {"type": "null"}]}
    return node


def _tolerate(schemas: dict) -> None:
    for name in (
        "ListRunsResponse",
        "ListRunStepsResponse",
        "ListMessagesResponse",
        "ListAssistantsResponse",
    ):
        for key in ("first_id", "last_id"):
            schemas[name]["properties"][key] = {"type": ["string", "null"]}
    schemas["RunObject"]["properties"]["instructions"] = {"type": ["string", "null"]}
    response = next(m for m in schemas["Response"]["allOf"] if "usage" in m.get("properties", {}))
    response["properties"]["usage"] = {
        "anyOf": [{"$ref": "#/components/schemas/ResponseUsage"}, {"type": "null"}]
    }
    schemas["ModelResponseProperties"]["properties"]["user"] = {"type": ["string", "null"]}
    for name in ("ResponseItemList", "ConversationItemList"):
        for key in ("first_id", "last_id"):
            schemas[name]["properties"][key] = {"type": ["string", "null"]}
    for name in ("MCPApprovalResponse", "MCPApprovalResponseResource"):
        schemas[name]["required"] = [key for key in schemas[name]["required"] if key != "request_id"]


class Spec:
    def __init__(self, document: dict):
        self.document = document
        self.registry = Registry().with_resource(SPEC_URI, Resource.from_contents(document, DRAFT202012))

    @classmethod
    @functools.cache
    def load(cls) -> "Spec":
        with SPEC_PATH.open() as f:
            raw = yaml.load(f, Loader=yaml.CSafeLoader)
        document = {"components": {"schemas": _nullable_to_null_type(raw["components"]["schemas"])}}
        _tolerate(document["components"]["schemas"])
        return cls(document)

    @functools.cache  # noqa: B019 - one validator per schema name for the session's one Spec
    def validator(self, name: str) -> Draft202012Validator:
        return Draft202012Validator(
            {"$ref": f"{SPEC_URI}#/components/schemas/{name}"}, registry=self.registry
        )

    def validate(self, name: str, instance, *, azure: bool = False) -> None:
        """Raises with every violation listed; `azure=True` sets aside the azure script's extra types."""
        if azure:
            instance = without_azure_extras(instance)
        errors = sorted(self.validator(name).iter_errors(instance), key=lambda e: list(e.absolute_path))
        if errors:
            detail = "\n".join(f"- at {list(e.absolute_path)}: {e.message[:300]}" for e in errors[:10])
            raise AssertionError(f"{name} does not match the spec:\n{detail}")

    def validate_event(self, event: str, data, *, azure: bool = False) -> None:
        if event == "done":
            self.validate("DoneEvent", {"event": event, "data": data})
            return
        if azure and event.startswith("thread.run.step.") and without_azure_extras(data) is None:
            return
        self.validate("AssistantStreamEvent", {"event": event, "data": data}, azure=azure)

    @functools.cached_property
    def response_event_schemas(self) -> dict[str, str]:
        """Event type → the name of its schema among ResponseStreamEvent's members."""
        schemas = self.document["components"]["schemas"]
        names = {}
        for member in schemas["ResponseStreamEvent"]["anyOf"]:
            name = member["$ref"].rsplit("/", 1)[1]
            for event_type in schemas[name]["properties"]["type"]["enum"]:
                names[event_type] = name
        return names

    def validate_response_event(self, data: dict) -> None:
        """One event of a Responses stream, against the member of ResponseStreamEvent its `type` names
        (the same check as the whole union, and faster); see the tolerance for `response.cancelled`."""
        if data.get("type") == "response.cancelled":
            self.validate("ResponseCompletedEvent", {**data, "type": "response.completed"})
            assert data["response"]["status"] == "cancelled"
            return
        name = self.response_event_schemas.get(data.get("type"))
        assert name is not None, f"ResponseStreamEvent has no event {data.get('type')!r}"
        self.validate(name, data)


def without_azure_extras(instance):
    """A copy without Azure's tool-call, step and annotation types (None for an `activities` step)."""
    instance = copy.deepcopy(instance)

    def strip(node):
        if isinstance(node, list):
            return [strip(item) for item in node if not (isinstance(item, dict) and _is_azure_extra(item))]
        if isinstance(node, dict):
            return {key: strip(value) for key, value in node.items()}
        return node

    if isinstance(instance, dict) and instance.get("type") in AZURE_STEP_TYPES:
        return None
    if isinstance(instance, dict) and isinstance(instance.get("data"), list):
        instance["data"] = [item for item in instance["data"] if item.get("type") not in AZURE_STEP_TYPES]
    return strip(instance)


def _is_azure_extra(item: dict) -> bool:
    return item.get("type") in AZURE_TOOL_TYPES | AZURE_ANNOTATION_TYPES | AZURE_STEP_TYPES


@pytest.fixture(scope="session")
def spec() -> Spec:
    """The official spec's component schemas, loaded once per session, with the tolerances above."""
    return Spec.load()


class Runs:
    """Starts scripted runs over HTTP and waits for them, checking each response against the spec."""

    def __init__(self, server, spec: Spec):
        self.server = server
        self.spec = spec
        self.client = server.client()
        self._assistants: dict[str, str] = {}

    def assistant(self, script: str) -> str:
        if script not in self._assistants:
            body = {"model": "gpt-4o", "name": f"{script} agent", "metadata": {"sandbox_script": script}}
            response = self.client.post("/assistants", json=body)
            assert response.status_code == 200, response.text
            self._assistants[script] = response.json()["id"]
        return self._assistants[script]

    def start(
        self, script: str, *, speed: float | None = 50, metadata: dict | None = None, content="Hello", **body
    ):
        """A new thread with one user message and a run of `script` on it (create-thread-and-run).

        `speed` goes in the run's metadata (`sandbox_speed`); None leaves the server's SANDBOX_SPEED.
        """
        speed_knob = {} if speed is None else {"sandbox_speed": str(speed)}
        payload = {
            "assistant_id": self.assistant(script),
            "thread": {"messages": [{"role": "user", "content": content}]},
            "metadata": {**speed_knob, **(metadata or {})},
            **body,
        }
        response = self.client.post("/threads/runs", json=payload)
        assert response.status_code == 200, response.text
        run = response.json()
        self.spec.validate("RunObject", run)
        return run

    def get(self, run: dict) -> dict:
        response = self.client.get(f"/threads/{run['thread_id']}/runs/{run['id']}")
        assert response.status_code == 200, response.text
        fetched = response.json()
        self.spec.validate("RunObject", fetched)
        return fetched

    def wait(self, run: dict, until=TERMINAL | {"requires_action"}, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            run = self.get(run)
            if run["status"] in until:
                return run
            assert time.monotonic() < deadline, f"run stayed {run['status']}"
            time.sleep(0.03)

    def submit_all(self, run: dict, output: str = '{"ok": true}') -> dict:
        calls = run["required_action"]["submit_tool_outputs"]["tool_calls"]
        outputs = [{"tool_call_id": call["id"], "output": output} for call in calls]
        response = self.client.post(
            f"/threads/{run['thread_id']}/runs/{run['id']}/submit_tool_outputs",
            json={"tool_outputs": outputs},
        )
        assert response.status_code == 200, response.text
        return response.json()

    def finish(self, script: str, **kwargs) -> dict:
        """Starts a run, submits outputs whenever asked, and returns it terminal."""
        run = self.wait(self.start(script, **kwargs))
        while run["status"] == "requires_action" and script != "expire":
            self.submit_all(run)
            run = self.wait(run)
        return self.wait(run, until=TERMINAL)

    def steps(self, run: dict, include: bool = False, **params) -> list[dict]:
        query = {"order": "asc", "limit": 100, **params}
        if include:
            query["include[]"] = SEARCH_CONTENT
        response = self.client.get(f"/threads/{run['thread_id']}/runs/{run['id']}/steps", params=query)
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def messages(self, run: dict) -> list[dict]:
        response = self.client.get(
            f"/threads/{run['thread_id']}/messages", params={"run_id": run["id"], "order": "asc"}
        )
        assert response.status_code == 200, response.text
        return response.json()["data"]


@pytest.fixture(scope="session")
def runs(sandbox, spec) -> Runs:
    return Runs(sandbox, spec)


def sse_events(response: httpx.Response) -> list[tuple[str, object]]:
    """(event, parsed data) pairs from a text/event-stream body; `done` keeps its literal data."""
    events = []
    for block in response.text.split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        data = fields["data"]
        events.append((fields["event"], data if fields["event"] == "done" else json.loads(data)))
    return events


@pytest.fixture(scope="session")
def parse_sse():
    return sse_events


@pytest.fixture
def sdk(sandbox, spec):
    """An official `openai` client on the sandbox whose every answer is checked against the spec.

    `sdk.checker.seen` counts the bodies checked by schema; any mismatch fails the test at teardown.
    """
    checker = Checker(spec, root="/v1")
    transport = SpecCheckedTransport(checker)
    client = OpenAI(
        base_url=sandbox.base_url,
        api_key=sandbox.api_key,
        max_retries=0,
        http_client=httpx2.Client(transport=transport, timeout=30),
    )
    client.checker = checker
    yield client
    client.close()
    assert checker.problems == [], "\n".join(checker.problems)
