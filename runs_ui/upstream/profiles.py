"""Provider profiles: how each kind of upstream wants to be addressed and authenticated."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import Misconfigured


@dataclass(frozen=True)
class Profile:
    name: str
    label: str
    #: "bearer" → `Authorization: Bearer KEY`; "api-key" → `api-key: KEY`.
    auth: str
    #: Sent on every call (OpenAI wants the beta header; Azure's REST surface does not).
    extra_headers: tuple[tuple[str, str], ...] = ()
    #: Azure addresses a surface by `?api-version=` on every call.
    needs_api_version: bool = False
    #: OpenAI's shape has no list-threads endpoint; Azure agents and the sandbox do.
    can_list_threads: bool = False
    #: The wire shapes it speaks: "assistants" (threads, runs, steps) and/or "responses" (Responses +
    #: Conversations).
    shapes: tuple[str, ...] = ("assistants",)
    #: OpenAI's Responses API cannot list responses or conversations; Azure AI Foundry and the sandbox can.
    can_list_responses: bool = False

    def speaks(self, shape: str) -> bool:
        return shape in self.shapes

    def credential(self, api_key: str) -> dict[str, str]:
        """The header that carries the key (only the client's `KeyAuth` calls this, per request)."""
        if self.auth == "api-key":
            return {"api-key": api_key}
        return {"Authorization": f"Bearer {api_key}"}

    def params(self, api_version: str) -> dict[str, str]:
        if self.needs_api_version and not api_version:
            raise Misconfigured(
                f"The {self.label} profile needs an API version (e.g. 2024-08-01-preview).",
                setting="ASSISTANTS_API_VERSION",
            )
        return {"api-version": api_version} if api_version else {}


BETA = (("OpenAI-Beta", "assistants=v2"),)

PROFILES = {
    p.name: p
    for p in [
        Profile("openai", "OpenAI-compatible", auth="bearer", extra_headers=BETA),
        Profile("azure-openai", "Azure OpenAI", auth="api-key", needs_api_version=True),
        Profile(
            "azure-agents",
            "Azure AI Foundry agents",
            auth="bearer",
            needs_api_version=True,
            can_list_threads=True,
        ),
        # The successor shape: no beta header; OpenAI's lists nothing, Foundry's new agents list responses
        # and conversations (`{project endpoint}/openai/v1`, an Entra ID token, `api-version` only where
        # a surface wants one).
        Profile("openai-responses", "OpenAI Responses", auth="bearer", shapes=("responses",)),
        Profile(
            "azure-foundry",
            "Azure AI Foundry agents (Responses)",
            auth="bearer",
            shapes=("responses",),
            can_list_responses=True,
        ),
        Profile(
            "sandbox",
            "Built-in sandbox",
            auth="bearer",
            extra_headers=BETA,
            can_list_threads=True,
            shapes=("assistants", "responses"),
            can_list_responses=True,
        ),
    ]
}
