"""Process shutdown: stop the relays, watchers and side tasks, close the upstream pool and the Redis client.

daphne (Twisted) has no ASGI lifespan events, so under daphne this hooks Twisted's shutdown; servers
that speak lifespan (uvicorn, hypercorn) get the `lifespan` app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

log = logging.getLogger(__name__)


async def shutdown() -> None:
    from .live import relay, response_relay
    from .live.hub import hub
    from .live.response_watch import response_watcher
    from .live.store import store
    from .live.watcher import watcher
    from .upstream.client import close_pool

    await relay.stop()
    await response_relay.stop()
    await hub.stop()
    await watcher.stop()
    await response_watcher.stop()
    await close_pool()
    await store().close()
    log.info("relays and watchers stopped, upstream pool closed")


def hook_daphne() -> None:
    """Run `shutdown` before daphne's reactor stops (only when running under daphne)."""
    if "twisted.internet.reactor" not in sys.modules:
        return  # not under daphne: importing the reactor here would install the wrong one
    from twisted.internet import defer, reactor

    def before_shutdown():
        with contextlib.suppress(RuntimeError):
            return defer.Deferred.fromFuture(asyncio.ensure_future(shutdown()))
        return None

    reactor.addSystemEventTrigger("before", "shutdown", before_shutdown)


async def lifespan(scope, receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return
