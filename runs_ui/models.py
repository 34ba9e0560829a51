"""What the dashboard keeps itself: connections, the thread index with run snapshots, audit records."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

DEFAULT_CONNECTION = "default"


class Connection(models.Model):
    """An upstream added by an admin, besides the default one configured from the environment."""

    slug = models.SlugField(
        max_length=40, unique=True, help_text="Used in dashboard URLs: /c/<slug>/threads/…"
    )
    name = models.CharField(max_length=100)
    profile = models.CharField(max_length=20, choices=[(p, p) for p in settings.PROFILES], default="openai")
    base_url = models.URLField(
        max_length=500, help_text="e.g. https://host/v1 or https://RES.openai.azure.com/openai"
    )
    api_version = models.CharField(max_length=40, blank=True, help_text="Required by the Azure profiles.")
    # Fernet token of the API key (see connections.py); the key itself is never stored or shown.
    api_key_encrypted = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.slug})"


class ThreadEntry(models.Model):
    """A thread the dashboard has seen or been told about (the OpenAI shape cannot list threads)."""

    SOURCES = [
        ("opened", "opened in the dashboard"),
        ("added", "added by id"),
        ("created", "created from the dashboard"),
        ("registered", "registered by an agent application"),
        ("listed", "listed from the upstream"),
    ]

    connection = models.CharField(max_length=40, default=DEFAULT_CONNECTION)
    thread_id = models.CharField(max_length=140)
    source = models.CharField(max_length=20, choices=SOURCES, default="opened")
    metadata = models.JSONField(default=dict, blank=True)
    upstream_created_at = models.DateTimeField(null=True, blank=True)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now, db_index=True)
    # The latest run's snapshot, copied here so the home page filters and sorts with one query.
    latest_run_id = models.CharField(max_length=140, blank=True)
    latest_status = models.CharField(max_length=40, blank=True, db_index=True)
    latest_assistant_id = models.CharField(max_length=140, blank=True)
    latest_model = models.CharField(max_length=200, blank=True)
    latest_error_code = models.CharField(max_length=100, blank=True)
    latest_run_created_at = models.DateTimeField(null=True, blank=True)
    watchers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="watched_threads")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "thread_id"], name="unique_thread_entry")
        ]
        indexes = [models.Index(fields=["connection", "-last_seen"])]
        verbose_name_plural = "thread entries"

    def __str__(self):
        return self.thread_id


class RunSnapshot(models.Model):
    """The last state of a run the dashboard saw, and when it saw each status begin."""

    thread = models.ForeignKey(ThreadEntry, on_delete=models.CASCADE, related_name="runs")
    connection = models.CharField(max_length=40, default=DEFAULT_CONNECTION)
    run_id = models.CharField(max_length=140)
    status = models.CharField(max_length=40, db_index=True)
    assistant_id = models.CharField(max_length=140, blank=True)
    model = models.CharField(max_length=200, blank=True)
    error_code = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    prompt_tokens = models.IntegerField(null=True, blank=True)
    completion_tokens = models.IntegerField(null=True, blank=True)
    total_tokens = models.IntegerField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # [{"status": "in_progress", "at": 1764070000.123}, …] as observed here (upstream times are whole
    # seconds).
    transitions = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "run_id"], name="unique_run_snapshot")]
        indexes = [
            models.Index(fields=["thread", "-created_at"]),
            models.Index(fields=["status", "expires_at"]),
        ]

    def __str__(self):
        return f"{self.run_id} ({self.status})"


class KnownId(models.Model):
    """Where a step or message id lives, so the go-to box can find it without its thread and run."""

    connection = models.CharField(max_length=40, default=DEFAULT_CONNECTION)
    object_id = models.CharField(max_length=140)
    thread_id = models.CharField(max_length=140)
    run_id = models.CharField(max_length=140, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["object_id", "connection"], name="unique_known_id")]

    def __str__(self):
        return self.object_id


class AuditRecord(models.Model):
    """One operator action: written before the upstream call, completed after it.

    "pending": the call is in flight, or the process died during it. "unknown": the call ended without
    saying whether the upstream acted (a timeout, a broken connection, a gateway's 5xx, an unreadable
    answer). Both are settled later from the upstream's state (see reconcile.py).
    """

    PENDING, UNKNOWN, SUCCEEDED, FAILED = "pending", "unknown", "succeeded", "failed"
    #: Outcomes not known yet: the action may have landed.
    OPEN = (PENDING, UNKNOWN)
    OUTCOMES = [
        (PENDING, "in flight (or interrupted)"),
        (UNKNOWN, "outcome unknown (may have landed)"),
        (SUCCEEDED, "succeeded"),
        (FAILED, "failed"),
    ]
    ACTIONS = [
        ("cancel_run", "cancel run"),
        ("submit_tool_outputs", "submit tool outputs"),
        ("modify_metadata", "edit metadata"),
        ("create_run", "start a run"),
        ("create_thread_and_run", "create a thread and run"),
        # The Responses shape: `run_id` holds the response's id and `thread_id` its conversation's (if any),
        # so the same constraint refuses a second action of a kind on one response while one is in flight.
        ("cancel_response", "cancel response"),
        ("answer_response", "answer a response (function outputs, approvals)"),
        ("create_response", "start a response"),
    ]

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    username = models.CharField(max_length=150)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    action = models.CharField(max_length=40, choices=ACTIONS)
    connection = models.CharField(max_length=40, default=DEFAULT_CONNECTION)
    thread_id = models.CharField(max_length=140, blank=True, db_index=True)
    run_id = models.CharField(max_length=140, blank=True, db_index=True)
    reason = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    payload_sha256 = models.CharField(max_length=64, blank=True)
    payload_size = models.IntegerField(default=0)
    outcome = models.CharField(max_length=20, choices=OUTCOMES, default=PENDING, db_index=True)
    upstream_status = models.IntegerField(null=True, blank=True)
    upstream_message = models.TextField(blank=True)
    request_id = models.CharField(max_length=200, blank=True)
    latency_ms = models.IntegerField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    #: Set when an interrupted record's outcome was inferred later from the run's state.
    reconciled_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    #: The one-time token of the form that started a run or a thread (empty for other actions): a form
    #: submitted twice finds the first record instead of starting a second run.
    form_token = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One action of a kind in flight (or of unknown outcome) per run: a double submit, or a blind
            # retry of a call that may have landed, is refused by the database itself.
            models.UniqueConstraint(
                fields=["connection", "run_id", "action"],
                condition=models.Q(outcome__in=["pending", "unknown"]) & ~models.Q(run_id=""),
                name="one_open_action_per_run",
            ),
            # One record per form: the second POST of a "Create and run" form cannot start anything.
            models.UniqueConstraint(
                fields=["form_token"], condition=~models.Q(form_token=""), name="one_record_per_form"
            ),
        ]

    def __str__(self):
        return f"{self.username} {self.action} {self.run_id or self.thread_id} ({self.outcome})"


class ConversationEntry(models.Model):
    """A conversation the dashboard has seen or been told about (OpenAI's Responses API cannot list them)."""

    SOURCES = ThreadEntry.SOURCES

    connection = models.CharField(max_length=40, default=DEFAULT_CONNECTION)
    conversation_id = models.CharField(max_length=140)
    source = models.CharField(max_length=20, choices=SOURCES, default="opened")
    metadata = models.JSONField(default=dict, blank=True)
    upstream_created_at = models.DateTimeField(null=True, blank=True)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now, db_index=True)
    # The latest response's snapshot, copied here so the index lists and sorts with one query.
    latest_response_id = models.CharField(max_length=140, blank=True)
    latest_status = models.CharField(max_length=40, blank=True, db_index=True)
    latest_model = models.CharField(max_length=200, blank=True)
    latest_error_code = models.CharField(max_length=100, blank=True)
    latest_response_created_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "conversation_id"], name="unique_conversation_entry"
            )
        ]
        indexes = [models.Index(fields=["connection", "-last_seen"])]
        verbose_name_plural = "conversation entries"

    def __str__(self):
        return self.conversation_id


