"""Following channels: new uploads found by a poll of the RSS feed, a full check of the
videos tab, or a WebSub push (imports/websub.py), all handled by one function, `handle_entries`.

- An unknown video published after the follow began is created at once (stage `created`)
  and enriched by the engine, in a "follow" import job of the channel (ImportJob.followed:
  created already prepared, its items the new videos; while it is open, further new videos
  join it), owned by the channel's earliest follower; every follower gets the new card and a
  toast "New video from <channel>: <title>", and the card's stages go to everyone who sees
  the channel (ImportJob.watchers), as any import's do.
- A known video: its title and description are refreshed from the entry (YouTube notifies
  edits); nothing is fetched or downloaded again, no toast.
- The same entry twice, or out of order, changes nothing the second time: a channel's
  entries are handled under a lock on its watch, and a video is created once.
- When every entry of a full feed is unknown and newer than the follow, more may have come
  than the feed holds: the videos tab is listed until the first known video (the gap).

`poll_due` (every minute, chirp.schedules) polls the channels whose turn has come (but not
those whose push is verified) and checks in full those whose period has passed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone

from chirp import engine, live
from chirp.jobs import PENDING
from imports.enrichment import create_videos, limiter_for, with_retries, youtube_client
from imports.feeds import FeedEntry, fetch_feed
from imports.limiter import YouTubePaused
from imports.models import (
    Channel,
    ChannelWatch,
    CheckMethod,
    Follow,
    ImportJob,
    ImportJobItem,
    Video,
    WebSubSubscription,
)
from imports.youtube import YOUTUBE, ChannelEntry, ChannelRef, YouTubeError

logger = logging.getLogger(__name__)

# The feed's size: when all of it is new, the listing fills what lies beyond it.
FEED_SIZE = 15
# A gap listing stops here at the latest (a channel Chirp knows no video of lists no further).
GAP_LIMIT = 500


@dataclass
class Outcome:
    """What handling a batch of entries did."""

    created: list[int] = field(default_factory=list)  # new videos' ids
    refreshed: int = 0  # known videos whose title or description changed
    listed: bool = False  # the gap was filled from the listing


def handle_entries(
    channel: Channel, entries: Sequence[FeedEntry], method: str, *, fill_gap: bool = True
) -> Outcome:
    """Handle what a feed, a listing or a push says about `channel`'s uploads (see the
    module's docstring). Entries of another channel are ignored; nothing happens for a
    channel nobody follows."""
    entries = [e for e in entries if e.channel_id == channel.youtube_id]
    began = (
        Follow.objects.filter(channel=channel)
        .order_by("created")
        .values_list("created", flat=True)
        .first()
    )
    if began is None or not entries:
        return Outcome()
    ids = [e.video_id for e in entries]
    outcome = Outcome()
    if (
        fill_gap
        and len(entries) >= FEED_SIZE
        and all(e.published is not None and e.published >= began for e in entries)
        and not Video.objects.filter(youtube_id__in=ids).exists()
    ):
        gap = _list_gap(channel, exclude=set(ids))
        if gap:
            entries = [*entries, *gap]
            outcome.listed = True

    with transaction.atomic():
        # One batch of a channel at a time: a second delivery waits, then finds the videos.
        ChannelWatch.objects.select_for_update().filter(channel=channel).first()
        existing = {
            youtube_id: (pk, title, description, feed_updated)
            for youtube_id, pk, title, description, feed_updated in Video.objects.filter(
                youtube_id__in=[e.video_id for e in entries]
            ).values_list("youtube_id", "pk", "title", "description", "feed_updated")
        }
        new = [
            e
            for e in _unique(entries)
            if e.video_id not in existing and (e.published is None or e.published >= began)
        ]
        for entry in _unique(entries):
            if entry.video_id in existing:
                outcome.refreshed += _refresh(
                    *existing[entry.video_id], entry, pushed=method == CheckMethod.PUSH
                )
        if new:
            outcome.created = create_videos(channel, [_as_listing_entry(e) for e in new])
            _enqueue(channel, outcome.created)
    if outcome.created:
        published = {e.video_id: e.published for e in entries}
        transaction.on_commit(lambda: _announce(channel, outcome.created, published))
    logger.info(
        "%s of %s: %d new, %d refreshed%s",
        method,
        channel.youtube_id,
        len(outcome.created),
        outcome.refreshed,
        " (gap listed)" if outcome.listed else "",
    )
    return outcome


def new_videos_for(user: Any, limit: int) -> list[Video] | None:
    """The dashboard's "New from channels you follow": the newest videos `user` (a user or
    their id) got from the channels they follow, those created since each follow began;
    None when they follow none (no section)."""
    if not Follow.objects.filter(user=user).exists():
        return None
    # One join on the follows, filtered to this user: its `created` is their follow's.
    videos = Video.objects.for_cards().filter(
        channel__follows__user=user, created__gte=F("channel__follows__created")
    )
    return list(videos.order_by("-created", "-pk")[:limit])


def _unique(entries: Sequence[FeedEntry]) -> list[FeedEntry]:
    seen: set[str] = set()
    unique = []
    for entry in entries:
        if entry.video_id not in seen:
            seen.add(entry.video_id)
            unique.append(entry)
    return unique


def _as_listing_entry(entry: FeedEntry) -> ChannelEntry:
    return ChannelEntry(
        video_id=entry.video_id,
        title=entry.title,
        url=f"{YOUTUBE}/watch?v={entry.video_id}",
        thumbnail_url=entry.thumbnail_url,
    )


def _refresh(
    pk: int,
    title: str,
    description: str,
    feed_updated: datetime | None,
    entry: FeedEntry,
    *,
    pushed: bool,
) -> int:
    """A known video's title and description as the entry has them (1 when they changed);
    its card goes to whoever sees the channel. Nothing is fetched from YouTube. An entry
    older than one applied before (by its `updated` time: the hub may deliver an old edit
    after a newer one) changes nothing; an entry without the time (a listing's) is current.
    A push's time is kept even when nothing changed (a late older push must not undo it); a
    poll's only with a change (a feed is current when fetched, and its 15 entries' times move
    on with every poll: no write per entry per poll)."""
    if entry.updated and feed_updated and entry.updated <= feed_updated:
        return 0
    changes: dict = {}
    if entry.updated:
        changes["feed_updated"] = entry.updated
    if entry.title and entry.title[:500] != title:
        changes["title"] = entry.title[:500]
    if entry.description and entry.description != description:
        changes["description"] = entry.description
    if not changes.keys() - {"feed_updated"}:
        if changes and pushed:
            Video.objects.filter(pk=pk).update(**changes)  # nothing to show: no card sent
        return 0
    Video.objects.filter(pk=pk).update(**changes, updated=timezone.now())
    video = Video.objects.for_cards().get(pk=pk)
    viewers = list(Channel.viewer_ids(video.channel_id))
    transaction.on_commit(lambda: video.publish_to(*viewers))
    return 1


# The media a follow can ask for, from least to most: one file serves every follower (the
# catalogue is shared), so new videos are stored at the most any follower asked for.
_MEDIA_ORDER = ["", "audio", "360", "480", "720", "1080", "best"]


def media_quality_for(channel: Channel) -> str:
    """The quality new videos of `channel` are downloaded at ("" for none): the highest that
    one of its followers asked for."""
    wanted = {
        "" if quality == "none" else quality
        for quality in Follow.objects.filter(channel=channel).values_list("quality", flat=True)
    }
    return max(wanted, key=_MEDIA_ORDER.index, default="")


def _enqueue(channel: Channel, video_ids: list[int]) -> None:
    """The new videos join the channel's open follow job (its earliest follower's), or a new
    one, already prepared: the engine enriches its items as it does any import's."""
    owner_id = (
        Follow.objects.filter(channel=channel)
        .order_by("created", "pk")
        .values_list("user_id", flat=True)
        .first()
    )
    job = (
        ImportJob.objects.select_for_update()
        .filter(
            owner_id=owner_id,
            channel=channel,
            followed=True,
            prepared=True,
            status__in=ImportJob.OPEN_STATUSES,
        )
        .first()
    )
    if job is None:
        job = ImportJob.objects.create(
            owner_id=owner_id,
            channel=channel,
            channel_url=channel.youtube_url,
            followed=True,
            only_new=True,  # its words: "N new videos"
            prepared=True,
            status=PENDING,
            media_quality=media_quality_for(channel),
        )
    ImportJobItem.objects.bulk_create([ImportJobItem(job=job, video_id=pk) for pk in video_ids])
    ImportJob.objects.filter(pk=job.pk).update(
        total=F("total") + len(video_ids), updated=timezone.now()
    )
    job.refresh_from_db()
    job.publish()
    engine.wake_lane_on_commit(ImportJob.lane)


