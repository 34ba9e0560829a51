"""WebSocket routes: what a page can subscribe to (its run, its thread, its response, its conversation, the
home list and index, or the inbox)."""

from django.urls import path

from .consumers import LiveConsumer

websocket_urlpatterns = [
    path("ws/runs/<slug:conn>/<str:thread_id>/<str:run_id>/", LiveConsumer.as_asgi(), {"scope": "run"}),
    path("ws/threads/<slug:conn>/<str:thread_id>/", LiveConsumer.as_asgi(), {"scope": "thread"}),
    path("ws/responses/<slug:conn>/<str:response_id>/", LiveConsumer.as_asgi(), {"scope": "response"}),
    path(
        "ws/conversations/<slug:conn>/<str:conversation_id>/",
        LiveConsumer.as_asgi(),
        {"scope": "conversation"},
    ),
    path("ws/index/", LiveConsumer.as_asgi(), {"scope": "index"}),
    path("ws/inbox/", LiveConsumer.as_asgi(), {"scope": "inbox"}),
]
