from __future__ import annotations

import re

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_eventstream.views import events

from chirp import dashboard, live, openapi
from chirp.api import api_view
from chirp.forms import ApiTokenForm, FirstUserForm
from chirp.models import ApiToken


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The dashboard: the user's jobs of every lane and what they have (chirp.dashboard)."""
    from imports.models import ImportJob

    context = dashboard.context_for(request.user)
    context["banner"] = ImportJob.banner_for(request.user.pk)
    return render(request, "chirp/home.html", context)


@login_not_required
@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever the page says: send them to the SVG icon."""
    return redirect(static("favicon.svg"))


@login_not_required
@require_http_methods(["GET", "POST"])
def setup(request: HttpRequest) -> HttpResponse:
    """One-time set-up: while no account exists, anyone who reaches the server creates the
    first (admin) account. Afterwards this page is gone."""
    users = get_user_model().objects
    if users.exists():
        return redirect("home")
    form = FirstUserForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            if users.select_for_update().exists():
                return redirect("login")
            user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("home")
    return render(request, "chirp/setup.html", {"form": form})


@login_not_required
@require_GET
def event_stream(request: HttpRequest) -> HttpResponse:
    """The signed-in user's live events (server-sent). Anyone else gets a real 403."""
    if not request.user.is_authenticated:
        return HttpResponseForbidden("Sign in to receive live updates.")
    own = live.user_channel(request.user.pk)
    asked = request.GET.getlist("channel")
    if any(channel != own for channel in asked):
        return HttpResponseForbidden("You can only receive your own live updates.")
    if problem := _stream_request_problem(request):
        return HttpResponseBadRequest(problem, content_type="text/plain; charset=utf-8")
    limit = settings.CHIRP_MAX_STREAMS_PER_USER
    if live.streams_held(request.user.pk) >= limit:
        message = live.TOO_MANY_STREAMS.format(limit=limit)
        response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = "30"
        return response
    # The sign-in check took a connection; the stream must not hold it while it waits.
    live.release_connection()
    return events(request, channels=[own])


@api_view("GET")
def openapi_json(request: HttpRequest) -> HttpResponse:
    """The API's description, for a token as for a session (it is part of the API)."""
    return JsonResponse(openapi.DOCUMENT, json_dumps_params={"indent": 2})


@require_GET
def api_docs(request: HttpRequest) -> HttpResponse:
    context = {
        "info": openapi.DOCUMENT["info"],
        "introduction": openapi.description_html(),
        "operations": openapi.operations(),
    }
    return render(request, "chirp/api_docs.html", context)


def _get_token_for_user(request: HttpRequest, pk: int) -> ApiToken:
    """One of the signed-in user's own API tokens; anyone else's is a 404."""
    return get_object_or_404(ApiToken, pk=pk, user=request.user)


def _render_account(request: HttpRequest, form: ApiTokenForm, status: int = 200) -> HttpResponse:
    tokens = request.user.api_tokens.order_by("-created")
    return render(request, "chirp/account.html", {"tokens": tokens, "form": form}, status=status)


@require_GET
def account(request: HttpRequest) -> HttpResponse:
    return _render_account(request, ApiTokenForm())


@never_cache  # the answer holds the new key: no cache, and no back button, keeps a copy
@require_POST
def create_api_token(request: HttpRequest) -> HttpResponse:
    """Create a token and show its key, in this answer only: the key is never stored (only its
    hash), so it is not redirected to a page that would have to keep it somewhere."""
    form = ApiTokenForm(request.POST)
    if not form.is_valid():
        return _render_account(request, form, status=400)
    token, key = ApiToken.create(request.user, form.cleaned_data["name"], form.expires())
    return render(request, "chirp/api_token_created.html", {"token": token, "key": key})


@require_POST
def revoke_api_token(request: HttpRequest, pk: int) -> HttpResponse:
    token = _get_token_for_user(request, pk)
    token.delete()
    messages.success(request, f"The token “{token.name}” is revoked: it no longer works.")
    return redirect("account")


# A position in the stream: "user-<id>:<event number>" (what the stream itself sends as ids).
_LAST_EVENT_ID = re.compile(r"[^:,]+:\d+")


def _stream_request_problem(request: HttpRequest) -> str | None:
    """What django-eventstream would fail on with an exception (a 500) rather than an answer.
    `recover` and `es-meta` belong to a GRIP proxy (Pushpin), which Chirp does not use."""
    if "es-meta" in request.GET:
        return "Invalid request: es-meta is not accepted here (no GRIP proxy in front of Chirp)."
    if "recover" in request.GET:
        return "Invalid request: recover is not accepted here (no GRIP proxy in front of Chirp)."
    last = request.headers.get("Last-Event-ID") or next(
        (value for value in reversed(request.GET.getlist("lastEventId")) if value), ""
    )
    if last and last != "error" and not all(_LAST_EVENT_ID.fullmatch(p) for p in last.split(",")):
        return "Invalid request: Last-Event-ID must be an id this stream sent, such as user-1:42."
    return None
