"""Channel lists: read a list of channels (and the people behind them) in whatever format a
person has it, and preview what Chirp understood, before anything is fetched.

One parser and one preview serve every caller: the "Import a list" page, the API
(`POST /api/channels/lists`) and `manage.py import_channels`.

    parse_list(data, format=None) -> ChannelList   (raises InvalidList when nothing is readable)
    preview_list(channel_list, user) -> Preview      (no request to YouTube)

A row that cannot be used carries its own error; the rest of the list stays usable. Row numbers
are what a person finds in their file: the line a CSV record or a text line starts on (a CSV's
header is line 1), and the position of an entry in a JSON list or an OPML file.
"""

from __future__ import annotations

import csv
import json
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.text import Truncator

from imports.youtube import ChannelRef, InvalidChannelInput, parse_channel_input

FORMATS = {
    "csv": "CSV",
    "takeout": "Google Takeout subscriptions",
    "json": "JSON",
    "text": "Text (one channel per line)",
    "opml": "OPML",
}
# The columns the plan's CSV has, and the other names a column of that meaning goes by
# (matched after lower-casing and turning spaces and dashes into underscores).
NEEDED_COLUMNS = ["name", "email", "type", "channel_url"]
COLUMN_ALIASES = {
    "channel_url": "channel_url",
    "channel": "channel_url",
    "url": "channel_url",
    "channel_id": "channel_url",
    "handle": "channel_url",
    "youtube": "channel_url",
    "youtube_url": "channel_url",
    "name": "name",
    "person": "name",
    "channel_title": "name",  # Google Takeout's subscriptions.csv
    "email": "email",
    "e_mail": "email",
    "type": "type",
}
PERSON_FIELDS = ("name", "email", "type")
NAME_MAX, EMAIL_MAX, TYPE_MAX = 255, 254, 100
# What an uploaded file that is not a list starts with, to say what it is instead.
_MAGIC = [
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"RIFF", "a WebP image or other media file"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or a spreadsheet in .xlsx: save it as CSV)"),
    (b"\xd0\xcf\x11\xe0", "an old Excel or Word document (save it as CSV)"),
]
_SHOWN = 80  # characters of offending text quoted back in a message


class InvalidList(ValueError):
    """Nothing usable could be read from the list; str() says why, for a person."""


@dataclass
class ListRow:
    """One entry of a list, as written (nothing normalised yet)."""

    number: int
    channel: str = ""
    name: str = ""
    email: str = ""
    type: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    error: str = ""  # why the entry itself could not be read (bad CSV record, bad JSON entry)

    def person(self) -> dict[str, Any]:
        return {"name": self.name, "email": self.email, "type": self.type, "extra": self.extra}


@dataclass
class ChannelList:
    format: str
    rows: list[ListRow]
    columns: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def shown(text: str) -> str:
    """Offending text quoted in a message, cut short (templates escape it, never mark it safe)."""
    return Truncator(text.replace("\r", " ").replace("\n", " ")).chars(_SHOWN)


# --- Reading ------------------------------------------------------------------------------------


def decode(data: bytes | str) -> str:
    """The list's text: UTF-8 with or without a BOM, limited in size. Raises InvalidList."""
    limit = settings.CHIRP_LIST_MAX_BYTES
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > limit:
        raise InvalidList(
            f"The list is {len(raw):,} bytes: at most {limit:,} bytes are accepted. "
            "Split it into smaller lists."
        )
    for magic, what in _MAGIC:
        if raw.startswith(magic):
            raise InvalidList(
                f"This file is {what}, not a list of channels: upload a CSV, JSON, text or "
                "OPML file."
            )
    if b"\x00" in raw[:8192]:
        raise InvalidList(
            "This is a binary file, not a list of channels: upload a CSV, JSON, text or OPML file."
        )
    try:
        text = raw.decode("utf-8-sig") if isinstance(data, bytes) else data.lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        raise InvalidList(
            f"The list is not UTF-8 text (byte {exc.start + 1:,} cannot be read): save it as "
            "UTF-8 (in a spreadsheet: “CSV UTF-8”)."
        ) from None
    if not text.strip():
        raise InvalidList("The list is empty: it has no channel in it.")
    return text


