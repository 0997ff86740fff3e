"""imports/youtube.py against the fake YouTube: input, listings, metadata, errors, transport."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import yt_dlp
from django.core.exceptions import ImproperlyConfigured
from yt_dlp.networking.common import Request
from yt_dlp.networking.exceptions import HTTPError, NoSupportingHandlers, TransportError
from yt_dlp.utils import DownloadError, ExtractorError

from imports.youtube import (
    LISTING_TABS,
    SINCE_MARGIN,
    ChannelRef,
    InvalidChannelInput,
    Kind,
    Reason,
    YouTube,
    YouTubeError,
    classify_error,
    get_transport,
    parse_channel_input,
    parse_relative_time,
)
from tests.imports.fake_youtube import ENV_VAR, SHAPES, UnexpectedHost

ROOT = Path(__file__).resolve().parents[2]
UCID = "UCs9tQttw5RgKKH4oGOc4MdT"
VIDEO = "dQw4w9WgXcQ"


@pytest.fixture(params=SHAPES)
def fake_youtube_shape(request) -> str:
    """Every test here runs on both shapes of the fake's answers (unless it names one)."""
    return request.param


# --- Input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("@Fixture95", "https://www.youtube.com/@fixture95"),
        ("  @fixture95\t", "https://www.youtube.com/@fixture95"),
        ("@fixture95/videos", "https://www.youtube.com/@fixture95"),
        ("youtube.com/@fixture95", "https://www.youtube.com/@fixture95"),
        ("https://www.youtube.com/@fixture95", "https://www.youtube.com/@fixture95"),
        ("HTTPS://WWW.YOUTUBE.COM/@Fixture95", "https://www.youtube.com/@fixture95"),
        ("http://m.youtube.com/@fixture95/videos", "https://www.youtube.com/@fixture95"),
        ("www.youtube.com/@fixture95/shorts?si=abc#top", "https://www.youtube.com/@fixture95"),
        ("https://youtube.com/@fixture95/streams/", "https://www.youtube.com/@fixture95"),
        ("https://www.youtube.com/@fixture95/featured", "https://www.youtube.com/@fixture95"),
        ("https://www.youtube.com/@fix.ture_95-x/about", "https://www.youtube.com/@fix.ture_95-x"),
        (
            "https://www.youtube.com/@%E6%97%A5%E6%9C%AC%E8%AA%9Ech",
            "https://www.youtube.com/@%E6%97%A5%E6%9C%AC%E8%AA%9Ech",
        ),
        ("@日本語ch", "https://www.youtube.com/@%E6%97%A5%E6%9C%AC%E8%AA%9Ech"),
        (UCID, f"https://www.youtube.com/channel/{UCID}"),
        (f"/channel/{UCID}", f"https://www.youtube.com/channel/{UCID}"),
        (f"youtube.com/channel/{UCID}/videos", f"https://www.youtube.com/channel/{UCID}"),
        (
            f"https://m.youtube.com/channel/{UCID}/about?view=1",
            f"https://www.youtube.com/channel/{UCID}",
        ),
        ("https://www.youtube.com/c/FixtureCustom", "https://www.youtube.com/c/FixtureCustom"),
        ("youtube.com/c/FixtureCustom/playlists", "https://www.youtube.com/c/FixtureCustom"),
        (
            "https://www.youtube.com/user/fixtureuser/videos",
            "https://www.youtube.com/user/fixtureuser",
        ),
    ],
)
def test_channel_inputs_normalise_to_one_url(text, url):
    ref = parse_channel_input(text)

    assert ref.url == url
    assert ref.video_id is None


@pytest.mark.parametrize(
    "text",
    [
        f"https://www.youtube.com/watch?v={VIDEO}&t=42s",
        f"https://www.youtube.com/watch?v={VIDEO}&list=PLabcdefghijklmnop",
        f"youtu.be/{VIDEO}?si=share",
        f"https://www.youtube.com/shorts/{VIDEO}",
        f"https://m.youtube.com/live/{VIDEO}?feature=share",
        f"https://www.youtube.com/embed/{VIDEO}",
        f"https://www.youtube-nocookie.com/embed/{VIDEO}",
    ],
)
def test_video_links_stand_for_their_channel(text):
    ref = parse_channel_input(text)

    assert ref == ChannelRef.for_video(VIDEO)
    assert ref.url == f"https://www.youtube.com/watch?v={VIDEO}"


