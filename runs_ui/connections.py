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
from django.views.decorators.debug import sensitive_variables

from .models import DEFAULT_CONNECTION, Connection
from .upstream.client import AssistantsClient
from .upstream.limits import Limits
from .upstream.profiles import PROFILES
from .upstream.responses_client import ResponsesClient

#: What a connection's pages and the admin say when its stored key no longer decrypts.
UNREADABLE_KEY = (
    "The API key stored for this connection cannot be decrypted: it was encrypted under another "
    "SECRET_KEY or CONNECTIONS_ENCRYPTION_KEY (changed or rotated since). Nothing is sent without it: "
    "an admin must enter the key again in the admin (Connections)."
)


class UnreadableKey(Exception):
    """A stored key that the current encryption key cannot decrypt."""


def _fernet() -> Fernet:
    key = settings.CONNECTIONS_ENCRYPTION_KEY
    if not key:
        key = base64.urlsafe_b64encode(hashlib.sha256(f"connections:{settings.SECRET_KEY}".encode()).digest())
    return Fernet(key)


@sensitive_variables()
def encrypt_key(api_key: str) -> str:
    return _fernet().encrypt(api_key.encode()).decode() if api_key else ""


@sensitive_variables()
def decrypt_key(token: str) -> str:
    """The stored key ("" when none is stored); UnreadableKey when it cannot be decrypted."""
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise UnreadableKey from None


def key_status(connection: Connection) -> str:
    """ "set", "none" or "unreadable" (for the admin; never the key)."""
    if not connection.api_key_encrypted:
        return "none"
    try:
        decrypt_key(connection.api_key_encrypted)
    except UnreadableKey:
        return "unreadable"
    return "set"


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
        "limits": Limits(
            deadline=settings.UPSTREAM_DEADLINE,
            max_body_bytes=settings.UPSTREAM_MAX_BODY_BYTES,
            max_pages=settings.UPSTREAM_MAX_PAGES,
            max_items=settings.UPSTREAM_MAX_ITEMS,
            stream_seconds=settings.UPSTREAM_STREAM_MAX_SECONDS,
            stream_bytes=settings.UPSTREAM_STREAM_MAX_BYTES,
            stream_events=settings.UPSTREAM_STREAM_MAX_EVENTS,
            stream_line_bytes=settings.UPSTREAM_STREAM_MAX_LINE_BYTES,
        ),
    }


# The key goes straight from the settings or the database into the client's KeyAuth: no local variable
# holds it, and a debug page shows none of these frames' variables.
@sensitive_variables()
def default_client() -> AssistantsClient:
    sandbox = not settings.ASSISTANTS_API_BASE_URL
    return AssistantsClient(
        settings.SANDBOX_BASE_URL if sandbox else settings.ASSISTANTS_API_BASE_URL,
        settings.SANDBOX_API_KEY if sandbox else settings.ASSISTANTS_API_KEY,
        PROFILES[settings.ASSISTANTS_API_PROFILE],
        settings.ASSISTANTS_API_VERSION,
        name=DEFAULT_CONNECTION,
        **_client_settings(),
    )


@sensitive_variables()
def client_for(connection: Connection) -> AssistantsClient:
    """The client of an admin-added connection; one whose key no longer decrypts refuses every call with
    a Misconfigured error that says so (rather than calling without a key)."""
    try:
        return AssistantsClient(
            connection.base_url,
            decrypt_key(connection.api_key_encrypted),
            PROFILES[connection.profile],
            connection.api_version,
            name=connection.slug,
            **_client_settings(),
        )
    except UnreadableKey:
        return AssistantsClient(
            connection.base_url,
            "",
            PROFILES[connection.profile],
            connection.api_version,
            name=connection.slug,
            key_problem=UNREADABLE_KEY,
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
