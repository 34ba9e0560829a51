"""Top-level URLs: the dashboard, the Django admin and login, and (when it is the upstream, or SANDBOX_MOUNT
asks for it) the built-in sandbox API."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from runs_ui.login_throttle import LoginView

urlpatterns = [
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
if settings.SANDBOX_MOUNT:
    # The embedded default upstream, reached by the dashboard over HTTP like any other.
    urlpatterns.append(path("sandbox/v1/", include("sandbox.urls")))
urlpatterns.append(path("", include("runs_ui.urls")))
