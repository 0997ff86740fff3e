"""Channel lists (imports/lists.py): every format a person is likely to have, the refusals,
and the preview's outcomes; the "Import a list" page."""

from __future__ import annotations

import json
import re

import pytest

from imports.lists import InvalidList, Outcome, parse_list, preview_list

BOM = b"\xef\xbb\xbf"
RICK = "UCuAXFkgsw1L7xaCfnd5JJOw"
OPML = (
    '<?xml version="1.0" encoding="UTF-8"?><opml version="1.1"><head><title>Subs</title></head>'
    '<body><outline text="YouTube"><outline text="Rick, A." title="Rick, A." type="rss" '
    f'xmlUrl="https://www.youtube.com/feeds/videos.xml?channel_id={RICK}"/>'
    '<outline text="Blog" type="rss" xmlUrl="https://example.com/feed.xml"/>'
    "</outline></body></opml>"
)

# (format, file content, rows as (row number, channel as written, name, email, extra))
FORMATS = [
    (
        "csv",
        BOM + b'Name,EMAIL,Type,Channel_URL,Notes\r\n"Doe, John",j@x.com,FF-Ti #4,'
        b"https://youtube.com/@johndoe,met in 2024\r\nJane,jane@x.com,,youtube.com/c/jane,\r\n",
        [
            (2, "https://youtube.com/@johndoe", "Doe, John", "j@x.com", {"Notes": "met in 2024"}),
            (3, "youtube.com/c/jane", "Jane", "jane@x.com", {"Notes": ""}),
        ],
    ),
    (
        "takeout",
        BOM
        + f"Channel Id,Channel Url,Channel Title\r\n{RICK},http://www.youtube.com/channel/"
        f'{RICK},"Rick, Astley"\r\n'.encode(),
        [(2, RICK, "Rick, Astley", "", {"Channel Url": f"http://www.youtube.com/channel/{RICK}"})],
    ),
    (
        "json",
        BOM
        + json.dumps(
            {
                "channels": [
                    {"name": "J", "email": "j@x.com", "type": "t", "channel_url": "@j", "age": 3}
                ],
                "settings": {"quality": "720p", "skip_existing": False},
            }
        ).encode(),
        [(1, "@j", "J", "j@x.com", {"age": 3})],
    ),
    (
        "json",
        b'["@first", {"Channel_URL": "@second", "Name": "Sec, Ond"}]\r\n',
        [(1, "@first", "", "", {}), (2, "@second", "Sec, Ond", "", {})],
    ),
    (
        "text",
        BOM + b"# my channels\r\n@one\r\n\r\n  youtube.com/@two  \r\n# end\r\n",
        [(2, "@one", "", "", {}), (4, "youtube.com/@two", "", "", {})],
    ),
    ("opml", BOM + OPML.encode(), [(1, RICK, "Rick, A.", "", {})]),
]


@pytest.mark.parametrize(("fmt", "content", "expected"), FORMATS, ids=[f[0] for f in FORMATS])
def test_each_format_is_detected_and_read(fmt, content, expected):
    parsed = parse_list(content)

    assert parsed.format == fmt
    readable = [r for r in parsed.rows if not r.error]
    assert [(r.number, r.channel, r.name, r.email, r.extra) for r in readable] == expected


def test_a_named_format_wins_over_detection():
    # One column named like a channel reads as CSV; named "text", its header is a row.
    assert parse_list("channel\n@a\n").rows[0].channel == "@a"
    assert [r.channel for r in parse_list("channel\n@a\n", "text").rows] == ["channel", "@a"]


def test_the_json_settings_prefill_the_batch_options():
    parsed = parse_list(FORMATS[2][1])
    assert parsed.settings == {"quality": "720p", "skip_existing": False}


def test_an_opml_feed_of_another_site_is_a_row_error():
    rows = parse_list(OPML).rows
    assert "not a YouTube channel" in rows[1].error and "example.com/feed.xml" in rows[1].error


