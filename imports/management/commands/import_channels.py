"""`manage.py import_channels FILE --user NAME [--dry-run] [options]`: a channel list's preview
in the terminal (--dry-run), or the list run as a batch: queued for the workers (`manage.py
qcluster` must be running), followed with a progress bar, and its per-row report printed at the
end. The same parser, preview and batch as the page and the API (imports/lists.py,
imports/models/lists.py). Exits 1 when the batch failed or was cancelled, or a row's import
failed (the report says which; the batch page retries them), and 130 when interrupted while
it watches (the batch goes on in the workers)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.template.defaultfilters import pluralize

from imports import lists
from imports.forms import BatchOptionsForm
from imports.models import ListBatch
from imports.models.following import QUALITIES

POLL_SECONDS = 0.5
BAR_WIDTH = 30


class Command(BaseCommand):
    help = "Preview a list of channels (CSV, JSON, text, Takeout or OPML) for a user."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The list; - reads it from standard input.")
        parser.add_argument("--user", required=True, help="Whose list it is (username).")
        parser.add_argument("--format", choices=sorted(lists.FORMATS), help="Default: detected.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Show what Chirp understood; fetch nothing."
        )
        parser.add_argument("--limit", type=int, help="A new channel's import takes at most this.")
        parser.add_argument("--since", help="Only videos published since (YYYY-MM-DD).")
        parser.add_argument("--quality", choices=QUALITIES, help="Media quality (default: none).")
        parser.add_argument("--follow", action="store_true", help="Follow the channels too.")
        parser.add_argument(
            "--no-skip-existing",
            action="store_true",
            help="Import every video again (default: skip the videos already imported).",
        )
        parser.add_argument(
            "--no-wait", action="store_true", help="Queue the batch and print its id; no wait."
        )

    def handle(self, *args: Any, **options: Any) -> None:
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
        preview = lists.preview_list(channel_list, user)
        if options["dry_run"]:
            self._print(preview)
            return
        batch = self._start(user, data, preview, options)
        self.stdout.write(f"Batch {batch.pk}: {batch.get_absolute_url()}")
        if options["no_wait"]:
            return
        try:
            batch = self._follow(batch)
        except KeyboardInterrupt:
            self.stdout.write("")
            raise CommandError(
                f"Stopped watching. The batch goes on in the workers: {batch.get_absolute_url()}",
                returncode=130,
            ) from None
        self._report(batch)
        if batch.status != "completed":
            raise CommandError(f"The batch {batch.get_status_display().lower()}.")
        if batch.failed:
            rows = pluralize(batch.failed, "row,rows")
            raise CommandError(
                f"{batch.failed} {rows} failed: retry {pluralize(batch.failed, 'it,them')} "
                f"from {batch.get_absolute_url()}"
            )

    def _start(self, user, data: bytes, preview: lists.Preview, options: dict) -> ListBatch:
        defaults = {"only_new": True, **ListBatch.options_from_settings(preview.settings)}
        values = {
            **defaults,
            "limit": options["limit"],
            "since": options["since"],
            "quality": options["quality"] or defaults.get("quality"),
            "follow": options["follow"],
        }
        if options["no_skip_existing"]:
            values["only_new"] = False
        form = BatchOptionsForm({k: v for k, v in values.items() if v is not None})
        if not form.is_valid():
            errors = " ".join(m for ms in form.errors.values() for m in ms)
            raise CommandError(errors)
        counts = preview.counts
        if not counts["total"] - counts["invalid"] - counts["duplicate"]:
            raise CommandError("Nothing in this list can be imported.")
        batch = ListBatch.draft(user, lists.decode(data), preview.format, name=self.file_name)
        batch.start(**form.cleaned_data)
        return batch

    def _follow(self, batch: ListBatch) -> ListBatch:
        """Wait for the batch to end, drawing a progress bar (on a terminal: in place)."""
        live = self.stdout.isatty()
        shown = None
        while True:
            batch.refresh_from_db()
            totals = batch.totals()
            filled = round(BAR_WIDTH * batch.bar_percent / 100)
            line = (
                f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {batch.processed}/{batch.total} "
                f"channels · {totals['imported']} videos · {batch.failed} failed"
                f" · {batch.get_status_display().lower()}"
            )
            if line != shown:
                # In place on a terminal, padded over the end of a longer line drawn before.
                drawn = f"\r{line:<{len(shown or '')}}" if live else line
                self.stdout.write(drawn, ending="" if live else "\n")
                self.stdout.flush()
                shown = line
            if batch.is_terminal:
                if live:
                    self.stdout.write("")
                return batch
            time.sleep(POLL_SECONDS)

    def _report(self, batch: ListBatch) -> None:
        self.stdout.write(batch.finished_summary())
        header = f"{'row':>5}  {'status':<10} {'videos':>6} {'failed':>6}  channel — person — note"
        self.stdout.write(header)
        for entry in batch.report():
            person = " · ".join(v for v in (entry["person"], entry["email"]) if v)
            line = (
                f"{entry['row']:>5}  {entry['status']:<10} {entry['videos_imported']:>6} "
                f"{entry['failed']:>6}  {entry['channel']}"
            )
            line += f" — {person}" if person else ""
            line += f" — {entry['message']}" if entry["message"] else ""
            self.stdout.write(line)

    def _read(self, name: str) -> bytes:
        self.file_name = "" if name == "-" else Path(name).name
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
