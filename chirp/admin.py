from __future__ import annotations

from dataclasses import dataclass

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html

from chirp import engine
from chirp.jobs import IllegalTransition, Job
from chirp.models import ApiToken, LaneSlot


def _count(n: int, noun: str) -> str:
    """ "1 job", "3 jobs": counts read as a person says them, never "job(s)"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _were(n: int) -> str:
    return "was" if n == 1 else "were"


class JobAdminMixin:
    """What every job's admin shares. A job is read-only here: its status, counters, attempts
    and times move only through the engine and these actions (retry failed, cancel, resume
    now), never through a form, and jobs start from the app's pages or the API."""

    actions = ["retry_failed", "cancel", "resume_now"]
    item_noun = "item"
    job_noun = "job"

    class Media:
        css = {"all": ["chirp-admin.css"]}

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # the change page is a view; a POST to it is refused

    @admin.display(description="progress")
    def progress(self, job: Job) -> str:
        """One small bar with its counts; the breakdown in its tooltip (no wrapped column)."""
        breakdown = (
            f"{job.processed}/{job.total} ({job.percent}%): {job.done} done, "
            f"{job.skipped} skipped, {job.failed} failed, {job.cancelled} cancelled"
        )
        return format_html(
            '<span class="chirp-progress" title="{}"><progress value="{}" max="{}"></progress>'
            "{}/{}{}</span>",
            breakdown,
            job.processed,
            max(job.total, 1),
            job.processed,
            job.total,
            format_html(' <span class="chirp-failed">{} failed</span>', job.failed)
            if job.failed
            else "",
        )

    @admin.display(description="created", ordering="created")
    def created_at(self, job: Job) -> str:
        return date_format(timezone.localtime(job.created), "Y-m-d H:i")

    @admin.action(description="Retry the failed items of the selected jobs")
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        retried, refused = 0, 0
        for job in queryset:
            try:
                retried += job.retry_failed()
            except (IllegalTransition, IntegrityError):  # still running, or a duplicate
                refused += 1
        sent = _count(retried, f"failed {self.item_noun}")
        self.message_user(request, f"{sent} sent back to the queue.")
        if refused:
            self.message_user(
                request,
                f"{_count(refused, self.job_noun)} had nothing to retry or "
                f"{_were(refused)} still running.",
                messages.WARNING,
            )

    @admin.action(description="Cancel the selected jobs")
    def cancel(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        cancelled, skipped = 0, []
        for job in queryset.order_by("pk"):
            try:
                job.cancel()
            except IllegalTransition:  # it had ended (maybe a moment ago): say how
                job.refresh_from_db(fields=["status"])
                skipped.append(f"#{job.pk} already {job.get_status_display().lower()}")
                continue
            cancelled += 1
        self.message_user(request, f"{_count(cancelled, self.job_noun)} cancelled.")
        if skipped:
            self.message_user(
                request,
                f"{_count(len(skipped), self.job_noun)} had already ended and "
                f"{_were(len(skipped))} not cancelled: " + ", ".join(skipped) + ".",
                messages.WARNING,
            )

    @admin.action(description="Resume the selected waiting jobs now")
    def resume_now(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        """Wake the lane for jobs that wait (queued, handed back in a pause, or left by a
        worker that died), lifting the lane's pause if there is one."""
        lane = self.model.lane
        waiting = engine.runnable_jobs(self.model).order_by("enqueued", "pk")
        place = {pk: ahead for ahead, pk in enumerate(waiting.values_list("pk", flat=True))}
        woken, skipped = [], []
        for job in queryset.order_by("pk"):
            if job.pk in place:
                ahead = place[job.pk]
                woken.append(f"#{job.pk} ({ahead} ahead of it)" if ahead else f"#{job.pk} (next)")
            elif job.is_terminal:
                skipped.append(f"#{job.pk} already {job.get_status_display().lower()}")
            else:
                skipped.append(f"#{job.pk} is running now")
        if woken:
            lifted = self.lift_pause()
            for _ in range(min(len(place), engine.concurrency(lane))):
                engine.wake_lane_on_commit(lane)
            self.message_user(
                request,
                f"The {lane} lane was woken for {', '.join(woken)}: "
                "each runs as soon as a slot is free, in the lane's order."
                + (f" {lifted}" if lifted else ""),
                messages.SUCCESS,
            )
        if skipped:
            self.message_user(
                request,
                f"{_count(len(skipped), self.job_noun)} {_were(len(skipped))} not waiting and "
                f"{_were(len(skipped))} not resumed: " + ", ".join(skipped) + ".",
                messages.WARNING,
            )

    def lift_pause(self) -> str:
        """End the lane's pause, if its jobs have one; returns what staff should be told."""
        return ""


@dataclass
class SlotRow:
    """One lane slot as the live lanes page shows it."""

    number: int
    slot: LaneSlot | None
    job: Job | None
    job_url: str
    stale: bool


@dataclass
class LaneRow:
    name: str
    concurrency: int
    slots: list[SlotRow]
    queue: list[tuple[Job, str]]  # the waiting jobs, in the order the engine takes them
    waiting: int


def _admin_url(job: Job) -> str:
    try:
        return reverse(f"admin:{job._meta.app_label}_{job._meta.model_name}_change", args=[job.pk])
    except NoReverseMatch:  # a job model without an admin
        return ""


def live_lanes(queue_length: int = 20) -> list[LaneRow]:
    """Every lane: who holds each of its slots and runs which job, and its queue in order.

    A slot runs the job whose lease (`worker`) is the slot holder's token: a runner takes its
    slot and its job with the same token (chirp.engine)."""
    stale_before = engine.lease_cutoff()
    rows = []
    for name, model in sorted(engine.lanes().items()):
        held = {slot.slot: slot for slot in LaneSlot.objects.filter(lane=name)}
        holders = [slot.holder for slot in held.values() if slot.holder]
        running = {job.worker: job for job in model.objects.filter(worker__in=holders)}
        slots = []
        for number in range(max(engine.concurrency(name), max(held, default=-1) + 1)):
            slot = held.get(number)
            job = running.get(slot.holder) if slot and slot.holder else None
            stale = bool(
                slot and slot.holder and (slot.heartbeat is None or slot.heartbeat < stale_before)
            )
            slots.append(SlotRow(number, slot, job, _admin_url(job) if job else "", stale))
        waiting = engine.runnable_jobs(model).select_related("owner").order_by("enqueued", "pk")
        queue = [(job, _admin_url(job)) for job in waiting[:queue_length]]
        rows.append(LaneRow(name, engine.concurrency(name), slots, queue, waiting.count()))
    return rows


@admin.register(LaneSlot)
class LiveLanesAdmin(admin.ModelAdmin):
    """The lanes, live: which worker holds which slot, since when, its last heartbeat, the
    job it runs, and each lane's queue in order. The page reloads itself every few seconds."""

    REFRESH_SECONDS = 5

    class Media:
        css = {"all": ["chirp-admin.css"]}
        js = ["chirp-admin.js"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context=None) -> TemplateResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Live lanes",
            "opts": self.model._meta,
            "media": self.media,
            "lanes": live_lanes(),
            "lease_seconds": settings.CHIRP_LEASE_SECONDS,
            "refresh_seconds": self.REFRESH_SECONDS,
            "now": timezone.now(),
        }
        return TemplateResponse(request, "admin/chirp/live_lanes.html", context)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """A token acts as its user, so only a superuser may hold or mint one for someone else:
    other staff see, create and revoke their own tokens only."""

    list_display = ["name", "user", "hint", "created", "last_used", "expires"]
    list_filter = ["user"]
    search_fields = ["name", "user__username"]
    fields = ["user", "name", "expires", "hint", "created", "last_used"]
    readonly_fields = ["hint", "created", "last_used"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiToken]:
        tokens = super().get_queryset(request)
        return tokens if request.user.is_superuser else tokens.filter(user=request.user)

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None):
        # A token never changes hands: moving one's own key to another user would let its
        # holder act as them.
        return [*self.readonly_fields, "user"] if obj is not None else self.readonly_fields

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "user" and not request.user.is_superuser:
            kwargs["queryset"] = get_user_model().objects.filter(pk=request.user.pk)
            kwargs["initial"] = request.user.pk
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: ApiToken, form, change: bool) -> None:
        if not change:
            key = obj.set_new_key()
            messages.warning(
                request,
                f"The new token's key is {key} — copy it now: it cannot be shown again.",
            )
        super().save_model(request, obj, form, change)


@admin.register(AccessAttempt)
class LoginFailureAdmin(AccessAttemptAdmin):
    """django-axes' failed sign-ins, with a way to let a locked-out person (or address) back in."""

    actions = ["lift_lockout", *AccessAttemptAdmin.actions]

    @admin.action(
        description="Lift the lock-out (forget these failed sign-ins)", permissions=["delete"]
    )
    def lift_lockout(self, request: HttpRequest, queryset: QuerySet[AccessAttempt]) -> None:
        names = sorted({attempt.username or attempt.ip_address for attempt in queryset})
        deleted, _ = queryset.delete()
        self.message_user(
            request,
            f"Lock-out lifted for {', '.join(names)}: "
            f"{_count(deleted, 'record')} of failures forgotten.",
            messages.SUCCESS,
        )
