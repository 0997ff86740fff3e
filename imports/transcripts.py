"""Transcripts through youtube-transcript-api: three requests per video (watch page, player
API, timed text), on the same transport as yt-dlp."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import requests
from youtube_transcript_api import (
    AgeRestricted,
    CouldNotRetrieveTranscript,
    InvalidVideoId,
    IpBlocked,
    NoTranscriptFound,
    RequestBlocked,
    TranscriptsDisabled,
    VideoUnavailable,
    VideoUnplayable,
    YouTubeRequestFailed,
    YouTubeTranscriptApi,
)

from imports.youtube import (
    Reason,
    YouTubeError,
    classify_error,
    new_http_session,
    read_setting,
    reason_for_message,
    reason_for_status,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Segment:
    start: float
    duration: float
    text: str


@dataclass(frozen=True)
class Transcript:
    video_id: str
    language_code: str
    language: str
    source: Literal["manual", "auto", "whisper"]
    segments: tuple[Segment, ...]

    @property
    def text(self) -> str:
        return "\n".join(segment.text for segment in self.segments)


def default_languages() -> tuple[str, ...]:
    return tuple(read_setting("CHIRP_YOUTUBE_TRANSCRIPT_LANGUAGES", ("en",)))


def fetch_transcript(
    video_id: str,
    languages: Iterable[str] | None = None,
    session: requests.Session | None = None,
) -> Transcript | None:
    """The best transcript in `languages` (in order of preference; for each language a manual
    track before an auto-generated one), or None when the video has none in those languages
    or its captions are off. Raises YouTubeError when YouTube refuses (blocked, private...).
    """
    languages = tuple(languages or default_languages())
    session = session or new_http_session()
    statuses: list[int] = []

    def remember_status(response: requests.Response, *args: object, **kwargs: object) -> None:
        statuses.append(response.status_code)

    session.hooks["response"].append(remember_status)
    try:
        listing = YouTubeTranscriptApi(http_client=session).list(video_id)
        chosen = listing.find_transcript(languages)
        fetched = chosen.fetch()
    except TranscriptsDisabled:
        logger.info("No captions on %s (none, or turned off)", video_id)
        return None
    except NoTranscriptFound:
        logger.info("No captions on %s in %s", video_id, ", ".join(languages))
        return None
    except CouldNotRetrieveTranscript as exc:
        raise _classify(exc, statuses[-1] if statuses else None) from exc
    except requests.RequestException as exc:
        raise classify_error(exc) from exc
    finally:
        session.hooks["response"].remove(remember_status)

    return Transcript(
        video_id=video_id,
        language_code=fetched.language_code,
        language=fetched.language,
        source="auto" if fetched.is_generated else "manual",
        segments=tuple(
            Segment(start=snippet.start, duration=snippet.duration, text=snippet.text)
            for snippet in fetched.snippets
        ),
    )


def _classify(exc: CouldNotRetrieveTranscript, last_status: int | None) -> YouTubeError:
    detail = str(exc).strip()
    if isinstance(exc, IpBlocked):
        # Raised both for HTTP 429 and for a reCAPTCHA page; the status tells them apart.
        if last_status == 429:
            return YouTubeError(Reason.RATE_LIMITED, detail)
        return YouTubeError(Reason.IP_BLOCKED, detail)
    if isinstance(exc, RequestBlocked):
        return YouTubeError(Reason.BOT_CHECK, detail)
    if isinstance(exc, AgeRestricted):
        return YouTubeError(Reason.AGE_RESTRICTED, detail)
    if isinstance(exc, InvalidVideoId):
        return YouTubeError(Reason.NOT_FOUND, detail)
    if isinstance(exc, VideoUnavailable):
        return YouTubeError(Reason.UNAVAILABLE, detail)
    if isinstance(exc, VideoUnplayable):
        reason_text = " ".join(filter(None, [exc.reason, *exc.sub_reasons]))
        return YouTubeError(reason_for_message(reason_text) or Reason.UNAVAILABLE, detail)
    if isinstance(exc, YouTubeRequestFailed) and last_status is not None:
        return YouTubeError(reason_for_status(last_status), detail)
    return YouTubeError(Reason.UNKNOWN, detail)