def test_handles_keep_their_kind():
    assert parse_channel_input("@Fixture95").handle == "@fixture95"
    assert parse_channel_input(UCID).channel_id == UCID
    assert parse_channel_input("youtube.com/c/Name").custom_name == "Name"
    assert parse_channel_input("youtube.com/user/name").user_name == "name"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Enter a YouTube channel"),
        ("   \t ", "Enter a YouTube channel"),
        ("https://www.youtube.com/@" + "a" * 3000, "too long"),
        ("@fix ture95", "cannot contain spaces"),
        ("https://www.youtube.com/@fix\u00a0ture", "cannot contain spaces"),
        ("@fixture95\x00", "characters that cannot be"),
        ("https://vimeo.com/channels/staffpicks", "Only YouTube links"),
        ("https://youtube.com.evil.com/@fixture95", "Only YouTube links"),
        ("https://evilyoutube.com/@fixture95", "Only YouTube links"),
        ("https://youtube.com@evil.com/@fixture95", "Only YouTube links"),
        ("https://evil.com/https://www.youtube.com/@fixture95", "Only YouTube links"),
        ("https://www.youtube.com:8443/@fixture95", "Only YouTube links"),
        ("javascript:alert(document.cookie)", "Only web links"),
        ("ftp://www.youtube.com/@fixture95", "Only web links"),
        ("https://www.youtube.com/playlist?list=PLabcdefghijklmnop", "playlist"),
        ("https://www.youtube.com/@ab", "not a valid handle"),
        ("@" + "a" * 31, "not a valid handle"),
        ("@bad!handle", "not a valid handle"),
        ("https://www.youtube.com/channel/UC123", "channel ID is not valid"),
        ("https://www.youtube.com/watch?v=short", "no valid video ID"),
        ("https://www.youtube.com/watch", "no valid video ID"),
        ("https://youtu.be/", "no valid video ID"),
        ("https://www.youtube.com/", "home page"),
        ("https://www.youtube.com/results?search_query=cats", "not a channel"),
        ("https://www.youtube.com/feed/subscriptions", "not a channel"),
        ("https://www.youtube.com/@fixture95/videos/extra", "page inside a channel"),
        ("https://www.youtube.com/@fixture95/not-a-tab", "page inside a channel"),
        ("fixture95", "did you mean @fixture95"),
    ],
)
def test_refused_inputs_say_why(text, message):
    with pytest.raises(InvalidChannelInput, match=message):
        parse_channel_input(text)


# --- Listing ------------------------------------------------------------------------------------


def test_lists_a_one_video_channel_in_one_request(fake_youtube, youtube):
    channel = fake_youtube.add_channel("solo", videos=1, subscribers=1230)

    listing = youtube.fetch_channel(parse_channel_input("@solo"))

    assert listing.channel_id == channel.channel_id
    assert listing.handle == "@solo"
    assert listing.title == "Solo Channel"
    assert listing.description.startswith("The solo channel")
    assert listing.subscriber_count == 1230
    assert listing.avatar_url == f"{channel.avatar}=s900-c-k-c0x00ffffff-no-rj"
    assert listing.url == f"https://www.youtube.com/channel/{channel.channel_id}"
    assert listing.complete and listing.video_count == 1
    [entry] = listing.entries
    video = channel.videos[0]
    assert entry.video_id == video.id
    assert entry.title == video.title
    assert entry.thumbnail_url.startswith(f"https://i.ytimg.com/vi/{video.id}/hqdefault.jpg")
    assert [r.kind for r in fake_youtube.requests] == ["channel_page"]
    if fake_youtube.shape == "recorded":
        # A real Videos tab: its duration rounded up, a second over the player's, in the
        # newest overlay; no view count yt-dlp can read (the row has no accessibility label).
        assert (entry.duration, entry.view_count) == (video.duration + 1, None)
    else:
        assert (entry.duration, entry.view_count) == (video.duration, video.views)


