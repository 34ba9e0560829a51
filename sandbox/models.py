"""Database state of the sandbox: assistants, threads, messages, runs, run steps, files and stream events.

Every object keeps its wire id (`public_id`) apart from its primary key `seq`, an autoincrement that
breaks ties between objects created in the same second, so list order (created_at, seq) is total.
"""

import secrets
import string

from django.db import models

_ID_ALPHABET = string.ascii_letters + string.digits

ACTIVE_RUN_STATUSES = ("queued", "in_progress", "requires_action", "cancelling")
TERMINAL_RUN_STATUSES = ("completed", "failed", "cancelled", "expired", "incomplete")


def new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


class Assistant(models.Model):
    seq = models.BigAutoField(primary_key=True)
    public_id = models.CharField(max_length=64, unique=True)
    created_at = models.BigIntegerField()
    # null and "" differ on the wire (the spec's name, description and instructions are nullable).
    name = models.CharField(max_length=256, null=True)  # noqa: DJ001
    description = models.CharField(max_length=512, null=True)  # noqa: DJ001
    model = models.CharField(max_length=256)
    instructions = models.TextField(null=True)  # noqa: DJ001
    tools = models.JSONField(default=list)
    tool_resources = models.JSONField(null=True)
    metadata = models.JSONField(default=dict)
    temperature = models.FloatField(null=True)
    top_p = models.FloatField(null=True)
    response_format = models.JSONField(null=True)

    class Meta:
        indexes = [models.Index(fields=["created_at", "seq"], name="sandbox_asst_order")]

    def __str__(self):
        return self.public_id


class Thread(models.Model):
    seq = models.BigAutoField(primary_key=True)
    public_id = models.CharField(max_length=64, unique=True)
    created_at = models.BigIntegerField()
    tool_resources = models.JSONField(null=True)
    metadata = models.JSONField(default=dict)

    class Meta:
        indexes = [models.Index(fields=["created_at", "seq"], name="sandbox_thread_order")]

    def __str__(self):
        return self.public_id


class Run(models.Model):
    seq = models.BigAutoField(primary_key=True)
    public_id = models.CharField(max_length=64, unique=True)
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="runs")
    assistant = models.ForeignKey(Assistant, on_delete=models.CASCADE, related_name="runs")
    created_at = models.BigIntegerField()
    status = models.CharField(max_length=20, default="queued")
    required_action = models.JSONField(null=True)
    last_error = models.JSONField(null=True)
    expires_at = models.BigIntegerField(null=True)
    started_at = models.BigIntegerField(null=True)
    cancelled_at = models.BigIntegerField(null=True)
    failed_at = models.BigIntegerField(null=True)
    completed_at = models.BigIntegerField(null=True)
    incomplete_details = models.JSONField(null=True)
    model = models.CharField(max_length=256)
    instructions = models.TextField(null=True)  # noqa: DJ001 - a run's instructions may be null
    tools = models.JSONField(default=list)
    metadata = models.JSONField(default=dict)
    usage = models.JSONField(null=True)
    temperature = models.FloatField(null=True)
    top_p = models.FloatField(null=True)
    max_prompt_tokens = models.IntegerField(null=True)
    max_completion_tokens = models.IntegerField(null=True)
    truncation_strategy = models.JSONField(null=True)
    tool_choice = models.JSONField(null=True)
    parallel_tool_calls = models.BooleanField(default=True)
    response_format = models.JSONField(null=True)

    # The clock (engine.py). Times are Unix seconds as floats; the wire shows them as integers.
    script = models.CharField(max_length=32)
    speed = models.FloatField()
    phase = models.IntegerField(default=0)
    phase_started = models.FloatField()
    cursor = models.IntegerField(default=0)
    next_due = models.FloatField(null=True)
    expires_clock = models.FloatField(null=True)
    cancel_due = models.FloatField(null=True)
    state = models.JSONField(default=dict)
    include_search_content = models.BooleanField(default=False)
    record_events = models.BooleanField(default=False)
    current_step = models.ForeignKey("RunStep", null=True, on_delete=models.SET_NULL, related_name="+")
    current_message = models.ForeignKey("Message", null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        indexes = [
            models.Index(fields=["thread", "created_at", "seq"], name="sandbox_run_order"),
            models.Index(fields=["thread", "status"], name="sandbox_run_status"),
        ]

    def __str__(self):
        return self.public_id

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_RUN_STATUSES


class Message(models.Model):
    seq = models.BigAutoField(primary_key=True)
    public_id = models.CharField(max_length=64, unique=True)
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="messages")
    run = models.ForeignKey(Run, null=True, on_delete=models.CASCADE, related_name="messages")
    assistant = models.ForeignKey(Assistant, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.BigIntegerField()
    status = models.CharField(max_length=20, default="completed")
    incomplete_details = models.JSONField(null=True)
    completed_at = models.BigIntegerField(null=True)
    incomplete_at = models.BigIntegerField(null=True)
    role = models.CharField(max_length=20)
    content = models.JSONField(default=list)
    attachments = models.JSONField(null=True)
    metadata = models.JSONField(default=dict)

    class Meta:
        indexes = [
            models.Index(fields=["thread", "created_at", "seq"], name="sandbox_msg_order"),
            models.Index(fields=["run", "created_at", "seq"], name="sandbox_msg_run_order"),
        ]

    def __str__(self):
        return self.public_id


class RunStep(models.Model):
    seq = models.BigAutoField(primary_key=True)
    public_id = models.CharField(max_length=64, unique=True)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps")
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="+")
    assistant = models.ForeignKey(Assistant, on_delete=models.CASCADE, related_name="+")
    created_at = models.BigIntegerField()
    step_type = models.CharField(max_length=32)
    status = models.CharField(max_length=20, default="in_progress")
    details = models.JSONField(default=dict)
    last_error = models.JSONField(null=True)
    expired_at = models.BigIntegerField(null=True)
    cancelled_at = models.BigIntegerField(null=True)
    failed_at = models.BigIntegerField(null=True)
    completed_at = models.BigIntegerField(null=True)
    usage = models.JSONField(null=True)
    metadata = models.JSONField(default=dict)

    class Meta:
        indexes = [models.Index(fields=["run", "created_at", "seq"], name="sandbox_step_order")]

    def __str__(self):
        return self.public_id


class File(models.Model):
    """A small stored blob: a chart the code interpreter drew, or a document file search cites."""

    seq = models.BigAutoField(primary_key=True)
    public_id = models.CharField(max_length=64, unique=True)
    created_at = models.BigIntegerField()
    filename = models.CharField(max_length=256)
    purpose = models.CharField(max_length=32)
    media_type = models.CharField(max_length=100)
    data = models.BinaryField()

    def __str__(self):
        return self.public_id


class RunEvent(models.Model):
    """A stream event recorded as it happened, so an SSE response replays transitions in order
    even when another process applied them."""

    seq = models.BigAutoField(primary_key=True)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events")
    event = models.CharField(max_length=64)
    data = models.TextField()

    class Meta:
        indexes = [models.Index(fields=["run", "seq"], name="sandbox_event_order")]

    def __str__(self):
        return f"{self.event} #{self.seq}"
