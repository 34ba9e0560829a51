"""The Django admin: connections (keys write-only, encrypted), the audit log (read-only), the thread index and
the response index."""

from django import forms
from django.contrib import admin, messages
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from .connections import UNREADABLE_KEY, encrypt_key, key_status
from .models import AuditRecord, Connection, ConversationEntry, ResponseSnapshot, RunSnapshot, ThreadEntry
from .upstream.profiles import PROFILES


class ConnectionForm(forms.ModelForm):
    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted and never shown again. Leave empty to keep the current key.",
    )
    clear_api_key = forms.BooleanField(required=False, help_text="Remove the stored key.")

    class Meta:
        model = Connection
        fields = ["name", "slug", "profile", "base_url", "api_version"]

    def clean_slug(self):
        slug = self.cleaned_data["slug"]
        if slug == "default":
            raise forms.ValidationError("“default” is the connection configured from the environment.")
        return slug

    def clean(self):
        data = super().clean()
        profile = PROFILES.get(data.get("profile", ""))
        if profile and profile.needs_api_version and not data.get("api_version"):
            self.add_error("api_version", "The Azure profiles need an API version (e.g. 2024-08-01-preview).")
        return data

    def save(self, commit=True):
        connection = super().save(commit=False)
        if self.cleaned_data.get("clear_api_key"):
            connection.api_key_encrypted = ""
        elif self.cleaned_data.get("api_key"):
            connection.api_key_encrypted = encrypt_key(self.cleaned_data["api_key"])
        if commit:
            connection.save()
        return connection


KEY_STATUS = {"set": "set", "none": "not set", "unreadable": "cannot be decrypted — enter it again"}


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    form = ConnectionForm
    list_display = ["name", "slug", "profile", "base_url", "api_key_status"]
    prepopulated_fields = {"slug": ["name"]}

    @admin.display(description="API key")
    def api_key_status(self, obj):
        return KEY_STATUS[key_status(obj)]

    # The key is typed into this form: a debug page or an error report must not show it.
    @method_decorator(sensitive_post_parameters("api_key"))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "GET" and object_id:
            connection = self.get_object(request, object_id)
            if connection is not None and key_status(connection) == "unreadable":
                self.message_user(request, UNREADABLE_KEY, messages.ERROR)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def changelist_view(self, request, extra_context=None):
        unreadable = [c.name for c in Connection.objects.all() if key_status(c) == "unreadable"]
        if unreadable and request.method == "GET":
            self.message_user(
                request,
                f"The API key of {', '.join(unreadable)} cannot be decrypted (the encryption key changed): "
                "open the connection and enter its key again.",
                messages.ERROR,
            )
        return super().changelist_view(request, extra_context)


@admin.register(AuditRecord)
class AuditRecordAdmin(admin.ModelAdmin):
    """Read-only: the trail is written by the actions themselves."""

    list_display = [
        "created_at",
        "username",
        "action",
        "outcome",
        "run_id",
        "thread_id",
        "upstream_status",
        "latency_ms",
    ]
    list_filter = ["outcome", "action", "username", "connection"]
    # The form token is the mark a start put in its run's metadata (dashboard_form): searchable by it.
    search_fields = ["run_id", "thread_id", "reason", "username", "request_id", "form_token"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class RunSnapshotInline(admin.TabularInline):
    model = RunSnapshot
    fields = ["run_id", "status", "assistant_id", "model", "error_code", "created_at", "total_tokens"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    max_num = 0


@admin.register(ThreadEntry)
class ThreadEntryAdmin(admin.ModelAdmin):
    list_display = ["thread_id", "connection", "source", "latest_status", "latest_run_id", "last_seen"]
    list_filter = ["connection", "source", "latest_status"]
    search_fields = ["thread_id", "latest_run_id"]
    readonly_fields = [
        "first_seen",
        "last_seen",
        "latest_run_id",
        "latest_status",
        "latest_assistant_id",
        "latest_model",
        "latest_error_code",
        "latest_run_created_at",
    ]
    inlines = [RunSnapshotInline]


class ResponseSnapshotInline(admin.TabularInline):
    model = ResponseSnapshot
    fk_name = "entry"
    fields = ["response_id", "status", "model", "agent", "error_code", "created_at", "waiting", "answered_by"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    max_num = 0


@admin.register(ConversationEntry)
class ConversationEntryAdmin(admin.ModelAdmin):
    list_display = [
        "conversation_id",
        "connection",
        "source",
        "latest_status",
        "latest_response_id",
        "last_seen",
    ]
    list_filter = ["connection", "source", "latest_status"]
    search_fields = ["conversation_id", "latest_response_id"]
    readonly_fields = [
        "first_seen",
        "last_seen",
        "latest_response_id",
        "latest_status",
        "latest_model",
        "latest_error_code",
        "latest_response_created_at",
    ]
    inlines = [ResponseSnapshotInline]


# The sharing and notification packages register their own admin pages.
from .notify import admin as _notify_admin  # noqa: E402, F401
from .sharing import admin as _sharing_admin  # noqa: E402, F401
