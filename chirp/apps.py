from django.apps import AppConfig


class ChirpConfig(AppConfig):
    name = "chirp"
    verbose_name = "Chirp engine"

    def ready(self) -> None:
        from chirp import live, signals  # noqa: F401

        live.install_listener_manager()
