from django.apps import AppConfig
from django.conf import settings


class ChirpConfig(AppConfig):
    name = "chirp"
    verbose_name = "Chirp engine"

    def ready(self) -> None:
        from chirp import live, signals  # noqa: F401

        if not settings.REDIS_URL:
            live.install_relay()
