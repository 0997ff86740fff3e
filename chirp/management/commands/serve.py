"""Run Chirp in the foreground: the ASGI web server and the worker, together.

Each child runs in its own session so that Ctrl-C in the terminal reaches only this command;
it then sends SIGTERM to each child's main process. Signalling qcluster's whole process group
makes it hang (STACK-NOTES), so that is never done unless a child ignores SIGTERM for too long.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the web server (uvicorn) and the worker (qcluster) until Ctrl-C."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--stop-timeout", type=float, default=30.0)

    def handle(self, *args, host: str, port: int, stop_timeout: float, **options) -> None:
        python = sys.executable
        children = {
            "web": self._spawn(
                [
                    python,
                    "-m",
                    "uvicorn",
                    "chirp.asgi:application",
                    "--host",
                    host,
                    "--port",
                    str(port),
                    "--timeout-graceful-shutdown",
                    "3",
                ]
            ),
            "worker": self._spawn([python, "manage.py", "qcluster"]),
        }
        shown_host = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host  # noqa: S104
        url = f"http://{shown_host}:{port}/"
        self.stdout.write(self.style.SUCCESS(f"Chirp is running at {url}"))
        if not get_user_model().objects.exists():
            self.stdout.write(f"First time? Open {url}setup/ to create your account.")
        self.stdout.write("Press Ctrl-C to stop.")

        stopping = False

        def request_stop(signum, frame) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        exit_code = 0
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    self.stderr.write(f"The {name} process stopped (exit code {child.returncode}).")
                    exit_code = 1
                    stopping = True
            time.sleep(0.2)

        self.stdout.write("Stopping…")
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + stop_timeout
        for name, child in children.items():
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"The {name} process did not stop in time; killing it.")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        self.stdout.write("Stopped.")
        if exit_code:
            sys.exit(exit_code)

    def _spawn(self, args: list[str]) -> subprocess.Popen:
        return subprocess.Popen(args, start_new_session=True)
