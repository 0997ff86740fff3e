"""A channel's RSS (Atom) feed on YouTube: its 15 newest uploads.

    https://www.youtube.com/feeds/videos.xml?channel_id=UC…

Fetched through the same transport and shared limiter as every other YouTube request (the
caller passes a session from `YouTube.http_session()`), and parsed with defusedxml: no
entities, no external references, so a hostile body cannot expand or reach anything. WebSub
notifications carry the same entries and go through `parse_feed` too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from xml.etree.ElementTree import Element

import requests
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from imports.youtube import (
    YOUTUBE,
    ChannelEntry,
    Reason,
    YouTubeError,
    classify_error,
    reason_for_status,
)

logger = logging.getLogger(__name__)

FEED_URL = f"{YOUTUBE}/feeds/videos.xml"
# A feed is a few dozen kilobytes; anything far larger is not one.
MAX_FEED_BYTES = 2 * 1024 * 1024

NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "yt": "http://www.youtube.com/xml/schemas/2015",
    "media": "http://search.yahoo.com/mrss/",
}


@dataclass(frozen=True)
class FeedEntry:
    """One upload as a feed (or a push, or a listing) tells of it. `published` is None when
    the source gives no date (a flat listing): such an entry is newer than the newest known
    video, since listings stop there."""

    video_id: str
    channel_id: str
    title: str
    published: datetime | None = None
    updated: datetime | None = None
    description: str = ""
    thumbnail_url: str | None = None

    @classmethod
    def from_listing(cls, entry: ChannelEntry, channel_id: str) -> FeedEntry:
        return cls(
            video_id=entry.video_id,
            channel_id=channel_id,
            title=entry.title,
            thumbnail_url=entry.thumbnail_url,
        )


class FeedError(ValueError):
    """A body that is not a readable feed (or is a hostile one)."""


def feed_url(channel_id: str) -> str:
    return f"{FEED_URL}?channel_id={channel_id}"


def parse_xml(body: bytes) -> Element:
    """The document's root, refused (FeedError) when it is not XML or holds a DTD: no
    entity of any kind is expanded and nothing external is fetched."""
    try:
        return fromstring(body, forbid_dtd=True)
    except (ParseError, DefusedXmlException) as exc:
        raise FeedError(f"Not a readable feed: {exc}") from exc


def parse_feed(body: bytes) -> list[FeedEntry]:
    """The entries of an Atom feed (or a WebSub notification), in the feed's order."""
    return entries_in(parse_xml(body))


def entries_in(root: Element) -> list[FeedEntry]:
    entries = []
    for node in root.findall("atom:entry", NS):
        video_id = (node.findtext("yt:videoId", "", NS) or "").strip()
        channel_id = (node.findtext("yt:channelId", "", NS) or "").strip()
        if not video_id or not channel_id:
            logger.info("A feed entry without a video or channel id was ignored")
            continue
        group = node.find("media:group", NS)
        description = thumbnail = None
        if group is not None:
            description = group.findtext("media:description", None, NS)
            thumb = group.find("media:thumbnail", NS)
            thumbnail = thumb.get("url") if thumb is not None else None
        entries.append(
            FeedEntry(
                video_id=video_id,
                channel_id=channel_id,
                title=(node.findtext("atom:title", "", NS) or "").strip(),
                published=_date(node.findtext("atom:published", None, NS)),
                updated=_date(node.findtext("atom:updated", None, NS)),
                description=description or "",
                thumbnail_url=thumbnail,
            )
        )
    return entries


def _date(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        return None


def fetch_feed(session: requests.Session, channel_id: str) -> list[FeedEntry]:
    """The channel's feed, newest first. YouTubeError as for any YouTube request (a 429 is
    a block the limiter answers; a 404 a channel with no feed)."""
    try:
        with session.get(feed_url(channel_id), stream=True) as response:
            status = response.status_code
            body = response.raw.read(MAX_FEED_BYTES + 1, decode_content=True)
    except requests.RequestException as exc:
        raise classify_error(exc) from exc
    if status != 200:
        raise YouTubeError(
            reason_for_status(status),
            f"HTTP {status} for the feed of {channel_id}",
        )
    if len(body) > MAX_FEED_BYTES:
        raise YouTubeError(Reason.UNKNOWN, f"The feed of {channel_id} is too large")
    try:
        return parse_feed(body)
    except FeedError as exc:
        raise YouTubeError(Reason.UNKNOWN, str(exc)) from exc
