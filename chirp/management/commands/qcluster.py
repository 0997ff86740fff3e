"""django-q2's qcluster, with a clean hand-back of running jobs on SIGTERM / SIGINT.

The stock cluster lets a running task finish before it stops. A lane task may run for a slice
of a minute, so this command shares an event with the worker processes it forks: when the
cluster is told to stop, running lanes finish (or hand back) their current item and return.
"""

from __future__ import annotations

import multiprocessing
import os

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


class Command(qcluster.Command):
    def handle(self, *args, **options) -> None:
        # Created before the cluster forks its sentinel and workers, so they all share it.
        engine.shutdown_event = multiprocessing.get_context("fork").Event()
        if options.get("cluster_name"):
            os.environ["Q_CLUSTER_NAME"] = options["cluster_name"]
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
