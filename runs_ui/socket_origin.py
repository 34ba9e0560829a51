"""Refuses WebSockets opened by other sites' pages: the browser would send the user's cookies along.

Like Channels' AllowedHostsOriginValidator, but the refusal is a close with code 4403 after the
handshake, so the page can tell why (a bare handshake refusal reaches the browser as code 1006).
"""

from urllib.parse import urlparse

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.security.websocket import OriginValidator
from django.conf import settings

FORBIDDEN_ORIGIN = 4403


class _Refuse(AsyncWebsocketConsumer):
    async def connect(self):
        await self.accept()
        await self.close(code=FORBIDDEN_ORIGIN)


class OriginCheck(OriginValidator):
    def __init__(self, application):
        super().__init__(application, allowed_origins=[])

    async def __call__(self, scope, receive, send):
        # Read the settings per connection, so test and deployment settings are the ones in force.
        self.allowed_origins = [*settings.ALLOWED_HOSTS, *settings.CSRF_TRUSTED_ORIGINS]
        origin = None
        for name, value in scope.get("headers", []):
            if name == b"origin":
                try:
                    origin = urlparse(value.decode("latin1"))
                except (UnicodeDecodeError, ValueError):
                    origin = None
        if self.valid_origin(origin):
            return await self.application(scope, receive, send)
        return await _Refuse.as_asgi()(scope, receive, send)
