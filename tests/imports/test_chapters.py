"""imports/chapters.py: YouTube's chapter rules, from metadata or a description."""

from __future__ import annotations

import pytest

from imports.chapters import Chapter, extract_chapters, from_description, parse_timestamp


def starts_and_titles(chapters):
    return [(c.start, c.title) for c in chapters]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0:00", 0), ("1:05", 65), ("12:30", 750), ("1:02:03", 3723), ("00:00:09", 9), ("1:75", None)],
)
def test_parse_timestamp(text, seconds):
    assert parse_timestamp(text) == seconds


def test_the_three_usual_forms():
    description = "My video.\n\n0:00 Intro\n(12:30) Topic\n1:02:03 - Part two\n"

    chapters = from_description(description, duration=4000)

    assert chapters == [
        Chapter(0.0, 750.0, "Intro"),
        Chapter(750.0, 3723.0, "Topic"),
        Chapter(3723.0, 4000.0, "Part two"),
    ]


@pytest.mark.parametrize(
    "description",
    [
        "[0:00] Intro\n[1:00] Middle\n[2:00] End",
        "• 00:00 \u2013 Intro\n• 01:00 \u2013 Middle\n• 02:00 \u2014 End",
        "0:00: Intro\n1:00 | Middle\n2:00 · End",
        "Intro 0:00\nMiddle - 1:00\nEnd (2:00)",
    ],
)
def test_brackets_bullets_separators_and_trailing_times(description):
    assert starts_and_titles(from_description(description)) == [
        (0.0, "Intro"),
        (60.0, "Middle"),
        (120.0, "End"),
    ]


def test_the_last_chapter_ends_with_the_video_or_is_open():
    description = "0:00 A\n1:00 B\n2:00 C"

    assert from_description(description, duration=300)[-1].end == 300
    assert from_description(description)[-1].end is None


@pytest.mark.parametrize(
    "description",
    [
        "0:00 Intro\n5:00 End",  # fewer than three
        "0:10 Intro\n1:00 Middle\n2:00 End",  # does not start at 0:00
        "0:00 Intro\n2:00 Middle\n1:00 End",  # goes back in time
        "0:00 Intro\n1:00 Middle\n1:00 Same time",  # does not move forward
        "0:00 Intro\n1:00 Middle\n9:00 After the end",  # past the video's end (5 min)
        "Nothing here at 1:00 or 2:00.",
        "",
    ],
)
def test_lists_youtube_would_not_show(description):
    assert from_description(description, duration=300) == []


def test_timestamps_above_the_list_are_ignored():
    description = "Recorded live, see 5:00 for the fun part\n3:00 Teaser\n0:00 A\n1:00 B\n2:00 C"

    assert [c.title for c in from_description(description)] == ["A", "B", "C"]


def test_metadata_chapters_win_over_the_description():
    metadata = [
        {"start_time": 0.0, "title": "One"},
        {"start_time": 10.5, "title": "Two"},
        {"start_time": 20.0, "title": "Three"},
    ]

    chapters = extract_chapters(
        chapters=metadata, description="0:00 A\n1:00 B\n2:00 C", duration=30
    )

    assert starts_and_titles(chapters) == [(0.0, "One"), (10.5, "Two"), (20.0, "Three")]
    assert [c.end for c in chapters] == [10.5, 20.0, 30.0]


def test_metadata_breaking_the_rules_falls_back_to_the_description():
    # yt-dlp reads description chapters without YouTube's rules: two are not chapters.
    metadata = [{"start_time": 0.0, "title": "One"}, {"start_time": 10.0, "title": "Two"}]

    chapters = extract_chapters(
        chapters=metadata, description="0:00 A\n1:00 B\n2:00 C", duration=300
    )

    assert [c.title for c in chapters] == ["A", "B", "C"]
