"""A webhook receiver of the tests' own: a real HTTP server on a free port, in a thread.

It checks each request's signature itself (HMAC-SHA256 over "<t>." + body, as docs/WEBHOOKS.md says),
records what it got, and answers what the test scripted (500 once, then 200, …).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from runs_ui.connections import encrypt_key
from runs_ui.notify.models import Webhook

SECRET = "whsec-test-0123456789abcdef-SECRET"


@dataclass
class Received:
    body: bytes
    headers: dict
    signature_ok: bool
    answered: int

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    secret: str
    answers: deque = field(default_factory=deque)  # statuses to answer, in order; then 200
    body: bytes = b"ok"
    received: list[Received] = field(default_factory=list)

    def script(self, *statuses: int) -> None:
        self.answers.extend(statuses)

    def delivered(self) -> list[Received]:
        return [r for r in self.received if r.signature_ok and 200 <= r.answered < 300]


def _signature_ok(secret: str, header: str, body: bytes) -> bool:
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return abs(time.time() - timestamp) < 300 and hmac.compare_digest(expected, parts.get("v1", ""))


@pytest.fixture
def receiver():
    state = Receiver(url="", secret=SECRET)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status = state.answers.popleft() if state.answers else 200
            state.received.append(
                Received(
                    body,
                    dict(self.headers),
                    _signature_ok(SECRET, self.headers.get("X-Runs-Signature", ""), body),
                    status,
                )
            )
            self.send_response(status)
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/runs"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def webhook(transactional_db, receiver) -> Webhook:
    return Webhook.objects.create(name="Ops channel", url=receiver.url, secret_encrypted=encrypt_key(SECRET))


class Sleeps(list):
    """The injectable sleep: records each wait instead of waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)
