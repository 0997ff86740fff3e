"""imports/transcripts.py against the fake YouTube."""

from __future__ import annotations

import pytest

from imports.transcripts import fetch_transcript
from imports.youtube import Reason, YouTubeError
from tests.imports.fake_youtube import SHAPES, caption_segments


@pytest.fixture(params=SHAPES)
def fake_youtube_shape(request) -> str:
    """Every test here runs on both shapes of the fake's answers (unless it names one)."""
    return request.param


def test_a_manual_track_is_preferred_over_an_auto_generated_one(fake_youtube):
    channel = fake_youtube.add_channel("captions", videos=1, captions="manual")
    video = channel.videos[0]

    transcript = fetch_transcript(video.id, ["en"])

    assert transcript.source == "manual"
    assert transcript.language_code == "en"
    assert transcript.language == "English"
    expected = caption_segments(video, "en", auto=False)
    assert [(s.start, s.duration, s.text) for s in transcript.segments] == expected
    assert transcript.text.splitlines()[0] == expected[0][2]
    # The watch page, the player API (as the ANDROID client), the timed text.
    assert [(r.kind, r.client) for r in fake_youtube.requests] == [
        ("watch", None),
        ("player", "ANDROID"),
        ("timedtext", None),
    ]


def test_an_auto_generated_track_is_used_when_alone(fake_youtube):
    channel = fake_youtube.add_channel("captions", videos=1, captions="auto")

    transcript = fetch_transcript(channel.videos[0].id, ["en"])

    assert transcript.source == "auto"
    assert transcript.segments[0].text == transcript.segments[0].text.lower()


@pytest.mark.parametrize(
    ("languages", "language", "source"),
    [
        (["de", "en"], "de", "manual"),
        (["fr"], "fr", "manual"),
        (["es", "fr", "de"], "fr", "manual"),
        # Language order comes first: an English auto track beats a German manual one.
        (["en", "de"], "en", "auto"),
    ],
)
def test_languages_in_order_of_preference(fake_youtube, languages, language, source):
    channel = fake_youtube.add_channel("multi", videos=1, captions="multi")

    transcript = fetch_transcript(channel.videos[0].id, languages)

    assert (transcript.language_code, transcript.source) == (language, source)


@pytest.mark.parametrize("captions", ["none", "disabled", "other_language"])
def test_no_transcript_is_none(fake_youtube, captions):
    channel = fake_youtube.add_channel("quiet", videos=1, captions=captions)

    assert fetch_transcript(channel.videos[0].id, ["en"]) is None
    assert fake_youtube.count("timedtext") == 0


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ("bot_check", Reason.BOT_CHECK),
        ("private", Reason.PRIVATE),
        ("unavailable", Reason.UNAVAILABLE),
        ("removed", Reason.REMOVED),
        ("members_only", Reason.MEMBERS_ONLY),
        ("age_restricted", Reason.AGE_RESTRICTED),
    ],
)
def test_refusals_are_classified(fake_youtube, state, reason):
    channel = fake_youtube.add_channel("refused", videos=1, errors={0: state})

    with pytest.raises(YouTubeError) as caught:
        fetch_transcript(channel.videos[0].id, ["en"])

    assert caught.value.reason is reason
    assert caught.value.transient is (reason is Reason.BOT_CHECK)


@pytest.mark.parametrize("kind", ["watch", "player", "timedtext"])
def test_429_is_rate_limited(fake_youtube, kind):
    channel = fake_youtube.add_channel("limited", videos=1)
    fake_youtube.add_fault(kinds={kind}, status=429)

    with pytest.raises(YouTubeError) as caught:
        fetch_transcript(channel.videos[0].id, ["en"])

    assert caught.value.reason is Reason.RATE_LIMITED
    assert caught.value.transient


def test_a_server_error_is_transient(fake_youtube):
    channel = fake_youtube.add_channel("broken", videos=1)
    fake_youtube.add_fault(kinds={"timedtext"}, status=503)

    with pytest.raises(YouTubeError) as caught:
        fetch_transcript(channel.videos[0].id, ["en"])

    assert caught.value.reason is Reason.NETWORK


def test_a_slow_answer_is_a_timeout(fake_youtube):
    channel = fake_youtube.add_channel("slow", videos=1)
    fake_youtube.add_fault(kinds={"watch"}, delay=0.5)
    session = fake_youtube.transport().new_session()
    session.request = _with_timeout(session.request, 0.2)

    with pytest.raises(YouTubeError) as caught:
        fetch_transcript(channel.videos[0].id, ["en"], session=session)

    assert caught.value.reason is Reason.TIMEOUT


def _with_timeout(request, timeout):
    def bounded(*args, **kwargs):
        kwargs.setdefault("timeout", timeout)
        return request(*args, **kwargs)

    return bounded


def test_the_fake_serves_the_formats_yt_dlp_lists(fake_youtube):
    channel = fake_youtube.add_channel("formats", videos=1)
    video = channel.videos[0]
    session = fake_youtube.transport().new_session()
    base = f"https://www.youtube.com/api/timedtext?v={video.id}"

    json3 = session.get(base + "&lang=en&fmt=json3").json()
    vtt = session.get(base + "&lang=en&fmt=vtt&kind=asr").text

    assert json3["events"][0]["segs"][0]["utf8"] == caption_segments(video, "en", auto=False)[0][2]
    assert vtt.startswith("WEBVTT")
    assert session.get(base + "&fmt=json3&lang=de").status_code == 404


@pytest.mark.parametrize("fake_youtube_shape", ["recorded"])  # as real caption files are
@pytest.mark.parametrize("captions", ["manual", "auto"])
def test_overlapping_lines_escaped_twice_read_once_in_order_with_plain_apostrophes(
    fake_youtube, captions
):
    video = fake_youtube.add_channel("escaped", videos=1, captions=captions).videos[0]
    session = fake_youtube.transport().new_session()
    raw = session.get(
        f"https://www.youtube.com/api/timedtext?v={video.id}&lang=en"
        + ("&kind=asr" if captions == "auto" else "")
    ).text
    assert "it&amp;#39;s" in raw  # as real caption files write "it's"

    transcript = fetch_transcript(video.id, ["en"])

    segments = [(s.start, s.duration, s.text) for s in transcript.segments]
    assert segments == caption_segments(video, "en", auto=captions == "auto")
    starts = [start for start, _, _ in segments]
    assert starts == sorted(set(starts))
    # The lines overlap: each lasts past the next one's start.
    assert all(
        start + duration > next_start
        for (start, duration, _), next_start in zip(segments, starts[1:], strict=False)
    )
    assert all("it's" in text and "&#39;" not in text for _, _, text in segments)
    assert "&amp;" not in transcript.text
