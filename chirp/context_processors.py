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
