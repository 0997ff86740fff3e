from __future__ import annotations

from django.contrib import admin, messages
from django.db import IntegrityError, models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import pluralize
from django.utils import timezone
from django.utils.formats import time_format
from django.utils.html import format_html
from django.utils.text import Truncator

from chirp.admin import JobAdminMixin
from chirp.jobs import IllegalTransition, ItemStatus
from imports.limiter import Limiter
from imports.models import (
    Channel,
    ChannelWatch,
    Follow,
    ImportJob,
    ImportJobItem,
    ListBatch,
    ListBatchRow,
    MediaFile,
    Person,
    PersonChannel,
    Video,
    WebSubSubscription,
)

HTTPS_URLS = {models.URLField: {"assume_scheme": "https"}}


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    formfield_overrides = HTTPS_URLS
    list_display = [
        "title",
        "handle",
        "youtube_id",
        "subscriber_count",
        "video_count",
        "last_imported",
    ]
    search_fields = ["title", "handle", "youtube_id"]
    # Pictures come from YouTube through the import's checks (imports/artwork.py), not uploads.
    readonly_fields = ["avatar", "banner", "created", "updated", "last_imported"]
    actions = ["remove_media"]

    @admin.action(description="Remove the stored media of the selected channels")
    def remove_media(self, request: HttpRequest, queryset: QuerySet[Channel]) -> None:
        removed = MediaFile.objects.filter(video__channel__in=list(queryset)).remove()
        messages.info(request, f"Removed {removed} stored file(s); their space is freed.")


@admin.register(Video)
class VideoAdmin(admin.ModelAdmin):
    formfield_overrides = HTTPS_URLS
    list_display = [
        "title",
        "channel",
        "stage",
        "progress",
        "transcript_source",
        "error_reason",
        "published",
    ]
    list_filter = ["stage", "transcript_source", "error_reason"]
    search_fields = ["title", "youtube_id"]
    list_select_related = ["channel"]
    raw_id_fields = ["channel"]
    # Where the pipeline is with a video is its to say (retry enrichment restarts it); the
    # transcript stays editable, and saving it rebuilds its search vector (the table's trigger).
    readonly_fields = [
        "stage", "progress", "transcript_source", "error_reason", "error", "thumbnail",
        "created", "updated", "enriched",
    ]  # fmt: skip
    actions = ["retry_enrichment", "remove_media"]

    @admin.action(description="Remove the stored media of the selected videos")
    def remove_media(self, request: HttpRequest, queryset: QuerySet[Video]) -> None:
        removed = MediaFile.objects.filter(video__in=list(queryset)).remove()
        messages.info(request, f"Removed {removed} stored file(s); their space is freed.")

    @admin.action(description="Retry enrichment of the selected failed videos")
    def retry_enrichment(self, request: HttpRequest, queryset: QuerySet[Video]) -> None:
        # Read the selection once: a retried video leaves the "failed" stage, so a queryset
        # filtered by stage (the admin's filter) would count fewer rows afterwards.
        selected = list(queryset)
        retried = 0
        for video in selected:
            if video.stage == Video.Stage.COMPLETE:
                continue
            item = (
                ImportJobItem.objects.filter(video=video, status=ItemStatus.FAILED)
                .select_related("job")
                .order_by("-pk")
                .first()
            )
            if item is None:
                continue
            try:
                item.retry()
            except (IllegalTransition, IntegrityError):
                continue
            video.restart()
            retried += 1
        left = len(selected) - retried
        messages.info(
            request,
            f"Retried {retried} video{pluralize(retried)}: sent back to their import"
            + (f"; {left} had no failed import to retry." if left else "."),
        )


