"""A minimal asyncio WebSocket client (RFC 6455), built for opening thousands of sockets from one process.

No WebSocket library is installed in the venv (daphne brings autobahn, whose client is heavier than this
needs), so the benchmarks and the multi-process live test carry their own: a plain `asyncio.Protocol`
that does the opening handshake, reads unmasked server frames (text, continuation, ping, close), answers
pings and closes cleanly. Each text message is handed to `on_message(t, text)` with `t = time.time()`
taken when its last bytes arrived, so a message's receive time is not skewed by how long the loop takes
to parse the others.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
import time
from collections.abc import Callable
from urllib.parse import urlsplit

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def fingerprint(text: str) -> str:
    """How the benchmarks match a pushed fragment with what the server logged it published."""
    return hashlib.sha1(text.encode()).hexdigest()[:16]


class HandshakeError(Exception):
    pass


class WebSocket(asyncio.Protocol):
    def __init__(
        self, host: str, path: str, headers: dict[str, str], on_message: Callable[[float, str], None]
    ):
        self.host, self.path, self.headers = host, path, headers
        self.on_message = on_message
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.opened: asyncio.Future = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future = asyncio.get_running_loop().create_future()
        self.close_code: int | None = None
        self.handshaken = False
        self.fragments: list[bytes] = []
        self.key = base64.b64encode(os.urandom(16)).decode()

    # --- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport):
        self.transport = transport
        lines = [
            f"GET {self.path} HTTP/1.1",
            f"Host: {self.host}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {self.key}",
            "Sec-WebSocket-Version: 13",
            *(f"{k}: {v}" for k, v in self.headers.items()),
        ]
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin1"))

    def data_received(self, data: bytes):
        now = time.time()
        self.buffer += data
        if not self.handshaken:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin1")
            del self.buffer[: end + 4]
            status = head.split("\r\n", 1)[0]
            accept = base64.b64encode(hashlib.sha1(self.key.encode() + GUID).digest()).decode()
            if " 101 " not in status + " " or accept not in head:
                if not self.opened.done():
                    self.opened.set_exception(HandshakeError(status))
                self.transport.close()
                return
            self.handshaken = True
            if not self.opened.done():
                self.opened.set_result(self)
        self._frames(now)

    def connection_lost(self, exc):
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(self.close_code)

    # --- frames ------------------------------------------------------------------------------------
    def _frames(self, now: float) -> None:
        buf = self.buffer
        while len(buf) >= 2:
            fin, opcode = buf[0] & 0x80, buf[0] & 0x0F
            length, offset = buf[1] & 0x7F, 2
            if length == 126:
                if len(buf) < 4:
                    return
                length, offset = struct.unpack_from("!H", buf, 2)[0], 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length, offset = struct.unpack_from("!Q", buf, 2)[0], 10
            if buf[1] & 0x80:  # a masked server frame is a protocol error; read past its key anyway
                offset += 4
            if len(buf) < offset + length:
                return
            payload = bytes(buf[offset : offset + length])
            del buf[: offset + length]
            if opcode == OP_PING:
                self._send(OP_PONG, payload)
            elif opcode == OP_CLOSE:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self._send(OP_CLOSE, payload[:2])
                self.transport.close()
                return
            elif opcode in (OP_TEXT, OP_BINARY, OP_CONT):
                self.fragments.append(payload)
                if fin:
                    message = b"".join(self.fragments)
                    self.fragments = []
                    self.on_message(now, message.decode("utf-8", "replace"))

    def _send(self, opcode: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(head + mask + masked)

    def send_text(self, text: str) -> None:
        self._send(OP_TEXT, text.encode())

    async def close(self, code: int = 1000, wait: float = 5.0) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self._send(OP_CLOSE, struct.pack("!H", code))
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), wait)
        except TimeoutError:
            self.transport.abort()


async def connect(
    url: str,
    on_message: Callable[[float, str], None],
    *,
    headers: dict[str, str] | None = None,
    wait: float = 30.0,
) -> WebSocket:
    """Open `ws://host:port/path` and complete the handshake; raises HandshakeError on a refusal."""
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    path = parts.path + (f"?{parts.query}" if parts.query else "")

    def factory():
        return WebSocket(parts.netloc, path, headers or {}, on_message)

    async def open_():
        _, protocol = await loop.create_connection(factory, parts.hostname, parts.port)
        return await protocol.opened

    return await asyncio.wait_for(open_(), wait)
