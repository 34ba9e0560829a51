"""Every body the sandbox answers an SDK client, checked against the spec's schema for its endpoint.

The official SDK parses bodies into its own models, which would hide a missing or misshaped field; this
transport sits under the SDK and checks the raw bytes as they pass (a stream when the SDK closes it, one
event at a time). Problems are collected rather than raised inside the SDK, and the `sdk` fixture fails
the test on any.
"""

import json
import re

import httpx2

# (method, path under the API root, what the body must be). `list:X`: an Azure-style list of X.
ROUTES = [
    ("POST", r"/responses", "Response"),
    ("GET", r"/responses", "list:Response"),
    ("GET", r"/responses/[^/]+", "Response"),
    ("DELETE", r"/responses/[^/]+", "deleted:response"),
    ("POST", r"/responses/[^/]+/cancel", "Response"),
    ("GET", r"/responses/[^/]+/input_items", "ResponseItemList"),
    ("POST", r"/conversations", "ConversationResource"),
    ("GET", r"/conversations", "list:ConversationResource"),
    ("GET", r"/conversations/[^/]+", "ConversationResource"),
    ("POST", r"/conversations/[^/]+", "ConversationResource"),
    ("DELETE", r"/conversations/[^/]+", "DeletedConversationResource"),
    ("GET", r"/conversations/[^/]+/items", "ConversationItemList"),
    ("POST", r"/conversations/[^/]+/items", "ConversationItemList"),
    ("GET", r"/conversations/[^/]+/items/[^/]+", "ConversationItem"),
    ("DELETE", r"/conversations/[^/]+/items/[^/]+", "ConversationResource"),
]


def schema_for(method: str, path: str) -> str | None:
    for route_method, pattern, schema in ROUTES:
        if route_method == method and re.fullmatch(pattern, path):
            return schema
    return None


def sse_frames(text: str) -> list[tuple[str, dict]]:
    frames = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
        frames.append((fields.get("event", ""), json.loads(fields["data"])))
    return frames


class Checker:
    def __init__(self, spec, root: str):
        self.spec = spec
        self.root = root
        self.problems: list[str] = []
        # What was checked, by schema (or `stream`), so a test can show its bodies were really seen.
        self.seen: dict[str, int] = {}

    def _note(self, name: str) -> None:
        self.seen[name] = self.seen.get(name, 0) + 1

    def check(self, method: str, path: str, status: int, content_type: str, body: bytes) -> None:
        where = f"{method} {path} ({status})"
        try:
            if status >= 400:
                self.spec.validate("ErrorResponse", json.loads(body))
                self._note("ErrorResponse")
                return
            schema = schema_for(method, path.removeprefix(self.root))
            if content_type.startswith("text/event-stream"):
                self.check_stream(body.decode())
            elif schema is None:
                self.problems.append(f"{where}: no schema known for this endpoint")
            else:
                self.check_json(schema, json.loads(body))
        except (AssertionError, ValueError, KeyError) as e:
            self.problems.append(f"{where}: {e}")

    def check_json(self, schema: str, body) -> None:
        kind, _, name = schema.partition(":")
        if kind == "list":
            assert set(body) == {"object", "data", "first_id", "last_id", "has_more"}, sorted(body)
            for entry in body["data"]:
                self.spec.validate(name, entry)
            self._note(schema)
        elif kind == "deleted":
            assert body == {"id": body["id"], "object": f"{name}.deleted", "deleted": True}, body
            self._note(schema)
        else:
            self.spec.validate(schema, body)
            self._note(schema)

    def check_stream(self, text: str) -> None:
        numbers = []
        for event, data in sse_frames(text):
            assert event == data["type"], f"event {event!r} carries type {data['type']!r}"
            self.spec.validate_response_event(data)
            numbers.append(data["sequence_number"])
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers))) if numbers else True, numbers
        self._note("stream")


class _Tee(httpx2.SyncByteStream):
    def __init__(self, inner, on_close):
        self.inner = inner
        self.on_close = on_close
        self.chunks: list[bytes] = []

    def __iter__(self):
        for chunk in self.inner:
            self.chunks.append(chunk)
            yield chunk

    def close(self) -> None:
        self.inner.close()
        self.on_close(b"".join(self.chunks))


class SpecCheckedTransport(httpx2.BaseTransport):
    def __init__(self, checker: Checker):
        self.checker = checker
        self.inner = httpx2.HTTPTransport()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = self.inner.handle_request(request)
        method, path = request.method, request.url.path
        content_type = response.headers.get("content-type", "")

        def on_close(body: bytes) -> None:
            self.checker.check(method, path, response.status_code, content_type, body)

        return httpx2.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_Tee(response.stream, on_close),
            extensions=response.extensions,
            request=request,
        )

    def close(self) -> None:
        self.inner.close()
