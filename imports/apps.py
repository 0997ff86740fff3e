import logging

from django.apps import AppConfig

logger = logging.getLogger(__name__)


def resume_websub_at_start(sender, **kwargs) -> None:
    """The cluster is starting: the push notifications a killed one left unhandled are queued
    again (handling one twice changes nothing). Once per cluster, not per worker process: a
    recycled worker lost nothing, and each re-queued notification is a task to run."""
    from imports import websub

    try:
        websub.resume_pending()
    except Exception:
        logger.exception("Could not resume WebSub notifications at the cluster's start")


def sweep_deleted_import(sender, instance, **kwargs) -> None:
    """An import is deleted (the admin, its owner's account): the partial files of its media
    downloads that no other import will resume are removed (imports/scratch.py)."""
    from imports import scratch

    try:
        scratch.sweep_when_deleted(instance)
    except Exception:  # the scratch folder is beside the deletion: it never stops it
        logger.exception("Could not sweep the downloads of %s", instance)


class ImportsConfig(AppConfig):
    name = "imports"
    verbose_name = "Channels"

    def ready(self) -> None:
        from django.db.models.signals import pre_delete

        from chirp import schedules
        from chirp.signals import cluster_starting

        cluster_starting.connect(resume_websub_at_start, dispatch_uid="imports.resume_websub")
        pre_delete.connect(
            sweep_deleted_import, sender="imports.ImportJob", dispatch_uid="imports.sweep_deleted"
        )

        # Every minute: the followed channels whose poll (or full check) is due. The channels
        # are spread over CHIRP_FOLLOW_POLL_MINUTES, so each minute polls about as many.
        schedules.register(
            "Poll followed channels", "imports.tasks.poll_followed_channels", minutes=1
        )
        # Every minute: WebSub requests whose time has come (first tries, retries after a
        # backoff, renewals at ~80 % of their lease) and notifications whose task was lost.
        schedules.register("WebSub subscriptions", "imports.tasks.run_websub_due", minutes=1)
        # Every hour: channel lists previewed and never started, past CHIRP_LIST_DRAFT_HOURS.
        schedules.register(
            "Delete list previews never started", "imports.tasks.delete_old_list_drafts", minutes=60
        )
        # Every hour: the scratch files of media downloads nobody will resume (cancelled or
        # deleted imports, deleted videos), once older than CHIRP_MEDIA_SCRATCH_GRACE_HOURS.
        schedules.register(
            "Sweep abandoned media downloads", "imports.tasks.sweep_media_scratch", minutes=60
        )
        # Every 10 minutes: a batch of the pictures missing from what was imported before
        # Chirp kept artwork (imports/artwork.py's backfill, through the YouTube limiter).
        schedules.register(
            "Fetch missing artwork", "imports.tasks.fetch_missing_artwork", minutes=10
        )
