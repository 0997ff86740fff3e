from __future__ import annotations

import csv
import logging
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.files.storage import default_storage
from django.core.paginator import Page, Paginator
from django.db import IntegrityError
from django.db.models import Q, QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from chirp import dashboard
from chirp.jobs import IllegalTransition
from imports import artwork as artworks
from imports import playback, websub
from imports.forms import (
    BatchOptionsForm,
    ChannelListForm,
    ChannelSearchForm,
    DownloadForm,
    FollowForm,
    ImportForm,
    VideoFilterForm,
)
from imports.media import enqueue_download
from imports.models import (
    Channel,
    Follow,
    ImportJob,
    ListBatch,
    ListBatchRow,
    MediaFile,
    Person,
    Video,
    WebSubSubscription,
    channels_of,
    people_export_rows,
)

logger = logging.getLogger(__name__)

CHANNELS_PER_PAGE = 50
VIDEOS_PER_PAGE = 60
JOBS_PER_PAGE = 10


def _get_job_for_user(request: HttpRequest, pk: int) -> ImportJob:
    return get_object_or_404(ImportJob.objects.select_related("channel"), pk=pk, owner=request.user)


def _get_channel_for_user(request: HttpRequest, pk: int) -> Channel:
    """A channel of the shared catalog, shown to those who see it (404 for the rest)."""
    return get_object_or_404(Channel.objects.visible_to(request.user), pk=pk)


def _get_video_for_user(request: HttpRequest, pk: int) -> Video:
    return get_object_or_404(
        Video.objects.select_related("channel").filter(
            channel__in=Channel.objects.visible_to(request.user)
        ),
        pk=pk,
    )


def _get_person_for_user(request: HttpRequest, pk: int) -> Person:
    """One of the user's people (people are private: anyone else's is a 404)."""
    return get_object_or_404(Person.objects.of(request.user), pk=pk)


def _page(queryset: QuerySet, number: int | None, per_page: int) -> Page:
    return Paginator(queryset, per_page).get_page(number)


def _query(**values: object) -> str:
    return urlencode({k: v for k, v in values.items() if v not in (None, "")})


def _banner(request: HttpRequest) -> dict:
    return ImportJob.banner_for(request.user.pk)


@require_GET
def channel_list(request: HttpRequest) -> HttpResponse:
    search = ChannelSearchForm(request.GET)
    valid = search.is_valid()
    q = search.cleaned_data["q"] if valid else ""
    person = search.cleaned_data["person"] if valid else None
    person_type = search.cleaned_data["type"] if valid else ""
    channels = channels_of(request.user)
    if q:
        channels = channels.filter(Q(title__icontains=q) | Q(handle__icontains=q))
    if person:
        channels = channels.filter(person_id=person)
    if person_type:
        channels = channels.filter(
            person_links__owner=request.user, person_links__person__type=person_type
        )
    number = search.cleaned_data.get("page") if valid else None
    people = Person.objects.of(request.user)
    context = {
        "search": search,
        "page": _page(channels, number, CHANNELS_PER_PAGE),
        "query": _query(q=q, person=person, type=person_type),
        "people": people.only("pk", "name", "email"),
        "person_types": people.exclude(type="")
        .order_by("type")
        .values_list("type", flat=True)
        .distinct(),
        "form": ImportForm(),
        "banner": _banner(request),
    }
    if request.htmx:
        return render(request, "imports/channel_list.html#channel_table", context)
    return render(request, "imports/channel_list.html", context)


