"""Actions that change a run: cancel, submit tool outputs, edit metadata, start a run, create thread and run.

Each is a form page (GET shows it, POST acts) for operators only. Every POST re-reads the run first, so
a form drawn for an earlier state is refused with a clear message; writes an audit record before the
upstream call and completes it after; and is never retried blindly (only a call that could not connect,
so never reached the upstream, is sent again). Runs started or resumed here stream.
"""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib import messages as flash
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods

from .. import audit, index
from ..connections import connections_speaking, info_for
from ..forms import CancelForm, CreateThreadAndRunForm, MetadataForm, StartRunForm, ToolOutputsForm
from ..links import url_for
from ..live import relay as stream_relay
from ..live.watcher import watcher
from ..upstream.errors import UpstreamError, UpstreamTimeout
from ..upstream.objects import RUN_TERMINAL
from .responses import check_id, render_page, upstream_view

GET_POST = require_http_methods(["GET", "POST"])


def operator_only(view):
    """Refuse (403) anyone who may not act: viewers, and everyone on a read-only deployment."""

    @wraps(view)
    async def wrapper(request, *args, **kwargs):
        if settings.READ_ONLY:
            raise PermissionDenied("This dashboard is read-only: actions are switched off (READ_ONLY).")
        if not request.roles.can_act:
            raise PermissionDenied(
                "Your role can look but not act on runs. Ask an admin for the operator role."
            )
        return await view(request, *args, **kwargs)

    return wrapper


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
        "run": run,
        "run_url": _run_url(client, thread_id, run_id),
        "form": form,
        "blocker": blocker,
    }
    return _form_page(request, template, context, form)


async def _current_run(client, thread_id: str, run_id: str):
    """The run as it is now, with any interrupted audit records of it settled first."""
    check_id("thread", thread_id)
    check_id("run", run_id)
    run = await client.get_run(thread_id, run_id)
    await audit.settle_interrupted(client.name, run)
    return run


def _failure(what: str, exc: UpstreamError) -> str:
    """What the form says when the call failed: the upstream's words, or, when no answer came, that the
    action may still have landed (its audit record stays "outcome unknown" until the run settles it)."""
    if isinstance(exc, UpstreamTimeout):
        return (
            f"No answer from the upstream in time ({exc.message}) — it may have acted anyway. "
            "The audit record says “outcome unknown” until the run's state settles it; "
            "look at the run before trying again."
        )
    return f"{what}: {exc.message}"


def _run_url(client, thread_id: str, run_id: str) -> str:
    """The run page, by the ids of the URL (or of a run the stream reported, checked there): never by ids
    of an upstream answer, which may be missing."""
    return url_for("run", client.name, thread_id=thread_id, run_id=run_id)


# --- cancel ----------------------------------------------------------------------------------------


@GET_POST
@operator_only
@upstream_view
async def cancel_run(request, client, thread_id, run_id):
    run = await _current_run(client, thread_id, run_id)
    form = CancelForm(request.POST or None)
    blocker = await _cancel_blocker(client, run)
    if request.method == "POST" and not blocker and form.is_valid():
        user = await request.auser()
        try:
            record = await audit.begin(
                user,
                "cancel_run",
                client.name,
                thread_id=thread_id,
                run_id=run_id,
                reason=form.cleaned_data["reason"],
                payload={"status_before": run.status},
            )
        except audit.ActionInFlight:
            blocker = "A cancel for this run is already being sent."
        else:
            try:
                result = await client.cancel_run(thread_id, run_id)
            except UpstreamError as exc:
                await audit.fail(record, exc)
                form.add_error(None, _failure("The upstream did not cancel the run", exc))
            else:
                await audit.succeed(record, run=result)
                watcher.touch_run(client.name, thread_id, run_id)
                flash.success(
                    request,
                    f"Cancel sent: the run is {result.status.replace('_', ' ')}. "
                    "This page follows it until it ends.",
                )
                return redirect(_run_url(client, thread_id, run_id))
    return _run_form_page(
        request, "runs_ui/actions/cancel_run.html", client, (thread_id, run_id), run, form, blocker
    )


async def _cancel_blocker(client, run) -> str:
    if run.status == "cancelling":
        return "This run is already cancelling."
    if run.status in RUN_TERMINAL:
        return f"This run already ended ({run.status.replace('_', ' ')}): there is nothing to cancel."
    done = await audit.already_done(client.name, run, "cancel_run")
    if done:
        return f"A cancel was already sent by {done.username}; the run has not ended yet."
    return ""


# --- submit tool outputs ---------------------------------------------------------------------------


@GET_POST
@operator_only
@upstream_view
async def submit_tool_outputs(request, client, thread_id, run_id):
    run = await _current_run(client, thread_id, run_id)
    calls = run.pending_calls
    form = ToolOutputsForm(request.POST or None, calls=calls)
    blocker = ""
    if not calls:
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
            blocker = await _submit(request, client, run, form)
            if not blocker and not form.errors:
                flash.success(request, "Outputs submitted: the run continues below, live.")
                return redirect(_run_url(client, thread_id, run_id))
    return _run_form_page(
        request, "runs_ui/actions/submit_tool_outputs.html", client, (thread_id, run_id), run, form, blocker
    )


