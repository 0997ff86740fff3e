"""django-q2 tasks of the imports app: plain functions queued by dotted path."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def poll_followed_channels() -> dict[str, int]:
    from imports import following

    return following.poll_due()


def send_websub_request(subscription_id: int) -> str:
    from imports import websub

    return websub.send_request(subscription_id)


def process_websub_notification(notification_id: int) -> str:
    from chirp.db import worker_commits
    from imports import websub

    # Handling one again changes nothing, and one whose mark was lost is handled again: its
    # commits need not wait for the disk (chirp/db.py).
    with worker_commits():
        return websub.process_notification(notification_id)


def run_websub_due() -> dict[str, int]:
    from imports import websub

    return websub.run_due()


def delete_old_list_drafts() -> int:
    from imports.models import ListBatch

    deleted = ListBatch.delete_old_drafts()
    if deleted:
        logger.info("Deleted %d channel list preview(s) never started", deleted)
    return deleted


def sweep_media_scratch() -> int:
    from imports import scratch

    return scratch.sweep_abandoned()


def fetch_missing_artwork() -> str:
    from django.conf import settings

    from imports import artwork

    if not settings.CHIRP_ARTWORK_BACKFILL_BATCH:
        return "Off (CHIRP_ARTWORK_BACKFILL_BATCH is 0)."
    return str(artwork.backfill(settings.CHIRP_ARTWORK_BACKFILL_BATCH))
