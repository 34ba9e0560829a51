"""The shared store: leases with fencing tokens, versions, saved states and recent pushes of each live object.

A live object is a run or a thread, named by a key such as `run:<digest>`. For each one the store keeps:

- a **lease** (`owner|token`): who may publish it. Every new holder gets a fencing token that only grows,
  so a holder that stalled and lost its lease is refused at its next publish, whatever it believes.
- a **version** allocator: `epoch-seq`, where the epoch is the store's clock when the allocator was
  created. Versions only grow, also across a store that lost its data (a new, later epoch).
- the **head**: the last version committed, read by sockets to notice pushes they never got.
- the saved **state** (a checkpoint a reconnecting socket starts from) and the **pushes** since, kept for
  PUSH_TTL_SECONDS, so a socket that missed some replays exactly those.

Reserving a version and committing a push check the lease atomically (a Lua script in Redis), so only the
holder ever publishes. With REDIS_URL the store is Redis, shared by every process; without it, this
process's memory. Every failure to reach Redis is raised as `StoreUnavailable`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import uuid
from dataclasses import dataclass

from django.conf import settings

from .clock import Clock, clock

#: Identifies this process in lease values (watches add their own suffix).
PROCESS_ID = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
#: Pushes are kept this long for sockets that missed them (then a socket resyncs from the saved state).
PUSH_TTL_SECONDS = 120
STATE_TTL_SECONDS = 3600
#: Version allocators and heads outlive any watch; a lost one only starts a new epoch.
VERSION_TTL_SECONDS = 86400


class StoreUnavailable(Exception):
    """The shared store could not be reached (Redis down, timed out, pool exhausted)."""


@dataclass(frozen=True, order=True)
class Version:
    """A publish's place in its object's history: newer epochs first, then the sequence."""

    epoch: int
    seq: float  # whole for pushes; a page stamps itself half a step after what it was drawn from

    def __str__(self) -> str:
        seq = int(self.seq) if float(self.seq).is_integer() else self.seq
        return f"{self.epoch}-{seq}"

    @classmethod
    def parse(cls, text: object) -> Version | None:
        if not isinstance(text, str):
            return None
        epoch, _, seq = text.partition("-")
        try:
            return cls(int(epoch), float(seq) if "." in seq else int(seq))
        except ValueError:
            return None

    def follows(self, other: Version) -> bool:
        """The very next publish after `other` (so nothing was missed in between)."""
        return self.epoch == other.epoch and self.seq == other.seq + 1

    def after_page(self) -> Version:
        """What a page drawn from fresher data than this state stamps itself with: newer than the state,
        older than the next push."""
        return Version(self.epoch, self.seq + 0.5)


#: Stamped on pages drawn when no state was saved yet: older than any push.
NO_VERSION = Version(0, 0)


def _names(key: str) -> dict[str, str]:
    return {
        "lease": f"lease:{key}",
        "fence": f"fence:{key}",
        "ver": f"ver:{key}",
        "head": f"head:{key}",
        "state": f"state:{key}",
    }


def push_name(key: str, version: Version) -> str:
    return f"push:{key}:{version}"


# --- memory: one process --------------------------------------------------------------------------


class MemoryStore:
    """The store in this process's memory (one process, the in-memory channel layer)."""

    def __init__(self, clock: Clock = clock):
        self.clock = clock
        self._leases: dict[str, tuple[str, int, float]] = {}
        self._fences: dict[str, int] = {}
        self._versions: dict[str, tuple[int, int]] = {}
        self._heads: dict[str, Version] = {}
        self._values: dict[str, tuple[float, str]] = {}
        self._boot = uuid.uuid4().hex
        self._slots: dict[str, float] = {}
        self._pauses: dict[str, float] = {}

    async def close(self) -> None:
        """Nothing to close (as RedisStore's, so shutdown need not know which it has)."""

    def _now(self) -> float:
        return self.clock.monotonic()

    def _held(self, key: str) -> tuple[str, int] | None:
        held = self._leases.get(key)
        if held and held[2] > self._now():
            return held[0], held[1]
        return None

    async def acquire(self, key: str, owner: str, ttl: float, *, steal: bool = False) -> int:
        return (await self.claim(key, owner, ttl, steal=steal))[0]

    async def claim(self, key: str, owner: str, ttl: float, *, steal: bool = False) -> tuple[int, float]:
        """(token, 0) when the lease is this owner's now; (0, seconds until it expires) when another holds
        it."""
        held = self._held(key)
        if held and held[0] == owner:
            self._leases[key] = (owner, held[1], self._now() + ttl)
            return held[1], 0.0
        if held and not steal:
            return 0, max(0.0, self._leases[key][2] - self._now())
        token = self._fences[key] = self._fences.get(key, 0) + 1
        self._leases[key] = (owner, token, self._now() + ttl)
        return token, 0.0

    async def renew_many(self, leases: list[tuple[str, str, int, float]]) -> list[bool]:
        return [await self.renew(*lease) for lease in leases]

    async def renew(self, key: str, owner: str, token: int, ttl: float) -> bool:
        if self._held(key) != (owner, token):
            return False
        self._leases[key] = (owner, token, self._now() + ttl)
        return True

    async def release(self, key: str, owner: str, token: int) -> None:
        if self._held(key) == (owner, token):
            del self._leases[key]

    async def holder(self, key: str) -> str | None:
        held = self._held(key)
        return held[0] if held else None

    async def reserve(self, key: str, owner: str, token: int, ttl: float) -> Version | None:
        if not await self.renew(key, owner, token, ttl):
            return None
        epoch, seq = self._versions.get(key) or (int(self.clock.time() * 1000), 0)
        self._versions[key] = (epoch, seq + 1)
        return Version(epoch, seq + 1)

    async def commit(
        self, key: str, owner: str, token: int, ttl: float, version: Version, push: dict, state: dict | None
    ) -> bool:
        if not await self.renew(key, owner, token, ttl):
            return False
        if key not in self._heads or version > self._heads[key]:
            self._heads[key] = version
        if state is not None:
            saved = await self.state(key)
            if saved is None or version > (Version.parse(saved.get("v")) or NO_VERSION):
                self._set(f"state:{key}", {**state, "v": str(version)}, STATE_TTL_SECONDS)
        self._set(push_name(key, version), {**push, "v": str(version)}, PUSH_TTL_SECONDS)
        return True

    def _set(self, name: str, value: dict, ttl: float) -> None:
        now = self._now()
        if len(self._values) > 5000:  # sweep what expired, so memory stays bounded
            self._values = {k: v for k, v in self._values.items() if v[0] > now}
        self._values[name] = (now + ttl, json.dumps(value))

    def _get(self, name: str) -> dict | None:
        expires, raw = self._values.get(name, (0.0, ""))
        return json.loads(raw) if raw and expires > self._now() else None

    async def heads(self, keys: list[str]) -> list[Version | None]:
        return [self._heads.get(k) for k in keys]

    async def state(self, key: str) -> dict | None:
        return self._get(f"state:{key}")

    async def states(self, keys: list[str]) -> list[dict | None]:
        return [self._get(f"state:{k}") for k in keys]

    async def pushes(self, key: str, versions: list[Version]) -> list[dict | None]:
        return [self._get(push_name(key, v)) for v in versions]

    async def get(self, name: str) -> dict | None:
        return self._get(f"value:{name}")

    async def set(self, name: str, value: dict, ttl: float) -> None:
        self._set(f"value:{name}", value, ttl)

    async def boot_marker(self) -> str:
        return self._boot

    async def take_slots(
        self, bucket: str, interval: float, allowance: float, slack: float, count: int = 1
    ) -> tuple[int, float]:
        """GCRA: up to `count` requests that may go now (counted), and if none may, the seconds to wait.

        A request may go when the bucket's next slot is at most `allowance` ahead of now; slots up to
        `slack` in the past are still used (a waiter that woke a little late loses nothing)."""
        now = self.clock.monotonic()
        paused = self._pauses.get(bucket, 0.0)
        if paused > now:
            return 0, paused - now
        tat = max(self._slots.get(bucket, 0.0), now - slack)
        granted = 0
        while granted < count and tat - now <= allowance:
            tat += interval
            granted += 1
        self._slots[bucket] = tat
        return granted, 0.0 if granted else tat - now - allowance

    async def pause_bucket(self, bucket: str, seconds: float) -> None:
        until = self.clock.monotonic() + seconds
        self._pauses[bucket] = max(self._pauses.get(bucket, 0.0), until)
        self._slots[bucket] = max(self._slots.get(bucket, 0.0), until)

    async def ping(self) -> None:
        """Always reachable."""


