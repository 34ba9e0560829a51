"""ASGI entry point: Django for HTTP, Channels for the live WebSocket (served by daphne)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
# Django must be set up before anything imports models (routing → consumers → models).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from runs_ui import lifecycle  # noqa: E402
from runs_ui.live.routing import websocket_urlpatterns  # noqa: E402
from runs_ui.socket_origin import OriginCheck  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OriginCheck(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        "lifespan": lifecycle.lifespan,
    }
)
lifecycle.hook_daphne()
