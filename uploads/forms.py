from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from django import forms

from uploads.fetching import FetchError, check_url


class ScrapeJobForm(forms.Form):
    url = forms.URLField(
        label="Page address",
        max_length=2048,
        assume_scheme="https",
        widget=forms.URLInput(
            attrs={"placeholder": "https://example.com/gallery", "autocomplete": "url"}
        ),
        error_messages={"required": "Paste the address of a web page."},
    )

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            url = check_url(url)
        except FetchError as exc:
            raise forms.ValidationError(str(exc), code="refused") from None
        # One spelling per page, so "scraped before" recognises it: lower-case scheme and host.
        parts = urlsplit(url)
        return urlunsplit(
            (parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, "")
        )


class GalleryFilterForm(forms.Form):
    FACES_CHOICES = [("", "All"), ("with", "With faces"), ("without", "Without faces")]

    faces = forms.ChoiceField(choices=FACES_CHOICES, required=False)
    page = forms.IntegerField(min_value=1, required=False)


class FaceReviewForm(forms.Form):
    # "true" or "false": the state asked for, not a toggle, so a repeated submit is harmless.
    not_a_face = forms.BooleanField(required=False)


class PageForm(forms.Form):
    page = forms.IntegerField(min_value=1, required=False)
