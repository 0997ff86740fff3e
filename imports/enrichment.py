"""The two phases of an import, as the engine runs them.

`list_channel` (prepare): resolve and list the channel flat (capped, or only what is new), upsert
the channel, link the job to it (which shows it to the job's owner: Channel.seen), create every
listed video at once (stage `created`) and one item per video.

A backfill since a date (ImportJob.since) lists until the listing's approximate dates are a
week past it (YouTube.fetch_channel); the listed videos are created as any import's. The exact
date in each video's metadata then decides: one published before the date is dropped (its item
skipped "Published before <date>", nothing more fetched for it) and deleted when the job ends,
unless another import has it too (ImportJob.delete_dropped_videos).

`enrich_item` (process_item): one video, stage by stage: metadata (25 %) → captions (60 %) →
chapters (90 %) → [download (92 %, when the import asks for media: imports/media.py)] →
complete (100 %). A download that fails leaves the metadata and transcript stored: retried, the
video goes straight to its download (Video.has_metadata), continuing its partial file. Each
stage is one UPDATE and one live event to the owner (and to everyone else who sees the channel:
ImportJob.watchers). Every request waits for its
turn (and an in-flight slot) at the shared limiter, one limiter per video or listing, released
when it is done. What YouTube says decides what follows:

- permanent (private, removed, members-only...): stage `error` with the reason, item failed,
  never retried by itself;
- a block (429, bot check, IP block): the limiter slows down and pauses the lane; the video goes
  back to the queue untouched (chirp.jobs.JobPaused) and is done when the pause ends;
- timeouts and network errors: retried here with exponential backoff, then failed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from django.conf import settings
from django.utils import timezone

from chirp import live
from chirp.jobs import Interrupted, ItemError, ItemSkipped, JobError
from imports import artwork, media, scratch, speech
from imports.limiter import BLOCKING_REASONS, Limiter, YouTubePaused
from imports.models import Channel, ImportJob, ImportJobItem, Video
from imports.models.jobs import format_day
from imports.transcripts import Transcript, fetch_transcript
from imports.youtube import (
    ChannelEntry,
    ChannelListing,
    InvalidChannelInput,
    Reason,
    VideoInfo,
    YouTube,
    YouTubeError,
    parse_channel_input,
)

if TYPE_CHECKING:
    from chirp.engine import RunContext

logger = logging.getLogger(__name__)

T = TypeVar("T")

# A video's card while its download waits for one of the CHIRP_MEDIA_CONCURRENCY slots.
WAITING_FOR_SLOT = "Waiting for a download slot"


def youtube_client(limiter: Limiter) -> YouTube:
    """A yt-dlp session whose every request goes through the shared limiter."""
    return YouTube(gate=limiter.wait_turn)


def limiter_for(ctx: RunContext | None) -> Limiter:
    """A limiter whose waits end when the runner interrupts the work (a shutdown, a cancel)."""
    return Limiter(sleep=ctx.sleep) if ctx is not None else Limiter()


def with_retries(call: Callable[[], T], limiter: Limiter, ctx: RunContext | None = None) -> T:
    """`call()`, retried with exponential backoff on timeouts and network errors. A block
    (429, bot check, IP block) opens the limiter's breaker and raises YouTubePaused. Told to
    stop (a shutdown, a cancel) before a retry or during its backoff: Interrupted, the work is
    handed back rather than failed."""
    retries = settings.CHIRP_YOUTUBE_RETRIES
    backoff = settings.CHIRP_YOUTUBE_RETRY_BACKOFF
    attempt = 0
    while True:
        try:
            result = call()
        except YouTubeError as exc:
            if exc.reason in BLOCKING_REASONS:
                raise YouTubePaused(limiter.throttled(exc.reason)) from exc
            if not exc.transient or attempt >= retries:
                raise
            if ctx is not None and ctx.interrupted():
                raise Interrupted(str(exc)) from exc
            pause = backoff * 2**attempt
            logger.info("%s; retrying in %.1f s", exc.reason, pause)
            (ctx.sleep if ctx is not None else time.sleep)(pause)
            attempt += 1
        else:
            limiter.succeeded()
            return result


# -- prepare --------------------------------------------------------------------------------------


def list_channel(job: ImportJob, ctx: RunContext) -> list[ImportJobItem]:
    try:
        ref = parse_channel_input(job.channel_url)
    except InvalidChannelInput as exc:
        raise JobError(str(exc)) from exc
    known: frozenset[str] = frozenset()
    if job.only_new:
        channel = job.channel or Channel.known_for(ref, job.channel_url, job.owner_id)
        if channel is not None:
            known = frozenset(channel.videos.values_list("youtube_id", flat=True))

    ctx.set_step(job.listing_label)
    with limiter_for(ctx) as limiter, youtube_client(limiter) as client:
        try:
            listing = with_retries(
                lambda: client.fetch_channel(
                    ref, tab=job.tab, limit=job.limit or None, known_ids=known, since=job.since
                ),
                limiter,
                ctx,
            )
        except YouTubeError as exc:
            raise JobError(str(exc)) from exc
        pictures = _channel_artwork(listing, client, limiter)

    channel = Channel.upsert(listing, pictures)
    # Whether this user had the channel before this listing (their own earlier import): only
    # then are videos imported before "already there" for them. Someone else's import of it
    # must not show (hardening, issue 9): for a newcomer every video is new, and those the
    # catalogue already holds complete are skipped at once by `enrich_item`.
    had_it = Channel.objects.visible_to(job.owner).filter(pk=channel.pk).exists()
    Channel.objects.filter(pk=channel.pk).update(last_imported=timezone.now())
    # YouTube answered this user's own listing: from now on they see the channel (Channel.seen).
    ImportJob.objects.filter(pk=job.pk).update(channel=channel)
    job.channel = channel
    live.publish(job.owner_id, [("channels-changed", channel.dom_id)])  # the list shows it
    videos = create_videos(channel, listing.entries)
    # What was imported before needs no work: no item, so the progress (and the banner) count
    # only what is new. How many were already there is kept for the job's words.
    done = Video.objects.filter(pk__in=videos, stage=Video.Stage.COMPLETE)
    if job.media_quality:  # complete, and with its media at that quality
        done = done.filter(media_files__quality=job.media_quality)
    complete = set(done.values_list("pk", flat=True)) if had_it else set()
    ImportJob.objects.filter(pk=job.pk, worker=ctx.token).update(known=len(complete))
    job.known = len(complete)
    new = [pk for pk in videos if pk not in complete]
    if job.since is not None:
        ctx.set_step(_found_since(len(new), job, listing))
        live.publish(job.owner_id, [job.backfill_started_event(len(new))])
    elif not new and (complete or listing.reached_known):
        ctx.set_step("Nothing new since the last import")
    elif job.is_reimport:
        ctx.set_step(f"Found {len(new)} new video{'s' if len(new) != 1 else ''}")
    else:
        ctx.set_step(f"Found {len(new)} video{'s' if len(new) != 1 else ''}")
    return [ImportJobItem(video_id=pk) for pk in new]


def _found_since(found: int, job: ImportJob, listing: ChannelListing) -> str:
    """The words of a backfill's listing: "Found 42 videos since 1 Mar 2026 (listing stopped
    at 16 Feb 2026)"."""
    words = f"Found {found} video{'s' if found != 1 else ''} since {format_day(job.since)}"
    if listing.stopped_at is not None:
        return f"{words} (listing stopped at {format_day(listing.stopped_at)})"
    if listing.complete:
        return f"{words} (the whole listing was read)"
    return words


