"""django-q2 tasks of the imports app: plain functions queued by dotted path."""

from __future__ import annotations


def poll_followed_channels() -> dict[str, int]:
    from imports import following

    return following.poll_due()


def send_websub_request(subscription_id: int) -> str:
    from imports import websub

    return websub.send_request(subscription_id)


def process_websub_notification(notification_id: int) -> str:
    from imports import websub

    return websub.process_notification(notification_id)


def run_websub_due() -> dict[str, int]:
    from imports import websub

    return websub.run_due()


def sweep_media_scratch() -> int:
    from imports import scratch

    return scratch.sweep_abandoned()