def detect_format(text: str) -> str:
    """The format of a list, from its content."""
    start = text.lstrip()
    if start[:1] in ("{", "["):
        return "json"
    if start[:1] == "<":
        return "opml"
    first = next((line for line in start.splitlines() if line.strip()), "")
    header = [_column_key(cell) for cell in next(csv.reader([first]), [])]
    if header[:2] == ["channel_id", "channel_url"]:
        return "takeout"
    if len(header) > 1 or (header and header[0] in COLUMN_ALIASES):
        return "csv"
    return "text"


def parse_list(data: bytes | str, format: str | None = None) -> ChannelList:
    """Read a list (bytes as uploaded, or pasted text) in `format`, or the format its content
    shows. Raises InvalidList when nothing can be read from it."""
    text = decode(data)
    format = format or detect_format(text)
    if format not in FORMATS:
        raise InvalidList(f"Unknown format “{shown(format)}”: use one of {', '.join(FORMATS)}.")
    parsed = _PARSERS[format](text)
    parsed.format = format
    return _within_limits(parsed)


def parse_list_json(data: Any) -> ChannelList:
    """A list in the plan's JSON shape, already decoded (the API's JSON body carries one)."""
    return _within_limits(channel_list_from_json(data))


def _within_limits(parsed: ChannelList) -> ChannelList:
    limit = settings.CHIRP_LIST_MAX_ROWS
    if len(parsed.rows) > limit:
        raise InvalidList(
            f"The list has {len(parsed.rows):,} rows: at most {limit:,} are accepted. "
            "Split it into smaller lists."
        )
    if not parsed.rows:
        raise InvalidList("The list has no channel in it.")
    return parsed


def _column_key(header: str) -> str:
    return re.sub(r"[\s-]+", "_", header.strip().lower())


def _lines_from(lines: list[str], start: int, position: list[int]) -> Iterator[str]:
    """The lines from `start`, recording in position[0] how many have been handed out, so the
    caller knows on which line a CSV record starts."""
    for index in range(start, len(lines)):
        position[0] = index + 1
        yield lines[index]


def _csv_records(lines: list[str], start: int) -> Iterator[tuple[int, list[str] | None, str]]:
    """(line number, cells or None, error) for each record from line index `start`. A record
    the csv module refuses (a quote never closed) is reported on the line where it starts, and
    reading resumes on the next line, so one stray quote does not swallow the rest of a list."""
    position = [start]
    while position[0] < len(lines):
        first = position[0]
        reader = csv.reader(_lines_from(lines, first, position), strict=True)
        record_start = first
        try:
            for cells in reader:
                yield record_start + 1, cells, ""
                record_start = position[0]
            return
        except csv.Error as exc:
            line = lines[record_start]
            message = str(exc)
            if "EOF" in message or "end of data" in message or "newline" in message:
                why = "a quote opened on this line is never closed"
            else:
                why = f"the line is not valid CSV ({message})"
            yield record_start + 1, None, f"{why}: “{shown(line)}”"
            position[0] = record_start + 1


