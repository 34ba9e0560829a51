"""The admin of webhooks: the secret write-only, a "send a test" button and action, the delivery log."""

from __future__ import annotations

import secrets
import uuid
from urllib.parse import urlsplit

from asgiref.sync import async_to_sync
from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse

from ..connections import encrypt_key
from .events import trial_event
from .models import Webhook, WebhookDelivery
from .webhooks import deliver_to


class WebhookForm(forms.ModelForm):
    secret = forms.CharField(
        required=False,
        min_length=16,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Signs every delivery (HMAC-SHA256, see docs/WEBHOOKS.md). Stored encrypted and never "
        "shown again; leave empty to keep the current one.",
    )

    class Meta:
        model = Webhook
        fields = ["name", "url", "enabled"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A fresh suggestion, not stored until typed in: the admin copies it to the receiver too.
        self.fields["secret"].help_text += f" A random one you may use: {secrets.token_hex(24)}"

    def clean_url(self):
        url = self.cleaned_data["url"]
        if urlsplit(url).scheme not in ("http", "https"):
            raise forms.ValidationError("Use an http(s) URL.")
        return url

    def clean(self):
        data = super().clean()
        if not self.instance.secret_encrypted and not data.get("secret"):
            self.add_error("secret", "A new webhook needs a secret.")
        return data

    def save(self, commit=True):
        webhook = super().save(commit=False)
        if self.cleaned_data.get("secret"):
            webhook.secret_encrypted = encrypt_key(self.cleaned_data["secret"])
        if commit:
            webhook.save()
        return webhook


class DeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    fields = [
        "created_at",
        "event_type",
        "status",
        "attempts",
        "http_status",
        "latency_ms",
        "response_excerpt",
        "error",
    ]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ["-created_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-created_at")


def _send_test(webhook: Webhook) -> WebhookDelivery | None:
    return async_to_sync(deliver_to)(webhook, trial_event(webhook.name, uuid.uuid4().hex))


def _report(request, webhook: Webhook, delivery: WebhookDelivery | None) -> None:
    if delivery is not None and delivery.status == WebhookDelivery.SUCCEEDED:
        messages.success(
            request, f"“{webhook.name}” answered HTTP {delivery.http_status} in {delivery.latency_ms} ms."
        )
    else:
        what = (
            (delivery.http_status and f"HTTP {delivery.http_status}") or delivery.error
            if delivery
            else "nothing"
        )
        attempts = delivery.attempts if delivery else 0
        messages.error(
            request, f"“{webhook.name}”: the test was not delivered after {attempts} attempts ({what})."
        )


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    form = WebhookForm
    list_display = ["name", "host", "enabled", "last_delivery"]
    list_filter = ["enabled"]
    actions = ["send_test"]
    inlines = [DeliveryInline]
    change_form_template = "admin/runs_ui/webhook/change_form.html"

    @admin.display(description="host")
    def host(self, obj):
        # The host only: some receivers' URLs carry their own secret (Slack's incoming webhooks do).
        return urlsplit(obj.url).hostname or "—"

    @admin.display(description="last delivery")
    def last_delivery(self, obj):
        last = obj.deliveries.order_by("-created_at").first()
        return f"{last.get_status_display()} ({last.event_type})" if last else "—"

    @admin.action(description="Send a test event")
    def send_test(self, request, queryset):
        for webhook in queryset:
            _report(request, webhook, _send_test(webhook))

    def get_urls(self):
        return [
            path(
                "<int:pk>/send-test/",
                self.admin_site.admin_view(self.send_test_view),
                name="runs_ui_webhook_send_test",
            ),
            *super().get_urls(),
        ]

    def send_test_view(self, request, pk):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        webhook = get_object_or_404(Webhook, pk=pk)
        if not self.has_change_permission(request, webhook):
            raise admin.sites.PermissionDenied
        _report(request, webhook, _send_test(webhook))
        return HttpResponseRedirect(reverse("admin:runs_ui_webhook_change", args=[pk]))


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """The delivery log: read-only."""

    list_display = ["created_at", "webhook", "event_type", "status", "attempts", "http_status", "latency_ms"]
    list_filter = ["status", "event_type", "webhook"]
    search_fields = ["event_id"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
