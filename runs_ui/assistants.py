"""Assistant names per connection, cached for a minute: run rows show names, not just ids."""

from __future__ import annotations

import time

from .upstream.client import AssistantsClient
from .upstream.errors import UpstreamError

TTL_SECONDS = 60
_cache: dict[str, tuple[float, dict[str, str]]] = {}


async def assistant_names(client: AssistantsClient) -> dict[str, str]:
    """id → name of the connection's assistants (first 100). A failure gives {}: names are a nicety."""
    key = f"{client.name}@{client.base_url}"
    hit = _cache.get(key)
    if hit and time.monotonic() - hit[0] < TTL_SECONDS:
        return hit[1]
    try:
        page = await client.list_assistants(limit=100)
        names = {a.id: a.label for a in page.data if a.id}
    except UpstreamError:
        names = {}
    _cache[key] = (time.monotonic(), names)
    return names
