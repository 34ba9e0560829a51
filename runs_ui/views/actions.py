"""Actions that change a run: cancel, submit tool outputs, edit metadata, start a run, create thread and run.

Each is a form page (GET shows it, POST acts) for operators only. Every POST re-reads the run first, so
a form drawn for an earlier state is refused with a clear message, and acts through `audit.perform`: an
audit record written before the upstream call and completed after it, "outcome unknown" when the request
may have landed without a usable answer. Nothing is retried blindly (only a call that could not connect,
so never reached the upstream, is sent again); an action whose outcome is not known yet blocks the same
action on the run until the run's state settles it; a form that starts a run is done once, however
often it is submitted. Runs started or resumed here stream.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import timedelta
from functools import wraps

from django.conf import settings
from django.contrib import messages as flash
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from .. import audit, index, reconcile
from ..connections import connections_speaking, info_for
from ..forms import CancelForm, CreateThreadAndRunForm, MetadataForm, StartRunForm, ToolOutputsForm
from ..links import url_for
from ..live import relay as stream_relay
from ..live.watcher import watcher
from ..models import AuditRecord
from ..upstream.client import EventStream
from ..upstream.errors import UpstreamError
from ..upstream.objects import RUN_TERMINAL, Thread, is_id
from .responses import check_id, render_page, upstream_view

#: What the same action says while another of its kind is in flight on the run.
IN_FLIGHT = {
    "cancel_run": "A cancel for this run is already being sent.",
    "submit_tool_outputs": "Outputs for this run are already being submitted.",
    "modify_metadata": "The metadata of this run is already being saved.",
}
LABELS = dict(AuditRecord.ACTIONS)


def action_view(view):
    """An action's form page: GET or POST, operators only, upstream errors as pages, and whatever is
    posted (tool outputs, messages, metadata may hold secrets) kept out of Django's error reports."""

    @sensitive_post_parameters()
    @require_http_methods(["GET", "POST"])
    @wraps(view)
    async def checked(request, *args, **kwargs):
        if settings.READ_ONLY:
            raise PermissionDenied("This dashboard is read-only: actions are switched off (READ_ONLY).")
        if not request.roles.can_act:
            raise PermissionDenied(
                "Your role can look but not act on runs. Ask an admin for the operator role."
            )
        return await view(request, *args, **kwargs)

    return checked


def _form_page(request, template: str, context: dict, form):
    """A form page; a POST that did not go through answers 400, with the operator's input kept."""
    status = 400 if request.method == "POST" and (form.errors or context.get("blocker")) else 200
    return render_page(request, template, context, status=status)


def _run_form_page(request, template: str, client, ids: tuple[str, str], run, form, blocker: str = ""):
    """The form page of an action on one run; `ids`: its thread and run id, as the URL has them."""
    thread_id, run_id = ids
    context = {
        "conn": client.name,
        "connection": info_for(client),
        "thread_id": thread_id,
        "run_id": run_id,
        "run": run,
        "run_url": _run_url(client, thread_id, run_id),
        "form": form,
        "blocker": blocker,
    }
    return _form_page(request, template, context, form)


async def _current_run(client, thread_id: str, run_id: str):
    """The run as it is now, with the open audit records of actions on it settled first."""
    check_id("thread", thread_id)
    check_id("run", run_id)
    run = await client.get_run(thread_id, run_id)
    await reconcile.settle_run(client.name, run)
    return run


def _run_url(client, thread_id: str, run_id: str) -> str:
    """The run page, by the ids of the URL (or of a run the stream reported, checked there): never by ids
    of an upstream answer, which may be missing."""
    return url_for("run", client.name, thread_id=thread_id, run_id=run_id)


def _when(record: AuditRecord, after=None) -> str:
    moment = record.created_at + (after or timedelta(0))
    return moment.strftime("%H:%M:%S UTC")


