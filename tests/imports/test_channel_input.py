"""What a person may type or paste as a channel: handles in every script, full-width forms,
YouTube Music and legacy addresses, a tab in the link, what the API refuses, and a channel that
does not exist (failing at once, not after half a minute of retries)."""

from __future__ import annotations

import json
import time
import urllib.parse

import pytest

from chirp import engine
from imports.models import Channel, ImportJob, Video
from imports.youtube import ChannelRef, InvalidChannelInput, parse_channel_input

YOUTUBE = "https://www.youtube.com"
UCID = "UCs9tQttw5RgKKH4oGOc4MdT"
VIDEO = "dQw4w9WgXcQ"
HTMX = {"HTTP_HX_REQUEST": "true"}

DEVANAGARI = "नमस्ते"  # with a virama and a vowel sign: combining marks
ARABIC = "مَرحَبا"  # with harakat: combining marks
THAI = "สวัสดี"  # with vowel and tone marks: combining marks
NOT_A_LINK = "That is not a link Chirp can read: paste the channel's address or @handle alone."
TOO_LONG = "That is too long to be a YouTube link: links and handles are at most 2,048 characters."


def full_width(text: str) -> str:
    """The full-width form of ASCII text, as some keyboards type it (U+FF01 to U+FF5E)."""
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


def handle_url(handle: str) -> str:
    return f"{YOUTUBE}/@{urllib.parse.quote(handle)}"


def youtube_page(name: str) -> str:
    return (
        f"That is YouTube's own “{name}” page, not a channel: paste a link like "
        "youtube.com/@name or youtube.com/channel/UC…"
    )


def bad_handle(typed: str) -> str:
    return (
        f"“{typed}” is not a valid handle: handles have 3 to 30 letters, numbers, dots, "
        "dashes, underscores or middle dots (·)."
    )


# --- Accepted inputs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "url", "handle"),
    [
        ("@MrBeast", handle_url("mrbeast"), "@mrbeast"),
        ("@Привет_Мир", handle_url("привет_мир"), "@привет_мир"),
        (f"@{DEVANAGARI}", handle_url(DEVANAGARI), f"@{DEVANAGARI}"),
        (f"@{ARABIC}", handle_url(ARABIC), f"@{ARABIC}"),
        ("@日本語チャンネル", handle_url("日本語チャンネル"), "@日本語チャンネル"),
        (f"@{THAI}", handle_url(THAI), f"@{THAI}"),
        ("@abc123", handle_url("abc123"), "@abc123"),
        ("@قناة١٢٣", handle_url("قناة١٢٣"), "@قناة١٢٣"),  # Arabic-Indic digits
        ("@a_b-c.d·e", handle_url("a_b-c.d·e"), "@a_b-c.d·e"),
        ("@abc", handle_url("abc"), "@abc"),  # 3: the shortest
        ("@" + "a" * 30, handle_url("a" * 30), "@" + "a" * 30),  # 30: the longest
        (f"@{DEVANAGARI * 5}", handle_url(DEVANAGARI * 5), f"@{DEVANAGARI * 5}"),  # 30 too
        # Full-width forms (NFKC): the same channel as the plain one.
        ("@" + full_width("mrbeast"), handle_url("mrbeast"), "@mrbeast"),
        (full_width("@MrBeast"), handle_url("mrbeast"), "@mrbeast"),
        (full_width("youtube.com/@MrBeast"), handle_url("mrbeast"), "@mrbeast"),
        # Percent-encoded in a link, as a browser's address bar copies it.
        (f"https://www.youtube.com/@{urllib.parse.quote(DEVANAGARI)}", handle_url(DEVANAGARI),
         f"@{DEVANAGARI}"),
        (f"youtube.com/@{urllib.parse.quote(full_width('mrbeast'))}/videos", handle_url("mrbeast"),
         "@mrbeast"),
        (f"https://m.youtube.com/@{urllib.parse.quote('Привет_Мир')}", handle_url("привет_мир"),
         "@привет_мир"),
    ],
)  # fmt: skip
def test_handles_in_every_script_are_one_canonical_url(text, url, handle):
    ref = parse_channel_input(text)

    assert (ref.url, ref.handle) == (url, handle)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"https://music.youtube.com/channel/{UCID}", ChannelRef.for_channel_id(UCID)),
        (f"music.youtube.com/channel/{UCID}?feature=share", ChannelRef.for_channel_id(UCID)),
        (f"https://music.youtube.com/browse/{UCID}", ChannelRef.for_channel_id(UCID)),
        (f"https://music.youtube.com/watch?v={VIDEO}&list=RDAMVM", ChannelRef.for_video(VIDEO)),
        # A legacy address: YouTube resolves it (a custom URL or an old username).
        ("youtube.com/LegacyName", ChannelRef(f"{YOUTUBE}/LegacyName", legacy_name="LegacyName")),
        ("https://www.youtube.com/LegacyName/videos",
         ChannelRef(f"{YOUTUBE}/LegacyName", legacy_name="LegacyName")),
        ("/pewdiepie", ChannelRef(f"{YOUTUBE}/pewdiepie", legacy_name="pewdiepie")),
    ],
)  # fmt: skip
def test_youtube_music_and_legacy_addresses_are_channels(text, expected):
    assert parse_channel_input(text) == expected


