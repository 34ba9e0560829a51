"""Top-level URLs: the dashboard, the Django admin and login, and the built-in sandbox API."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    # The embedded default upstream, reached by the dashboard over HTTP like any other.
    path("sandbox/v1/", include("sandbox.urls")),
    path("", include("runs_ui.urls")),
]
