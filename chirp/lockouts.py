"""Throttling of password guessing, through django-axes.

Axes counts failed sign-ins per user name and per client address (settings.py says how many
and for how long). Past the limit, any sign-in with that name or from that address is refused,
the right password included, until the cool-off has passed or staff lift the lock-out in the
admin. Both sign-in pages (Chirp's and the admin's) answer with their own form and a message
that says when to try again.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from datetime import timedelta

from asgiref.sync import sync_to_async
from axes.helpers import get_cool_off, get_lockout_response
from axes.middleware import AxesMiddleware
from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

logger = logging.getLogger(__name__)


def client_ip(request: HttpRequest) -> str | None:
    """The address failures are counted against: the connection's, unless a proxy we trust
    names the client in CHIRP_CLIENT_IP_HEADER."""
    header = settings.CHIRP_CLIENT_IP_HEADER
    if header and (value := request.headers.get(header)):
        # X-Forwarded-For lists every hop; only the last one was written by our own proxy,
        # the ones before it are whatever the client chose to send.
        candidate = value.split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            logger.warning("%s holds no address (%r): using the connection's", header, value)
    return request.META.get("REMOTE_ADDR")


def lockout_message(cool_off: timedelta) -> str:
    minutes = math.ceil(cool_off.total_seconds() / 60)
    until = timezone.localtime(timezone.now() + cool_off)
    return (
        f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes != 1 else ''}, "
        f"after {until:%H:%M} ({until.tzname()}), or ask an administrator to lift the lock-out."
    )


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """Axes' answer to a refused sign-in: the same sign-in page, saying when to try again."""
    cool_off = get_cool_off(request) or timedelta(0)
    message = lockout_message(cool_off)
    context = getattr(original_response, "context_data", None) or {}
    form = context.get("form")
    if isinstance(original_response, TemplateResponse) and isinstance(form, forms.Form):
        # The form says "wrong password", which is not why the sign-in was refused.
        form.errors.pop(forms.forms.NON_FIELD_ERRORS, None)
        form.add_error(None, message)
        response: HttpResponse = TemplateResponse(
            request, original_response.template_name, context, status=429
        ).render()
    else:
        response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(math.ceil(cool_off.total_seconds()))
    return response


class LockoutMiddleware(AxesMiddleware):
    """django-axes' middleware, whose asynchronous path (8.3) hands the lock-out answer the
    credentials in place of the page's own answer: under uvicorn the sign-in page was lost
    and a bare message came back. The same steps as its synchronous path."""

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        response = await self.get_response(request)
        if settings.AXES_ENABLED and getattr(request, "axes_locked_out", None):
            credentials = getattr(request, "axes_credentials", None)
            response = await sync_to_async(get_lockout_response, thread_sensitive=True)(
                request, response, credentials
            )
        return response