@require_http_methods(["GET", "POST"])
def start_import(request: HttpRequest) -> HttpResponse:
    """The "Add channel" form: in the dialog (HTMX: the form, then the job's live progress) or
    as a page of its own."""
    form = ImportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            job, created = form.start(request.user)
        except IntegrityError:  # the open import was retried into place meanwhile
            job, created = ImportJob.open_for(request.user, form.cleaned_data["channel"]), False
            if job is None:
                raise
        if request.htmx:
            return render(
                request, "imports/partials/import_started.html", {"job": job, "created": created}
            )
        if not created:
            messages.info(request, "This channel is already being imported: here is its progress.")
        return redirect("imports:job_detail", pk=job.pk)
    if request.htmx:
        return render(request, "imports/partials/import_form.html", {"form": form})
    return render(request, "imports/start_import.html", {"form": form})


@require_GET
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = _get_job_for_user(request, pk)
    failed = job.items.filter(status="failed").select_related("video")[:200]
    stored = MediaFile.objects.filter(video__in=job.items.values("video")).totals()
    return render(
        request,
        "imports/job_detail.html",
        {"job": job, "failed_items": failed, "stored": stored, "banner": _banner(request)},
    )


def _job_answer(request: HttpRequest, job: ImportJob) -> HttpResponse:
    if request.htmx:
        job.refresh_from_db()
        return render(request, "imports/partials/job.html#job_card", {"job": job})
    return redirect("imports:job_detail", pk=job.pk)


@require_POST
def cancel_job(request: HttpRequest, pk: int) -> HttpResponse:
    job = _get_job_for_user(request, pk)
    try:
        job.cancel()
    except IllegalTransition:
        messages.warning(request, "This import has already ended.")
    return _job_answer(request, job)


@require_POST
def retry_job(request: HttpRequest, pk: int) -> HttpResponse:
    job = _get_job_for_user(request, pk)
    try:
        job.retry_failed()
    except IllegalTransition as exc:
        messages.warning(request, str(exc))
    except IntegrityError:
        messages.warning(request, "Another import of this channel is running: retry when it ends.")
    return _job_answer(request, job)


@require_GET
def channel_detail(request: HttpRequest, pk: int) -> HttpResponse:
    channel = _get_channel_for_user(request, pk)
    filters = VideoFilterForm(request.GET)
    if not filters.is_valid():
        # A bad filter is not an error page: show everything, with the form's message.
        data = {k: v for k, v in filters.cleaned_data.items() if k not in filters.errors}
        q, stage = data.get("q", ""), data.get("stage", "")
        page_number, jobs_page = data.get("page"), data.get("jobs_page")
    else:
        q, stage = filters.cleaned_data["q"], filters.cleaned_data["stage"]
        page_number, jobs_page = filters.cleaned_data["page"], filters.cleaned_data["jobs_page"]

    videos = channel.videos.with_stage(stage).search(q).for_cards()
    jobs = ImportJob.objects.filter(owner=request.user, channel=channel).select_related("channel")
    context = {
        "channel": channel,
        "filters": filters,
        "videos": _page(videos, page_number, VIDEOS_PER_PAGE),
        "video_query": _query(q=q, stage=stage),
        "jobs": _page(jobs, jobs_page, JOBS_PER_PAGE),
        "jobs_query": _query(q=q, stage=stage, page=page_number),
        "active_jobs": jobs.filter(status__in=ImportJob.OPEN_STATUSES),
        "stats": channel.stats_for(request.user),
        "banner": _banner(request),
        "following": Follow.objects.filter(user=request.user, channel=channel).exists(),
        "follow_form": FollowForm(),
        "push": WebSubSubscription.objects.filter(channel=channel).first(),
        "stored": MediaFile.objects.filter(video__channel=channel).totals(),
        "download_form": DownloadForm(),
    }
    target = request.headers.get("HX-Target", "")
    if request.htmx and target == "video-grid":
        return render(request, "imports/channel_detail.html#video_grid", context)
    if request.htmx and target == "channel-jobs":
        return render(request, "imports/channel_detail.html#jobs_table", context)
    return render(request, "imports/channel_detail.html", context)


@require_GET
def video_detail(request: HttpRequest, pk: int) -> HttpResponse:
    video = _get_video_for_user(request, pk)
    context = {"video": video, "stored": video.stored_media, "download_form": DownloadForm()}
    return render(request, "imports/video_detail.html", context)


