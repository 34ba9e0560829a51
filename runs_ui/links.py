"""Dashboard URLs mirror the API's paths; connections other than the default live under /c/<slug>/.

Every id in a URL is checked for its kind first: an id from an upstream answer that is not one is no link
at all (NoReverseMatch; templates draw none), never a link to somewhere else.
"""

from django.urls import NoReverseMatch, reverse

from .models import DEFAULT_CONNECTION
from .upstream.objects import is_id

ID_KINDS = {"thread_id": "thread", "run_id": "run", "step_id": "step", "file_id": "file"}


def url_for(name: str, connection: str = DEFAULT_CONNECTION, **kwargs) -> str:
    for key, kind in ID_KINDS.items():
        if key in kwargs and not is_id(kind, kwargs[key]):
            raise NoReverseMatch(f"{key} is not a {kind} id")
    if connection != DEFAULT_CONNECTION:
        kwargs["connection"] = connection
    return reverse(f"runs_ui:{name}", kwargs=kwargs)
