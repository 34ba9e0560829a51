"""A small RFC 6455 WebSocket client over asyncio streams, for tests against real daphne processes.

The venv has no WebSocket client library (`websockets` is not installed); this is just enough of the
protocol for a test: the opening handshake with extra headers (cookie, origin), masked text frames out,
unmasked text/ping/close frames in, and the close code.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import struct

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0


class Closed(Exception):
    def __init__(self, code: int | None):
        super().__init__(f"socket closed with code {code}")
        self.code = code


class WebSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._reader, self._writer = reader, writer
        self.close_code: int | None = None

    @classmethod
    async def connect(
        cls, host: str, port: int, path: str, headers: dict[str, str] | None = None, within: float = 10
    ) -> WebSocket:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), within)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{name}: {value}" for name, value in (headers or {}).items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), within)
        status_line, *header_lines = head.decode("latin1").split("\r\n")
        if " 101 " not in status_line + " ":
            with contextlib.suppress(TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                head += await asyncio.wait_for(reader.read(500), 1)
            writer.close()
            raise ConnectionError(f"handshake refused: {head.decode('latin1', errors='replace')}")
        answer = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in header_lines if line)
        }
        expected = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()
        if answer.get("sec-websocket-accept") != expected:
            writer.close()
            raise ConnectionError("handshake answered with a wrong Sec-WebSocket-Accept")
        return cls(reader, writer)

    async def _send_frame(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
        elif length < 1 << 16:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self._writer.write(head + mask + masked)
        await self._writer.drain()

    async def send(self, text: str) -> None:
        await self._send_frame(TEXT, text.encode())

    async def _read_frame(self) -> tuple[bool, int, bytes]:
        first, second = await self._reader.readexactly(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self._reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self._reader.readexactly(8))
        mask = await self._reader.readexactly(4) if second & 0x80 else None
        payload = await self._reader.readexactly(length)
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return bool(first & 0x80), first & 0x0F, payload

    async def recv(self) -> str:
        """The next text message; raises Closed (with the close code) when the server closes."""
        parts: list[bytes] = []
        while True:
            try:
                final, opcode, payload = await self._read_frame()
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                raise Closed(self.close_code or 1006) from exc
            if opcode == PING:
                await self._send_frame(PONG, payload)
                continue
            if opcode == CLOSE:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                raise Closed(self.close_code)
            if opcode in (TEXT, BINARY, CONTINUATION):
                parts.append(payload)
                if final:
                    return b"".join(parts).decode("utf-8", errors="replace")

    async def close(self, code: int = 1000) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self._send_frame(CLOSE, struct.pack("!H", code))
        self._writer.close()
        with contextlib.suppress(ConnectionError, TimeoutError):
            await asyncio.wait_for(self._writer.wait_closed(), 2)