@require_GET
def video_media(
    request: HttpRequest, pk: int, file_pk: int, download: bool = False
) -> HttpResponse:
    """A video's stored file, to those who see its channel: played (Range requests), or saved
    with a readable name ("Download file")."""
    video = _get_video_for_user(request, pk)
    media_file = get_object_or_404(
        MediaFile.objects.select_related("video__channel"), pk=file_pk, video=video
    )
    return playback.media_response(request, media_file, as_attachment=download)


def _start_download(request: HttpRequest, videos: list[Video], what: str) -> HttpResponse | None:
    """Queue `videos` at the posted quality; a message says what happened. Returns the answer
    to an htmx request (the message, in place of the form's status), None for a plain form
    (the caller redirects)."""
    job = _queue_download(request, videos, what)
    if request.htmx:
        return render(request, "imports/partials/download_answer.html", {"job": job})
    return None


def _queue_download(request: HttpRequest, videos: list[Video], what: str) -> ImportJob | None:
    """Queue `videos` at the posted quality, a message saying what happened: the download's
    job (or the open import that holds the channel), None when nothing was queued."""
    form = DownloadForm(request.POST)
    job = None
    if not form.is_valid():
        choices = ", ".join(label for _, label in form.fields["quality"].choices)
        messages.error(request, f"Choose a quality: {choices}.")
    elif not videos:
        messages.info(request, "There is nothing to download: no imported video here.")
    else:
        quality = form.cleaned_data["quality"]
        label = dict(form.fields["quality"].choices)[quality]
        try:
            job, created = enqueue_download(request.user, videos, quality)
        except IllegalTransition as exc:
            messages.warning(request, str(exc))
        else:
            if created:
                messages.success(request, f"Downloading {what} at {label}.")
            else:
                messages.info(
                    request, "An import of this channel is running: download when it ends."
                )
    return job


@require_POST
def download_video(request: HttpRequest, pk: int) -> HttpResponse:
    """The video page's "Download", and a card's: a card's answer is the card itself, saying
    what happened (its download's stages then arrive live)."""
    video = _get_video_for_user(request, pk)
    if request.htmx and request.htmx.target == video.dom_id:
        job = _queue_download(request, [video], "this video")
        context = {"video": video, "download_answer": True, "job": job}
        return render(request, "imports/channel_detail.html#video_card", context)
    return _start_download(request, [video], "this video") or redirect(video)


