"""`manage.py fetch_artwork [--channel ID]`: fetch and store the pictures missing from channels
and videos imported before Chirp kept artwork (avatars, banners, thumbnails), all of them now,
through the shared YouTube limiter: the same backfill as the "Fetch missing artwork" schedule
(imports/artwork.py), without its batch limit. Only channels someone sees; each picture is tried
once per run. Exits non-zero when YouTube asked Chirp to wait (run it again after the pause)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from imports import artwork
from imports.models import Channel

BATCH = 50  # pictures between two progress lines


class Command(BaseCommand):
    help = "Fetch the missing avatars, banners and thumbnails of the channels someone sees."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--channel", help="Only this channel: its number in Chirp or its YouTube ID (UC...)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        channel = self._channel(options["channel"]) if options["channel"] else None
        started = timezone.now()
        total = artwork.Backfill()
        while True:
            report = artwork.backfill(
                BATCH, channel_id=channel.pk if channel else None, tried_before=started
            )
            total.stored.update(report.stored)
            total.missing += report.missing
            total.pause = report.pause
            if report.tried:
                self.stdout.write(f"{total.tried} pictures tried…")
            if report.pause is not None or report.tried < BATCH:
                break
        self.stdout.write(str(total))
        if total.pause is not None:
            raise CommandError("YouTube asked Chirp to wait: run this again once the pause ends.")

    def _channel(self, value: str) -> Channel:
        channels = Channel.objects.all()
        found = (
            channels.filter(pk=int(value)) if value.isdigit() else channels.filter(youtube_id=value)
        ).first()
        if found is None:
            raise CommandError(f"No channel {value!r} in Chirp.")
        if not Channel.objects.seen_by_someone().filter(pk=found.pk).exists():
            raise CommandError(f"Nobody sees {found}: its pictures are not fetched.")
        return found
