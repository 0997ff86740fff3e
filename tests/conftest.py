"""Shared actors and real servers.

alice owns things, bob is another user (the stranger), staff is an admin. `web_server` runs
the real ASGI app under uvicorn and `start_worker` a real `manage.py qcluster`, both against the
test database, so tests that use them need `transactional_db` (committed rows).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
# Playwright's sync API keeps an event loop running in the test thread; the tests' own ORM
# calls are still synchronous. (Not passed on to the servers the tests start.)
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _fresh_live_events(settings):
    """Each test starts with no stored live events in Redis (ids there are per user, and a
    database rolled back can give the next test's user the same id)."""
    if settings.REDIS_URL:
        from chirp import live

        live.redis_events().forget()


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", "alice@example.com", PASSWORD)


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", "bob@example.com", PASSWORD)


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url() -> str:
    """The URL of the database the tests run on (the test database, not the dev one)."""
    conf = connection.settings_dict
    if conf["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{conf['NAME']}"
    host = conf.get("HOST") or "127.0.0.1"
    port = conf.get("PORT") or 5432
    auth = conf["USER"] + (f":{conf['PASSWORD']}" if conf.get("PASSWORD") else "")
    return f"postgres://{auth}@{host}:{port}/{conf['NAME']}"


def server_env(*, redis: bool = True, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=database_url(),
        DEBUG="1",
        CHIRP_LEASE_SECONDS="2",
        PYTHONUNBUFFERED="1",
    )
    if not redis:
        env.pop("REDIS_URL", None)
    env.update(extra)
    return env


def wait_for(predicate: Callable[[], object], timeout: float = 30, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting after {timeout}s")
        time.sleep(interval)


class Process:
    """A child in its own session, so signals reach exactly the process we mean."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self.log = log.open("wb")
        self.popen = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 30) -> float:
        """SIGTERM the main process only (STACK-NOTES); returns seconds it took to exit."""
        started = time.monotonic()
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()
        return time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL the whole group: a crash, as after an OOM kill or a power cut."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)


class WebServer:
    def __init__(self, process: Process, port: int) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"


def start_web_server(
    tmp_path: Path, *, redis: bool = True, port: int | None = None, **env: str
) -> WebServer:
    import urllib.request

    port = port or free_port()
    process = Process(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "chirp.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "2",
        ],
        server_env(redis=redis, **env),
        tmp_path / f"uvicorn-{port}.log",
    )
    server = WebServer(process, port)

    def up() -> bool:
        if process.popen.poll() is not None:
            raise AssertionError(f"uvicorn exited:\n{process.output()}")
        try:
            urllib.request.urlopen(server.url + "/accounts/login/", timeout=2)
        except OSError:
            return False
        return True

    wait_for(up, timeout=30)
    return server


@pytest.fixture
def web_server(transactional_db, tmp_path) -> Iterator[WebServer]:
    server = start_web_server(tmp_path)
    yield server
    server.process.terminate(10)


@pytest.fixture
def start_worker(transactional_db, tmp_path) -> Iterator[Callable[..., Process]]:
    started: list[Process] = []

    def start(**env: str) -> Process:
        process = Process(
            [sys.executable, "manage.py", "qcluster"],
            server_env(**env),
            tmp_path / f"qcluster-{len(started)}.log",
        )
        started.append(process)
        return process

    yield start
    for process in started:
        process.terminate(30)


def session_cookie_for(user) -> dict[str, str]:
    """A real session for `user`, as the browser would hold it."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return {settings.SESSION_COOKIE_NAME: session.session_key}


CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def chromium():
    """Debian's chromium through Playwright (no downloaded browser)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}: run `make chromium` (or set CHROMIUM_PATH)."
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def screenshot() -> Callable[[object, str], Path | None]:
    """screenshot(page, name) saves the whole page as <CHIRP_SCREENSHOTS>/<name>.png, for a
    person reviewing the pages to look at (README, "Test it"); it does nothing when the
    variable is not set, so tests call it freely."""
    folder = os.environ.get("CHIRP_SCREENSHOTS", "")

    def take(page, name: str) -> Path | None:
        if not folder:
            return None
        path = Path(folder, f"{name}.png")
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=path, full_page=True, animations="disabled")
        return path

    return take


@pytest.fixture
def browser_for(chromium, web_server):
    """browser_for(user) -> a Playwright page signed in as `user` on the real web server."""
    contexts = []

    def open_as(user):
        context = chromium.new_context(base_url=web_server.url)
        context.add_cookies(
            [
                {"name": name, "value": value, "url": web_server.url}
                for name, value in session_cookie_for(user).items()
            ]
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    yield open_as
    for context in contexts:
        context.close()


S3_BUCKET = "chirp-media"


def s3_client(url: str, key: str, secret: str):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
    )


def start_moto(log: Path, port: int | None = None):  # type: ignore[no-untyped-def]
    """A loopback S3 (moto server) with an empty bucket S3_BUCKET: (process, URL, client)."""
    from tests.chirp.test_settings import CLEAN

    port = port or free_port()
    server = Process(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], CLEAN, log
    )
    url = f"http://127.0.0.1:{port}"
    client = s3_client(url, "test", "test")  # moto takes any key unless told to check

    def up() -> bool:
        try:
            client.list_buckets()
        except Exception:
            return False
        return True

    wait_for(up, timeout=30)
    client.create_bucket(Bucket=S3_BUCKET)
    return server, url, client


@pytest.fixture
def s3(tmp_path):
    """A loopback S3 (moto server) with an empty bucket S3_BUCKET: (endpoint URL, client)."""
    server, url, client = start_moto(tmp_path / "moto.log")
    yield url, client
    server.terminate(10)


def database_handles(server) -> int:
    """Connections the web server holds to the test database: PostgreSQL backends, or open
    file handles on the SQLite file (/proc/<pid>/fd)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
            return cursor.fetchone()[0]
    database = os.path.realpath(connection.settings_dict["NAME"])
    fds = f"/proc/{server.process.pid}/fd"
    count = 0
    for fd in os.listdir(fds):
        try:
            count += os.readlink(f"{fds}/{fd}") == database
        except FileNotFoundError:
            continue  # closed while we looked
    return count