async def act(form, action: audit.Action, call, *, refused: str, settles: str):
    """Do the action under its audit record. Returns the record, or None with what happened added to the
    form: that the upstream refused (`refused`: …), or that it may have acted anyway (`settles` says
    what will tell)."""
    try:
        return await audit.perform(action, call)
    except audit.ActionInFlight:
        form.add_error(None, IN_FLIGHT.get(action.action, "This action is already being sent."))
    except audit.ActionFailed as failed:
        exc = failed.error
        if failed.may_have_landed:
            said = f"{exc.kind}{f', HTTP {exc.status}' if exc.status else ''}: {exc.message}"
            form.add_error(
                None,
                "Outcome unknown: the request may have reached the upstream, but no usable answer came "
                f"back ({said}). It may have acted anyway: the audit record says “outcome unknown” until "
                f"{settles} settles it. Look before trying again.",
            )
        else:
            form.add_error(None, f"{refused}: {exc.message}")
    return None


async def _open_blocker(client, run_id: str, action: str) -> str:
    """Why the action cannot be sent now: the same one is in flight, or its outcome is not known yet."""
    record = await audit.open_record(client.name, run_id, action)
    if record is None:
        return ""
    if record.outcome == AuditRecord.PENDING:
        return f"{IN_FLIGHT[action]} (by {record.username}, since {_when(record)})"
    return (
        f"An earlier {LABELS[action]} by {record.username} ({_when(record)}) may have reached the upstream, "
        f"which gave no usable answer ({record.upstream_message[:300]}): its outcome is unknown. "
        "The run's state settles it: as succeeded as soon as the run shows it, as failed if it does not "
        f"by {_when(record, reconcile.SETTLE_AFTER)}. Until then it is not sent again."
    )


# --- cancel ----------------------------------------------------------------------------------------


@action_view
@upstream_view
async def cancel_run(request, client, thread_id, run_id):
    run = await _current_run(client, thread_id, run_id)
    form = CancelForm(request.POST or None)
    blocker = await _cancel_blocker(client, run, run_id)
    if request.method == "POST" and not blocker and form.is_valid():
        action = audit.Action(
            await request.auser(),
            "cancel_run",
            client.name,
            thread_id=thread_id,
            run_id=run_id,
            reason=form.cleaned_data["reason"],
            payload={"status_before": run.status},
        )

        async def cancel(record):
            return audit.Done(await client.cancel_run(thread_id, run_id))

        record = await act(
            form, action, cancel, refused="The upstream did not cancel the run", settles="the run's state"
        )
        if record is not None:
            watcher.touch_run(client.name, thread_id, run_id)
            flash.success(
                request, f"Cancel sent: {record.upstream_message}. This page follows it until it ends."
            )
            return redirect(_run_url(client, thread_id, run_id))
    return _run_form_page(
        request, "runs_ui/actions/cancel_run.html", client, (thread_id, run_id), run, form, blocker
    )


async def _cancel_blocker(client, run, run_id: str) -> str:
    if run.status == "cancelling":
        return "This run is already cancelling."
    if run.status in RUN_TERMINAL:
        return f"This run already ended ({run.status.replace('_', ' ')}): there is nothing to cancel."
    if open_ := await _open_blocker(client, run_id, "cancel_run"):
        return open_
    done = await audit.already_done(client.name, run, "cancel_run")
    if done:
        return f"A cancel was already sent by {done.username}; the run has not ended yet."
    return ""


# --- submit tool outputs ---------------------------------------------------------------------------