@require_POST
def download_channel(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Download all at …": the channel's imported videos."""
    channel = _get_channel_for_user(request, pk)
    videos = list(
        channel.videos.filter(stage=Video.Stage.COMPLETE).only("pk", "channel_id", "youtube_id")
    )
    answer = _start_download(request, videos, f"{len(videos)} videos")
    return answer or redirect(channel)


def _shared_media_refusal(request: HttpRequest, channel_id: int) -> str:
    """Why this user may not remove the channel's stored media ("" if they may). Stored media
    is shared by everyone who sees the channel: one user must not delete what others still
    watch, so only staff, or the channel's only viewer, remove it."""
    if request.user.is_staff:
        return ""
    if Channel.viewer_ids(channel_id).exclude(pk=request.user.pk).exists():
        return (
            "Other people use this channel's stored media, so it stays: ask an administrator "
            "to remove it."
        )
    return ""


def _remove_media(request: HttpRequest, channel_id: int, files: QuerySet, back) -> HttpResponse:
    """Remove `files` (stored media of one channel) unless others use them, saying what
    happened; back to `back`'s page."""
    if refused := _shared_media_refusal(request, channel_id):
        messages.warning(request, refused)
        return redirect(back)
    removed = files.remove()
    messages.success(
        request,
        f"Removed {removed} stored file{pluralize(removed)}." if removed else "Nothing was stored.",
    )
    return redirect(back)


@require_POST
def remove_video_media(request: HttpRequest, pk: int) -> HttpResponse:
    video = _get_video_for_user(request, pk)
    return _remove_media(request, video.channel_id, video.media_files.all(), video)


@require_POST
def remove_channel_media(request: HttpRequest, pk: int) -> HttpResponse:
    channel = _get_channel_for_user(request, pk)
    return _remove_media(
        request, channel.pk, MediaFile.objects.filter(video__channel=channel), channel
    )


@require_POST
def retry_video(request: HttpRequest, pk: int) -> HttpResponse:
    video = _get_video_for_user(request, pk)
    try:
        video.retry_for(request.user)
    except IllegalTransition as exc:
        messages.warning(request, str(exc))
    except IntegrityError:
        messages.warning(request, "Another import of this channel is running: retry when it ends.")
    else:
        messages.success(request, "The video is back in its import's queue.")
    return redirect(video)


@require_GET
def artwork(request: HttpRequest, pk: str, digest: str) -> FileResponse:
    """A channel's avatar or banner, or one of its videos' thumbnails, from Chirp's storage:
    to those who see the channel, and only the pictures that are the channel's."""
    channel = _get_channel_for_user(request, int(pk))
    name = artworks.name_for(digest)
    if not channel.has_artwork(name):
        raise Http404("No such picture.")
    try:
        file = default_storage.open(name, "rb")
    except FileNotFoundError:
        raise Http404("The picture is missing.") from None
    response = FileResponse(file, content_type="image/jpeg")
    # Named by content (SHA-256): it never changes.
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    return response


@require_http_methods(["GET", "POST"])
def import_list(request: HttpRequest) -> HttpResponse:
    """ "Import a list": a file or pasted text, and the preview of what Chirp understood
    (nothing is fetched from YouTube here)."""
    form = ChannelListForm(request.POST or None, request.FILES or None)
    context: dict = {"form": form, "preview": None}
    if request.method == "POST" and form.is_valid():
        preview = form.preview(request.user)
        context["preview"] = preview
        counts = preview.counts
        if counts["total"] - counts["invalid"] - counts["duplicate"]:
            # The list is kept server-side on a draft, so "Start" runs what this preview shows.
            batch = ListBatch.draft(
                request.user,
                form.cleaned_data["list_text"],
                preview.format,
                name=form.cleaned_data["list_name"],
                settings=preview.settings,
            )
            context["batch"] = batch
            context["options"] = BatchOptionsForm.for_batch(batch)
    return render(request, "imports/import_list.html", context)


def _get_batch_for_user(request: HttpRequest, pk: int) -> ListBatch:
    """One of the user's list batches (anyone else's is a 404)."""
    return get_object_or_404(ListBatch, pk=pk, owner=request.user)


@require_POST
def start_batch(request: HttpRequest, pk: int) -> HttpResponse:
    """Start the draft a preview made, with the options chosen beside it."""
    batch = _get_batch_for_user(request, pk)
    form = BatchOptionsForm(request.POST)
    if not form.is_valid():
        errors = " ".join(m for ms in form.errors.values() for m in ms)
        messages.warning(request, f"The batch was not started: {errors}")
        return redirect("imports:import_list")
    try:
        batch.start(**form.cleaned_data)
    except IllegalTransition:
        messages.info(request, "This list was started already.")
    return redirect(batch)


@require_GET
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _get_batch_for_user(request, pk)
    if batch.status == "draft":
        return redirect("imports:import_list")
    rows = batch.report_rows()  # with each row's media and captions counted in the query
    return render(request, "imports/batch_detail.html", {"batch": batch, "rows": rows})


def _batch_answer(request: HttpRequest, batch: ListBatch) -> HttpResponse:
    """The progress block in place (htmx), the dashboard when the button was on it (htmx), or
    the page the plain form came from (`next`, on this site), else the batch's page."""
    if request.htmx and request.htmx.target == "dashboard":
        return render(request, "chirp/home.html#dashboard", dashboard.context_for(request.user))
    if request.htmx:
        batch.refresh_from_db()
        return render(request, "imports/batch_detail.html#batch_progress", {"batch": batch})
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(back)
    return redirect(batch)


def _change_batch(request: HttpRequest, pk: int, change: str, done: str) -> HttpResponse:
    batch = _get_batch_for_user(request, pk)
    try:
        getattr(batch, change)()
    except IllegalTransition:
        messages.warning(request, f"The batch is {batch.get_status_display().lower()}: {done}")
    return _batch_answer(request, batch)


@require_POST
def pause_batch(request: HttpRequest, pk: int) -> HttpResponse:
    return _change_batch(request, pk, "pause_batch", "it cannot be paused.")


@require_POST
def resume_batch(request: HttpRequest, pk: int) -> HttpResponse:
    return _change_batch(request, pk, "resume_batch", "it cannot be resumed.")


@require_POST
def cancel_batch(request: HttpRequest, pk: int) -> HttpResponse:
    return _change_batch(request, pk, "cancel", "it cannot be cancelled.")


@require_POST
def retry_batch_row(request: HttpRequest, pk: int, row: int) -> HttpResponse:
    """Try a failed row's import again (the batch goes back in line if it had ended)."""
    batch = _get_batch_for_user(request, pk)
    item = get_object_or_404(ListBatchRow.objects.select_related("import_job"), pk=row, job=batch)
    try:
        if not item.can_retry:
            raise IllegalTransition("Only a failed row can be retried.")
        item.retry_import()
    except (IllegalTransition, IntegrityError) as exc:
        message = str(exc) if isinstance(exc, IllegalTransition) else "An import is open already."
        messages.warning(request, message)
    if request.htmx:
        fresh = ListBatchRow.objects.select_related("job", "import_job", "channel", "person")
        return render(
            request, "imports/batch_detail.html#batch_row", {"row": fresh.get(pk=item.pk)}
        )
    return redirect(batch)


@require_GET
def batch_report(request: HttpRequest, pk: int) -> HttpResponse:
    """The per-row report as CSV (formula-like cells neutralised)."""
    batch = _get_batch_for_user(request, pk)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="list-{batch.pk}-report.csv"'
    csv.writer(response).writerows(batch.report_csv_rows())
    return response


@require_GET
def person_list(request: HttpRequest) -> HttpResponse:
    people = Person.objects.of(request.user).with_totals(request.user)
    return render(request, "imports/person_list.html", {"people": people})


@require_GET
def person_detail(request: HttpRequest, pk: int) -> HttpResponse:
    person = _get_person_for_user(request, pk)
    channels = channels_of(request.user).filter(person_links__person=person)
    videos = Video.objects.filter(channel__in=person.visible_channels()).select_related("channel")
    context = {
        "person": person,
        "channels": channels,
        "totals": person.totals(),
        "videos": _page(videos, request.GET.get("page"), VIDEOS_PER_PAGE),
    }
    return render(request, "imports/person_detail.html", context)


@require_GET
def export_people(request: HttpRequest) -> HttpResponse:
    """The user's people and their channels with counts, as CSV (formula-like cells
    neutralised by people_export_rows)."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="people.csv"'
    csv.writer(response).writerows(people_export_rows(request.user))
    return response


FOLLOWING_VIDEOS = 4


def _follow_answer(
    request: HttpRequest, channel: Channel, following: bool, form: FollowForm | None = None
) -> HttpResponse:
    """The toggle in place (htmx), or back to the page the form was on."""
    errors = " ".join(m for ms in form.errors.values() for m in ms) if form is not None else ""
    if request.htmx:
        context = {
            "channel": channel,
            "following": following,
            "next": request.POST.get("next", ""),
            "options": not following and request.POST.get("next") != "list",
            "form": form or FollowForm(),
            "errors": errors,
        }
        return render(request, "imports/partials/follow.html#follow_toggle", context)
    if errors:
        messages.warning(request, errors)
    if request.POST.get("next") == "list":
        return redirect("imports:channel_list")
    if request.POST.get("next") == "following":
        return redirect("imports:following")
    return redirect(channel)


@require_POST
def follow_channel(request: HttpRequest, pk: int) -> HttpResponse:
    channel = _get_channel_for_user(request, pk)
    form = FollowForm(request.POST)
    if not form.is_valid():
        return _follow_answer(request, channel, following=False, form=form)
    follow, _ = Follow.start(request.user, channel, **form.cleaned_data)
    if not request.htmx:
        messages.success(
            request, f"You follow {channel}: its new videos will come in by themselves."
        )
        if follow.backfill is not None:
            messages.info(request, f"Importing its videos since {follow.since:%Y-%m-%d}.")
    return _follow_answer(request, channel, following=True)


@require_POST
def unfollow_channel(request: HttpRequest, pk: int) -> HttpResponse:
    channel = _get_channel_for_user(request, pk)
    if Follow.stop(request.user, channel) and not request.htmx:
        messages.info(request, f"You no longer follow {channel}.")
    return _follow_answer(request, channel, following=False)


@require_GET
def following(request: HttpRequest) -> HttpResponse:
    """The channels the user follows, the newest videos of each, and when and how each was
    last checked."""
    follows = list(Follow.objects.filter(user=request.user).select_related("channel"))
    for follow in follows:
        follow.newest = list(follow.channel.videos.for_cards()[:FOLLOWING_VIDEOS])
    context = {
        "follows": follows,
        "poll_minutes": settings.CHIRP_FOLLOW_POLL_MINUTES,
        "full_days": settings.CHIRP_FOLLOW_FULL_CHECK_DAYS,
        "newest_shown": FOLLOWING_VIDEOS,
    }
    return render(request, "imports/following.html", context)


# -- WebSub ----------------------------------------------------------------------------------


@login_not_required  # the hub signs in with the token and the signature, not a session
@csrf_exempt  # the hub posts from outside, with no CSRF token; nothing else is exempt
@require_http_methods(["GET", "POST"])
async def websub_callback(request: HttpRequest, token: str) -> HttpResponse:
    """The hub's verifications (GET) and notifications (POST) of one subscription. Unknown
    token: 404. A notification is answered at once (`websub.answer_notification`, as the web
    server's route in front of Django answers it); the worker handles it (imports/websub.py).
    Asynchronous, with its database work in the store threads (imports/websub.py says why)."""
    if request.method == "GET":
        return await websub.in_store_thread(_verify_websub, request, token)

    async def read_body(limit: int) -> bytes:
        return request.read(limit)  # in memory already (chirp/bodylimit.py caps what is read)

    answer = await websub.answer_notification(
        token,
        request.META.get("CONTENT_LENGTH") or None,
        read_body,
        request.headers.get("X-Hub-Signature"),
    )
    response = HttpResponse(answer.text, status=answer.status)
    for name, value in answer.headers:
        response[name] = value
    return response


def _verify_websub(request: HttpRequest, token: str) -> HttpResponse:
    sub = get_object_or_404(WebSubSubscription, token=token)
    mode = request.GET.get("hub.mode", "")
    topic = request.GET.get("hub.topic", "")
    if mode == "denied" and topic == sub.topic:
        sub.deny(request.GET.get("hub.reason", "")[:500])
        return HttpResponse("", content_type="text/plain")
    lease = request.GET.get("hub.lease_seconds", "")
    challenge = request.GET.get("hub.challenge", "")
    if not challenge or not sub.verify(mode, topic, int(lease) if lease.isdigit() else None):
        raise Http404("No such subscription request.")
    return HttpResponse(challenge, content_type="text/plain")