def _parse_csv(text: str) -> ChannelList:
    lines = text.splitlines(keepends=True)
    records = _csv_records(lines, 0)
    header_line, header, problem = next(records, (1, None, ""))
    while header is not None and not any(cell.strip() for cell in header):
        header_line, header, problem = next(records, (header_line, None, ""))
    if header is None:
        raise InvalidList(f"The CSV header cannot be read: {problem or 'it is missing'}.")
    keys = [COLUMN_ALIASES.get(_column_key(cell)) for cell in header]
    found = [cell.strip() for cell in header]
    if "channel_url" not in keys:
        raise InvalidList(
            f"The CSV header has no channel column. Columns found: {', '.join(found)}. "
            f"Columns needed: {', '.join(NEEDED_COLUMNS)} (channel_url is required; the names "
            "are matched in any case, and extra columns are kept)."
        )
    # The first column of a meaning wins (Takeout has both Channel Id and Channel Url).
    used: set[str] = set()
    columns: list[str | None] = []
    for key in keys:
        columns.append(key if key and key not in used else None)
        used.add(key or "")
    rows: list[ListRow] = []
    for number, cells, error in records:
        if cells is None:
            rows.append(ListRow(number=number, error=error))
            continue
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(header):
            rows.append(
                ListRow(
                    number=number,
                    error=(
                        f"this row has {len(cells)} cells but the header has {len(header)} "
                        "columns (a comma inside a name needs quotes around the name): "
                        f"“{shown(','.join(cells))}”"
                    ),
                )
            )
            continue
        row = ListRow(number=number)
        for index, cell in enumerate(cells):
            key = columns[index]
            if key == "channel_url":
                row.channel = cell.strip()
            elif key in PERSON_FIELDS:
                setattr(row, key, cell.strip())
            elif key is None and found[index]:
                row.extra[found[index]] = cell
        rows.append(row)
    return ChannelList(format="csv", rows=rows, columns=found)


def _parse_text(text: str) -> ChannelList:
    rows = []
    for index, line in enumerate(text.splitlines(), start=1):
        value = line.strip()
        if value and not value.startswith("#"):
            rows.append(ListRow(number=index, channel=value))
    return ChannelList(format="text", rows=rows)


_JSON_SHAPE = (
    'A JSON list must be {"channels": [{"name", "email", "type", "channel_url"}, …], '
    '"settings": {"quality", "skip_existing"}}, or a list of such objects or of channel links.'
)


def _parse_json(text: str) -> ChannelList:
    try:
        data = json.loads(text)
    except RecursionError:
        raise InvalidList("The JSON is nested too deeply.") from None
    except ValueError as exc:
        raise InvalidList(f"The JSON cannot be read ({exc}).") from None
    return channel_list_from_json(data)


def channel_list_from_json(data: Any) -> ChannelList:
    list_settings: dict[str, Any] = {}
    warnings: list[str] = []
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"channels", "settings"})
        if not isinstance(data.get("channels"), list) or unknown:
            raise InvalidList(
                _JSON_SHAPE
                + (f" Unexpected keys: {shown(', '.join(map(str, unknown)))}." if unknown else "")
            )
        list_settings, warnings = _json_settings(data.get("settings"))
        entries = data["channels"]
    elif isinstance(data, list):
        entries = data
    else:
        raise InvalidList(_JSON_SHAPE)
    rows = [_json_row(number, entry) for number, entry in enumerate(entries, start=1)]
    return ChannelList(format="json", rows=rows, settings=list_settings, warnings=warnings)


def _json_row(number: int, entry: Any) -> ListRow:
    if isinstance(entry, str):
        return ListRow(number=number, channel=entry.strip())
    if not isinstance(entry, dict):
        return ListRow(
            number=number,
            error="this entry is neither an object nor a channel link: "
            f"“{shown(json.dumps(entry))}”",
        )
    row = ListRow(number=number)
    for key, value in entry.items():
        meaning = COLUMN_ALIASES.get(_column_key(str(key)))
        if (meaning == "channel_url" and not row.channel) or meaning in PERSON_FIELDS:
            if not isinstance(value, str):
                row.error = f"{key} must be text: “{shown(json.dumps(value))}”"
                continue
            setattr(row, "channel" if meaning == "channel_url" else meaning, value.strip())
        else:
            row.extra[str(key)] = value
    if not row.channel and not row.error:
        row.error = f"this entry has no channel_url: “{shown(json.dumps(entry))}”"
    return row


