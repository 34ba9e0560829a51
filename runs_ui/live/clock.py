"""Time for the live layer, injectable: the watcher and the budget take a clock, so tests of their timing
logic advance a fake one instead of sleeping and hoping the machine is idle."""

from __future__ import annotations

import asyncio
import time


class Clock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def wait_for(self, event: asyncio.Event, seconds: float) -> bool:
        """Wait until `event` is set or `seconds` pass; whether it was set."""
        if event.is_set():
            return True
        # asyncio.timeout, not wait_for: no task per wait (hundreds of watches sleep this way).
        try:
            async with asyncio.timeout(max(0.0, seconds)):
                await event.wait()
        except TimeoutError:
            return False
        return True


clock = Clock()
