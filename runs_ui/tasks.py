"""Background tasks: work that outlives the request or socket that started it."""

from __future__ import annotations

import asyncio
import contextvars


def background(coro, name: str) -> asyncio.Task:
    """A task that outlives the request or socket that started it.

    It starts from an empty context: a request's context carries its own thread for sync (ORM) calls,
    which is shut down when the request ends, so a task inheriting it could no longer reach the database.
    """
    return asyncio.get_running_loop().create_task(coro, name=name, context=contextvars.Context())