@pytest.mark.parametrize("layout", ["lockupViewModel", "videoRenderer"])
def test_a_listing_reads_durations_in_each_overlay_and_british_counts(
    fake_youtube, youtube, layout
):
    channel = fake_youtube.add_channel("british", videos=40, layout=layout)
    for video, views in zip(channel.videos, (2_134_567, 12_345, 950), strict=False):
        video.views = views

    listing = youtube.fetch_channel(parse_channel_input("@british"))

    assert [e.duration for e in listing.entries] == [v.listed_duration for v in channel.videos]
    counts = [entry.view_count for entry in listing.entries[:3]]
    if layout == "videoRenderer":  # the full count: "2,134,567 views"
        assert counts == [2_134_567, 12_345, 950]
    elif fake_youtube.shape == "classic":  # the rounded count of a labelled row: "2.1M views"
        assert counts == [2_100_000, 12_000, 950]
    else:  # "2.1m views", in a row without the label yt-dlp looks for
        assert counts == [None, None, None]


@pytest.mark.parametrize("layout", ["videoRenderer", "lockupViewModel"])
def test_lists_95_videos_over_4_pages(fake_youtube, youtube, layout):
    channel = fake_youtube.add_channel("fixture95", videos=95, layout=layout)

    listing = youtube.fetch_channel(parse_channel_input("https://www.youtube.com/@fixture95"))

    ids = [entry.video_id for entry in listing.entries]
    assert ids == channel.video_ids
    assert len(set(ids)) == 95
    assert listing.complete and listing.video_count == 95
    assert all(entry.duration for entry in listing.entries)
    assert fake_youtube.count("channel_page") == 1
    assert [r.page for r in fake_youtube.requests_matching("browse")] == [2, 3, 4]


def test_every_form_of_a_channel_reaches_it(fake_youtube, youtube):
    channel = fake_youtube.add_channel(
        "forms", videos=3, custom_url="FormsCustom", user="formsuser"
    )
    inputs = [
        "@forms",
        f"https://www.youtube.com/channel/{channel.channel_id}",
        "youtube.com/c/FormsCustom",
        "https://www.youtube.com/user/formsuser/videos",
    ]

    listings = [youtube.fetch_channel(parse_channel_input(text)) for text in inputs]

    assert {listing.channel_id for listing in listings} == {channel.channel_id}
    assert all(len(listing.entries) == 3 for listing in listings)


def test_a_video_link_imports_its_channel(fake_youtube, youtube):
    channel = fake_youtube.add_channel("owner", videos=5)
    video = channel.videos[3]

    listing = youtube.fetch_channel(parse_channel_input(f"https://youtu.be/{video.id}"))

    assert listing.channel_id == channel.channel_id
    assert len(listing.entries) == 5
    assert [r.kind for r in fake_youtube.requests] == ["watch", "player", "channel_page"]


@pytest.mark.parametrize(("limit", "pages"), [(10, 1), (30, 1), (31, 2), (95, 4)])
def test_a_limit_stops_paging(fake_youtube, youtube, limit, pages):
    channel = fake_youtube.add_channel("fixture95", videos=95)

    listing = youtube.fetch_channel(parse_channel_input("@fixture95"), limit=limit)

    assert [entry.video_id for entry in listing.entries] == channel.video_ids[:limit]
    assert fake_youtube.count() == pages


def test_only_new_videos_stops_at_the_first_known_one(fake_youtube, youtube):
    channel = fake_youtube.add_channel("fixture95", videos=95)
    ref = parse_channel_input("@fixture95")

    first = youtube.fetch_channel(ref, known_ids=channel.video_ids[5:])
    fake_youtube.clear_requests()
    second = youtube.fetch_channel(ref, known_ids=channel.video_ids[40:])

    assert [entry.video_id for entry in first.entries] == channel.video_ids[:5]
    assert first.reached_known and not first.complete and first.video_count is None
    assert len(second.entries) == 40
    assert fake_youtube.count() == 2  # the page and one continuation, not four


