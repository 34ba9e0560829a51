"""App config for the sandbox: a local Assistants-v2-compatible API with scripted agents."""

from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "sandbox"
    verbose_name = "Sandbox Assistants API"
    default_auto_field = "django.db.models.BigAutoField"