def _channel_artwork(listing: ChannelListing, client: YouTube, limiter: Limiter) -> dict[str, str]:
    """The channel's avatar and banner, fetched when Chirp has no copy of them yet: field →
    storage name. The listing succeeded: a picture that cannot be had (even for a 429 or a
    pause) is left for the next import, never failing this one."""
    sides = {"avatar": artwork.AVATAR_SIDE, "banner": artwork.BANNER_SIDE}
    stored: dict[str, str] = {}
    session = client.http_session()
    for field, url in Channel.artwork_to_fetch(listing).items():
        try:
            name = artwork.fetch(session, url, sides[field])
        except YouTubeError as exc:
            limiter.throttled(exc.reason)
            logger.warning("The channel's %s was refused: %s", field, exc)
            break
        except YouTubePaused:
            break
        if name:
            stored[field] = name
    return stored


def create_videos(channel: Channel, entries: Sequence[ChannelEntry]) -> list[int]:
    """Every listed video at once (stage `created`, with title, thumbnail and duration); the ids
    of all listed videos, in listing order (newest first). Known videos are kept as they are.

    No view count: a real Videos tab gives yt-dlp none, and where a listing shows one it is
    rounded ("2.1m views"). The metadata stage stores the exact count."""
    ids = [entry.video_id for entry in entries]
    known = dict(Video.objects.filter(youtube_id__in=ids).values_list("youtube_id", "pk"))
    Video.objects.bulk_create(
        [
            Video(
                youtube_id=entry.video_id,
                channel=channel,
                title=entry.title[:500],
                thumbnail_url=entry.thumbnail_url or "",
                duration=entry.duration,
            )
            for entry in entries
            if entry.video_id not in known
        ],
        batch_size=500,
        ignore_conflicts=True,  # listed by another import at the same moment
    )
    known.update(
        Video.objects.filter(youtube_id__in=[i for i in ids if i not in known]).values_list(
            "youtube_id", "pk"
        )
    )
    seen: set[int] = set()
    ordered = []
    for youtube_id in ids:
        pk = known[youtube_id]
        if pk not in seen:  # a listing can repeat a video across pages
            seen.add(pk)
            ordered.append(pk)
    return ordered


