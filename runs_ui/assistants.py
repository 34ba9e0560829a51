"""Assistant names per connection, cached for a minute: run rows show names, not just ids."""

from __future__ import annotations

import asyncio
import time

from .tasks import background
from .upstream.client import AssistantsClient
from .upstream.errors import UpstreamError

TTL_SECONDS = 60
_cache: dict[str, tuple[float, dict[str, str]]] = {}
#: The fetch in flight per connection (and event loop): callers that miss the cache at once share it.
_fetching: dict[tuple[str, int], asyncio.Task] = {}


async def assistant_names(client: AssistantsClient, pace=None) -> dict[str, str]:
    """id → name of the connection's assistants (first 100). A failure gives {}: names are a nicety.

    `pace`: awaited before any upstream request (the watcher's rate cap).
    """
    key = f"{client.name}@{client.base_url}"
    hit = _cache.get(key)
    if hit and time.monotonic() - hit[0] < TTL_SECONDS:
        return hit[1]
    flight = (key, id(asyncio.get_running_loop()))
    if flight not in _fetching:
        _fetching[flight] = background(_fetch(client, key, pace), "assistant-names")
        _fetching[flight].add_done_callback(lambda _: _fetching.pop(flight, None))
    # Shielded: a caller that stops waiting (the home page gives up after a second) leaves the fetch to
    # finish and fill the cache for the next one.
    return await asyncio.shield(_fetching[flight])


async def _fetch(client: AssistantsClient, key: str, pace) -> dict[str, str]:
    if pace is not None:
        await pace()
    try:
        page = await client.list_assistants(limit=100)
        names = {a.id: a.label for a in page.data if a.id}
    except UpstreamError:
        names = {}
    _cache[key] = (time.monotonic(), names)
    return names


async def assistant_name(client: AssistantsClient, assistant_id: str, pace=None) -> str:
    """One assistant's name; one not among the cached first 100 is fetched and remembered."""
    names = await assistant_names(client, pace)
    if assistant_id and assistant_id not in names:
        if pace is not None:
            await pace()
        try:
            names[assistant_id] = (await client.get_assistant(assistant_id)).label
        except UpstreamError:
            names[assistant_id] = ""
    return names.get(assistant_id, "")


def cached_names(client: AssistantsClient, pace=None) -> dict[str, str]:
    """The names known now, without waiting: a miss or an old entry starts a refresh in the background,
    so live pushes never wait for names (the next push carries them)."""
    key = f"{client.name}@{client.base_url}"
    hit = _cache.get(key)
    if hit is None or time.monotonic() - hit[0] >= TTL_SECONDS:
        flight = (key, id(asyncio.get_running_loop()))
        if flight not in _fetching:
            _fetching[flight] = background(_fetch(client, key, pace), "assistant-names")
            _fetching[flight].add_done_callback(lambda _: _fetching.pop(flight, None))
    return hit[1] if hit else {}


def cached_name(client: AssistantsClient, assistant_id: str, pace=None) -> str:
    """One assistant's name if known now ("" otherwise; see `cached_names`)."""
    if client is None:
        return ""
    names = cached_names(client, pace)
    if assistant_id and assistant_id not in names and names:
        flight = (f"{client.name}@{client.base_url}#{assistant_id}", id(asyncio.get_running_loop()))
        if flight not in _fetching:
            _fetching[flight] = background(_fetch_one(client, names, assistant_id, pace), "assistant-name")
            _fetching[flight].add_done_callback(lambda _: _fetching.pop(flight, None))
    return names.get(assistant_id, "")


async def _fetch_one(client: AssistantsClient, names: dict[str, str], assistant_id: str, pace) -> None:
    if pace is not None:
        await pace()
    try:
        names[assistant_id] = (await client.get_assistant(assistant_id)).label
    except UpstreamError:
        names[assistant_id] = ""
