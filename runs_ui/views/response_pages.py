"""Read-only pages of the Responses shape: a response (its output and input items), one item, a conversation's
timeline (its items in order, grouped by the response that wrote them), and their exports.

As the Assistants pages do: each page's shell comes from one round of upstream calls, its lists fill in
through htmx partials of the same view (`?part=…`), in pages of at most 100.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from functools import wraps
from urllib.parse import urlencode

from django.http import Http404, JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_GET

from .. import audit, response_index
from ..connections import aget_responses_client, info_for
from ..links import url_for
from ..live import bus
from ..live import response_fragments as rf
from ..models import DEFAULT_CONNECTION, ResponseSnapshot
from ..upstream.errors import NotFound, UpstreamError
from ..upstream.objects import is_id
from ..upstream.responses_client import MAX_PAGE, ResponsesClient
from ..upstream.responses_objects import Response, produced_by_a_response
from .responses import _lookup, check_id, render_page, upstream_error, wants_partial

OUTPUT_PAGE = 100
INPUT_PAGE = 100
TIMELINE_PAGE = 30
#: Upstream requests one page (or export) makes at once.
CONCURRENCY = 8
#: An item looked up among a response's input items is searched for in at most this many pages.
ITEM_SEARCH_PAGES = 20


def responses_view(view):
    """Resolve the connection from the URL in the Responses shape, refuse one that does not speak it, and
    turn upstream errors into pages."""

    @wraps(view)
    async def wrapper(request, *args, connection: str = DEFAULT_CONNECTION, **kwargs):
        client = await aget_responses_client(connection)
        if not client.profile.speaks("responses"):
            raise Http404(
                f"The connection “{info_for(client).name}” speaks the Assistants shape "
                f"({client.profile.label}): it has no responses or conversations."
            )
        try:
            return await view(request, client, *args, **kwargs)
        except UpstreamError as exc:
            return upstream_error(request, exc, client, _lookup(kwargs))

    return wrapper


def _offset(request, name: str = "from") -> int:
    try:
        return min(max(0, int(request.GET.get(name, 0))), 10**9)
    except ValueError:
        return 0


def _cursor(request, name: str = "after") -> str | None:
    value = request.GET.get(name, "")
    return value if is_id("item", value) else None


# --- a response ------------------------------------------------------------------------------------


@require_GET
@responses_view
async def response_detail(request, client: ResponsesClient, response_id):
    check_id("response", response_id)
    part = request.GET.get("part")
    if wants_partial(request) and part == "inputs":
        return await _inputs(request, client, response_id)
    stamp = await bus.page_stamp(bus.response_key(client.name, response_id))
    response = await client.get_response(response_id)
    if wants_partial(request) and part == "output":
        return render_page(
            request,
            "runs_ui/response_detail.html",
            {"conn": client.name, "response": response, **_output(response, _offset(request), stamp)},
            partial="output-page",
        )
    context = await response_context(request, client, response, stamp)
    start = _offset(request)
    context.update(_output(response, start, stamp))
    context["output_from"] = start
    context["inputs_url"] = "?" + urlencode({"part": "inputs"})
    context["live_url"] = f"/ws/responses/{client.name}/{response_id}/"
    context["live_poll_url"] = reverse(
        "runs_ui:live-response", kwargs={"conn": client.name, "response_id": response_id}
    )
    partial = "response-header" if part == "header" else None
    return render_page(request, "runs_ui/response_detail.html", context, partial=partial)


async def response_context(request, client: ResponsesClient, response: Response, stamp: str = "") -> dict:
    """Everything the response page shows above its items; the live pushes build the header the same way."""
    conn = client.name
    await response_index.record_responses(conn, [response])
    snapshot = await ResponseSnapshot.objects.filter(connection=conn, response_id=response.id).afirst()
    context = rf.header_context(
        conn,
        response,
        snapshot.transitions if snapshot else [],
        snapshot.answered_by if snapshot else "",
        request.roles.can_act,
        live_v=stamp,
    )
    context["connection"] = info_for(client)
    context["audit_records"] = await audit.recent_for_run(conn, response.id)
    context["raw_without_output"] = {
        **{k: v for k, v in response.raw.items() if k != "output"},
        "output": f"[{len(response.output)} items: shown with each item]",
    }
    return context


def _output(response: Response, start: int, stamp: str) -> dict:
    """One page of a response's output (a response carries all of it: no upstream paging)."""
    shown = response.output[start : start + OUTPUT_PAGE]
    more = start + OUTPUT_PAGE < len(response.output)
    return {
        "output_items": shown,
        "first_page": start == 0,
        "output_next_url": "?" + urlencode({"part": "output", "from": start + OUTPUT_PAGE}) if more else "",
        "live_v": stamp,
    }


