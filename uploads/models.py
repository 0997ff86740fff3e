"""Scrape jobs (a page's images, processed in the uploads lane) and the images they find.

`Image` is the canonical record of a picture: one per source URL and one per content (SHA-256),
whoever found it, so each picture is fetched and detected once for the whole installation.
Jobs come and go (see `ScrapeJob.delete_expired`); images stay.

A user sees an image only through their own `Sighting`s of it (which outlive their jobs): the
catalogue is shared, what each user scraped is not. Saying a detected box is not a face is one
user's judgement too (`FaceVerdict`): it changes that user's counts only. Staff see everything in
the admin.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import models, transaction
from django.db.models import Count, Exists, F, Max, Min, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from PIL import Image as PILImage

from chirp import live
from chirp.jobs import CANCELLED, COMPLETED, FAILED, PENDING, TERMINAL, Item, ItemStatus, Job
from chirp.templatetags.chirp_time import ago

if TYPE_CHECKING:
    from chirp.engine import RunContext


def _marked_not_a_face(user, image: OuterRef | F) -> Coalesce:
    """How many of the image's boxes `user` (a user, their id or an outer reference) said are
    not a face: one small count per image (the image's faces, each against its unique
    (user, face) verdict)."""
    verdicts = (
        FaceVerdict.objects.filter(user=user, face__image=image)
        .order_by()
        .values("face__image")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(verdicts, output_field=models.IntegerField()), 0)


class ImageQuerySet(models.QuerySet):
    def visible_to(self, user) -> ImageQuerySet:
        """The images the user's (a user or their id) own jobs found, newest to them first.
        Another user's images are not there at all: not their pages, not their URLs, not even
        whether they exist. Each carries `own_face_count`: the detector's faces less those
        this user said are not one (another user's judgement does not count here)."""
        sightings = Sighting.objects.filter(owner=user, image=OuterRef("pk"))
        return (
            self.filter(Exists(sightings))
            .annotate(
                seen_by_user=Subquery(sightings.order_by("first_seen").values("first_seen")[:1]),
                own_face_count=F("face_count") - _marked_not_a_face(user, OuterRef("pk")),
            )
            .order_by("-seen_by_user", "-pk")
        )

    def found_by_job(self, job: ScrapeJob) -> ImageQuerySet:
        return self.filter(Exists(ScrapeJobItem.objects.filter(job=job, image=OuterRef("pk"))))

    def found_on_page(self, user, page_url: str) -> ImageQuerySet:
        """Where the user's own jobs found them: another user's page for the same picture
        does not count."""
        sightings = Sighting.objects.filter(owner=user, page_url=page_url, image=OuterRef("pk"))
        return self.filter(Exists(sightings))

    def forget_for(self, user) -> int:
        """Take these images out of the user's gallery: their sightings go, and their jobs'
        items no longer point at them. An image nobody else has seen or is processing goes
        whole, with its thumbnails; one another user's job found stays theirs. Returns how
        many images left the user's gallery."""
        with transaction.atomic():
            pks = list(
                self.filter(sightings__owner=user)
                .order_by()
                .values_list("pk", flat=True)
                .distinct()
            )
            Sighting.objects.filter(owner=user, image__in=pks).delete()
            ScrapeJobItem.objects.filter(job__owner=user, image__in=pks).update(image=None)
            # The thumbnails' files follow the rows (see _delete_thumbnail_file).
            Image.objects.filter(pk__in=pks).exclude(
                Exists(Sighting.objects.filter(image=OuterRef("pk")))
            ).exclude(Exists(ScrapeJobItem.objects.filter(image=OuterRef("pk")))).delete()
        return len(pks)

    @property
    def face_count_field(self) -> str:
        """What "faces" means for these images: in a user's view (visible_to) the faces that
        user counts, elsewhere (the admin) what the detector found."""
        return "own_face_count" if "own_face_count" in self.query.annotations else "face_count"

    def with_faces(self) -> ImageQuerySet:
        return self.filter(**{f"{self.face_count_field}__gt": 0})

    def without_faces(self) -> ImageQuerySet:
        return self.filter(**{self.face_count_field: 0})

    def counts(self) -> dict[str, int]:
        field = self.face_count_field
        return self.aggregate(
            all=Count("pk"),
            with_faces=Count("pk", filter=Q(**{f"{field}__gt": 0})),
            without_faces=Count("pk", filter=Q(**{field: 0})),
        )


def _thumbnail_path(image: Image, filename: str) -> str:
    # Named by content: the same picture never gets two thumbnails.
    return f"uploads/thumbnails/{image.sha256[:2]}/{image.sha256}.jpg"


# The gallery's second, lighter size: made from the stored thumbnail on first request.
SMALL_THUMBNAIL_SIZE = 240


class Image(models.Model):
    """A picture Chirp has processed: found once, by URL or by identical bytes."""

    source_url = models.URLField(max_length=2048, unique=True)
    sha256 = models.CharField("SHA-256", max_length=64, unique=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    format = models.CharField(max_length=10)
    byte_size = models.PositiveIntegerField()
    # What the detector found, the same for everyone; what one user counts (less the boxes
    # they said are not a face) is `own_face_count`, annotated by visible_to().
    face_count = models.PositiveSmallIntegerField(db_index=True)
    thumbnail = models.FileField(upload_to=_thumbnail_path, max_length=255)
    found_on = models.URLField("found on page", max_length=2048, db_index=True)
    first_seen = models.DateTimeField(default=timezone.now, db_index=True)

    objects = ImageQuerySet.as_manager()

    class Meta:
        ordering = ["-first_seen", "-pk"]

    def __str__(self) -> str:
        return self.source_url

    def get_absolute_url(self) -> str:
        return reverse("uploads:image_detail", args=[self.pk])

    @property
    def thumbnail_url(self) -> str:
        return reverse("uploads:thumbnail", args=[self.pk])

    @property
    def small_thumbnail_url(self) -> str:
        return reverse("uploads:small_thumbnail", args=[self.pk])

    @property
    def small_thumbnail_name(self) -> str:
        return f"uploads/thumbnails/{SMALL_THUMBNAIL_SIZE}/{self.sha256[:2]}/{self.sha256}.jpg"

    def open_small_thumbnail(self):
        """The small thumbnail's file, made from the stored one the first time it is asked
        for (named by content, like it). Raises FileNotFoundError if there is no thumbnail."""
        from uploads.images import make_thumbnail

        storage, name = self.thumbnail.storage, self.small_thumbnail_name
        if not storage.exists(name):
            if not self.thumbnail:
                raise FileNotFoundError(name)
            with self.thumbnail.open("rb") as large, PILImage.open(large) as picture:
                data = make_thumbnail(picture, SMALL_THUMBNAIL_SIZE)
            saved = storage.save(name, ContentFile(data))
            if saved != name:
                # Another request made it meanwhile; the storage kept both under two names.
                storage.delete(saved)
        return storage.open(name, "rb")

    def archive_name(self, user) -> str:
        """The name of the image's stored picture in a ZIP for `user`: unique (its id first)
        and named after the user's own URL for it. A JPEG whatever the original was: Chirp
        keeps its largest thumbnail, not the original."""
        stem = PurePosixPath(self.sightings_by(user)["file_name"]).stem or "image"
        return f"{self.pk}-{stem}.jpg"

    def tile_size(self, height: int = 180) -> tuple[int, int]:
        """The size of a gallery tile `height` pixels high showing the whole picture."""
        return round(height * self.width / max(self.height, 1)), height

    def sightings_by(self, user) -> dict[str, object]:
        """What this user's own jobs saw of the image: its URLs, the pages it was found on and
        when they first saw it (never another user's, whoever found it first)."""
        sightings = self.sightings.filter(owner=user)
        source_urls = _distinct(sightings, "source_url")
        return {
            "file_name": next(filter(None, map(file_name_of, source_urls)), f"Image #{self.pk}"),
            "source_urls": source_urls,
            "pages": _distinct(sightings, "page_url"),
            "first_seen": sightings.aggregate(first=Min("first_seen"))["first"],
        }


def file_name_of(url: str) -> str:
    """The last segment of the URL's path, decoded ("" for a bare host or a trailing slash)."""
    return unquote(PurePosixPath(urlsplit(url).path).name)


def _distinct(queryset: models.QuerySet, field: str) -> list[str]:
    return list(queryset.order_by(field).values_list(field, flat=True).distinct())


@receiver(post_delete, sender=Image)
def _delete_thumbnail_file(sender, instance: Image, **kwargs) -> None:
    if instance.thumbnail:
        storage, names = instance.thumbnail.storage, [instance.thumbnail.name]
        names.append(instance.small_thumbnail_name)
        transaction.on_commit(lambda: [storage.delete(name) for name in names])


class Sighting(models.Model):
    """One user's job found this image at this URL on this page. What the user may see of the
    shared catalogue; kept when the job is deleted, as the image is."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="image_sightings"
    )
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="sightings")
    source_url = models.URLField(max_length=2048)
    page_url = models.URLField("found on page", max_length=2048)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["first_seen", "pk"]
        indexes = [
            models.Index(fields=["owner", "image"], name="uploads_sighting_owner_image"),
            models.Index(fields=["owner", "page_url"], name="uploads_sighting_owner_page"),
        ]

    def __str__(self) -> str:
        return f"{self.source_url} on {self.page_url}"

    @classmethod
    def record(cls, owner_id: int, image: Image, source_url: str, page_url: str) -> None:
        """Remember (again) that the user's job found the image there. No unique constraint
        (two 2048-character URLs are too long for one index): a race can leave a duplicate
        row, which every reader tolerates (they ask for distinct values or an aggregate)."""
        now = timezone.now()
        seen_before = cls.objects.filter(
            owner=owner_id, image=image, source_url=source_url, page_url=page_url
        )
        if not seen_before.update(last_seen=now):
            cls.objects.create(
                owner_id=owner_id,
                image=image,
                source_url=source_url,
                page_url=page_url,
                first_seen=now,
                last_seen=now,
            )


class DetectedFaceQuerySet(models.QuerySet):
    def judged_by(self, user) -> DetectedFaceQuerySet:
        """Each box with `not_a_face`: whether this user said it is not a face (nobody else's
        say counts)."""
        return self.annotate(
            not_a_face=Exists(FaceVerdict.objects.filter(user=user, face=OuterRef("pk")))
        )


class DetectedFace(models.Model):
    """A face's box, in the original picture's pixels, as the detector found it. A user may say
    it is not a face (a FaceVerdict): for them the box stays, struck through, and no longer
    counts; for everyone else nothing changes."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="faces")
    x = models.PositiveIntegerField()
    y = models.PositiveIntegerField()
    w = models.PositiveIntegerField()
    h = models.PositiveIntegerField()
    confidence = models.FloatField()

    objects = DetectedFaceQuerySet.as_manager()

    class Meta:
        ordering = ["image", "x", "y"]

    def __str__(self) -> str:
        return f"{self.w}x{self.h} at ({self.x}, {self.y})"

    def mark_not_a_face(self, user, not_a_face: bool = True) -> bool:
        """Record this user's say: not a face, or a face after all (their verdict goes). A
        double submit changes nothing the second time (one verdict per user and box). Their
        open pages' counts follow live; nobody else hears of it. Returns whether anything
        changed."""
        if not_a_face:
            _, changed = FaceVerdict.objects.get_or_create(user=user, face=self)
        else:
            deleted, _ = FaceVerdict.objects.filter(user=user, face=self).delete()
            changed = bool(deleted)
        self.not_a_face = not_a_face
        if changed:
            _publish_counts(user.pk)
        return changed

    def percent_box(self) -> dict[str, float]:
        """The box as percentages of the picture, to draw over it at any displayed size."""
        width, height = self.image.width, self.image.height
        return {
            "left": 100 * self.x / width,
            "top": 100 * self.y / height,
            "width": 100 * self.w / width,
            "height": 100 * self.h / height,
        }


class FaceVerdict(models.Model):
    """One user said this detected box is not a face. Theirs alone: it takes the box out of
    their own counts and filters (`own_face_count`), nobody else's, and nobody else learns of
    it. (A box without a verdict is a face, as the detector said.)"""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="face_verdicts"
    )
    face = models.ForeignKey(DetectedFace, on_delete=models.CASCADE, related_name="verdicts")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created", "-pk"]
        verbose_name = "“not a face” verdict"
        constraints = [
            models.UniqueConstraint(fields=["user", "face"], name="uploads_faceverdict_once")
        ]

    def __str__(self) -> str:
        return f"{self.user} said {self.face} is not a face"


class ScrapeJob(Job):
    """One page: find its images (scraping), then process each one (processing)."""

    lane = "uploads"
    PREPARING = "scraping"
    PROCESSING = "processing"

    class Status(models.TextChoices):
        PENDING = PENDING, "Pending"
        SCRAPING = "scraping", "Scraping"
        PROCESSING = "processing", "Processing"
        COMPLETED = COMPLETED, "Completed"
        FAILED = FAILED, "Failed"
        CANCELLED = CANCELLED, "Cancelled"

    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    url = models.URLField("page URL", max_length=2048)
    # The page's <title>, kept when the page is fetched: what the job is about, at a glance.
    page_title = models.CharField(max_length=500, blank=True)
    # Distinct images on the page; more than `total` when the cap cut the list.
    found = models.PositiveIntegerField("images found", default=0)

    class Meta(Job.Meta):
        verbose_name = "scrape job"
        indexes = [
            models.Index(fields=["owner", "-created"], name="uploads_job_owner_created"),
            models.Index(fields=["owner", "url"], name="uploads_job_owner_url"),
        ]

    @property
    def pool_size(self) -> int:  # type: ignore[override]
        return settings.CHIRP_IMAGE_THREADS

    def get_absolute_url(self) -> str:
        return reverse("uploads:job_detail", args=[self.pk])

    @property
    def title(self) -> str:
        return self.url

    @classmethod
    def totals_for(cls, user) -> list[tuple[str, int]]:
        counts = Image.objects.visible_to(user).aggregate(
            images=Count("pk"), faces=Coalesce(Sum("own_face_count"), 0)
        )
        return [("Images", counts["images"]), ("Faces", counts["faces"])]

    # -- creating, finding ------------------------------------------------------------------

    @classmethod
    def start(cls, owner, url: str) -> ScrapeJob:
        """A new job for `url`, queued in the uploads lane once the transaction commits."""
        from chirp import engine

        job = cls.objects.create(owner=owner, url=url)
        engine.wake_lane_on_commit(cls.lane)
        return job

    @classmethod
    def last_scraped(cls, owner, url: str) -> datetime | None:
        """When this user last scraped `url`: by their jobs, or as the page where their jobs
        found images (jobs are deleted after a while; the sightings stay). Another user's
        scrapes never count: that would tell anyone who scraped what, and when."""
        by_job = cls.objects.filter(owner=owner, url=url).aggregate(last=Max("created"))["last"]
        by_image = Sighting.objects.filter(owner=owner, page_url=url).aggregate(
            last=Max("last_seen")
        )["last"]
        return max((when for when in (by_job, by_image) if when), default=None)

    @classmethod
    def scraped_before_warning(cls, owner, url: str) -> str:
        last = cls.last_scraped(owner, url)
        if last is None:
            return ""
        return f"This page was scraped {ago(last)} — most images may be skipped."

    @classmethod
    def delete_expired(cls, days: int | None = None) -> int:
        """Delete jobs that ended more than `days` ago (their images stay). Returns how many."""
        days = settings.CHIRP_UPLOADS_RETENTION_DAYS if days is None else days
        cutoff = timezone.now() - timedelta(days=days)
        _, by_model = cls.objects.filter(
            cls._idle(), status__in=TERMINAL, finished__lt=cutoff
        ).delete()
        return by_model.get(cls._meta.label, 0)

    @classmethod
    def _idle(cls) -> Q:
        """Not running: waiting, or ended and let go by its worker (a cancelled job keeps its
        worker until that worker notices; one that died meanwhile stops beating)."""
        from chirp import engine

        let_go = Q(worker="") | Q(heartbeat__isnull=True) | Q(heartbeat__lt=engine.lease_cutoff())
        return Q(status__in=(PENDING, *TERMINAL)) & let_go

    # -- state -------------------------------------------------------------------------------

    @property
    def can_retry(self) -> bool:
        # A page that could not be scraped is retried whole: it has no items to retry.
        return super().can_retry or (self.status == FAILED and not self.prepared)

    @property
    def can_delete(self) -> bool:
        """What _idle() asks of the database, for this row as loaded."""
        from chirp import engine

        let_go = not self.worker or not self.heartbeat or self.heartbeat < engine.lease_cutoff()
        return (self.status == PENDING or self.is_terminal) and let_go

    def delete_if_idle(self) -> bool:
        """Delete the job unless a worker is running it (cancel first). Images stay."""
        deleted, _ = type(self).objects.filter(self._idle(), pk=self.pk).delete()
        return bool(deleted)

    @property
    def cap_message(self) -> str:
        if self.found <= self.total:
            return ""
        return (
            f"The page shows {self.found} images; only the first {self.total} were taken "
            "(the limit per page)."
        )

    @property
    def progress_text(self) -> str:
        """The counts under the progress bar (page and live row alike): what is happening
        while the job runs, what happened once it ended."""
        counts = [f"{self.done} new", f"{self.skipped} skipped", f"{self.failed} failed"]
        if self.status == FAILED:
            reason = self.error.rstrip(".") or "the job stopped"
            return " · ".join([f"Failed: {reason}", *counts])
        if self.status == CANCELLED:
            processed = self.done + self.skipped + self.failed
            return f"Cancelled · {processed} of {self.total} images processed · " + " · ".join(
                counts
            )
        if self.status == COMPLETED:
            head = "Completed with failures" if self.failed else "Completed"
            return " · ".join([f"{head}: {self.total} images", *counts])
        parts = [f"{self.processed} of {self.total}", *counts]
        if self.cancelled:
            parts.append(f"{self.cancelled} cancelled")
        return " · ".join(parts)

    def finished_summary(self) -> str:
        if self.status == FAILED and not self.prepared:
            return f"{self.url} could not be scraped: {self.error}"
        summary = (
            f"{self.total} images: {self.done} new, {self.skipped} skipped, {self.failed} failed"
        )
        if self.cancelled:
            summary += f", {self.cancelled} cancelled"
        return summary

    # -- the work ----------------------------------------------------------------------------

    prepare_with = "uploads.pipeline.prepare"
    process_item_with = "uploads.pipeline.process"

    def record_page(self, ctx: RunContext, found: int, title: str) -> None:
        """What fetching the page told: how many images it has, and its title."""
        title = title[: self._meta.get_field("page_title").max_length]
        type(self).objects.filter(pk=self.pk, worker=ctx.token).update(
            found=found, page_title=title
        )
        self.found, self.page_title = found, title

    # -- live ----------------------------------------------------------------------------------

    @property
    def summary_dom_id(self) -> str:
        # Not "upload-summary": the job page's chips count this job, not all the user's jobs.
        return f"{self.dom_id}-summary"

    def item_summary(self) -> dict[str, int]:
        """How many of this job's items are in each status (the job page's chips)."""
        return ScrapeJobItem.summary_of(self.items.all())

    # The event that puts a new job's row at the top of the first page of the Uploads list.
    CREATED_EVENT = "scrapejob-created"

    def created_fragments(self) -> list[tuple[str, str]]:
        html = render_to_string("uploads/partials/job_row.html", {"job": self})
        return [(self.CREATED_EVENT, html)]

    def chips_fragment(self) -> tuple[str, str]:
        """The job page's chips, counted now (one aggregate on the job's items)."""
        context = {"summary": self.item_summary(), "summary_id": self.summary_dom_id}
        return (
            self.summary_dom_id,
            render_to_string("uploads/partials/summary_chips.html", context),
        )

    def started_fragments(self) -> list[tuple[str, str]]:
        # The Uploads page's chips count the owner's items processing, in all their jobs.
        return [summary_fragment(self.owner_id)]

    def totals_fragments(self) -> list[tuple[str, str]]:
        # The Uploads page's and the gallery's counts of images, with and without faces.
        return [gallery_counts_fragment(self.owner_id)]

    def live_fragments(self) -> list[tuple[str, str]]:
        fragments = [
            (self.dom_id, render_to_string("uploads/partials/job_row.html", {"job": self})),
            summary_fragment(self.owner_id),
            self.chips_fragment(),
        ]
        if self.is_terminal:
            fragments.append(gallery_counts_fragment(self.owner_id))
        return fragments


class ScrapeJobItemQuerySet(models.QuerySet):
    def with_face_counts(self) -> ScrapeJobItemQuerySet:
        """Each item with its image and `own_face_count`: the image's faces as the job's owner
        (the only user who sees the item) counts them."""
        not_faces = _marked_not_a_face(OuterRef("job__owner"), OuterRef("image"))
        return self.select_related("image").annotate(
            own_face_count=F("image__face_count") - not_faces
        )


class ScrapeJobItem(Item):
    job = models.ForeignKey(ScrapeJob, on_delete=models.CASCADE, related_name="items")
    source_url = models.URLField(max_length=2048)
    image = models.ForeignKey(
        Image, null=True, blank=True, on_delete=models.SET_NULL, related_name="items"
    )

    objects = ScrapeJobItemQuerySet.as_manager()

    class Meta(Item.Meta):
        verbose_name = "scrape job item"
        indexes = [models.Index(fields=["job", "status"], name="uploads_item_job_status")]

    @classmethod
    def summary_for(cls, owner_id: int) -> dict[str, int]:
        """How many of the user's items (all their jobs) are in each status."""
        return cls.summary_of(cls.objects.filter(job__owner_id=owner_id))

    @staticmethod
    def summary_of(items: models.QuerySet[ScrapeJobItem]) -> dict[str, int]:
        counts = dict.fromkeys(ItemStatus.values, 0)
        rows = items.values("status").annotate(n=Count("pk")).order_by()
        counts.update((row["status"], row["n"]) for row in rows)
        return counts

    def count_own_faces(self) -> None:
        """Set `own_face_count` as with_face_counts() does, for an item read on its own."""
        self.own_face_count = None
        if self.image_id is not None:
            not_faces = FaceVerdict.objects.filter(
                user=self.job.owner_id, face__image=self.image_id
            )
            self.own_face_count = self.image.face_count - not_faces.count()

    def live_fragments(self) -> list[tuple[str, str]]:
        # The job page's chips go with every row: an item that starts processing moves no
        # counter of its job, so the job's own updates would leave "Processing" behind.
        self.count_own_faces()
        html = render_to_string("uploads/partials/item_row.html", {"item": self})
        return [(self.dom_id, html), self.job.chips_fragment()]


def summary_fragment(owner_id: int) -> tuple[str, str]:
    context = {"summary": ScrapeJobItem.summary_for(owner_id)}
    return ("upload-summary", render_to_string("uploads/partials/summary_chips.html", context))


def gallery_counts_fragment(owner_id: int) -> tuple[str, str]:
    context = {"counts": Image.objects.visible_to(owner_id).counts()}
    return ("gallery-counts", render_to_string("uploads/partials/gallery_counts.html", context))


def _publish_counts(owner_id: int) -> None:
    """The user's counts of images and faces, on every page of theirs that shows them (the
    Uploads page and the gallery, the dashboard), once the transaction commits."""
    from chirp import dashboard

    def render() -> list[tuple[str, str]]:
        return [gallery_counts_fragment(owner_id), dashboard.totals_fragment(owner_id)]

    live.publish_on_commit(owner_id, render)