# -- process_item --------------------------------------------------------------------------------


def enrich_item(job: ImportJob, item: ImportJobItem, ctx: RunContext) -> None:
    video = item.video
    quality = job.media_quality
    wants_media = bool(quality) and not video.has_media(quality)
    if video.stage == Video.Stage.COMPLETE and not wants_media:
        if video.published and job.published_before_since(video.published.date()):
            job.count_dropped()  # imported by someone else, its exact date known
            raise ItemSkipped(job.dropped_reason)
        raise ItemSkipped("Already imported.")
    if job.step.startswith("Paused"):
        ctx.set_step("")  # the pause is over
    limiter = limiter_for(ctx)

    def stage(change: Callable[[], None]) -> None:
        change()
        video.publish_to(*job.audience())

    try:
        with limiter, youtube_client(limiter) as client:  # the limiter's slot is freed on leaving
            if not (wants_media and video.has_metadata):
                stage(video.start_metadata)
                info = with_retries(lambda: client.fetch_video(video.youtube_id), limiter, ctx)
                if job.published_before_since(info.upload_date):
                    # Listed inside the margin, published before the date: not kept.
                    stage(video.restart)
                    job.count_dropped()
                    raise ItemSkipped(job.dropped_reason)
                thumbnail = _thumbnail(video, info, client, limiter, ctx)
                stage(lambda: video.save_metadata(info, thumbnail))
                if job.since is not None:  # kept by its exact date: a backfill found it
                    live.publish(job.owner_id, [video.discovered_event()])
                transcript = _transcript(video, client, limiter, ctx)
                stage(lambda: video.save_transcript(transcript))
                stage(lambda: video.save_chapters(info, download=wants_media))
            if wants_media:
                stage(video.start_download)
                _download(job, video, quality, client, limiter, ctx)
                stage(video.save_download)
    except (YouTubePaused, Interrupted):  # the video goes back to the queue untouched
        if wants_media and ctx.stop_reason == "cancelled":  # nobody resumes its download
            scratch.sweep({(video.youtube_id, quality)})
            if video.has_metadata:  # what was stored stays: imported, without media
                stage(video.cancel_download)
                raise
        stage(video.restart)
        raise
    except ItemSkipped:
        raise
    except (media.StorageError, media.ChecksumMismatch) as exc:
        # The download is kept in the scratch folder (a storage error) for a retry.
        video.save_error(Reason.STORAGE, str(exc))
        video.publish_to(*job.audience())
        raise ItemError(str(exc)) from exc
    except YouTubeError as exc:
        video.save_error(exc.reason, str(exc))
        video.publish_to(*job.audience())
        raise ItemError(str(exc)) from exc
    except Exception as exc:
        logger.exception("Enriching %s failed unexpectedly", video.youtube_id)
        message = f"Unexpected error: {exc.__class__.__name__}: {exc}"
        video.save_error(Reason.UNKNOWN, message)
        video.publish_to(*job.audience())
        raise ItemError(message) from exc
    item.complete()


