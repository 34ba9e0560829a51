"""The admin's webhook pages: the secret is write-only, "send a test" reaches the receiver and is logged."""

from runs_ui.connections import decrypt_key
from runs_ui.notify.models import Webhook, WebhookDelivery
from tests.fixtures import csrf_token
from tests.notify.conftest import SECRET


async def _post(client, path, data):
    token = await csrf_token(client, "/admin/")
    return await client.post(path, {**data, "csrfmiddlewaretoken": token})


async def test_an_admin_adds_a_webhook_whose_secret_never_comes_back(admin_client, receiver):
    response = await _post(
        admin_client,
        "/admin/runs_ui/webhook/add/",
        {
            "name": "Ops",
            "url": receiver.url,
            "enabled": "on",
            "secret": SECRET,
            **{f"deliveries-{k}": v for k, v in {"TOTAL_FORMS": 0, "INITIAL_FORMS": 0}.items()},
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    webhook = await Webhook.objects.aget(name="Ops")
    assert SECRET not in webhook.secret_encrypted and decrypt_key(webhook.secret_encrypted) == SECRET
    page = (await admin_client.get(f"/admin/runs_ui/webhook/{webhook.pk}/change/")).content.decode()
    assert SECRET not in page and webhook.secret_encrypted not in page
    assert "Send a test" in page


async def test_a_new_webhook_needs_a_secret_and_an_http_url(admin_client):
    response = await _post(
        admin_client,
        "/admin/runs_ui/webhook/add/",
        {
            "name": "Ops",
            "url": "ftp://example.com/x",
            "deliveries-TOTAL_FORMS": 0,
            "deliveries-INITIAL_FORMS": 0,
        },
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "A new webhook needs a secret." in page and "Use an http(s) URL." in page


async def test_send_a_test_delivers_a_signed_test_event_and_shows_the_answer(admin_client, webhook, receiver):
    response = await _post(admin_client, f"/admin/runs_ui/webhook/{webhook.pk}/send-test/", {})
    assert response.status_code == 302
    [received] = receiver.delivered()
    assert received.json["type"] == "test" and "Ops channel" in received.json["text"]
    delivery = await WebhookDelivery.objects.aget()
    assert (delivery.status, delivery.event_type, delivery.http_status) == ("succeeded", "test", 200)
    page = (await admin_client.get(response["Location"])).content.decode()
    assert "answered HTTP 200" in page
    assert "succeeded" in page or "delivered" in page  # the delivery log under the form


async def test_send_a_test_action_reports_a_failing_receiver(admin_client, webhook, receiver):
    receiver.script(404)
    response = await _post(
        admin_client,
        "/admin/runs_ui/webhook/",
        {"action": "send_test", "_selected_action": [webhook.pk]},
    )
    assert response.status_code == 302
    page = (await admin_client.get("/admin/runs_ui/webhook/")).content.decode()
    assert "not delivered after 1 attempts (HTTP 404)" in page


async def test_a_viewer_cannot_reach_the_webhook_admin(viewer_client):
    response = await viewer_client.get("/admin/runs_ui/webhook/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
