from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect


class FirstRunSetupMiddleware:
    """While no account exists, every page leads to the one-time setup page."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.has_users = False

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not self.has_users:
            self.has_users = get_user_model().objects.exists()
            setup_url = reverse("setup")
            exempt = (setup_url, reverse("events"), "/static/", "/favicon", "/api/")
            if not self.has_users and not request.path.startswith(exempt):
                if getattr(request, "htmx", False):
                    return HttpResponseClientRedirect(setup_url)
                return redirect(setup_url)
        return self.get_response(request)


class LoginRequiredMiddleware(DjangoLoginRequired):
    """Django's, with answers that fit the client: HTMX is sent to the login page as a whole
    page (HX-Redirect, never a login form swapped into a fragment) and the API answers 401
    (but its docs page is a page, for a person: the login page first)."""

    def handle_no_permission(self, request: HttpRequest, view_func) -> HttpResponse:
        if request.path.startswith("/api/") and request.path != reverse("api_docs"):
            return JsonResponse({"error": "Authentication required."}, status=401)
        if getattr(request, "htmx", False):
            response = super().handle_no_permission(request, view_func)
            return HttpResponseClientRedirect(response["Location"])
        return super().handle_no_permission(request, view_func)