def _json_settings(value: Any) -> tuple[dict[str, Any], list[str]]:
    """The JSON's settings that pre-fill the batch's options; what is wrong is a warning."""
    if value is None:
        return {}, []
    if not isinstance(value, dict):
        return {}, ["The settings must be an object ({“quality”, “skip_existing”}): ignored."]
    found, warnings = {}, []
    quality = value.get("quality")
    if isinstance(quality, str) and quality.strip():
        found["quality"] = quality.strip()[:20]
    elif quality is not None:
        warnings.append("settings.quality must be text such as “720p”: ignored.")
    skip = value.get("skip_existing")
    if isinstance(skip, bool):
        found["skip_existing"] = skip
    elif skip is not None:
        warnings.append("settings.skip_existing must be true or false: ignored.")
    return found, warnings


def _parse_opml(text: str) -> ChannelList:
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, fromstring

    try:
        root = fromstring(text.encode("utf-8"))
    except DefusedXmlException:
        raise InvalidList(
            "The OPML declares entities or a document type, which Chirp does not read."
        ) from None
    except ParseError as exc:
        raise InvalidList(f"The OPML is not valid XML ({exc}).") from None
    if root.tag.lower() != "opml":
        raise InvalidList(f"This XML is not OPML (its root is <{shown(root.tag)}>).")
    rows = []
    for number, outline in enumerate((o for o in root.iter("outline") if o.get("xmlUrl")), start=1):
        feed = outline.get("xmlUrl", "")
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(feed).query)
        name = outline.get("title") or outline.get("text") or ""
        channel_ids = query.get("channel_id")
        if not channel_ids:
            rows.append(
                ListRow(
                    number=number,
                    name=name.strip(),
                    error=f"this feed is not a YouTube channel's (no channel_id): “{shown(feed)}”",
                )
            )
            continue
        rows.append(ListRow(number=number, channel=channel_ids[0].strip(), name=name.strip()))
    return ChannelList(format="opml", rows=rows)


_PARSERS = {
    "csv": _parse_csv,
    "takeout": _parse_csv,
    "json": _parse_json,
    "text": _parse_text,
    "opml": _parse_opml,
}


# --- Preview ------------------------------------------------------------------------------------


class Outcome:
    NEW = "new"
    DUPLICATE = "duplicate"
    EXISTING = "existing"
    FOLLOWED = "followed"
    INVALID = "invalid"

    LABELS = {
        NEW: "New",
        DUPLICATE: "Duplicate",
        EXISTING: "Already in your channels",
        FOLLOWED: "Already followed",
        INVALID: "Invalid",
    }


@dataclass
class RowPreview:
    row: ListRow
    outcome: str
    ref: ChannelRef | None = None
    message: str = ""
    duplicate_of: int | None = None
    channel: Any = None  # the Channel the user already sees, if any
    warnings: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return Outcome.LABELS[self.outcome]

    def as_json(self) -> dict[str, Any]:
        return {
            "row": self.row.number,
            "outcome": self.outcome,
            "channel": self.ref.url if self.ref else None,
            "input": self.row.channel,
            "name": self.row.name,
            "email": self.row.email,
            "type": self.row.type,
            "extra": self.row.extra,
            "message": self.message,
            "duplicateOf": self.duplicate_of,
            "channelId": self.channel.pk if self.channel is not None else None,
            "warnings": self.warnings,
        }


@dataclass
class Preview:
    format: str
    rows: list[RowPreview]
    columns: list[str]
    settings: dict[str, Any]
    warnings: list[str]

    @property
    def counts(self) -> dict[str, int]:
        counts = {"total": len(self.rows), **dict.fromkeys(Outcome.LABELS, 0), "flagged": 0}
        for row in self.rows:
            counts[row.outcome] += 1
            counts["flagged"] += bool(row.warnings)
        return counts

    @property
    def format_label(self) -> str:
        return FORMATS[self.format]

    def as_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "columns": self.columns,
            "counts": self.counts,
            "settings": self.settings,
            "warnings": self.warnings,
            "rows": [row.as_json() for row in self.rows],
        }


