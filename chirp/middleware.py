from __future__ import annotations

from http import HTTPStatus

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
            exempt = (setup_url, reverse("events"), "/static/", "/favicon", "/api/", "/websub/")
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


class JsonApiErrorsMiddleware:
    """Under /api/, every error is answered in JSON, whatever produced it: an unknown URL
    (Django's 404 page), a malformed request Django refuses (400), or an exception no view
    caught (500 {"error": "Internal error"}; Django's handler has already logged it with its
    traceback). Outermost, so it sees what every other middleware answers too."""

    messages = {
        400: "Bad request.",
        403: "Forbidden.",
        404: "Not found.",
        405: "Method not allowed.",
        500: "Internal error",
    }

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.path.startswith("/api/")
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            return self.as_json(response)
        return response

    def as_json(self, response: HttpResponse) -> JsonResponse:
        status = response.status_code
        try:
            fallback = HTTPStatus(status).phrase + "."
        except ValueError:
            fallback = "Error."
        answer = JsonResponse({"error": self.messages.get(status, fallback)}, status=status)
        for header in ("Allow", "Retry-After", "WWW-Authenticate"):
            if header in response:
                answer[header] = response[header]
        return answer
