"""Database state of the sandbox: the Assistants objects and the Responses objects, with their stream events.

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


# --- Responses + Conversations ----------------------------------------------------------------------

ACTIVE_RESPONSE_STATUSES = ("queued", "in_progress")
TERMINAL_RESPONSE_STATUSES = ("completed", "failed", "incomplete", "cancelled")


def new_hex_id(prefix: str) -> str:
    """Ids of the Responses family look like the service's: a prefix and 48 hex digits."""
    return prefix + secrets.token_hex(24)


class Conversation(models.Model):
    seq = models.BigAutoField(primary_key=True)
    public_id = models.CharField(max_length=64, unique=True)
    created_at = models.BigIntegerField()
    metadata = models.JSONField(default=dict)

    class Meta:
        indexes = [models.Index(fields=["created_at", "seq"], name="sandbox_conv_order")]

    def __str__(self):
        return self.public_id


class Response(models.Model):
    seq = models.BigAutoField(primary_key=True)
    public_id = models.CharField(max_length=64, unique=True)
    created_at = models.BigIntegerField()
    status = models.CharField(max_length=20)
    background = models.BooleanField(default=False)
    # store=false: the response runs but cannot be retrieved, listed or continued.
    stored = models.BooleanField(default=True)
    # Any name a client sends (the sandbox has no list of models).
    model = models.TextField()
    conversation = models.ForeignKey(
        Conversation, null=True, on_delete=models.SET_NULL, related_name="responses"
    )
    # The conversation's id as the wire shows it, kept when the conversation is deleted.
    conversation_ref = models.CharField(max_length=64, null=True)  # noqa: DJ001
    previous_response_ref = models.CharField(max_length=64, null=True)  # noqa: DJ001
    # Azure AI Foundry's agent (name, version), by which its list endpoints filter.
    agent_name = models.CharField(max_length=64, null=True)  # noqa: DJ001
    agent_version = models.CharField(max_length=64, null=True)  # noqa: DJ001
    metadata = models.JSONField(default=dict)
    # The creation parameters the response echoes (instructions, tools, temperature, text, include, …).
    params = models.JSONField(default=dict)
    error = models.JSONField(null=True)
    incomplete_details = models.JSONField(null=True)
    usage = models.JSONField(null=True)
    completed_at = models.BigIntegerField(null=True)

    # The clock (responses_engine.py). Times are Unix seconds as floats.
    script = models.CharField(max_length=32)
    speed = models.FloatField()
    started_clock = models.FloatField()
    cursor = models.IntegerField(default=0)
    next_due = models.FloatField(null=True)
    state = models.JSONField(default=dict)
    record_events = models.BooleanField(default=False)
    next_sequence_number = models.IntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["created_at", "seq"], name="sandbox_resp_order"),
            # The list filters of Azure AI Foundry (by conversation, by agent), newest first.
            models.Index(fields=["conversation_ref", "created_at", "seq"], name="sandbox_resp_conv_order"),
            models.Index(fields=["agent_name", "created_at", "seq"], name="sandbox_resp_agent_order"),
        ]

    def __str__(self):
        return self.public_id

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_RESPONSE_STATUSES


class Item(models.Model):
    """A conversation item, a response's input or one of its outputs (often several of these at once)."""

    seq = models.BigAutoField(primary_key=True)
    public_id = models.CharField(max_length=64, unique=True)
    created_at = models.BigIntegerField()
    item_type = models.CharField(max_length=40)
    # The item as the wire shows it (without the fields `include` leaves out, which wire code strips).
    data = models.JSONField(default=dict)
    response = models.ForeignKey(Response, null=True, on_delete=models.SET_NULL, related_name="output_items")
    output_index = models.IntegerField(null=True)
    conversation = models.ForeignKey(Conversation, null=True, on_delete=models.SET_NULL, related_name="items")

    class Meta:
        indexes = [
            models.Index(fields=["conversation", "created_at", "seq"], name="sandbox_item_conv_order"),
            models.Index(fields=["response", "output_index"], name="sandbox_item_output_order"),
        ]

    def __str__(self):
        return self.public_id


class ResponseInput(models.Model):
    """The items a response was given as input, in the order given."""

    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="inputs")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="+")
    position = models.IntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["response", "position"], name="sandbox_resp_input_position")
        ]

    def __str__(self):
        return f"{self.response_id}[{self.position}]"


class ResponseEvent(models.Model):
    """A stream event with its sequence number, kept so a broken stream resumes after `starting_after`."""

    seq = models.BigAutoField(primary_key=True)
    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="events")
    sequence_number = models.IntegerField()
    event = models.CharField(max_length=80)
    data = models.TextField()

    class Meta:
        indexes = [models.Index(fields=["response", "sequence_number"], name="sandbox_resp_event_order")]

    def __str__(self):
        return f"{self.event} #{self.sequence_number}"
