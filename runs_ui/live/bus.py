"""The bus: which groups a live object's pushes go to, fenced publishing, and loading pushes.

A push is rendered once, by the object's lease holder, and stored under its version (`store.commit`,
which refuses it if the lease was lost meanwhile). Only `{key, v}` goes over the channel layer, so events
stay small however big the fragments; each process loads a push once and hands it to all its sockets.
A push holds parts for each kind of page: the run page's header per role, the thread page's row, the
home list's status cell, the inbox's refresh, and what all of them merge (`common`).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass

from channels.layers import get_channel_layer

from . import metrics
from .store import StoreUnavailable, Version, store

INDEX_GROUP = "index"
INBOX_GROUP = "inbox"
#: What each kind of page takes from a push besides `common`. A response page takes the header for its
#: role, as a run page does; a conversation page the row, as a thread page does.
PAGE_PARTS = {
    "run": None,
    "thread": "row",
    "response": None,
    "conversation": "row",
    "index": "cell",
    "inbox": "inbox",
}
#: Pages that take a header per role (`viewer` / `operator`), and pages that merge `common`.
HEADER_PAGES = ("run", "response")
COMMON_PAGES = ("run", "thread", "response", "conversation")


def _digest(*parts: str) -> str:
    # Group names must be ASCII and under 100 characters; ids can be 140, so hash them.
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def run_key(conn: str, thread_id: str, run_id: str) -> str:
    """A run is known by its connection, thread and run id together: a socket that names a run under the
    wrong thread watches (and is told "not found" about) its own pair, not everyone's run."""
    return f"run:{_digest(conn, thread_id, run_id)}"


def thread_key(conn: str, thread_id: str) -> str:
    return f"thread:{_digest(conn, thread_id)}"


def response_key(conn: str, response_id: str) -> str:
    """A response of the Responses shape (a response id names it on its connection, whatever its
    conversation)."""
    return f"response:{_digest(conn, response_id)}"


def conversation_key(conn: str, conversation_id: str) -> str:
    return f"conversation:{_digest(conn, conversation_id)}"


def group_of(key: str) -> str:
    return key.replace(":", ".")


@dataclass(frozen=True)
class Fence:
    """A publisher's right to publish one object: its lease, held as `owner` with a fencing token."""

    key: str
    owner: str
    token: int
    ttl: float


async def reserve(fence: Fence) -> Version | None:
    """The version of the next push, if `fence` still holds the lease (else None: discard the result)."""
    return await store().reserve(fence.key, fence.owner, fence.token, fence.ttl)


async def publish(
    fence: Fence,
    version: Version,
    push: dict,
    groups: list[str],
    state: dict | None = None,
    observed_at: float | None = None,
) -> bool:
    """Store the push (and the new saved state) if `fence` still holds the lease, then tell the groups.

    False when the lease was lost: nothing was stored or sent. `observed_at` (when the change was seen)
    travels with the push for the latency metric.
    """
    push = {**push, "at": observed_at or time.time(), "by": fence.owner}
    if not await store().commit(fence.key, fence.owner, fence.token, fence.ttl, version, push, state):
        metrics.leases_lost.inc()
        return False
    await announce(groups, fence.key, version)
    return True


async def announce(groups: list[str], key: str, version: Version) -> None:
    layer = get_channel_layer()
    event = {"type": "live.push", "key": key, "v": str(version)}
    try:
        for group in groups:
            await layer.group_send(group, event)
    except (OSError, ConnectionError) as exc:
        raise StoreUnavailable(f"the channel layer: {type(exc).__name__}") from exc
    except Exception as exc:
        if type(exc).__module__.startswith("redis"):
            raise StoreUnavailable(f"the channel layer: {type(exc).__name__}") from exc
        raise


def user_group(user_pk: int) -> str:
    """Every live socket of one user joins this group: what is for that person (notifications) goes here."""
    return f"user.{int(user_pk)}"


async def send_to_user(user_pk: int, html: str) -> None:
    """HTML for every open page of one user (small: a notification, not a page's state). Best effort: a
    user with no page open gets nothing, and the channel layer being away loses it (callers keep the
    truth in the database)."""
    try:
        await get_channel_layer().group_send(user_group(user_pk), {"type": "live.user", "html": html})
    except Exception as exc:
        if isinstance(exc, (OSError, ConnectionError)) or type(exc).__module__.startswith("redis"):
            raise StoreUnavailable(f"the channel layer: {type(exc).__name__}") from exc
        raise


def html_for(push: dict | None, variant: str, page: str) -> str:
    """What one socket gets of a push: run pages the header (for its role), thread pages the row, the home
    list its cell, the inbox its refresh."""
    if not push:
        return ""
    part = PAGE_PARTS.get(page)
    own = push.get(variant, "") if page in HEADER_PAGES else push.get(part, "") if part else ""
    common = push.get("common", "") if page in COMMON_PAGES else ""
    return common + own


class PushCache:
    """Each process loads a push once, however many of its sockets want it."""

    def __init__(self, size: int = 512):
        self._items: OrderedDict[tuple[str, str], asyncio.Future] = OrderedDict()
        self._size = size

    async def get(self, key: str, version: Version) -> dict | None:
        name = (key, str(version))
        future = self._items.get(name)
        if future is None or future.get_loop() is not asyncio.get_running_loop():
            future = asyncio.get_running_loop().create_future()
            self._items[name] = future
            while len(self._items) > self._size:
                self._items.popitem(last=False)
            try:
                (push,) = await store().pushes(key, [version])
            except BaseException as exc:
                self._items.pop(name, None)
                if isinstance(exc, Exception):
                    future.set_exception(exc)
                    future.exception()  # retrieved here: sockets waiting on it get it from the await
                else:
                    future.cancel()
                raise
            future.set_result(push)
        return await asyncio.shield(future)


push_cache = PushCache()


# --- versions for pages drawn over HTTP ------------------------------------------------------------


async def page_stamps(keys: list[str]) -> dict[str, str]:
    """The data-v a page stamps on what it draws of each object, read *before* it fetches the upstream:
    half a step after the last push, so pushes and saved states up to then (older than the page's own
    data) are dropped, and the next push replaces it. Nothing published yet (or no store): no stamp."""
    from .fragments import stamp

    try:
        heads = await store().heads(keys)
    except StoreUnavailable:
        return {}
    return {key: stamp(key, head.after_page()) for key, head in zip(keys, heads, strict=True) if head}


async def page_stamp(key: str) -> str:
    return (await page_stamps([key])).get(key, "")
