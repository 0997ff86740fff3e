"""Settings for the test suite: Chirp's own, plus a small demonstration job type."""

import os

os.environ.setdefault("DEBUG", "1")

from chirp.settings import *  # noqa: F403
from chirp.settings import CHIRP_LANE_CONCURRENCY, INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.demo"]
ROOT_URLCONF = "tests.urls"
CHIRP_LANE_CONCURRENCY = {**CHIRP_LANE_CONCURRENCY, "demo": 1}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    # A file (worker and web server processes open it too), one per test run.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test-{os.getpid()}.sqlite3")}  # noqa: F405