# --- Redis: every process -------------------------------------------------------------------------

# Returns {token, 0} when the lease is the owner's now, {0, ms until it expires} when another holds it.
_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current then
  local owner, token = string.match(current, '^(.*)|(%d+)$')
  if owner == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {tonumber(token), 0}
  end
  if ARGV[3] ~= '1' then return {0, redis.call('PTTL', KEYS[1])} end
end
local token = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. token, 'PX', ARGV[2])
return {token, 0}
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# The epoch is Redis's own clock in milliseconds, so it is later than any epoch this Redis gave before.
_RESERVE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local epoch = redis.call('HGET', KEYS[2], 'e')
if not epoch then
  local now = redis.call('TIME')
  epoch = now[1] .. string.format('%03d', math.floor(tonumber(now[2]) / 1000))
  redis.call('HSET', KEYS[2], 'e', epoch)
end
local seq = redis.call('HINCRBY', KEYS[2], 's', 1)
redis.call('EXPIRE', KEYS[2], ARGV[3])
return epoch .. '-' .. seq
"""
_COMMIT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local function parse(v)
  if not v then return nil end
  local e, s = string.match(v, '^(%d+)-(%d+)$')
  if not e then return nil end
  return {tonumber(e), tonumber(s)}
end
local function newer(a, b)
  return b == nil or a[1] > b[1] or (a[1] == b[1] and a[2] > b[2])
end
local v = parse(ARGV[3])
if newer(v, parse(redis.call('GET', KEYS[2]))) then redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[7]) end
if ARGV[4] ~= '' and newer(v, parse(redis.call('HGET', KEYS[3], 'v'))) then
  redis.call('HSET', KEYS[3], 'v', ARGV[3], 'body', ARGV[4])
  redis.call('EXPIRE', KEYS[3], ARGV[8])
end
redis.call('SET', KEYS[4], ARGV[5], 'EX', ARGV[6])
return 1
"""
# GCRA (generic cell rate algorithm) on Redis's clock, in ms: KEYS tat, pause; ARGV interval, allowance.
_TAKE_SLOTS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused > now then return {0, tostring(paused - now)} end
local interval, allowance = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now - tonumber(ARGV[3]))
local granted = 0
while granted < tonumber(ARGV[4]) and tat - now <= allowance do
  tat = tat + interval
  granted = granted + 1
