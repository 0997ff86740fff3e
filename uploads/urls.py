from django.urls import path

from uploads import views

app_name = "uploads"
urlpatterns = [
    path("", views.uploads_page, name="page"),
    path("jobs/<int:pk>/", views.job_detail, name="job_detail"),
    path("jobs/<int:pk>/items/", views.job_items, name="job_items"),
    path("jobs/<int:pk>/retry/", views.retry_failed_items, name="retry_failed_items"),
    path("jobs/<int:pk>/cancel/", views.cancel_job, name="cancel_job"),
    path("jobs/<int:pk>/delete/", views.delete_job, name="delete_job"),
    path("items/<int:pk>/cancel/", views.cancel_item, name="cancel_item"),
    path("items/<int:pk>/retry/", views.retry_item, name="retry_item"),
    path("gallery/", views.gallery, name="gallery"),
    path("gallery/delete/", views.delete_images, name="delete_images"),
    path("gallery/download.zip", views.download_images, name="download_images"),
    path("images/<int:pk>/", views.image_detail, name="image_detail"),
    path("images/<int:pk>/thumbnail.jpg", views.thumbnail, name="thumbnail"),
    path(
        "images/<int:pk>/thumbnail-small.jpg",
        views.thumbnail,
        {"small": True},
        name="small_thumbnail",
    ),
    path("faces/<int:pk>/review/", views.review_face, name="review_face"),
]
