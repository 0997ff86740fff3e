"""django-q2 tasks of the uploads app (scrape jobs themselves run in chirp's uploads lane)."""

from __future__ import annotations

import logging

from uploads.models import ScrapeJob

logger = logging.getLogger(__name__)


def delete_old_scrape_jobs() -> int:
    deleted = ScrapeJob.delete_expired()
    if deleted:
        logger.info("Deleted %d finished scrape job(s) past retention", deleted)
    return deleted
