"""YouTube through yt-dlp: what a person typed, a channel's listing, one video's metadata.

Three parts:

- `parse_channel_input` turns what someone pasted into a `ChannelRef` with one canonical URL,
  or refuses it with a message that person can act on: an @handle in any script, a channel,
  YouTube Music or legacy (youtube.com/<name>) link, a video link; full-width text read as
  NFKC; a link to a Shorts or Live tab names that tab.
- `YouTube` wraps `yt_dlp.YoutubeDL`. It lists a channel flat (one request per page of 30
  videos, stopping early at a limit or at the first already-known video) and reads one
  video's metadata. Media is downloaded only by `download_audio` (the speech-to-text fallback).
  A `gate` (the shared rate limiter) is called before every request it makes.
- `classify_error` turns whatever yt-dlp or requests raised into a `YouTubeError`: permanent
  (private, removed...: never retried) or transient (429, the bot check, timeouts: retried).
  A channel's page answered 404 is permanent at once: yt-dlp does not get to retry it.

The only test seam is `Transport`: extra yt-dlp request handlers and a requests session
factory that answer instead of the network. `get_transport()` builds one from the dotted path
in the CHIRP_YOUTUBE_TRANSPORT setting; production leaves it unset.

Settings (read with getattr, so each has a default):

    CHIRP_YOUTUBE_TRANSPORT            None   dotted path of a zero-argument Transport factory
    CHIRP_YOUTUBE_COOKIES_FILE         None   Netscape cookies file (the answer to the bot check)
    CHIRP_YOUTUBE_SLEEP_REQUESTS       0.75   seconds between requests (yt-dlp's "-t sleep")
    CHIRP_YOUTUBE_RETRIES              3      yt-dlp's extractor_retries (5xx, timeouts)
    CHIRP_YOUTUBE_RETRY_BACKOFF        2.0    first pause between those retries, doubling
    CHIRP_YOUTUBE_TIMEOUT              20.0   socket timeout, seconds
    CHIRP_YOUTUBE_TRANSCRIPT_LANGUAGES ("en",) preferred caption languages (transcripts.py)
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import requests
import yt_dlp
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string
from yt_dlp.extractor.youtube import YoutubeTabIE
from yt_dlp.networking.common import RequestHandler
from yt_dlp.networking.exceptions import HTTPError, TransportError
from yt_dlp.utils import YoutubeDLError, traverse_obj

from imports.chapters import Chapter, extract_chapters

logger = logging.getLogger(__name__)

YOUTUBE = "https://www.youtube.com"
MAX_INPUT_LENGTH = 2048
LISTING_TABS = frozenset({"videos", "shorts", "streams"})
# A listing since a date stops only this far past it: "3 weeks ago" is approximate.
SINCE_MARGIN = timedelta(days=7)
# A listing's relative date as YouTube words it in English (yt-dlp asks for hl=en): "3 weeks
# ago", "Streamed 2 days ago", "Premiered 1 year ago".
_RELATIVE_TIME_RE = re.compile(
    r"\b(\d+)\s*(second|minute|hour|day|week|month|year)s?\s+ago\b", re.IGNORECASE
)
# YouTube rounds down ("5 weeks ago" is "1 month ago"): each unit at its shortest keeps the
# moment read no older than the video.
_RELATIVE_UNITS = {
    "second": timedelta(seconds=1),
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
    "month": timedelta(days=28),
    "year": timedelta(days=365),
}

# Tabs a channel URL may end with; anything after them is ignored, anything else is refused.
_CHANNEL_TABS = frozenset(
    {
        "videos", "shorts", "streams", "live", "featured", "playlists", "community", "posts",
        "about", "podcasts", "releases", "store", "courses", "membership", "channels", "search",
    }
)  # fmt: skip
_YOUTUBE_HOSTS = frozenset({"youtube.com", "www.youtube.com", "m.youtube.com"})
_MUSIC_HOSTS = frozenset({"music.youtube.com"})
_SHORT_HOSTS = frozenset({"youtu.be", "www.youtu.be"})
_NOCOOKIE_HOSTS = frozenset({"youtube-nocookie.com", "www.youtube-nocookie.com"})
_VIDEO_PATHS = frozenset({"shorts", "live", "embed", "v", "e"})
# YouTube's own pages: a first path segment that is none of these is a legacy channel address
# (youtube.com/<name>), which YouTube resolves. yt-dlp's reserved names, and YouTube's products.
_YOUTUBE_PAGES = frozenset(
    {
        "channel", "c", "user", "playlist", "watch", "w", "v", "embed", "e", "live",
        "watch_popup", "clip", "shorts", "movies", "results", "search", "shared", "hashtag",
        "trending", "explore", "feed", "feeds", "browse", "oembed", "get_video_info", "iframe_api",
        "s", "source", "storefront", "oops", "index", "account", "t", "about", "upload", "signin",
        "logout", "login", "signup", "premium", "music", "kids", "gaming", "news", "sports",
        "learning", "fashion", "podcasts", "playables", "originals", "post", "redirect",
        "attribution_link", "supported_browsers", "howyoutubeworks", "creators", "ads", "yt",
        "api", "youtubei", "paid_memberships", "purchases", "reporthistory", "select_site",
        "subscription_manager", "new", "live_chat", "verify_age", "das_captcha", "error",
        "dashboard", "studio", "analytics", "my_videos", "view_all_playlists",
        "channel_switcher", "create_channel", "copyright_complaint_form", "terms", "privacy",
    }
)  # fmt: skip

# YouTube's rules: handles are 3-30 letters of any script (with their combining marks), digits,
# underscores, dashes, dots and middle dots (·).
HANDLE_MIN, HANDLE_MAX = 3, 30
_HANDLE_PUNCTUATION = frozenset("_-.\u00b7")
_CHANNEL_ID_RE = re.compile(r"UC[A-Za-z0-9_-]{22}")
_VIDEO_ID_RE = re.compile(r"[A-Za-z0-9_-]{11}")
_NAME_RE = re.compile(r"[\w.-]{1,100}")
# A legacy youtube.com/<name>: a custom URL or an old username (letters and digits).
_LEGACY_NAME_RE = re.compile(r"[\w-]{1,100}")
_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):(?!\d)")


def is_handle(name: str) -> bool:
    """Whether `name` (without its @, NFKC-normalised) is a handle YouTube allows."""
    return HANDLE_MIN <= len(name) <= HANDLE_MAX and all(
        ch in _HANDLE_PUNCTUATION or unicodedata.category(ch)[0] in "LM" or ch.isdecimal()
        for ch in name
    )


# --- Input --------------------------------------------------------------------------------------


class InvalidChannelInput(ValueError):
    """What was typed is not something Chirp can import; str() says why, for a person."""


@dataclass(frozen=True)
class ChannelRef:
    """A channel as the user named it. `url` is the one canonical form of that name: two inputs
    naming one channel the same way (`@MrBeast`, `youtube.com/@mrbeast/shorts`, full-width
    `@MrBeast`) have one url, the key that keeps a user from importing it twice at once.

    A video link is accepted as "the channel of this video": `video_id` is set and `url` is the
    video's watch URL; `YouTube.resolve_channel` turns it into the channel (one network call).
    `tab` is the listing tab the link pointed at (videos, shorts, streams), if it named one.
    """

    url: str
    handle: str | None = None
    channel_id: str | None = None
    custom_name: str | None = None
    user_name: str | None = None
    legacy_name: str | None = None
    video_id: str | None = None
    tab: str | None = field(default=None, compare=False)

    @classmethod
    def for_handle(cls, handle: str) -> ChannelRef:
        # Handles are case-insensitive at YouTube. lower(), not casefold(): casefold() turns
        # sharp s into "ss" and the Greek final sigma into a plain one, which could name another
        # handle there.
        handle = handle.lower()
        return cls(url=f"{YOUTUBE}/@{urllib.parse.quote(handle)}", handle=f"@{handle}")

    @classmethod
    def for_channel_id(cls, channel_id: str) -> ChannelRef:
        return cls(url=f"{YOUTUBE}/channel/{channel_id}", channel_id=channel_id)

    @classmethod
    def for_video(cls, video_id: str) -> ChannelRef:
        return cls(url=f"{YOUTUBE}/watch?v={video_id}", video_id=video_id)


def parse_channel_input(text: str) -> ChannelRef:
    """Normalise an @handle, a channel link or a video link; raise InvalidChannelInput.

    The text is NFKC-normalised first, so full-width forms (of `@MrBeast`, of `youtube.com`)
    read as what they look like; so is each percent-decoded part of a link.
    """
    if not isinstance(text, str):
        raise InvalidChannelInput("Enter the channel as text: its @handle or a link to it.")
    text = text.strip()
    if not text:
        raise InvalidChannelInput("Enter a YouTube channel: its @handle or a link to it.")
    if len(text) > MAX_INPUT_LENGTH:
        raise InvalidChannelInput(
            f"That is too long to be a YouTube link: links and handles are at most "
            f"{MAX_INPUT_LENGTH:,} characters."
        )
    text = unicodedata.normalize("NFKC", text).strip()
    if any(ch.isspace() for ch in text):
        raise InvalidChannelInput("A channel link or @handle cannot contain spaces.")
    if not text.isprintable():
        raise InvalidChannelInput("That contains characters that cannot be in a YouTube link.")

    try:
        return _parse(text)
    except InvalidChannelInput:
        raise
    except ValueError:  # urlsplit's own refusals: "[youtube.com/@x](…)", "http://[::1"
        raise InvalidChannelInput(
            "That is not a link Chirp can read: paste the channel's address or @handle alone."
        ) from None


def _parse(text: str) -> ChannelRef:
    if text.startswith("@"):
        return _parse_youtube_path("/" + text, "")
    if _CHANNEL_ID_RE.fullmatch(text):
        return ChannelRef.for_channel_id(text)
    if text.startswith("/") and not text.startswith("//"):
        parts = urllib.parse.urlsplit(text)
        return _parse_youtube_path(parts.path, parts.query)
    if is_handle(text) and "." not in text:
        raise InvalidChannelInput(f"Handles start with @: did you mean @{text}?")

    scheme = _SCHEME_RE.match(text)
    if scheme is None:
        text = "https://" + text.lstrip("/")
    elif scheme.group(1).lower() not in ("http", "https"):
        raise InvalidChannelInput("Only web links (http or https) to YouTube are accepted.")

    parts = urllib.parse.urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = -1
    host = (parts.hostname or "").rstrip(".")
    if parts.username is not None or parts.password is not None or port is not None or not host:
        raise InvalidChannelInput("Only YouTube links are accepted (youtube.com or youtu.be).")
    if host in _SHORT_HOSTS:
        return _video_ref(_segment_text(parts.path).strip("/"))
    if host in _NOCOOKIE_HOSTS:
        segments = _segments(parts.path)
        if len(segments) == 2 and segments[0] == "embed":
            return _video_ref(segments[1])
        raise InvalidChannelInput("That YouTube page is not a channel.")
    if host in _MUSIC_HOSTS:
        return _parse_music_path(parts.path, parts.query)
    if host not in _YOUTUBE_HOSTS:
        raise InvalidChannelInput("Only YouTube links are accepted (youtube.com or youtu.be).")
    return _parse_youtube_path(parts.path, parts.query)


def _segment_text(path: str) -> str:
    return unicodedata.normalize("NFKC", urllib.parse.unquote(path))


def _segments(path: str) -> list[str]:
    return [segment for segment in _segment_text(path).split("/") if segment]


def _parse_music_path(path: str, query: str) -> ChannelRef:
    """YouTube Music: an artist's or a channel's page (/channel/UC…, /browse/UC…) or a song."""
    segments = _segments(path)
    if segments[:1] == ["watch"]:
        return _parse_youtube_path(path, query)
    if (
        len(segments) == 2
        and segments[0] in ("channel", "browse")
        and _CHANNEL_ID_RE.fullmatch(segments[1])
    ):
        return ChannelRef.for_channel_id(segments[1])
    raise InvalidChannelInput(
        "That YouTube Music page is not a channel: paste a link like music.youtube.com/channel/UC…"
    )


def _parse_youtube_path(path: str, query: str) -> ChannelRef:
    segments = _segments(path)
    if not segments:
        raise InvalidChannelInput("That is YouTube's home page: paste a channel's link or @handle.")
    first, rest = segments[0], segments[1:]
    if first == "watch":
        video_ids = urllib.parse.parse_qs(query).get("v") or [""]
        return _video_ref(video_ids[0])
    if first in _VIDEO_PATHS and rest:
        if len(rest) > 1:
            raise InvalidChannelInput("That video link has extra parts after the video ID.")
        return _video_ref(rest[0])
    if first == "playlist" or "list" in urllib.parse.parse_qs(query):
        raise InvalidChannelInput(
            "That is a playlist, not a channel: paste the channel's link or @handle."
        )

    if first.startswith("@"):
        handle = first[1:]
        if not is_handle(handle):
            raise InvalidChannelInput(
                f"“{first[:40]}” is not a valid handle: handles have {HANDLE_MIN} to "
                f"{HANDLE_MAX} letters, numbers, dots, dashes, underscores or middle dots (·)."
            )
        ref = ChannelRef.for_handle(handle)
    elif first == "channel" and rest:
        channel_id, rest = rest[0], rest[1:]
        if not _CHANNEL_ID_RE.fullmatch(channel_id):
            raise InvalidChannelInput(
                "That channel ID is not valid: it is UC followed by 22 letters, numbers, "
                "dashes or underscores."
            )
        ref = ChannelRef.for_channel_id(channel_id)
    elif first in ("c", "user") and rest:
        name, rest = rest[0], rest[1:]
        if not _NAME_RE.fullmatch(name):
            raise InvalidChannelInput(f"“{name[:40]}” is not a valid channel name.")
        quoted = urllib.parse.quote(name)
        if first == "c":
            ref = ChannelRef(url=f"{YOUTUBE}/c/{quoted}", custom_name=name)
        else:
            ref = ChannelRef(url=f"{YOUTUBE}/user/{quoted}", user_name=name)
    elif first.lower() in _YOUTUBE_PAGES:
        raise InvalidChannelInput(
            f"That is YouTube's own “{first[:40]}” page, not a channel: paste a link like "
            "youtube.com/@name or youtube.com/channel/UC…"
        )
    elif _LEGACY_NAME_RE.fullmatch(first):
        # An old-style address (a custom URL or a username without /c/ or /user/): YouTube
        # resolves it, or answers that there is no such channel.
        ref = ChannelRef(url=f"{YOUTUBE}/{urllib.parse.quote(first)}", legacy_name=first)
    else:
        raise InvalidChannelInput(
            "That YouTube page is not a channel: paste a link like "
            "youtube.com/@name or youtube.com/channel/UC…"
        )

    if len(rest) > 1 or (rest and rest[0].lower() not in _CHANNEL_TABS):
        raise InvalidChannelInput("That is a page inside a channel, not the channel itself.")
    tab = rest[0].lower() if rest else None
    if tab in LISTING_TABS:
        ref = replace(ref, tab=tab)
    return ref


def _video_ref(video_id: str) -> ChannelRef:
    if not _VIDEO_ID_RE.fullmatch(video_id):
        raise InvalidChannelInput("That video link has no valid video ID.")
    return ChannelRef.for_video(video_id)


# --- Errors -------------------------------------------------------------------------------------


class Kind(StrEnum):
    PERMANENT = "permanent"
    TRANSIENT = "transient"


class Reason(StrEnum):
    PRIVATE = "private"
    UNAVAILABLE = "unavailable"
    MEMBERS_ONLY = "members_only"
    AGE_RESTRICTED = "age_restricted"
    REMOVED = "removed"
    GEO_BLOCKED = "geo_blocked"
    LIVE_NOT_ENDED = "live_not_ended"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    BOT_CHECK = "bot_check"
    IP_BLOCKED = "ip_blocked"
    TIMEOUT = "timeout"
    NETWORK = "network"
    STORAGE = "storage"  # Chirp's own storage refused a downloaded file (imports/media.py)
    UNKNOWN = "unknown"


_TRANSIENT = frozenset(
    {Reason.RATE_LIMITED, Reason.BOT_CHECK, Reason.IP_BLOCKED, Reason.TIMEOUT, Reason.NETWORK}
)
_MESSAGES = {
    Reason.PRIVATE: "This video is private.",
    Reason.UNAVAILABLE: "This video is unavailable.",
    Reason.MEMBERS_ONLY: "This video is for channel members only.",
    Reason.AGE_RESTRICTED: "This video is age-restricted: only signed-in adults may watch it.",
    Reason.REMOVED: "This video has been removed from YouTube.",
    Reason.GEO_BLOCKED: "This video is not available in this server's country.",
    Reason.LIVE_NOT_ENDED: "This is a live stream that has not ended yet: try again once it has.",
    Reason.NOT_FOUND: "YouTube has no channel or video at that address.",
    Reason.RATE_LIMITED: "YouTube is limiting how fast Chirp may ask (HTTP 429). Retrying later.",
    Reason.BOT_CHECK: (
        "YouTube asked Chirp to sign in to prove it is not a bot. "
        "Add a YouTube cookies file to continue."
    ),
    Reason.IP_BLOCKED: "YouTube is blocking requests from this server's address.",
    Reason.TIMEOUT: "YouTube did not answer in time.",
    Reason.NETWORK: "Chirp could not reach YouTube.",
    Reason.STORAGE: "Chirp could not store the video's file.",
    Reason.UNKNOWN: "YouTube answered in a way Chirp does not understand.",
}


class YouTubeError(Exception):
    """A classified failure. str() is for a person; `detail` keeps what the library said."""

    def __init__(self, reason: Reason, detail: str = "", message: str | None = None) -> None:
        self.reason = Reason(reason)
        self.kind = Kind.TRANSIENT if self.reason in _TRANSIENT else Kind.PERMANENT
        self.message = message or _MESSAGES[self.reason]
        self.detail = detail
        super().__init__(self.message)

    @property
    def transient(self) -> bool:
        return self.kind is Kind.TRANSIENT

    def __repr__(self) -> str:
        return f"YouTubeError({self.reason.value!r}, {self.kind.value})"


# Checked in order on the error's own text: the first hit wins. Bot check before age (both
# say "Sign in to confirm..."), members-only and removed before the generic "unavailable".
_MESSAGE_PATTERNS: tuple[tuple[Reason, tuple[str, ...]], ...] = (
    (Reason.BOT_CHECK, ("not a bot", "captcha")),
    (Reason.AGE_RESTRICTED, ("confirm your age", "age-restricted", "age restricted",
                             "inappropriate for some users", "age verification")),
    (Reason.MEMBERS_ONLY, ("members-only", "members only", "join this channel")),
    (Reason.PRIVATE, ("private video", "video is private")),
    (Reason.REMOVED, ("has been removed", "been terminated", "violating", "no longer available")),
    (Reason.GEO_BLOCKED, ("available in your country", "geo restricted", "geo-restricted")),
    (Reason.LIVE_NOT_ENDED, ("live event will begin", "premieres in", "live stream offline",
                             "is live now", "this live event")),
    (Reason.IP_BLOCKED, ("ip is likely being blocked", "ip address is blocked")),
    (Reason.RATE_LIMITED, ("http error 429", "too many requests", "rate-limited",
                           "try again later")),
    (Reason.NOT_FOUND, ("does not exist", "redirected to youtube.com home page",
                        "does not have a", "failed to resolve url", "http error 404")),
    (Reason.UNAVAILABLE, ("video unavailable", "video is unavailable", "not available")),
)  # fmt: skip
# What the warnings yt-dlp printed before failing can tell (a 429 on a video's pages is only
# visible there: the error itself is "Failed to extract any player response").
_WARNING_PATTERNS: tuple[tuple[Reason, tuple[str, ...]], ...] = (
    (Reason.RATE_LIMITED, ("http error 429", "too many requests")),
    (Reason.BOT_CHECK, ("not a bot",)),
    (Reason.TIMEOUT, ("timed out",)),
    (Reason.IP_BLOCKED, ("http error 403",)),
)


def reason_for_message(text: str) -> Reason | None:
    """The reason a YouTube error message names, if it names one."""
    return _match(text, _MESSAGE_PATTERNS)


def reason_for_status(status: int) -> Reason:
    if status == 429:
        return Reason.RATE_LIMITED
    if status in (404, 410):
        return Reason.NOT_FOUND
    if status == 403:
        return Reason.IP_BLOCKED
    if status >= 500:
        return Reason.NETWORK
    return Reason.UNKNOWN


def _match(text: str, patterns: Sequence[tuple[Reason, tuple[str, ...]]]) -> Reason | None:
    text = text.lower().replace("\u2019", "'")  # YouTube's curly apostrophe
    for reason, needles in patterns:
        if any(needle in text for needle in needles):
            return reason
    return None


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what it wraps: DownloadError.exc_info, .cause, __cause__."""
    seen: list[BaseException] = []
    todo: list[Any] = [exc]
    while todo and len(seen) < 10:
        current = todo.pop(0)
        if not isinstance(current, BaseException) or any(current is s for s in seen):
            continue
        seen.append(current)
        exc_info = getattr(current, "exc_info", None)
        if isinstance(exc_info, tuple) and len(exc_info) > 1:
            todo.append(exc_info[1])
        todo.extend([getattr(current, "cause", None), current.__cause__, current.__context__])
    return seen


