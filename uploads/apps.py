from django.apps import AppConfig


class UploadsConfig(AppConfig):
    name = "uploads"
    verbose_name = "Uploads"

    def ready(self) -> None:
        from chirp import schedules

        schedules.register(
            "Delete finished scrape jobs past retention",
            "uploads.tasks.delete_old_scrape_jobs",
            minutes=24 * 60,
        )