# (content, words the whole-file refusal says)
REFUSALS = [
    (b"", "empty"),
    (BOM + b"\r\n  \r\n", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "PNG image"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG image"),
    (b"some\x00binary\x00stuff", "binary file"),
    (b"name,channel\n\xff\xfe bad", "not UTF-8"),
    (b"Nom,Courriel,Cha\xc3\xaene\nJean,j@x.fr,@jean\n", "Columns found: Nom, Courriel, Chaîne"),
    (b'{"people": []}', 'must be {"channels"'),
    (b'{"channels": {"a": 1}}', 'must be {"channels"'),
    (b'[{"channels": []}, 3]\n{"x": 1}', "cannot be read"),
    (b'{"channels": [', "cannot be read"),
    (b"[" * 100_000, "nested too deeply"),
    (b"<opml><body><outline", "not valid XML"),
    (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><opml><body>'
        b'<outline xmlUrl="https://www.youtube.com/feeds/videos.xml?channel_id=UC1">&a;</outline>'
        b"</body></opml>",
        "entities",
    ),
    (b"<html><body>hi</body></html>", "not OPML"),
    (b"# only comments\n\n", "no channel"),
]


@pytest.mark.parametrize(("content", "words"), REFUSALS, ids=lambda v: str(v)[:30])
def test_a_list_nothing_can_be_read_from_is_refused_with_a_clear_message(content, words):
    with pytest.raises(InvalidList) as refused:
        parse_list(content)
    assert words in str(refused.value)


def test_json_named_but_not_the_plans_shape_is_refused():
    with pytest.raises(InvalidList, match=re.escape('must be {"channels"')):
        parse_list('"just a string"', "json")


def test_the_header_refusal_names_the_columns_needed():
    with pytest.raises(InvalidList) as refused:
        parse_list("person name,mail\nJo,jo@x.com\n")
    message = str(refused.value)
    assert "Columns found: person name, mail" in message
    assert "name, email, type, channel_url" in message


def test_a_list_of_10001_rows_is_refused_and_10000_accepted():
    rows = "".join(f"@channel{n}\n" for n in range(10_000))
    assert len(parse_list(rows).rows) == 10_000
    with pytest.raises(InvalidList, match="10,001 rows: at most 10,000"):
        parse_list(rows + "@one_more\n")


def test_a_list_over_the_size_limit_is_refused(settings):
    settings.CHIRP_LIST_MAX_BYTES = 2048
    with pytest.raises(InvalidList, match="at most 2,048 bytes"):
        parse_list("@channel\n" * 300)


def test_malformed_csv_rows_are_row_errors_and_the_rest_stays_usable():
    content = (
        "name,email,channel_url\n"
        "Ann,ann@x.com,@ann,surplus\n"  # too many cells
        '"Bea,bea@x.com,@bea\n'  # a quote never closed
        "Cy,cy@x.com,@cy\n"
    )
    rows = parse_list(content).rows

    assert [r.number for r in rows] == [2, 3, 4]
    assert "4 cells but the header has 3 columns" in rows[0].error
    assert "never closed" in rows[1].error and "Bea" in rows[1].error
    assert (rows[2].channel, rows[2].name, rows[2].error) == ("@cy", "Cy", "")


@pytest.mark.django_db
def test_the_preview_gives_each_row_its_outcome(alice, bob, make_channel):
    mine = make_channel(alice, handle="@mine", title="Mine")
    make_channel(bob, handle="@bobs", title="Bob's")  # only bob sees it
    content = (
        "name,email,type,channel_url\n"
        "A,a@x.com,t1,@NewOne\n"
        "B,not-an-email,t1,https://www.youtube.com/@mine\n"
        "C,c@x.com,t2,youtube.com/@newone/videos\n"
        "D,d@x.com,t2,@bobs\n"
        "E,e@x.com,t2,https://vimeo.com/someone\n"
        f"F,f@x.com,t2,youtube.com/channel/{mine.youtube_id}\n"
    )
    preview = preview_list(parse_list(content), alice)

    outcomes = [(r.row.number, r.outcome, r.message) for r in preview.rows]
    assert outcomes[0] == (2, Outcome.NEW, "")
    assert outcomes[1][:2] == (3, Outcome.EXISTING)
    assert outcomes[2] == (4, Outcome.DUPLICATE, "duplicate of row 2")
    assert outcomes[3][:2] == (5, Outcome.NEW)  # bob's channel is not disclosed to alice
    assert outcomes[4][:2] == (6, Outcome.INVALID)
    assert "Only YouTube links" in outcomes[4][2] and "vimeo.com/someone" in outcomes[4][2]
    assert outcomes[5][:2] == (7, Outcome.EXISTING)  # by its channel ID
    assert preview.rows[1].channel == mine
    assert preview.rows[1].warnings == ["“not-an-email” is not an email address (kept as written)."]
    assert preview.rows[1].row.email == "not-an-email"
    assert preview.counts == {
        "total": 6,
        "new": 2,
        "existing": 2,
        "followed": 0,
        "duplicate": 1,
        "invalid": 1,
        "flagged": 1,
    }


@pytest.mark.django_db
def test_a_channel_i_follow_is_already_followed(alice, bob, make_channel):
    from imports.models import Follow

    followed = make_channel(bob, handle="@followed", title="Followed")
    make_channel(alice, handle="@imported", title="Imported")
    Follow.start(alice, followed)  # alice sees it only by following it

    preview = preview_list(parse_list("@followed\n@imported\n"), alice)

    assert [r.outcome for r in preview.rows] == [Outcome.FOLLOWED, Outcome.EXISTING]
    assert preview.counts["followed"] == 1
    # Bob imported it but does not follow it: for him it is only "already in your channels".
    assert preview_list(parse_list("@followed\n"), bob).rows[0].outcome == Outcome.EXISTING


@pytest.mark.django_db
def test_the_preview_does_not_ask_youtube(alice, fake_youtube):
    preview_list(parse_list("@one\n@two\nyoutube.com/watch?v=dQw4w9WgXcQ\n"), alice)
    assert fake_youtube.requests == []


# --- The page -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_page_previews_an_uploaded_file_with_everything_escaped(alice_client, alice):
    from django.core.files.uploadedfile import SimpleUploadedFile

    bait = (
        "name,email,type,channel_url\n"
        '"<script>alert(1)</script>","<img src=x onerror=alert(2)>@x.com",t,@fine\n'
        '"Ok",ok@x.com,t,"<b>youtube.com/@bad handle</b>"\n'
    )
    upload = SimpleUploadedFile("people.csv", bait.encode(), content_type="text/csv")

    response = alice_client.post("/channels/lists/", {"file": upload, "text": "", "format": ""})

    assert response.status_code == 200
    html = response.content.decode()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(2)&gt;@x.com" in html
    assert "<b>youtube.com" not in html and "&lt;b&gt;youtube.com/@bad handle" in html
    assert 'id="list-row-2"' in html and 'id="list-row-3"' in html
    assert 'data-count="invalid">1<' in html and 'data-count="flagged">1<' in html
    assert "is not an email address" in html


@pytest.mark.django_db
def test_the_page_previews_pasted_text_and_shows_a_refusal(alice_client, alice, make_channel):
    make_channel(alice, handle="@mine", title="Mine")

    html = alice_client.post("/channels/lists/", {"text": "@mine\n@new\n@new\n"}).content.decode()
    assert 'data-count="existing">1<' in html and 'data-count="duplicate">1<' in html
    assert "Duplicate of row 2" in html

    html = alice_client.post("/channels/lists/", {"text": "   \n"}).content.decode()
    assert "Choose a file, or paste a list of channels." in html and "list-preview" not in html
    assert alice_client.get("/channels/lists/").status_code == 200
    assert 'href="/channels/lists/"' in alice_client.get("/channels/").content.decode()