def classify_error(exc: BaseException, warnings: Iterable[str] = ()) -> YouTubeError:
    """Classify an exception from yt-dlp or requests; `warnings` are yt-dlp's, if captured."""
    if isinstance(exc, YouTubeError):
        return exc
    chain = _causes(exc)
    detail = str(exc)
    warnings = list(warnings)

    for cause in chain:
        if isinstance(cause, (TimeoutError, requests.Timeout)):
            return YouTubeError(Reason.TIMEOUT, detail)
    for cause in chain:
        status = None
        if isinstance(cause, HTTPError):
            status = cause.status
        elif isinstance(cause, requests.HTTPError) and cause.response is not None:
            status = cause.response.status_code
        if status is not None:
            return YouTubeError(reason_for_status(status), detail)

    reason = _match(" ".join(str(cause) for cause in chain), _MESSAGE_PATTERNS)
    if reason is None:
        reason = _match(" ".join(warnings), _WARNING_PATTERNS)
    if reason is None and any(
        isinstance(cause, (TransportError, requests.ConnectionError)) for cause in chain
    ):
        reason = Reason.NETWORK
    if reason is None and "failed to extract any player response" in detail.lower():
        reason = Reason.NETWORK
    return YouTubeError(reason or Reason.UNKNOWN, detail)


