from django.urls import path

from uploads import api

app_name = "uploads_api"
urlpatterns = [
    path("scrape-jobs", api.scrape_jobs, name="jobs"),
    path("scrape-jobs/<int:pk>", api.scrape_job, name="job"),
    path("scrape-jobs/<int:pk>/retry", api.retry_scrape_job, name="retry_job"),
]
