from __future__ import annotations

from django import template

from imports.models import Quality

register = template.Library()


@register.simple_tag
def download_qualities() -> list[tuple[str, str]]:
    """What a card's "Download" menu offers: the same choices as the video page's."""
    return Quality.choices


@register.filter
def clock(seconds: float | None) -> str:
    """Seconds as YouTube shows a duration or a moment: 4:05, 1:02:03."""
    if seconds is None or seconds == "":
        return ""
    total = int(float(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


@register.filter
def compact(number: int | None) -> str:
    """1234 → 1.2K, as YouTube shows counts."""
    if number is None:
        return ""
    for size, suffix in ((10**9, "B"), (10**6, "M"), (10**3, "K")):
        if number >= size:
            return f"{number / size:.1f}".rstrip("0").rstrip(".") + suffix
    return str(number)
