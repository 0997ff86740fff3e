from django.urls import include, path

from chirp.urls import urlpatterns as chirp_urlpatterns

urlpatterns = [
    *chirp_urlpatterns,
    path("demo/", include("tests.demo.urls")),
]