@pytest.mark.parametrize("layout", ["lockupViewModel", "videoRenderer"])
def test_a_listing_since_a_date_stops_a_week_past_it(fake_youtube, youtube, layout):
    now = datetime.now(UTC)
    channel = fake_youtube.add_channel("dated", videos=95, newest=now, days_apart=1, layout=layout)
    since = now.date() - timedelta(days=10)

    listing = youtube.fetch_channel(parse_channel_input("@dated"), since=since)

    # Every entry has the date its "N days ago" / "N weeks ago" says: never before the
    # video's own day (YouTube rounds down), at most a week after it.
    for entry, video in zip(listing.entries, channel.videos, strict=False):
        day = video.published.date()
        assert day <= entry.approximate_date <= day + timedelta(days=7)
    # It stopped at the first entry dated more than a week before the date ("3 weeks ago"),
    # keeping those inside the margin, on the first page: no continuation was asked for.
    assert listing.stopped_at < since - SINCE_MARGIN <= listing.entries[-1].approximate_date
    assert 14 <= len(listing.entries) <= 21
    assert not listing.complete and [r.kind for r in fake_youtube.requests] == ["channel_page"]


def test_a_listing_without_dates_is_read_to_its_end_since_a_date(fake_youtube, youtube):
    now = datetime.now(UTC)
    fake_youtube.add_channel("undated", videos=45, newest=now, days_apart=1, listed_dates=False)

    listing = youtube.fetch_channel(parse_channel_input("@undated"), since=now.date())

    assert {entry.approximate_date for entry in listing.entries} == {None}
    assert listing.complete and len(listing.entries) == 45 and listing.stopped_at is None
    assert fake_youtube.count("browse") == 1


@pytest.mark.parametrize(
    ("text", "back"),
    [
        ("3 weeks ago", timedelta(weeks=3)),
        ("Streamed 2 days ago", timedelta(days=2)),
        ("Premiered 1 year ago", timedelta(days=365)),
        ("5 months ago", timedelta(days=5 * 28)),  # a month at its shortest: never too old
        ("1 hour ago", timedelta(hours=1)),
        ("1.2m views", None),
        ("Scheduled for 6/5/25, 14:00", None),
        ("vor 3 Wochen", None),
        ("99999999999 years ago", None),
    ],
)
def test_relative_times_read_as_english_listings_word_them(text, back):
    now = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)

    assert parse_relative_time(text, now) == (None if back is None else now - back)


def test_members_only_videos_are_marked_in_the_listing(fake_youtube, youtube):
    channel = fake_youtube.add_channel("members", videos=3, errors={1: "members_only"})

    listing = youtube.fetch_channel(ChannelRef.for_channel_id(channel.channel_id))

    assert [entry.availability for entry in listing.entries] == [None, "subscriber_only", None]


@pytest.mark.parametrize(
    ("tab", "uploads"),
    [
        ("shorts", {"videos": 2}),
        ("streams", {"videos": 2, "shorts": 3}),
        ("videos", {"videos": 0, "shorts": 3}),  # a channel of shorts only has no Videos tab
    ],
)
def test_a_missing_tab_is_not_found(fake_youtube, youtube, tab, uploads):
    fake_youtube.add_channel("lacking", **uploads)

    with pytest.raises(YouTubeError) as caught:
        youtube.fetch_channel(parse_channel_input("@lacking"), tab=tab)

    assert caught.value.reason is Reason.NOT_FOUND


def test_an_unknown_channel_is_not_found(fake_youtube, youtube):
    with pytest.raises(YouTubeError) as caught:
        youtube.fetch_channel(parse_channel_input("@nobodyhere"))

    assert caught.value.reason is Reason.NOT_FOUND
    assert caught.value.kind is Kind.PERMANENT
    assert str(caught.value) == "This channel does not exist on YouTube: check its @handle or link."
    # YouTube's 404 for the channel's page is final: not retried, nor asked again of the API.
    assert fake_youtube.count("channel_page") == 1
    assert fake_youtube.count("resolve_url") == 0


def test_429_on_a_continuation_is_transient_and_passes(fake_youtube, youtube):
    channel = fake_youtube.add_channel("fixture95", videos=95)
    fake_youtube.add_fault(kinds={"browse"}, page=3, status=429, times=2)
    ref = parse_channel_input("@fixture95")

    for _ in range(2):
        with pytest.raises(YouTubeError) as caught:
            youtube.fetch_channel(ref)
        assert caught.value.reason is Reason.RATE_LIMITED
        assert caught.value.transient
    listing = youtube.fetch_channel(ref)

    assert [entry.video_id for entry in listing.entries] == channel.video_ids
    assert [r.status for r in fake_youtube.requests_matching("browse") if r.page == 3] == [
        429,
        429,
        200,
    ]


