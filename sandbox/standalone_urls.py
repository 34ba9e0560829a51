"""URLs of the stand-alone sandbox: the API at /v1/, and at /openai/ for Azure-style endpoints."""

from django.urls import include, path, re_path

from . import api

urlpatterns = [
    path("v1/", include("sandbox.urls")),
    # AzureOpenAI(azure_endpoint=...) puts /openai before every path.
    path("openai/", include(("sandbox.urls", "sandbox"), namespace="sandbox-azure")),
    re_path(r"^", api.invalid_url),
]
