"""State shared by all server processes: watcher leases and the last pushed state of each run and thread.

With REDIS_URL set this lives in Redis, so several daphne processes agree on who polls a run and a
socket that reconnects to any process gets the current state. Without it (one process, the in-memory
channel layer) it lives in this process's memory.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid

from django.conf import settings

#: Identifies this process as a lease holder.
PROCESS_ID = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
STATE_TTL_SECONDS = 3600

# Renew only our own lease; release only our own lease (compare-and-set, atomically in Redis).
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class MemoryState:
    """One process: a dict with expiry times."""

    def __init__(self):
        self._leases: dict[str, tuple[str, float]] = {}
        self._states: dict[str, tuple[float, str]] = {}

    async def close(self) -> None:
        """Nothing to close: as RedisState's, so shutdown need not know which it has."""

    async def acquire(self, key: str, ttl: float, owner: str = PROCESS_ID) -> bool:
        holder = self._leases.get(key)
        now = time.monotonic()
        if holder is None or holder[0] == owner or holder[1] < now:
            self._leases[key] = (owner, now + ttl)
            return True
        return False

    async def release(self, key: str, owner: str = PROCESS_ID) -> None:
        holder = self._leases.get(key)
        if holder and holder[0] == owner:
            del self._leases[key]

    async def holder(self, key: str) -> str | None:
        holder = self._leases.get(key)
        return holder[0] if holder and holder[1] >= time.monotonic() else None

    async def set_state(self, key: str, value: dict, ttl: float = STATE_TTL_SECONDS) -> None:
        now = time.monotonic()
        if len(self._states) > 1000:  # sweep what expired, so memory stays bounded
            self._states = {k: v for k, v in self._states.items() if v[0] > now}
        self._states[key] = (now + ttl, json.dumps(value))

    async def get_state(self, key: str) -> dict | None:
        expires, raw = self._states.get(key, (0.0, ""))
        return json.loads(raw) if raw and expires > time.monotonic() else None


class RedisState:
    """Several processes: leases as SET NX PX keys, states as JSON strings with a TTL."""

    def __init__(self, url: str, prefix: str):
        self._url = url
        self._prefix = prefix
        self._clients: dict[asyncio.AbstractEventLoop, object] = {}

    def _redis(self):
        import redis.asyncio as redis

        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = redis.Redis.from_url(self._url)
        return client

    def _key(self, key: str) -> str:
        return f"{self._prefix}:{key}"

    async def acquire(self, key: str, ttl: float, owner: str = PROCESS_ID) -> bool:
        return bool(await self._redis().eval(_ACQUIRE, 1, self._key(key), owner, int(ttl * 1000)))

    async def release(self, key: str, owner: str = PROCESS_ID) -> None:
        await self._redis().eval(_RELEASE, 1, self._key(key), owner)

    async def holder(self, key: str) -> str | None:
        value = await self._redis().get(self._key(key))
        return value.decode() if value else None

    async def set_state(self, key: str, value: dict, ttl: float = STATE_TTL_SECONDS) -> None:
        await self._redis().set(self._key(key), json.dumps(value), ex=max(1, int(ttl)))

    async def get_state(self, key: str) -> dict | None:
        raw = await self._redis().get(self._key(key))
        return json.loads(raw) if raw else None

    async def close(self) -> None:
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


_shared: MemoryState | RedisState | None = None


def shared() -> MemoryState | RedisState:
    global _shared
    if _shared is None:
        _shared = (
            RedisState(settings.REDIS_URL, settings.REDIS_PREFIX) if settings.REDIS_URL else MemoryState()
        )
    return _shared