end
redis.call('SET', KEYS[1], tostring(tat), 'PX', 60000)
if granted > 0 then return {granted, '0'} end
return {0, tostring(tat - now - allowance)}
"""
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local untl = now + tonumber(ARGV[1])
if untl > tonumber(redis.call('GET', KEYS[2]) or '0') then
  redis.call('SET', KEYS[2], tostring(untl), 'PX', math.ceil(tonumber(ARGV[1])) + 1000)
end
if untl > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], tostring(untl), 'PX', math.ceil(tonumber(ARGV[1])) + 60000)
end
return 1
"""


def _unavailable(method):
    """Redis errors (and the OSErrors under them) as StoreUnavailable: callers catch one thing."""

    @functools.wraps(method)
    async def wrapper(self, *args, **kwargs):
        import redis.exceptions

        try:
            return await method(self, *args, **kwargs)
        except (redis.exceptions.RedisError, OSError) as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

    return wrapper


class RedisStore:
    """The store in Redis. One client (a blocking pool with explicit timeouts) per event loop: a busy
    process waits for a free connection instead of failing, and a hung Redis fails within seconds."""

    def __init__(self, url: str, prefix: str):
        self._url = url
        self._prefix = prefix
        self._clients: dict[asyncio.AbstractEventLoop, object] = {}
        self._scripts: dict[str, object] = {}

    def _redis(self):
        import redis.asyncio as redis

        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            pool = redis.BlockingConnectionPool.from_url(
                self._url,
                max_connections=settings.REDIS_MAX_CONNECTIONS,
                timeout=settings.REDIS_POOL_TIMEOUT,
                socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
                socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT,
                health_check_interval=30,
            )
            client = self._clients[loop] = redis.Redis(connection_pool=pool)
            self._scripts.clear()
        return client

    def _script(self, source: str):
        # register_script runs EVALSHA and falls back to EVAL after a Redis restart (NOSCRIPT).
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self._redis().register_script(source)
        return script

    def _k(self, name: str) -> str:
        return f"{self._prefix}:{name}"

    def _keys(self, key: str, *kinds: str) -> list[str]:
        names = _names(key)
        return [self._k(names[kind]) for kind in kinds]

    async def acquire(self, key: str, owner: str, ttl: float, *, steal: bool = False) -> int:
        return (await self.claim(key, owner, ttl, steal=steal))[0]

    @_unavailable
    async def claim(self, key: str, owner: str, ttl: float, *, steal: bool = False) -> tuple[int, float]:
        """(token, 0) when the lease is this owner's now; (0, seconds until it expires) when another holds
        it."""
        keys = self._keys(key, "lease", "fence")
        args = [owner, int(ttl * 1000), "1" if steal else "0", VERSION_TTL_SECONDS]
        token, left_ms = await self._script(_ACQUIRE)(keys=keys, args=args)
        return int(token), max(0.0, int(left_ms) / 1000)

    @_unavailable
    async def renew_many(self, leases: list[tuple[str, str, int, float]]) -> list[bool]:
        """Renew several leases in one round trip: [(key, owner, token, ttl), …] → held, for each."""
        if not leases:
            return []
        script = self._script(_RENEW)
        async with self._redis().pipeline(transaction=False) as pipe:
            for key, owner, token, ttl in leases:
                await script(
                    keys=self._keys(key, "lease"), args=[f"{owner}|{token}", int(ttl * 1000)], client=pipe
                )
            return [bool(r) for r in await pipe.execute()]

    @_unavailable
    async def renew(self, key: str, owner: str, token: int, ttl: float) -> bool:
        args = [f"{owner}|{token}", int(ttl * 1000)]
        return bool(await self._script(_RENEW)(keys=self._keys(key, "lease"), args=args))

    @_unavailable
    async def release(self, key: str, owner: str, token: int) -> None:
        await self._script(_RELEASE)(keys=self._keys(key, "lease"), args=[f"{owner}|{token}"])

    @_unavailable
    async def holder(self, key: str) -> str | None:
        value = await self._redis().get(self._keys(key, "lease")[0])
        return value.decode().rpartition("|")[0] if value else None

    @_unavailable
    async def reserve(self, key: str, owner: str, token: int, ttl: float) -> Version | None:
        args = [f"{owner}|{token}", int(ttl * 1000), VERSION_TTL_SECONDS]
        value = await self._script(_RESERVE)(keys=self._keys(key, "lease", "ver"), args=args)
        return Version.parse(value.decode()) if value else None

    @_unavailable
    async def commit(
        self, key: str, owner: str, token: int, ttl: float, version: Version, push: dict, state: dict | None
    ) -> bool:
        keys = [*self._keys(key, "lease", "head", "state"), self._k(push_name(key, version))]
        args = [
            f"{owner}|{token}",
            int(ttl * 1000),
            str(version),
            json.dumps({**state, "v": str(version)}) if state is not None else "",
            json.dumps({**push, "v": str(version)}),
            PUSH_TTL_SECONDS,
            VERSION_TTL_SECONDS,
            STATE_TTL_SECONDS,
        ]
        return bool(await self._script(_COMMIT)(keys=keys, args=args))

    @_unavailable
    async def heads(self, keys: list[str]) -> list[Version | None]:
        if not keys:
            return []
        values = await self._redis().mget([self._keys(k, "head")[0] for k in keys])
        return [Version.parse(v.decode()) if v else None for v in values]

    @_unavailable
    async def state(self, key: str) -> dict | None:
        raw = await self._redis().hget(self._keys(key, "state")[0], "body")
        return json.loads(raw) if raw else None

    @_unavailable
    async def states(self, keys: list[str]) -> list[dict | None]:
        if not keys:
            return []
        async with self._redis().pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hget(self._keys(key, "state")[0], "body")
            values = await pipe.execute()
        return [json.loads(v) if v else None for v in values]

    @_unavailable
    async def pushes(self, key: str, versions: list[Version]) -> list[dict | None]:
        if not versions:
            return []
        values = await self._redis().mget([self._k(push_name(key, v)) for v in versions])
        return [json.loads(v) if v else None for v in values]

    @_unavailable
    async def get(self, name: str) -> dict | None:
        raw = await self._redis().get(self._k(f"value:{name}"))
        return json.loads(raw) if raw else None

    @_unavailable
    async def set(self, name: str, value: dict, ttl: float) -> None:
        await self._redis().set(self._k(f"value:{name}"), json.dumps(value), ex=max(1, int(ttl)))

    @_unavailable
    async def boot_marker(self) -> str:
        """A value that changes when Redis loses its data (a restart without persistence, a flush):
        sockets then join their groups again, which the channel layer lost too."""
        name = self._k("boot")
        await self._redis().set(name, uuid.uuid4().hex, nx=True)
        value = await self._redis().get(name)
        return value.decode() if value else ""

    @_unavailable
    async def take_slots(
        self, bucket: str, interval: float, allowance: float, slack: float, count: int = 1
    ) -> tuple[int, float]:
        keys = [self._k(f"slot:{bucket}"), self._k(f"pause:{bucket}")]
        args = [interval * 1000, allowance * 1000, slack * 1000, count]
        granted, wait_ms = await self._script(_TAKE_SLOTS)(keys=keys, args=args)
        return int(granted), float(wait_ms) / 1000

    @_unavailable
    async def pause_bucket(self, bucket: str, seconds: float) -> None:
        keys = [self._k(f"slot:{bucket}"), self._k(f"pause:{bucket}")]
        await self._script(_PAUSE)(keys=keys, args=[seconds * 1000])

    @_unavailable
    async def ping(self) -> None:
        await self._redis().ping()

    async def close(self) -> None:
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
            await client.connection_pool.disconnect()


_store: MemoryStore | RedisStore | None = None


def store() -> MemoryStore | RedisStore:
    """This process's store: Redis when REDIS_URL is set, else memory."""
    global _store
    if _store is None:
        _store = (
            RedisStore(settings.REDIS_URL, settings.REDIS_PREFIX) if settings.REDIS_URL else MemoryStore()
        )
    return _store


def reset() -> None:
    """Forget the store (tests, after changing REDIS_URL); the caller closes the old one first."""
    global _store
    _store = None
