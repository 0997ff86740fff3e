from __future__ import annotations

from functools import partial
from urllib.parse import urlsplit

from django.contrib import messages
from django.core.handlers.asgi import ASGIRequest
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import Resolver404, resolve, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseClientRefresh

from chirp.jobs import IllegalTransition
from uploads.archives import chunks_for_asgi, stream_zip
from uploads.forms import (
    FaceReviewForm,
    GalleryFilterForm,
    ImageSelectionForm,
    PageForm,
    ScrapeJobForm,
)
from uploads.models import DetectedFace, Image, ScrapeJob, ScrapeJobItem

JOBS_PER_PAGE = 20
ITEMS_PER_PAGE = 100
IMAGES_PER_PAGE = 48


def _get_job_for_user(request: HttpRequest, pk: int) -> ScrapeJob:
    return get_object_or_404(ScrapeJob, pk=pk, owner=request.user)


def _get_item_for_user(request: HttpRequest, pk: int) -> ScrapeJobItem:
    return get_object_or_404(
        ScrapeJobItem.objects.with_face_counts().select_related("job"),
        pk=pk,
        job__owner=request.user,
    )


def _get_image_for_user(request: HttpRequest, pk: int) -> Image:
    """An image the user's own jobs found; anyone else's is a 404, as if it did not exist."""
    return get_object_or_404(Image.objects.visible_to(request.user), pk=pk)


def _get_face_for_user(request: HttpRequest, pk: int) -> DetectedFace:
    images = Image.objects.visible_to(request.user)
    return get_object_or_404(DetectedFace.objects.filter(image__in=images), pk=pk)


def _page(request: HttpRequest, queryset: QuerySet, per_page: int) -> Page:
    form = PageForm(request.GET)
    number = form.cleaned_data["page"] if form.is_valid() else None
    return Paginator(queryset, per_page).get_page(number)


@require_http_methods(["GET", "POST"])
def uploads_page(request: HttpRequest) -> HttpResponse:
    form = ScrapeJobForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        url = form.cleaned_data["url"]
        warning = ScrapeJob.scraped_before_warning(request.user, url)
        job = ScrapeJob.start(request.user, url)
        if warning:
            messages.warning(request, warning)
        return redirect("uploads:job_detail", pk=job.pk)
    jobs = ScrapeJob.objects.filter(owner=request.user)
    return render(
        request,
        "uploads/page.html",
        {
            "form": form,
            "jobs": _page(request, jobs, JOBS_PER_PAGE),
            "created_event": ScrapeJob.CREATED_EVENT,
            "summary": ScrapeJobItem.summary_for(request.user.pk),
            "counts": Image.objects.visible_to(request.user).counts(),
        },
    )


@require_GET
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = _get_job_for_user(request, pk)
    return render(
        request,
        "uploads/job_detail.html",
        {
            "job": job,
            "items": _page(request, job.items.with_face_counts(), ITEMS_PER_PAGE),
            "summary": job.item_summary(),
            "summary_id": job.summary_dom_id,
        },
    )


@require_GET
def job_items(request: HttpRequest, pk: int) -> HttpResponse:
    """The items table alone: loaded by the job page once the page's images are known."""
    job = _get_job_for_user(request, pk)
    return render(
        request,
        "uploads/partials/items_section.html",
        {"job": job, "items": _page(request, job.items.with_face_counts(), ITEMS_PER_PAGE)},
    )


def _after_job_action(request: HttpRequest, job: ScrapeJob) -> HttpResponse:
    if request.htmx:
        return HttpResponseClientRefresh()
    return redirect("uploads:job_detail", pk=job.pk)


@require_POST
def retry_failed_items(request: HttpRequest, pk: int) -> HttpResponse:
    job = _get_job_for_user(request, pk)
    try:
        count = job.retry_failed()
    except IllegalTransition as exc:
        messages.error(request, str(exc))
    else:
        what = f"{count} failed image{pluralize(count)}" if count else "the page"
        messages.success(request, f"Retrying {what}.")
    return _after_job_action(request, job)


@require_POST
def cancel_job(request: HttpRequest, pk: int) -> HttpResponse:
    job = _get_job_for_user(request, pk)
    try:
        job.cancel()
    except IllegalTransition:
        messages.error(request, "This job has already ended.")
    else:
        messages.success(request, "Job cancelled.")
    return _after_job_action(request, job)


@require_POST
def delete_job(request: HttpRequest, pk: int) -> HttpResponse:
    job = _get_job_for_user(request, pk)
    if not job.delete_if_idle():
        messages.error(request, "Cancel the job before deleting it (or let it finish).")
        return _after_job_action(request, job)
    messages.success(request, "Job deleted. Its images stay in the gallery.")
    if request.htmx:
        return HttpResponseClientRedirect(reverse("uploads:page"))
    return redirect("uploads:page")


