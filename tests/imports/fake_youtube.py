"""An offline YouTube: a loopback HTTP server answering what yt-dlp and youtube-transcript-api ask.

Everything is generated, in the shapes the installed libraries read (yt_dlp/extractor/youtube/
and youtube_transcript_api/_transcripts.py were read to build it); nothing is recorded from
the real site. Each channel has a `shape`: "recorded" (the default) answers as real YouTube did
when its answers were recorded and compared with this fake; "classic" keeps the older shapes
(see SHAPES), which yt-dlp still reads, so tests can run on both. The real code paths run
unpatched: only yt-dlp's request director is replaced (by `imports.youtube.Transport`), and
transcripts get a requests session with an adapter.

    server = FakeYouTube().start()
    channel = server.add_channel("fixture95", videos=95, errors={0: "private"})
    mixed = server.add_channel("mixed", videos=3, shorts=40, streams=5)  # three tabs
    server.add_fault(kinds={"browse"}, page=3, status=429, times=2)
    old = server.add_channel("old", videos=3, shape="classic")     # the older answer shapes
    os.environ["FAKE_YOUTUBE_URL"] = server.url          # for subprocesses, with
    # CHIRP_YOUTUBE_TRANSPORT=tests.imports.fake_youtube.transport
    ...
    server.count(kind="player", video_id=channel.videos[0].id)

What it serves, per request kind (each request is recorded with its kind):

    channel_page  GET  /@h/videos, /channel/UC…/videos, /c/n/videos, /user/n/videos, /n/videos
                       (a legacy /n is the channel whose custom URL or username n is; an
                       unknown channel is a 404, as on YouTube)
                       (and /shorts, /streams: a channel's tabs of shorts and past live streams)
    browse        POST /youtubei/v1/browse        continuations (30 videos a page), browseId
    resolve_url   POST /youtubei/v1/navigation/resolve_url
    watch         GET  /watch?v=                  ytcfg, ytInitialPlayerResponse, ytInitialData
    player        POST /youtubei/v1/player        answers per client (WEB, VISIONOS, ANDROID…)
    next          POST /youtubei/v1/next
    embed         GET  /embed/ID                  the web_embedded client's config
    iframe_api, player_js                         only asked for when the page lacks them
    timedtext     GET  /api/timedtext             srv1 XML (default), srv2, srv3, json3, vtt, ttml
    feed          GET  /feeds/videos.xml?channel_id=UC…  the channel's RSS (Atom): 15 newest
    image         i.ytimg.com, yt3.* avatars      a tiny JPEG, its colour drawn from the path
                                                  (or what `set_image` says for a video or
                                                  channel ID in the path)
    manifest      manifest.googlevideo.com        an HLS master playlist (a player answer's
                                                  hlsManifestUrl, "recorded" shape)
    media         *.googlevideo.com               refused (403), or `media` bytes when set, or
                                                  the real clips given to `serve_media` (by
                                                  itag, with Range, at an optional bandwidth)

The transport forwards youtube.com, youtu.be, youtube-nocookie.com, ytimg.com, googlevideo.com
and yt3 image hosts to the server (the original host in the X-Fake-YouTube-Host header) and
refuses every other host loudly, so a test can never reach the network.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import http.client
import io
import json
import os
import random
import re
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from xml.sax.saxutils import escape as xml_escape

import requests
from requests.adapters import HTTPAdapter
from yt_dlp.networking.common import Request, RequestHandler, Response
from yt_dlp.networking.exceptions import HTTPError, TransportError, UnsupportedRequest

from imports.youtube import Transport
from tests.imports.media_clips import Clip

ENV_VAR = "FAKE_YOUTUBE_URL"
HOST_HEADER = "X-Fake-YouTube-Host"

API_KEY = "AIzaSyFakeFakeFakeFakeFakeFakeFake0123"
VISITOR_DATA = "CgtGYWtlVmlzaXRvcijAgICABjIKCgJVUxIEGgAgOA%3D%3D"
CLICK_TRACKING = "CBAQ8JMBGAYiEwjFakeTrackingParams"
WEB_VERSION = "2.20260708.00.00"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0,gzip(gfe)"
MEMBERS_ONLY_REASON = (
    "Join this channel to get access to members-only content like this video, "
    "and other exclusive perks."
)
EMBED_VERSION = "1.20260708.01.00"
PLAYER_ID = "0123abcd"
PLAYER_JS_URL = f"/s/player/{PLAYER_ID}/player_ias.vflset/en_US/base.js"
SIGNATURE_TIMESTAMP = 20300
NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)  # "today", for relative dates
PACIFIC = timezone(timedelta(hours=-7))
XML_DECLARATION = '<?xml version="1.0" encoding="utf-8" ?>'

# How a channel's answers are shaped. "recorded": as real YouTube answered (en-GB) when its
# answers were recorded and compared with this fake:
# - the Videos tab lists lockupViewModels whose metadata row has no accessibilityLabel, so
#   yt-dlp's flat entries carry no view count; durations sit in thumbnailBottomOverlayViewModel
#   badges (videoRenderers: thumbnailOverlayBadgeViewModel, not thumbnailOverlayTimeStatusRenderer);
# - British number and date formats ("2.1m views", "19 Nov 2020");
# - the listing's duration is rounded up, one second more than the player's lengthSeconds;
# - player answers of the non-web clients carry an hlsManifestUrl (manifest.googlevideo.com);
# - caption lines overlap in time, and the XML escapes entities twice ("it&amp;#39;s").
# "classic": the fake's earlier shapes (videoRenderers by default, labelled lockup metadata
# rows, thumbnailOverlayBadgeViewModel, US formats, no manifests, captions escaped once).
SHAPES = ("recorded", "classic")
PLAYABILITY = frozenset(
    {"ok", "private", "unavailable", "members_only", "age_restricted", "removed", "bot_check",
     "geo_blocked", "live_upcoming"}
)  # fmt: skip
# Caption presets: "xx" is a manual track, "a.xx" an auto-generated ("asr") one. YouTube sends
# no `captions` at all both for a video without captions and one whose captions are turned off.
CAPTION_PRESETS: dict[str, tuple[str, ...] | None] = {
    "manual": ("en", "a.en"),
    "auto": ("a.en",),
    "multi": ("de", "fr", "a.en"),
    "other_language": ("ja",),
    "none": None,
    "disabled": None,
}
LANGUAGES = {"en": "English", "de": "German", "fr": "French", "ja": "Japanese", "es": "Spanish"}
TAB_PARAMS = {
    "featured": "EghmZWF0dXJlZPIGBAoCMgA%3D",
    "videos": "EgZ2aWRlb3PyBgQKAjoA",
    "shorts": "EgZzaG9ydHPyBgUKA5oBAA%3D%3D",
    "streams": "EgdzdHJlYW1z8gYECgJ6AA%3D%3D",
    "playlists": "EglwbGF5bGlzdHPyBgQKAkIA",
    "community": "Egljb21tdW5pdHnyBgQKAkoA",
}
TAB_TITLES = {  # in YouTube's order; the streams tab is titled "Live"
    "featured": "Home",
    "videos": "Videos",
    "shorts": "Shorts",
    "streams": "Live",
    "playlists": "Playlists",
    "community": "Posts",
}
# The tabs that list a channel's uploads; each is shown only when the channel has some.
UPLOAD_TABS = ("videos", "shorts", "streams")
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_TOKEN_PREFIX = "4qmFsgK"
_CHANNEL_PATH = re.compile(
    r"^/(?:(?P<handle>@[^/]+)|channel/(?P<ucid>UC[\w-]{22})|c/(?P<custom>[^/]+)|user/(?P<user>[^/]+))"
    r"(?:/(?P<tab>[^/]+))?/?$"
)
# A legacy address, youtube.com/<name>: YouTube resolves it to the channel whose custom URL or
# old username that is (the other top-level paths the fake serves are matched before it).
_LEGACY_PATH = re.compile(r"^/(?P<legacy>[\w-]+)(?:/(?P<tab>[^/]+))?/?$")
_FORWARDED_SUFFIXES = (
    "youtube.com", "youtu.be", "youtube-nocookie.com", "ytimg.com", "googlevideo.com", "ggpht.com",
)  # fmt: skip
_FORWARDED_HOSTS = frozenset({"yt3.googleusercontent.com"})


def is_youtube_host(host: str | None) -> bool:
    host = (host or "").lower().rstrip(".")
    return host in _FORWARDED_HOSTS or any(
        host == suffix or host.endswith("." + suffix) for suffix in _FORWARDED_SUFFIXES
    )


# --- Scenario ------------------------------------------------------------------------------------


@dataclass
class FakeVideo:
    id: str
    index: int  # 0 is the newest, as the channel's listing shows it
    channel_id: str
    title: str
    description: str
    duration: int
    published: datetime
    views: int
    likes: int
    tags: tuple[str, ...]
    category: str = "Education"
    playability: str = "ok"
    captions: tuple[str, ...] | None = ("en", "a.en")
    chapters: tuple[tuple[int, str], ...] = ()
    kind: str = "video"  # or "short", or "stream" (a past live stream)
    shape: str = "recorded"  # its channel's (SHAPES)
    listed_date: bool = True  # whether listings say "3 weeks ago" (its channel's listed_dates)

    @property
    def members_only(self) -> bool:
        return self.playability == "members_only"

    @property
    def recorded(self) -> bool:
        return self.shape == "recorded"

    @property
    def listed_duration(self) -> int:
        """The duration a listing shows: rounded up, one second over the player's, when
        recorded."""
        return self.duration + 1 if self.recorded else self.duration


@dataclass
class FakeChannel:
    handle: str  # without the @
    channel_id: str
    title: str
    description: str
    subscribers: int
    custom_url: str | None = None
    user: str | None = None
    layout: str = "lockupViewModel"  # or "videoRenderer" (the older one)
    shorts_layout: str = "shortsLockupViewModel"  # or "reelItemRenderer" (the older one)
    page_size: int = 30
    videos: list[FakeVideo] = field(default_factory=list)
    shorts: list[FakeVideo] = field(default_factory=list)
    streams: list[FakeVideo] = field(default_factory=list)
    shape: str = "recorded"  # SHAPES
    listed_dates: bool = True  # whether its tabs say "3 weeks ago" of each upload

    @property
    def path(self) -> str:
        return f"/@{self.handle}"

    @property
    def avatar(self) -> str:
        return f"https://yt3.googleusercontent.com/fake-avatar-{self.channel_id}"

    @property
    def video_ids(self) -> list[str]:
        return [video.id for video in self.videos]

    @property
    def short_ids(self) -> list[str]:
        return [video.id for video in self.shorts]

    @property
    def stream_ids(self) -> list[str]:
        return [video.id for video in self.streams]

    def uploads(self, tab: str) -> list[FakeVideo]:
        """What the tab lists, newest first (nothing for a tab that lists no uploads)."""
        return {"videos": self.videos, "shorts": self.shorts, "streams": self.streams}.get(tab, [])

    @property
    def upload_count(self) -> int:
        return len(self.videos) + len(self.shorts) + len(self.streams)


@dataclass
class Fault:
    """Answer matching requests with an HTTP status, a delay or a playability status.

    `kinds` None matches every kind; `times` None matches forever (else the first N matches).
    """

    kinds: frozenset[str] | None = None
    status: int | None = None
    delay: float = 0.0
    playability: str | None = None
    video_id: str | None = None
    channel_id: str | None = None
    page: int | None = None
    times: int | None = None
    hits: int = 0

    def matches(self, request: RecordedRequest) -> bool:
        return (
            (self.times is None or self.hits < self.times)
            and (self.kinds is None or request.kind in self.kinds)
            and (self.video_id is None or request.video_id == self.video_id)
            and (self.channel_id is None or request.channel_id == self.channel_id)
            and (self.page is None or request.page == self.page)
        )


@dataclass
class RecordedRequest:
    method: str
    host: str
    path: str
    query: dict[str, list[str]]
    kind: str
    at: float  # time.monotonic() on arrival, in the server's process
    video_id: str | None = None
    channel_id: str | None = None
    page: int | None = None
    tab: str | None = None  # of a channel page or a continuation
    client: str | None = None
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    done: float = 0.0  # time.monotonic() once answered (0: not yet)


# --- Text helpers -------------------------------------------------------------------------------


def _dumps(data: Any) -> str:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _nest(path: str, value: Any) -> Any:
    """{"a": {"b": value}} from "a.b": YouTube nests renderers many levels deep."""
    for key in reversed(path.split(".")):
        value = {key: value}
    return value


def _runs(text: str) -> dict[str, Any]:
    return {"runs": [{"text": text}]}


def _simple(text: str) -> dict[str, Any]:
    return {"simpleText": text}


def _clock(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def _spoken_duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(hours, "hour"), (minutes, "minute"), (secs, "second")]
    return ", ".join(f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts if n)


def _short_count(number: int, digits: int = 2, british: bool = False) -> str:
    """US English "1.2M", or British "1.2m" (lower-case suffixes)."""
    for size, suffix in ((10**9, "B"), (10**6, "M"), (10**3, "K")):
        if number >= size:
            value = number / size
            decimals = max(0, digits - len(str(int(value))))
            text = f"{int(value * 10**decimals) / 10**decimals:.{decimals}f}"
            if "." in text:  # "1.20" is "1.2", "1.0" is "1"; but "380" stays "380"
                text = text.rstrip("0").rstrip(".")
            return text + (suffix.lower() if british else suffix)
    return str(number)


def _spoken_count(number: int) -> str:
    """A count as YouTube's accessibility labels say it: "950", "12K", "1.2 million"."""
    return _short_count(number).replace("M", " million").replace("B", " billion")