@action_view
@upstream_view
async def submit_tool_outputs(request, client, thread_id, run_id):
    run = await _current_run(client, thread_id, run_id)
    calls = run.pending_calls
    form = ToolOutputsForm(request.POST or None, calls=calls)
    blocker = await _open_blocker(client, run_id, "submit_tool_outputs")
    if not calls and not blocker:
        if submitted := await audit.last_submission(client.name, run_id):
            blocker = (
                f"Outputs were already submitted (by {submitted.username}); "
                f"the run is now {run.status.replace('_', ' ')}."
            )
        else:
            blocker = f"The run is {run.status.replace('_', ' ')}: it is not waiting for tool outputs."
    if request.method == "POST" and not blocker and form.is_valid():
        if await audit.already_done(client.name, run, "submit_tool_outputs"):
            blocker = "Outputs for these calls were already submitted."
        else:
            outputs = form.outputs()
            action = audit.Action(
                await request.auser(),
                "submit_tool_outputs",
                client.name,
                thread_id=thread_id,
                run_id=run_id,
                payload={"tool_outputs": outputs},
            )

            async def submit(record):
                started = await stream_relay.start(
                    client.name,
                    client,
                    lambda: client.stream_submit_tool_outputs(thread_id, run_id, outputs),
                    known=run,
                )
                return audit.Done(run, started.request_id, "outputs accepted; the run continues (streamed)")

            record = await act(
                form, action, submit, refused="The upstream refused the outputs", settles="the run's state"
            )
            if record is not None:
                flash.success(request, "Outputs submitted: the run continues below, live.")
                return redirect(_run_url(client, thread_id, run_id))
    return _run_form_page(
        request, "runs_ui/actions/submit_tool_outputs.html", client, (thread_id, run_id), run, form, blocker
    )


# --- metadata --------------------------------------------------------------------------------------


@action_view
@upstream_view
async def modify_metadata(request, client, thread_id, run_id):
    run = await _current_run(client, thread_id, run_id)
    form = MetadataForm(request.POST or None, metadata=run.metadata)
    blocker = await _open_blocker(client, run_id, "modify_metadata")
    if request.method == "POST" and not blocker and form.is_valid():
        metadata = form.cleaned_data["metadata"]
        action = audit.Action(
            await request.auser(),
            "modify_metadata",
            client.name,
            thread_id=thread_id,
            run_id=run_id,
            payload={"metadata": metadata, "before": run.metadata},
        )

        saved = []

        async def save(record):
            saved.append(await client.modify_run(thread_id, run_id, metadata))
            return audit.Done(saved[0])

        record = await act(
            form, action, save, refused="The upstream refused the metadata", settles="the run's state"
        )
        if record is not None:
            await index.record_runs(client.name, thread_id, saved)
            watcher.touch_run(client.name, thread_id, run_id, seconds=10)
            flash.success(request, "Metadata saved.")
            return redirect(_run_url(client, thread_id, run_id))
    return _run_form_page(
        request, "runs_ui/actions/modify_metadata.html", client, (thread_id, run_id), run, form, blocker
    )


# --- start runs ------------------------------------------------------------------------------------

STARTS_SETTLE = "the dashboard finds the run it started (by the mark this form puts in its metadata)"


async def _assistants(client):
    try:
        return (await client.list_assistants(limit=100)).data
    except UpstreamError:
        return []  # the form still takes an assistant id typed in


async def _open_starts(request, client, action: str, thread_id: str = "") -> list[AuditRecord]:
    """This user's earlier starts here whose outcome is not known yet, after looking for their runs (when
    the form is drawn afresh: a POST drawing it again reports on itself)."""
    records = await audit.open_starts(client.name, action, await request.auser())
    if request.method == "GET":
        await reconcile.find_starts(client, records)
    return [
        r for r in records if r.outcome in AuditRecord.OPEN and (not thread_id or r.thread_id == thread_id)
    ]


@action_view
@upstream_view
async def create_run(request, client, thread_id):
    check_id("thread", thread_id)
    assistants = await _assistants(client)
    form = StartRunForm(request.POST or None, assistants=assistants, initial=request.GET.dict())
    if request.method == "POST" and form.is_valid():
        token = form.cleaned_data["form_token"]
        options = {**form.options(), "metadata": {reconcile.MARK: token}}
        if form.cleaned_data["message"]:
            options["additional_messages"] = [{"role": "user", "content": form.cleaned_data["message"]}]
        assistant_id = form.cleaned_data["assistant_id"]
        action = audit.Action(
            await request.auser(),
            "create_run",
            client.name,
            thread_id=thread_id,
            payload={"assistant_id": assistant_id, **options},
            form_token=token,
        )
        started = await _start(
            request,
            client,
            form,
            action,
            lambda: client.stream_create_run(thread_id, assistant_id, **options),
        )
        if started is not None:
            return started
    context = {
        "conn": client.name,
        "connection": info_for(client),
        "thread_id": thread_id,
        "form": form,
        "open_starts": await _open_starts(request, client, "create_run", thread_id),
        "mark": reconcile.MARK,
    }
    return _form_page(request, "runs_ui/actions/create_run.html", context, form)


