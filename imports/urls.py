from django.urls import path

from imports import views

app_name = "imports"
urlpatterns = [
    path("", views.channel_list, name="channel_list"),
    path("add/", views.start_import, name="start_import"),
    path("<int:pk>/", views.channel_detail, name="channel_detail"),
    path("<int:pk>/follow/", views.follow_channel, name="follow_channel"),
    path("<int:pk>/unfollow/", views.unfollow_channel, name="unfollow_channel"),
    path("following/", views.following, name="following"),
    path("imports/<int:pk>/", views.job_detail, name="job_detail"),
    path("imports/<int:pk>/cancel/", views.cancel_job, name="cancel_job"),
    path("imports/<int:pk>/retry/", views.retry_job, name="retry_job"),
    path("videos/<int:pk>/", views.video_detail, name="video_detail"),
    path("videos/<int:pk>/retry/", views.retry_video, name="retry_video"),
]