# --- Settings and the transport seam ------------------------------------------------------------


def read_setting(name: str, default: Any) -> Any:
    if not settings.configured:
        return default
    return getattr(settings, name, default)


@dataclass(frozen=True)
class Transport:
    """Where YouTube traffic goes instead of the network.

    `request_handlers` replace yt-dlp's own (yt_dlp.networking RequestHandler classes);
    `new_session` makes the requests.Session that transcripts use.
    """

    request_handlers: tuple[type[RequestHandler], ...] = ()
    new_session: Callable[[], requests.Session] = requests.Session


def get_transport() -> Transport | None:
    """The transport named by settings.CHIRP_YOUTUBE_TRANSPORT, or None for the network."""
    path = read_setting("CHIRP_YOUTUBE_TRANSPORT", None)
    if not path:
        return None
    transport = import_string(path)()
    if not isinstance(transport, Transport):
        raise ImproperlyConfigured(
            f"CHIRP_YOUTUBE_TRANSPORT={path!r} must return an imports.youtube.Transport."
        )
    return transport


def new_http_session(
    transport: Transport | None = None,
    gate: Callable[[], None] | None = None,
    timeout: float | None = None,
) -> requests.Session:
    """A requests session that goes where yt-dlp goes (the transport, or the network), each
    request after `gate()` when there is one, and with `timeout` unless the caller sets one."""
    transport = transport or get_transport()
    session = transport.new_session() if transport else requests.Session()
    if gate is not None or timeout is not None:
        send = session.send

        def gated_send(request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
            if gate is not None:
                gate()
            if timeout is not None and kwargs.get("timeout") is None:
                kwargs["timeout"] = timeout
            return send(request, **kwargs)

        session.send = gated_send  # type: ignore[method-assign]
    return session


# --- Results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelEntry:
    """One video as the channel's listing shows it."""

    video_id: str
    title: str
    url: str
    thumbnail_url: str | None = None
    duration: int | None = None
    # None on a real Videos tab (yt-dlp finds none there); elsewhere often rounded ("2.1M").
    view_count: int | None = None
    availability: str | None = None
    # The listing's "3 weeks ago", read by yt-dlp (approximate_date) as a moment that long ago:
    # never older than the video (YouTube rounds down), often much newer for old videos.
    approximate_date: date | None = None

    @classmethod
    def from_info(cls, entry: Mapping[str, Any]) -> ChannelEntry:
        video_id = entry["id"]
        timestamp = _int(entry.get("timestamp"))
        return cls(
            video_id=video_id,
            title=entry.get("title") or "",
            url=entry.get("url") or f"{YOUTUBE}/watch?v={video_id}",
            thumbnail_url=_best_thumbnail(entry.get("thumbnails")),
            duration=_int(entry.get("duration")),
            view_count=_int(entry.get("view_count")),
            availability=entry.get("availability"),
            approximate_date=(
                datetime.fromtimestamp(timestamp, UTC).date() if timestamp is not None else None
            ),
        )


@dataclass(frozen=True)
class ChannelListing:
    """A channel's details and the videos listed, newest first.

    `complete` means the listing was read to its end; `reached_known` that it stopped at a video
    already known (re-imports). `video_count` is known only for a complete listing of the
    Videos tab: the count the channel's page shows, which a listing of its shorts or past
    live streams does not tell.
    """

    channel_id: str
    title: str
    url: str
    handle: str | None = None
    description: str = ""
    avatar_url: str | None = None
    banner_url: str | None = None
    subscriber_count: int | None = None
    video_count: int | None = None
    entries: tuple[ChannelEntry, ...] = ()
    complete: bool = False
    reached_known: bool = False
    # A listing `since` a date: the approximate date of the first entry clearly older than it,
    # where the listing stopped (None when it did not stop for the date).
    stopped_at: date | None = None


@dataclass(frozen=True)
class VideoInfo:
    video_id: str
    title: str
    description: str = ""
    duration: int | None = None
    upload_date: date | None = None
    published_at: datetime | None = None
    view_count: int | None = None
    like_count: int | None = None
    tags: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    chapters: tuple[Chapter, ...] = ()
    channel_id: str | None = None
    channel_title: str | None = None
    channel_handle: str | None = None
    availability: str | None = None
    live_status: str | None = None
    thumbnail_url: str | None = None

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> VideoInfo:
        duration = _int(info.get("duration"))
        description = info.get("description") or ""
        timestamp = info.get("timestamp")
        upload_date = info.get("upload_date")
        return cls(
            video_id=info["id"],
            title=info.get("title") or "",
            description=description,
            duration=duration,
            upload_date=datetime.strptime(upload_date, "%Y%m%d").date() if upload_date else None,
            published_at=datetime.fromtimestamp(timestamp, UTC) if timestamp else None,
            view_count=_int(info.get("view_count")),
            like_count=_int(info.get("like_count")),
            tags=tuple(info.get("tags") or ()),
            categories=tuple(info.get("categories") or ()),
            chapters=tuple(
                extract_chapters(
                    chapters=info.get("chapters"), description=description, duration=duration
                )
            ),
            channel_id=info.get("channel_id"),
            channel_title=info.get("channel"),
            channel_handle=info.get("uploader_id"),
            availability=info.get("availability"),
            live_status=info.get("live_status"),
            thumbnail_url=info.get("thumbnail") or _best_thumbnail(info.get("thumbnails")),
        )


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _best_thumbnail(thumbnails: Sequence[Mapping[str, Any]] | None) -> str | None:
    sized = [t for t in thumbnails or () if t.get("url")]
    if not sized:
        return None
    return max(sized, key=lambda t: (t.get("width") or 0) * (t.get("height") or 0))["url"]


def _avatar(thumbnails: Sequence[Mapping[str, Any]] | None) -> str | None:
    # yt-dlp lists the avatar (no preference), its uncropped copy (id avatar_uncropped), then
    # banners (negative preference).
    for thumbnail in thumbnails or ():
        if thumbnail.get("id") is None and (thumbnail.get("preference") or 0) >= 0:
            return thumbnail.get("url")
    return None


def _banner(thumbnails: Sequence[Mapping[str, Any]] | None) -> str | None:
    # The first banner as the channel page shows it (cropped); its uncropped copy is huge.
    for thumbnail in thumbnails or ():
        if thumbnail.get("id") is None and (thumbnail.get("preference") or 0) < 0:
            return thumbnail.get("url")
    return None


# --- Listing dates ------------------------------------------------------------------------------


def parse_relative_time(text: str, now: datetime) -> datetime | None:
    """The moment a listing's "3 weeks ago" (or "Streamed 2 days ago") points to, counted back
    from `now`; None for text that says no such thing."""
    match = _RELATIVE_TIME_RE.search(text)
    if match is None:
        return None
    try:
        return now - int(match[1]) * _RELATIVE_UNITS[match[2].lower()]
    except OverflowError:  # "99999999 years ago"
        return None


def lockup_timestamp(view_model: Mapping[str, Any], now: datetime) -> int | None:
    """The timestamp of a lockup's relative date, from the last of its metadata parts that
    reads as one (`metadataRows[].metadataParts[].text.content`: "1.2m views", "3 weeks ago");
    None when none does."""
    texts = traverse_obj(
        view_model,
        (
            "metadata", "lockupMetadataViewModel", "metadata", "contentMetadataViewModel",
            "metadataRows", ..., "metadataParts", ..., "text", "content", {str},
        ),
    )  # fmt: skip
    for text in reversed(texts or ()):
        moment = parse_relative_time(text, now)
        if moment is not None:
            return int(moment.timestamp())
    return None


class _ListingTabIE(YoutubeTabIE):
    """yt-dlp's channel tab extractor, reading the date of each lockup (today's layout of a
    channel's tabs) where yt-dlp does not: yt-dlp reads a lockup's "3 weeks ago" only from a
    metadata row with an accessibility label, which YouTube's pages do not have (so up to
    2026.10.26 at least; yt-dlp PR #14539). Only Chirp's listing client uses it
    (YouTube._youtube_dl), in place of the stock one."""

    @classmethod
    def ie_key(cls) -> str:
        return YoutubeTabIE.ie_key()  # so that it replaces the stock one, in its place

    def _extract_lockup_view_model(self, view_model):  # type: ignore[no-untyped-def]
        entry = super()._extract_lockup_view_model(view_model)
        if entry and entry.get("timestamp") is None:
            entry["timestamp"] = lockup_timestamp(view_model, datetime.now(UTC))
        return entry


# --- The client ---------------------------------------------------------------------------------


class _YtDlpLog:
    """yt-dlp's logger: keeps the warnings of the current call, forwards all to logging."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def debug(self, msg: str) -> None:
        logger.debug("yt-dlp: %s", msg)

    def info(self, msg: str) -> None:
        logger.debug("yt-dlp: %s", msg)

    def warning(self, msg: str) -> None:
        self.warnings.append(msg)
        logger.warning("yt-dlp: %s", msg)

    def error(self, msg: str) -> None:
        # The error is raised as an exception too; the caller decides how loud it is.
        logger.debug("yt-dlp: %s", msg)


CHANNEL_NOT_FOUND = "This channel does not exist on YouTube: check its @handle or link."


def _page_path(url: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path).rstrip("/").lower()


class _YoutubeDL(yt_dlp.YoutubeDL):
    """YoutubeDL whose requests go through the given handlers when there are any, each one
    after `gate()` (the shared rate limiter) when there is one.

    A 404 for the page in `final_404_path` (the channel being listed) is YouTube's final word,
    raised at once as a YouTubeError: yt-dlp retries every 404 (some of YouTube's API 404s pass),
    then asks the API to resolve the address and retries that too, which for a mistyped handle
    was half a minute of backoff before the same answer.
    """

    def __init__(
        self,
        params: dict[str, Any],
        handlers: Sequence[type[RequestHandler]],
        gate: Callable[[], None] | None = None,
    ):
        self._chirp_handlers = tuple(handlers)
        self._chirp_gate = gate
        self.final_404_path: str | None = None
        super().__init__(params)

    def urlopen(self, req):  # type: ignore[no-untyped-def]
        if self._chirp_gate is not None:
            self._chirp_gate()
        try:
            return super().urlopen(req)
        except HTTPError as exc:
            url = req if isinstance(req, str) else getattr(req, "url", "")
            if exc.status == 404 and self.final_404_path == _page_path(url):
                # Not a YoutubeDLError: yt-dlp lets it through untouched, without retrying.
                raise YouTubeError(Reason.NOT_FOUND, str(exc), CHANNEL_NOT_FOUND) from exc
            raise

    @functools.cached_property
    def _request_director(self):  # type: ignore[override]
        if self._chirp_handlers:
            return self.build_request_director(self._chirp_handlers)
        return yt_dlp.YoutubeDL._request_director.func(self)

    @functools.cached_property
    def _js_runtimes(self):  # type: ignore[override]
        """yt-dlp's JavaScript runtimes, the process's own: each runtime asks its binary for
        its version once (`deno --version`, a subprocess of this whole process: ~7 ms), and
        yt-dlp makes new ones for every YoutubeDL, of which a download builds one."""
        runtimes = yt_dlp.YoutubeDL._js_runtimes.func(self)
        return {
            name: runtime
            if runtime is None
            else _JS_RUNTIMES.setdefault((name, type(runtime), runtime._path), runtime)
            for name, runtime in runtimes.items()
        }

    def _forceprint(self, key, info_dict):  # type: ignore[no-untyped-def]
        """Nothing, unless something is to be printed at `key` (Chirp prints nothing): yt-dlp
        renders the tables of formats, thumbnails and subtitles, for its print templates, at
        every step of every extraction (a few milliseconds each time). The `video` step's
        copy is used for other printing (`forcetitle`...): that one is left to yt-dlp."""
        if (
            key != "video"
            and not self.params["forceprint"].get(key)
            and not self.params["print_to_file"].get(key)
        ):
            return None
        return super()._forceprint(key, info_dict)


_JS_RUNTIMES: dict[tuple[str, type, str | None], Any] = {}


def _deno_path() -> str | None:
    try:
        import deno
    except ImportError:
        return None
    try:
        return deno.find_deno_bin()
    except FileNotFoundError:
        return None


class YouTube:
    """A yt-dlp session. Not thread-safe: one per task or thread.

    One YoutubeDL is kept for the client's life, so `sleep_requests` spaces every request it
    makes, across calls. Arguments left out come from the settings (see the module docstring).
    """

    def __init__(
        self,
        transport: Transport | None = None,
        *,
        cookies_file: str | None = None,
        sleep_requests: float | None = None,
        retries: int | None = None,
        retry_backoff: float | None = None,
        timeout: float | None = None,
        gate: Callable[[], None] | None = None,
    ) -> None:
        def default(value: Any, name: str, fallback: Any) -> Any:
            return read_setting(name, fallback) if value is None else value

        self.transport = transport or get_transport()
        self.cookies_file: str | None = default(cookies_file, "CHIRP_YOUTUBE_COOKIES_FILE", None)
        self.sleep_requests = float(default(sleep_requests, "CHIRP_YOUTUBE_SLEEP_REQUESTS", 0.75))
        self.retries = int(default(retries, "CHIRP_YOUTUBE_RETRIES", 3))
        self.retry_backoff = float(default(retry_backoff, "CHIRP_YOUTUBE_RETRY_BACKOFF", 2.0))
        self.timeout = float(default(timeout, "CHIRP_YOUTUBE_TIMEOUT", 20.0))
        # Called before every request (yt-dlp's and the transcripts session's): the limiter.
        self.gate = gate
        self._log = _YtDlpLog()
        self._ydl: _YoutubeDL | None = None

    def __enter__(self) -> YouTube:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._ydl is not None:
            self._ydl.close()
            self._ydl = None

    @property
    def warnings(self) -> list[str]:
        """What yt-dlp warned about during the last call."""
        return list(self._log.warnings)

    def http_session(self) -> requests.Session:
        return new_http_session(self.transport, self.gate, self.timeout)

    def _params(self) -> dict[str, Any]:
        backoff = self.retry_backoff
        deno = _deno_path()
        return {
            "quiet": True,
            "noprogress": True,
            "logger": self._log,
            "color": {"stdout": "no_color", "stderr": "no_color"},
            "skip_download": True,
            "simulate": True,
            "cachedir": False,
            "cookiefile": self.cookies_file,
            "socket_timeout": self.timeout,
            "sleep_interval_requests": self.sleep_requests,
            "extractor_retries": self.retries,
            # Exponential backoff between yt-dlp's own retries (5xx, timeouts, bad pages).
            "retry_sleep_functions": (
                {"extractor": lambda n: min(backoff * 2**n, 60.0)} if backoff else {}
            ),
            "js_runtimes": {"deno": {"path": deno} if deno else {}},
            # Metadata needs no stream manifests: without this, a player answer's HLS manifest
            # URL costs one more request (to manifest.googlevideo.com) per video.
            "extractor_args": {
                "youtube": {"skip": ["hls", "dash"]},
                # Flat entries get a timestamp from the listing's "3 weeks ago" (else None):
                # what lets a listing `since` a date stop paging (fetch_channel).
                "youtubetab": {"approximate_date": [""]},
            },
        }

    def _youtube_dl(self) -> _YoutubeDL:
        if self._ydl is None:
            handlers = self.transport.request_handlers if self.transport else ()
            self._ydl = _YoutubeDL(self._params(), handlers, self.gate)
            # Listings get each lockup's approximate date (fetch_channel's `since`).
            self._ydl.add_info_extractor(_ListingTabIE())
        return self._ydl

    def _extract(self, url: str, *, final_404: bool = False) -> dict[str, Any]:
        """yt-dlp's information on `url`; with `final_404`, a 404 for `url` itself is final."""
        self._log.warnings.clear()
        ydl = self._youtube_dl()
        ydl.final_404_path = _page_path(url) if final_404 else None
        try:
            info = ydl.extract_info(url, download=False, process=False)
        except YoutubeDLError as exc:
            raise classify_error(exc, self._log.warnings) from exc
        finally:
            ydl.final_404_path = None
        if not info:
            raise YouTubeError(Reason.UNKNOWN, f"yt-dlp returned nothing for {url}")
        return info

    def downloader(self, params: dict[str, Any]) -> _YoutubeDL:
        """A YoutubeDL that downloads (imports/media.py): this client's settings, transport
        and gate, with `params` on top. Use it as a context manager; `warnings` are its own."""
        self._log.warnings.clear()
        handlers = self.transport.request_handlers if self.transport else ()
        download = {"skip_download": False, "simulate": False}
        return _YoutubeDL({**self._params(), **download, **params}, handlers, self.gate)

    def download_audio(self, video_id: str, directory: Path, max_bytes: int) -> Path:
        """The video's smallest audio-only stream, saved in `directory` (for speech to text).
        Refused (YouTubeError, permanent) when it would be larger than `max_bytes`."""
        if not _VIDEO_ID_RE.fullmatch(video_id):
            raise ValueError(f"Not a YouTube video ID: {video_id!r}")
        params = {
            **self._params(),
            "skip_download": False,
            "simulate": False,
            # The smallest audio-only stream that fits (or whose size YouTube does not say:
            # then max_filesize stops the download); nothing is converted or fixed up.
            "format": f"worstaudio[filesize<?{max_bytes}]",
            "max_filesize": max_bytes,
            "fixup": "never",
            "outtmpl": {"default": str(directory / "%(id)s.%(ext)s")},
            "noplaylist": True,
            "overwrites": True,
            # A download may need the manifests' formats (the app clients' plain streams can
            # require a token that the HLS ones do not).
            "extractor_args": {},
        }
        handlers = self.transport.request_handlers if self.transport else ()
        self._log.warnings.clear()
        with _YoutubeDL(params, handlers, self.gate) as ydl:
            try:
                info = ydl.extract_info(f"{YOUTUBE}/watch?v={video_id}", download=True)
            except YoutubeDLError as exc:
                raise classify_error(exc, self._log.warnings) from exc
        paths = [d.get("filepath") for d in (info or {}).get("requested_downloads") or ()]
        found = [Path(p) for p in paths if p and Path(p).exists()]
        if not found:
            raise YouTubeError(
                Reason.UNAVAILABLE,
                "no audio was downloaded",
                "YouTube has no audio stream of this video small enough to transcribe.",
            )
        return found[0]

    def fetch_video(self, video_id: str) -> VideoInfo:
        """One video's metadata: two requests (watch page, player API) when all goes well; the
        stream manifests a player answer points to are not fetched."""
        if not _VIDEO_ID_RE.fullmatch(video_id):
            raise ValueError(f"Not a YouTube video ID: {video_id!r}")
        info = self._extract(f"{YOUTUBE}/watch?v={video_id}")
        if info.get("_type") in ("url", "url_transparent") and info.get("url"):
            info = self._extract(info["url"])  # e.g. a paid video's page points to its trailer
        return VideoInfo.from_info(info)

    def resolve_channel(self, ref: ChannelRef) -> ChannelRef:
        """The channel a video belongs to; other references are returned as they are."""
        if ref.video_id is None:
            return ref
        video = self.fetch_video(ref.video_id)
        if not video.channel_id:
            raise YouTubeError(Reason.UNKNOWN, f"No channel found for video {ref.video_id}")
        return ChannelRef.for_channel_id(video.channel_id)

    def fetch_channel(
        self,
        ref: ChannelRef,
        *,
        tab: str = "videos",
        limit: int | None = None,
        known_ids: Iterable[str] = frozenset(),
        since: date | None = None,
    ) -> ChannelListing:
        """The channel's details and its listing, newest first.

        Pages (30 videos each) are fetched only as they are read: the listing stops at `limit`
        entries, just before the first video in `known_ids`, or (with `since`) at the first
        entry whose approximate date is more than SINCE_MARGIN older than `since`, without
        asking for more pages. (yt-dlp's own break_on_existing and break-match-filters raise
        and throw the partial result away, so the lazily extracted entries are read here
        instead; its `daterange` does not apply to flat entries at all.) The entries inside the
        margin are kept: their exact date, in their metadata, decides. An entry without an
        approximate date (YouTube's page did not say, or yt-dlp could not read it) never stops
        the listing.
        """
        if tab not in LISTING_TABS:
            raise ValueError(f"tab must be one of {sorted(LISTING_TABS)}, not {tab!r}")
        if limit is not None and limit < 0:
            raise ValueError("limit cannot be negative")
        ref = self.resolve_channel(ref)
        known = frozenset(known_ids)
        info = self._extract(f"{ref.url}/{tab}", final_404=True)

        entries: list[ChannelEntry] = []
        complete = reached_known = False
        stopped_at: date | None = None
        oldest = since - SINCE_MARGIN if since is not None else None
        end = object()
        iterator = iter(info.get("entries") or ())
        try:
            while limit is None or len(entries) < limit:
                entry = next(iterator, end)
                if entry is end:
                    complete = True
                    break
                if not entry or not entry.get("id"):
                    continue
                if entry["id"] in known:
                    reached_known = True
                    break
                listed = ChannelEntry.from_info(entry)
                if oldest and listed.approximate_date and listed.approximate_date < oldest:
                    stopped_at = listed.approximate_date
                    break
                entries.append(listed)
        except YoutubeDLError as exc:
            raise classify_error(exc, self._log.warnings) from exc

        channel_id = info.get("channel_id") or info.get("id")
        return ChannelListing(
            channel_id=channel_id,
            title=info.get("channel") or info.get("title") or "",
            url=f"{YOUTUBE}/channel/{channel_id}",
            handle=info.get("uploader_id"),
            description=info.get("description") or "",
            avatar_url=_avatar(info.get("thumbnails")),
            banner_url=_banner(info.get("thumbnails")),
            subscriber_count=_int(info.get("channel_follower_count")),
            video_count=len(entries) if complete and tab == "videos" else None,
            entries=tuple(entries),
            complete=complete,
            reached_known=reached_known,
            stopped_at=stopped_at,
        )
