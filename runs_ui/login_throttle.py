"""Log-in attempts, throttled: a few failures a minute per username and per client address, then a wait.

Counts live in Django's cache (Redis when REDIS_URL is set, so every process shares them), one counter per
username and per address and per minute (a fixed window: `add` then `incr`, both atomic in Redis). A
username is counted by its hash, so the cache holds no names people mistyped their passwords into.
"""

from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError

WINDOW_SECONDS = 60
#: The clock the windows are cut from; tests replace it.
clock = time.time


def client_address(request) -> str:
    """The address the request came from; behind a proxy that says so (TRUST_X_FORWARDED_FOR), the one it
    appended to X-Forwarded-For (those before it are whatever the client sent)."""
    if settings.TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if last := forwarded.split(",")[-1].strip():
            return last[:100]
    return request.META.get("REMOTE_ADDR", "")[:100]


def _keys(username: str, address: str) -> list[str]:
    window = int(clock() // WINDOW_SECONDS)
    name = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return [f"login:{window}:user:{name}", f"login:{window}:address:{address}"]


def throttled(username: str, address: str) -> bool:
    counts = cache.get_many(_keys(username, address))
    return any(n >= settings.LOGIN_ATTEMPTS_PER_MINUTE for n in counts.values())


def count_failure(username: str, address: str) -> None:
    for key in _keys(username, address):
        cache.add(key, 0, timeout=2 * WINDOW_SECONDS)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr: this failure starts the count again
            cache.add(key, 1, timeout=2 * WINDOW_SECONDS)


class ThrottledAuthenticationForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That username and password did not match.",
        "throttled": (
            "Too many failed attempts to log in with this username or from this address: "
            "wait a minute, then try again."
        ),
    }

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        address = client_address(self.request)
        if throttled(username, address):
            raise ValidationError(self.error_messages["throttled"], code="throttled")
        try:
            return super().clean()
        except ValidationError:
            count_failure(username, address)
            raise


class LoginView(auth_views.LoginView):
    """Django's log-in view, with the throttled form; a refused attempt answers 429."""

    authentication_form = ThrottledAuthenticationForm

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if any(e.code == "throttled" for e in form.non_field_errors().as_data()):
            response.status_code = 429
        return response