def _views(video: FakeVideo) -> str:
    """A listing's rounded view count: "1.2M views", or "1.2m views" when recorded (en-GB)."""
    return f"{_short_count(video.views, british=video.recorded)} views"


def _date(video: FakeVideo) -> str:
    """A watch page's date: "Nov 19, 2020", or "19 Nov 2020" when recorded (en-GB)."""
    return video.published.strftime("%-d %b %Y" if video.recorded else "%b %-d, %Y")


def _relative(published: datetime) -> str:
    """A listing's "3 weeks ago", rounded down as YouTube does, from the real clock: yt-dlp
    reads it (approximate_date) as that long before the moment it reads it."""
    days = (datetime.now(UTC) - published).days
    for size, unit in ((365, "year"), (30, "month"), (7, "week"), (1, "day")):
        if days >= size:
            n = days // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "1 hour ago"


def _iso(moment: datetime) -> str:
    return moment.astimezone(PACIFIC).isoformat()


def _navigation(url: str, page_type: str, **endpoint: Any) -> dict[str, Any]:
    metadata = {"url": url, "webPageType": page_type, "rootVe": 3611}
    if page_type == "WEB_PAGE_TYPE_CHANNEL":
        metadata["apiUrl"] = "/youtubei/v1/browse"
    return {
        "clickTrackingParams": CLICK_TRACKING,
        "commandMetadata": {"webCommandMetadata": metadata},
        **endpoint,
    }


def _html(title: str, ytcfg: dict[str, Any], scripts: Iterable[str], meta: str = "") -> str:
    body = "".join(f'<script nonce="fake">{script}</script>' for script in scripts)
    return (
        '<!DOCTYPE html><html style="font-size: 10px;font-family: Roboto, Arial, sans-serif;" '
        f'lang="en" dir="ltr"><head><meta charset="utf-8"><title>{xml_escape(title)}</title>{meta}'
        f'<script nonce="fake">ytcfg.set({_dumps(ytcfg)});'
        "window.ytcfg.obfuscatedData_ = [];</script>"
        f'</head><body dir="ltr">{body}</body></html>'
    )


def _ytcfg(client: str, version: str, client_id: int, url: str) -> dict[str, Any]:
    return {
        "INNERTUBE_API_KEY": API_KEY,
        "INNERTUBE_API_VERSION": "v1",
        "INNERTUBE_CLIENT_NAME": client,
        "INNERTUBE_CLIENT_VERSION": version,
        "INNERTUBE_CONTEXT_CLIENT_NAME": client_id,
        "INNERTUBE_CONTEXT_CLIENT_VERSION": version,
        "INNERTUBE_CONTEXT": {
            "client": {
                "hl": "en",
                "gl": "US",
                "remoteHost": "127.0.0.1",
                "visitorData": VISITOR_DATA,
                "userAgent": USER_AGENT,
                "clientName": client,
                "clientVersion": version,
                "osName": "X11",
                "originalUrl": url,
                "platform": "DESKTOP",
                "clientFormFactor": "UNKNOWN_FORM_FACTOR",
            },
            "user": {"lockedSafetyMode": False},
            "request": {"useSsl": True},
            "clickTracking": {"clickTrackingParams": CLICK_TRACKING},
        },
        "VISITOR_DATA": VISITOR_DATA,
        "LOGGED_IN": False,
        "HL": "en",
        "GL": "US",
        "PLAYER_JS_URL": PLAYER_JS_URL,
        "STS": SIGNATURE_TIMESTAMP,
        "WEB_PLAYER_CONTEXT_CONFIGS": {
            "WEB_PLAYER_CONTEXT_CONFIG_ID_KEVLAR_WATCH": {"jsUrl": PLAYER_JS_URL},
            "WEB_PLAYER_CONTEXT_CONFIG_ID_EMBEDDED_PLAYER": {
                "jsUrl": PLAYER_JS_URL,
                "encryptedHostFlags": "FakeEncryptedHostFlags",
            },
        },
    }


def _response_context() -> dict[str, Any]:
    return {
        "visitorData": VISITOR_DATA,
        "serviceTrackingParams": [
            {"service": "GFEEDBACK", "params": [{"key": "logged_in", "value": "0"}]},
            {
                "service": "CSI",
                "params": [{"key": "c", "value": "WEB"}, {"key": "cver", "value": WEB_VERSION}],
            },
        ],
        "mainAppWebResponseContext": {"loggedOut": True},
    }


# --- Channel pages ------------------------------------------------------------------------------


def _thumbnails(video_id: str) -> list[dict[str, Any]]:
    query = "sqp=-oaymwEbCKgBEF5IVfKriqkDDggBFQAAiEIYAXABwAEG&rs=AOn4CLFake"
    return [
        {"url": f"https://i.ytimg.com/vi/{video_id}/hqdefault.jpg?{query}", "width": w, "height": h}
        for w, h in ((168, 94), (196, 110), (246, 138), (336, 188))
    ]


def _duration_badge(video: FakeVideo) -> dict[str, Any]:
    return {
        "thumbnailBadgeViewModel": {
            "text": _clock(video.listed_duration),
            "badgeStyle": "THUMBNAIL_OVERLAY_BADGE_STYLE_DEFAULT",
            "animationActivationTargetId": video.id,
        }
    }


def _badge_overlay(video: FakeVideo) -> dict[str, Any]:
    """A duration in the thumbnail-overlay structure that replaced
    thumbnailOverlayTimeStatusRenderer."""
    return {
        "thumbnailOverlayBadgeViewModel": {
            "thumbnailBadges": [_duration_badge(video)],
            "position": "THUMBNAIL_OVERLAY_BADGE_POSITION_BOTTOM_END",
        }
    }


def _bottom_overlay(video: FakeVideo) -> dict[str, Any]:
    """The newest one (a lockup's thumbnail when recorded): badges in a bottom overlay."""
    return {
        "thumbnailBottomOverlayViewModel": {
            "badges": [_duration_badge(video)],
            "progressBar": None,
        }
    }


def _video_renderer(video: FakeVideo) -> dict[str, Any]:
    seconds = video.listed_duration
    clock, spoken = _clock(seconds), _spoken_duration(seconds)
    renderer: dict[str, Any] = {
        "videoId": video.id,
        "thumbnail": {"thumbnails": _thumbnails(video.id)},
        "title": {
            "runs": [{"text": video.title}],
            "accessibility": {"accessibilityData": {"label": f"{video.title} {spoken}"}},
        },
        "descriptionSnippet": _runs(video.description.splitlines()[0] if video.description else ""),
        **({"publishedTimeText": _simple(_listed_time(video))} if video.listed_date else {}),
        "lengthText": {
            "accessibility": {"accessibilityData": {"label": spoken}},
            "simpleText": clock,
        },
        "viewCountText": _simple(f"{video.views:,} views"),
        "navigationEndpoint": _navigation(
            f"/watch?v={video.id}", "WEB_PAGE_TYPE_WATCH", watchEndpoint={"videoId": video.id}
        ),
        "trackingParams": CLICK_TRACKING,
        "showActionMenu": False,
        "shortViewCountText": {
            "accessibility": {"accessibilityData": {"label": _views(video)}},
            "simpleText": _views(video),
        },
        "thumbnailOverlays": [
            _badge_overlay(video)
            if video.recorded
            else {
                "thumbnailOverlayTimeStatusRenderer": {
                    "text": {
                        "accessibility": {"accessibilityData": {"label": spoken}},
                        "simpleText": clock,
                    },
                    "style": "DEFAULT",
                }
            },
            {"thumbnailOverlayNowPlayingRenderer": {"text": _runs("Now playing")}},
        ],
    }
    if video.members_only:
        renderer["badges"] = [
            {
                "metadataBadgeRenderer": {
                    "icon": {"iconType": "SPONSORSHIP_STAR"},
                    "style": "BADGE_STYLE_TYPE_MEMBERS_ONLY",
                    "label": "Members only",
                    "trackingParams": CLICK_TRACKING,
                }
            }
        ]
    return {
        "richItemRenderer": {
            "content": {"videoRenderer": renderer},
            "trackingParams": CLICK_TRACKING,
        }
    }


def _listed_time(video: FakeVideo) -> str:
    """What a listing says of a video's date: "3 weeks ago", "Streamed 2 days ago"."""
    published = _relative(video.published)
    return f"Streamed {published}" if video.kind == "stream" else published


def _lockup_view_model(video: FakeVideo) -> dict[str, Any]:
    # One row, "1.2m views • 3 weeks ago", as a channel's tab shows it. yt-dlp reads the view
    # count (and date) only from a row whose last part has an accessibilityLabel: the classic
    # shape has one, real pages (recorded) do not (Chirp reads the date itself:
    # imports.youtube.lockup_timestamp). A channel without listed dates shows the views only.
    parts: list[dict[str, Any]] = [{"text": {"content": _views(video)}}]
    if video.listed_date:
        published: dict[str, Any] = {"text": {"content": _listed_time(video)}}
        if not video.recorded:
            published["accessibilityLabel"] = _listed_time(video)
        parts.append(published)
    rows: list[dict[str, Any]] = [{"metadataParts": parts}]
    if video.members_only:
        rows.append(
            {
                "badges": [
                    {
                        "badgeViewModel": {
                            "badgeText": "Members only",
                            "badgeStyle": "BADGE_MEMBERS_ONLY",
                        }
                    }
                ]
            }
        )
    model = {
        "contentImage": {
            "thumbnailViewModel": {
                "image": {
                    "sources": [
                        {
                            "url": f"https://i.ytimg.com/vi/{video.id}/hqdefault.jpg",
                            "width": 480,
                            "height": 270,
                        }
                    ]
                },
                "overlays": [_bottom_overlay(video) if video.recorded else _badge_overlay(video)],
            }
        },
        "metadata": {
            "lockupMetadataViewModel": {
                "title": {"content": video.title},
                "metadata": {
                    "contentMetadataViewModel": {"metadataRows": rows, "delimiter": " • "}
                },
            }
        },
        "contentId": video.id,
        "contentType": "LOCKUP_CONTENT_TYPE_VIDEO",
        "rendererContext": {
            "commandContext": {
                "onTap": {
                    "innertubeCommand": _navigation(
                        f"/watch?v={video.id}",
                        "WEB_PAGE_TYPE_WATCH",
                        watchEndpoint={"videoId": video.id},
                    )
                }
            }
        },
    }
    return {
        "richItemRenderer": {
            "content": {"lockupViewModel": model},
            "trackingParams": CLICK_TRACKING,
        }
    }


