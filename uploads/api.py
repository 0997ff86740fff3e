"""The JSON API of scrape jobs: /api/scrape-jobs[/<id>[/retry]].

Shapes follow the user's plan: counts are `total_images`, `processed_count` (new images),
`skipped_count`, `failed_count`. Another user's job is a 404, as on the pages.
"""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse

from chirp.api import api_view, error, json_body
from chirp.jobs import IllegalTransition
from uploads.forms import PageForm, ScrapeJobForm
from uploads.models import ScrapeJob, ScrapeJobItem

JOBS_PER_PAGE = 50


def _get_job_for_user(request: HttpRequest, pk: int) -> ScrapeJob:
    try:
        return ScrapeJob.objects.get(pk=pk, owner=request.user)
    except ScrapeJob.DoesNotExist:
        raise Http404 from None


def _not_found() -> JsonResponse:
    return error("Not found.", 404)


def job_json(job: ScrapeJob) -> dict[str, Any]:
    return {
        "id": job.pk,
        "url": job.url,
        "status": job.status,
        "step": job.step,
        "error": job.error,
        "total_images": job.total,
        "images_found": job.found,
        "processed_count": job.done,
        "skipped_count": job.skipped,
        "failed_count": job.failed,
        "cancelled_count": job.cancelled,
        "percent": job.percent,
        "created_at": job.created,
        "started_at": job.started,
        "finished_at": job.finished,
        "updated_at": job.updated,
    }


def item_json(item: ScrapeJobItem) -> dict[str, Any]:
    return {
        "id": item.pk,
        "source_url": item.source_url,
        "status": item.status,
        "error": item.error,
        "image_id": item.image_id,
        # As the job's owner counts them (less the boxes they said are not a face).
        "face_count": item.own_face_count if item.image_id else None,
    }


@api_view("GET", "POST")
def scrape_jobs(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _start_job(request)
    form = PageForm(request.GET)
    if not form.is_valid():
        return error("Invalid query.", 400, errors=form.errors.get_json_data())
    jobs = Paginator(ScrapeJob.objects.filter(owner=request.user), JOBS_PER_PAGE)
    page = jobs.get_page(form.cleaned_data["page"])
    return JsonResponse(
        {
            "jobs": [job_json(job) for job in page],
            "page": page.number,
            "pages": jobs.num_pages,
            "count": jobs.count,
        }
    )


def _start_job(request: HttpRequest) -> HttpResponse:
    data = json_body(request, example='{"url": "https://…"}')
    form = ScrapeJobForm(data)
    if not form.is_valid():
        return error("Invalid job.", 400, errors=form.errors.get_json_data())
    url = form.cleaned_data["url"]
    warning = ScrapeJob.scraped_before_warning(request.user, url)
    job = ScrapeJob.start(request.user, url)
    return JsonResponse({**job_json(job), "warning": warning or None}, status=202)


@api_view("GET", "DELETE")
def scrape_job(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        job = _get_job_for_user(request, pk)
    except Http404:
        return _not_found()
    if request.method == "DELETE":
        if not job.delete_if_idle():
            return error("Cancel the job before deleting it (or let it finish).", 409)
        return HttpResponse(status=204)
    items = job.items.with_face_counts()
    return JsonResponse({**job_json(job), "items": [item_json(item) for item in items]})


@api_view("POST")
def retry_scrape_job(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        job = _get_job_for_user(request, pk)
    except Http404:
        return _not_found()
    try:
        retried = job.retry_failed()
    except IllegalTransition as exc:
        return error(str(exc), 409)
    job.refresh_from_db()
    return JsonResponse({**job_json(job), "retried": retried}, status=202)
