"""`manage.py import_channels FILE --user NAME --dry-run`: a channel list's preview in the
terminal, from the same parser and preview as the page and the API (imports/lists.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from imports import lists


class Command(BaseCommand):
    help = "Preview a list of channels (CSV, JSON, text, Takeout or OPML) for a user."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The list; - reads it from standard input.")
        parser.add_argument("--user", required=True, help="Whose list it is (username).")
        parser.add_argument("--format", choices=sorted(lists.FORMATS), help="Default: detected.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Show what Chirp understood; fetch nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["dry_run"]:
            # Running the list as a batch comes with the batch import (issue 13, next step).
            raise CommandError("Starting a batch is not available yet: use --dry-run to preview.")
        user_model = get_user_model()
        try:
            user = user_model.objects.get(**{user_model.USERNAME_FIELD: options["user"]})
        except user_model.DoesNotExist:
            raise CommandError(f"No user named {options['user']!r}.") from None
        data = self._read(options["file"])
        try:
            channel_list = lists.parse_list(data, options["format"])
        except lists.InvalidList as exc:
            raise CommandError(str(exc)) from None
        self._print(lists.preview_list(channel_list, user))

    def _read(self, name: str) -> bytes:
        limit = settings.CHIRP_LIST_MAX_BYTES + 1  # one byte more: parse_list names the limit
        if name == "-":
            return sys.stdin.buffer.read(limit)
        try:
            with Path(name).open("rb") as file:
                return file.read(limit)
        except OSError as exc:
            raise CommandError(f"Cannot read {name}: {exc.strerror}.") from None

    def _print(self, preview: lists.Preview) -> None:
        counts = preview.counts
        self.stdout.write(f"Format: {preview.format_label}")
        self.stdout.write(
            f"{counts['total']} rows: {counts['new']} new, {counts['existing']} already in your "
            f"channels, {counts['followed']} already followed, {counts['duplicate']} duplicates, "
            f"{counts['invalid']} invalid, {counts['flagged']} flagged"
        )
        for key, value in preview.settings.items():
            self.stdout.write(f"Setting from the list: {key} = {value}")
        for warning in preview.warnings:
            self.stdout.write(self.style.WARNING(warning))
        for item in preview.rows:
            channel = item.ref.url if item.ref else item.row.channel
            person = " · ".join(v for v in (item.row.name, item.row.email, item.row.type) if v)
            line = f"row {item.row.number}: {item.label}"
            line += f" — {channel}" if channel else ""
            line += f" — {person}" if person else ""
            line += f" — {item.message}" if item.message else ""
            style = self.style.ERROR if item.outcome == lists.Outcome.INVALID else str
            self.stdout.write(style(line))
            for warning in item.warnings:
                self.stdout.write(self.style.WARNING(f"  {warning}"))
