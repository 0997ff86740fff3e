from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django_eventstream import get_current_event_id

from chirp import live


def live_stream(request: HttpRequest) -> dict[str, object]:
    """The signed-in user's stream URL, starting at the event the page was rendered at, so
    nothing sent between the render and the stream's opening is missed."""

    def url() -> str:
        channel = live.user_channel(request.user.pk)
        return f"{reverse('events')}?lastEventId={get_current_event_id([channel])}"

    return {"live_stream_url": SimpleLazyObject(url)}


# The top bar's sections, by URL namespace (or URL name when outside one).
_SECTIONS = {"uploads": "uploads", "imports": "channels", "admin": "admin"}
_GALLERY_VIEWS = {"gallery", "image_detail"}


def navigation(request: HttpRequest) -> dict[str, str]:
    """Which top-bar section the page belongs to, marked as the current one."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return {"nav_section": ""}
    if match.namespace == "uploads" and match.url_name in _GALLERY_VIEWS:
        return {"nav_section": "gallery"}
    if match.namespace:
        return {"nav_section": _SECTIONS.get(match.namespace, "")}
    return {"nav_section": match.url_name or ""}
