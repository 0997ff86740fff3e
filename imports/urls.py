from django.urls import path, re_path

from imports import views

app_name = "imports"
urlpatterns = [
    path("", views.channel_list, name="channel_list"),
    path("add/", views.start_import, name="start_import"),
    path("lists/", views.import_list, name="import_list"),
    path("lists/<int:pk>/", views.batch_detail, name="batch_detail"),
    path("lists/<int:pk>/start/", views.start_batch, name="start_batch"),
    path("lists/<int:pk>/pause/", views.pause_batch, name="pause_batch"),
    path("lists/<int:pk>/resume/", views.resume_batch, name="resume_batch"),
    path("lists/<int:pk>/cancel/", views.cancel_batch, name="cancel_batch"),
    path("lists/<int:pk>/rows/<int:row>/retry/", views.retry_batch_row, name="retry_batch_row"),
    path("lists/<int:pk>/report.csv", views.batch_report, name="batch_report"),
    path("people/", views.person_list, name="person_list"),
    path("people/export.csv", views.export_people, name="export_people"),
    path("people/<int:pk>/", views.person_detail, name="person_detail"),
    path("<int:pk>/", views.channel_detail, name="channel_detail"),
    path("<int:pk>/follow/", views.follow_channel, name="follow_channel"),
    path("<int:pk>/unfollow/", views.unfollow_channel, name="unfollow_channel"),
    path("following/", views.following, name="following"),
    path("imports/<int:pk>/", views.job_detail, name="job_detail"),
    path("imports/<int:pk>/cancel/", views.cancel_job, name="cancel_job"),
    path("imports/<int:pk>/retry/", views.retry_job, name="retry_job"),
    path("videos/<int:pk>/", views.video_detail, name="video_detail"),
    path("videos/<int:pk>/retry/", views.retry_video, name="retry_video"),
    path("videos/<int:pk>/media/<int:file_pk>/", views.video_media, name="video_media"),
    path(
        "videos/<int:pk>/media/<int:file_pk>/file/",
        views.video_media,
        {"download": True},
        name="video_media_file",
    ),
    path("videos/<int:pk>/download/", views.download_video, name="download_video"),
    path("videos/<int:pk>/media/remove/", views.remove_video_media, name="remove_video_media"),
    path("<int:pk>/download/", views.download_channel, name="download_channel"),
    path("<int:pk>/media/remove/", views.remove_channel_media, name="remove_channel_media"),
    re_path(
        r"^(?P<pk>[0-9]+)/artwork/(?P<digest>[0-9a-f]{64})\.jpg$", views.artwork, name="artwork"
    ),
]