def _thumbnail(
    video: Video, info: VideoInfo, client: YouTube, limiter: Limiter, ctx: RunContext
) -> str | None:
    """The storage name of the video's thumbnail, fetched once (one more turn at the limiter);
    None when there is none to be had (the card shows a placeholder). A 429 pauses the lane
    like any other request's."""
    if video.thumbnail:
        return None  # fetched by an earlier import
    url = video.thumbnail_url or info.thumbnail_url
    session = client.http_session()
    return with_retries(lambda: artwork.fetch(session, url, artwork.THUMBNAIL_SIDE), limiter, ctx)


def _download(
    job: ImportJob, video: Video, quality: str, client: YouTube, limiter: Limiter, ctx: RunContext
) -> None:
    """The video's media, stored (imports/media.py); its progress on the video's card, live."""

    def show(progress: media.Progress | str) -> None:
        video.download_progress = progress
        video.publish_to(*job.audience())

    def wait() -> None:
        # Every download slot is taken: a wait of minutes maybe, so this video's request to
        # YouTube is over for the limiter (its in-flight slot is another thread's meanwhile).
        limiter.release()
        show(WAITING_FOR_SLOT)

    def attempt() -> None:
        try:
            media.store_media(
                video,
                quality,
                client,
                on_progress=show,
                interrupted=ctx.interrupted,
                on_wait=wait,
            )
        except media.DownloadInterrupted as exc:  # the .part files stay for the next attempt
            raise Interrupted("download interrupted") from exc

    with_retries(attempt, limiter, ctx)
    video.download_progress = None


def _transcript(
    video: Video, client: YouTube, limiter: Limiter, ctx: RunContext
) -> Transcript | None:
    """The best transcript in the preferred languages; None when there is none. A permanent
    refusal of the captions alone (the metadata came through) means no transcript."""
    session = client.http_session()
    try:
        transcript = with_retries(
            lambda: fetch_transcript(
                video.youtube_id, settings.CHIRP_YOUTUBE_TRANSCRIPT_LANGUAGES, session=session
            ),
            limiter,
            ctx,
        )
    except YouTubeError as exc:
        if exc.transient:
            raise
        logger.info("No transcript for %s: %s", video.youtube_id, exc.reason)
        transcript = None
    if transcript is None and speech.configured():
        return _speech_to_text(video, client, limiter, ctx)
    return transcript


def _speech_to_text(
    video: Video, client: YouTube, limiter: Limiter, ctx: RunContext
) -> Transcript | None:
    """The fallback: the audio, transcribed by the speech-to-text service. Its failures leave
    the video without a transcript (they are logged), they do not fail it."""
    try:
        return with_retries(lambda: speech.transcribe(video.youtube_id, client), limiter, ctx)
    except (YouTubeError, speech.SpeechError) as exc:
        logger.warning("Speech to text failed for %s: %s", video.youtube_id, exc)
        return None
