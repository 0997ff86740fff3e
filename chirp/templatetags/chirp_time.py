"""Times as people say them: "just now", "2 minutes ago", "3 hours ago" (never "0 minutes")."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()


@register.filter
def ago(value: datetime | None, now: datetime | None = None) -> str:
    """How long ago `value` was, in its largest unit; under a minute (or a clock a little
    ahead) it is "just now", where Django's timesince would say "0 minutes"."""
    if not value:
        return ""
    now = now or timezone.now()
    if (now - value).total_seconds() < 60:
        return "just now"
    # timesince joins number and unit with a no-break space; plain text reads the same.
    return timesince(value, now, depth=1).replace("\xa0", " ") + " ago"
