from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from chirp import views
from imports import views as imports_views

urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("setup/", views.setup, name="setup"),
    path("events/", views.event_stream, name="events"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/", views.account, name="account"),
    path("accounts/tokens/", views.create_api_token, name="create_api_token"),
    path("accounts/tokens/<int:pk>/revoke/", views.revoke_api_token, name="revoke_api_token"),
    path("admin/", admin.site.urls),
    path("uploads/", include("uploads.urls")),
    path("channels/", include("imports.urls")),
    # The one public path besides sign-in: WebSub's hub verifies and delivers here.
    path("websub/<str:token>/", imports_views.websub_callback, name="websub_callback"),
    path("api/openapi.json", views.openapi_json, name="openapi"),
    path("api/docs/", views.api_docs, name="api_docs"),
    path("api/channels/", include("imports.api_urls")),
    path("api/", include("uploads.api_urls")),
]
