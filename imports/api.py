"""The JSON API of channel imports: /api/channels/...

    POST /api/channels/import            {channelUrl, tab?, limit?, onlyNew?, quality?} → 201
                                         (409 {error, jobId} when that import is already open)
    GET  /api/channels/import            the caller's latest import
    GET  /api/channels/import/<id>       one import
    GET  /api/channels/<id>/jobs         {jobs, total, page, totalPages} (?page=&limit=)
    GET  /api/channels/<id>/jobs/active  {jobs}
    GET  /api/channels/<id>/stats        the channel page's stat cards

Callers authenticate with their session (CSRF applies to POST) or an API token (chirp.api).
Another user's import, or a channel the caller does not see (Channel.seen: their own import
has not listed it), is a 404. An import's answer names its channel only once the caller sees it.
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse

from chirp.api import api_view, error, json_body
from imports.forms import ImportForm, JobsPageForm
from imports.models import Channel, ImportJob

DEFAULT_PAGE_SIZE = 20


def _get_job_for_user(request: HttpRequest, pk: int) -> ImportJob:
    try:
        return ImportJob.objects.select_related("channel").get(pk=pk, owner=request.user)
    except ImportJob.DoesNotExist:
        raise Http404 from None


def _get_channel_for_user(request: HttpRequest, pk: int) -> Channel:
    try:
        return Channel.objects.visible_to(request.user).get(pk=pk)
    except Channel.DoesNotExist:
        raise Http404 from None


def _not_found() -> JsonResponse:
    return error("Not found.", 404)


@api_view("GET", "POST")
def imports(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        latest = (
            ImportJob.objects.filter(owner=request.user)
            .select_related("channel")
            .order_by("-created", "-pk")
            .first()
        )
        if latest is None:
            return error("No imports yet.", 404)
        return JsonResponse(latest.as_json())

    data = json_body(request, example='{"channelUrl": "@handle"}')
    form = ImportForm.from_json(data)
    if not form.is_valid():
        errors = {field: [str(m) for m in messages] for field, messages in form.errors.items()}
        first = next(iter(errors.values()))[0]
        return error(first, 400, errors=errors)
    try:
        job, created = form.start(request.user)
    except IntegrityError:
        job, created = ImportJob.open_for(request.user, form.cleaned_data["channel"]), False
        if job is None:
            raise
    if not created:
        return error("Import already in progress.", 409, jobId=job.pk, jobStatus=job.status)
    return JsonResponse({"jobId": job.pk, "status": job.status, "job": job.as_json()}, status=201)


@api_view("GET")
def import_job(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        job = _get_job_for_user(request, pk)
    except Http404:
        return _not_found()
    return JsonResponse(job.as_json())


@api_view("GET")
def channel_jobs(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        channel = _get_channel_for_user(request, pk)
    except Http404:
        return _not_found()
    form = JobsPageForm(request.GET)
    if not form.is_valid():
        errors = {field: [str(m) for m in messages] for field, messages in form.errors.items()}
        return error("Invalid page or limit.", 400, errors=errors)
    limit = form.cleaned_data["limit"] or DEFAULT_PAGE_SIZE
    jobs = ImportJob.objects.filter(owner=request.user, channel=channel).select_related("channel")
    paginator = Paginator(jobs, limit)
    number = form.cleaned_data["page"] or 1
    page = paginator.page(number) if number <= paginator.num_pages else None
    return JsonResponse(
        {
            "jobs": [job.as_json() for job in page] if page else [],
            "total": paginator.count,
            "page": number,
            "totalPages": paginator.num_pages if paginator.count else 0,
        }
    )


@api_view("GET")
def active_channel_jobs(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        channel = _get_channel_for_user(request, pk)
    except Http404:
        return _not_found()
    jobs = ImportJob.objects.filter(
        owner=request.user, channel=channel, status__in=ImportJob.OPEN_STATUSES
    ).select_related("channel")
    return JsonResponse({"jobs": [job.as_json() for job in jobs]})


@api_view("GET")
def channel_stats(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        channel = _get_channel_for_user(request, pk)
    except Http404:
        return _not_found()
    return JsonResponse({"channelId": channel.pk, **channel.stats_for(request.user)})
