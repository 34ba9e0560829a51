"""The sandbox API's URLs, mounted at /sandbox/v1/ in the dashboard and at /v1/ stand-alone.

Paths have no trailing slash, as the SDK sends them; anything else answers a JSON 404 like the real API.
"""

from django.urls import path, re_path

from . import api, responses_api

app_name = "sandbox"

urlpatterns = [
    path("assistants", api.assistants, name="assistants"),
    path("assistants/<str:assistant_id>", api.assistant, name="assistant"),
    path("threads", api.threads, name="threads"),
    # Before threads/<thread_id>, which would otherwise take "runs" for a thread id.
    path("threads/runs", api.thread_and_run, name="thread-and-run"),
    path("threads/<str:thread_id>", api.thread, name="thread"),
    path("threads/<str:thread_id>/messages", api.messages, name="messages"),
    path("threads/<str:thread_id>/messages/<str:message_id>", api.message, name="message"),
    path("threads/<str:thread_id>/runs", api.runs, name="runs"),
    path("threads/<str:thread_id>/runs/<str:run_id>", api.run, name="run"),
    path("threads/<str:thread_id>/runs/<str:run_id>/cancel", api.cancel, name="cancel"),
    path(
        "threads/<str:thread_id>/runs/<str:run_id>/submit_tool_outputs",
        api.submit_tool_outputs,
        name="submit-tool-outputs",
    ),
    path("threads/<str:thread_id>/runs/<str:run_id>/steps", api.steps, name="steps"),
    path("threads/<str:thread_id>/runs/<str:run_id>/steps/<str:step_id>", api.step, name="step"),
    path("files/<str:file_id>", api.file, name="file"),
    path("files/<str:file_id>/content", api.file_content, name="file-content"),
    # The Responses + Conversations surface (OpenAI's, with Azure AI Foundry's list endpoints).
    path("responses", responses_api.responses, name="responses"),
    path("responses/<str:response_id>", responses_api.response, name="response"),
    path("responses/<str:response_id>/cancel", responses_api.cancel, name="response-cancel"),
    path("responses/<str:response_id>/input_items", responses_api.input_items, name="response-input-items"),
    path("conversations", responses_api.conversations, name="conversations"),
    path("conversations/<str:conversation_id>", responses_api.conversation, name="conversation"),
    path("conversations/<str:conversation_id>/items", responses_api.items, name="conversation-items"),
    path(
        "conversations/<str:conversation_id>/items/<str:item_id>",
        responses_api.item,
        name="conversation-item",
    ),
    re_path(r"^", api.invalid_url, name="invalid-url"),
]
