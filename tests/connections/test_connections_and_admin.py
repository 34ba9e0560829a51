"""Connections added in the admin: keys encrypted at rest, never shown again, used for their pages."""

import pytest
from django.test import AsyncClient

from runs_ui.connections import UnreadableKey, aget_client, decrypt_key, encrypt_key
from runs_ui.models import Connection
from tests.fixtures import csrf_token

SECRET = "sk-very-secret-key-0123456789"


def test_a_key_is_stored_encrypted_and_decrypts_back(transactional_db):
    token = encrypt_key(SECRET)
    assert SECRET not in token
    assert decrypt_key(token) == SECRET


def test_a_token_made_with_another_encryption_key_is_refused_not_read_as_no_key(settings):
    token = encrypt_key(SECRET)
    settings.CONNECTIONS_ENCRYPTION_KEY = "zmPx3dDaNq2WZ0mdYrK8zJ3l6Z9S5v0H2wJ7c5aQ1Xo="
    with pytest.raises(UnreadableKey):
        decrypt_key(token)


async def _admin_post(client: AsyncClient, path: str, data: dict):
    token = await csrf_token(client, path)
    return await client.post(path, {**data, "csrfmiddlewaretoken": token})


async def test_an_admin_adds_a_connection_whose_key_never_comes_back(admin_client):
    response = await _admin_post(
        admin_client,
        "/admin/runs_ui/connection/add/",
        {
            "name": "Gateway",
            "slug": "gateway",
            "profile": "openai",
            "base_url": "https://llm.example.com/v1",
            "api_version": "",
            "api_key": SECRET,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    connection = await Connection.objects.aget(slug="gateway")
    assert connection.api_key_encrypted and SECRET not in connection.api_key_encrypted
    assert decrypt_key(connection.api_key_encrypted) == SECRET
    change = await admin_client.get(f"/admin/runs_ui/connection/{connection.pk}/change/")
    assert change.status_code == 200
    assert SECRET not in change.content.decode()
    assert connection.api_key_encrypted not in change.content.decode()
    listing = await admin_client.get("/admin/runs_ui/connection/")
    assert SECRET not in listing.content.decode()


async def test_saving_a_connection_without_a_key_keeps_the_stored_one(admin_client):
    connection = await Connection.objects.acreate(
        name="G",
        slug="g",
        profile="openai",
        base_url="https://llm.example.com/v1",
        api_key_encrypted=encrypt_key(SECRET),
    )
    response = await _admin_post(
        admin_client,
        f"/admin/runs_ui/connection/{connection.pk}/change/",
        {
            "name": "G renamed",
            "slug": "g",
            "profile": "openai",
            "base_url": "https://llm.example.com/v1",
            "api_version": "",
            "api_key": "",
        },
    )
    assert response.status_code == 302
    await connection.arefresh_from_db()
    assert connection.name == "G renamed"
    assert decrypt_key(connection.api_key_encrypted) == SECRET


async def test_an_azure_connection_without_an_api_version_is_refused_in_the_admin(admin_client):
    response = await _admin_post(
        admin_client,
        "/admin/runs_ui/connection/add/",
        {
            "name": "Azure",
            "slug": "azure",
            "profile": "azure-openai",
            "base_url": "https://res.openai.azure.com/openai",
            "api_version": "",
            "api_key": SECRET,
        },
    )
    assert response.status_code == 200
    assert "need an API version" in response.content.decode()
    assert not await Connection.objects.filter(slug="azure").aexists()


async def test_the_slug_default_is_reserved_for_the_environment_connection(admin_client):
    response = await _admin_post(
        admin_client,
        "/admin/runs_ui/connection/add/",
        {
            "name": "Default",
            "slug": "default",
            "profile": "openai",
            "base_url": "https://x.example.com/v1",
            "api_version": "",
            "api_key": "",
        },
    )
    assert response.status_code == 200
    assert not await Connection.objects.filter(slug="default").aexists()


async def test_a_connection_serves_its_threads_under_its_prefix_with_its_own_key(
    operator_client, make_run, wait_for, upstream
):
    run = make_run("answer", speed=50)
    wait_for(run, "completed")
    await Connection.objects.acreate(
        name="Second",
        slug="second",
        profile="sandbox",
        base_url=upstream.base_url,
        api_key_encrypted=encrypt_key(upstream.api_key),
    )
    client = await aget_client("second")
    assert client.name == "second" and client.auth.redact(upstream.api_key) == "[redacted]"
    page = await operator_client.get(f"/c/second/threads/{run.thread_id}/runs/{run.run_id}/")
    assert page.status_code == 200
    assert f"/c/second/threads/{run.thread_id}/runs/{run.run_id}/export.json" in page.content.decode()
    assert upstream.api_key not in page.content.decode()


async def test_a_connection_with_a_wrong_key_gets_a_page_naming_what_to_fix(
    operator_client, make_run, upstream
):
    run = make_run("answer", speed=50)
    await Connection.objects.acreate(
        name="Broken",
        slug="broken",
        profile="sandbox",
        base_url=upstream.base_url,
        api_key_encrypted=encrypt_key("sk-wrong"),
    )
    page = await operator_client.get(f"/c/broken/threads/{run.thread_id}/")
    assert page.status_code == 502
    text = page.content.decode()
    assert "the connection “broken” in the admin" in text
    assert "sk-wrong" not in text


async def test_an_unknown_connection_prefix_is_a_404(operator_client):
    page = await operator_client.get("/c/nope/threads/thread_abc/")
    assert page.status_code == 404


@pytest.mark.parametrize("path", ["/admin/", "/admin/runs_ui/auditrecord/", "/admin/runs_ui/connection/"])
async def test_viewers_and_operators_cannot_open_the_admin(viewer_client, operator_client, path):
    for client in (viewer_client, operator_client):
        response = await client.get(path)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