@pytest.mark.parametrize(
    ("text", "url", "tab"),
    [
        ("https://www.youtube.com/@tabs/shorts", handle_url("tabs"), "shorts"),
        ("youtube.com/@Tabs/streams?si=x", handle_url("tabs"), "streams"),
        ("@tabs/shorts", handle_url("tabs"), "shorts"),
        ("https://www.youtube.com/@tabs/videos", handle_url("tabs"), "videos"),
        ("https://www.youtube.com/@tabs", handle_url("tabs"), None),
        ("https://www.youtube.com/@tabs/featured", handle_url("tabs"), None),
        (f"youtube.com/channel/{UCID}/shorts", f"{YOUTUBE}/channel/{UCID}", "shorts"),
        ("youtube.com/LegacyName/streams", f"{YOUTUBE}/LegacyName", "streams"),
    ],
)
def test_a_link_to_a_tab_names_that_tab(text, url, tab):
    ref = parse_channel_input(text)

    assert (ref.url, ref.tab) == (url, tab)


# --- Refused inputs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("@ab", bad_handle("@ab")),  # 2: too short
        ("@" + "a" * 31, bad_handle("@" + "a" * 31)),  # 31: too long
        (f"@{DEVANAGARI * 5}x", bad_handle(f"@{DEVANAGARI * 5}x"[:40])),  # 31 with marks
        ("@bad!handle", bad_handle("@bad!handle")),
        ("@emoji🙂ok", bad_handle("@emoji🙂ok")),
        ("https://www.youtube.com/feed/subscriptions", youtube_page("feed")),
        ("https://www.youtube.com/results?search_query=cats", youtube_page("results")),
        ("youtube.com/hashtag/cats", youtube_page("hashtag")),
        ("youtube.com/account", youtube_page("account")),
        ("https://www.youtube.com/premium", youtube_page("premium")),
        ("https://www.youtube.com/shorts", youtube_page("shorts")),
        ("https://www.youtube.com/shorts/", youtube_page("shorts")),
        ("https://www.youtube.com/channel/", youtube_page("channel")),
        ("https://www.youtube.com/c", youtube_page("c")),
        ("https://www.youtube.com/watch", "That video link has no valid video ID."),
        (
            "https://www.youtube.com/playlist?list=PLabcdefghijklmnop",
            "That is a playlist, not a channel: paste the channel's link or @handle.",
        ),
        (
            "https://music.youtube.com/playlist?list=OLAK5uy_abc",
            "That YouTube Music page is not a channel: paste a link like "
            "music.youtube.com/channel/UC…",
        ),
        ("https://www.youtube.com/LegacyName/nonsense", "That is a page inside a channel, "
         "not the channel itself."),
        ("[youtube.com/@x](https://youtube.com/@xyz)", NOT_A_LINK),  # a Markdown paste
        ("http://[::1/@xyz", NOT_A_LINK),
        ("https://www.youtube.com/@" + "a" * 5000, TOO_LONG),
        ("a" * 5000, TOO_LONG),
        ("fixture95", "Handles start with @: did you mean @fixture95?"),
        (None, "Enter the channel as text: its @handle or a link to it."),
        (["@fixture95"], "Enter the channel as text: its @handle or a link to it."),
    ],
)  # fmt: skip
def test_refusals_say_exactly_why(text, message):
    with pytest.raises(InvalidChannelInput) as refused:
        parse_channel_input(text)

    assert str(refused.value) == message


