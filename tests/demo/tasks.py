"""Tasks the tests run through a real worker."""

from __future__ import annotations

from django.db import connection
from django.db.backends.signals import connection_created

_opened = 0


def _count(sender, **kwargs) -> None:
    global _opened
    _opened += 1


connection_created.connect(_count, dispatch_uid="tests.demo.count_connections")


def connections_opened() -> int:
    """How many database connections this worker process has opened, this task's included."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return _opened