class ImportJobItemInline(admin.TabularInline):
    model = ImportJobItem
    fields = ["video", "status", "error", "attempts", "finished"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    max_num = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[ImportJobItem]:
        return (
            super().get_queryset(request).filter(status=ItemStatus.FAILED).select_related("video")
        )


@admin.register(ImportJob)
class ImportJobAdmin(JobAdminMixin, admin.ModelAdmin):
    list_display = ["id", "title", "owner", "tab", "status", "progress", "created_at"]
    list_filter = ["status", "tab"]
    search_fields = ["channel_url", "owner__username", "channel__title"]
    list_select_related = ["owner", "channel"]
    readonly_fields = [
        "owner", "channel_url", "channel", "tab", "limit", "only_new",
        "status", "progress", "total", "done", "skipped", "failed", "cancelled", "step", "error",
        "prepared", "created", "enqueued", "started", "finished", "updated", "heartbeat",
        "attempts", "worker",
    ]  # fmt: skip
    fields = readonly_fields
    inlines = [ImportJobItemInline]
    item_noun = "video"
    job_noun = "import"

    @admin.display(description="channel")
    def title(self, job: ImportJob) -> str:
        return format_html(
            '<span class="chirp-cut" title="{}">{}</span>',
            job.channel_url,
            Truncator(job.title).chars(40),
        )

    def lift_pause(self) -> str:
        """YouTube's pause (the limiter's circuit breaker) holds the whole lane: staff who
        resume an import now end it, and the limiter starts afresh (strikes and spacing)."""
        limiter = Limiter()
        pause = limiter.current_pause()
        if pause is None:
            return ""
        limiter.reset()
        until = time_format(timezone.localtime(pause.until), "H:i")
        return f"YouTube's pause (until {until}) was lifted."


class ListBatchRowInline(admin.TabularInline):
    """A batch's rows, as the worker left them: read-only (a row moves through the batch's
    page and the actions only)."""

    model = ListBatchRow
    fields = [
        "number", "outcome", "input", "channel", "name", "email", "type", "status", "error",
        "message", "import_job", "attempts", "finished",
    ]  # fmt: skip
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    max_num = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[ListBatchRow]:
        return super().get_queryset(request).select_related("channel", "import_job")


@admin.register(ListBatch)
class ListBatchAdmin(JobAdminMixin, admin.ModelAdmin):
    list_display = ["id", "title", "owner", "format", "quality", "status", "progress", "created_at"]
    list_filter = ["status", "format", "quality"]
    search_fields = ["name", "owner__username"]
    list_select_related = ["owner"]
    # The list's text is left out: up to 2 MB of someone's people, and the rows say it all.
    readonly_fields = [
        "owner", "name", "format", "limit", "since", "only_new", "quality", "follow",
        "status", "progress", "total", "done", "skipped", "failed", "cancelled", "step", "error",
        "prepared", "created", "enqueued", "started", "finished", "updated", "heartbeat",
        "attempts", "worker",
    ]  # fmt: skip
    fields = readonly_fields
    inlines = [ListBatchRowInline]
    item_noun = "row"
    job_noun = "list import"


class PersonChannelInline(admin.TabularInline):
    model = PersonChannel
    fk_name = "person"
    fields = ["channel", "created"]
    readonly_fields = ["created"]
    raw_id_fields = ["channel"]
    extra = 0


@admin.register(Person)
class PersonAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "type", "owner", "created"]
    list_filter = ["type"]
    search_fields = ["name", "email", "type", "owner__username"]
    raw_id_fields = ["owner"]
    readonly_fields = ["created", "updated"]
    inlines = [PersonChannelInline]


@admin.register(Follow)
class FollowAdmin(admin.ModelAdmin):
    list_display = ["channel", "user", "created", "quality", "last_checked", "last_check_method"]
    list_filter = ["last_check_method", "quality"]
    search_fields = ["channel__title", "channel__handle", "user__username"]
    raw_id_fields = ["channel", "user"]
    readonly_fields = ["created", "last_checked", "last_check_method", "last_error"]


@admin.register(ChannelWatch)
class ChannelWatchAdmin(admin.ModelAdmin):
    """The channels Chirp watches (someone follows them): when each is polled next."""

    list_display = ["channel", "next_poll", "last_polled", "last_full_check"]
    ordering = ["next_poll"]
    raw_id_fields = ["channel"]


@admin.register(WebSubSubscription)
class WebSubSubscriptionAdmin(admin.ModelAdmin):
    """Each watched channel's push subscription: pending, verified until …, failed with the
    reason, its last notification. The token and secret are not shown (the token is the
    callback's password); the state changes only through the hub."""

    list_display = ["channel", "state_text", "last_notification", "next_try", "attempts"]
    list_filter = ["state"]
    search_fields = ["channel__title", "channel__handle", "channel__youtube_id"]
    exclude = ["token", "secret"]
    readonly_fields = [
        "channel",
        "topic",
        "state",
        "created",
        "requested",
        "verified",
        "lease_seconds",
        "lease_expires",
        "next_try",
        "attempts",
        "last_error",
        "last_notification",
    ]

    @admin.display(description="State", ordering="state")
    def state_text(self, sub: WebSubSubscription) -> str:
        return sub.describe()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