def followed_channel_pks(user: Any) -> set[int]:
    """The channels `user` follows (for the "already followed" outcome: a followed channel is
    one they see, so the row's channel is found among the known ones first)."""
    from imports.models import Follow

    return set(Follow.objects.filter(user=user).values_list("channel_id", flat=True))


class _KnownChannels:
    """The channels `user` already sees, looked up the way Channel.known_for does, from three
    queries for the whole list rather than three per row."""

    def __init__(self, user: Any) -> None:
        from imports.models import Channel, ImportJob

        seen = Channel.objects.visible_to(user).only("pk", "youtube_id", "handle", "title")
        channels = {c.pk: c for c in seen}
        self.by_id = {c.youtube_id: c for c in channels.values()}
        self.by_handle = {c.handle.lower(): c for c in channels.values() if c.handle}
        self.by_url: dict[str, Any] = {}
        previous = (
            ImportJob.objects.filter(owner=user, channel__in=list(channels))
            .order_by("created")
            .values_list("channel_url", "channel")
        )
        for url, pk in previous:  # the latest import of a url wins
            self.by_url[url] = channels[pk]

    def get(self, ref: ChannelRef) -> Any:
        if ref.channel_id:
            return self.by_id.get(ref.channel_id)
        if ref.url in self.by_url:
            return self.by_url[ref.url]
        if ref.handle:
            return self.by_handle.get(ref.handle.lower())
        return None


def _person_warnings(row: ListRow) -> tuple[list[str], str]:
    """(warnings, error) about the row's person: an email that is not one is kept as written
    and flagged; a field longer than Chirp keeps makes the row invalid."""
    for value, limit, what in (
        (row.name, NAME_MAX, "name"),
        (row.email, EMAIL_MAX, "email"),
        (row.type, TYPE_MAX, "type"),
    ):
        if len(value) > limit:
            return [], f"the {what} is longer than {limit} characters: “{shown(value)}”"
    warnings = []
    if row.email:
        try:
            validate_email(row.email)
        except ValidationError:
            warnings.append(f"“{shown(row.email)}” is not an email address (kept as written).")
    return warnings, ""


def preview_list(channel_list: ChannelList, user: Any) -> Preview:
    """Each row's outcome for `user`, from the database alone (no request to YouTube)."""
    known = _KnownChannels(user)
    followed = followed_channel_pks(user)
    first_row: dict[str, int] = {}
    rows = []
    for row in channel_list.rows:
        if row.error:
            rows.append(RowPreview(row, Outcome.INVALID, message=row.error))
            continue
        warnings, error = _person_warnings(row)
        if error:
            rows.append(RowPreview(row, Outcome.INVALID, message=error))
            continue
        if not row.channel:
            rows.append(RowPreview(row, Outcome.INVALID, message="no channel in this row"))
            continue
        try:
            ref = parse_channel_input(row.channel)
        except InvalidChannelInput as exc:
            message = f"{exc} “{shown(row.channel)}”"
            rows.append(RowPreview(row, Outcome.INVALID, message=message, warnings=warnings))
            continue
        preview = RowPreview(row, Outcome.NEW, ref=ref, warnings=warnings)
        if ref.url in first_row:
            preview.outcome = Outcome.DUPLICATE
            preview.duplicate_of = first_row[ref.url]
            preview.message = f"duplicate of row {preview.duplicate_of}"
        else:
            first_row[ref.url] = row.number
            preview.channel = known.get(ref)
            if preview.channel is not None and preview.channel.pk in followed:
                preview.outcome = Outcome.FOLLOWED
            elif preview.channel is not None:
                preview.outcome = Outcome.EXISTING
        rows.append(preview)
    return Preview(
        format=channel_list.format,
        rows=rows,
        columns=channel_list.columns,
        settings=channel_list.settings,
        warnings=channel_list.warnings,
    )