def _short_thumbnail(video: FakeVideo) -> dict[str, Any]:
    """A short's thumbnail: its original (portrait) aspect ratio."""
    query = "sqp=-oaymwEdCJUDENAFSFWQAgHyq4qpAwwIARUAAIhCcAHAAQY=&rs=AOn4CLFakeShort"
    return {
        "url": f"https://i.ytimg.com/vi/{video.id}/oar2.jpg?{query}",
        "width": 405,
        "height": 720,
    }


def _reel_watch_endpoint(video: FakeVideo) -> dict[str, Any]:
    return _navigation(
        f"/shorts/{video.id}",
        "WEB_PAGE_TYPE_SHORTS",
        reelWatchEndpoint={
            "videoId": video.id,
            "playerParams": "8AEBoAMDuAQm",
            "thumbnail": {"thumbnails": [_short_thumbnail(video)], "isOriginalAspectRatio": True},
            "overlay": {
                "reelPlayerOverlayRenderer": {
                    "style": "REEL_PLAYER_OVERLAY_STYLE_SHORTS",
                    "trackingParams": CLICK_TRACKING,
                    "reelPlayerNavigationModel": "REEL_PLAYER_NAVIGATION_MODEL_UNSPECIFIED",
                }
            },
            "params": "CAYwAg%3D%3D",
            "sequenceProvider": "REEL_WATCH_SEQUENCE_PROVIDER_RPC",
        },
    )


def _shorts_lockup_view_model(video: FakeVideo) -> dict[str, Any]:
    """A short in the Shorts tab, as YouTube sends it now: no duration, no date; the title and
    view count in the overlay, the video ID only in the tap command."""
    views = f"{_short_count(video.views)} views"
    model = {
        "entityId": f"shorts-shelf-item-{video.id}",
        "accessibilityText": f"{video.title}, {_spoken_count(video.views)} views - play Short",
        "thumbnailViewModel": {
            "thumbnailViewModel": {
                "image": {"sources": [_short_thumbnail(video)]},
                "isMobile": False,
                "overlays": [],
            }
        },
        "onTap": {"innertubeCommand": _reel_watch_endpoint(video)},
        "inlinePlayerData": {
            "onVisible": {
                "innertubeCommand": _navigation(
                    f"/watch?v={video.id}&pp=YAHIAQE%3D",
                    "WEB_PAGE_TYPE_WATCH",
                    watchEndpoint={
                        "videoId": video.id,
                        "playerParams": "YAHIAQE%3D",
                        "playerExtraUrlParams": [{"key": "inline", "value": "1"}],
                    },
                )
            }
        },
        "indexInCollection": video.index,
        "menuOnTapA11yLabel": "More actions",
        "overlayMetadata": {
            "primaryText": {"content": video.title},
            "secondaryText": {"content": views},
        },
        "loggingDirectives": {
            "trackingParams": CLICK_TRACKING,
            "visibility": {"types": "12"},
            "enableDisplayloggerExperiment": True,
        },
    }
    return {
        "richItemRenderer": {
            "content": {"shortsLockupViewModel": model},
            "trackingParams": CLICK_TRACKING,
        }
    }


def _reel_item_renderer(video: FakeVideo) -> dict[str, Any]:
    """A short in the Shorts tab, as YouTube sent it before shortsLockupViewModel."""
    views = _short_count(video.views)
    renderer = {
        "videoId": video.id,
        "headline": _simple(video.title),
        "thumbnail": {"thumbnails": [_short_thumbnail(video)], "isOriginalAspectRatio": True},
        "viewCountText": {
            "accessibility": {
                "accessibilityData": {"label": f"{_spoken_count(video.views)} views"}
            },
            "simpleText": f"{views} views",
        },
        "navigationEndpoint": _reel_watch_endpoint(video),
        "trackingParams": CLICK_TRACKING,
        "accessibility": {
            "accessibilityData": {
                "label": f"{video.title} - {_spoken_duration(video.duration)} - play video"
            }
        },
        "style": "REEL_ITEM_STYLE_AVATAR_CIRCLE",
        "videoType": "REEL_VIDEO_TYPE_VIDEO",
    }
    return {
        "richItemRenderer": {
            "content": {"reelItemRenderer": renderer},
            "trackingParams": CLICK_TRACKING,
        }
    }


_SHORTS_LAYOUTS = {
    "shortsLockupViewModel": _shorts_lockup_view_model,
    "reelItemRenderer": _reel_item_renderer,
}


def continuation_token(channel: FakeChannel, offset: int, page: int, tab: str = "videos") -> str:
    raw = json.dumps(
        {"c": channel.channel_id, "t": tab, "o": offset, "p": page}, separators=(",", ":")
    )
    return _TOKEN_PREFIX + base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def parse_continuation_token(token: str) -> dict[str, Any] | None:
    if not token.startswith(_TOKEN_PREFIX):
        return None
    raw = token[len(_TOKEN_PREFIX) :]
    try:
        return json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except ValueError:
        return None


def _renderer_for(channel: FakeChannel, tab: str) -> Callable[[FakeVideo], dict[str, Any]]:
    """How a tab shows each upload: the Videos tab in the channel's layout, the Live tab with
    videoRenderers (like the Videos tab), the Shorts tab with short lockups."""
    if tab == "shorts":
        return _SHORTS_LAYOUTS[channel.shorts_layout]
    if tab == "videos" and channel.layout == "lockupViewModel":
        return _lockup_view_model
    return _video_renderer


def _grid_items(channel: FakeChannel, tab: str, offset: int, page: int) -> list[dict[str, Any]]:
    render, uploads = _renderer_for(channel, tab), channel.uploads(tab)
    items = [render(video) for video in uploads[offset : offset + channel.page_size]]
    next_offset = offset + channel.page_size
    if next_offset < len(uploads):
        items.append(
            {
                "continuationItemRenderer": {
                    "trigger": "CONTINUATION_TRIGGER_ON_ITEM_SHOWN",
                    "continuationEndpoint": {
                        "clickTrackingParams": CLICK_TRACKING,
                        "commandMetadata": {
                            "webCommandMetadata": {
                                "sendPost": True,
                                "apiUrl": "/youtubei/v1/browse",
                            }
                        },
                        "continuationCommand": {
                            "token": continuation_token(channel, next_offset, page + 1, tab),
                            "request": "CONTINUATION_REQUEST_TYPE_BROWSE",
                        },
                    },
                }
            }
        )
    return items


def _page_header_view_model(channel: FakeChannel) -> dict[str, Any]:
    avatars = [
        {"url": f"{channel.avatar}=s{size}-c-k-c0x00ffffff-no-rj", "width": size, "height": size}
        for size in (72, 120, 160)
    ]
    subscribers = f"{_short_count(channel.subscribers, 3)} subscribers"
    banner = f"https://yt3.googleusercontent.com/fake-banner-{channel.channel_id}=w1060-fcrop64=1"
    return {
        "title": _nest("dynamicTextViewModel.text.content", channel.title),
        "image": _nest(
            "decoratedAvatarViewModel.avatar.avatarViewModel",
            {"image": {"sources": avatars}, "avatarImageSize": "AVATAR_SIZE_XXL"},
        ),
        "metadata": _nest(
            "contentMetadataViewModel",
            {
                "metadataRows": [
                    {"metadataParts": [{"text": {"content": f"@{channel.handle}"}}]},
                    {
                        "metadataParts": [
                            {"text": {"content": subscribers}},
                            {"text": {"content": f"{channel.upload_count:,} videos"}},
                        ]
                    },
                ],
                "delimiter": "•",
            },
        ),
        "description": _nest(
            "descriptionPreviewViewModel.description.content", channel.description.splitlines()[0]
        ),
        "banner": _nest(
            "imageBannerViewModel.image.sources",
            [{"url": banner, "width": 1060, "height": 175}],
        ),
    }


def channel_initial_data(channel: FakeChannel, tab: str) -> dict[str, Any]:
    """ytInitialData of a channel tab. Like YouTube, a channel shows the Videos, Shorts and Live
    tabs only when it has uploads of that kind, and a tab it lacks selects Home."""
    shown = [name for name in TAB_TITLES if name not in UPLOAD_TABS or channel.uploads(name)]
    selected = tab if tab in UPLOAD_TABS and tab in shown else "featured"
    tabs = []
    for name in shown:
        title = TAB_TITLES[name]
        renderer: dict[str, Any] = {
            "endpoint": _navigation(
                f"{channel.path}/{name}",
                "WEB_PAGE_TYPE_CHANNEL",
                browseEndpoint={
                    "browseId": channel.channel_id,
                    "params": TAB_PARAMS[name],
                    "canonicalBaseUrl": channel.path,
                },
            ),
            "title": title,
            "trackingParams": CLICK_TRACKING,
        }
        if name == selected:
            renderer["selected"] = True
            if name in UPLOAD_TABS:
                renderer["content"] = {
                    "richGridRenderer": {
                        "contents": _grid_items(channel, name, 0, 1),
                        "trackingParams": CLICK_TRACKING,
                        "targetId": f"browse-feed{channel.channel_id}{name}",
                        "style": "RICH_GRID_RENDERER_STYLE_TAB_FILTER",
                    }
                }
            else:
                renderer["content"] = {
                    "sectionListRenderer": {"contents": [], "trackingParams": CLICK_TRACKING}
                }
        tabs.append({"tabRenderer": renderer})
    tabs.append({"expandableTabRenderer": {"endpoint": {}, "title": "Search", "selected": False}})

    return {
        "responseContext": _response_context(),
        "contents": {"twoColumnBrowseResultsRenderer": {"tabs": tabs}},
        "header": _nest(
            "pageHeaderRenderer",
            {
                "pageTitle": channel.title,
                "content": _nest("pageHeaderViewModel", _page_header_view_model(channel)),
            },
        ),
        "metadata": {
            "channelMetadataRenderer": {
                "title": channel.title,
                "description": channel.description,
                "rssUrl": f"https://www.youtube.com/feeds/videos.xml?channel_id={channel.channel_id}",
                "externalId": channel.channel_id,
                "keywords": f'fixtures "{channel.title}" testing',
                "ownerUrls": [f"http://www.youtube.com/@{channel.handle}"],
                "avatar": {
                    "thumbnails": [
                        {
                            "url": f"{channel.avatar}=s900-c-k-c0x00ffffff-no-rj",
                            "width": 900,
                            "height": 900,
                        }
                    ]
                },
                "channelUrl": f"https://www.youtube.com/channel/{channel.channel_id}",
                "isFamilySafe": True,
                "availableCountryCodes": ["US", "GB", "DE", "FR", "JP"],
                "vanityChannelUrl": f"http://www.youtube.com/@{channel.handle}",
            }
        },
        "trackingParams": CLICK_TRACKING,
        "topbar": {
            "desktopTopbarRenderer": {
                "logo": {"topbarLogoRenderer": {"iconImage": {"iconType": "YOUTUBE_LOGO"}}}
            }
        },
        "microformat": {
            "microformatDataRenderer": {
                "urlCanonical": f"https://www.youtube.com/channel/{channel.channel_id}",
                "title": channel.title,
                "description": channel.description,
                "thumbnail": {
                    "thumbnails": [
                        {
                            "url": f"{channel.avatar}=s200-c-k-c0x00ffffff-no-rj",
                            "width": 200,
                            "height": 200,
                        }
                    ]
                },
                "siteName": "YouTube",
                "ogType": "yt-fb-app:channel",
                "noindex": False,
                "unlisted": False,
                "familySafe": True,
                "tags": ["fixtures", channel.title, "testing"],
                "availableCountries": ["US", "GB", "DE", "FR", "JP"],
            }
        },
    }


