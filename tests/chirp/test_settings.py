"""Settings come from the environment and fail loudly; production settings pass --deploy."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import ROOT, free_port, wait_for

CLEAN = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
CLEAN.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
CLEAN["DJANGO_SETTINGS_MODULE"] = "chirp.settings"


def run_python(code: str, tmp_path, **env: str) -> subprocess.CompletedProcess:
    full = {**CLEAN, "CHIRP_DATA_DIR": str(tmp_path / "data"), **env}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=full, capture_output=True, text=True, timeout=60
    )


def settings_error(tmp_path, **env: str) -> str:
    result = run_python("import django; django.setup()", tmp_path, **env)
    assert result.returncode != 0
    return result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "0"}, "SECRET_KEY must be set when DEBUG is off"),
        ({"DEBUG": "maybe"}, "DEBUG must be true or false"),
        (
            {"DEBUG": "1", "CHIRP_IMAGE_THREADS": "two"},
            "CHIRP_IMAGE_THREADS must be a whole number",
        ),
        ({"DEBUG": "1", "CHIRP_IMAGE_THREADS": "0"}, "CHIRP_IMAGE_THREADS must be at least 1"),
        ({"DEBUG": "1", "CHIRP_LEASE_SECONDS": "soon"}, "CHIRP_LEASE_SECONDS must be a number"),
        ({"DEBUG": "1", "DATABASE_URL": "nosuchdb://x"}, "DATABASE_URL cannot be read"),
        (
            {"DEBUG": "1", "CHIRP_PUBLIC_URL": "http://chirp.example.com"},
            "CHIRP_PUBLIC_URL must be the https:// address where YouTube's hub can reach",
        ),
        (
            {"DEBUG": "1", "CHIRP_PUBLIC_URL": "chirp.example.com"},
            "CHIRP_PUBLIC_URL must be the https:// address",
        ),
    ],
)
def test_a_bad_value_stops_start_up_with_a_clear_message(tmp_path, env, message):
    assert message in settings_error(tmp_path, **env)


def test_development_generates_a_secret_key_once_and_keeps_it(tmp_path):
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    first = run_python(code, tmp_path, DEBUG="1")
    second = run_python(code, tmp_path, DEBUG="1")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout and len(first.stdout.strip()) >= 50
    key_file = tmp_path / "data" / "secret_key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"


def test_the_default_database_is_sqlite_in_wal_mode_with_a_busy_timeout(tmp_path):
    code = (
        "import django; django.setup()\n"
        "from django.db import connection\n"
        "c = connection.cursor()\n"
        "mode = c.execute('PRAGMA journal_mode').fetchone()[0]\n"
        "print(mode, c.execute('PRAGMA busy_timeout').fetchone()[0])\n"
        "print(connection.settings_dict['NAME'])"
    )
    result = run_python(code, tmp_path, DEBUG="1")
    assert result.returncode == 0, result.stderr
    mode, timeout_ms = result.stdout.splitlines()[0].split()
    assert mode == "wal" and int(timeout_ms) >= 5000
    assert result.stdout.splitlines()[1] == str(tmp_path / "data" / "chirp.sqlite3")


def test_production_settings_pass_the_deploy_check(tmp_path):
    env = {
        **CLEAN,
        "CHIRP_DATA_DIR": str(tmp_path / "data"),
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "chirp.example.com",
        "SECURE_SSL_REDIRECT": "1",
        "SECURE_HSTS_SECONDS": "31536000",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.slow
def test_serve_runs_web_and_worker_and_ctrl_c_stops_both(tmp_path):
    data = tmp_path / "data"
    env = {**CLEAN, "CHIRP_DATA_DIR": str(data), "DEBUG": "1", "PYTHONUNBUFFERED": "1"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    port = free_port()
    log = (tmp_path / "serve.log").open("w+")
    serve = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:

        def page_status() -> int | None:
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/setup/", timeout=2).status
            except OSError:
                return None

        assert wait_for(page_status, timeout=60) == 200
        wait_for(lambda: "Q Cluster" in (tmp_path / "serve.log").read_text(), timeout=60)
        output = (tmp_path / "serve.log").read_text()
        assert f"Chirp is running at http://localhost:{port}/" in output
        assert f"Open http://localhost:{port}/setup/ to create your account." in output

        started = time.monotonic()
        os.killpg(serve.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        serve.wait(40)
        assert time.monotonic() - started < 20
        assert serve.returncode == 0
        assert "Stopped." in (tmp_path / "serve.log").read_text()
        assert page_status() is None
        leftover = subprocess.run(["pgrep", "-f", f"--port {port}"], capture_output=True, text=True)
        assert leftover.stdout.strip() == ""
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