async def _inputs(request, client: ResponsesClient, response_id: str):
    after = _cursor(request)
    page = await client.list_input_items(response_id, limit=INPUT_PAGE, order="asc", after=after)
    next_url = ""
    if page.next_after and page.next_after != after:  # a repeated cursor would loop forever
        next_url = "?" + urlencode({"part": "inputs", "after": page.next_after})
    context = {
        "conn": client.name,
        "response_id": response_id,
        "input_items": page.data,
        "first_page": after is None,
        "next_url": next_url,
    }
    return render_page(request, "runs_ui/response_detail.html", context, partial="input-page")


# --- one item --------------------------------------------------------------------------------------


@require_GET
@responses_view
async def item_detail(request, client: ResponsesClient, response_id, item_id):
    """One item of a response's output (or input), with a link to it among the others."""
    check_id("response", response_id)
    check_id("item", item_id)
    response = await client.get_response(response_id)
    position = next((n for n, item in enumerate(response.output) if item.id == item_id), None)
    item = (
        response.output[position] if position is not None else await _input_item(client, response_id, item_id)
    )
    if item is None:
        raise Http404(f"“{item_id}” is not an item of {response_id}.")
    in_response_url = url_for("response", client.name, response_id=response_id)
    if position is not None:
        start = position // OUTPUT_PAGE * OUTPUT_PAGE
        in_response_url += (f"?from={start}" if start else "") + f"#{item_id}"
    context = {
        "conn": client.name,
        "connection": info_for(client),
        "response": response,
        "item": item,
        "position": position,
        "in_response_url": in_response_url,
    }
    return render_page(request, "runs_ui/response_item.html", context)


async def _input_item(client: ResponsesClient, response_id: str, item_id: str):
    after, pages = None, 0
    while pages < ITEM_SEARCH_PAGES:
        page = await client.list_input_items(response_id, limit=MAX_PAGE, order="asc", after=after)
        pages += 1
        for item in page.data:
            if item.id == item_id:
                return item
        if not page.next_after or page.next_after == after:
            return None
        after = page.next_after
    return None


# --- a conversation --------------------------------------------------------------------------------


@require_GET
@responses_view
async def conversation_detail(request, client: ResponsesClient, conversation_id):
    check_id("conversation", conversation_id)
    order = "desc" if request.GET.get("order") == "desc" else "asc"
    if wants_partial(request) and request.GET.get("part") == "timeline":
        return await _timeline(request, client, conversation_id, order)
    conversation, _ = await asyncio.gather(
        client.get_conversation(conversation_id), _index_listed(client, conversation_id)
    )
    await response_index.record_conversation(client.name, conversation_id, "opened", conversation)
    after = _cursor(request)
    context = {
        "conn": client.name,
        "connection": info_for(client),
        "conversation": conversation,
        "order": order,
        "can_list": client.profile.can_list_responses,
        "timeline_url": "?"
        + urlencode({"part": "timeline", "order": order, **({"after": after} if after else {})}),
        "live_url": f"/ws/conversations/{client.name}/{conversation_id}/",
        "live_poll_url": reverse(
            "runs_ui:live-conversation", kwargs={"conn": client.name, "conversation_id": conversation_id}
        ),
    }
    return render_page(request, "runs_ui/conversation_detail.html", context)


async def _index_listed(client: ResponsesClient, conversation_id: str) -> None:
    """Where the upstream can list a conversation's responses, the index learns them (so the timeline can
    group its items); a nicety, so a failure only costs the grouping."""
    if not client.profile.can_list_responses:
        return
    with contextlib.suppress(UpstreamError):
        page = await client.list_responses(conversation_id=conversation_id, limit=MAX_PAGE, order="desc")
        await response_index.record_responses(client.name, page.data, "listed", touch=False)


