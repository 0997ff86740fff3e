from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_migrate, post_save
from django.dispatch import Signal, receiver
from django_q.signals import post_spawn

logger = logging.getLogger(__name__)

# Sent once by `manage.py qcluster` as the cluster starts, before it forks its processes: for
# what a killed cluster may have left behind (a receiver's exceptions are its own to log).
cluster_starting = Signal()


@receiver(post_migrate)
def create_schedules(sender, app_config=None, using="default", **kwargs) -> None:
    """Create the periodic tasks once, idempotently; staff see them in the admin."""
    if app_config is None or app_config.label != "chirp":
        return
    from django_q.models import Schedule

    from chirp import schedules

    for name, (func, minutes) in schedules.all_schedules().items():
        Schedule.objects.using(using).update_or_create(
            name=name,
            defaults={
                "func": func,
                "schedule_type": Schedule.MINUTES,
                "minutes": minutes,
                "repeats": -1,
            },
        )


@receiver(post_spawn)
def resume_lanes_at_start(sender, proc_name: str = "", **kwargs) -> None:
    """A worker process just started (or was reborn): resume lanes its predecessor held."""
    from chirp import engine

    try:
        engine.kick_lanes()
    except Exception:
        logger.exception("Could not resume lanes at worker start")
    finally:
        from django.db import connections

        connections.close_all()


@receiver(user_logged_out)
def say_signed_out(sender, request=None, **kwargs) -> None:
    """The login page the user lands on after logging out tells them it worked."""
    if request is not None:
        messages.success(request, "You have been signed out.", fail_silently=True)


@receiver(post_save)
def show_new_job_on_dashboard(sender, instance, created: bool = False, **kwargs) -> None:
    """A new job of any lane joins its owner's dashboard, in line (whoever created it: a
    page, the API, the admin). Not one created where the dashboard shows none (a channel
    list's draft, made by every preview: it joins once started)."""
    from chirp.jobs import Job

    if created and isinstance(instance, Job):
        from chirp import dashboard

        if dashboard.shows(instance):
            dashboard.publish_on_commit(instance)