def channel_page(channel: FakeChannel, tab: str, url: str) -> str:
    data = channel_initial_data(channel, tab)
    meta = (
        f'<link rel="canonical" href="https://www.youtube.com/channel/{channel.channel_id}">'
        f'<meta property="og:title" content="{xml_escape(channel.title)}">'
    )
    return _html(
        f"{channel.title} - YouTube",
        _ytcfg("WEB", WEB_VERSION, 1, url),
        [f"var ytInitialData = {_dumps(data)};"],
        meta,
    )


def continuation_response(
    channel: FakeChannel, offset: int, page: int, tab: str = "videos"
) -> dict[str, Any]:
    return {
        "responseContext": _response_context(),
        "trackingParams": CLICK_TRACKING,
        "onResponseReceivedActions": [
            {
                "clickTrackingParams": CLICK_TRACKING,
                "appendContinuationItemsAction": {
                    "continuationItems": _grid_items(channel, tab, offset, page),
                    "targetId": f"browse-feed{channel.channel_id}{tab}",
                },
            }
        ],
    }


# --- Video pages --------------------------------------------------------------------------------


def _playability_error(state: str, client: str) -> dict[str, Any]:
    """playabilityStatus for a video that does not play; the ANDROID client (the one
    youtube-transcript-api uses) words some reasons differently from the web clients."""
    android = client == "ANDROID"

    def screen(reason: str, subreason: str) -> dict[str, Any]:
        return {
            "playerErrorMessageRenderer": {
                "reason": _simple(reason),
                "subreason": _runs(subreason),
                "icon": {"iconType": "ERROR_OUTLINE"},
            }
        }

    if state == "private":
        return {
            "status": "LOGIN_REQUIRED",
            "reason": "This video is private",
            "messages": ["This is a private video. Please sign in to verify that you may see it."],
            "errorScreen": screen(
                "Private video",
                "If the owner of this video has granted you access, please sign in.",
            ),
        }
    if state == "unavailable":
        return {
            "status": "ERROR",
            "reason": "This video is unavailable" if android else "Video unavailable",
            "errorScreen": screen("Video unavailable", "This video is unavailable"),
        }
    if state == "removed":
        return {
            "status": "ERROR",
            "reason": "This video has been removed by the uploader"
            if android
            else "Video unavailable",
            "errorScreen": screen(
                "Video unavailable", "This video has been removed by the uploader"
            ),
        }
    if state == "members_only":
        return {
            "status": "UNPLAYABLE",
            "reason": MEMBERS_ONLY_REASON,
            "errorScreen": {
                "playerLegacyDesktopYpcOfferRenderer": {
                    "itemTitle": "Members-only content",
                    "offerDescription": "Join this channel to get access to members-only content.",
                }
            },
        }
    if state == "age_restricted":
        return {
            "status": "LOGIN_REQUIRED",
            "reason": "This video may be inappropriate for some users."
            if android
            else "Sign in to confirm your age",
            "desktopLegacyAgeGateReason": 1,
            "errorScreen": screen(
                "Sign in to confirm your age", "This video may be inappropriate for some users."
            ),
        }
    if state == "geo_blocked":
        reason = "The uploader has not made this video available in your country"
        return {
            "status": "UNPLAYABLE",
            "reason": reason,
            "errorScreen": screen("Video unavailable", reason),
        }
    if state == "live_upcoming":
        return {
            "status": "LIVE_STREAM_OFFLINE",
            "reason": "This live event will begin in 3 hours.",
            "errorScreen": screen("Live stream offline", "This live event will begin soon."),
        }
    if state == "bot_check":
        return {
            "status": "LOGIN_REQUIRED",
            "reason": "Sign in to confirm you\u2019re not a bot",
            "errorScreen": {
                "playerErrorMessageRenderer": {
                    "reason": _simple("Sign in to confirm you\u2019re not a bot"),
                    "subreason": {
                        "runs": [
                            {"text": "This helps protect our community. "},
                            {"text": "Learn more"},
                        ]
                    },
                }
            },
        }
    raise ValueError(f"unknown playability {state!r}")


def _streaming_data(
    video: FakeVideo, client: str, clips: Mapping[int, Clip] | None = None
) -> dict[str, Any]:
    def stream(itag: int, mime: str, **extra: Any) -> dict[str, Any]:
        data = {
            "itag": itag,
            "mimeType": mime,
            "lastModified": "1700000000000000",
            "approxDurationMs": str(video.duration * 1000),
            "projectionType": "RECTANGULAR",
            **extra,
        }
        if client != "WEB":
            query = urllib.parse.urlencode(
                {
                    "expire": "1750000000",
                    "ei": "FakeEi",
                    "ip": "127.0.0.1",
                    "id": f"o-Fake{video.id}",
                    "itag": itag,
                    "source": "youtube",
                    "requiressl": "yes",
                    "mime": mime.split(";")[0],
                    "dur": f"{video.duration}.000",
                    "c": client,
                    "sig": "FakeSignature",
                }
            )
            data["url"] = f"https://rr1---sn-fake.googlevideo.com/videoplayback?{query}"
        return data

    muxed = 'video/mp4; codecs="avc1.42001E, mp4a.40.2"'
    if clips:
        data = _clip_streams(clips, stream)
    else:
        data = {
        "expiresInSeconds": "21540",
        "formats": [
            stream(18, muxed, bitrate=503000, width=640, height=360, quality="medium", fps=30,
                   qualityLabel="360p", audioQuality="AUDIO_QUALITY_LOW", audioSampleRate="44100",
                   audioChannels=2),
        ],
        "adaptiveFormats": [
            stream(137, 'video/mp4; codecs="avc1.640028"', bitrate=4000000, width=1920, height=1080,
                   quality="hd1080", fps=30, qualityLabel="1080p", contentLength="9000000"),
            stream(140, 'audio/mp4; codecs="mp4a.40.2"', bitrate=130000, quality="tiny",
                   audioQuality="AUDIO_QUALITY_MEDIUM", audioSampleRate="44100", audioChannels=2,
                   contentLength="1900000"),
        ],
        }  # fmt: skip
    if client == "WEB":
        # The web client is served SABR streaming only: formats without URLs.
        data["serverAbrStreamingUrl"] = "https://rr1---sn-fake.googlevideo.com/videoplayback?sabr=1"
    elif video.recorded and client not in ("WEB_EMBEDDED_PLAYER", "MWEB"):
        # Real answers to the app clients (VISIONOS, IOS, ANDROID...) carry an HLS manifest,
        # which yt-dlp fetches for its formats unless told to skip it.
        data["hlsManifestUrl"] = hls_manifest_url(video)
    return data


def _clip_streams(
    clips: Mapping[int, Clip], stream: Callable[..., dict[str, Any]]
) -> dict[str, Any]:
    """Real media's formats (FakeYouTube.serve_media): the progressive ones in `formats`, the
    video-only and audio-only ones in `adaptiveFormats`, with their true sizes."""
    formats: dict[str, list[dict[str, Any]]] = {"formats": [], "adaptiveFormats": []}
    for clip in clips.values():
        extra: dict[str, Any] = (
            {"bitrate": clip.bitrate, "contentLength": str(clip.size)} if clip.announced else {}
        )
        if clip.has_video:
            label = f"{clip.height}p"
            extra.update(
                width=clip.width,
                height=clip.height,
                fps=25,
                qualityLabel=label,
                quality={360: "medium", 480: "large"}.get(clip.height or 0, "hd720"),
            )
        if clip.has_audio:
            extra.update(
                audioQuality="AUDIO_QUALITY_MEDIUM", audioSampleRate="44100", audioChannels=1
            )
        progressive = clip.has_video and clip.has_audio
        formats["formats" if progressive else "adaptiveFormats"].append(
            stream(clip.itag, clip.mime, **extra)
        )  # fmt: skip
    return {"expiresInSeconds": "21540", **formats}


_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


def media_answer(clip: Clip, range_header: str | None, range_query: str | None) -> _Answer:
    """A clip's bytes, all of them or the range asked (a Range header, or YouTube's own
    `range=a-b` query parameter), as googlevideo.com answers."""
    size = clip.size
    wanted = range_header or (f"bytes={range_query}" if range_query else None)
    start, end = 0, size - 1
    if wanted:
        match = _RANGE.match(wanted.strip())
        if match is None or int(match[1]) >= size:
            return _Answer(416, b"", "text/plain", {"Content-Range": f"bytes */{size}"})
        start = int(match[1])
        end = min(int(match[2]), size - 1) if match[2] else size - 1
    with clip.path.open("rb") as file:
        file.seek(start)
        body = file.read(end - start + 1)
    headers = {"Accept-Ranges": "bytes"}
    if wanted:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    mime = clip.mime.split(";")[0]
    return _Answer(206 if wanted else 200, body, mime, headers, media=True)


def hls_manifest_url(video: FakeVideo) -> str:
    return (
        "https://manifest.googlevideo.com/api/manifest/hls_variant/expire/1750000000/ei/FakeEi"
        f"/ip/127.0.0.1/id/o-Fake{video.id}/source/youtube/requiressl/yes/playback_host"
        "/rr1---sn-fake.googlevideo.com/hfr/1/vprv/1/go/1/file/index.m3u8"
    )


_MANIFEST_VIDEO = re.compile(r"/id/o-Fake([\w-]{11})/")


