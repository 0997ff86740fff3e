"""Where a page finds a channel's or a video's picture: always Chirp's own copy (imports:artwork),
or a placeholder when Chirp has none; never YouTube's hosts."""

from __future__ import annotations

from django import template
from django.templatetags.static import static
from django.urls import reverse

from imports.artwork import digest_of
from imports.models import Channel, Video

register = template.Library()

PLACEHOLDERS = {
    "avatar": "imports/placeholder-avatar.svg",
    "thumbnail": "imports/placeholder-thumbnail.svg",
}


@register.simple_tag
def artwork_url(obj: Channel | Video | None, kind: str = "") -> str:
    """{% artwork_url channel %} (its avatar), {% artwork_url channel "banner" %} (empty when it
    has none: a page shows no banner then), {% artwork_url video %} (its thumbnail)."""
    if isinstance(obj, Video):
        kind, channel_id = "thumbnail", obj.channel_id
    else:
        kind, channel_id = kind or "avatar", getattr(obj, "pk", None)
    file = getattr(obj, kind, None) if obj is not None else None
    if file and channel_id:
        return reverse("imports:artwork", args=[channel_id, digest_of(file.name)])
    placeholder = PLACEHOLDERS.get(kind)
    return static(placeholder) if placeholder else ""
