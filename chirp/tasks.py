"""django-q2 tasks of the job engine: plain functions, queued by dotted path with ids."""

from __future__ import annotations

from chirp import engine


def run_lane(lane: str) -> str:
    return engine.run_lane(lane)


def kick_lanes() -> dict[str, int]:
    return engine.kick_lanes()
