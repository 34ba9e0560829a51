"""Actions of the Responses shape: cancel a background response, answer one (a follow-up response carrying
function outputs and MCP approvals), start a response in a conversation (or in a new one).

The same rules as the run actions (actions.py): operators only, a form page (GET shows it, POST acts),
the response re-read before acting so a form drawn for an earlier state is refused, and every action
through `audit.perform` ("outcome unknown" when the request may have landed without a usable answer,
settled later from the response's state; a second action of a kind on one response is refused while one
is open; a start form carries a one-time token). Never retried blindly. Responses started here stream
(response_relay), in the background, so they can be cancelled and their streams resumed.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages as flash
from django.shortcuts import redirect
from django.utils import timezone

from .. import audit, reconcile, response_index
from ..connections import connections_speaking, info_for
from ..forms import CancelForm
from ..links import url_for
from ..live import response_relay
from ..live.response_watch import response_watcher
from ..models import AuditRecord, ResponseSnapshot
from ..response_forms import AnswerForm, StartResponseForm, answerable
from ..upstream.responses_client import ResponsesClient
from ..upstream.responses_objects import Response
from .actions import act, action_view
from .response_pages import responses_view
from .responses import check_id, render_page

SETTLES = "the response's state"


def _response_url(client, response_id: str) -> str:
    return url_for("response", client.name, response_id=response_id)


async def _current(client: ResponsesClient, response_id: str) -> tuple[Response, ResponseSnapshot | None]:
    """The response as it is now (and what the index knows of it), its interrupted actions settled first."""
    check_id("response", response_id)
    response = await client.get_response(response_id)
    await response_index.record_responses(client.name, [response])
    snapshot = await ResponseSnapshot.objects.filter(connection=client.name, response_id=response_id).afirst()
    await settle_interrupted(client.name, response, snapshot)
    return response, snapshot


async def settle_interrupted(connection: str, response: Response, snapshot: ResponseSnapshot | None) -> None:
    """Actions on this response whose outcome is not known yet (interrupted, or no usable answer came
    back), settled from its state: as succeeded once it shows them, as failed if it still does not after
    a minute."""
    records = AuditRecord.objects.filter(
        connection=connection, run_id=response.id, outcome__in=AuditRecord.OPEN
    )
    old = timezone.now() - reconcile.SETTLE_AFTER
    async for record in records:
        if record.outcome == AuditRecord.PENDING and record.created_at >= old:
            continue  # it may still be in flight
        if record.action == "cancel_response":
            landed, evidence = response.status == "cancelled", f"the response is {response.status}"
        elif record.action == "answer_response":
            landed = bool(snapshot and snapshot.answered_by)
            evidence = "a follow-up answered it" if landed else "no follow-up is known"
        else:
            landed, evidence = True, f"the response exists ({response.status})"
        if not landed and record.created_at >= old:
            continue
        record.outcome = AuditRecord.SUCCEEDED if landed else AuditRecord.FAILED
        record.reconciled_at = timezone.now()
        record.note = f"Its outcome was not known; reconciled from the response: {evidence}."
        await record.asave()


def _page(request, template: str, client, response: Response | None, form, blocker: str = "", **extra):
    """An action's form page; a POST that did not go through answers 400, with the operator's input kept."""
    context = {
        "conn": client.name,
        "connection": info_for(client),
        "response": response,
        "response_url": _response_url(client, response.id) if response else "",
        "form": form,
        "blocker": blocker,
        **extra,
    }
    status = 400 if request.method == "POST" and (form.errors or blocker) else 200
    return render_page(request, template, context, status=status)


# --- cancel ----------------------------------------------------------------------------------------


@action_view
@responses_view
async def cancel_response(request, client: ResponsesClient, response_id):
    response, _ = await _current(client, response_id)
    form = CancelForm(request.POST or None)
    blocker = await _cancel_blocker(client, response)
    if request.method == "POST" and not blocker and form.is_valid():
        action = audit.Action(
            await request.auser(),
            "cancel_response",
            client.name,
            thread_id=response.conversation_id,
            run_id=response_id,
            reason=form.cleaned_data["reason"],
            payload={"status_before": response.status},
        )
        results = []

        async def cancel(record):
            result = await client.cancel_response(response_id)
            results.append(result)
            request_id = result.info.request_id if result.info else None
            return audit.Done(None, request_id, f"the response is {result.status.replace('_', ' ')}")

        record = await act(
            form, action, cancel, refused="The upstream did not cancel the response", settles=SETTLES
        )
        if record is not None:
            await response_index.record_responses(client.name, results)
            response_watcher.touch_response(client.name, response_id)
            flash.success(request, f"Cancel sent: {record.upstream_message}.")
            return redirect(_response_url(client, response_id))
    return _page(request, "runs_ui/actions/cancel_response.html", client, response, form, blocker)


async def _cancel_blocker(client, response: Response) -> str:
    if response.is_terminal:
        return (
            f"This response already ended ({response.status.replace('_', ' ')}): there is nothing to cancel."
        )
    if response.background is False:
        return "This response was not created in the background: the API cannot cancel it."
    if open_ := await _open_blocker(client, response.id, "cancel_response"):
        return open_
    done = await AuditRecord.objects.filter(
        connection=client.name, run_id=response.id, action="cancel_response", outcome=AuditRecord.SUCCEEDED
    ).afirst()
    if done:
        return f"A cancel was already sent by {done.username}; the response has not ended yet."
    return ""


# --- answer: function outputs and approvals, by a follow-up response -------------------------------


@action_view
@responses_view
async def answer_response(request, client: ResponsesClient, response_id):
    response, snapshot = await _current(client, response_id)
    calls, approvals = answerable(response.function_calls, response.approval_requests)
    form = AnswerForm(request.POST or None, calls=calls, approvals=approvals)
    blocker = await _answer_blocker(client, response, snapshot, calls, approvals)
    if request.method == "POST" and not blocker and form.is_valid():
        follow_up, blocker = await _answer(request, client, response, form)
        if follow_up is not None:
            flash.success(
                request,
                f"Answered: {follow_up.id} carries the answers and continues here, live.",
            )
            return redirect(_response_url(client, follow_up.id))
    return _page(request, "runs_ui/actions/answer_response.html", client, response, form, blocker)


async def _answer_blocker(client, response: Response, snapshot, calls, approvals) -> str:
    if snapshot is not None and snapshot.answered_by:
        return f"This response was already answered, by {snapshot.answered_by}."
    if not response.asks_a_person:
        return (
            f"The response is {response.status.replace('_', ' ')}: it is not waiting for function outputs "
            "or approvals."
        )
    if len(calls) + len(approvals) < len(response.function_calls) + len(response.approval_requests):
        return (
            "Some of what it asks for has an id this dashboard cannot answer in a form; answer it from code."
        )
    if open_ := await _open_blocker(client, response.id, "answer_response"):
        return open_
    sent = (
        await AuditRecord.objects.filter(connection=client.name, run_id=response.id, action="answer_response")
        .exclude(outcome=AuditRecord.FAILED)
        .afirst()
    )
    if sent is not None:
        return f"Answers were already sent by {sent.username} ({sent.get_outcome_display()})."
    return ""


async def _answer(request, client: ResponsesClient, response: Response, form: AnswerForm):
    """Start the follow-up that carries the answers; returns it, or None and why not."""
    fields = {"input": form.input_items(), **_continuing(response)}
    action = audit.Action(
        await request.auser(),
        "answer_response",
        client.name,
        thread_id=response.conversation_id,
        run_id=response.id,
        payload=form.audit_payload(),
    )
    follow_ups = []

    async def answer(record):
        started = await response_relay.start(client.name, client, fields)
        follow_ups.append(started.response)
        return audit.Done(None, started.request_id, f"answered by {started.response.id} (streamed)")

    record = await act(form, action, answer, refused="The upstream refused the answers", settles=SETTLES)
    if record is None:
        return None, ""
    follow_up = follow_ups[0]
    await response_index.record_responses(client.name, [follow_up], "created")
    await response_index.mark_answered(client.name, response.id, follow_up.id)
    return follow_up, ""


async def _open_blocker(client, response_id: str, action: str) -> str:
    """Why the action cannot be sent now: the same one is in flight, or its outcome is not known yet."""
    record = await audit.open_record(client.name, response_id, action)
    if record is None:
        return ""
    if record.outcome == AuditRecord.PENDING:
        return f"The same action on this response is being sent (by {record.username})."
    settles_by = (record.created_at + reconcile.SETTLE_AFTER + timedelta(seconds=1)).strftime("%H:%M:%S UTC")
    return (
        f"An earlier one by {record.username} may have reached the upstream, which gave no usable answer "
        f"({record.upstream_message[:300]}): its outcome is unknown until the response's state settles it "
        f"(by {settles_by} at the latest). Until then it is not sent again."
    )


def _continuing(response: Response) -> dict:
    """How a follow-up continues a response: in its conversation, else after it; by the same model (or
    Azure AI Foundry agent)."""
    fields = {}
    if response.conversation_id:
        fields["conversation"] = response.conversation_id
    else:
        fields["previous_response_id"] = response.id
    agent = response.raw.get("agent")
    if isinstance(agent, dict) and isinstance(agent.get("name"), str):
        fields["agent"] = {k: v for k, v in agent.items() if k in ("type", "name", "version")}
    elif response.model:
        fields["model"] = response.model
    return fields


# --- start a response --------------------------------------------------------------------------------


@action_view
@responses_view
async def create_response(request, client: ResponsesClient, conversation_id=None):
    """A new response in a conversation (or, without one, in a new conversation)."""
    if conversation_id is not None:
        check_id("conversation", conversation_id)
    form = StartResponseForm(
        request.POST or None, initial={"model": await _usual_model(client, conversation_id)}
    )
    if request.method == "POST" and form.is_valid():
        started = await _start(request, client, form, conversation_id)
        if started is not None:
            return started
    context = {
        "conversation_id": conversation_id or "",
        # Outside a conversation it starts on any connection of the Responses shape.
        "connections": [] if conversation_id else await connections_speaking("responses"),
    }
    return _page(request, "runs_ui/actions/create_response.html", client, None, form, **context)


async def _usual_model(client, conversation_id: str | None) -> str:
    """What the form offers: the model of the conversation's latest response (the sandbox's plain script
    on the sandbox), else nothing."""
    known = ResponseSnapshot.objects.filter(connection=client.name).exclude(model="")
    if conversation_id:
        known = known.filter(conversation_id=conversation_id)
    latest = await known.order_by("-created_at").afirst()
    if latest is not None:
        return latest.model
    return "sandbox-answer" if client.profile.name == "sandbox" else ""


async def _start(request, client: ResponsesClient, form: StartResponseForm, conversation_id: str | None):
    """Start the response (in a new conversation when none is given); None with what happened added to
    the form. Submitted twice, the form starts one response: the second submission lands on it."""
    fields = form.fields_for_upstream()
    token = form.cleaned_data["form_token"]
    fields["metadata"] = {**fields.get("metadata", {}), reconcile.MARK: token}
    action = audit.Action(
        await request.auser(),
        "create_response",
        client.name,
        thread_id=conversation_id or "",
        payload=fields,
        form_token=token,
    )
    started = []

    async def start(record):
        conversation = conversation_id
        if conversation is None:
            made = await client.create_conversation(metadata={"title": form.cleaned_data["input"][:64]})
            conversation = made.id
            await audit.note_thread(record, conversation)
            await response_index.record_conversation(client.name, conversation, "created", made)
        result = await response_relay.start(client.name, client, {**fields, "conversation": conversation})
        started.append(result.response)
        record.run_id = result.response.id
        return audit.Done(None, result.request_id, f"started {result.response.id}")

    try:
        record = await act(
            form, action, start, refused="The upstream did not start the response", settles=SETTLES
        )
    except audit.FormAlreadySubmitted as earlier:
        record = await audit.settled(earlier.record, within=30)
        if record.run_id:
            return redirect(_response_url(client, record.run_id))
        form.add_error(
            None,
            f"This form was already sent ({record.get_outcome_display()}): "
            "look at the conversation before starting again.",
        )
        form.renew_token()
        return None
    if record is None:
        form.renew_token()
        return None
    await response_index.record_responses(client.name, started, "created")
    return redirect(_response_url(client, started[0].id))
