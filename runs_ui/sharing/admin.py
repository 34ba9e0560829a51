"""The admin of redaction: rules (built-in switches and patterns) with a test box, hidden keys, reveals."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.template.response import TemplateResponse
from django.urls import path, reverse

from .models import HiddenMetadataKey, RedactionRule, RevealRecord
from .rules import AUDIENCES, SHARED, redactor_for_sync

#: The test box redacts what an admin pastes, not a page: keep it to what a form should carry.
TEST_BOX_CHARS = 100_000


class TestBoxForm(forms.Form):
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 10, "cols": 100}),
        max_length=TEST_BOX_CHARS,
        help_text="Paste text (or JSON) as an upstream would send it.",
    )
    audience = forms.ChoiceField(
        choices=[(SHARED, "shared views"), ("viewer", "the viewer role on normal pages")], initial=SHARED
    )


@admin.register(RedactionRule)
class RedactionRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "label_shown", "applies_to_shares", "applies_to_viewers", "updated_at"]
    list_editable = ["applies_to_shares", "applies_to_viewers"]
    list_filter = ["applies_to_shares", "applies_to_viewers"]
    change_list_template = "admin/runs_ui/redactionrule/change_list.html"

    def get_fields(self, request, obj=None):
        if obj is not None and obj.builtin:
            return ["name", "builtin", "applies_to_shares", "applies_to_viewers"]
        return ["name", "pattern", "label", "applies_to_shares", "applies_to_viewers"]

    def get_readonly_fields(self, request, obj=None):
        return ["builtin"] if obj is not None and obj.builtin else []

    def has_delete_permission(self, request, obj=None):
        # A built-in's row holds its switches; deleting it would only reset them, silently.
        return super().has_delete_permission(request, obj) and not (obj is not None and obj.builtin)

    @admin.display(description="kind")
    def kind(self, obj):
        return "built-in" if obj.builtin else "pattern"

    @admin.display(description="shows")
    def label_shown(self, obj):
        if obj.builtin:
            return {"secret": "[token] [api-key] [secret]"}.get(obj.builtin, f"[{obj.builtin}]")
        return f"[{obj.label}]"

    def get_urls(self):
        return [
            path("test/", self.admin_site.admin_view(self.test_box), name="runs_ui_redactionrule_test"),
            *super().get_urls(),
        ]

    def test_box(self, request):
        """Paste text, see it as the current rules redact it (saved rules only)."""
        if not self.has_view_permission(request):
            raise admin.sites.PermissionDenied
        form = TestBoxForm(request.POST or None)
        result = None
        if request.method == "POST" and form.is_valid():
            audience = form.cleaned_data["audience"]
            result = redactor_for_sync(audience if audience in AUDIENCES else SHARED).text(
                form.cleaned_data["text"]
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Test the redaction rules",
            "form": form,
            "result": result,
            "changelist_url": reverse("admin:runs_ui_redactionrule_changelist"),
        }
        return TemplateResponse(request, "admin/runs_ui/redactionrule/test_box.html", context)


@admin.register(HiddenMetadataKey)
class HiddenMetadataKeyAdmin(admin.ModelAdmin):
    list_display = ["key", "applies_to_shares", "applies_to_viewers", "updated_at"]
    list_editable = ["applies_to_shares", "applies_to_viewers"]


@admin.register(RevealRecord)
class RevealRecordAdmin(admin.ModelAdmin):
    """Read-only, like the audit log: written by the reveal itself."""

    list_display = ["created_at", "username", "label", "object_id", "path", "run_id", "connection"]
    list_filter = ["label", "username", "connection"]
    search_fields = ["username", "run_id", "thread_id", "object_id", "reason"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
