from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from django import forms

from uploads.fetching import FetchError, check_url
from uploads.models import Image, ImageQuerySet, ScrapeJob, Sighting


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
    """The gallery's filters, from the query string. Every choice is the user's own: their
    jobs, the pages their jobs found images on; an unknown value is an error, not a leak."""

    FACES_CHOICES = [("", "All"), ("with", "With faces"), ("without", "Without faces")]
    SORT_CHOICES = [("", "Newest first"), ("oldest", "Oldest first"), ("faces", "Most faces")]

    faces = forms.ChoiceField(choices=FACES_CHOICES, required=False)
    job = forms.ModelChoiceField(
        queryset=ScrapeJob.objects.none(),
        required=False,
        empty_label="All jobs",
        error_messages={"invalid_choice": "That job is not one of yours."},
    )
    on_page = forms.ChoiceField(
        label="Page",
        required=False,
        error_messages={"invalid_choice": "Your jobs found no images on that page."},
    )
    found_from = forms.DateField(
        label="Found from", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    found_to = forms.DateField(
        label="to", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    sort = forms.ChoiceField(choices=SORT_CHOICES, required=False)
    page = forms.IntegerField(min_value=1, required=False, widget=forms.HiddenInput)

    def __init__(self, data, user) -> None:
        super().__init__(data)
        self.user = user
        self.fields["job"].queryset = ScrapeJob.objects.filter(owner=user)
        self.fields["job"].label_from_instance = lambda job: (
            f"{job.url} · {job.created:%Y-%m-%d %H:%M}"
        )
        pages = (
            Sighting.objects.filter(owner=user)
            .order_by("page_url")
            .values_list("page_url", flat=True)
            .distinct()
        )
        self.fields["on_page"].choices = [("", "All pages"), *((url, url) for url in pages)]

    def filter(self, images: ImageQuerySet) -> ImageQuerySet:
        """The images that pass the valid filters (an invalid one is ignored and reported)."""
        self.is_valid()
        data = self.cleaned_data
        if data.get("faces") == "with":
            images = images.with_faces()
        elif data.get("faces") == "without":
            images = images.without_faces()
        if data.get("job"):
            images = images.found_by_job(data["job"])
        if data.get("on_page"):
            images = images.found_on_page(self.user, data["on_page"])
        if data.get("found_from"):
            images = images.filter(seen_by_user__date__gte=data["found_from"])
        if data.get("found_to"):
            images = images.filter(seen_by_user__date__lte=data["found_to"])
        if data.get("sort") == "oldest":
            images = images.order_by("seen_by_user", "pk")
        elif data.get("sort") == "faces":
            images = images.order_by(f"-{images.face_count_field}", "-seen_by_user", "-pk")
        return images

    def query(self) -> str:
        """The valid filters as a query string, for the pagination links."""
        self.is_valid()
        names = [name for name in self.fields if name != "page"]
        return urlencode(
            {
                name: self.data[name]
                for name in names
                if name in self.cleaned_data and self.data.get(name)
            }
        )


class ImageIdsField(forms.Field):
    """Several image ids (checkboxes named alike); which of them the user may touch is the
    view's question, not the field's."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[int]:
        try:
            return sorted({int(pk) for pk in value or ()})
        except (TypeError, ValueError):
            raise forms.ValidationError("Those are not images.", code="invalid") from None


class ImageSelectionForm(forms.Form):
    image = ImageIdsField(error_messages={"required": "Select at least one image first."})

    def __init__(self, data, user) -> None:
        super().__init__(data)
        self.user = user

    def clean_image(self) -> list[int]:
        # Another user's images are left out as if they did not exist.
        pks = self.cleaned_data["image"]
        visible = Image.objects.visible_to(self.user).filter(pk__in=pks)
        if not visible.exists():
            raise forms.ValidationError("Select at least one image first.", code="required")
        return pks

    def images(self) -> ImageQuerySet:
        return Image.objects.visible_to(self.user).filter(pk__in=self.cleaned_data["image"])


class FaceReviewForm(forms.Form):
    # "true" or "false": the state asked for, not a toggle, so a repeated submit is harmless.
    not_a_face = forms.BooleanField(required=False)


class PageForm(forms.Form):
    page = forms.IntegerField(min_value=1, required=False)
