from django.urls import path

from imports import api

app_name = "imports_api"
urlpatterns = [
    path("import", api.imports, name="imports"),
    path("import/<int:pk>", api.import_job, name="import_job"),
    path("lists", api.channel_lists, name="channel_lists"),
    path("lists/<int:pk>", api.channel_list_batch, name="channel_list_batch"),
    path("<int:pk>/jobs", api.channel_jobs, name="channel_jobs"),
    path("<int:pk>/jobs/active", api.active_channel_jobs, name="active_channel_jobs"),
    path("<int:pk>/stats", api.channel_stats, name="channel_stats"),
    path("<int:pk>/follow", api.channel_follow, name="channel_follow"),
]
