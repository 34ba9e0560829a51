"""WhiteNoise, made usable in an async middleware stack.

WhiteNoise's own middleware is sync-only: in this async app Django would then run every request through a
sync thread around it (and a background task started by a view could not reach the database until the
request ended). Looking a file up is a dict lookup; only serving one opens a file, done in a thread.
"""

from asgiref.sync import markcoroutinefunction, sync_to_async
from django.conf import settings
from whitenoise.middleware import WhiteNoiseMiddleware


class AsyncWhiteNoiseMiddleware(WhiteNoiseMiddleware):
    async_capable = True
    sync_capable = False

    def __init__(self, get_response, settings=settings):
        super().__init__(get_response, settings)
        markcoroutinefunction(self)

    async def __call__(self, request):
        if self.autorefresh:
            static_file = await sync_to_async(self.find_file, thread_sensitive=False)(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            return await sync_to_async(self.serve, thread_sensitive=False)(static_file, request)
        return await self.get_response(request)
