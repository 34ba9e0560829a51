"""ASGI entry point of the stand-alone sandbox: `daphne sandbox.asgi:application`."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sandbox.standalone_settings")

application = get_asgi_application()
