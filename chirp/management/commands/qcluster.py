"""django-q2's qcluster, with a clean hand-back of running jobs on SIGTERM / SIGINT.

The stock cluster lets a running task finish before it stops. A lane task may run for a slice
of a minute, so this command shares an event with the worker processes it forks: when the
cluster is told to stop, running lanes finish (or hand back) their current item and return.
"""

from __future__ import annotations

import multiprocessing
import os

from django.conf import settings
from django.db import connections
from django_q.cluster import Cluster
from django_q.management.commands import qcluster

from chirp import engine
from chirp.signals import cluster_starting


class ChirpCluster(Cluster):
    def sig_handler(self, signum, frame) -> None:
        if engine.shutdown_event is not None:
            engine.shutdown_event.set()
        super().sig_handler(signum, frame)


def keep_worker_connections(max_age: int) -> None:
    """The worker's processes keep their database connections for `max_age` seconds, checked
    before each task's first query (CONN_HEALTH_CHECKS). django-q2 closes old connections
    before every task and after every result: with the web's default of 0 each task, however
    small, opened two (a PostgreSQL backend forked and authenticated each time, about 3 ms
    of the database's CPU and 0.6 ms of the worker's)."""
    for alias in connections:
        connections.settings[alias]["CONN_MAX_AGE"] = max_age
        connections.settings[alias]["CONN_HEALTH_CHECKS"] = True


class Command(qcluster.Command):
    def handle(self, *args, **options) -> None:
        # Created before the cluster forks its sentinel and workers, so they all share it.
        engine.shutdown_event = multiprocessing.get_context("fork").Event()
        if options.get("cluster_name"):
            os.environ["Q_CLUSTER_NAME"] = options["cluster_name"]
        keep_worker_connections(settings.CHIRP_WORKER_CONN_MAX_AGE)
        # Once per cluster, before it forks: work a killed cluster left behind is queued again
        # here, not by every worker process as it spawns (django-q2's post_spawn comes again
        # with each recycled worker, mid-run, when nothing was lost).
        try:
            cluster_starting.send(sender=self.__class__)
        finally:
            connections.close_all()  # not shared with the forked processes
        cluster = ChirpCluster()
        cluster.start()
        if options.get("run_once"):
            cluster.stop()
