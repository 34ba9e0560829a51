"""Actions of the Responses shape: cancel a background response, answer one (a follow-up response carrying
function outputs and MCP approvals), start a response in a conversation (or in a new one).

The same rules as the run actions (actions.py): operators only, a form page (GET shows it, POST acts),
the response re-read before acting so a form drawn for an earlier state is refused, an audit record
written before the upstream call and completed after (a second action of a kind on one response is
refused by the database while one is in flight), never retried blindly. Responses started here stream
(response_relay), in the background, so they can be cancelled and their streams resumed.
"""

from __future__ import annotations

from django.contrib import messages as flash
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from .. import audit, response_index
from ..connections import connections_speaking, info_for
from ..forms import CancelForm
from ..links import url_for
from ..live import response_relay
from ..live.response_watch import response_watcher
from ..models import AuditRecord, ResponseSnapshot
from ..response_forms import AnswerForm, StartResponseForm, answerable
from ..upstream.errors import UpstreamError, UpstreamTimeout
from ..upstream.responses_client import ResponsesClient
from ..upstream.responses_objects import Response
from .actions import operator_only
from .response_pages import responses_view
from .responses import check_id, render_page

GET_POST = require_http_methods(["GET", "POST"])


def _failure(what: str, exc: UpstreamError) -> str:
    if isinstance(exc, UpstreamTimeout):
        return (
            f"No answer from the upstream in time ({exc.message}) — it may have acted anyway. The audit "
            "record says “outcome unknown” until the response's state settles it; look at it before "
            "trying again."
        )
    return f"{what}: {exc.message}"


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
    """Actions on this response interrupted before their outcome was written, settled from its state."""
    for record in await audit.stale_pending(connection, response.id):
        if record.action == "cancel_response":
            landed, evidence = response.status == "cancelled", f"the response is {response.status}"
        elif record.action == "answer_response":
            landed = bool(snapshot and snapshot.answered_by)
            evidence = "a follow-up answered it" if landed else "no follow-up is known"
        else:
            landed, evidence = True, f"the response exists ({response.status})"
        record.outcome = AuditRecord.SUCCEEDED if landed else AuditRecord.FAILED
        record.reconciled_at = timezone.now()
        record.note = (
            f"Interrupted before its outcome was recorded; reconciled from the response: {evidence}."
        )
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


@GET_POST
@operator_only
@responses_view
async def cancel_response(request, client: ResponsesClient, response_id):
    response, _ = await _current(client, response_id)
    form = CancelForm(request.POST or None)
    blocker = await _cancel_blocker(client, response)
    if request.method == "POST" and not blocker and form.is_valid():
        user = await request.auser()
        try:
            record = await audit.begin(
                user,
                "cancel_response",
                client.name,
                thread_id=response.conversation_id,
                run_id=response_id,
                reason=form.cleaned_data["reason"],
                payload={"status_before": response.status},
            )
        except audit.ActionInFlight:
            blocker = "A cancel for this response is already being sent."
        else:
            try:
                result = await client.cancel_response(response_id)
            except UpstreamError as exc:
                await audit.fail(record, exc)
                form.add_error(None, _failure("The upstream did not cancel the response", exc))
            else:
                status = result.status.replace("_", " ")
                await audit.succeed(
                    record,
                    request_id=result.info.request_id if result.info else None,
                    message=f"the response is {status}",
                )
                await response_index.record_responses(client.name, [result])
                response_watcher.touch_response(client.name, response_id)
                flash.success(request, f"Cancel sent: the response is {status}.")
                return redirect(_response_url(client, response_id))
    return _page(request, "runs_ui/actions/cancel_response.html", client, response, form, blocker)


async def _cancel_blocker(client, response: Response) -> str:
    if response.is_terminal:
        return (
            f"This response already ended ({response.status.replace('_', ' ')}): there is nothing to cancel."
        )
    if response.background is False:
        return "This response was not created in the background: the API cannot cancel it."
    done = await AuditRecord.objects.filter(
        connection=client.name, run_id=response.id, action="cancel_response", outcome=AuditRecord.SUCCEEDED
    ).afirst()
    if done:
        return f"A cancel was already sent by {done.username}; the response has not ended yet."
    return ""


# --- answer: function outputs and approvals, by a follow-up response -------------------------------


@GET_POST
@operator_only
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
    user = await request.auser()
    fields = {"input": form.input_items(), **_continuing(response)}
    try:
        record = await audit.begin(
            user,
            "answer_response",
            client.name,
            thread_id=response.conversation_id,
            run_id=response.id,
            payload=form.audit_payload(),
        )
    except audit.ActionInFlight:
        return None, "Answers to this response are already being sent."
    try:
        started = await response_relay.start(client.name, client, fields)
    except UpstreamError as exc:
        await audit.fail(record, exc)
        form.add_error(None, _failure("The upstream refused the answers", exc))
        return None, ""
    follow_up = started.response
    await audit.succeed(
        record, request_id=started.request_id, message=f"answered by {follow_up.id} (streamed)"
    )
    await response_index.record_responses(client.name, [follow_up], "created")
    await response_index.mark_answered(client.name, response.id, follow_up.id)
    return follow_up, ""


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


@GET_POST
@operator_only
@responses_view
async def create_response(request, client: ResponsesClient, conversation_id=None):
    """A new response in a conversation (or, without one, in a new conversation)."""
    if conversation_id is not None:
        check_id("conversation", conversation_id)
    form = StartResponseForm(
        request.POST or None, initial={"model": await _usual_model(client, conversation_id)}
    )
    if request.method == "POST" and form.is_valid():
        response = await _start(request, client, form, conversation_id)
        if response is not None:
            return redirect(_response_url(client, response.id))
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
    user = await request.auser()
    fields = form.fields_for_upstream()
    record = await audit.begin(
        user, "create_response", client.name, thread_id=conversation_id or "", payload=fields
    )
    try:
        if conversation_id is None:
            conversation = await client.create_conversation(
                metadata={"title": form.cleaned_data["input"][:64]}
            )
            conversation_id = conversation.id
            record.thread_id = conversation_id
            await response_index.record_conversation(client.name, conversation_id, "created", conversation)
        started = await response_relay.start(client.name, client, {**fields, "conversation": conversation_id})
    except UpstreamError as exc:
        await audit.fail(record, exc)
        form.add_error(None, _failure("The upstream did not start the response", exc))
        return None
    record.run_id = started.response.id
    await audit.succeed(record, request_id=started.request_id, message=f"started {started.response.id}")
    await response_index.record_responses(client.name, [started.response], "created")
    return started.response
