"""What every JSON API view shares: who is calling, and answers in JSON.

A caller is either a browser with a session (then CSRF applies to state changes, exactly as
for forms) or a script with an API token (`Authorization: Bearer <key>`; a browser never
sends that header by itself, so such requests cannot be forged cross-site). This is the
approach of Django REST framework's SessionAuthentication, without the framework.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from chirp.models import ApiToken

View = Callable[..., HttpResponse]


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request: HttpRequest, reason: str) -> str:  # type: ignore[override]
        return reason


def _csrf_failure(request: HttpRequest) -> str | None:
    check = _CsrfCheck(lambda request: HttpResponse())
    check.process_request(request)
    return check.process_view(request, None, (), {})  # type: ignore[arg-type, return-value]


def _expired_message(token: ApiToken) -> str:
    expired = timezone.localtime(token.expires).strftime("%Y-%m-%d %H:%M %Z")
    return f"This API token expired on {expired}. Create a new one on your account page."


def error(message: str, status: int, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def api_view(*methods: str) -> Callable[[View], View]:
    """Authenticate (token or session), check the method and CSRF, then call the view."""

    def decorate(view: View) -> View:
        @csrf_exempt  # checked below for session callers only
        @login_not_required  # answered below with 401 JSON rather than a login page
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                response = error("Method not allowed.", 405)
                response["Allow"] = ", ".join(methods)
                return response
            scheme, _, key = request.headers.get("Authorization", "").partition(" ")
            if scheme:
                token = ApiToken.for_key(key) if scheme.lower() == "bearer" else None
                if token is None:
                    return error("Invalid API token.", 401)
                if token.has_expired:
                    return error(_expired_message(token), 401)
                token.record_use()
                request.user = token.user
            elif not request.user.is_authenticated:
                return error("Authentication required.", 401)
            elif request.method not in ("GET", "HEAD", "OPTIONS") and (
                reason := _csrf_failure(request)
            ):
                return error(f"CSRF check failed: {reason}", 403)
            try:
                return view(request, *args, **kwargs)
            except InvalidBody as exc:
                return error(str(exc), 400)

        return wrapped

    return decorate


class InvalidBody(ValueError):
    """A request body the API cannot read; its message is the 400 answer's `error`."""


def json_body(request: HttpRequest, example: str = "") -> dict[str, Any]:
    """The request's JSON object, or its form fields. Raises InvalidBody (answered 400 by
    api_view) for anything else: not JSON, not UTF-8, nested too deeply to parse, or JSON whose
    top level is not an object. `example` shows the caller what to send."""
    if request.content_type != "application/json":
        return request.POST.dict()
    expected = f"The body must be a JSON object{f' such as {example}' if example else ''}."
    try:
        data = json.loads(request.body or b"{}")
    except RecursionError:
        # '[' * 100000 exhausts the parser's stack; no real request nests that deep.
        raise InvalidBody("The JSON body is nested too deeply.") from None
    except UnicodeDecodeError:
        raise InvalidBody("The body must be UTF-8 encoded JSON.") from None
    except ValueError as exc:
        raise InvalidBody(f"The body is not valid JSON ({exc}). {expected}") from None
    if not isinstance(data, dict):
        raise InvalidBody(expected)
    return data
