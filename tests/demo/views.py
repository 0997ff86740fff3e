from __future__ import annotations

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from chirp.engine import wake_lane_on_commit
from tests.demo.models import DemoJob


class DemoJobForm(forms.ModelForm):
    class Meta:
        model = DemoJob
        fields = ["size", "delay", "fail_numbers", "threads"]


@require_http_methods(["GET", "POST"])
def jobs(request: HttpRequest) -> HttpResponse:
    form = DemoJobForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        form.instance.owner = request.user
        job = form.save()
        wake_lane_on_commit(job.lane)
        return redirect("demo:jobs")
    return render(
        request,
        "demo/jobs.html",
        {"form": form, "jobs": DemoJob.objects.filter(owner=request.user)},
    )


@require_POST
def cancel_job(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(DemoJob, pk=pk, owner=request.user)
    job.cancel()
    return redirect("demo:jobs")
