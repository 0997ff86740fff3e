"""Periodic tasks, created as django-q2 schedules after every migrate (idempotently)."""

from __future__ import annotations

_schedules: dict[str, tuple[str, int]] = {
    "Resume lanes whose worker stopped": ("chirp.tasks.kick_lanes", 1),
}


def register(name: str, func: str, minutes: int) -> None:
    _schedules[name] = (func, minutes)


def all_schedules() -> dict[str, tuple[str, int]]:
    return dict(_schedules)
