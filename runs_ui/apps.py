from django.apps import AppConfig
from django.db.models.signals import post_migrate


def ensure_groups(**kwargs):
    """The three roles exist after every migrate; admins manage users, connections, redaction rules and
    webhooks, and read the audit log."""
    from django.contrib.auth.models import Group, Permission

    from .roles import ADMIN, GROUPS

    for name in GROUPS:
        Group.objects.get_or_create(name=name)
    admin_perms = Permission.objects.filter(
        content_type__app_label__in=["runs_ui", "auth"],
        content_type__model__in=[
            "connection",
            "auditrecord",
            "threadentry",
            "conversationentry",
            "user",
            "group",
            "redactionrule",
            "hiddenmetadatakey",
            "revealrecord",
            "webhook",
            "webhookdelivery",
        ],
    )
    Group.objects.get(name=ADMIN).permissions.set(admin_perms)


class RunsUiConfig(AppConfig):
    name = "runs_ui"
    verbose_name = "Runs dashboard"

    def ready(self):
        post_migrate.connect(ensure_groups, sender=self)
