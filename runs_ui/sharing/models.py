"""What an admin configures about redaction (rules, hidden metadata keys), and the audit of reveals."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from .builtin_rules import BUILTINS
from .custom_rules import PatternRefused, check_label, check_pattern


class RedactionRule(models.Model):
    """A built-in rule's switches (one row per built-in, made by the migration), or an admin's pattern.

    A built-in without a row counts as on for shared views and off for viewers: a deployment that never
    opens this page still redacts what it shares.
    """

    name = models.CharField(max_length=100)
    builtin = models.CharField(
        max_length=20,
        blank=True,
        default="",
        choices=[("", "(an admin's pattern)"), *BUILTINS.items()],
        help_text="Set for the built-in rules; their patterns are part of the dashboard.",
    )
    pattern = models.TextField(
        blank=True,
        help_text="A regular expression (Python syntax, the `regex` module). Everything it matches is "
        "replaced by the label. Checked when saved: it must not match empty text nor take long on hostile "
        "text.",
    )
    label = models.CharField(
        max_length=31,
        blank=True,
        help_text="What a redacted value shows, in brackets: “customer-id” shows [customer-id].",
    )
    applies_to_shares = models.BooleanField(
        "on shared views",
        default=True,
        help_text="Shared links' pages, their exports and their live updates.",
    )
    applies_to_viewers = models.BooleanField(
        "for viewers", default=False, help_text="Also on normal pages, for users with the viewer role."
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-builtin", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["builtin"], condition=~models.Q(builtin=""), name="one_row_per_builtin_rule"
            )
        ]

    def __str__(self):
        return self.name

    def clean(self):
        if self.builtin:
            self.pattern, self.label = "", ""
            return
        errors = {}
        try:
            check_pattern(self.pattern)
        except PatternRefused as exc:
            errors["pattern"] = str(exc)
        try:
            check_label(self.label)
        except PatternRefused as exc:
            errors["label"] = str(exc)
        if errors:
            raise ValidationError(errors)


class HiddenMetadataKey(models.Model):
    """A metadata key whose entry is left out wherever redaction applies (any object's `metadata`)."""

    key = models.CharField(
        max_length=64,
        unique=True,
        help_text="Compared without case; * and ? are wildcards (customer_* hides customer_email, …).",
    )
    applies_to_shares = models.BooleanField("on shared views", default=True)
    applies_to_viewers = models.BooleanField("for viewers", default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        verbose_name = "hidden metadata key"

    def __str__(self):
        return self.key


class RevealRecord(models.Model):
    """A person saw a redacted value in full: who, when, where. The value itself is never stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    username = models.CharField(max_length=150)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    connection = models.CharField(max_length=40)
    thread_id = models.CharField(max_length=140, blank=True)
    run_id = models.CharField(max_length=140, blank=True, db_index=True)
    object_id = models.CharField(max_length=140)
    path = models.CharField(max_length=500, help_text="Where in the object's JSON the value is.")
    label = models.CharField(max_length=31)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.username} revealed a [{self.label}] in {self.object_id}"