@pytest.mark.parametrize("layout", ["shortsLockupViewModel", "reelItemRenderer"])
def test_the_shorts_tab_lists_the_shorts_over_3_pages(fake_youtube, youtube, layout):
    channel = fake_youtube.add_channel(
        "shorty", videos=4, shorts=70, streams=2, shorts_layout=layout
    )

    listing = youtube.fetch_channel(parse_channel_input("@shorty"), tab="shorts")

    assert [entry.video_id for entry in listing.entries] == channel.short_ids
    assert [entry.title for entry in listing.entries] == [short.title for short in channel.shorts]
    assert listing.complete and len(listing.entries) == 70
    assert (listing.channel_id, listing.title) == (channel.channel_id, channel.title)
    for entry, short in zip(listing.entries, channel.shorts, strict=True):
        assert entry.url == f"https://www.youtube.com/shorts/{short.id}"
        assert entry.thumbnail_url.startswith(f"https://i.ytimg.com/vi/{short.id}/oar2.jpg?")
        # The tab shows the count rounded ("1.2M views"), and no duration.
        assert abs(entry.view_count - short.views) <= short.views / 10
        assert entry.duration is None
    # The Shorts tab's page, then its two continuations (30 shorts a page).
    assert [(r.kind, r.tab, r.page) for r in fake_youtube.requests] == [
        ("channel_page", "shorts", 1),
        ("browse", "shorts", 2),
        ("browse", "shorts", 3),
    ]


def test_the_streams_tab_lists_the_past_live_streams(fake_youtube, youtube):
    channel = fake_youtube.add_channel("livey", videos=5, shorts=3, streams=35)

    listing = youtube.fetch_channel(parse_channel_input("@livey"), tab="streams")

    assert [entry.video_id for entry in listing.entries] == channel.stream_ids
    assert listing.complete and len(listing.entries) == 35
    for entry, stream in zip(listing.entries, channel.streams, strict=True):
        assert (entry.title, entry.duration, entry.view_count) == (
            stream.title,
            stream.listed_duration,
            stream.views,
        )
        assert entry.thumbnail_url.startswith(f"https://i.ytimg.com/vi/{stream.id}/hqdefault.jpg")
    assert [(r.kind, r.tab, r.page) for r in fake_youtube.requests] == [
        ("channel_page", "streams", 1),
        ("browse", "streams", 2),
    ]


def test_each_tab_lists_only_its_own_uploads(fake_youtube, youtube):
    channel = fake_youtube.add_channel("mixed", videos=7, shorts=5, streams=3)
    ref = parse_channel_input("@mixed")

    listed = {
        tab: [entry.video_id for entry in youtube.fetch_channel(ref, tab=tab).entries]
        for tab in ("videos", "shorts", "streams")
    }

    assert listed == {
        "videos": channel.video_ids,
        "shorts": channel.short_ids,
        "streams": channel.stream_ids,
    }


def test_only_the_videos_tab_tells_the_channels_video_count(fake_youtube, youtube):
    fake_youtube.add_channel("counted", videos=7, shorts=5, streams=3)
    ref = parse_channel_input("@counted")

    counts = {tab: youtube.fetch_channel(ref, tab=tab).video_count for tab in LISTING_TABS}

    assert counts == {"videos": 7, "shorts": None, "streams": None}


def test_a_short_and_a_past_live_stream_have_metadata(fake_youtube, youtube):
    channel = fake_youtube.add_channel("kinds", videos=1, shorts=1, streams=1)
    short, stream = channel.shorts[0], channel.streams[0]

    short_info, stream_info = youtube.fetch_video(short.id), youtube.fetch_video(stream.id)

    assert (short_info.title, short_info.duration, short_info.published_at) == (
        short.title,
        short.duration,
        short.published,
    )
    assert short_info.live_status == "not_live"
    assert (stream_info.title, stream_info.duration, stream_info.published_at) == (
        stream.title,
        stream.duration,
        stream.published,
    )
    assert stream_info.live_status == "was_live"


