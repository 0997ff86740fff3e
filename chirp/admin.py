from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest

from chirp.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "hint", "created", "last_used"]
    list_filter = ["user"]
    search_fields = ["name", "user__username"]
    fields = ["user", "name", "hint", "created", "last_used"]
    readonly_fields = ["hint", "created", "last_used"]

    def save_model(self, request: HttpRequest, obj: ApiToken, form, change: bool) -> None:
        if not change:
            key = obj.set_new_key()
            messages.warning(
                request,
                f"The new token's key is {key} — copy it now: it cannot be shown again.",
            )
        super().save_model(request, obj, form, change)
