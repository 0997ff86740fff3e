"""django-q2 tasks of the imports app: plain functions queued by dotted path."""

from __future__ import annotations


def poll_followed_channels() -> dict[str, int]:
    from imports import following

    return following.poll_due()
