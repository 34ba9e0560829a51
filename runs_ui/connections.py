"""Which upstream, with which credentials: connection slugs → `AssistantsClient`s (and `ResponsesClient`s,
the same connection in the Responses shape).

The default connection comes from the ASSISTANTS_API_* settings (unset base URL = the built-in sandbox);
more are added in the Django admin, their API keys encrypted at rest with a key from the environment.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.http import Http404

from .models import DEFAULT_CONNECTION, Connection
from .upstream.client import AssistantsClient
from .upstream.profiles import PROFILES
from .upstream.responses_client import ResponsesClient


def _fernet() -> Fernet:
    key = settings.CONNECTIONS_ENCRYPTION_KEY
    if not key:
        key = base64.urlsafe_b64encode(hashlib.sha256(f"connections:{settings.SECRET_KEY}".encode()).digest())
    return Fernet(key)


def encrypt_key(api_key: str) -> str:
    return _fernet().encrypt(api_key.encode()).decode() if api_key else ""


def decrypt_key(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        # The encryption key changed: behave as "no key", so the page says authentication failed.
        return ""


@dataclass(frozen=True)
class ConnectionInfo:
    """What pages may know about a connection: never the key."""

    slug: str
    name: str
    profile: str
    host: str
    is_default: bool

    @property
    def settings_hint(self) -> str:
        if self.is_default:
            return (
                "ASSISTANTS_API_BASE_URL, ASSISTANTS_API_KEY, "
                "ASSISTANTS_API_PROFILE and ASSISTANTS_API_VERSION"
            )
        return f"the connection “{self.name}” in the admin"


def _client_settings() -> dict:
    return {
        "timeout": settings.UPSTREAM_TIMEOUT,
        "connect_timeout": settings.UPSTREAM_CONNECT_TIMEOUT,
        "retries": settings.UPSTREAM_RETRIES,
    }


def default_client() -> AssistantsClient:
    if settings.ASSISTANTS_API_BASE_URL:
        base_url, key = settings.ASSISTANTS_API_BASE_URL, settings.ASSISTANTS_API_KEY
    else:
        base_url, key = settings.SANDBOX_BASE_URL, settings.SANDBOX_API_KEY
    return AssistantsClient(
        base_url,
        key,
        PROFILES[settings.ASSISTANTS_API_PROFILE],
        settings.ASSISTANTS_API_VERSION,
        name=DEFAULT_CONNECTION,
        **_client_settings(),
    )


def client_for(connection: Connection) -> AssistantsClient:
    return AssistantsClient(
        connection.base_url,
        decrypt_key(connection.api_key_encrypted),
        PROFILES[connection.profile],
        connection.api_version,
        name=connection.slug,
        **_client_settings(),
    )


async def aget_client(slug: str) -> AssistantsClient:
    """The client for a connection slug from a URL; an unknown slug is a 404."""
    if slug == DEFAULT_CONNECTION:
        return default_client()
    connection = await Connection.objects.filter(slug=slug).afirst()
    if connection is None:
        raise Http404(f"No connection named “{slug}”.")
    return client_for(connection)


async def aget_responses_client(slug: str) -> ResponsesClient:
    """The same connection, in the Responses shape (whether it speaks it is the views' to say)."""
    return ResponsesClient(await aget_client(slug))


def info_for(client: AssistantsClient | ResponsesClient) -> ConnectionInfo:
    return ConnectionInfo(
        client.name,
        "Default" if client.name == DEFAULT_CONNECTION else client.name,
        client.profile.name,
        client.host,
        client.name == DEFAULT_CONNECTION,
    )


async def connections_speaking(shape: str) -> list[tuple[str, str]]:
    """(slug, label) of every connection that speaks a wire shape ("assistants" or "responses"), the
    default first: where the forms that start things may start them."""
    out = []
    default = default_client()
    if default.profile.speaks(shape):
        out.append((DEFAULT_CONNECTION, f"Default ({default.host})"))
    speaking = [name for name, profile in PROFILES.items() if profile.speaks(shape)]
    async for connection in Connection.objects.filter(profile__in=speaking).order_by("name"):
        out.append((connection.slug, f"{connection.name} ({connection.slug})"))
    return out
