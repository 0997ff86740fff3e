"""Settings for the test suite: Chirp's own, plus a small demonstration job type."""

import os

os.environ.setdefault("DEBUG", "1")
# Redis keys of this run only (its web servers and workers inherit it): runs don't mix.
os.environ.setdefault("CHIRP_REDIS_PREFIX", f"chirp-test-{os.getpid()}")

from chirp.settings import *  # noqa: F403
from chirp.settings import CHIRP_LANE_CONCURRENCY, INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.demo"]
ROOT_URLCONF = "tests.urls"
CHIRP_LANE_CONCURRENCY = {**CHIRP_LANE_CONCURRENCY, "demo": 1}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    # A file (worker and web server processes open it too), one per test run.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test-{os.getpid()}.sqlite3")}  # noqa: F405
elif os.environ.get("CHIRP_TEST_DATABASE_NAME"):
    # Two suites on one PostgreSQL server at once (parallel checkouts) need two test databases.
    DATABASES["default"]["TEST"] = {"NAME": os.environ["CHIRP_TEST_DATABASE_NAME"]}  # noqa: F405

# The tests' web sites run on loopback; everything else stays refused (tests/uploads).
CHIRP_FETCH_ALLOWED_NETWORKS = ["127.0.0.0/8"]

# Channels: the fake YouTube answers at once, so the limiter's spacing is zero and pauses are
# short (a worker started by a test inherits these; its environment can still override them).
from chirp.settings import env_float, env_int  # noqa: E402

CHIRP_YOUTUBE_SPACING = env_float("CHIRP_YOUTUBE_SPACING", 0.0)
CHIRP_YOUTUBE_JITTER = env_float("CHIRP_YOUTUBE_JITTER", 0.0)
CHIRP_YOUTUBE_MAX_SPACING = env_float("CHIRP_YOUTUBE_MAX_SPACING", 0.0)
CHIRP_YOUTUBE_PAUSE_SECONDS = env_float("CHIRP_YOUTUBE_PAUSE_SECONDS", 1.0, minimum=0.1)
CHIRP_YOUTUBE_RETRIES = env_int("CHIRP_YOUTUBE_RETRIES", 1, minimum=0)
CHIRP_YOUTUBE_RETRY_BACKOFF = env_float("CHIRP_YOUTUBE_RETRY_BACKOFF", 0.0)
CHIRP_YOUTUBE_TIMEOUT = env_float("CHIRP_YOUTUBE_TIMEOUT", 5.0, minimum=0.1)
