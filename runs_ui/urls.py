"""Dashboard URLs. Thread, run and step pages, and response and conversation pages, mirror the API's paths
(mounted at /, and at /c/<slug>/ for connections other than the default)."""

from django.urls import include, path

from .live import polling, response_polling
from .views import (
    actions,
    api,
    downloads,
    files,
    health,
    home,
    pages,
    response_actions,
    response_list,
    response_pages,
)

app_name = "runs_ui"

# Mounted twice: at the root for the default connection, under c/<slug>/ for the others.
upstream_patterns = [
    path("threads/<str:thread_id>/", pages.thread_detail, name="thread"),
    path("threads/<str:thread_id>/export.json", downloads.export_thread, name="thread-export"),
    path("threads/<str:thread_id>/watch/", pages.watch_thread, name="thread-watch"),
    path("threads/<str:thread_id>/runs/new/", actions.create_run, name="run-create"),
    path("threads/<str:thread_id>/runs/<str:run_id>/", pages.run_detail, name="run"),
    path("threads/<str:thread_id>/runs/<str:run_id>/export.json", downloads.export_run, name="run-export"),
    path("threads/<str:thread_id>/runs/<str:run_id>/steps/<str:step_id>/", pages.step_detail, name="step"),
    path("files/<str:file_id>/content", files.file_content, name="file-content"),
    # Actions (operators only): each a form page, GET to show it, POST to act.
    path("threads/<str:thread_id>/runs/<str:run_id>/cancel/", actions.cancel_run, name="run-cancel"),
    path("threads/<str:thread_id>/runs/<str:run_id>/submit/", actions.submit_tool_outputs, name="run-submit"),
    path("threads/<str:thread_id>/runs/<str:run_id>/metadata/", actions.modify_metadata, name="run-metadata"),
    path("new/", actions.create_thread_and_run, name="thread-create"),
    # The Responses shape: responses, their items, conversations (and their actions, operators only).
    path("responses/new/", response_actions.create_response, name="response-new"),
    path("responses/<str:response_id>/", response_pages.response_detail, name="response"),
    path("responses/<str:response_id>/export.json", response_pages.export_response, name="response-export"),
    path(
        "responses/<str:response_id>/items/<str:item_id>/", response_pages.item_detail, name="response-item"
    ),
    path("responses/<str:response_id>/cancel/", response_actions.cancel_response, name="response-cancel"),
    path("responses/<str:response_id>/answer/", response_actions.answer_response, name="response-answer"),
    path("conversations/<str:conversation_id>/", response_pages.conversation_detail, name="conversation"),
    path(
        "conversations/<str:conversation_id>/export.json",
        response_pages.export_conversation,
        name="conversation-export",
    ),
    path(
        "conversations/<str:conversation_id>/responses/new/",
        response_actions.create_response,
        name="response-create",
    ),
]

urlpatterns = [
    path("", home.home, name="home"),
    path("go/", home.goto, name="goto"),
    path("inbox/", home.inbox, name="inbox"),
    path("index/add/", home.add_threads, name="threads-add"),
    path("index/import/", home.import_threads, name="threads-import"),
    path("responses/", response_list.responses, name="responses"),
    path("responses/add/", response_list.add_responses, name="responses-add"),
    path("responses/import/", response_list.import_responses, name="responses-import"),
    # For agent applications: register threads, responses and conversations with a bearer token
    # (INDEX_API_TOKEN).
    path("api/threads/", api.register_threads, name="api-register-threads"),
    path("api/responses/", api.register_responses, name="api-register-responses"),
    # The live view's polling fallback, while a page's socket is down (same state as the socket's).
    path("live/runs/<slug:conn>/<str:thread_id>/<str:run_id>/", polling.run_state, name="live-run"),
    path("live/threads/<slug:conn>/<str:thread_id>/", polling.thread_state, name="live-thread"),
    path("live/index/", polling.index_state, name="live-index"),
    path(
        "live/responses/<slug:conn>/<str:response_id>/", response_polling.response_state, name="live-response"
    ),
    path(
        "live/conversations/<slug:conn>/<str:conversation_id>/",
        response_polling.conversation_state,
        name="live-conversation",
    ),
    path("live/responses-index/", response_polling.index_state, name="live-responses-index"),
    # For load balancers and Prometheus: no login (METRICS_TOKEN guards /metrics).
    path("healthz", health.healthz, name="healthz"),
    path("metrics", health.metrics, name="metrics"),
    *upstream_patterns,
    path("c/<slug:connection>/", include(upstream_patterns)),
]
