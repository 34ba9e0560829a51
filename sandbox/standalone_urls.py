"""URLs of the stand-alone sandbox: the API at /v1/, and at /openai/ and /openai/v1/ as Azure serves it."""

from django.urls import include, path, re_path

from . import api

urlpatterns = [
    path("v1/", include("sandbox.urls")),
    # Azure AI Foundry's new agents serve the Responses shape under {project endpoint}/openai/v1.
    path("openai/v1/", include(("sandbox.urls", "sandbox"), namespace="sandbox-foundry")),
    # AzureOpenAI(azure_endpoint=...) puts /openai before every path.
    path("openai/", include(("sandbox.urls", "sandbox"), namespace="sandbox-azure")),
    re_path(r"^", api.invalid_url),
]
