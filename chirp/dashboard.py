"""The home page's dashboard: one user's jobs of every lane (running, paused, waiting in line,
ended), the totals of what they can see, and the live fragment that redraws it all.

Each job row is `chirp/partials/dashboard_job.html` under its own id (`dash-<job dom_id>`): it
goes out with the job's own fragments after every change (Job.all_fragments), so progress moves
on the dashboard as it does on the app pages. A job that moves between sections (created,
started, paused, ended, sent back in line) sends the whole dashboard once (`dashboard` event).
"""

from __future__ import annotations

from itertools import chain
from typing import Any

from django.db import transaction
from django.template.loader import render_to_string

from chirp import live
from chirp.jobs import PENDING, TERMINAL, Job

# How many ended jobs the dashboard shows, and how many waiting ones (the rest are counted).
RECENT = 8
WAITING_SHOWN = 20
# How many of the newest videos of the channels a user follows it shows.
FOLLOWED = 6
# A job that starts moves everyone behind it up one place: their owners get the dashboard
# again, up to this many of them (a long line of strangers must not stall the worker).
LINE_WATCHERS = 50


def _job_models() -> list[type[Job]]:
    from chirp import engine

    return list(engine.lanes().values())


def shows(job: Job) -> bool:
    """Whether the dashboard has a place for `job` in its status (a draft has none)."""
    return job.status in (PENDING, *TERMINAL, *job.active_statuses(), *job.paused_statuses())


def context_for(user: Any) -> dict[str, Any]:
    """What the dashboard shows `user` (a user or their id): their own jobs only (staff too:
    the admin is where everything is), and totals of what they can see."""
    running: list[Job] = []
    paused: list[Job] = []
    waiting: list[Job] = []
    ended: list[Job] = []
    waiting_count = 0
    totals = totals_for(user)
    for model in _job_models():
        mine = model.objects.filter(owner=user)
        running += mine.filter(status__in=model.active_statuses())
        if model.paused_statuses():
            paused += mine.filter(status__in=model.paused_statuses()).order_by("-updated")[
                :WAITING_SHOWN
            ]
        queued = mine.filter(status=PENDING).order_by("enqueued", "pk")
        waiting += queued[:WAITING_SHOWN]
        waiting_count += queued.count()
        ended += mine.filter(status__in=TERMINAL, finished__isnull=False).order_by(
            "-finished", "-pk"
        )[:RECENT]
    running.sort(key=lambda job: job.started or job.created)
    paused.sort(key=lambda job: job.updated, reverse=True)
    waiting.sort(key=lambda job: (job.enqueued, job.lane, job.pk))
    ended.sort(key=lambda job: job.finished, reverse=True)
    followed = _followed_videos(user)
    anything = (
        running or paused or waiting or ended or any(n for _, n in totals) or followed is not None
    )
    return {
        "followed": followed,
        "followed_shown": FOLLOWED,
        "running": running,
        "paused": paused[:WAITING_SHOWN],
        "waiting": waiting[:WAITING_SHOWN],
        "waiting_more": max(0, waiting_count - WAITING_SHOWN),
        "ended": ended[:RECENT],
        "totals": totals,
        "empty": not anything,
    }


def _followed_videos(user: Any) -> list | None:
    """The newest videos of the channels `user` follows (None: they follow none)."""
    from imports.following import new_videos_for

    return new_videos_for(user, FOLLOWED)


def totals_for(user: Any) -> list[tuple[str, int | str]]:
    """(label, count) of what `user` (a user or their id) can see, lane by lane."""
    return list(chain.from_iterable(model.totals_for(user) for model in _job_models()))


def totals_fragment(user_id: int) -> tuple[str, str]:
    """The totals alone: a running job sends them on its tick (engine.Monitor), so what it
    brings in counts while it runs, not only once it ends."""
    html = render_to_string("chirp/home.html#totals", {"totals": totals_for(user_id)})
    return ("dash-totals", html)


def fragment(user_id: int) -> tuple[str, str]:
    return ("dashboard", render_to_string("chirp/home.html#dashboard", context_for(user_id)))


def publish_on_commit(job: Job, line_moved: bool = False) -> None:
    """Send the owner their dashboard once the transaction commits: `job` changed section.
    `line_moved`: the job left the line, so the owners of the jobs still waiting in its lane
    see their place change too."""

    def render() -> None:
        users = [job.owner_id]
        if line_moved:
            behind = (
                type(job)
                .objects.filter(status=PENDING)
                .exclude(owner=job.owner_id)
                .order_by()
                .values_list("owner", flat=True)
                .distinct()[:LINE_WATCHERS]
            )
            users = list(chain(users, behind))
        for user_id in users:
            live.publish_on_commit(user_id, lambda user_id=user_id: [fragment(user_id)])

    transaction.on_commit(render)


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, ... 11th, 12th, 13th, ... 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