@pytest.mark.slow
def test_measure_a_thousand_video_listing(fake_youtube, youtube, capsys):
    channel = fake_youtube.add_channel("fixture1000", videos=1000)

    started = time.perf_counter()
    listing = youtube.fetch_channel(parse_channel_input("@fixture1000"))
    elapsed = time.perf_counter() - started

    assert len({entry.video_id for entry in listing.entries}) == 1000
    assert [entry.video_id for entry in listing.entries] == channel.video_ids
    with capsys.disabled():
        print(
            f"\n1,000-video listing: {fake_youtube.count()} requests "
            f"({fake_youtube.count('browse')} continuations), {elapsed:.2f} s"
        )


# --- Video metadata -----------------------------------------------------------------------------


def test_video_metadata_with_chapters(fake_youtube, youtube):
    channel = fake_youtube.add_channel("meta", videos=2, chapters=[0])
    video = channel.videos[0]

    info = youtube.fetch_video(video.id)

    assert info.video_id == video.id
    assert info.title == video.title
    assert info.description == video.description
    # The player's lengthSeconds, though the listing says a second more when recorded.
    assert info.duration == video.duration
    # Exact, though the page words its date "19 Nov 2020" when recorded.
    assert info.published_at == video.published
    assert info.upload_date == video.published.date()
    assert info.view_count == video.views
    assert info.like_count == video.likes
    assert info.tags == video.tags
    assert info.categories == ("Education",)
    assert info.channel_id == channel.channel_id
    assert info.channel_title == channel.title
    assert info.channel_handle == "@meta"
    assert info.availability == "public"
    assert [(c.start, c.title) for c in info.chapters] == [(float(s), t) for s, t in video.chapters]
    assert info.chapters[-1].end == video.duration
    # The watch page, then one player API call; the web client's answer is in the page.
    # Not the HLS manifest that player answer points to (when recorded): two requests a video.
    assert [(r.kind, r.client) for r in fake_youtube.requests] == [
        ("watch", None),
        ("player", "VISIONOS"),
    ]
    assert fake_youtube.count("media") == 0


@pytest.mark.parametrize("fake_youtube_shape", ["recorded"])  # the shape with manifests
def test_metadata_skips_the_stream_manifest_a_real_player_answer_carries(fake_youtube):
    video = fake_youtube.add_channel("manifests", videos=1).videos[0]
    session = fake_youtube.transport().new_session()
    player = session.post(
        "https://www.youtube.com/youtubei/v1/player",
        json={"videoId": video.id, "context": {"client": {"clientName": "VISIONOS"}}},
    ).json()
    manifest = session.get(player["streamingData"]["hlsManifestUrl"])
    assert manifest.status_code == 200 and manifest.text.startswith("#EXTM3U")
    fake_youtube.clear_requests()

    turns = []  # the limiter's budget: one turn per request

    with YouTube(sleep_requests=0, retry_backoff=0, gate=lambda: turns.append(1)) as client:
        for _ in range(3):
            client.fetch_video(video.id)

    assert fake_youtube.count() == len(turns) == 6
    assert fake_youtube.count("manifest") == 0


def test_a_video_without_chapters_has_none(fake_youtube, youtube):
    channel = fake_youtube.add_channel("plain", videos=1)

    assert youtube.fetch_video(channel.videos[0].id).chapters == ()


def test_requests_are_spaced_by_sleep_requests(fake_youtube):
    channel = fake_youtube.add_channel("spaced", videos=1)

    with YouTube(sleep_requests=0.2, retry_backoff=0) as client:
        client.fetch_video(channel.videos[0].id)

    first, second = fake_youtube.requests
    assert second.at - first.at >= 0.2


def test_cookies_file_is_sent(fake_youtube, tmp_path):
    channel = fake_youtube.add_channel("cookies", videos=1)
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(
        "# Netscape HTTP Cookie File\n"
        ".youtube.com\tTRUE\t/\tTRUE\t2147483647\tVISITOR_INFO1_LIVE\tfakevisitor\n"
    )

    with YouTube(cookies_file=str(cookies), sleep_requests=0, retry_backoff=0) as client:
        client.fetch_video(channel.videos[0].id)

    assert "VISITOR_INFO1_LIVE=fakevisitor" in fake_youtube.requests[0].headers.get("Cookie", "")


