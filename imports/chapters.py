"""A video's chapters: YouTube's own (through yt-dlp's metadata), or its description's timestamps.

YouTube shows chapters only when the list starts at 0:00, has at least three entries and goes
forward in time. The same rules are applied to both sources, so Chirp never shows chapters that
YouTube would not (yt-dlp also reads chapters from descriptions, but without those rules).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

MIN_CHAPTERS = 3

_TIMESTAMP = r"(?:\d{1,2}:)?\d{1,2}:\d{2}"
_SEPARATOR = r"(?:\s*[-\u2013\u2014:|•·]\s*|\s+)"  # hyphen, en and em dashes...
# "0:00 Intro", "1:02:03 - Part", "(12:30) Topic", "[0:00] Intro", "• 0:00 Intro"
_LEADING = re.compile(
    rf"^\s*(?:[-*•·▶►]\s*)?[(\[]?(?P<ts>{_TIMESTAMP})[)\]]?{_SEPARATOR}(?P<title>\S.*?)\s*$"
)
# "Intro 0:00", "Part two - 1:02:03"
_TRAILING = re.compile(
    rf"^\s*(?:[-*•·▶►]\s*)?(?P<title>\S.*?){_SEPARATOR}[(\[]?(?P<ts>{_TIMESTAMP})[)\]]?\s*$"
)


@dataclass(frozen=True)
class Chapter:
    start: float
    end: float | None
    title: str


def parse_timestamp(text: str) -> int | None:
    """Seconds in "M:SS", "MM:SS" or "H:MM:SS"; None when a part is out of range."""
    parts = [int(part) for part in text.split(":")]
    if any(part >= 60 for part in parts[1:]):
        return None
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


def extract_chapters(
    *,
    chapters: Sequence[Mapping[str, Any]] | None = None,
    description: str = "",
    duration: float | None = None,
) -> list[Chapter]:
    """Chapters from yt-dlp's `chapters` if they follow YouTube's rules, else the description's."""
    return from_metadata(chapters, duration) or from_description(description, duration)


def from_metadata(
    chapters: Sequence[Mapping[str, Any]] | None, duration: float | None = None
) -> list[Chapter]:
    starts_and_titles = []
    for chapter in chapters or ():
        start = chapter.get("start_time")
        if start is None:
            return []
        starts_and_titles.append((float(start), str(chapter.get("title") or "").strip()))
    return _build(starts_and_titles, duration)


def from_description(description: str, duration: float | None = None) -> list[Chapter]:
    lines = (description or "").splitlines()
    for pattern in (_LEADING, _TRAILING):
        found = []
        for line in lines:
            match = pattern.match(line)
            if match is None:
                continue
            start = parse_timestamp(match["ts"])
            if start is not None:
                found.append((float(start), match["title"].strip()))
        # The list starts at the first 0:00; timestamps above it are something else.
        first = next((i for i, (start, _) in enumerate(found) if start == 0), None)
        if first is not None:
            return _build(found[first:], duration)
    return []


def _build(starts_and_titles: list[tuple[float, str]], duration: float | None) -> list[Chapter]:
    if len(starts_and_titles) < MIN_CHAPTERS or starts_and_titles[0][0] != 0:
        return []
    starts = [start for start, _ in starts_and_titles]
    if any(later <= earlier for earlier, later in pairwise(starts)):
        return []
    if duration is not None and starts[-1] >= duration:
        return []
    if not all(title for _, title in starts_and_titles):
        return []
    ends: list[float | None] = [*starts[1:], float(duration) if duration else None]
    return [
        Chapter(start=start, end=end, title=title)
        for (start, title), end in zip(starts_and_titles, ends, strict=True)
    ]
