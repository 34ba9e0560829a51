"""Template context every page needs; reads only what middleware already loaded (no queries)."""

from django.conf import settings

from .roles import NOBODY


def dashboard(request):
    roles = getattr(request, "roles", NOBODY)
    return {
        "roles": roles,
        "can_act": roles.can_act,
        "read_only": settings.READ_ONLY,
    }
