"""Forms: the home page's filters, adding threads by id, and (in actions) what changes a run."""

from __future__ import annotations

import json
import re
import secrets

from django import forms

from .upstream.objects import RUN_STATUSES, is_id

MAX_PASTED_IDS = 200


class IndexFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search ids and metadata")
    status = forms.ChoiceField(
        required=False, choices=[("", "any status")] + [(s, s.replace("_", " ")) for s in RUN_STATUSES]
    )
    assistant = forms.CharField(required=False, max_length=140)
    model = forms.CharField(required=False, max_length=200)
    error = forms.CharField(required=False, max_length=100, help_text="an error code, or “any”")
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean_assistant(self):
        value = self.cleaned_data["assistant"].strip()
        if value and not is_id("assistant", value):
            raise forms.ValidationError("Not an assistant id (asst_…).")
        return value

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise forms.ValidationError("“Since” is after “until”.")
        return data


class AddThreadsForm(forms.Form):
    ids = forms.CharField(
        widget=forms.Textarea(
            attrs={"rows": 3, "placeholder": "thread_abc… thread_def… (spaces, commas or lines)"}
        ),
        max_length=50_000,
        label="Thread ids",
    )

    def clean_ids(self):
        tokens = [t for t in re.split(r"[\s,;]+", self.cleaned_data["ids"]) if t]
        if not tokens:
            raise forms.ValidationError("Paste at least one thread id.")
        if len(tokens) > MAX_PASTED_IDS:
            raise forms.ValidationError(f"At most {MAX_PASTED_IDS} ids at a time ({len(tokens)} pasted).")
        bad = [t for t in tokens if not is_id("thread", t)]
        if bad:
            shown = ", ".join(b[:60] for b in bad[:5])
            raise forms.ValidationError(f"Not thread ids: {shown}{' …' if len(bad) > 5 else ''}")
        return list(dict.fromkeys(tokens))  # keep order, drop repeats


# --- actions ---------------------------------------------------------------------------------------

#: The API's limits on metadata.
METADATA_MAX_PAIRS, METADATA_MAX_KEY, METADATA_MAX_VALUE = 16, 64, 512
#: A tool output larger than this is refused here, with a clear message, before the upstream sees it.
TOOL_OUTPUT_MAX_CHARS = 512 * 1024
MESSAGE_MAX_CHARS = 256_000
INSTRUCTIONS_MAX_CHARS = 256_000


class CancelForm(forms.Form):
    reason = forms.CharField(
        max_length=1000,
        widget=forms.Textarea(
            attrs={"rows": 2, "placeholder": "Why this run is being stopped (kept in the audit log)"}
        ),
        error_messages={"required": "Give a reason: it is kept in the audit trail."},
    )


