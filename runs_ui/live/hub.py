"""This process's live sockets, looked after together: one task per process, whatever their number.

Every LIVE_PROBE_SECONDS it
- reads the head version of every object its sockets show (one round trip) and brings up to date any
  socket that missed a push (the channel layer drops messages past a socket's capacity, and a lost final
  push must not leave a run "in progress" forever);
- notices the shared store coming back, or coming back empty (a Redis restart loses the channel layer's
  groups too): every socket then joins its groups again and resyncs;
- keeps its sockets' watches alive, and the home list's and inbox's interest current.
Every LIVE_SESSION_CHECK_SECONDS it checks each socket's session once more (logout, deactivation, a role
change), one lookup per session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from channels.db import database_sync_to_async
from django.conf import settings

from ..roles import roles_for
from .clock import Clock, clock
from .store import StoreUnavailable, store

if TYPE_CHECKING:
    from .consumers import LiveConsumer

log = logging.getLogger(__name__)

#: The home list's and inbox's interest (which runs they follow) is refreshed this often.
INTEREST_REFRESH_SECONDS = 10.0


class Hub:
    def __init__(self, clock: Clock = clock):
        self.clock = clock
        self.consumers: set[LiveConsumer] = set()
        self._task: asyncio.Task | None = None
        self._boot: str | None = None
        #: Set while the shared store (and with it the channel layer) cannot be reached.
        self.down = False
        self._sessions_checked = clock.monotonic()
        self._interest_refreshed = clock.monotonic()

    def join(self, consumer: LiveConsumer) -> None:
        self.consumers.add(consumer)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="live-hub")

    def leave(self, consumer: LiveConsumer) -> None:
        self.consumers.discard(consumer)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        self._task = None
        self.consumers.clear()
        self._boot = None
        self.down = False

    async def _run(self) -> None:
        while self.consumers:
            await self.clock.sleep(settings.LIVE_PROBE_SECONDS)
            try:
                await self.look()
            except StoreUnavailable as exc:
                await self.bus_down(exc)
            except Exception:
                log.exception("looking after this process's live sockets failed")

    async def look(self) -> None:
        """One round: the store, the heads, the watches; sessions and interest when due."""
        boot = await store().boot_marker()
        if self.down or (self._boot is not None and boot != self._boot):
            self._boot = boot
            await self._recover()
        self._boot = boot
        await self._probe()
        for consumer in list(self.consumers):
            consumer.keep_watching()
        now = self.clock.monotonic()
        if now - self._interest_refreshed >= INTEREST_REFRESH_SECONDS:
            self._interest_refreshed = now
            for consumer in list(self.consumers):
                await consumer.refresh_interest()
        if now - self._sessions_checked >= settings.LIVE_SESSION_CHECK_SECONDS:
            self._sessions_checked = now
            await self._check_sessions()

    async def check_bus(self, exc: Exception) -> None:
        """A socket's receive failed: an outage (Redis does not answer) or a passing hiccup under load."""
        if self.down:
            return
        try:
            await asyncio.wait_for(store().ping(), timeout=2)
        except Exception:
            await self.bus_down(exc)
        else:
            log.info("a socket's receive failed (%s); Redis answers, so it only retries", exc)

    async def bus_down(self, exc: Exception) -> None:
        """The store or channel layer failed (seen here or by a socket): say so on every page, once."""
        if self.down:
            return
        self.down = True
        log.warning("live updates interrupted: %s", exc)
        for consumer in list(self.consumers):
            with contextlib.suppress(Exception):
                await consumer.interrupted()

    async def _recover(self) -> None:
        self.down = False
        log.info("live updates resume: %d sockets join their groups again and resync", len(self.consumers))
        for consumer in list(self.consumers):
            try:
                await consumer.rejoin()
            except StoreUnavailable:
                self.down = True
                raise
            except Exception:
                log.exception("resyncing a socket failed")

    async def _probe(self) -> None:
        wanted = sorted({key for c in self.consumers for key in c.tracked_keys()})
        if not wanted:
            return
        heads = dict(zip(wanted, await store().heads(wanted), strict=True))
        for consumer in list(self.consumers):
            for key in consumer.tracked_keys():
                head = heads.get(key)
                if head is not None:
                    await consumer.catch_up(key, head)

    async def _check_sessions(self) -> None:
        by_session: dict[str, list[LiveConsumer]] = {}
        for consumer in self.consumers:
            by_session.setdefault(consumer.session_key or "", []).append(consumer)
        for session_key, consumers in by_session.items():
            user = await current_user(session_key)
            roles = await roles_for(user)
            for consumer in consumers:
                with contextlib.suppress(Exception):
                    await consumer.session_checked(user, roles)


@database_sync_to_async
def _load_user(session_key: str):
    """The user of a session as the auth middleware would find it now (None when there is none)."""
    from importlib import import_module

    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, load_backend
    from django.utils.crypto import constant_time_compare

    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    try:
        user_id, backend_path = session[SESSION_KEY], session[BACKEND_SESSION_KEY]
    except KeyError:
        return None  # logged out (the session was flushed) or expired
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None
    user = load_backend(backend_path).get_user(user_id)  # None for a deactivated user
    stamp = session.get(HASH_SESSION_KEY, "")
    if user is not None and not constant_time_compare(stamp, user.get_session_auth_hash()):
        return None  # the password changed: every other session is signed out
    return user


async def current_user(session_key: str):
    """The user a session belongs to now: anonymous once logged out, deactivated or its password
    changed."""
    from django.contrib.auth.models import AnonymousUser

    user = await _load_user(session_key) if session_key else None
    return user if user is not None and user.is_active else AnonymousUser()


hub = Hub()
