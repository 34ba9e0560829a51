"""Forms of the Responses shape: the index's filters, adding ids, answering a response (function outputs and
MCP approvals, given by a follow-up response) and starting a response."""

from __future__ import annotations

import json
import re

from django import forms

from .forms import MAX_PASTED_IDS, MESSAGE_MAX_CHARS, TOOL_OUTPUT_MAX_CHARS, OneTimeForm
from .upstream.objects import is_id
from .upstream.responses_objects import RESPONSE_STATUSES, FunctionCallItem, McpApprovalRequestItem

INSTRUCTIONS_MAX_CHARS = 256_000
#: Ids a form field may be named after (upstream ids are untrusted: anything else is not answered here).
ANSWERABLE_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


class ResponseFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search ids, models and metadata")
    status = forms.ChoiceField(
        required=False,
        choices=[("", "any status"), ("waiting", "waiting for a person")]
        + [(s, s.replace("_", " ")) for s in RESPONSE_STATUSES],
    )


class AddResponsesForm(forms.Form):
    ids = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "resp_… conv_… (spaces, commas or lines)"}),
        max_length=50_000,
        label="Response and conversation ids",
    )
    connection = forms.ChoiceField(choices=())

    def __init__(self, *args, connections=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["connection"].choices = list(connections)

    def clean_ids(self):
        tokens = [t for t in re.split(r"[\s,;]+", self.cleaned_data["ids"]) if t]
        if not tokens:
            raise forms.ValidationError("Paste at least one response or conversation id.")
        if len(tokens) > MAX_PASTED_IDS:
            raise forms.ValidationError(f"At most {MAX_PASTED_IDS} ids at a time ({len(tokens)} pasted).")
        bad = [t for t in tokens if not (is_id("response", t) or is_id("conversation", t))]
        if bad:
            shown = ", ".join(b[:60] for b in bad[:5])
            raise forms.ValidationError(
                f"Not response (resp_…) or conversation (conv_…) ids: {shown}{' …' if len(bad) > 5 else ''}"
            )
        return list(dict.fromkeys(tokens))


def answerable(calls: list[FunctionCallItem], approvals: list[McpApprovalRequestItem]):
    """The calls and approval requests a form can name (their ids make field names)."""
    return (
        [c for c in calls if ANSWERABLE_ID.fullmatch(c.call_id)],
        [a for a in approvals if ANSWERABLE_ID.fullmatch(a.id)],
    )


class AnswerForm(forms.Form):
    """One output per pending function call and a decision per approval request, all given together by one
    follow-up response (as the API requires: a follow-up that leaves a call unanswered is refused)."""

    require_json = forms.BooleanField(required=False, label="Each output must be valid JSON")
    asked = forms.CharField(
        widget=forms.HiddenInput,
        error_messages={
            "required": "This form came without what it was drawn for: reload the page and submit again."
        },
    )

    def __init__(self, *args, calls, approvals, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls, self.approvals = calls, approvals
        self.fields["asked"].initial = " ".join([*(c.call_id for c in calls), *(a.id for a in approvals)])
        for call in calls:
            self.fields[f"output_{call.call_id}"] = forms.CharField(
                required=False,
                strip=False,
                label=f"Output of {call.name or call.call_id}",
                widget=forms.Textarea(attrs={"rows": 3, "placeholder": "The function's result (e.g. JSON)"}),
            )
        for request in approvals:
            self.fields[f"approve_{request.id}"] = forms.ChoiceField(
                choices=[("approve", "Approve"), ("deny", "Deny")],
                widget=forms.RadioSelect,
                label=f"Call {request.name or 'the tool'} on {request.server_label or 'the MCP server'}?",
                error_messages={"required": "Approve or deny this request."},
            )
            self.fields[f"reason_{request.id}"] = forms.CharField(
                required=False, max_length=1000, label="Reason (sent with a denial)"
            )

    def clean(self):
        data = super().clean()
        expected = [*(c.call_id for c in self.calls), *(a.id for a in self.approvals)]
        drawn = (data.get("asked") or "").split()
        if drawn and set(drawn) != set(expected):
            raise forms.ValidationError(
                "What the response asks for changed since this form was drawn: review it and submit again."
            )
        for call in self.calls:
            name = f"output_{call.call_id}"
            value = data.get(name)
            if not value:
                self.add_error(
                    name,
                    f"Enter the output of {call.name or 'this call'} ({call.call_id}): every call needs one.",
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

    def input_items(self) -> list[dict]:
        """The follow-up's input: a function_call_output per call, an mcp_approval_response per request."""
        items = [
            {
                "type": "function_call_output",
                "call_id": c.call_id,
                "output": self.cleaned_data[f"output_{c.call_id}"],
            }
            for c in self.calls
        ]
        for request in self.approvals:
            approve = self.cleaned_data[f"approve_{request.id}"] == "approve"
            answer = {"type": "mcp_approval_response", "approval_request_id": request.id, "approve": approve}
            if not approve and self.cleaned_data.get(f"reason_{request.id}"):
                answer["reason"] = self.cleaned_data[f"reason_{request.id}"]
            items.append(answer)
        return items

    def audit_payload(self) -> dict:
        """What the audit record keeps (tool outputs as `tool_outputs`, so AUDIT_HASH_TOOL_OUTPUTS hashes
        them as it does for runs)."""
        return {
            "tool_outputs": [
                {"tool_call_id": c.call_id, "output": self.cleaned_data[f"output_{c.call_id}"]}
                for c in self.calls
            ],
            "approvals": [i for i in self.input_items() if i["type"] == "mcp_approval_response"],
        }

    def call_fields(self):
        return [(c, self[f"output_{c.call_id}"]) for c in self.calls]

    def approval_fields(self):
        return [(a, self[f"approve_{a.id}"], self[f"reason_{a.id}"]) for a in self.approvals]


class StartResponseForm(OneTimeForm):
    input = forms.CharField(
        max_length=MESSAGE_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Message",
        help_text="The user message the response answers.",
    )
    model = forms.CharField(
        required=False,
        max_length=256,
        help_text="The model (or deployment) name; on the sandbox, sandbox-<script> chooses its script.",
    )
    agent = forms.CharField(
        required=False, max_length=256, help_text="Azure AI Foundry: an agent's name instead of a model."
    )
    instructions = forms.CharField(
        required=False, max_length=INSTRUCTIONS_MAX_CHARS, widget=forms.Textarea(attrs={"rows": 3})
    )

    def clean(self):
        data = super().clean()
        if not data.get("model") and not data.get("agent"):
            raise forms.ValidationError("Give a model (or, on Azure AI Foundry, an agent).")
        return data

    def fields_for_upstream(self) -> dict:
        data = self.cleaned_data
        fields = {"input": data["input"]}
        if data.get("model"):
            fields["model"] = data["model"]
        if data.get("agent"):
            fields["agent"] = {"type": "agent_reference", "name": data["agent"]}
        if data.get("instructions"):
            fields["instructions"] = data["instructions"]
        return fields
