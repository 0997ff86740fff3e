from django.apps import AppConfig


class ImportsConfig(AppConfig):
    name = "imports"
    verbose_name = "Channels"

    def ready(self) -> None:
        from chirp import schedules

        # Every minute: the followed channels whose poll (or full check) is due. The channels
        # are spread over CHIRP_FOLLOW_POLL_MINUTES, so each minute polls about as many.
        schedules.register(
            "Poll followed channels", "imports.tasks.poll_followed_channels", minutes=1
        )
        # Every minute: WebSub requests whose time has come (first tries, retries after a
        # backoff, renewals at ~80 % of their lease) and notifications whose task was lost.
        schedules.register("WebSub subscriptions", "imports.tasks.run_websub_due", minutes=1)