def _announce(
    channel: Channel, video_ids: list[int], published: dict[str, datetime | None]
) -> None:
    """The new cards to everyone who sees the channel (its page, the Following page); to each
    follower also their dashboard's "New from channels you follow", a toast, and
    `video:discovered` (`published`: each video's date in the entry, by YouTube id)."""
    videos = list(Video.objects.for_cards().filter(pk__in=video_ids))
    cards = [(video.card_html(), video) for video in reversed(videos)]
    on_channel = [(f"{channel.dom_id}-video-created", html) for html, _ in cards]
    on_dashboard = [("dash-followed-video-created", html) for html, _ in cards]
    discovered = [video.discovered_event(published.get(video.youtube_id)) for _, video in cards]
    toasts = [
        live.toast(
            f"New video from {channel}: {video.title or video.youtube_id}",
            key=f"new-video-{video.pk}",
        )
        for _, video in cards
    ]
    followers = set(Follow.objects.filter(channel=channel).values_list("user_id", flat=True))
    for user_id in set(Channel.viewer_ids(channel.pk)) | followers:
        if user_id in followers:
            live.publish(user_id, on_channel + on_dashboard + discovered + toasts)
        else:
            live.publish(user_id, on_channel)


def _list_gap(channel: Channel, exclude: set[str]) -> list[FeedEntry]:
    """The channel's videos tab, newest first, until the first video Chirp knows."""
    known = set(channel.videos.values_list("youtube_id", flat=True))
    if not known:
        return []  # nothing to stop at: that would be a whole channel, backfill's work
    with limiter_for(None) as limiter, youtube_client(limiter) as client:
        listing = with_retries(
            lambda: client.fetch_channel(
                ChannelRef.for_channel_id(channel.youtube_id), limit=GAP_LIMIT, known_ids=known
            ),
            limiter,
        )
    return [
        FeedEntry.from_listing(entry, channel.youtube_id)
        for entry in listing.entries
        if entry.video_id not in exclude
    ]


