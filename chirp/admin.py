from __future__ import annotations

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db import IntegrityError
from django.db.models import QuerySet
from django.http import HttpRequest

from chirp.jobs import IllegalTransition, Job
from chirp.models import ApiToken


class JobAdminMixin:
    """The actions every job's admin has: retry the failed items, and cancel."""

    actions = ["retry_failed", "cancel"]
    item_noun = "item"
    job_noun = "job"

    @admin.action(description="Retry the failed items of the selected jobs")
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        retried, refused = 0, 0
        for job in queryset:
            try:
                retried += job.retry_failed()
            except (IllegalTransition, IntegrityError):  # still running, or a duplicate
                refused += 1
        self.message_user(request, f"{retried} failed {self.item_noun}(s) sent back to the queue.")
        if refused:
            self.message_user(
                request,
                f"{refused} {self.job_noun}(s) had nothing to retry or were still running.",
                messages.WARNING,
            )

    @admin.action(description="Cancel the selected jobs")
    def cancel(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        cancelled = 0
        for job in queryset:
            try:
                job.cancel()
            except IllegalTransition:
                continue
            cancelled += 1
        self.message_user(request, f"{cancelled} {self.job_noun}(s) cancelled.")


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
            f"Lock-out lifted for {', '.join(names)}: {deleted} record(s) of failures forgotten.",
            messages.SUCCESS,
        )
