"""Chirp's stores: how much waiting for the disk a write is worth, a lean UPDATE for the hot
path, and the Redis client.

Everything the worker writes can be redone from its inputs: a video's metadata is fetched
again, an image detected again, a live update is only a picture of the database. So on
PostgreSQL the worker's connections commit without waiting for the WAL to reach the disk
(`synchronous_commit = off`, CHIRP_WORKER_ASYNC_COMMIT). That saves a disk flush on every one
of the many small commits a job makes (a stage of a video, an item done, a live event).

What it risks, and why that is safe here: if PostgreSQL itself stops abruptly (a power cut, a
crash of the database server, not of the worker), the last moment of the worker's commits (at
most three times `wal_writer_delay`, 0.6 s by default) is lost. PostgreSQL stays consistent:
what is lost is the newest commits, in order, never a part of one. The engine treats those
items as it treats a worker that died: they are still queued or processing, so they are done
again. Web requests (what a person submits) keep the durable default.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import connections, models, router
from django.db.backends.signals import connection_created
from django.dispatch import receiver

_thread = threading.local()


@contextlib.contextmanager
def worker_commits(alias: str = "default") -> Iterator[None]:
    """This thread's commits, while inside, do not wait for the disk (see the module's
    docstring). Applies to the open connection and to any the thread opens meanwhile."""
    if getattr(_thread, "relaxed", False) or not settings.CHIRP_WORKER_ASYNC_COMMIT:
        yield
        return
    _thread.relaxed = True
    connection = connections[alias]
    if connection.connection is not None:
        _set(connection, "OFF")
    try:
        yield
    finally:
        _thread.relaxed = False
        if connection.connection is not None and not connection.in_atomic_block:
            with contextlib.suppress(Exception):  # a broken connection is closed anyway
                _set(connection, "DEFAULT")


def _set(connection, value: str) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SET synchronous_commit TO {value}")


@receiver(connection_created)
def _relax_new_connection(sender, connection, **kwargs) -> None:
    if getattr(_thread, "relaxed", False):
        _set(connection, "OFF")


@functools.cache
def redis_client(url: str):
    """One client (a connection pool, safe across threads) per Redis URL, for every use."""
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def update_row(instance: models.Model, **values: Any) -> None:
    """`type(instance).objects.filter(pk=instance.pk).update(**values)` for plain values, with
    the SQL built once per model and set of fields rather than on every call: the ORM's query
    building costs more than the round trip for the small UPDATEs a worker makes for every
    video. Values are prepared by their fields, as the ORM does (JSON, dates, time zones)."""
    model = type(instance)
    alias = router.db_for_write(model, instance=instance)
    connection = connections[alias]
    names = tuple(values)
    sql = _update_sql(model, names, alias)
    get_field = model._meta.get_field
    params = [get_field(name).get_db_prep_save(values[name], connection) for name in names]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, instance.pk])


@functools.cache
def _update_sql(model: type[models.Model], names: tuple[str, ...], alias: str) -> str:
    quote = connections[alias].ops.quote_name
    meta = model._meta
    columns = ", ".join(f"{quote(meta.get_field(name).column)} = %s" for name in names)
    # Identifiers from the model, quoted; every value is a parameter.
    return f"UPDATE {quote(meta.db_table)} SET {columns} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608