def hls_manifest(video: FakeVideo) -> str:
    """An HLS master playlist: two muxed variants (itags 93 and 95), as YouTube lists them."""
    base = (
        "https://manifest.googlevideo.com/api/manifest/hls_playlist/expire/1750000000/ei/FakeEi"
        f"/ip/127.0.0.1/id/o-Fake{video.id}"
    )
    variants = [
        (93, 1_100_000, "640x360", "avc1.4D401E,mp4a.40.2"),
        (95, 2_700_000, "1280x720", "avc1.4D401F,mp4a.40.2"),
    ]
    lines = ["#EXTM3U", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for itag, bandwidth, resolution, codecs in variants:
        lines += [
            f'#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},CODECS="{codecs}",'
            f"RESOLUTION={resolution},FRAME-RATE=30,CLOSED-CAPTIONS=NONE",
            f"{base}/itag/{itag}/source/youtube/playlist/index.m3u8",
        ]
    return "\n".join(lines) + "\n"


def _caption_base_url(video: FakeVideo, code: str) -> str:
    auto = code.startswith("a.")
    lang = code[2:] if auto else code
    query = (
        f"v={video.id}&ei=FakeEi&caps=asr&opi=112496729&xoaf=5&hl=en&ip=0.0.0.0&ipbits=0"
        "&expire=1750000000&sparams=ip,ipbits,expire,v,ei,caps,opi,xoaf&signature=FakeSig&key=yt8"
    )
    return f"https://www.youtube.com/api/timedtext?{query}{'&kind=asr' if auto else ''}&lang={lang}"


def _captions(video: FakeVideo, client: str) -> dict[str, Any] | None:
    if video.captions is None:
        return None

    def text(value: str) -> dict[str, Any]:
        return _runs(value) if client == "ANDROID" else _simple(value)

    tracks = []
    for code in video.captions:
        auto = code.startswith("a.")
        lang = code[2:] if auto else code
        track = {
            "baseUrl": _caption_base_url(video, code),
            "name": text(LANGUAGES[lang] + (" (auto-generated)" if auto else "")),
            "vssId": f"a.{lang}" if auto else f".{lang}",
            "languageCode": lang,
            "isTranslatable": True,
            "trackName": "",
        }
        if auto:
            track["kind"] = "asr"
        tracks.append(track)
    return {
        "playerCaptionsTracklistRenderer": {
            "captionTracks": tracks,
            "audioTracks": [
                {
                    "captionTrackIndices": list(range(len(tracks))),
                    "defaultCaptionTrackIndex": 0,
                    "visibility": "UNKNOWN",
                    "hasDefaultTrack": True,
                    "captionsInitialState": "CAPTIONS_INITIAL_STATE_OFF_RECOMMENDED",
                }
            ],
            "translationLanguages": [
                {"languageCode": code, "languageName": text(name)}
                for code, name in LANGUAGES.items()
            ],
            "defaultAudioTrackIndex": 0,
        }
    }


def player_response(
    video: FakeVideo | None,
    channel: FakeChannel | None,
    client: str,
    state: str,
    clips: Mapping[int, Clip] | None = None,
) -> dict[str, Any]:
    """What /youtubei/v1/player (or the watch page's ytInitialPlayerResponse) says."""
    response: dict[str, Any] = {
        "responseContext": _response_context(),
        "trackingParams": CLICK_TRACKING,
    }
    if video is None or channel is None or state != "ok":
        response["playabilityStatus"] = _playability_error(
            state if video else "unavailable", client
        )
        return response
    response["playabilityStatus"] = {
        "status": "OK",
        "playableInEmbed": True,
        "contextParams": "Q0FFU0FnZ0M=",
    }
    response["streamingData"] = _streaming_data(video, client, clips)
    if captions := _captions(video, client):
        response["captions"] = captions
    response["videoDetails"] = {
        "videoId": video.id,
        "title": video.title,
        "lengthSeconds": str(video.duration),
        "keywords": list(video.tags),
        "channelId": channel.channel_id,
        "isOwnerViewing": False,
        "shortDescription": video.description,
        "isCrawlable": True,
        "thumbnail": {
            "thumbnails": [
                {"url": f"https://i.ytimg.com/vi/{video.id}/{name}.jpg", "width": w, "height": h}
                for name, w, h in (
                    ("default", 120, 90),
                    ("mqdefault", 320, 180),
                    ("hqdefault", 480, 360),
                    ("sddefault", 640, 480),
                    ("maxresdefault", 1280, 720),
                )
            ]
        },
        "allowRatings": True,
        "viewCount": str(video.views),
        "author": channel.title,
        "isPrivate": False,
        "isUnpluggedCorpus": False,
        "isLiveContent": video.kind == "stream",
    }
    if client in ("WEB", "WEB_EMBEDDED_PLAYER", "MWEB"):
        response["microformat"] = {
            "playerMicroformatRenderer": {
                "thumbnail": {
                    "thumbnails": [
                        {
                            "url": f"https://i.ytimg.com/vi/{video.id}/maxresdefault.jpg",
                            "width": 1280,
                            "height": 720,
                        }
                    ]
                },
                "embed": {
                    "iframeUrl": f"https://www.youtube.com/embed/{video.id}",
                    "width": 1280,
                    "height": 720,
                },
                "title": _simple(video.title),
                "description": _simple(video.description),
                "lengthSeconds": str(video.duration),
                "ownerProfileUrl": f"http://www.youtube.com/@{channel.handle}",
                "externalChannelId": channel.channel_id,
                "isFamilySafe": True,
                "availableCountries": ["US", "GB", "DE", "FR", "JP"],
                "isUnlisted": False,
                "hasYpcMetadata": False,
                "viewCount": str(video.views),
                "category": video.category,
                "publishDate": _iso(video.published),
                "ownerChannelName": channel.title,
                "uploadDate": _iso(video.published),
                "isShortsEligible": video.kind == "short",
                "externalVideoId": video.id,
                "likeCount": str(video.likes),
            }
        }
        if video.kind == "stream":
            response["microformat"]["playerMicroformatRenderer"]["liveBroadcastDetails"] = {
                "isLiveNow": False,
                "startTimestamp": _iso(video.published),
                "endTimestamp": _iso(video.published + timedelta(seconds=video.duration)),
            }
    return response


def watch_next_data(
    video: FakeVideo | None, channel: FakeChannel | None, state: str = "ok"
) -> dict[str, Any]:
    """ytInitialData of a watch page, which is also what /youtubei/v1/next answers."""
    data: dict[str, Any] = {
        "responseContext": _response_context(),
        "trackingParams": CLICK_TRACKING,
    }
    if video is None or channel is None or state != "ok":
        data["contents"] = {"twoColumnWatchNextResults": {"results": {"results": {"contents": []}}}}
        return data
    owner_endpoint = _navigation(
        channel.path,
        "WEB_PAGE_TYPE_CHANNEL",
        browseEndpoint={"browseId": channel.channel_id, "canonicalBaseUrl": channel.path},
    )
    primary = {
        "videoPrimaryInfoRenderer": {
            "title": _runs(video.title),
            "viewCount": {
                "videoViewCountRenderer": {
                    "viewCount": _simple(f"{video.views:,} views"),
                    "shortViewCount": _simple(_views(video)),
                    "originalViewCount": "0",
                }
            },
            "videoActions": _nest(
                "menuRenderer.topLevelButtons",
                [
                    _nest(
                        "segmentedLikeDislikeButtonViewModel.likeButtonViewModel.likeButtonViewModel"
                        ".toggleButtonViewModel.toggleButtonViewModel.defaultButtonViewModel"
                        ".buttonViewModel",
                        {
                            "iconName": "LIKE",
                            "title": _short_count(video.likes),
                            "accessibilityText": (
                                f"like this video along with {video.likes:,} other people"
                            ),
                        },
                    )
                ],
            ),
            "trackingParams": CLICK_TRACKING,
            "dateText": _simple(_date(video)),
            "relativeDateText": _simple(_relative(video.published)),
        }
    }
    secondary = {
        "videoSecondaryInfoRenderer": {
            "owner": {
                "videoOwnerRenderer": {
                    "thumbnail": {
                        "thumbnails": [
                            {
                                "url": f"{channel.avatar}=s48-c-k-c0x00ffffff-no-rj",
                                "width": 48,
                                "height": 48,
                            }
                        ]
                    },
                    "title": {
                        "runs": [{"text": channel.title, "navigationEndpoint": owner_endpoint}]
                    },
                    "subscriberCountText": _simple(
                        f"{_short_count(channel.subscribers, 3)} subscribers"
                    ),
                    "navigationEndpoint": owner_endpoint,
                    "trackingParams": CLICK_TRACKING,
                }
            },
            "metadataRowContainer": {"metadataRowContainerRenderer": {"collapsedItemCount": 0}},
            "attributedDescription": {"content": video.description},
            "trackingParams": CLICK_TRACKING,
        }
    }
    data["contents"] = {
        "twoColumnWatchNextResults": {"results": {"results": {"contents": [primary, secondary]}}}
    }
    data["currentVideoEndpoint"] = _navigation(
        f"/watch?v={video.id}", "WEB_PAGE_TYPE_WATCH", watchEndpoint={"videoId": video.id}
    )
    panels: list[dict[str, Any]] = [
        {
            "engagementPanelSectionListRenderer": {
                "panelIdentifier": "engagement-panel-structured-description",
                "content": {
                    "structuredDescriptionContentRenderer": {
                        "items": [
                            {
                                "videoDescriptionHeaderRenderer": {
                                    "title": _runs(video.title),
                                    "channel": _simple(channel.title),
                                    "views": _simple(f"{video.views:,} views"),
                                    "publishDate": _simple(_date(video)),
                                }
                            },
                            {
                                "expandableVideoDescriptionBodyRenderer": {
                                    "attributedDescriptionBodyText": {"content": video.description}
                                }
                            },
                        ]
                    }
                },
            }
        }
    ]
    if video.chapters:
        panels.append(
            {
                "engagementPanelSectionListRenderer": {
                    "panelIdentifier": "engagement-panel-macro-markers-description-chapters",
                    "content": {
                        "macroMarkersListRenderer": {
                            "contents": [
                                {
                                    "macroMarkersListItemRenderer": {
                                        "title": _simple(title),
                                        "timeDescription": _simple(_clock(start)),
                                        "onTap": {
                                            "watchEndpoint": {
                                                "videoId": video.id,
                                                "startTimeSeconds": start,
                                            }
                                        },
                                    }
                                }
                                for start, title in video.chapters
                            ]
                        }
                    },
                }
            }
        )
    data["engagementPanels"] = panels
    return data


def watch_page(video: FakeVideo | None, channel: FakeChannel | None, state: str, url: str) -> str:
    player = player_response(video, channel, "WEB", state)
    data = watch_next_data(video, channel, state)
    meta = ""
    if video is not None and state == "ok":
        meta = (
            f'<meta property="og:title" content="{xml_escape(video.title)}">'
            f'<meta property="og:image" content="https://i.ytimg.com/vi/{video.id}/maxresdefault.jpg">'
            f'<meta itemprop="uploadDate" content="{_iso(video.published)}">'
            f'<meta itemprop="genre" content="{video.category}">'
        )
    title = f"{video.title} - YouTube" if video is not None and state == "ok" else "YouTube"
    return _html(
        title,
        _ytcfg("WEB", WEB_VERSION, 1, url),
        [
            f"var ytInitialPlayerResponse = {_dumps(player)};"
            "var meta = document.createElement('meta');",
            f"var ytInitialData = {_dumps(data)};",
        ],
        meta,
    )


def embed_page(video_id: str, url: str) -> str:
    return _html("YouTube", _ytcfg("WEB_EMBEDDED_PLAYER", EMBED_VERSION, 56, url), [])


# --- Captions -----------------------------------------------------------------------------------


def caption_segments(video: FakeVideo, lang: str, auto: bool) -> list[tuple[float, float, str]]:
    """(start, duration, text) lines, as a reader should get them; auto-generated ones are lower
    case, unpunctuated but for apostrophes. Recorded lines overlap: each lasts into the next."""
    count = max(3, min(8, video.duration // 20))
    duration = 5.2 if video.recorded else 3.8
    lines = []
    for i in range(count):
        text = f"[{lang}] {video.title}: line {i + 1} & it's more."
        if auto:
            text = " ".join(re.sub(r"[^\w\s\[\]#']", "", text).lower().split())
        lines.append((round(0.5 + i * 4.0, 3), duration, text))
    return lines


def _caption_escape(text: str, twice: bool) -> str:
    """XML text; `twice`: HTML-escaped first, as real srv1 files are ("it&amp;#39;s")."""
    if twice:
        text = text.replace("&", "&amp;").replace("'", "&#39;").replace('"', "&quot;")
    return xml_escape(text)


def timedtext(
    video: FakeVideo, lang: str, auto: bool, fmt: str | None, tlang: str | None
) -> tuple[str, str]:
    lines = caption_segments(video, lang, auto)
    if tlang:
        lines = [(start, dur, f"({tlang}) {text}") for start, dur, text in lines]
    if fmt == "json3":
        events = [
            {"tStartMs": int(s * 1000), "dDurationMs": int(d * 1000), "segs": [{"utf8": t}]}
            for s, d, t in lines
        ]
        body = {
            "wireMagic": "pb3",
            "pens": [{}],
            "wsWinStyles": [{}],
            "wpWinPositions": [{}],
            "events": events,
        }
        return json.dumps(body), "application/json; charset=UTF-8"
    if fmt == "vtt":
        cues = "".join(f"{_vtt_time(s)} --> {_vtt_time(s + d)}\n{t}\n\n" for s, d, t in lines)
        return f"WEBVTT\nKind: captions\nLanguage: {lang}\n\n{cues}", "text/vtt; charset=UTF-8"
    if fmt == "srv3":
        ps = "".join(
            f'<p t="{int(s * 1000)}" d="{int(d * 1000)}">{xml_escape(t)}</p>' for s, d, t in lines
        )
        return (
            f'{XML_DECLARATION}<timedtext format="3"><body>{ps}</body></timedtext>',
            "text/xml",
        )
    if fmt == "srv2":
        ts = "".join(
            f'<text t="{int(s * 1000)}" d="{int(d * 1000)}">{xml_escape(t)}</text>'
            for s, d, t in lines
        )
        return f"{XML_DECLARATION}<timedtext>{ts}</timedtext>", "text/xml"
    if fmt == "ttml":
        ps = "".join(
            f'<p begin="{_vtt_time(s)}" end="{_vtt_time(s + d)}">{xml_escape(t)}</p>'
            for s, d, t in lines
        )
        return (
            f'{XML_DECLARATION}<tt xml:lang="' + lang + '" xmlns="http://www.w3.org/ns/ttml">'
            f"<body><div>{ps}</div></body></tt>",
            "text/xml",
        )
    texts = "".join(
        f'<text start="{s}" dur="{d}">{_caption_escape(t, video.recorded)}</text>'
        for s, d, t in lines
    )
    return f"{XML_DECLARATION}<transcript>{texts}</transcript>", "text/xml"


def _vtt_time(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02}:{minutes:02}:{secs:02}.{millis:03}"


FEED_SIZE = 15  # YouTube's feed holds the channel's 15 newest uploads
_FLASH = 'type="application/x-shockwave-flash" width="640" height="390"'
_THUMB_SIZE = 'width="480" height="360"'


def rss_feed(channel: FakeChannel) -> str:
    """The channel's Atom feed as www.youtube.com/feeds/videos.xml serves it."""
    channel_url = f"https://www.youtube.com/channel/{channel.channel_id}"
    author = f"<author><name>{xml_escape(channel.title)}</name><uri>{channel_url}</uri></author>"
    entries = []
    for video in channel.videos[:FEED_SIZE]:
        entries.append(
            f"""<entry>
  <id>yt:video:{video.id}</id>
  <yt:videoId>{video.id}</yt:videoId>
  <yt:channelId>{channel.channel_id}</yt:channelId>
  <title>{xml_escape(video.title)}</title>
  <link rel="alternate" href="https://www.youtube.com/watch?v={video.id}"/>
  {author}
  <published>{video.published.isoformat()}</published>
  <updated>{(video.published + timedelta(hours=2)).isoformat()}</updated>
  <media:group>
   <media:title>{xml_escape(video.title)}</media:title>
   <media:content url="https://www.youtube.com/v/{video.id}?version=3" {_FLASH}/>
   <media:thumbnail url="https://i1.ytimg.com/vi/{video.id}/hqdefault.jpg" {_THUMB_SIZE}/>
   <media:description>{xml_escape(video.description)}</media:description>
   <media:community>
    <media:starRating count="{video.likes}" average="5.00" min="1" max="5"/>
    <media:statistics views="{video.views}"/>
   </media:community>
  </media:group>
 </entry>"""
        )
    oldest = channel.videos[-1].published if channel.videos else NOW
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<feed xmlns:yt="http://www.youtube.com/xml/schemas/2015" '
        'xmlns:media="http://search.yahoo.com/mrss/" xmlns="http://www.w3.org/2005/Atom">\n'
        f' <link rel="self" href="http://www.youtube.com/feeds/videos.xml?channel_id={channel.channel_id}"/>\n'
        f" <id>yt:channel:{channel.channel_id.removeprefix('UC')}</id>\n"
        f" <yt:channelId>{channel.channel_id.removeprefix('UC')}</yt:channelId>\n"
        f" <title>{xml_escape(channel.title)}</title>\n"
        f' <link rel="alternate" href="{channel_url}"/>\n'
        f" {author}\n"
        f" <published>{oldest.isoformat()}</published>\n " + "\n ".join(entries) + "\n</feed>\n"
    )


@functools.cache
def tiny_jpeg(colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 9), colour).save(buffer, "JPEG")
    return buffer.getvalue()


def image_colour(path: str) -> tuple[int, int, int]:
    """The colour of the picture the fake serves at `path`: one per picture, as on YouTube."""
    digest = hashlib.sha256(path.encode()).digest()
    return (digest[0], digest[1], digest[2])


# --- The server ---------------------------------------------------------------------------------


@dataclass
class _Answer:
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
    media: bool = False  # sent at the fake's media bandwidth, its bytes counted


def _json(data: Any, status: int = 200) -> _Answer:
    return _Answer(status, json.dumps(data).encode(), "application/json; charset=UTF-8")


def _page(html: str, status: int = 200) -> _Answer:
    return _Answer(status, html.encode(), "text/html; charset=utf-8")


def _api_error(status: int) -> _Answer:
    messages = {
        400: ("Request contains an invalid argument.", "INVALID_ARGUMENT"),
        403: ("The caller does not have permission", "PERMISSION_DENIED"),
        404: ("Requested entity was not found.", "NOT_FOUND"),
        429: ("Resource has been exhausted (e.g. check quota).", "RESOURCE_EXHAUSTED"),
    }
    message, code = messages.get(status, ("Internal error encountered.", "INTERNAL"))
    return _json(
        {
            "error": {
                "code": status,
                "message": message,
                "errors": [{"message": message, "domain": "global"}],
                "status": code,
            }
        },
        status,
    )


def _error_page(status: int) -> _Answer:
    title = {404: "404 Not Found", 429: "Too Many Requests"}.get(status, f"Error {status}")
    return _page(
        f"<!DOCTYPE html><html><head><title>{title}</title></head>"
        f"<body><h1>{title}</h1></body></html>",
        status,
    )


API_KINDS = frozenset({"browse", "resolve_url", "player", "next"})


class FakeYouTube:
    """The fake's state and its loopback HTTP server (started with `start()`)."""

    def __init__(self, seed: int = 0, shape: str = "recorded") -> None:
        if shape not in SHAPES:
            raise ValueError(f"unknown shape {shape!r}; choose from {SHAPES}")
        self.seed = seed
        self.shape = shape  # of the channels added without one
        self.channels: dict[str, FakeChannel] = {}
        self.videos: dict[str, FakeVideo] = {}
        self.faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []
        # What a media stream (googlevideo.com) answers: None refuses it (403), as Chirp
        # downloads no media; bytes are served for the speech-to-text fallback's audio.
        self.media: bytes | None = None
        # What the image hosts answer for a video or channel ID in the path: (status, body).
        self.images: dict[str, tuple[int, bytes]] = {}
        # Real clips by itag (serve_media): listed in player answers and served with Range.
        self.clips: dict[int, Clip] | None = None
        self.media_bandwidth: float | None = None  # bytes per second, per response
        self.media_bytes_sent = 0  # clips' bytes written to clients, in total
        # The next `cut_media(times=...)` clips' responses end after this many bytes, their
        # connection closed (a connection lost midway): (bytes, how many responses more).
        self._media_cut: tuple[int, int] | None = None
        # Clips' responses being sent now, and the most that were at once.
        self.media_in_flight = 0
        self.media_most_in_flight = 0
        self._lock = threading.Lock()
        self._ids: set[str] = set()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle

    def start(self) -> FakeYouTube:
        handler = type("_BoundHandler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-youtube",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeYouTube:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start() the fake first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def transport(self) -> Transport:
        return make_transport(self.url)

    # Scenario

    def serve_media(
        self, clips: Mapping[int, Clip], bandwidth: float | None = None, announced: bool = True
    ) -> None:
        """Serve these real clips as every video's streams, `bandwidth` bytes/s at most; with
        `announced` False, the player answers say neither their sizes nor their bitrates."""
        self.clips = {
            itag: dataclasses.replace(c, announced=announced) for itag, c in clips.items()
        }
        self.media_bandwidth = bandwidth

    def cut_media(self, after: int, times: int = 1) -> None:
        """The next `times` responses with a clip's bytes stop after `after` bytes of their
        body, the full length announced, and close their connection."""
        with self._lock:
            self._media_cut = (after, times)

    def _take_media_cut(self) -> int | None:
        with self._lock:
            if self._media_cut is None:
                return None
            after, times = self._media_cut
            self._media_cut = (after, times - 1) if times > 1 else None
            return after

    def _count_media_bytes(self, sent: int) -> None:
        with self._lock:
            self.media_bytes_sent += sent

    def _media_response(self, change: int) -> None:
        with self._lock:
            self.media_in_flight += change
            self.media_most_in_flight = max(self.media_most_in_flight, self.media_in_flight)

    def _new_id(self, rng: random.Random, prefix: str, length: int) -> str:
        while True:
            candidate = prefix + "".join(rng.choice(_ID_ALPHABET) for _ in range(length))
            if candidate not in self._ids:
                self._ids.add(candidate)
                return candidate

    def add_channel(
        self,
        handle: str,
        videos: int = 1,
        *,
        title: str | None = None,
        custom_url: str | None = None,
        user: str | None = None,
        subscribers: int = 1230,
        captions: str | tuple[str, ...] | Mapping[int, str | tuple[str, ...]] = "manual",
        errors: Mapping[int, str] | None = None,
        chapters: bool | Iterable[int] = False,
        layout: str | None = None,
        page_size: int = 30,
        shorts: int = 0,
        streams: int = 0,
        shorts_layout: str = "shortsLockupViewModel",
        shape: str | None = None,
        newest: datetime | None = None,
        days_apart: int = 2,
        listed_dates: bool = True,
    ) -> FakeChannel:
        """A channel with `videos` videos, newest first, generated from (seed, handle).

        `errors` maps a video's index (0 = newest) to a playability state (PLAYABILITY);
        `captions` is a preset (CAPTION_PRESETS), a tuple of track codes, or a mapping of index
        to either (the others get "manual"); `chapters` gives description chapters to every
        third video (True) or to the listed indexes. `shorts` and `streams` (past live streams)
        are listed in the Shorts and Live tabs, each with auto-generated captions; a channel
        without any has no such tab (nor a Videos tab without videos). `shape` (SHAPES) shapes
        every answer about the channel and its videos (by default the server's); `layout` is
        the Videos tab's renderer: by default lockupViewModel when recorded, videoRenderer when
        classic. The newest video is published a day before `newest` (NOW by default), each
        older one `days_apart` days before the one after it (give or take 12 hours). Without
        `listed_dates`, its tabs say no "3 weeks ago" (nothing a listing can stop at).
        """
        if shorts_layout not in _SHORTS_LAYOUTS:
            raise ValueError(f"unknown shorts layout {shorts_layout!r}")
        shape = shape or self.shape
        if shape not in SHAPES:
            raise ValueError(f"unknown shape {shape!r}; choose from {SHAPES}")
        if layout is None:
            layout = "lockupViewModel" if shape == "recorded" else "videoRenderer"
        handle = handle.lstrip("@")
        rng = random.Random(f"{self.seed}/{handle}")
        channel = FakeChannel(
            handle=handle,
            channel_id=self._new_id(rng, "UC", 22),
            title=title or f"{handle.capitalize()} Channel",
            description=(
                f"The {handle} channel: generated for Chirp's tests.\nNew videos every week."
            ),
            subscribers=subscribers,
            custom_url=custom_url,
            user=user,
            layout=layout,
            shorts_layout=shorts_layout,
            page_size=page_size,
            shape=shape,
            listed_dates=listed_dates,
        )
        errors = dict(errors or {})
        for state in errors.values():
            if state not in PLAYABILITY:
                raise ValueError(
                    f"unknown playability {state!r}; choose from {sorted(PLAYABILITY)}"
                )
        chapter_indexes = set(range(0, videos, 3)) if chapters is True else set(chapters or ())

        for index in range(videos):
            number = videos - index
            spec = captions.get(index, "manual") if isinstance(captions, Mapping) else captions
            tracks = CAPTION_PRESETS[spec] if isinstance(spec, str) else tuple(spec)
            duration = rng.randint(300, 3600) if index in chapter_indexes else rng.randint(45, 3600)
            video_chapters: tuple[tuple[int, str], ...] = ()
            description = f"Episode {number} of {channel.title}.\nSubscribe for more."
            if index in chapter_indexes:
                step = duration // 4
                video_chapters = (
                    (0, "Intro"),
                    (step, "Setup"),
                    (2 * step, "The work"),
                    (3 * step, "Wrap-up"),
                )
                description += "\n\nChapters:\n" + "\n".join(
                    f"{_clock(s)} {t}" for s, t in video_chapters
                )
            video = FakeVideo(
                id=self._new_id(rng, "", 11),
                index=index,
                channel_id=channel.channel_id,
                title=f"{channel.title} #{number}",
                description=description,
                duration=duration,
                published=(newest or NOW)
                - timedelta(days=days_apart * index + 1, hours=rng.randint(0, 12)),
                views=rng.randint(10, 2_000_000),
                likes=rng.randint(0, 50_000),
                tags=("fixtures", handle, f"episode {number}"),
                playability=errors.get(index, "ok"),
                captions=tracks,
                chapters=video_chapters,
                shape=shape,
                listed_date=listed_dates,
            )
            channel.videos.append(video)
            self.videos[video.id] = video
        # After the videos, so that adding shorts or streams changes none of them.
        channel.shorts = [self._new_upload(rng, channel, "short", i, shorts) for i in range(shorts)]
        channel.streams = [
            self._new_upload(rng, channel, "stream", i, streams) for i in range(streams)
        ]
        with self._lock:
            self.channels[channel.channel_id] = channel
        return channel

    def _new_upload(
        self, rng: random.Random, channel: FakeChannel, kind: str, index: int, count: int
    ) -> FakeVideo:
        """A short (under a minute, one a day) or a past live stream (hours long, one a week)."""
        number = count - index
        if kind == "short":
            title, duration = f"{channel.title} short #{number}", rng.randint(8, 59)
            description = f"Short {number} of {channel.title}. #shorts"
            published = NOW - timedelta(days=index + 1, hours=rng.randint(0, 12))
        else:
            title, duration = f"{channel.title} live #{number}", rng.randint(1800, 3 * 3600)
            description = f"Live stream {number} of {channel.title}.\nThanks for watching live!"
            published = NOW - timedelta(days=7 * index + 3, hours=rng.randint(0, 12))
        video = FakeVideo(
            id=self._new_id(rng, "", 11),
            index=index,
            channel_id=channel.channel_id,
            title=title,
            description=description,
            duration=duration,
            published=published,
            views=rng.randint(10, 2_000_000),
            likes=rng.randint(0, 50_000),
            tags=("fixtures", channel.handle, kind),
            captions=CAPTION_PRESETS["auto"],
            kind=kind,
            shape=channel.shape,
            listed_date=channel.listed_dates,
        )
        self.videos[video.id] = video
        return video

    def add_fault(
        self,
        *,
        kinds: Iterable[str] | None = None,
        status: int | None = None,
        delay: float = 0.0,
        playability: str | None = None,
        video_id: str | None = None,
        channel_id: str | None = None,
        page: int | None = None,
        times: int | None = None,
    ) -> Fault:
        """Make matching requests fail; see Fault. The first matching fault applies."""
        if playability is not None and playability not in PLAYABILITY:
            raise ValueError(f"unknown playability {playability!r}")
        fault = Fault(
            kinds=frozenset(kinds) if kinds is not None else None,
            status=status,
            delay=delay,
            playability=playability,
            video_id=video_id,
            channel_id=channel_id,
            page=page,
            times=times,
        )
        with self._lock:
            self.faults.append(fault)
        return fault

    def upload(
        self, channel: FakeChannel, count: int = 1, *, at: datetime | None = None
    ) -> list[FakeVideo]:
        """`count` new videos on `channel`'s Videos tab, as if uploaded since the last look:
        they top its listing and its feed, the oldest published `at` (by default now), each
        next one a second later."""
        at = at or datetime.now(UTC)
        rng = random.Random(f"{self.seed}/{channel.handle}/upload/{len(channel.videos)}")
        total = len(channel.videos) + count
        new = []
        for i in range(count):
            number = total - i
            video = FakeVideo(
                id=self._new_id(rng, "", 11),
                index=i,
                channel_id=channel.channel_id,
                title=f"{channel.title} #{number}",
                description=f"Episode {number} of {channel.title}.\nSubscribe for more.",
                duration=rng.randint(45, 3600),
                published=at + timedelta(seconds=count - 1 - i),
                views=rng.randint(10, 2_000_000),
                likes=rng.randint(0, 50_000),
                tags=("fixtures", channel.handle, f"episode {number}"),
                shape=channel.shape,
                listed_date=channel.listed_dates,
            )
            new.append(video)
        with self._lock:
            for video in new:
                self.videos[video.id] = video
            channel.videos[:0] = new
            for index, video in enumerate(channel.videos):
                video.index = index
        return new

    # What happened

    def count(
        self, kind: str | None = None, *, video_id: str | None = None, method: str | None = None
    ) -> int:
        return len(self.requests_matching(kind, video_id=video_id, method=method))

    def requests_matching(
        self, kind: str | None = None, *, video_id: str | None = None, method: str | None = None
    ) -> list[RecordedRequest]:
        with self._lock:
            return [
                r
                for r in self.requests
                if (kind is None or r.kind == kind)
                and (video_id is None or r.video_id == video_id)
                and (method is None or r.method == method)
            ]

    def set_image(self, key: str, body: bytes, status: int = 200) -> None:
        """Serve `body` (with `status`) for the thumbnails of video `key` or the avatar and
        banner of channel `key` (an ID in the path)."""
        with self._lock:
            self.images[key] = (status, body)

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    # Answering

    def _find_channel(self, handle=None, ucid=None, custom=None, user=None) -> FakeChannel | None:
        for channel in self.channels.values():
            if (
                (handle and channel.handle.lower() == handle[1:].lower())
                or (ucid and channel.channel_id == ucid)
                or (custom and channel.custom_url and channel.custom_url.lower() == custom.lower())
                or (user and channel.user and channel.user.lower() == user.lower())
            ):
                return channel
        return None

    def _channel_for_path(self, path: str) -> tuple[FakeChannel | None, str]:
        match = _CHANNEL_PATH.match(urllib.parse.unquote(path))
        if match is None:
            return self._channel_for_legacy_path(path)
        channel = self._find_channel(match["handle"], match["ucid"], match["custom"], match["user"])
        return channel, (match["tab"] or "featured")

    def _channel_for_legacy_path(self, path: str) -> tuple[FakeChannel | None, str]:
        match = _LEGACY_PATH.match(urllib.parse.unquote(path))
        if match is None:
            return None, ""
        name = match["legacy"]
        return self._find_channel(custom=name) or self._find_channel(user=name), (
            match["tab"] or "featured"
        )

    def _route(
        self, method: str, host: str, target: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[RecordedRequest, dict[str, Any]]:
        parts = urllib.parse.urlsplit(target)
        query = urllib.parse.parse_qs(parts.query)
        path = parts.path
        record = RecordedRequest(
            method=method, host=host, path=path, query=query, kind="unknown", at=time.monotonic(),
            headers=dict(headers),
        )  # fmt: skip
        context: dict[str, Any] = {}
        first = lambda name: (query.get(name) or [None])[0]  # noqa: E731

        if host == "manifest.googlevideo.com":
            record.kind = "manifest"
            if match := _MANIFEST_VIDEO.search(path):
                record.video_id = match[1]
        elif host.endswith("googlevideo.com"):
            record.kind = "media"
            if (media_id := first("id") or "").startswith("o-Fake"):
                record.video_id = media_id.removeprefix("o-Fake")
        elif host.endswith("ytimg.com") or host.startswith("yt3."):
            record.kind = "image"
            if match := re.match(r"^/vi(?:_webp)?/([\w-]{11})/", path):
                record.video_id = match[1]
        elif method == "POST" and path.startswith("/youtubei/v1/"):
            endpoint = path.removeprefix("/youtubei/v1/")
            record.kind = {"navigation/resolve_url": "resolve_url"}.get(endpoint, endpoint)
            try:
                payload = json.loads(body or b"{}")
            except ValueError:
                payload = {}
            context["payload"] = payload
            record.client = ((payload.get("context") or {}).get("client") or {}).get("clientName")
            record.video_id = payload.get("videoId")
            if record.kind == "browse":
                token = parse_continuation_token(payload.get("continuation") or "")
                if token:
                    record.channel_id, record.page = token["c"], token["p"]
                    record.tab = token.get("t", "videos")
                    context["offset"] = token["o"]
                elif payload.get("browseId"):
                    record.channel_id, record.page = payload["browseId"], 1
                    params = urllib.parse.unquote(payload.get("params") or "")
                    record.tab = next(
                        (n for n, p in TAB_PARAMS.items() if urllib.parse.unquote(p) == params),
                        "featured",
                    )
        elif path == "/watch":
            record.kind, record.video_id = "watch", first("v")
        elif match := re.match(r"^/embed/([\w-]{11})$", path):
            record.kind, record.video_id = "embed", match[1]
        elif path == "/api/timedtext":
            record.kind, record.video_id = "timedtext", first("v")
        elif path == "/feeds/videos.xml":
            record.kind, record.channel_id = "feed", first("channel_id")
        elif path == "/iframe_api":
            record.kind = "iframe_api"
        elif path.startswith("/s/player/"):
            record.kind = "player_js"
        elif method == "GET" and (
            _CHANNEL_PATH.match(urllib.parse.unquote(path))
            or _LEGACY_PATH.match(urllib.parse.unquote(path))
        ):
            record.kind, record.page = "channel_page", 1
            channel, record.tab = self._channel_for_path(path)
            context["channel"] = channel
            record.channel_id = channel.channel_id if channel else None
        if record.video_id in self.videos:
            record.channel_id = self.videos[record.video_id].channel_id
        return record, context

    def handle(
        self, method: str, host: str, target: str, body: bytes, headers: Mapping[str, str]
    ) -> _Answer:
        record, context = self._route(method, host, target, body, headers)
        with self._lock:
            fault = next((f for f in self.faults if f.matches(record)), None)
            if fault is not None:
                fault.hits += 1
            self.requests.append(record)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.status is not None:
            answer = (
                _api_error(fault.status) if record.kind in API_KINDS else _error_page(fault.status)
            )
        else:
            answer = self._answer(record, context, fault.playability if fault else None)
        record.status = answer.status
        record.done = time.monotonic()
        return answer

    def _answer(
        self, record: RecordedRequest, context: dict[str, Any], playability: str | None
    ) -> _Answer:
        kind = record.kind
        original_url = f"https://{record.host}{record.path}"
        video = self.videos.get(record.video_id or "")
        channel = self.channels.get(video.channel_id) if video else None
        state = playability or (video.playability if video else "unavailable")

        if kind == "channel_page":
            if context["channel"] is None:
                return _error_page(404)
            return _page(channel_page(context["channel"], record.tab or "featured", original_url))
        if kind == "browse":
            browse_channel = self.channels.get(record.channel_id or "")
            if browse_channel is None:
                return _api_error(400)
            tab = record.tab or "featured"
            if "offset" in context:
                return _json(
                    continuation_response(browse_channel, context["offset"], record.page or 2, tab)
                )
            return _json(channel_initial_data(browse_channel, tab))
        if kind == "resolve_url":
            url = context["payload"].get("url") or ""
            target_channel, tab = self._channel_for_path(urllib.parse.urlsplit(url).path)
            if target_channel is None:
                return _api_error(404)
            record.channel_id = target_channel.channel_id
            endpoint = _navigation(
                f"{target_channel.path}/{tab}",
                "WEB_PAGE_TYPE_CHANNEL",
                browseEndpoint={
                    "browseId": target_channel.channel_id,
                    "params": TAB_PARAMS.get(tab, TAB_PARAMS["featured"]),
                    "canonicalBaseUrl": target_channel.path,
                },
            )
            return _json({"responseContext": _response_context(), "endpoint": endpoint})
        if kind == "watch":
            return _page(watch_page(video, channel, state, original_url))
        if kind == "player":
            return _json(player_response(video, channel, record.client or "WEB", state, self.clips))
        if kind == "next":
            return _json(watch_next_data(video, channel, state))
        if kind == "embed":
            return _page(embed_page(record.video_id or "", original_url))
        if kind == "iframe_api":
            script = (
                "var scriptUrl = 'https:\\/\\/www.youtube.com\\/s\\/player\\/"
                f"{PLAYER_ID}\\/www-widgetapi.vflset\\/www-widgetapi.js';"
            )
            return _Answer(200, script.encode(), "text/javascript")
        if kind == "player_js":
            script = f"var fakePlayer={{signatureTimestamp:{SIGNATURE_TIMESTAMP}}};"
            return _Answer(200, script.encode(), "text/javascript")
        if kind == "timedtext":
            lang = (record.query.get("lang") or [""])[0]
            auto = (record.query.get("kind") or [""])[0] == "asr"
            code = f"a.{lang}" if auto else lang
            if video is None or state != "ok" or code not in (video.captions or ()):
                return _Answer(404, b"", "text/html")
            fmt = (record.query.get("fmt") or [None])[0]
            tlang = (record.query.get("tlang") or [None])[0]
            text, content_type = timedtext(video, lang, auto, fmt, tlang)
            return _Answer(200, text.encode(), content_type)
        if kind == "image":
            for key, (status, body) in self.images.items():
                if key in record.path:
                    return _Answer(status, body, "image/jpeg")
            return _Answer(200, tiny_jpeg(image_colour(record.path)), "image/jpeg")
        if kind == "feed":
            feed_channel = self.channels.get(record.channel_id or "")
            if feed_channel is None:
                return _Answer(404, b"", "text/html")
            return _Answer(200, rss_feed(feed_channel).encode(), "application/atom+xml")
        if kind == "manifest":
            if video is None or state != "ok":
                return _Answer(403, b"", "text/plain")
            return _Answer(200, hls_manifest(video).encode(), "application/vnd.apple.mpegurl")
        if kind == "media":
            itag = int((record.query.get("itag") or ["0"])[0] or 0)
            if self.clips is not None and itag in self.clips:
                if video is None or state != "ok":
                    return _Answer(403, b"", "text/plain")
                return media_answer(
                    self.clips[itag],
                    record.headers.get("Range"),
                    (record.query.get("range") or [None])[0],
                )
            if self.media is not None:
                return _Answer(200, self.media, "audio/mp4")
            return _Answer(403, b"Chirp's fake YouTube serves no media.", "text/plain")
        return _error_page(404)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeYouTube
    server_version = "FakeYouTube/1.0"
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        host = self.headers.get(HOST_HEADER) or "www.youtube.com"
        answer = self.fake.handle(
            self.command, host.lower(), self.path, body, dict(self.headers.items())
        )
        # The media host keeps its connections open between a download's ranges, as
        # googlevideo.com does; everything else answers once and closes.
        keep_alive = answer.media and self.command == "GET"
        self.close_connection = not keep_alive
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        if not keep_alive:
            self.send_header("Connection", "close")
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            try:
                if answer.media:
                    self._send_media(answer.body)
                else:
                    self.wfile.write(answer.body)
            except (BrokenPipeError, ConnectionResetError):
                # A client that gave up (a timeout test) is not an error.
                self.close_connection = True

    def _send_media(self, body: bytes) -> None:
        """In slices of a tenth of a second at the fake's bandwidth, each one counted once
        written (a client killed mid-download has received only what was counted). In flight
        (media_in_flight) until the last slice is written."""
        bandwidth = self.fake.media_bandwidth
        step = max(1, int(bandwidth / 10)) if bandwidth else 64 * 1024
        cut = self.fake._take_media_cut()
        if cut is not None:  # the rest never comes: the connection closes
            body = body[:cut]
            self.close_connection = True
        self.fake._media_response(+1)
        try:
            for offset in range(0, len(body), step):
                piece = body[offset : offset + step]
                if bandwidth and offset:  # the time the slice before took (none after the last)
                    time.sleep(step / bandwidth)
                self.wfile.write(piece)
                self.wfile.flush()
                self.fake._count_media_bytes(len(piece))
        finally:
            self.fake._media_response(-1)

    do_GET = do_POST = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


# --- The transport ------------------------------------------------------------------------------


class UnexpectedHost(AssertionError):
    """A test tried to reach a host the fake does not stand in for."""


def _forward_target(base_url: str, url: str) -> tuple[str, str]:
    """(host, path-and-query) of `url` forwarded to the fake at `base_url`."""
    parts = urllib.parse.urlsplit(url)
    if not is_youtube_host(parts.hostname):
        raise UnexpectedHost(
            f"the fake YouTube refuses {parts.hostname!r}: tests never reach the network"
        )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.hostname or "", path


class _ForwardingRH(RequestHandler):
    """yt-dlp request handler that sends YouTube's hosts to the fake, and refuses the rest."""

    _SUPPORTED_URL_SCHEMES = ("http", "https")
    _SUPPORTED_PROXY_SCHEMES = None
    _SUPPORTED_FEATURES = None
    base_url = ""

    def _check_extensions(self, extensions: dict[str, Any]) -> None:
        super()._check_extensions(extensions)
        for name in ("cookiejar", "timeout", "legacy_ssl", "keep_header_casing", "impersonate"):
            extensions.pop(name, None)

    def _validate(self, request: Request) -> None:
        super()._validate(request)
        host = urllib.parse.urlsplit(request.url).hostname
        if not is_youtube_host(host):
            raise UnsupportedRequest(
                f"the fake YouTube refuses {host!r}: tests never reach the network"
            )

    # The media host's connections, kept between requests as yt-dlp's own handlers (requests,
    # urllib3's pool) keep theirs, and shared by the threads as that pool is: a download's
    # ranges go over the connections it has, not one each. Each with the answer it carried
    # last, reused once that answer was read to the end.
    _media: ClassVar[list[tuple[http.client.HTTPConnection, http.client.HTTPResponse]]] = []
    _media_lock = threading.Lock()

    def _kept_media_connection(self, target, timeout) -> http.client.HTTPConnection | None:
        with self._media_lock:
            for entry in list(self._media):
                kept, response = entry
                if not response.isclosed():
                    continue  # still being read
                self._media.remove(entry)
                # Reusable only once its answer was read to the end (an answer closed early
                # leaves its unread bytes on the socket) and the server keeps it open.
                if (
                    (kept.host, kept.port) == (target.hostname, target.port)
                    and response.length == 0
                    and not response.will_close
                ):
                    if kept.sock is not None:
                        kept.sock.settimeout(timeout)
                    return kept
                kept.close()
        return None

    def _send_media(self, target, method, path, data, headers, timeout):
        connection = self._kept_media_connection(target, timeout)
        for fresh in (False, True) if connection is not None else (True,):
            if fresh:
                connection = http.client.HTTPConnection(
                    target.hostname, target.port, timeout=timeout
                )
            assert connection is not None
            try:
                connection.request(method, path, body=data, headers=headers)
                raw = connection.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                if not fresh:
                    continue  # the kept connection was closed by the server: a new one
                raise TransportError(cause=exc) from exc
            with self._media_lock:
                self._media.append((connection, raw))
            return raw
        raise AssertionError("unreachable")

    def _send(self, request: Request) -> Response:
        host, path = _forward_target(self.base_url, request.url)
        target = urllib.parse.urlsplit(self.base_url)
        headers = self._get_headers(request)
        headers[HOST_HEADER] = host
        cookiejar = self._get_cookiejar(request)
        if cookie := cookiejar.get_cookie_header(request.url):
            headers["Cookie"] = cookie
        data = request.data
        if data is not None and hasattr(data, "read"):
            data = data.read()
        timeout = self._calculate_timeout(request)
        # Media is streamed as it arrives (yt-dlp writes its .part file as it reads, so a
        # download cut short keeps what came), the rest read at once.
        stream = host.endswith("googlevideo.com") and host != "manifest.googlevideo.com"
        if stream:
            raw = self._send_media(target, request.method, path, data, headers, timeout)
            body = raw
        else:
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=timeout)
            try:
                connection.request(request.method, path, body=data, headers=headers)
                raw = connection.getresponse()
                body = io.BytesIO(raw.read())
            except (OSError, http.client.HTTPException) as exc:
                raise TransportError(cause=exc) from exc
            finally:
                connection.close()
        cookiejar.extract_cookies(raw, urllib.request.Request(request.url))
        response = Response(
            body,
            url=request.url,
            headers=dict(raw.getheaders()),
            status=raw.status,
            reason=raw.reason,
        )
        if not 200 <= raw.status < 300:
            raise HTTPError(response)
        return response


class _ForwardingAdapter(HTTPAdapter):
    """requests adapter with the same rule as _ForwardingRH."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        host, path = _forward_target(self.base_url, request.url or "")
        forwarded = request.copy()
        forwarded.url = self.base_url + path
        forwarded.headers[HOST_HEADER] = host
        kwargs["proxies"] = {}
        response = super().send(forwarded, *args, **kwargs)
        response.url = request.url or ""
        response.request = request
        return response


def make_session(base_url: str) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    adapter = _ForwardingAdapter(base_url)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


@functools.cache
def make_transport(base_url: str) -> Transport:
    handler = type("FakeYouTubeRH", (_ForwardingRH,), {"base_url": base_url.rstrip("/")})
    return Transport(
        request_handlers=(handler,), new_session=functools.partial(make_session, base_url)
    )


def transport() -> Transport:
    """The CHIRP_YOUTUBE_TRANSPORT factory: the fake whose address is in $FAKE_YOUTUBE_URL."""
    base_url = os.environ.get(ENV_VAR)
    if not base_url:
        raise RuntimeError(
            f"{ENV_VAR} is not set: start the fake YouTube (tests/imports/conftest.py)"
        )
    return make_transport(base_url)