async def _timeline(request, client: ResponsesClient, conversation_id: str, order: str):
    after = _cursor(request)
    conn = client.name
    page = await client.list_conversation_items(
        conversation_id, limit=TIMELINE_PAGE, order=order, after=after
    )
    writers = await _writers(conn, conversation_id)
    wanted = list(dict.fromkeys(writers[i.id] for i in page.data if i.id in writers))
    responses, stamps = await asyncio.gather(
        _fetch_responses(client, wanted), bus.page_stamps([bus.response_key(conn, r) for r in wanted])
    )
    await response_index.record_responses(conn, [r for r in responses.values() if r], touch=False)
    entries = []
    for item in page.data:
        owner = writers.get(item.id)
        written = owner is not None or produced_by_a_response(item)
        last = entries[-1] if entries else None
        if written and last and last["kind"] == "group" and last["owner"] == owner:
            last["items"].append(item)
        elif written:
            response = responses.get(owner) if owner else None
            entries.append(
                {
                    "kind": "group",
                    "owner": owner,
                    "response": response,
                    "items": [item],
                    "live": True,
                    "live_v": stamps.get(bus.response_key(conn, owner), "") if owner else "",
                }
            )
        else:
            entries.append({"kind": "given", "item": item})
    next_url = ""
    if page.next_after and page.next_after != after:
        next_url = "?" + urlencode({"part": "timeline", "order": order, "after": page.next_after})
        if entries and entries[-1]["kind"] == "group":
            # It may go on in the next page: live items join the part drawn last, not this one.
            entries[-1]["live"] = False
    context = {"conn": conn, "conversation_id": conversation_id, "entries": entries, "next_url": next_url}
    return render_page(request, "runs_ui/conversation_detail.html", context, partial="timeline-page")


async def _writers(conn: str, conversation_id: str) -> dict[str, str]:
    """item id → the response that wrote it, for the responses of this conversation the index knows."""
    known = ResponseSnapshot.objects.filter(connection=conn, conversation_id=conversation_id)
    writers = {}
    async for response_id, output_ids in known.values_list("response_id", "output_ids"):
        for item_id in output_ids or []:
            if isinstance(item_id, str):
                writers[item_id] = response_id
    return writers


async def _fetch_responses(client: ResponsesClient, response_ids: list[str]) -> dict[str, Response | None]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(response_id):
        async with gate:
            try:
                return await client.get_response(response_id)
            except NotFound:
                return None  # its items stay grouped, under its id

    fetched = await asyncio.gather(*(one(r) for r in response_ids))
    return dict(zip(response_ids, fetched, strict=True))


# --- exports -----------------------------------------------------------------------------------------


def _download(data: dict, filename: str) -> JsonResponse:
    response = JsonResponse(data, json_dumps_params={"indent": 2, "ensure_ascii": False})
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
@responses_view
async def export_response(request, client: ResponsesClient, response_id):
    """The response as JSON: itself (its output included) and every page of its input items."""
    check_id("response", response_id)

    async def inputs():
        return [i.raw async for i in client.iter_input_items(response_id)]

    response, input_items = await asyncio.gather(client.get_response(response_id), inputs())
    return _download(
        {
            "exported_at": datetime.now(UTC).isoformat(),
            "upstream": info_for(client).host,
            "response": response.raw,
            "input_items": input_items,
        },
        f"{response_id}.json",
    )


@require_GET
@responses_view
async def export_conversation(request, client: ResponsesClient, conversation_id):
    """The conversation as JSON: itself, every page of its items, and its responses (listed where the
    upstream can, else those the index knows)."""
    check_id("conversation", conversation_id)

    async def items():
        return [i.raw async for i in client.iter_conversation_items(conversation_id)]

    async def responses():
        if client.profile.can_list_responses:
            return [r.raw async for r in client.iter_responses(conversation_id=conversation_id)]
        known = ResponseSnapshot.objects.filter(connection=client.name, conversation_id=conversation_id)
        ids = [r async for r in known.order_by("created_at").values_list("response_id", flat=True)]
        fetched = await _fetch_responses(client, ids)
        return [r.raw for r in fetched.values() if r is not None]

    conversation, all_items, all_responses = await asyncio.gather(
        client.get_conversation(conversation_id), items(), responses()
    )
    return _download(
        {
            "exported_at": datetime.now(UTC).isoformat(),
            "upstream": info_for(client).host,
            "conversation": conversation.raw,
            "items": all_items,
            "responses": all_responses,
        },
        f"{conversation_id}.json",
    )
