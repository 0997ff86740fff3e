from django.urls import path

from tests.demo import views

app_name = "demo"
urlpatterns = [
    path("", views.jobs, name="jobs"),
    path("<int:pk>/cancel/", views.cancel_job, name="cancel_job"),
]