# --- The duplicate check, the form and the API ---------------------------------------------------


def post_json(client, data: object):
    return client.post("/api/channels/import", json.dumps(data), content_type="application/json")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "again",
    [
        "@" + full_width("mrbeast"),
        full_width("@MRBEAST"),
        "https://www.youtube.com/@MRBEAST/videos",
        f"youtube.com/@{urllib.parse.quote(full_width('mrbeast'))}",
    ],
)
def test_a_full_width_handle_is_the_same_channel_for_the_duplicate_check(alice_client, again):
    first = post_json(alice_client, {"channelUrl": "@MrBeast"})
    second = post_json(alice_client, {"channelUrl": again})

    assert first.status_code == 201
    assert second.status_code == 409
    assert second.json()["jobId"] == first.json()["jobId"]
    assert ImportJob.objects.get().channel_url == "https://www.youtube.com/@mrbeast"


@pytest.mark.django_db
@pytest.mark.parametrize("value", [None, True, False, 3, 4.5, ["@fixture95"], {"url": "@x"}])
def test_a_channel_url_that_is_not_text_is_refused(alice_client, value):
    response = post_json(alice_client, {"channelUrl": value})

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == "channelUrl must be text."
    assert body["errors"] == {"channel": ["channelUrl must be text."]}
    assert not ImportJob.objects.exists()


@pytest.mark.django_db
def test_an_over_long_channel_url_gets_chirps_own_message(alice_client):
    response = post_json(alice_client, {"channelUrl": "https://www.youtube.com/@" + "a" * 5000})

    assert response.status_code == 400
    assert response.json()["error"] == TOO_LONG

    page = alice_client.post("/channels/add/", {"channel": "a" * 5000}, **HTMX)
    html = page.content.decode().replace("&#x27;", "'")
    assert TOO_LONG in html and "Ensure this value" not in html
    assert 'maxlength="' not in html  # a browser would cut a long paste without a word
    assert not ImportJob.objects.exists()


@pytest.mark.django_db
def test_a_markdown_paste_is_a_readable_form_error(alice_client):
    page = alice_client.post(
        "/channels/add/", {"channel": "[youtube.com/@xyz](https://youtube.com/@xyz)"}, **HTMX
    )

    assert page.status_code == 200
    assert NOT_A_LINK in page.content.decode().replace("&#x27;", "'")
    response = post_json(alice_client, {"channelUrl": "[youtube.com/@x](https://youtube.com/@x)"})
    assert (response.status_code, response.json()["error"]) == (400, NOT_A_LINK)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "tab"),
    [
        ({"channelUrl": "https://www.youtube.com/@tabs/shorts"}, "shorts"),
        ({"channelUrl": "youtube.com/@tabs/streams"}, "streams"),
        ({"channelUrl": "youtube.com/@tabs/shorts", "tab": "videos"}, "shorts"),
        ({"channelUrl": "youtube.com/@tabs/shorts", "tab": "streams"}, "streams"),  # chosen
        ({"channelUrl": "youtube.com/@tabs/videos", "tab": "shorts"}, "shorts"),
        ({"channelUrl": "youtube.com/@tabs"}, "videos"),
    ],
)
def test_the_api_imports_the_tab_the_link_names(alice_client, body, tab):
    response = post_json(alice_client, body)

    assert response.status_code == 201
    job = ImportJob.objects.get()
    assert (job.channel_url, job.tab) == ("https://www.youtube.com/@tabs", tab)
    assert response.json()["job"]["options"]["tab"] == tab


@pytest.mark.django_db
def test_the_form_imports_the_tab_the_link_names(alice_client):
    response = alice_client.post(
        "/channels/add/", {"channel": "https://www.youtube.com/@tabs/streams", "tab": "videos"}
    )

    assert response.status_code == 302
    assert ImportJob.objects.get().tab == "streams"


# --- Through a real import on the fake YouTube ---------------------------------------------------


def run_import(owner, text: str, **options) -> ImportJob:
    job, created = ImportJob.start(owner, parse_channel_input(text), **options)
    assert created
    engine.run_lane("imports")
    job.refresh_from_db()
    return job