@pytest.mark.parametrize("fake_youtube_shape", ["classic"])
def test_each_download_does_not_ask_the_javascript_runtime_its_version_again(
    fake_youtube, youtube, monkeypatch
):
    """yt-dlp asks `deno --version` (a subprocess) once per YoutubeDL; a download builds one."""
    from yt_dlp.utils import _jsruntime

    video = fake_youtube.add_channel("probed", videos=1).videos[0]
    monkeypatch.setattr("imports.youtube._JS_RUNTIMES", {})
    asked = []
    probe = _jsruntime._get_exe_version_output

    def counting(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        asked.append(path)
        return probe(path, *args, **kwargs)

    monkeypatch.setattr(_jsruntime, "_get_exe_version_output", counting)

    for _ in range(3):
        with youtube.downloader({"format": "b"}) as ydl:
            info = ydl.extract_info(f"https://www.youtube.com/watch?v={video.id}", download=False)
        assert info["id"] == video.id

    assert len(asked) == 1


@pytest.mark.parametrize("fake_youtube_shape", ["classic"])
def test_an_extraction_renders_no_tables_that_nobody_prints(fake_youtube, youtube, monkeypatch):
    video = fake_youtube.add_channel("tables", videos=1).videos[0]
    rendered = []
    monkeypatch.setattr(
        yt_dlp.YoutubeDL, "render_formats_table", lambda self, info: rendered.append(info)
    )

    youtube.fetch_video(video.id)
    with youtube.downloader({"format": "b"}) as ydl:
        info = ydl.extract_info(f"https://www.youtube.com/watch?v={video.id}", download=False)

    assert info["id"] == video.id
    assert rendered == []


# --- Errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "reason", "kind", "requests_made"),
    [
        ("private", Reason.PRIVATE, Kind.PERMANENT, 2),
        ("unavailable", Reason.UNAVAILABLE, Kind.PERMANENT, 2),
        ("members_only", Reason.MEMBERS_ONLY, Kind.PERMANENT, 2),
        ("removed", Reason.REMOVED, Kind.PERMANENT, 2),
        # yt-dlp tries the embedded player as well (the embed page and its player call).
        ("age_restricted", Reason.AGE_RESTRICTED, Kind.PERMANENT, 4),
        ("bot_check", Reason.BOT_CHECK, Kind.TRANSIENT, 2),
    ],
)
def test_video_errors_are_classified(fake_youtube, youtube, state, reason, kind, requests_made):
    channel = fake_youtube.add_channel("errors", videos=1, errors={0: state})

    with pytest.raises(YouTubeError) as caught:
        youtube.fetch_video(channel.videos[0].id)

    assert caught.value.reason is reason
    assert caught.value.kind is kind
    assert str(caught.value)  # a sentence for a person
    assert fake_youtube.count() == requests_made


def test_an_unknown_video_is_unavailable(fake_youtube, youtube):
    with pytest.raises(YouTubeError) as caught:
        youtube.fetch_video("zzzzzzzzzzz")

    assert caught.value.reason is Reason.UNAVAILABLE


def test_the_bot_check_everywhere_says_add_cookies(fake_youtube, youtube):
    channel = fake_youtube.add_channel("bots", videos=2)
    fake_youtube.add_fault(kinds={"watch", "player", "embed"}, playability="bot_check")

    with pytest.raises(YouTubeError) as caught:
        youtube.fetch_video(channel.videos[1].id)

    assert caught.value.reason is Reason.BOT_CHECK
    assert "cookies" in str(caught.value)


def test_429_on_a_video_is_rate_limited(fake_youtube, youtube):
    channel = fake_youtube.add_channel("limited", videos=1)
    fake_youtube.add_fault(status=429, video_id=channel.videos[0].id)

    with pytest.raises(YouTubeError) as caught:
        youtube.fetch_video(channel.videos[0].id)

    # yt-dlp's own error is "Failed to extract any player response"; the 429s are warnings.
    assert "player response" in caught.value.detail
    assert caught.value.reason is Reason.RATE_LIMITED
    assert any("429" in warning for warning in youtube.warnings)


