from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from imports.models import ImportJob, Video
from imports.youtube import InvalidChannelInput, parse_channel_input

MAX_LIMIT = 100_000


class ImportForm(forms.Form):
    """What to import: a channel (any form parse_channel_input accepts) and the options."""

    channel = forms.CharField(
        label="Channel",
        max_length=2048,
        widget=forms.TextInput(
            attrs={"placeholder": "@handle or youtube.com/…", "autocomplete": "off"}
        ),
        error_messages={"required": "Enter a YouTube channel: its @handle or a link to it."},
    )
    tab = forms.ChoiceField(
        label="Videos from",
        choices=ImportJob.Tab.choices,
        initial=ImportJob.Tab.VIDEOS,
        required=False,
    )
    limit = forms.IntegerField(
        label="At most",
        min_value=1,
        max_value=MAX_LIMIT,
        required=False,
        help_text="The newest videos first; empty for all of them.",
    )
    only_new = forms.BooleanField(label="Only videos new since the last import", required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["limit"].initial = settings.CHIRP_IMPORT_FIRST_LIMIT or None

    def clean_channel(self) -> str:
        try:
            self.cleaned_data["ref"] = parse_channel_input(self.cleaned_data["channel"])
        except InvalidChannelInput as exc:
            raise forms.ValidationError(str(exc), code="invalid") from None
        return self.cleaned_data["ref"].url

    def clean_tab(self) -> str:
        return self.cleaned_data.get("tab") or ImportJob.Tab.VIDEOS

    def start(self, owner) -> tuple[ImportJob, bool]:
        data = self.cleaned_data
        return ImportJob.start(
            owner,
            data["ref"],
            tab=data["tab"],
            limit=data.get("limit"),
            only_new=data.get("only_new", False),
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImportForm:
        """The API's camelCase body ({channelUrl, tab, limit, onlyNew}) as form data."""
        only_new = data.get("onlyNew", data.get("only_new"))
        values = {
            "channel": data.get("channelUrl", data.get("channel", "")),
            "tab": data.get("tab") or ImportJob.Tab.VIDEOS,
            "limit": "" if data.get("limit") is None else data.get("limit"),
        }
        if only_new in (True, "true", "on", "1", 1):
            values["only_new"] = "on"
        return cls({k: v if isinstance(v, str) else str(v) for k, v in values.items()})


class ChannelSearchForm(forms.Form):
    q = forms.CharField(max_length=200, required=False, strip=True)
    page = forms.IntegerField(min_value=1, required=False)


class VideoFilterForm(forms.Form):
    STAGES = [("", "All stages"), ("importing", "Importing"), *Video.Stage.choices]

    q = forms.CharField(
        max_length=200,
        required=False,
        strip=True,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "Search titles and transcripts"}
        ),
    )
    stage = forms.ChoiceField(choices=STAGES, required=False)
    page = forms.IntegerField(min_value=1, required=False)
    jobs_page = forms.IntegerField(min_value=1, required=False)


class JobsPageForm(forms.Form):
    page = forms.IntegerField(min_value=1, required=False)
    limit = forms.IntegerField(min_value=1, max_value=100, required=False)
