"""The wire of the Responses and Conversations endpoints: async views on api.py's `endpoint()`.

No `OpenAI-Beta` header is needed here. A response created with `background` answers at once; with
`stream` it streams; with neither, the request waits until the response is done, as the service does.
"""

from asgiref.sync import sync_to_async
from django.http import HttpRequest

from . import responses_operations as operations
from . import streaming, validation
from .api import endpoint, json_response, read_body, sse
from .errors import bad_request
from .pagination import ListParams


def _call(fn):
    return sync_to_async(fn)


def _include(request: HttpRequest) -> tuple[str, ...]:
    values = request.GET.getlist("include[]") + request.GET.getlist("include")
    for value in values:
        if value not in validation.INCLUDE_VALUES:
            choices = validation.quoted_choices(validation.INCLUDE_VALUES)
            raise bad_request(
                f"Invalid value: '{value}'. Supported values are: {choices}.",
                param="include",
                code="invalid_value",
            )
    return tuple(values)


def _flag(request: HttpRequest, name: str) -> bool:
    value = request.GET.get(name)
    if value in (None, "", "false", "False", "0"):
        return False
    if value in ("true", "True", "1"):
        return True
    raise bad_request(
        f"Invalid type for '{name}': expected a boolean, but got a string instead.",
        param=name,
        code="invalid_type",
    )


def _starting_after(request: HttpRequest) -> int:
    value = request.GET.get("starting_after")
    if value in (None, ""):
        return -1
    try:
        return int(value)
    except ValueError:
        raise bad_request(
            "Invalid type for 'starting_after': expected an integer, but got a string instead.",
            param="starting_after",
            code="invalid_type",
        ) from None


# --- responses ------------------------------------------------------------------------------------


async def _create_response(request):
    body = read_body(request, "createResponse")
    created = await _call(operations.create_response)(body)
    if body.get("stream"):
        return sse(streaming.response_events(created.pk, -1))
    if created.background:
        return json_response(created.body)
    await streaming.until_terminal(created.pk)
    return json_response(await _call(operations.snapshot_of)(created.pk, tuple(body.get("include") or ())))


async def _list_responses(request):
    params = ListParams.from_query(request.GET)
    query = request.GET
    page = await _call(operations.list_responses)(
        params,
        conversation_id=query.get("conversation_id") or None,
        agent_name=query.get("agent_name") or None,
        agent_id=query.get("agent_id") or None,
    )
    return json_response(page)


async def _get_response(request, response_id):
    include = _include(request)
    if _flag(request, "stream"):
        after = _starting_after(request)
        pk = await _call(operations.stream_start)(response_id)
        return sse(streaming.response_events(pk, after))
    return json_response(await _call(operations.get_response)(response_id, include))


async def _delete_response(request, response_id):
    return json_response(await _call(operations.delete_response)(response_id))


async def _cancel_response(request, response_id):
    read_body(request, "cancelResponse")
    return json_response(await _call(operations.cancel_response)(response_id))


async def _input_items(request, response_id):
    params = ListParams.from_query(request.GET)
    return json_response(await _call(operations.list_input_items)(response_id, params, _include(request)))


# --- conversations --------------------------------------------------------------------------------


async def _create_conversation(request):
    return json_response(
        await _call(operations.create_conversation)(read_body(request, "createConversation"))
    )


async def _list_conversations(request):
    params = ListParams.from_query(request.GET)
    query = request.GET
    page = await _call(operations.list_conversations)(
        params, agent_name=query.get("agent_name") or None, agent_id=query.get("agent_id") or None
    )
    return json_response(page)


async def _get_conversation(request, conversation_id):
    return json_response(await _call(operations.get_conversation)(conversation_id))


async def _update_conversation(request, conversation_id):
    body = read_body(request, "updateConversation")
    return json_response(await _call(operations.update_conversation)(conversation_id, body))


async def _delete_conversation(request, conversation_id):
    return json_response(await _call(operations.delete_conversation)(conversation_id))


async def _list_items(request, conversation_id):
    params = ListParams.from_query(request.GET)
    include = _include(request)
    return json_response(await _call(operations.list_conversation_items)(conversation_id, params, include))


async def _create_items(request, conversation_id):
    include = _include(request)
    body = read_body(request, "createConversationItems")
    return json_response(await _call(operations.create_conversation_items)(conversation_id, body, include))


async def _get_item(request, conversation_id, item_id):
    include = _include(request)
    return json_response(await _call(operations.get_conversation_item)(conversation_id, item_id, include))


async def _delete_item(request, conversation_id, item_id):
    return json_response(await _call(operations.delete_conversation_item)(conversation_id, item_id))


responses = endpoint(beta=False, GET=_list_responses, POST=_create_response)
response = endpoint(beta=False, GET=_get_response, DELETE=_delete_response)
cancel = endpoint(beta=False, POST=_cancel_response)
input_items = endpoint(beta=False, GET=_input_items)
conversations = endpoint(beta=False, GET=_list_conversations, POST=_create_conversation)
conversation = endpoint(
    beta=False, GET=_get_conversation, POST=_update_conversation, DELETE=_delete_conversation
)
items = endpoint(beta=False, GET=_list_items, POST=_create_items)
item = endpoint(beta=False, GET=_get_item, DELETE=_delete_item)