@action_view
@upstream_view
async def create_thread_and_run(request, client):
    assistants = await _assistants(client)
    form = CreateThreadAndRunForm(request.POST or None, assistants=assistants, initial=request.GET.dict())
    if request.method == "POST" and form.is_valid():
        token = form.cleaned_data["form_token"]
        mark = {reconcile.MARK: token}
        options = {**form.options(), "metadata": mark}
        thread = {"messages": [{"role": "user", "content": form.cleaned_data["message"]}], "metadata": mark}
        assistant_id = form.cleaned_data["assistant_id"]
        action = audit.Action(
            await request.auser(),
            "create_thread_and_run",
            client.name,
            payload={"assistant_id": assistant_id, **options, "thread": thread},
            form_token=token,
        )
        started = await _start(
            request,
            client,
            form,
            action,
            lambda: client.stream_create_thread_and_run(assistant_id, thread=thread, **options),
        )
        if started is not None:
            return started
    context = {
        "conn": client.name,
        "connection": info_for(client),
        "form": form,
        "open_starts": await _open_starts(request, client, "create_thread_and_run"),
        "mark": reconcile.MARK,
        # It starts on any connection of the Assistants shape: the page links to the others' forms.
        "connections": await connections_speaking("assistants"),
    }
    return _form_page(request, "runs_ui/actions/create_thread_and_run.html", context, form)


async def _start(request, client, form, action: audit.Action, open_stream):
    """Start a streamed run: the redirect to it, or None with what happened added to the form (a form
    submitted before gets what that submission did)."""
    reported = []

    async def start(record):
        started = await stream_relay.start(client.name, client, _noting_thread(open_stream, record))
        reported.append(started.run)
        return audit.Done(started.run, started.request_id)

    try:
        record = await act(
            form, action, start, refused="The upstream did not start the run", settles=STARTS_SETTLE
        )
    except audit.FormAlreadySubmitted as earlier:
        return await _already_submitted(request, client, form, earlier.record)
    if record is None:
        form.renew_token()  # this one is used: the form drawn again may be sent as a new start
        return None
    run = reported[0]
    if action.action == "create_thread_and_run":
        await index.record_thread(client.name, run.thread_id, "created")
    await index.record_runs(client.name, run.thread_id, [run])
    return redirect(_run_url(client, action.thread_id or run.thread_id, run.id))


def _noting_thread(open_stream, record: AuditRecord):
    """The stream, with the thread its `thread.created` event names written to the audit record at once:
    if the stream breaks before it reports the run, the record still says where to look."""

    async def noted(events):
        async for event in events:
            if isinstance(event.data, Thread) and is_id("thread", event.data.id) and not record.thread_id:
                await audit.note_thread(record, event.data.id)
            yield event

    @asynccontextmanager
    async def opened():
        async with open_stream() as events:
            yield EventStream(noted(events), events.info)

    return opened


async def _already_submitted(request, client, form, record: AuditRecord):
    """A form submitted again (a double click): what its first submission did, once that has ended."""
    record = await audit.settled(record, within=settings.UPSTREAM_TIMEOUT + 10)
    who = f"by {record.username} at {_when(record)}"
    if (
        record.outcome == AuditRecord.SUCCEEDED
        and is_id("run", record.run_id)
        and is_id("thread", record.thread_id)
    ):
        flash.info(request, f"This form was already submitted ({who}): here is the run it started.")
        return redirect(_run_url(client, record.thread_id, record.run_id))
    form.renew_token()
    if record.outcome == AuditRecord.FAILED:
        form.add_error(
            None,
            f"This form was already submitted ({who}) and did not go through: {record.upstream_message}. "
            "Check it and submit it again.",
        )
    else:
        form.add_error(
            None,
            f"This form was already submitted ({who}) and its outcome is unknown: the run may have "
            "started. Look for it (below, or on the thread list) before you submit this form again, "
            "which starts another.",
        )
    return None