class ToolOutputsForm(forms.Form):
    """One output per pending function call; all are submitted together, as the API requires."""

    require_json = forms.BooleanField(required=False, label="Each output must be valid JSON")
    call_ids = forms.CharField(
        widget=forms.HiddenInput,
        # Hidden, so its error is shown above the form (see _tool_outputs_form.html).
        error_messages={
            "required": "This form came without the calls it was drawn for: reload the page and submit again."
        },
    )

    def __init__(self, *args, calls, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = calls
        self.fields["call_ids"].initial = " ".join(c.id for c in calls)
        for call in calls:
            self.fields[f"output_{call.id}"] = forms.CharField(
                required=False,
                strip=False,
                label=call.name or call.id,
                widget=forms.Textarea(attrs={"rows": 3, "placeholder": "The function's result (e.g. JSON)"}),
            )

    def clean(self):
        data = super().clean()
        expected = {c.id for c in self.calls}
        drawn = set((data.get("call_ids") or "").split())
        if drawn and drawn != expected:
            raise forms.ValidationError(
                "The run's pending calls changed since this form was drawn: "
                "review the calls below and submit again."
            )
        extra = sorted(
            key.removeprefix("output_")
            for key in self.data
            if key.startswith("output_") and key.removeprefix("output_") not in expected
        )
        if extra:
            raise forms.ValidationError(
                f"Outputs for calls the run is not waiting for: {', '.join(e[:60] for e in extra[:5])}."
            )
        for call in self.calls:
            name = f"output_{call.id}"
            value = data.get(name)
            if name not in self.data or not value:
                self.add_error(
                    name,
                    f"Enter the output of {call.name or 'this call'} ({call.id}): "
                    "every pending call needs one.",
                )
            elif len(value) > TOOL_OUTPUT_MAX_CHARS:
                self.add_error(
                    name, f"This output is {len(value):,} characters; the limit is {TOOL_OUTPUT_MAX_CHARS:,}."
                )
            elif data.get("require_json"):
                try:
                    json.loads(value)
                except ValueError as exc:
                    self.add_error(name, f"Not valid JSON: {exc}.")
        return data

    def outputs(self) -> list[dict]:
        return [{"tool_call_id": c.id, "output": self.cleaned_data[f"output_{c.id}"]} for c in self.calls]

    def bound_fields(self):
        """(call, field) pairs, for drawing each call's arguments beside its output box."""
        return [(c, self[f"output_{c.id}"]) for c in self.calls]


class MetadataForm(forms.Form):
    """Key/value rows `key_N`/`value_N`; blank rows are ignored; the API's limits are enforced here."""

    ROWS = METADATA_MAX_PAIRS + 4

    def __init__(self, *args, metadata: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        pairs = list((metadata or {}).items())
        for i in range(max(self.ROWS, len(pairs) + 2)):
            key, value = pairs[i] if i < len(pairs) else ("", "")
            self.fields[f"key_{i}"] = forms.CharField(
                required=False, strip=False, initial=key, max_length=10_000
            )
            self.fields[f"value_{i}"] = forms.CharField(
                required=False, strip=False, initial=value, max_length=100_000
            )
        self.row_count = max(self.ROWS, len(pairs) + 2)

    def clean(self):
        data = super().clean()
        pairs, errors = {}, []
        for i in range(self.row_count):
            key, value = data.get(f"key_{i}") or "", data.get(f"value_{i}") or ""
            if not key and not value:
                continue
            if not key:
                self.add_error(f"key_{i}", "A value needs a key.")
            elif len(key) > METADATA_MAX_KEY:
                self.add_error(
                    f"key_{i}", f"Keys are at most {METADATA_MAX_KEY} characters ({len(key)} given)."
                )
            elif key in pairs:
                self.add_error(f"key_{i}", f"“{key[:64]}” appears twice.")
            if len(value) > METADATA_MAX_VALUE:
                self.add_error(
                    f"value_{i}", f"Values are at most {METADATA_MAX_VALUE} characters ({len(value)} given)."
                )
            if key:
                pairs[key] = value
        if len(pairs) > METADATA_MAX_PAIRS:
            errors.append(f"At most {METADATA_MAX_PAIRS} pairs ({len(pairs)} given).")
        if errors:
            raise forms.ValidationError(errors)
        data["metadata"] = pairs
        return data

    def rows(self):
        return [(self[f"key_{i}"], self[f"value_{i}"]) for i in range(self.row_count)]


#: What a form's one-time token looks like (see `new_form_token`).
FORM_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def new_form_token() -> str:
    return secrets.token_urlsafe(24)


class OneTimeForm(forms.Form):
    """A form that starts something, with a one-time token: submitted twice (a double click, a resent
    POST), it is refused by the database the second time, and shows what the first did."""

    form_token = forms.CharField(
        widget=forms.HiddenInput,
        max_length=64,
        error_messages={
            "required": "This form came without its one-time token: reload the page and submit again."
        },
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Every drawing of an empty form gets a token of its own (never one from a prefill query).
        self.initial["form_token"] = new_form_token()

    def clean_form_token(self):
        value = self.cleaned_data["form_token"]
        if not FORM_TOKEN.fullmatch(value):
            raise forms.ValidationError(
                "This form's one-time token is not one this dashboard draws: "
                "reload the page and submit again."
            )
        return value

    def renew_token(self) -> None:
        """A fresh token for the form drawn again after its token was used, keeping what was typed."""
        self.data = self.data.copy()
        self.data["form_token"] = new_form_token()
        self._bound_fields_cache.pop("form_token", None)  # it read the old token while cleaning


class _RunOptions(OneTimeForm):
    """What starting a run takes (and the form's one-time token)."""

    assistant_id = forms.CharField(max_length=140, label="Assistant")
    model = forms.CharField(
        required=False, max_length=256, help_text="Leave empty to use the assistant's model."
    )
    instructions = forms.CharField(
        required=False,
        max_length=INSTRUCTIONS_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Leave empty to use the assistant's instructions.",
    )

    def __init__(self, *args, assistants=(), **kwargs):
        super().__init__(*args, **kwargs)
        if assistants:
            choices = [("", "Choose an assistant")] + [
                (a.id, f"{a.label} ({a.model})") for a in assistants if a.id
            ]
            self.fields["assistant_id"].widget = forms.Select(choices=choices)

    def clean_assistant_id(self):
        value = self.cleaned_data["assistant_id"].strip()
        if not is_id("assistant", value):
            raise forms.ValidationError("Choose an assistant (its id starts with asst_).")
        return value

    def options(self) -> dict:
        data = self.cleaned_data
        return {k: data[k] for k in ("model", "instructions") if data.get(k)}


class StartRunForm(_RunOptions):
    message = forms.CharField(
        required=False,
        max_length=MESSAGE_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Optional: a user message added to the thread before the run.",
    )


class CreateThreadAndRunForm(_RunOptions):
    message = forms.CharField(
        max_length=MESSAGE_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="The thread's first user message.",
    )