@pytest.mark.django_db(transaction=True)
def test_a_channel_that_does_not_exist_fails_at_once(alice, fake_youtube, settings):
    # Production's retries and backoff: 3 retries, 2 s doubling.
    settings.CHIRP_YOUTUBE_RETRIES = 3
    settings.CHIRP_YOUTUBE_RETRY_BACKOFF = 2.0
    fake_youtube.add_channel("somebody", videos=2)

    started = time.monotonic()
    job = run_import(alice, "@nobodyhere")
    elapsed = time.monotonic() - started

    assert job.status == "failed" and job.total == 0
    assert job.error == "This channel does not exist on YouTube: check its @handle or link."
    assert job.finished_summary() == (
        "@nobodyhere could not be imported: This channel does not exist on YouTube: "
        "check its @handle or link."
    )
    assert elapsed < 3
    # One request for the channel's page, answered 404: not retried, not asked of the API.
    pages = fake_youtube.requests_matching("channel_page")
    assert [(r.path, r.status) for r in pages] == [("/@nobodyhere/videos", 404)]
    assert fake_youtube.count("resolve_url") == 0
    assert fake_youtube.count() == 1
    assert not Channel.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_server_error_on_the_channel_page_is_still_retried(alice, fake_youtube, settings):
    settings.CHIRP_YOUTUBE_RETRIES = 3
    settings.CHIRP_YOUTUBE_RETRY_BACKOFF = 0.0
    fake = fake_youtube.add_channel("flaky", videos=2)
    fake_youtube.add_fault(kinds={"channel_page"}, status=503, times=2)

    job = run_import(alice, "@flaky")

    assert (job.status, job.done) == ("completed", 2)
    assert job.channel.youtube_id == fake.channel_id
    assert [r.status for r in fake_youtube.requests_matching("channel_page")] == [503, 503, 200]


@pytest.mark.django_db(transaction=True)
def test_a_legacy_address_is_resolved_by_youtube(alice, fake_youtube):
    fake = fake_youtube.add_channel("legacy", videos=3, custom_url="LegacyName")

    job = run_import(alice, "https://www.youtube.com/LegacyName")

    assert (job.status, job.done) == ("completed", 3)
    assert (job.channel.youtube_id, job.channel.handle) == (fake.channel_id, "@legacy")
    assert [r.path for r in fake_youtube.requests_matching("channel_page")] == [
        "/LegacyName/videos"
    ]


@pytest.mark.django_db(transaction=True)
def test_an_unknown_legacy_address_does_not_exist(alice, fake_youtube):
    job = run_import(alice, "youtube.com/NoSuchLegacyName")

    assert job.status == "failed"
    assert job.error == "This channel does not exist on YouTube: check its @handle or link."
    assert fake_youtube.count("channel_page") == 1


@pytest.mark.django_db(transaction=True)
def test_a_non_latin_handle_is_imported(alice, fake_youtube):
    fake = fake_youtube.add_channel(DEVANAGARI, videos=2)

    job = run_import(alice, f"https://www.youtube.com/@{urllib.parse.quote(DEVANAGARI)}")

    assert (job.status, job.done) == ("completed", 2)
    assert job.channel.youtube_id == fake.channel_id


@pytest.mark.django_db(transaction=True)
def test_a_link_to_the_shorts_tab_imports_the_shorts(alice, alice_client, fake_youtube):
    fake = fake_youtube.add_channel("tabs", videos=3, shorts=4)

    response = post_json(alice_client, {"channelUrl": "https://www.youtube.com/@tabs/shorts"})
    assert response.status_code == 201
    engine.run_lane("imports")

    job = ImportJob.objects.get()
    assert (job.status, job.tab, job.done) == ("completed", "shorts", 4)
    assert set(Video.objects.values_list("youtube_id", flat=True)) == set(fake.short_ids)
    assert [r.tab for r in fake_youtube.requests_matching("channel_page")] == ["shorts"]


def test_a_404_on_a_later_page_of_the_listing_is_still_retried(fake_youtube, youtube):
    # Only the channel's own page is final: YouTube's API sometimes answers a passing 404.
    fake = fake_youtube.add_channel("paged", videos=40)
    fake_youtube.add_fault(kinds={"browse"}, page=2, status=404, times=1)

    listing = youtube.fetch_channel(parse_channel_input("@paged"))

    assert [entry.video_id for entry in listing.entries] == fake.video_ids
    assert [r.status for r in fake_youtube.requests_matching("browse")] == [404, 200]
