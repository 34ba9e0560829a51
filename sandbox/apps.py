"""App config for the sandbox: a local API in the Assistants and Responses shapes, with scripted agents."""

from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "sandbox"
    verbose_name = "Sandbox API"
    default_auto_field = "django.db.models.BigAutoField"
