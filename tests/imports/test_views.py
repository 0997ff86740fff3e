"""The Channels pages: who sees what, the "Add channel" form, filters, search, HTMX partials."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from imports.models import ImportJob, ImportJobItem, Video
from imports.transcripts import Segment, Transcript

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def test_the_channel_list_shows_my_channels_only(alice_client, alice, bob, make_channel):
    mine = make_channel(alice, videos=4, title="Alice's Cooking")
    make_channel(bob, videos=2, title="Bob's Garage")
    Video.objects.filter(channel=mine).update(transcript_source="manual")
    Video.objects.filter(pk=mine.videos.first().pk).update(stage="captions")

    response = alice_client.get("/channels/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Alice&#x27;s Cooking" in html and "Bob&#x27;s Garage" not in html
    row = html[html.index(f'id="{mine.dom_id}"') :]
    assert 'data-imported="3"' in row[:2000] and "/ 4" in row[:2000]
    assert 'href="/channels/add/"' in html  # the dialog's plain fallback
    assert 'id="add-channel"' in html


def test_the_channel_list_search(alice_client, alice, make_channel):
    make_channel(alice, title="Woodworking weekly", handle="@wood")
    make_channel(alice, title="Kitchen", handle="@cooks")

    html = alice_client.get("/channels/?q=wood").content.decode()
    assert "Woodworking weekly" in html and "Kitchen" not in html
    html = alice_client.get("/channels/?q=COOKS").content.decode()
    assert "Kitchen" in html and "Woodworking" not in html
    partial = alice_client.get("/channels/?q=wood", **HTMX).content.decode()
    assert partial.lstrip().startswith('<div id="channel-rows"') and "<html" not in partial
    assert alice_client.get("/channels/?q=" + "x" * 500).status_code == 200  # refused, not 500


def test_signed_out_visitors_are_sent_to_sign_in(client, alice):
    response = client.get("/channels/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Enter a YouTube channel"),
        ("fixture95", "did you mean @fixture95"),
        ("https://vimeo.com/channels/staffpicks", "Only YouTube links"),
        ("https://www.youtube.com/playlist?list=PL123", "playlist"),
        ("@a", "not a valid handle"),
    ],
)
def test_the_form_shows_errors_inline(alice_client, text, message):
    response = alice_client.post("/channels/add/", {"channel": text, "tab": "videos"}, **HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<form id="import-form"')
    assert message in html.replace("&#x27;", "'")
    assert 'aria-invalid="true"' in html
    assert not ImportJob.objects.exists()


def test_the_form_refuses_a_bad_option(alice_client):
    response = alice_client.post("/channels/add/", {"channel": "@ok-handle", "tab": "podcasts"})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    response = alice_client.post("/channels/add/", {"channel": "@ok-handle", "limit": "0"})
    assert "greater than or equal to 1" in response.content.decode()
    assert not ImportJob.objects.exists()


def test_adding_a_channel_in_the_dialog_shows_its_progress(alice_client, alice, mocker_wake):
    response = alice_client.post(
        "/channels/add/", {"channel": "youtube.com/@Fixture95/videos", "tab": "videos"}, **HTMX
    )

    assert response.status_code == 200
    job = ImportJob.objects.get()
    assert (job.owner, job.channel_url, job.status) == (
        alice,
        "https://www.youtube.com/@fixture95",
        "pending",
    )
    html = response.content.decode()
    assert f'id="{job.dom_id}"' in html and f'sse-swap="{job.dom_id}"' in html
    assert 'role="progressbar"' in html
    assert mocker_wake == ["imports"]


def test_adding_the_same_channel_again_leads_to_the_open_import(alice_client, alice):
    first = alice_client.post("/channels/add/", {"channel": "@fixture95", "tab": "videos"})
    job = ImportJob.objects.get()
    assert first.status_code == 302 and first["Location"] == f"/channels/imports/{job.pk}/"

    again = alice_client.post("/channels/add/", {"channel": "https://m.youtube.com/@FIXTURE95"})
    assert again.status_code == 302 and again["Location"] == f"/channels/imports/{job.pk}/"
    htmx = alice_client.post("/channels/add/", {"channel": "@fixture95"}, **HTMX)
    assert "already being imported" in htmx.content.decode()
    assert ImportJob.objects.count() == 1


def test_the_plain_form_page(alice_client):
    response = alice_client.get("/channels/add/")
    assert response.status_code == 200 and "<html" in response.content.decode()
    partial = alice_client.get("/channels/add/", **HTMX)
    assert partial.content.decode().lstrip().startswith('<form id="import-form"')


def test_a_job_page_is_its_owners_only(alice_client, alice, bob, client):
    job = ImportJob.objects.create(owner=alice, channel_url="https://www.youtube.com/@x")

    assert alice_client.get(f"/channels/imports/{job.pk}/").status_code == 200
    client.force_login(bob)
    assert client.get(f"/channels/imports/{job.pk}/").status_code == 404
    assert client.post(f"/channels/imports/{job.pk}/cancel/").status_code == 404
    assert client.post(f"/channels/imports/{job.pk}/retry/").status_code == 404


def test_cancel_and_retry(alice_client, alice):
    job = ImportJob.objects.create(owner=alice, channel_url="https://www.youtube.com/@x")

    response = alice_client.post(f"/channels/imports/{job.pk}/cancel/", **HTMX)
    assert response.status_code == 200 and 'data-status="cancelled"' in response.content.decode()
    assert alice_client.get(f"/channels/imports/{job.pk}/cancel/").status_code == 405
    again = alice_client.post(f"/channels/imports/{job.pk}/cancel/")
    assert again.status_code == 302  # nothing to cancel: back to the job, with a message
    job.refresh_from_db()
    assert job.status == "cancelled"


# -- an ended import says what happened -------------------------------------------------------


def ended_job(owner, status: str, **counts) -> ImportJob:
    return ImportJob.objects.create(
        owner=owner,
        channel_url="https://www.youtube.com/@ended",
        status=status,
        prepared=counts.pop("prepared", True),
        finished=timezone.now(),
        **counts,
    )


@pytest.mark.parametrize(
    ("status", "counts", "text", "bar"),
    [
        (
            "failed",
            {"prepared": False, "error": "YouTube has no channel or video at that address."},
            "Failed: YouTube has no channel or video at that address · 0 imported · 0 failed",
            0,
        ),
        (
            "failed",
            {"total": 4, "done": 1, "failed": 3, "error": "The worker stopped."},
            "Failed: The worker stopped · 1 imported · 3 failed",
            25,
        ),
        (
            "cancelled",
            {"total": 100, "done": 60, "cancelled": 37},
            "Cancelled · 60 of 100 imported",
            60,
        ),
        (
            "completed",
            {"total": 10, "done": 9, "failed": 1},
            "Completed with failures · 9 imported · 1 failed",
            90,
        ),
        ("completed", {"total": 6, "done": 6}, "Completed · 6 imported", 100),
    ],
)
def test_an_ended_import_says_what_happened(alice_client, alice, status, counts, text, bar):
    job = ended_job(alice, status, **counts)

    page = alice_client.get(reverse("imports:job_detail", args=[job.pk])).content.decode()
    live = dict(job.live_fragments())

    for html in (page, live[job.dom_id], live[f"{job.dom_id}-row"]):
        assert text in html
        assert f'aria-valuenow="{bar}"' in html
        assert f"progress-{status}" in html
    # The old words: a full bar and a percentage of what was "processed".
    assert " %</p>" not in page and "listed" not in page


def test_the_channel_page(alice_client, alice, bob, client, make_channel):
    channel = make_channel(alice, videos=5)
    Video.objects.filter(channel=channel).update(transcript_source="auto")
    failed = channel.videos.last()
    Video.objects.filter(pk=failed.pk).update(
        stage="error", error_reason="private", error="This video is private.", progress=0
    )
    importing = channel.videos.first()
    Video.objects.filter(pk=importing.pk).update(stage="captions", progress=60)

    response = alice_client.get(channel.get_absolute_url())

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-stat="totalVideos">5<' in html
    assert 'data-stat="withTranscripts">5<' in html
    assert 'data-stat="successRate">75 %<' in html  # 3 imported, 1 failed, 1 still going
    card = html[html.index(f'id="{importing.dom_id}"') :][:1500]
    assert "importing" in card and 'stroke-dasharray="60 100"' in card and "Captions" in card
    bad = html[html.index(f'id="{failed.dom_id}"') :][:800]
    assert 'title="This video is private."' in bad
    client.force_login(bob)
    assert client.get(channel.get_absolute_url()).status_code == 404
    assert client.get(failed.get_absolute_url()).status_code == 404


def stat_card(html: str, name: str) -> tuple[str, str]:
    """(tooltip, value) of one stat card."""
    match = re.search(
        rf'<div class="stat" title="([^"]*)"><span class="value" data-stat="{name}">([^<]*)<', html
    )
    return match[1], match[2]


def test_the_stat_cards_tell_the_truth_about_failures_and_cancels(
    alice_client, alice, bob, make_channel
):
    channel = make_channel(alice, videos=10)  # its import: completed, 10 of 10
    videos = list(channel.videos.order_by("pk"))
    Video.objects.filter(pk__in=[v.pk for v in videos[:2]]).update(
        stage="error", error_reason="private", error="This video is private."
    )
    Video.objects.filter(pk=videos[2].pk).update(stage="captions")  # still importing
    url = channel.youtube_url
    # An import that "completed" with 2 failed videos, one cancelled, one that failed outright.
    ImportJob.objects.create(
        owner=alice, channel=channel, channel_url=url + "/a", status="completed", total=9,
        done=7, failed=2,
    )  # fmt: skip
    ImportJob.objects.create(
        owner=alice, channel=channel, channel_url=url + "/b", status="cancelled", total=10,
        done=3, cancelled=7,
    )  # fmt: skip
    ImportJob.objects.create(
        owner=alice, channel=channel, channel_url=url + "/c", status="failed", error="Gone."
    )
    ImportJob.objects.create(  # not alice's
        owner=bob, channel=channel, channel_url=url, status="failed", error="Gone."
    )

    html = alice_client.get(channel.get_absolute_url()).content.decode()

    tip, value = stat_card(html, "successRate")
    assert value == "77.8 %"  # 7 imported of the 9 videos that ended
    assert "imported ÷ (imported + failed)" in tip
    tip, value = stat_card(html, "failedJobs")
    assert value == "2" and "ended with videos they could not import" in tip
    tip, value = stat_card(html, "cancelledJobs")
    assert value == "1" and "cancelled" in tip
    assert stat_card(html, "failedVideos")[1] == "2"
    stats = alice_client.get(f"/api/channels/{channel.pk}/stats").json()
    assert (stats["successRate"], stats["failedJobs"], stats["cancelledJobs"]) == (77.78, 2, 1)
    # The live fragment is the same partial.
    _, live = channel.stats_fragment(alice)
    assert stat_card(live, "successRate")[1] == "77.8 %" and stat_card(live, "failedJobs")[1] == "2"


def test_the_success_rate_waits_for_a_video_to_end(alice_client, alice, make_channel):
    channel = make_channel(alice, videos=3, stage="metadata")

    html = alice_client.get(channel.get_absolute_url()).content.decode()

    assert stat_card(html, "successRate")[1] == "—"


def test_the_video_grid_filters_by_stage_and_searches(alice_client, alice, make_channel):
    channel = make_channel(alice, videos=6)
    videos = list(channel.videos.order_by("pk"))
    Video.objects.filter(pk=videos[0].pk).update(title="Building a workbench")
    Video.objects.filter(pk=videos[1].pk).update(transcript="today we sharpen a chisel")
    Video.objects.filter(pk=videos[2].pk).update(stage="error", error_reason="removed")
    Video.objects.filter(pk=videos[3].pk).update(stage="metadata", progress=25)
    url = channel.get_absolute_url()

    def shown(query: str) -> set[int]:
        response = alice_client.get(
            f"{url}?{query}", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="video-grid"
        )
        assert response.status_code == 200
        html = response.content.decode()
        assert html.lstrip().startswith('<div id="video-grid"')
        return {v.pk for v in videos if f'id="{v.dom_id}"' in html}

    assert shown("stage=error") == {videos[2].pk}
    assert shown("stage=importing") == {videos[3].pk}
    assert shown("stage=complete") == {videos[0].pk, videos[1].pk, videos[4].pk, videos[5].pk}
    assert shown("q=workbench") == {videos[0].pk}
    assert shown("q=chisel") == {videos[1].pk}  # transcripts are searched too
    assert shown("q=chisel&stage=error") == set()
    assert shown("stage=bogus") == {v.pk for v in videos}  # a bad filter shows everything


def _days_ago(days: int):
    return timezone.now() - timedelta(days=days)


def _search_order(client, channel, query: str) -> list[str]:
    """The video titles the grid shows for `query`, in the order shown."""
    response = client.get(
        f"{channel.get_absolute_url()}?{query}", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="video-grid"
    )
    assert response.status_code == 200
    html = response.content.decode()
    shown = [
        (html.index(f'id="{v.dom_id}"'), v.title)
        for v in channel.videos.all()
        if f'id="{v.dom_id}"' in html
    ]
    return [title for _, title in sorted(shown)]


def _videos(channel, fields_by_title: dict[str, dict]) -> None:
    """Give the channel's videos these titles and fields (in creation order)."""
    for video, (title, fields) in zip(
        channel.videos.order_by("pk"), fields_by_title.items(), strict=True
    ):
        Video.objects.filter(pk=video.pk).update(title=title, **fields)


