"""Sets up the demo: a "demo" operator whose password is generated on this machine, and the sandbox's data."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import BaseCommand, call_command

from runs_ui.roles import ADMIN, OPERATOR

USERNAME = "demo"


class Command(BaseCommand):
    help = "Create the demo user (password generated and kept in var/demo-password) and seed the sandbox."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=settings.PORT)
        parser.add_argument("--no-seed", action="store_true", help="Only make sure the demo user exists.")

    def handle(self, *args, port, no_seed, **options):
        password = self._password()
        user, _ = get_user_model().objects.get_or_create(username=USERNAME)
        user.set_password(password)
        user.is_staff = True
        user.save()
        user.groups.add(*Group.objects.filter(name__in=[OPERATOR, ADMIN]))
        if not no_seed and not settings.ASSISTANTS_API_BASE_URL:
            call_command("sandbox_seed", stdout=self.stdout)
        self.stdout.write(
            self.style.SUCCESS(
                f"\n  Open http://127.0.0.1:{port}/ and log in as “{USERNAME}” with password “{password}”.\n"
                f"  (The password is kept in {settings.VAR_DIR / 'demo-password'}; "
                "add your own users with `manage.py createsuperuser`.)\n"
            )
        )

    def _password(self) -> str:
        path = settings.VAR_DIR / "demo-password"
        if not path.exists():
            settings.VAR_DIR.mkdir(exist_ok=True)
            path.write_text(secrets.token_urlsafe(12))
            path.chmod(0o600)
        return path.read_text().strip()
