from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from chirp.admin import JobAdminMixin
from uploads.models import DetectedFace, FaceVerdict, Image, ScrapeJob, ScrapeJobItem, Sighting


class ScrapeJobItemInline(admin.TabularInline):
    model = ScrapeJobItem
    fields = ["source_url", "status", "image", "error", "attempts", "finished"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(ScrapeJob)
class ScrapeJobAdmin(JobAdminMixin, admin.ModelAdmin):
    list_display = ["id", "page", "owner", "status", "progress", "created_at"]
    list_filter = ["status", "owner", "created"]
    search_fields = ["url", "owner__username"]
    date_hierarchy = "created"
    inlines = [ScrapeJobItemInline]
    item_noun = "image"
    readonly_fields = [
        "owner",
        "url",
        "page_title",
        "status",
        "progress",
        "found",
        "total",
        "done",
        "skipped",
        "failed",
        "cancelled",
        "step",
        "error",
        "prepared",
        "created",
        "enqueued",
        "started",
        "finished",
        "heartbeat",
        "attempts",
        "worker",
    ]
    fields = readonly_fields

    @admin.display(description="page", ordering="url")
    def page(self, job: ScrapeJob) -> str:
        # A page URL can be 2,000 characters: cut in the list, whole in the tooltip.
        return format_html(
            '<span class="chirp-cut" title="{}">{}</span>', job.url, Truncator(job.url).chars(40)
        )


class DetectedFaceInline(admin.TabularInline):
    """The detector's boxes, and who said which is not a face (each user's say is theirs)."""

    model = DetectedFace
    fields = ["x", "y", "w", "h", "confidence", "not_a_face_for"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).prefetch_related("verdicts__user")

    @admin.display(description="not a face for")
    def not_a_face_for(self, face: DetectedFace) -> str:
        users = sorted(str(verdict.user) for verdict in face.verdicts.all())
        return ", ".join(users) or self.get_empty_value_display()


@admin.register(FaceVerdict)
class FaceVerdictAdmin(admin.ModelAdmin):
    """Who said which box is not a face, and when: a record to read, not to edit."""

    list_display = ["user", "face", "image_link", "created"]
    list_filter = ["created", "user"]
    search_fields = ["user__username", "face__image__source_url"]
    date_hierarchy = "created"
    list_select_related = ["user", "face__image"]
    fields = ["user", "face", "image_link", "created"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="image", ordering="face__image")
    def image_link(self, verdict: FaceVerdict) -> str:
        image = verdict.face.image
        url = reverse("admin:uploads_image_change", args=[image.pk])
        return format_html('<a href="{}">{}</a>', url, Truncator(image.source_url).chars(60))


class SightingInline(admin.TabularInline):
    """Who found the image where: users see only their own; staff see them all here."""

    model = Sighting
    fields = ["owner", "source_url", "page_url", "first_seen", "last_seen"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class HasFacesFilter(admin.SimpleListFilter):
    title = "faces"
    parameter_name = "faces"

    def lookups(self, request, model_admin):
        return [("with", "With faces"), ("without", "Without faces")]

    def queryset(self, request, queryset):
        if self.value() == "with":
            return queryset.with_faces()
        if self.value() == "without":
            return queryset.without_faces()
        return queryset


def _thumbnail_tag(image: Image, size: str) -> str:
    # Sized by a class from uploads/admin.css: the Content-Security-Policy forbids style="".
    return format_html(
        '<img src="{}" alt="" class="admin-thumb admin-thumb-{}">', image.thumbnail_url, size
    )


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["preview", "source_url", "face_count", "dimensions", "format", "first_seen"]
    list_display_links = ["preview", "source_url"]
    list_filter = [HasFacesFilter, "format", "first_seen"]
    search_fields = ["source_url", "found_on", "sha256", "sightings__owner__username"]
    date_hierarchy = "first_seen"
    inlines = [SightingInline, DetectedFaceInline]
    fields = [
        "large_preview",
        "source_url",
        "found_on",
        "face_count",
        "width",
        "height",
        "format",
        "byte_size",
        "sha256",
        "thumbnail",
        "first_seen",
    ]
    readonly_fields = fields

    class Media:
        css = {"all": ["uploads/admin.css"]}  # the previews' sizes

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="preview")
    def preview(self, image: Image) -> str:
        return _thumbnail_tag(image, "small")

    @admin.display(description="preview")
    def large_preview(self, image: Image) -> str:
        return _thumbnail_tag(image, "large")

    @admin.display(description="size")
    def dimensions(self, image: Image) -> str:
        return f"{image.width} x {image.height}"
