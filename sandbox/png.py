"""A tiny PNG bar chart, drawn without imaging libraries, for the code interpreter's image output."""

import struct
import zlib


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def bar_chart(values: list[int], width: int = 160, height: int = 100) -> bytes:
    """RGB bars on white, scaled to the largest value; deterministic bytes for the same input."""
    top = max(values) or 1
    slot = width // len(values)
    heights = [int((height - 10) * v / top) for v in values]
    rows = []
    for y in range(height):
        row = bytearray([0])  # filter type: none
        for x in range(width):
            bar = min(x // slot, len(values) - 1)
            inside = slot // 5 <= x % slot < slot - slot // 5 and y >= height - heights[bar]
            row += bytes((66, 133, 244) if inside else (255, 255, 255))
        rows.append(bytes(row))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + _chunk(b"IEND", b"")
    )
