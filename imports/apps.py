import logging

from django.apps import AppConfig

logger = logging.getLogger(__name__)


def resume_websub_at_start(sender, **kwargs) -> None:
    """A worker process just started: the push notifications a killed one left unhandled are
    queued again (handling one twice changes nothing)."""
    from django.db import connections

    from imports import websub

    try:
        websub.resume_pending()
    except Exception:
        logger.exception("Could not resume WebSub notifications at worker start")
    finally:
        connections.close_all()


class ImportsConfig(AppConfig):
    name = "imports"
    verbose_name = "Channels"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        from chirp import schedules

        post_spawn.connect(resume_websub_at_start, dispatch_uid="imports.resume_websub")

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