def test_a_slow_answer_is_a_timeout(fake_youtube):
    fake_youtube.add_channel("slow", videos=1)
    fake_youtube.add_fault(kinds={"channel_page", "resolve_url"}, delay=1.0)

    client = YouTube(sleep_requests=0, retries=0, retry_backoff=0, timeout=0.3)
    with client, pytest.raises(YouTubeError) as caught:
        client.fetch_channel(parse_channel_input("@slow"))

    assert caught.value.reason is Reason.TIMEOUT
    assert caught.value.transient


def _http_error(status: int) -> HTTPError:
    from yt_dlp.networking.common import Response

    return HTTPError(Response(fp=None, url="https://www.youtube.com/", headers={}, status=status))


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (
            DownloadError("ERROR: x", (None, ExtractorError("x", cause=_http_error(429)), None)),
            Reason.RATE_LIMITED,
        ),
        (ExtractorError("Unable to download", cause=_http_error(503)), Reason.NETWORK),
        (ExtractorError("Unable to download", cause=_http_error(403)), Reason.IP_BLOCKED),
        (
            ExtractorError("x", cause=TransportError(cause=TimeoutError("timed out"))),
            Reason.TIMEOUT,
        ),
        (ExtractorError("x", cause=TransportError(cause=ConnectionRefusedError())), Reason.NETWORK),
        (
            ExtractorError(
                "All player responses are invalid. Your IP is likely being blocked by Youtube"
            ),
            Reason.IP_BLOCKED,
        ),
        (
            ExtractorError("This video has been removed for violating YouTube's Terms of Service"),
            Reason.REMOVED,
        ),
        (
            ExtractorError(
                "This content isn't available, try again later. "
                "The current session has been rate-limited"
            ),
            Reason.RATE_LIMITED,
        ),
        (ExtractorError("Video unavailable. This video is unavailable"), Reason.UNAVAILABLE),
        (requests.ConnectionError("refused"), Reason.NETWORK),
        (requests.Timeout("slow"), Reason.TIMEOUT),
        (ExtractorError("Unable to extract yt initial data"), Reason.UNKNOWN),
    ],
)
def test_classify_error(exc, reason):
    assert classify_error(exc).reason is reason


def test_warnings_tell_a_429_behind_a_vague_error():
    exc = ExtractorError("Failed to extract any player response")

    assert classify_error(exc).reason is Reason.NETWORK
    assert (
        classify_error(exc, ["Unable to download API page: HTTP Error 429"]).reason
        is Reason.RATE_LIMITED
    )


# --- Transport ----------------------------------------------------------------------------------


def test_get_transport_reads_the_setting(fake_youtube, settings):
    assert get_transport() is not None
    settings.CHIRP_YOUTUBE_TRANSPORT = None
    assert get_transport() is None
    settings.CHIRP_YOUTUBE_TRANSPORT = "tests.imports.fake_youtube.FakeYouTube"
    with pytest.raises(ImproperlyConfigured):
        get_transport()


def test_the_transport_refuses_other_hosts(fake_youtube):
    transport = fake_youtube.transport()

    with yt_dlp.YoutubeDL({"quiet": True}) as ydl:
        director = ydl.build_request_director(transport.request_handlers)
        with pytest.raises(NoSupportingHandlers, match=r"refuses 'example\.com'"):
            director.send(Request("https://example.com/"))
        assert (
            director.send(Request(f"https://i.ytimg.com/vi/{VIDEO}/hqdefault.jpg")).read()[:2]
            == b"\xff\xd8"
        )
    with pytest.raises(UnexpectedHost):
        transport.new_session().get("https://example.com/")
    assert [r.kind for r in fake_youtube.requests] == ["image"]


def test_another_process_reaches_the_same_fake(fake_youtube):
    channel = fake_youtube.add_channel("remote", videos=40)
    script = textwrap.dedent(
        """
        import os
        from django.conf import settings
        settings.configure(CHIRP_YOUTUBE_TRANSPORT=os.environ["CHIRP_YOUTUBE_TRANSPORT"])
        from imports.youtube import YouTube, parse_channel_input
        with YouTube(sleep_requests=0, retry_backoff=0) as client:
            listing = client.fetch_channel(parse_channel_input("@remote"))
        print(len(listing.entries))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    assert env[ENV_VAR] == fake_youtube.url

    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "40"
    assert [r.kind for r in fake_youtube.requests] == ["channel_page", "browse"]
    assert channel.videos
