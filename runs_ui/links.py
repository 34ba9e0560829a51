"""Dashboard URLs mirror the API's paths; connections other than the default live under /c/<slug>/."""

from django.urls import reverse

from .models import DEFAULT_CONNECTION


def url_for(name: str, connection: str = DEFAULT_CONNECTION, **kwargs) -> str:
    if connection != DEFAULT_CONNECTION:
        kwargs["connection"] = connection
    return reverse(f"runs_ui:{name}", kwargs=kwargs)