class ResponseSnapshot(models.Model):
    """A response the dashboard has seen or been told about, and the last state it saw of it.

    A response that ended asking for function outputs or an approval is `waiting` until a follow-up
    response (`previous_response_id`, or a later one in its conversation) is known: the inbox lists those.
    """

    SOURCES = ThreadEntry.SOURCES

    connection = models.CharField(max_length=40, default=DEFAULT_CONNECTION)
    response_id = models.CharField(max_length=140)
    entry = models.ForeignKey(
        ConversationEntry, null=True, blank=True, on_delete=models.SET_NULL, related_name="responses"
    )
    conversation_id = models.CharField(max_length=140, blank=True, db_index=True)
    previous_response_id = models.CharField(max_length=140, blank=True, db_index=True)
    source = models.CharField(max_length=20, choices=SOURCES, default="opened")
    #: Empty until the dashboard has read the response (e.g. registered by id only).
    status = models.CharField(max_length=40, blank=True, db_index=True)
    model = models.CharField(max_length=200, blank=True)
    agent = models.CharField(max_length=200, blank=True)
    error_code = models.CharField(max_length=100, blank=True)
    background = models.BooleanField(null=True, blank=True)
    created_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    input_tokens = models.IntegerField(null=True, blank=True)
    output_tokens = models.IntegerField(null=True, blank=True)
    total_tokens = models.IntegerField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    #: [{"status": …, "at": unix time}, …] as the dashboard observed them.
    transitions = models.JSONField(default=list, blank=True)
    #: The ids of its output items (the conversation timeline groups items by the response that wrote them).
    output_ids = models.JSONField(default=list, blank=True)
    #: What it asks a person for: [{"call_id", "name", "arguments"}] and [{"id", "server_label", "name",
    #: "arguments"}].
    calls = models.JSONField(default=list, blank=True)
    approvals = models.JSONField(default=list, blank=True)
    #: The follow-up response that answered it (known to the dashboard), if any.
    answered_by = models.CharField(max_length=140, blank=True)
    waiting = models.BooleanField(default=False, db_index=True)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "response_id"], name="unique_response_snapshot")
        ]
        indexes = [models.Index(fields=["entry", "-created_at"])]

    def __str__(self):
        return f"{self.response_id} ({self.status or 'not read yet'})"


# Models of the sharing and notification packages belong to this app (and its migrations).
from .notify.models import Webhook, WebhookDelivery  # noqa: E402
from .sharing.models import HiddenMetadataKey, RedactionRule, RevealRecord  # noqa: E402

__all__ = [
    "AuditRecord",
    "Connection",
    "ConversationEntry",
    "HiddenMetadataKey",
    "KnownId",
    "RedactionRule",
    "ResponseSnapshot",
    "RevealRecord",
    "RunSnapshot",
    "ThreadEntry",
    "Webhook",
    "WebhookDelivery",
]