def test_search_shows_title_matches_before_transcript_mentions(alice_client, alice, make_channel):
    channel = make_channel(alice, videos=4)
    _videos(
        channel,
        {
            "Unrelated": {"published": _days_ago(1), "transcript": "nothing to see"},
            "Vlog": {"published": _days_ago(2), "transcript": "then we walked to the garden"},
            "A garden shed": {"published": _days_ago(30), "transcript": "sawing planks"},
            "Older vlog": {"published": _days_ago(40), "transcript": "a garden again"},
        },
    )

    # Older, but its title says it; then transcript mentions, newest first.
    assert _search_order(alice_client, channel, "q=garden") == [
        "A garden shed",
        "Vlog",
        "Older vlog",
    ]
    # The stage filter still applies to the ranked results.
    Video.objects.filter(title="A garden shed").update(stage="error")
    assert _search_order(alice_client, channel, "q=garden&stage=complete") == ["Vlog", "Older vlog"]


def test_ranked_search_results_are_paginated(alice_client, alice, make_channel, monkeypatch):
    monkeypatch.setattr("imports.views.VIDEOS_PER_PAGE", 2)
    channel = make_channel(alice, videos=5)
    _videos(
        channel,
        {
            "Day one": {"published": _days_ago(1), "transcript": "a chisel"},
            "Chisel sharpening": {"published": _days_ago(9), "transcript": ""},
            "Day two": {"published": _days_ago(2), "transcript": "the chisel"},
            "Chisel storage": {"published": _days_ago(5), "transcript": ""},
            "Day three": {"published": _days_ago(3), "transcript": "my chisel"},
        },
    )

    pages = [_search_order(alice_client, channel, f"q=chisel&page={n}") for n in (1, 2, 3)]

    assert pages == [["Chisel storage", "Chisel sharpening"], ["Day one", "Day two"], ["Day three"]]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's full-text ranking")
