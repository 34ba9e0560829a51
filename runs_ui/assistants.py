"""Assistant names per connection, cached for a minute: run rows show names, not just ids."""

from __future__ import annotations

import time

from .upstream.client import AssistantsClient
from .upstream.errors import UpstreamError

TTL_SECONDS = 60
_cache: dict[str, tuple[float, dict[str, str]]] = {}


async def assistant_names(client: AssistantsClient, pace=None) -> dict[str, str]:
    """id → name of the connection's assistants (first 100). A failure gives {}: names are a nicety.

    `pace`: awaited before any upstream request (the watcher's rate cap).
    """
    key = f"{client.name}@{client.base_url}"
    hit = _cache.get(key)
    if hit and time.monotonic() - hit[0] < TTL_SECONDS:
        return hit[1]
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