def _after_item_action(request: HttpRequest, item: ScrapeJobItem) -> HttpResponse:
    if request.htmx:
        item.refresh_from_db()
        return render(request, "uploads/partials/item_row.html", {"item": item})
    return redirect("uploads:job_detail", pk=item.job_id)


@require_POST
def cancel_item(request: HttpRequest, pk: int) -> HttpResponse:
    item = _get_item_for_user(request, pk)
    try:
        item.cancel()
    except IllegalTransition:
        messages.error(request, "Only a queued image can be cancelled.")
    return _after_item_action(request, item)


@require_POST
def retry_item(request: HttpRequest, pk: int) -> HttpResponse:
    item = _get_item_for_user(request, pk)
    try:
        item.retry()
    except IllegalTransition:
        messages.error(request, "Only a failed image can be retried.")
    return _after_item_action(request, item)


@require_GET
def gallery(request: HttpRequest) -> HttpResponse:
    form = GalleryFilterForm(request.GET, user=request.user)
    images = Image.objects.visible_to(request.user)
    counts = images.counts()
    return render(
        request,
        "uploads/gallery.html",
        {
            "form": form,
            "images": _page(request, form.filter(images), IMAGES_PER_PAGE),
            "query": form.query(),
            "counts": counts,
        },
    )


def _back_link(request: HttpRequest) -> tuple[str, str]:
    """Where the image page's back link goes, and what it says: the page the user came from
    (`?from=`, a path on this site only: never an open redirect), else the gallery."""
    back = request.GET.get("from", "")
    if back.startswith("/") and url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        try:
            match = resolve(urlsplit(back).path)
        except Resolver404:
            match = None
        if match is not None and match.view_name == "uploads:job_detail":
            return back, f"Job #{match.kwargs['pk']}"
        if match is not None:
            return back, "Back"
    return reverse("uploads:gallery"), "Gallery"


def _back_to_gallery(request: HttpRequest) -> HttpResponse:
    """To the gallery page the selection was made on (its filters and page), or the gallery."""
    back = request.POST.get("next", "")
    if back.startswith(reverse("uploads:gallery")) and url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}
    ):
        return redirect(back)
    return redirect("uploads:gallery")


@require_POST
def delete_images(request: HttpRequest) -> HttpResponse:
    form = ImageSelectionForm(request.POST, user=request.user)
    if not form.is_valid():
        messages.error(request, form.errors["image"][0])
        return _back_to_gallery(request)
    removed = form.images().forget_for(request.user)
    messages.success(request, f"Deleted {removed} image{pluralize(removed)} from your gallery.")
    return _back_to_gallery(request)


@require_POST
def download_images(request: HttpRequest) -> HttpResponse:
    """The selected images' stored pictures as one ZIP, streamed as it is made."""
    form = ImageSelectionForm(request.POST, user=request.user)
    if not form.is_valid():
        messages.error(request, form.errors["image"][0])
        return _back_to_gallery(request)
    entries = (
        (image.archive_name(request.user), partial(image.thumbnail.open, "rb"))
        for image in form.images().iterator()
    )
    chunks = stream_zip(entries)
    if isinstance(request, ASGIRequest):
        chunks = chunks_for_asgi(chunks)
    response = StreamingHttpResponse(chunks, content_type="application/zip")
    response["Content-Disposition"] = 'attachment; filename="chirp-images.zip"'
    return response


@require_GET
def image_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_image_detail(request, _get_image_for_user(request, pk))


def _render_image_detail(request: HttpRequest, image: Image) -> HttpResponse:
    back_url, back_label = _back_link(request)
    return render(
        request,
        "uploads/image_detail.html",
        {
            "image": image,
            "faces": image.faces.judged_by(request.user),
            "seen": image.sightings_by(request.user),
            "back_url": back_url,
            "back_label": back_label,
        },
    )


@require_POST
def review_face(request: HttpRequest, pk: int) -> HttpResponse:
    """Say a detected face is not a face (or is one after all): the user's own say, which
    changes their counts and nobody else's. HTMX swaps the review in place (it picks
    `#image-review` out of the page); a plain form goes back to the image."""
    face = _get_face_for_user(request, pk)
    form = FaceReviewForm(request.POST)
    if form.is_valid():
        face.mark_not_a_face(request.user, form.cleaned_data["not_a_face"])
    if request.htmx:
        return _render_image_detail(request, _get_image_for_user(request, face.image_id))
    return redirect(face.image)


@require_GET
def thumbnail(request: HttpRequest, pk: int, small: bool = False) -> FileResponse:
    # Staff who may view images in the admin see every thumbnail there.
    if request.user.has_perm("uploads.view_image"):
        image = get_object_or_404(Image, pk=pk)
    else:
        image = _get_image_for_user(request, pk)
    try:
        file = image.open_small_thumbnail() if small else image.thumbnail.open("rb")
    except (FileNotFoundError, ValueError):
        raise Http404("The thumbnail is missing.") from None
    response = FileResponse(file, content_type="image/jpeg")
    # Named by content (SHA-256): it never changes.
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    return response
