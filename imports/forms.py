from __future__ import annotations

import json
from datetime import date
from typing import Any

from django import forms
from django.conf import settings
from django.utils import timezone

from imports import lists
from imports.models import ImportJob, Quality, Video
from imports.models.following import QUALITIES, QUALITY_CHOICES
from imports.youtube import InvalidChannelInput, parse_channel_input

MAX_LIMIT = 100_000


def _past_day(day: date | None) -> date | None:
    """A backfill's date: today or before (nothing is published in the future)."""
    if day is not None and day > timezone.localdate():
        raise forms.ValidationError(
            "That date is in the future: choose today or an earlier day.", code="future"
        )
    return day


class TextOnlyField(forms.CharField):
    """A CharField that refuses a value that is not text (what a JSON body can send: null, true,
    a number, a list), rather than reading str(value) as if it had been typed."""

    default_error_messages = {"not_text": "Enter text."}

    def to_python(self, value: Any) -> str:
        if not isinstance(value, str):
            raise forms.ValidationError(self.error_messages["not_text"], code="not_text")
        return super().to_python(value)


class ImportForm(forms.Form):
    """What to import: a channel (any form parse_channel_input accepts) and the options.

    A link to a channel's Shorts or Live tab (`youtube.com/@x/shorts`) imports that tab, unless
    another tab than Videos (the default) is chosen.
    """

    # No max_length: parse_channel_input says what is too long, in Chirp's words (and a browser
    # would silently cut a longer paste at the field's maxlength).
    channel = TextOnlyField(
        label="Channel",
        widget=forms.TextInput(
            attrs={"placeholder": "@handle or youtube.com/…", "autocomplete": "off"}
        ),
        error_messages={
            "required": "Enter a YouTube channel: its @handle or a link to it.",
            "not_text": "Enter the channel as text: its @handle or a link to it.",
        },
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
    since = forms.DateField(
        label="Published since",
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="Only the videos published on or after this day; empty for all.",
        error_messages={"invalid": "Enter the date as YYYY-MM-DD, for example 2026-03-01."},
    )
    quality = forms.ChoiceField(
        label="Download media",
        choices=[("", "No media"), *Quality.choices],
        required=False,
        help_text="Store each video's file in Chirp at this quality.",
        error_messages={
            "invalid_choice": "Choose the media to download: "
            + ", ".join(["none", *Quality.values])
            + "."
        },
    )

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

    def clean_since(self) -> date | None:
        return _past_day(self.cleaned_data.get("since"))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        ref = data.get("ref")
        if ref is not None and ref.tab and data.get("tab") == ImportJob.Tab.VIDEOS:
            data["tab"] = ref.tab
        return data

    def start(self, owner) -> tuple[ImportJob, bool]:
        data = self.cleaned_data
        return ImportJob.start(
            owner,
            data["ref"],
            tab=data["tab"],
            limit=data.get("limit"),
            only_new=data.get("only_new", False),
            since=data.get("since"),
            media_quality=data.get("quality") or "",
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImportForm:
        """The API's camelCase body ({channelUrl, tab, limit, onlyNew, since, quality}) as form
        data. The channel is passed as sent (TextOnlyField refuses what is not text); the rest as
        text (`since` as JSON when it is not a string, so that 20260301 is refused, not read).
        `quality`: null, "none" or absent for no media; 720 and "720" alike."""
        only_new = data.get("onlyNew", data.get("only_new"))
        name = "channelUrl" if "channelUrl" in data else "channel"
        values = {
            "tab": data.get("tab") or ImportJob.Tab.VIDEOS,
            "limit": "" if data.get("limit") is None else data.get("limit"),
            "quality": "" if data.get("quality") in (None, "none") else data.get("quality"),
        }
        if only_new in (True, "true", "on", "1", 1):
            values["only_new"] = "on"
        since = data.get("since")
        if since is not None:
            values["since"] = since if isinstance(since, str) else json.dumps(since)
        form = cls(
            {
                "channel": data.get(name, ""),
                **{k: v if isinstance(v, str) else str(v) for k, v in values.items()},
            }
        )
        form.fields["channel"].error_messages["not_text"] = f"{name} must be text."
        return form


class ChannelSearchForm(forms.Form):
    q = forms.CharField(max_length=200, required=False, strip=True)
    page = forms.IntegerField(min_value=1, required=False)
    # The channel list filtered by person (their id) or by people's type.
    person = forms.IntegerField(min_value=1, required=False)
    type = forms.CharField(max_length=100, required=False, strip=True)


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


class ChannelListForm(forms.Form):
    """A channel list to preview: a file, or text pasted in. `clean()` reads it
    (imports.lists.parse_list); a list nothing can be read from is the form's error."""

    file = forms.FileField(label="A file", required=False)
    text = forms.CharField(
        label="Or paste the list",
        required=False,
        strip=False,
        widget=forms.Textarea(
            attrs={
                "rows": 8,
                "placeholder": "name,email,type,channel_url\n…",
                "spellcheck": "false",
            }
        ),
    )
    format = forms.ChoiceField(
        label="Format",
        choices=[("", "Detect from the content"), *lists.FORMATS.items()],
        required=False,
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        upload, text = data.get("file"), data.get("text") or ""
        if upload and text.strip():
            raise forms.ValidationError("Upload a file or paste a list, not both.")
        if not upload and not text.strip():
            raise forms.ValidationError("Choose a file, or paste a list of channels.")
        # One byte over the limit is enough for parse_list to refuse the file by its size.
        content = upload.read(settings.CHIRP_LIST_MAX_BYTES + 1) if upload else text
        try:
            data["list"] = lists.parse_list(content, data.get("format") or None)
            # The list's text, kept on the batch its preview can start (within the limit:
            # parse_list refused anything larger).
            data["list_text"] = lists.decode(content)
        except lists.InvalidList as exc:
            raise forms.ValidationError(str(exc), code="invalid_list") from None
        data["list_name"] = upload.name if upload else ""
        return data

    def preview(self, user) -> lists.Preview:
        return lists.preview_list(self.cleaned_data["list"], user)


class FollowForm(forms.Form):
    """A follow's options: the media quality of new videos, and a backfill date."""

    quality = forms.ChoiceField(
        label="Media of new videos",
        choices=QUALITY_CHOICES,
        required=False,
        error_messages={
            "invalid_choice": "Choose a quality: " + ", ".join(QUALITIES) + ".",
        },
    )
    since = forms.DateField(
        label="Also import videos since",
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": "Enter the date as YYYY-MM-DD, for example 2026-03-01."},
    )

    def clean_quality(self) -> str:
        return self.cleaned_data.get("quality") or "none"

    def clean_since(self) -> date | None:
        return _past_day(self.cleaned_data.get("since"))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FollowForm:
        """The API's body ({quality?, since?}): each must be text when given."""
        values = {}
        for name in ("quality", "since"):
            value = data.get(name)
            if value is None:
                continue
            values[name] = value if isinstance(value, str) else json.dumps(value)
        return cls(values)


class BatchOptionsForm(forms.Form):
    """A list batch's options (the preview's Start form, the API's start, the CLI's flags):
    what a new channel's first import takes at most, a since-date, whether videos already
    imported are skipped, the media quality, and whether the channels are followed."""

    limit = forms.IntegerField(
        label="At most this many videos a new channel",
        required=False,
        min_value=1,
        max_value=MAX_LIMIT,
    )
    since = forms.DateField(
        label="Only videos published since",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter the date as YYYY-MM-DD."},
    )
    only_new = forms.BooleanField(label="Skip videos already imported", required=False)
    quality = forms.ChoiceField(
        label="Media quality",
        choices=QUALITY_CHOICES,
        required=False,
        error_messages={"invalid_choice": "Choose a quality: " + ", ".join(QUALITIES) + "."},
    )
    follow = forms.BooleanField(label="Follow new uploads", required=False)

    def clean_quality(self) -> str:
        return self.cleaned_data.get("quality") or "none"

    @classmethod
    def for_batch(cls, batch: Any) -> BatchOptionsForm:
        """The Start form, pre-filled with the draft's options (which the list's settings
        pre-filled)."""
        return cls(initial={name: getattr(batch, name) for name in cls.base_fields})

    # The API's names for the options, and the JSON type each must have.
    JSON_FIELDS = {
        "limit": ("limit", int),
        "since": ("since", str),
        "skipExisting": ("only_new", bool),
        "quality": ("quality", str),
        "follow": ("follow", bool),
    }

    @classmethod
    def from_json(cls, data: dict[str, Any], defaults: dict[str, Any]) -> BatchOptionsForm:
        """The API's options ({limit?, since?, skipExisting?, quality?, follow?}) over the
        list's own settings; a value of the wrong JSON type is an error, not a guess."""
        values = {**defaults}
        for key, (name, kind) in cls.JSON_FIELDS.items():
            if key not in data or data[key] is None:
                continue
            value = data[key]
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                form = cls({})
                form.is_valid()
                form.add_error(None, f"{key} must be {_JSON_KIND[kind]}.")
                return form
            values[name] = value
        form = cls({k: v for k, v in values.items() if v is not None})
        return form


_JSON_KIND = {int: "a whole number", str: "text", bool: "true or false"}


class DownloadForm(forms.Form):
    """A video's "Download" button, or a channel's "download all at …": the quality."""

    quality = forms.ChoiceField(choices=Quality.choices, initial=Quality.P720)
