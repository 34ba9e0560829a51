"""Who may do what: viewer (read-only), operator (actions), admin (the Django admin). Django groups.

Roles are looked up once per request by `RolesMiddleware` (async, so views and templates never query
the database from the event loop) and read from `request.roles`.
"""

from __future__ import annotations

from dataclasses import dataclass

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings

VIEWER, OPERATOR, ADMIN = "viewer", "operator", "admin"
GROUPS = (VIEWER, OPERATOR, ADMIN)


@dataclass(frozen=True)
class Roles:
    names: frozenset[str]

    @property
    def is_operator(self) -> bool:
        return OPERATOR in self.names or ADMIN in self.names

    @property
    def can_act(self) -> bool:
        """Operators may act, unless the whole deployment is read-only."""
        return self.is_operator and not settings.READ_ONLY

    @property
    def label(self) -> str:
        for name in (ADMIN, OPERATOR):
            if name in self.names:
                return name
        return VIEWER


NOBODY = Roles(frozenset())


async def roles_for(user) -> Roles:
    if user is None or not user.is_authenticated or not user.is_active:
        return NOBODY
    if user.is_superuser:
        return Roles(frozenset(GROUPS))
    names = {name async for name in user.groups.filter(name__in=GROUPS).values_list("name", flat=True)}
    return Roles(frozenset(names | {VIEWER}))


class RolesMiddleware:
    """Sets `request.roles` for the signed-in user before the view runs."""

    async_capable = True
    sync_capable = False

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(self.get_response):
            markcoroutinefunction(self)

    async def __call__(self, request):
        user = await request.auser()
        # Resolved here, in the event loop: error pages rendered later in a worker thread then have
        # nothing left to load (a lazy user there would open a database connection nobody closes).
        request.user = user
        request.roles = await roles_for(user)
        return await self.get_response(request)
