"""Dashboard URLs. Thread, run and step pages mirror the API's paths (mounted at /, and at /c/<slug>/ for
connections other than the default)."""

from django.urls import include, path

from .views import pages

app_name = "runs_ui"

# Mounted twice: at the root for the default connection, under c/<slug>/ for the others.
upstream_patterns = [
    path("threads/<str:thread_id>/", pages.thread_detail, name="thread"),
    path("threads/<str:thread_id>/export.json", pages.export_thread, name="thread-export"),
    path("threads/<str:thread_id>/watch/", pages.watch_thread, name="thread-watch"),
    path("threads/<str:thread_id>/runs/<str:run_id>/", pages.run_detail, name="run"),
    path("threads/<str:thread_id>/runs/<str:run_id>/export.json", pages.export_run, name="run-export"),
    path("threads/<str:thread_id>/runs/<str:run_id>/steps/<str:step_id>/", pages.step_detail, name="step"),
    path("files/<str:file_id>/content", pages.file_content, name="file-content"),
]

urlpatterns = [
    path("", pages.home, name="home"),
    path("go/", pages.goto, name="goto"),
    path("index/add/", pages.add_threads, name="threads-add"),
    path("index/import/", pages.import_threads, name="threads-import"),
    *upstream_patterns,
    path("c/<slug:connection>/", include(upstream_patterns)),
]
