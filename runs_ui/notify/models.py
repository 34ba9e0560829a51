"""Outgoing webhooks an admin configures, and the log of every delivery to them."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Webhook(models.Model):
    """A URL that receives a signed JSON body (with a Slack-compatible `text`) for each notification."""

    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500, help_text="http(s) URL that accepts a POST with a JSON body.")
    # Fernet token of the signing secret (the connections' key); the secret is never shown again.
    secret_encrypted = models.TextField(blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class WebhookDelivery(models.Model):
    """One event delivered (or not) to one webhook, after all its attempts.

    (webhook, event id) is unique: a second delivery of the same event is refused by the database, so a
    transition seen by two processes reaches a receiver once.
    """

    PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
    STATUSES = [(PENDING, "in progress"), (SUCCEEDED, "delivered"), (FAILED, "failed")]

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.CharField(max_length=200)
    event_type = models.CharField(max_length=60)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    status = models.CharField(max_length=20, choices=STATUSES, default=PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    http_status = models.IntegerField(null=True, blank=True)
    latency_ms = models.IntegerField(null=True, blank=True, help_text="Of the last attempt.")
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["webhook", "event_id"], name="one_delivery_per_event_and_webhook")
        ]

    def __str__(self):
        return f"{self.event_type} → {self.webhook} ({self.status})"