# -- the checks ------------------------------------------------------------------------------


def poll_channel(channel: Channel) -> Outcome | None:
    """Read the channel's feed and handle its entries. None when YouTube did not answer (the
    error is kept on the follows, shown on the Following page)."""
    try:
        with limiter_for(None) as limiter, youtube_client(limiter) as client:
            session = client.http_session()
            entries = with_retries(lambda: fetch_feed(session, channel.youtube_id), limiter)
        outcome = handle_entries(channel, entries, CheckMethod.POLL)
    except YouTubeError as exc:
        record_check(channel, CheckMethod.POLL, str(exc))
        logger.warning("Polling %s failed: %s", channel.youtube_id, exc)
        return None
    record_check(channel, CheckMethod.POLL)
    return outcome


def full_check(channel: Channel) -> Outcome | None:
    """List the channel's videos tab until the first known video, and handle what is new."""
    try:
        entries = _list_gap(channel, exclude=set())
        outcome = handle_entries(channel, entries, CheckMethod.FULL, fill_gap=False)
    except YouTubeError as exc:
        record_check(channel, CheckMethod.FULL, str(exc))
        logger.warning("The full check of %s failed: %s", channel.youtube_id, exc)
        return None
    record_check(channel, CheckMethod.FULL)
    return outcome


def record_check(channel: Channel, method: str, error: str = "") -> None:
    """When and how the channel was checked, on its follows; each follower's Following page
    shows it at once (its "last checked" line)."""
    follows = Follow.objects.filter(channel=channel)
    follows.update(last_checked=timezone.now(), last_check_method=method, last_error=error[:2000])
    for follow in follows.select_related("channel"):
        live.publish_on_commit(follow.user_id, lambda follow=follow: [_check_fragment(follow)])


def _check_fragment(follow: Follow) -> tuple[str, str]:
    html = render_to_string("imports/following.html#check_state", {"follow": follow})
    return (f"{follow.channel.dom_id}-check", html)


def _safely(check, channel: Channel, method: str) -> None:
    """One channel's check; whatever it raises (a pause of the limiter, a bug) is recorded on
    its follows and logged, and the next channel's check goes on."""
    try:
        check(channel)
    except YouTubePaused as exc:
        record_check(
            channel, method, f"Paused: {exc.pause.message or 'YouTube asked Chirp to wait'}"
        )
    except Exception as exc:
        logger.exception("Checking %s failed", channel.youtube_id)
        record_check(channel, method, f"Unexpected error: {exc.__class__.__name__}")


def poll_due(now: datetime | None = None) -> dict[str, int]:
    """Poll every watched channel whose turn has come, and check in full those whose period
    has passed; each claimed first (a conditional UPDATE), so two workers never do one twice."""
    now = now or timezone.now()
    polled = checked = 0
    full_before = now - timedelta(days=settings.CHIRP_FOLLOW_FULL_CHECK_DAYS)
    watched = ChannelWatch.objects.filter(channel__follows__isnull=False).distinct()
    # A channel whose push is verified (and its lease running) is not polled: the hub tells
    # of its uploads. The full check still runs.
    pushed = watched.filter(
        channel__websub__state=WebSubSubscription.State.VERIFIED,
        channel__websub__lease_expires__gt=now,
    )
    polled_due = watched.filter(next_poll__lte=now).exclude(pk__in=pushed.values("pk"))
    for watch in polled_due.select_related("channel").order_by("next_poll"):
        if watch.claim_poll(now):
            _safely(poll_channel, watch.channel, CheckMethod.POLL)
            polled += 1
    for watch in watched.filter(last_full_check__lte=full_before).select_related("channel"):
        if watch.claim_full_check(now):
            _safely(full_check, watch.channel, CheckMethod.FULL)
            checked += 1
    return {"polled": polled, "checked": checked}
