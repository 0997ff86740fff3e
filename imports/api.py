"""The JSON API of channel imports: /api/channels/...

    POST /api/channels/import            {channelUrl, tab?, limit?, onlyNew?, since?, quality?}
                                         → 201 {jobId} (since: "YYYY-MM-DD", only videos
                                         published then or later; quality: media to store)
                                         (409 {error, jobId} when that import is already open)
    GET  /api/channels/import            the caller's latest import
    GET  /api/channels/import/<id>       one import
    GET  /api/channels/<id>/jobs         {jobs, total, page, totalPages} (?page=&limit=)
    GET  /api/channels/<id>/jobs/active  {jobs}
    GET  /api/channels/<id>/stats        the channel page's stat cards
    POST /api/channels/lists             a channel list's preview ({"dryRun": true}): a file as
                                         multipart (`file`, `format`, `dryRun`), or a JSON body
                                         ({"dryRun": true, "list": "<text>", "format"?} or the
                                         plan's {"dryRun": true, "channels": [...], "settings"});
                                         without dryRun: 201 {batchId, ...} the batch that imports
                                         it (options limit?, since?, skipExisting?, quality?,
                                         follow?; the list's settings pre-fill them)
    GET  /api/channels/lists/<id>        a batch's progress and per-row report
    POST /api/channels/<id>/follow       {quality?, since?} → 201 (200 when updated) {follow,
                                         backfillJobId when a since date started a backfill}
    DELETE /api/channels/<id>/follow     → 200 {following: false} (404 when not following)

Callers authenticate with their session (CSRF applies to POST) or an API token (chirp.api).
Another user's import, or a channel the caller does not see (Channel.seen: their own import
has not listed it), is a 404. An import's answer names its channel only once the caller sees it.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse

from chirp.api import api_view, error, json_body
from imports import lists
from imports.forms import BatchOptionsForm, ChannelListForm, FollowForm, ImportForm, JobsPageForm
from imports.models import Channel, Follow, ImportJob, ListBatch

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


LIST_EXAMPLE = '{"dryRun": true, "channels": [{"name": "…", "channel_url": "@handle"}]}'


class _ListRequest:
    """What a POST to /api/channels/lists sent: the list, read; its text (kept on the batch
    it starts); whether it is a dry run; and the batch's options as sent."""

    def __init__(self, channel_list: lists.ChannelList, text: str, dry_run: bool, **kw) -> None:
        self.list, self.text, self.dry_run = channel_list, text, dry_run
        self.options: dict = kw.get("options", {})
        self.name: str = kw.get("name", "")


def _read_list(request: HttpRequest) -> _ListRequest:
    """The list from a multipart upload or a JSON body. Raises InvalidList for a list
    nothing can be read from."""
    if request.content_type != "application/json":
        form = ChannelListForm(request.POST, request.FILES)
        dry_run = request.POST.get("dryRun", "").lower() in ("true", "1", "on")
        if not form.is_valid():
            raise lists.InvalidList(" ".join(form.errors.get("__all__", [])) or "Invalid list.")
        options = {
            key: _multipart_value(request.POST[key])
            for key in BatchOptionsForm.JSON_FIELDS
            if key in request.POST
        }
        return _ListRequest(
            form.cleaned_data["list"],
            form.cleaned_data["list_text"],
            dry_run,
            options=options,
            name=form.cleaned_data["list_name"],
        )
    limit = settings.CHIRP_LIST_MAX_BYTES
    if len(request.body) > limit:
        raise lists.InvalidList(f"The list is larger than {limit:,} bytes: split it.")
    data = json_body(request, example=LIST_EXAMPLE)
    dry_run = data.get("dryRun") is True
    options = {key: data[key] for key in BatchOptionsForm.JSON_FIELDS if key in data}
    if "list" in data:
        if not isinstance(data["list"], str):
            raise lists.InvalidList("list must be the list's text.")
        format = data.get("format")
        if format is not None and not isinstance(format, str):
            raise lists.InvalidList(f"format must be one of {', '.join(lists.FORMATS)}.")
        parsed = lists.parse_list(data["list"], format or None)
        return _ListRequest(parsed, lists.decode(data["list"]), dry_run, options=options)
    if "channels" in data:
        plan = {key: data[key] for key in ("channels", "settings") if key in data}
        parsed = lists.parse_list_json(plan)
        return _ListRequest(parsed, json.dumps(plan), dry_run, options=options)
    raise lists.InvalidList(f"Send a file (multipart), or a JSON body such as {LIST_EXAMPLE}.")


def _multipart_value(value: str) -> object:
    """A multipart field as the JSON value it stands for (true/false, a number, or text)."""
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    return int(value) if value.isdigit() else value


@api_view("POST")
def channel_lists(request: HttpRequest) -> HttpResponse:
    """A list's preview (dryRun), or the batch that imports it (201, its id and state)."""
    try:
        sent = _read_list(request)
    except lists.InvalidList as exc:
        return error(str(exc), 400)
    preview = lists.preview_list(sent.list, request.user)
    if sent.dry_run:
        return JsonResponse({"dryRun": True, **preview.as_json()})
    counts = preview.counts
    if not counts["total"] - counts["invalid"] - counts["duplicate"]:
        return error(
            "Nothing in this list can be imported: every row is invalid or a duplicate.", 400
        )
    defaults = {"only_new": True, **ListBatch.options_from_settings(preview.settings)}
    form = BatchOptionsForm.from_json(sent.options, defaults)
    if not form.is_valid():
        return error(" ".join(m for ms in form.errors.values() for m in ms), 400)
    batch = ListBatch.draft(request.user, sent.text, preview.format, name=sent.name)
    batch.start(**form.cleaned_data)
    return JsonResponse(
        {"dryRun": False, "batchId": batch.pk, "batch": batch.as_json(rows=False)}, status=201
    )


@api_view("GET")
def channel_list_batch(request: HttpRequest, pk: int) -> HttpResponse:
    """A list batch's progress and its per-row report."""
    batch = ListBatch.objects.filter(pk=pk, owner=request.user).exclude(status="draft").first()
    if batch is None:
        return _not_found()
    return JsonResponse(batch.as_json())


@api_view("POST", "DELETE")
def channel_follow(request: HttpRequest, pk: int) -> HttpResponse:
    """Follow a channel the caller sees (or change the follow's options), or unfollow it."""
    try:
        channel = _get_channel_for_user(request, pk)
    except Http404:
        return _not_found()
    if request.method == "DELETE":
        if not Follow.stop(request.user, channel):
            return error("You do not follow this channel.", 404)
        return JsonResponse({"channelId": channel.pk, "following": False})
    form = FollowForm.from_json(json_body(request, example='{"quality": "720"}'))
    if not form.is_valid():
        errors = {field: [str(m) for m in messages] for field, messages in form.errors.items()}
        first = next(iter(errors.values()))[0]
        return error(first, 400, errors=errors)
    follow, created = Follow.start(request.user, channel, **form.cleaned_data)
    answer = {"following": True, "follow": follow.as_json()}
    if follow.backfill is not None:
        answer["backfillJobId"] = follow.backfill.pk
    return JsonResponse(answer, status=201 if created else 200)
