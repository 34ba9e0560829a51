"""Forms: the home page's filters, adding threads by id, and (in actions) what changes a run."""

from __future__ import annotations

import re

from django import forms

from .upstream.objects import RUN_STATUSES, is_id

MAX_PASTED_IDS = 200


class IndexFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search ids and metadata")
    status = forms.ChoiceField(required=False, choices=[("", "any status")] + [(s, s.replace("_", " "))
                                                                                for s in RUN_STATUSES])
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
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "thread_abc… thread_def… (spaces, commas or lines)"}),
        max_length=50_000, label="Thread ids",
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