def test_search_ranks_more_mentions_higher(alice_client, alice, make_channel):
    channel = make_channel(alice, videos=3)
    _videos(
        channel,
        {
            "Once": {"published": _days_ago(1), "transcript": "we planted a tree in the garden"},
            "Often": {
                "published": _days_ago(20),
                "transcript": "the garden in spring. Garden beds, garden paths: gardens everywhere",
            },
            "Twice": {"published": _days_ago(10), "transcript": "a garden, and another garden"},
        },
    )

    assert _search_order(alice_client, channel, "q=garden") == ["Often", "Twice", "Once"]


def _transcript(text: str) -> Transcript:
    return Transcript(
        video_id="",
        language_code="en",
        language="English",
        source="manual",
        segments=(Segment(start=0.0, duration=4.0, text=text),),
    )


def _matches(video: Video, word: str) -> bool:
    """Whether the video's stored search vector has `word` (PostgreSQL)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT search_document @@ to_tsquery('english', %s) FROM imports_video WHERE id = %s",
            [word, video.pk],
        )
        return cursor.fetchone()[0]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's search vectors")
def test_the_worker_stores_a_transcript_without_building_its_search_vector(alice, make_channel):
    channel = make_channel(alice, videos=1, stage="captions")
    video = channel.videos.get()
    Video.objects.filter(pk=video.pk).update(title="Building a trellis")

    video.save_transcript(_transcript("we graft the quince onto the rootstock"))

    video.refresh_from_db()
    assert video.search_stale and video.transcript_source == "manual"
    assert _matches(video, "trellis") and not _matches(video, "quince")  # the title at once

    assert Video.refresh_search_documents() == 1
    video.refresh_from_db()
    assert not video.search_stale
    assert _matches(video, "trellis") and _matches(video, "quince")
    assert Video.refresh_search_documents() == 0  # nothing left to build


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's search vectors")
def test_a_search_finds_a_transcript_stored_moments_ago(alice_client, alice, make_channel):
    channel = make_channel(alice, videos=2, stage="captions")
    first, second = channel.videos.order_by("pk")
    Video.objects.filter(pk=first.pk).update(title="Pruning")
    Video.objects.filter(pk=second.pk).update(title="Mulching")
    first.save_transcript(_transcript("an old quince tree"))
    other = make_channel(alice, videos=1, stage="captions").videos.get()
    other.save_transcript(_transcript("quince jelly"))

    assert _search_order(alice_client, channel, "q=quince") == ["Pruning"]
    # The search built the vectors of the videos it searched, and only those.
    assert list(Video.objects.filter(search_stale=True)) == [other]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's search vectors")
def test_an_edit_in_the_admin_builds_the_search_vector_at_once(alice, make_channel):
    video = make_channel(alice, videos=1).videos.get()
    video.transcript = "a hedge of hornbeam"
    video.save()

    assert not Video.objects.get(pk=video.pk).search_stale and _matches(video, "hornbeam")


def test_the_video_page_links_timestamps_to_youtube(alice_client, alice, make_channel):
    channel = make_channel(alice, videos=1)
    video = channel.videos.get()
    Video.objects.filter(pk=video.pk).update(
        transcript_segments=[[0.0, 2.5, "Hello <b>there</b>"], [75.4, 3.0, "Second line"]],
        transcript="Hello <b>there</b>\nSecond line",
        transcript_source="manual",
        chapters=[
            {"start": 0.0, "end": 60.0, "title": "Intro"},
            {"start": 60.0, "end": 3700.0, "title": "Main"},
            {"start": 3700.0, "end": None, "title": "End"},
        ],
        description="A <script>alert(1)</script> description",
    )

    html = alice_client.get(video.get_absolute_url()).content.decode()

    yt = f"https://www.youtube.com/watch?v={video.youtube_id}"
    assert f'href="{yt}&amp;t=75s"' in html and ">1:15</a> Second line" in html
    assert f'href="{yt}&amp;t=3700s"' in html and ">1:01:40</a> End" in html
    assert "Hello &lt;b&gt;there&lt;/b&gt;" in html
    assert "<script>alert(1)</script>" not in html


@pytest.fixture
def mocker_wake(monkeypatch):
    woken = []
    monkeypatch.setattr("chirp.engine.wake_lane", woken.append)
    from django.db import transaction

    monkeypatch.setattr(transaction, "on_commit", lambda fn, using=None, robust=False: fn())
    return woken


# -- a failed video: why, and a retry only where it can help ----------------------------------


def failed_video(owner, make_channel, reason: str, error: str) -> tuple[Video, ImportJobItem]:
    """A channel `owner` imported whose last video failed for `reason`, in a finished job."""
    channel = make_channel(owner, videos=2)
    job = ImportJob.objects.get(channel=channel)
    done, bad = channel.videos.order_by("pk")
    ImportJobItem.objects.create(job=job, video=done, status="completed")
    Video.objects.filter(pk=bad.pk).update(stage="error", error_reason=reason, error=error)
    item = ImportJobItem.objects.create(job=job, video=bad, status="failed", error=error)
    ImportJob.objects.filter(pk=job.pk).update(done=1, failed=1)
    bad.refresh_from_db()
    return bad, item


@pytest.mark.parametrize(
    ("reason", "error", "words"),
    [
        ("private", "This video is private.", "Not available — this video is private."),
        (
            "members_only",
            "This video is for channel members only.",
            "Not available — this video is for channel members only.",
        ),
        (
            "removed",
            "This video has been removed from YouTube.",
            "Not available — this video has been removed from YouTube.",
        ),
    ],
)
def test_a_video_that_failed_for_good_says_why_and_offers_no_retry(
    alice_client, alice, make_channel, mocker_wake, reason, error, words
):
    video, item = failed_video(alice, make_channel, reason, error)
    retry_url = reverse("imports:retry_video", args=[video.pk])

    html = alice_client.get(video.get_absolute_url()).content.decode()

    transcript = html[html.index("<h2>Transcript</h2>") :]
    assert words in transcript and "Not fetched yet" not in html
    assert retry_url not in html
    job_html = alice_client.get(reverse("imports:job_detail", args=[item.job_id])).content
    assert reverse("imports:retry_job", args=[item.job_id]) not in job_html.decode()

    response = alice_client.post(retry_url, follow=True)

    assert f"{error.rstrip('.')}: retrying would not change that." in response.content.decode()
    video.refresh_from_db()
    item.refresh_from_db()
    assert (video.stage, item.status, item.job.status) == ("error", "failed", "completed")
    # Nor does the job's "Retry failed" send it back.
    response = alice_client.post(reverse("imports:retry_job", args=[item.job_id]), follow=True)
    assert "failed for good" in response.content.decode()
    item.refresh_from_db()
    assert (item.status, item.job.status, item.job.failed) == ("failed", "completed", 1)
    assert mocker_wake == []


def test_a_video_that_failed_for_a_passing_reason_can_be_retried(
    alice_client, alice, bob, make_channel, mocker_wake
):
    video, item = failed_video(alice, make_channel, "timeout", "YouTube did not answer in time.")
    retry_url = reverse("imports:retry_video", args=[video.pk])

    html = alice_client.get(video.get_absolute_url()).content.decode()

    assert f'action="{retry_url}"' in html
    assert "Not fetched: the import of this video failed. Retry it to try again." in html
    assert reverse("imports:retry_job", args=[item.job_id]) in (
        alice_client.get(reverse("imports:job_detail", args=[item.job_id])).content.decode()
    )
    assert alice_client.get(retry_url).status_code == 405
    stranger = Client()
    stranger.force_login(bob)
    assert stranger.post(retry_url).status_code == 404

    response = alice_client.post(retry_url)

    assert response.status_code == 302 and response["Location"] == video.get_absolute_url()
    video.refresh_from_db()
    item.refresh_from_db()
    job = item.job
    job.refresh_from_db()
    assert (video.stage, item.status) == ("created", "queued")
    assert (job.status, job.failed) == ("pending", 0)
    assert mocker_wake == ["imports"]


def test_retry_failed_sends_back_only_what_a_retry_can_fix(alice_client, alice, make_channel):
    _, item = failed_video(alice, make_channel, "private", "This video is private.")
    job = item.job
    other = Video.objects.create(youtube_id="slow0000001", channel=job.channel, stage="error")
    Video.objects.filter(pk=other.pk).update(error_reason="network", error="Unreachable.")
    passing = ImportJobItem.objects.create(job=job, video=other, status="failed")
    ImportJob.objects.filter(pk=job.pk).update(failed=2, total=3)

    alice_client.post(reverse("imports:retry_job", args=[job.pk]))

    item.refresh_from_db()
    passing.refresh_from_db()
    job.refresh_from_db()
    assert (item.status, passing.status) == ("failed", "queued")
    assert (job.status, job.failed) == ("pending", 1)


def test_a_video_cards_facts_have_separators_only_between_them(alice_client, alice, make_channel):
    channel = make_channel(alice, videos=4)
    dated, undated, failed, failed_undated = channel.videos.order_by("youtube_id")
    published = timezone.make_aware(timezone.datetime(2024, 3, 5, 12))
    Video.objects.filter(pk__in=[dated.pk, failed.pk]).update(published=published)
    Video.objects.filter(pk__in=[failed.pk, failed_undated.pk]).update(
        stage="error", error_reason="private"
    )

    html = alice_client.get(channel.get_absolute_url()).content.decode()

    def facts(video: Video) -> str:
        card = html[html.index(f'<article id="{video.dom_id}"') :]
        line = re.search(r'<p class="muted small[^"]*">(.*?)</p>', card, re.S).group(1)
        return " ".join(re.sub(r"<[^>]+>", "", line).split())

    assert facts(dated) == "Mar 5, 2024 · no captions"
    assert facts(undated) == "no captions"
    assert facts(failed) == "Mar 5, 2024 · Private"
    assert facts(failed_undated) == "Private"


def test_channel_page_url_names():
    assert reverse("imports:channel_list") == "/channels/"
    assert reverse("imports:channel_detail", args=[3]) == "/channels/3/"


def test_the_channel_page_costs_the_same_queries_for_3_or_24_videos(
    alice_client, alice, make_channel, django_assert_max_num_queries
):
    few, many = make_channel(alice, videos=3), make_channel(alice, videos=24, title="Many")
    for channel in (few, many):
        Video.objects.filter(channel=channel).update(
            stage="complete", transcript="words " * 500, transcript_source="manual"
        )
        Video.objects.filter(pk=channel.videos.first().pk).update(stage="error", error="Gone.")
    alice_client.get(few.get_absolute_url())  # the session and user are read once per request

    with CaptureQueriesContext(connection) as baseline:
        assert alice_client.get(few.get_absolute_url()).status_code == 200
    with django_assert_max_num_queries(len(baseline)):
        response = alice_client.get(many.get_absolute_url())
    html = response.content.decode()
    assert html.count('class="video-card') == 24 and "no captions" not in html