async def _submit(request, client, run, form) -> str:
    user = await request.auser()
    outputs = form.outputs()
    try:
        record = await audit.begin(
            user,
            "submit_tool_outputs",
            client.name,
            thread_id=run.thread_id,
            run_id=run.id,
            payload={"tool_outputs": outputs},
        )
    except audit.ActionInFlight:
        return "Outputs for this run are already being submitted."
    try:
        opened = await stream_relay.start(
            client.name,
            client,
            lambda: client.stream_submit_tool_outputs(run.thread_id, run.id, outputs),
            known=run,
        )
    except UpstreamError as exc:
        await audit.fail(record, exc)
        form.add_error(None, _failure("The upstream refused the outputs", exc))
        return ""
    await audit.succeed(
        record,
        run=run,
        request_id=opened.request_id,
        message="outputs accepted; the run continues (streamed)",
    )
    return ""


# --- metadata --------------------------------------------------------------------------------------


@GET_POST
@operator_only
@upstream_view
async def modify_metadata(request, client, thread_id, run_id):
    run = await _current_run(client, thread_id, run_id)
    form = MetadataForm(request.POST or None, metadata=run.metadata)
    if request.method == "POST" and form.is_valid():
        user = await request.auser()
        metadata = form.cleaned_data["metadata"]
        try:
            record = await audit.begin(
                user,
                "modify_metadata",
                client.name,
                thread_id=thread_id,
                run_id=run_id,
                payload={"metadata": metadata, "before": run.metadata},
            )
        except audit.ActionInFlight:
            form.add_error(None, "The metadata of this run is already being saved.")
        else:
            try:
                result = await client.modify_run(thread_id, run_id, metadata)
            except UpstreamError as exc:
                await audit.fail(record, exc)
                form.add_error(None, _failure("The upstream refused the metadata", exc))
            else:
                await audit.succeed(record, run=result)
                await index.record_runs(client.name, thread_id, [result])
                watcher.touch_run(client.name, thread_id, run_id, seconds=10)
                flash.success(request, "Metadata saved.")
                return redirect(_run_url(client, thread_id, run_id))
    return _run_form_page(
        request, "runs_ui/actions/modify_metadata.html", client, (thread_id, run_id), run, form
    )


# --- start runs ------------------------------------------------------------------------------------


async def _assistants(client):
    try:
        return (await client.list_assistants(limit=100)).data
    except UpstreamError:
        return []  # the form still takes an assistant id typed in


@GET_POST
@operator_only
@upstream_view
async def create_run(request, client, thread_id):
    check_id("thread", thread_id)
    assistants = await _assistants(client)
    form = StartRunForm(request.POST or None, assistants=assistants, initial=request.GET.dict())
    if request.method == "POST" and form.is_valid():
        options = form.options()
        if form.cleaned_data["message"]:
            options["additional_messages"] = [{"role": "user", "content": form.cleaned_data["message"]}]
        run = await _start(
            request,
            client,
            form,
            "create_run",
            thread_id,
            options,
            lambda: client.stream_create_run(thread_id, form.cleaned_data["assistant_id"], **options),
        )
        if run is not None:
            return redirect(_run_url(client, run.thread_id, run.id))
    context = {"conn": client.name, "connection": info_for(client), "thread_id": thread_id, "form": form}
    return _form_page(request, "runs_ui/actions/create_run.html", context, form)


@GET_POST
@operator_only
@upstream_view
async def create_thread_and_run(request, client):
    assistants = await _assistants(client)
    form = CreateThreadAndRunForm(request.POST or None, assistants=assistants, initial=request.GET.dict())
    if request.method == "POST" and form.is_valid():
        options = form.options()
        thread = {"messages": [{"role": "user", "content": form.cleaned_data["message"]}]}
        run = await _start(
            request,
            client,
            form,
            "create_thread_and_run",
            "",
            {**options, "thread": thread},
            lambda: client.stream_create_thread_and_run(
                form.cleaned_data["assistant_id"], thread=thread, **options
            ),
        )
        if run is not None:
            await index.record_thread(client.name, run.thread_id, "created")
            return redirect(_run_url(client, run.thread_id, run.id))
    context = {
        "conn": client.name,
        "connection": info_for(client),
        "form": form,
        # It starts on any connection of the Assistants shape: the page links to the others' forms.
        "connections": await connections_speaking("assistants"),
    }
    return _form_page(request, "runs_ui/actions/create_thread_and_run.html", context, form)


async def _start(request, client, form, action, thread_id, options, open_stream):
    """Start a streamed run; returns it, or None with the upstream's refusal added to the form."""
    user = await request.auser()
    record = await audit.begin(
        user,
        action,
        client.name,
        thread_id=thread_id,
        payload={"assistant_id": form.cleaned_data["assistant_id"], **options},
    )
    try:
        run, request_id = await stream_relay.start(client.name, client, open_stream)
    except UpstreamError as exc:
        await audit.fail(record, exc)
        form.add_error(None, _failure("The upstream did not start the run", exc))
        return None
    await audit.succeed(record, run=run, request_id=request_id)
    await index.record_runs(client.name, run.thread_id, [run])
    return run
