"""Chirp's settings, read from the environment.

Every knob is documented in README.md and .env.example. The helpers below fail loudly
(ImproperlyConfigured) on a value they cannot read, so a typo never becomes a silent default.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None else value.strip()


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name} must be true or false (1/0, yes/no, on/off), not {value!r}."
    )


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}.")
    return number


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}.") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}.")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [part.strip() for part in value.split(",") if part.strip()]


def env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


DEBUG = env_bool("DEBUG", False)

DATA_DIR = env_path("CHIRP_DATA_DIR", BASE_DIR / "data")
MEDIA_ROOT = env_path("CHIRP_MEDIA_ROOT", DATA_DIR / "media")
STATIC_ROOT = env_path("CHIRP_STATIC_ROOT", BASE_DIR / "staticfiles")


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off. Generate one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    # Development: generate one key and keep it, so sessions survive restarts.
    key_file = DATA_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # chirp first: its qcluster command wraps django-q2's (clean shutdown of running jobs).
    "chirp",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_eventstream",
    "django_q",
    "template_partials",
    "uploads",
    "imports",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "chirp.middleware.FirstRunSetupMiddleware",
    "chirp.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a refused sign-in into the lock-out answer.
    # (Its own axes.middleware.AxesMiddleware, with its asynchronous path fixed.)
    "chirp.lockouts.LockoutMiddleware",
]

ROOT_URLCONF = "chirp.urls"
ASGI_APPLICATION = "chirp.asgi.application"
WSGI_APPLICATION = "chirp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "chirp.context_processors.live_stream",
                "chirp.context_processors.navigation",
            ],
            "builtins": ["template_partials.templatetags.partials"],
        },
    },
]

# Database: a SQLite file in the data folder unless DATABASE_URL says otherwise.
_default_db_url = f"sqlite:///{DATA_DIR / 'chirp.sqlite3'}"
try:
    _db = dj_database_url.parse(
        env_str("DATABASE_URL") or _default_db_url,
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0, minimum=0),
    )
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL cannot be read: {exc}") from None
if _db["ENGINE"] == "django.db.backends.sqlite3":
    Path(_db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    _db["OPTIONS"] = {
        # WAL lets the web server read while the worker writes; IMMEDIATE transactions and a
        # busy timeout make concurrent writers wait instead of failing with "database is locked".
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    _db["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out user name or address before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# Media (thumbnails, downloads) in S3 or any S3-compatible store when a bucket is named.
CHIRP_S3_BUCKET = env_str("CHIRP_S3_BUCKET") or None
if CHIRP_S3_BUCKET:
    STORAGES["default"] = {
        # django-storages' S3Storage, with multipart parts scaled to each file (chirp/storages.py).
        "BACKEND": "chirp.storages.S3Storage",
        "OPTIONS": {
            "bucket_name": CHIRP_S3_BUCKET,
            "endpoint_url": env_str("CHIRP_S3_ENDPOINT_URL") or None,
            "region_name": env_str("CHIRP_S3_REGION") or None,
            "access_key": env_str("CHIRP_S3_ACCESS_KEY_ID") or None,
            "secret_key": env_str("CHIRP_S3_SECRET_ACCESS_KEY") or None,
            "custom_domain": env_str("CHIRP_S3_CUSTOM_DOMAIN") or None,
            "addressing_style": env_str("CHIRP_S3_ADDRESSING_STYLE", "auto"),
            "location": env_str("CHIRP_S3_PREFIX", ""),
            "default_acl": None,
            "file_overwrite": False,
            "querystring_auth": True,
        },
    }

# Multipart uploads to S3 use parts of at least this many bytes (more for a file that would need
# over 9,000 of them). S3 itself refuses parts under 5 MiB (except the last).
CHIRP_S3_PART_SIZE = env_int("CHIRP_S3_PART_SIZE", 8 * 1024 * 1024, minimum=1)

# Security. Behind a TLS-terminating proxy set SECURE_SSL_REDIRECT and the proxy header.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SILENCED_SYSTEM_CHECKS = [
    *env_list("SILENCED_SYSTEM_CHECKS", []),
    # django-axes looks for its own middleware by name; Chirp's is a subclass of it.
    "axes.W002",
]

# Throttling of password guessing (django-axes, chirp/lockouts.py), on both sign-in pages.
# Failures are counted per user name and per client address, separately: a name tried from
# many addresses, or many names tried from one address, are both locked out for the cool-off.
AXES_FAILURE_LIMIT = env_int("CHIRP_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("CHIRP_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_LOCKOUT_CALLABLE = "chirp.lockouts.lockout_response"
AXES_CLIENT_IP_CALLABLE = "chirp.lockouts.client_ip"
# The failed attempts (and their lifting) are in chirp/admin.py; successful sign-ins are not
# logged (a table that would only grow).
AXES_ENABLE_ADMIN = False
AXES_DISABLE_ACCESS_LOG = True
# Behind a proxy every client has the proxy's address: name the header in which the proxy
# passes on the client's (e.g. X-Forwarded-For, X-Real-IP). Only when the proxy sets it.
CHIRP_CLIENT_IP_HEADER = env_str("CHIRP_CLIENT_IP_HEADER", "")

# -- Content-Security-Policy (django-csp): scripts and styles come from our own static files
# only; no inline script, style attribute or <style> block runs. Behaviour lives in
# static/chirp.js (htmx is told not to inject its indicator styles: base.html's htmx-config),
# looks in static/chirp.css. Set early in MIDDLEWARE so responses that other middleware
# answer itself (redirects, refusals) carry the policy too.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "csp.middleware.CSPMiddleware",
)


def _media_image_sources() -> list[str]:
    """Where media links point when they are not on this site: the S3 bucket's origins."""
    if not CHIRP_S3_BUCKET:
        return []
    options = STORAGES["default"]["OPTIONS"]
    if options["custom_domain"]:
        return [f"https://{options['custom_domain']}"]
    endpoint = options["endpoint_url"]
    if endpoint:
        parts = urlsplit(endpoint)
        # Path-style links name the endpoint, virtual-hosted ones the bucket under it.
        return [
            f"{parts.scheme}://{parts.netloc}",
            f"{parts.scheme}://{CHIRP_S3_BUCKET}.{parts.netloc}",
        ]
    sources = [f"https://{CHIRP_S3_BUCKET}.s3.amazonaws.com"]
    if options["region_name"]:
        sources.append(f"https://{CHIRP_S3_BUCKET}.s3.{options['region_name']}.amazonaws.com")
    return sources


CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [
            SELF,
            "data:",
            *_media_image_sources(),
            # Nothing from YouTube's image hosts: Chirp keeps its own copies of channel avatars,
            # banners and video thumbnails (imports/artwork.py) and serves them itself.
        ],
        # Stored videos and audio: served by Chirp from the media folder, or by S3 through a
        # presigned URL the player is redirected to (imports/playback.py).
        "media-src": [SELF, *_media_image_sources()],
        "connect-src": [SELF],  # htmx requests and the live-update stream (SSE)
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [SELF],
        "object-src": [NONE],
    }
}

# -- Requests: the largest body accepted, on every path (signed in or not). chirp/asgi.py
# refuses a larger one with 413 before Django reads it; Django's own cap says the same.
# Nothing Chirp accepts is near it (a channel list is at most 2 MB).
CHIRP_MAX_REQUEST_BYTES = env_int("CHIRP_MAX_REQUEST_BYTES", 10 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = CHIRP_MAX_REQUEST_BYTES
# A JSON API never answers an HTML page, whatever fails (outermost, to see every answer).
MIDDLEWARE = ["chirp.middleware.JsonApiErrorsMiddleware", *MIDDLEWARE]
# Live-update streams one user may hold open at once in one web process (each costs a thread);
# one more is refused with 429 until another closes.
CHIRP_MAX_STREAMS_PER_USER = env_int("CHIRP_MAX_STREAMS_PER_USER", 20, minimum=1)

# Redis is optional: when set, live events cross processes through Redis pub/sub.
REDIS_URL = env_str("REDIS_URL") or None
if REDIS_URL:
    from redis.connection import parse_url

    try:
        EVENTSTREAM_REDIS = parse_url(REDIS_URL)
    except ValueError as exc:
        raise ImproperlyConfigured(f"REDIS_URL cannot be read: {exc}") from None

# Where Chirp's keys live in Redis (live events, the YouTube limiter). Two installations still need
# two Redis servers: django-eventstream publishes on one pub/sub channel for all.
CHIRP_REDIS_PREFIX = env_str("CHIRP_REDIS_PREFIX", "chirp")

# With Redis, each user's newest events kept for a reconnecting browser (a day at most).
CHIRP_LIVE_EVENTS_KEPT = env_int("CHIRP_LIVE_EVENTS_KEPT", 5000, minimum=10)

EVENTSTREAM_STORAGE_CLASS = "chirp.live.EventStorage"
EVENTSTREAM_CHANNELMANAGER_CLASS = "chirp.live.UserChannelManager"
# Without Redis, each web process polls the event table this often (seconds).
CHIRP_EVENT_RELAY_INTERVAL = env_float("CHIRP_EVENT_RELAY_INTERVAL", 0.1, minimum=0.01)

# The job engine (chirp/engine.py).
CHIRP_LANE_CONCURRENCY = {
    "uploads": env_int("CHIRP_UPLOADS_CONCURRENCY", 1, minimum=1),
    "imports": env_int("CHIRP_IMPORTS_CONCURRENCY", 1, minimum=1),
    # Channel lists (imports/models/lists.py): a batch mostly waits for its rows' imports,
    # which run in the imports lane; this is how many users' lists advance at once.
    "lists": env_int("CHIRP_LISTS_CONCURRENCY", 1, minimum=1),
}
CHIRP_LEASE_SECONDS = env_float("CHIRP_LEASE_SECONDS", 30, minimum=1)
CHIRP_SLICE_SECONDS = env_float("CHIRP_SLICE_SECONDS", 60, minimum=1)
CHIRP_JOB_MAX_ATTEMPTS = env_int("CHIRP_JOB_MAX_ATTEMPTS", 3, minimum=1)
CHIRP_ITEM_MAX_ATTEMPTS = env_int("CHIRP_ITEM_MAX_ATTEMPTS", 3, minimum=1)
CHIRP_IMAGE_THREADS = env_int("CHIRP_IMAGE_THREADS", 2, minimum=1)
# On PostgreSQL the worker's commits do not wait for the disk: its work can be redone
# (chirp/db.py says what a crash of PostgreSQL would cost). Web requests stay durable.
CHIRP_WORKER_ASYNC_COMMIT = env_bool("CHIRP_WORKER_ASYNC_COMMIT", True)
# The worker's processes keep their database connections this long (seconds; 0: a new one per
# task, as the web's DATABASE_CONN_MAX_AGE default does per request).
CHIRP_WORKER_CONN_MAX_AGE = env_int("CHIRP_WORKER_CONN_MAX_AGE", 600, minimum=0)

_q_timeout = env_int("CHIRP_TASK_TIMEOUT", 1800, minimum=30)
Q_CLUSTER = {
    "name": "chirp",
    "orm": "default",
    # One worker per lane slot, plus one for short housekeeping tasks.
    "workers": env_int("CHIRP_WORKERS", sum(CHIRP_LANE_CONCURRENCY.values()) + 1, minimum=1),
    # A lane task works in slices of CHIRP_SLICE_SECONDS and re-queues itself, so the timeout
    # only bounds one item. retry > timeout, or django-q2 runs tasks twice.
    "timeout": _q_timeout,
    "retry": _q_timeout + 60,
    "max_attempts": 1,
    "recycle": 500,
    "catch_up": False,
    "poll": 0.1,
    "ack_failures": True,
    "save_limit": 1000,
    "sync": env_bool("CHIRP_TASKS_SYNC", False),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django_eventstream": {"level": "WARNING"}},
}

# Uploads (uploads/): fetching pages and images on a user's behalf, finding a page's images,
# decoding them and finding faces. Private addresses stay refused unless allowed here.
CHIRP_FETCH_ALLOW_PRIVATE = env_bool("CHIRP_FETCH_ALLOW_PRIVATE", False)
CHIRP_FETCH_ALLOWED_NETWORKS = env_list("CHIRP_FETCH_ALLOWED_NETWORKS", [])
for _network in CHIRP_FETCH_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"CHIRP_FETCH_ALLOWED_NETWORKS: {_network!r} is not a network such as 10.0.0.0/8."
        ) from None
CHIRP_FETCH_PAGE_MAX_BYTES = env_int("CHIRP_FETCH_PAGE_MAX_BYTES", 5 * 1024 * 1024, minimum=1)
CHIRP_FETCH_IMAGE_MAX_BYTES = env_int("CHIRP_FETCH_IMAGE_MAX_BYTES", 25 * 1024 * 1024, minimum=1)
CHIRP_FETCH_TIMEOUT = env_float("CHIRP_FETCH_TIMEOUT", 30, minimum=0.1)
CHIRP_FETCH_CONNECT_TIMEOUT = env_float("CHIRP_FETCH_CONNECT_TIMEOUT", 10, minimum=0.1)
CHIRP_FETCH_READ_TIMEOUT = env_float("CHIRP_FETCH_READ_TIMEOUT", 15, minimum=0.1)
CHIRP_FETCH_MAX_REDIRECTS = env_int("CHIRP_FETCH_MAX_REDIRECTS", 5, minimum=0)
CHIRP_FETCH_USER_AGENT = env_str("CHIRP_FETCH_USER_AGENT", "Chirp/0.1 (self-hosted media importer)")
CHIRP_FETCH_CA_CERTS = env_str("CHIRP_FETCH_CA_CERTS") or None
CHIRP_SCRAPE_MAX_IMAGES = env_int("CHIRP_SCRAPE_MAX_IMAGES", 500, minimum=1)
CHIRP_IMAGE_MAX_PIXELS = env_int("CHIRP_IMAGE_MAX_PIXELS", 89_478_485, minimum=1)
CHIRP_THUMBNAIL_SIZE = env_int("CHIRP_THUMBNAIL_SIZE", 480, minimum=32)
CHIRP_FACE_DETECTOR = env_str("CHIRP_FACE_DETECTOR", "opencv")
if CHIRP_FACE_DETECTOR not in ("opencv", "dlib"):
    raise ImproperlyConfigured(
        f"CHIRP_FACE_DETECTOR must be opencv or dlib, not {CHIRP_FACE_DETECTOR!r}."
    )
CHIRP_FACE_MAX_SIDE = env_int("CHIRP_FACE_MAX_SIDE", 1024, minimum=64)
# Finished scrape jobs are deleted this many days after they end (their images stay).
CHIRP_UPLOADS_RETENTION_DAYS = env_int("CHIRP_UPLOADS_RETENTION_DAYS", 7, minimum=1)

# -- Channels
# Importing YouTube channels (imports/). The transport is a test seam: the dotted path of a
# zero-argument factory returning imports.youtube.Transport; production leaves it unset.
CHIRP_YOUTUBE_TRANSPORT = env_str("CHIRP_YOUTUBE_TRANSPORT") or None
# A Netscape cookies file from a signed-in browser: the answer to YouTube's bot check.
CHIRP_YOUTUBE_COOKIES_FILE = env_str("CHIRP_YOUTUBE_COOKIES_FILE") or None
# yt-dlp's own sleep before each request, per process. The shared limiter below already spaces
# every request across all workers, so this stays 0 unless you want both.
CHIRP_YOUTUBE_SLEEP_REQUESTS = env_float("CHIRP_YOUTUBE_SLEEP_REQUESTS", 0.0)
CHIRP_YOUTUBE_RETRIES = env_int("CHIRP_YOUTUBE_RETRIES", 3, minimum=0)
CHIRP_YOUTUBE_RETRY_BACKOFF = env_float("CHIRP_YOUTUBE_RETRY_BACKOFF", 2.0)
CHIRP_YOUTUBE_TIMEOUT = env_float("CHIRP_YOUTUBE_TIMEOUT", 20.0, minimum=0.1)
CHIRP_YOUTUBE_TRANSCRIPT_LANGUAGES = env_list("CHIRP_YOUTUBE_TRANSCRIPT_LANGUAGES", ["en"])
# The rate limiter shared by every worker (in the database, or in Redis when REDIS_URL is set).
CHIRP_YOUTUBE_SPACING = env_float("CHIRP_YOUTUBE_SPACING", 1.0)
CHIRP_YOUTUBE_JITTER = env_float("CHIRP_YOUTUBE_JITTER", 0.5)
CHIRP_YOUTUBE_MAX_SPACING = env_float("CHIRP_YOUTUBE_MAX_SPACING", 30.0)
# Following channels (issue 12): every followed channel's RSS feed is polled once per interval
# (the channels spread evenly over it), and its videos tab listed every few days as a safety net.
CHIRP_FOLLOW_POLL_MINUTES = env_int("CHIRP_FOLLOW_POLL_MINUTES", 15, minimum=1)
CHIRP_FOLLOW_FULL_CHECK_DAYS = env_int("CHIRP_FOLLOW_FULL_CHECK_DAYS", 7, minimum=1)
CHIRP_YOUTUBE_CONCURRENCY = env_int("CHIRP_YOUTUBE_CONCURRENCY", 2, minimum=1)


def _public_url() -> str | None:
    """The address where YouTube's hub reaches this installation (push is off without it)."""
    value = env_str("CHIRP_PUBLIC_URL") or None
    if value is None:
        return None
    parts = urlsplit(value)
    loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
    # https: the hub posts the notifications' signature and content over it. Plain http only
    # for loopback (a hub on the same machine, the tests).
    if (
        parts.scheme not in ("https", "http")
        or (parts.scheme == "http" and not loopback)
        or not parts.hostname
        or parts.query
        or parts.fragment
    ):
        raise ImproperlyConfigured(
            "CHIRP_PUBLIC_URL must be the https:// address where YouTube's hub can reach this "
            f"installation, such as https://chirp.example.com, not {value!r}."
        )
    return value.rstrip("/")


# Push (WebSub, imports/websub.py): on only when CHIRP_PUBLIC_URL is set. The hub calls
# <CHIRP_PUBLIC_URL>/websub/<token>/ to verify each subscription and to deliver notifications.
CHIRP_PUBLIC_URL = _public_url()
CHIRP_WEBSUB_HUB = env_str("CHIRP_WEBSUB_HUB", "https://pubsubhubbub.appspot.com/subscribe")
CHIRP_WEBSUB_LEASE_SECONDS = env_int("CHIRP_WEBSUB_LEASE_SECONDS", 432000, minimum=60)
CHIRP_WEBSUB_TIMEOUT = env_float("CHIRP_WEBSUB_TIMEOUT", 15.0, minimum=0.1)
# A notification is a few kilobytes; a larger body is refused (413) before it is read.
CHIRP_WEBSUB_MAX_BODY_BYTES = env_int("CHIRP_WEBSUB_MAX_BODY_BYTES", 1024 * 1024, minimum=1024)
# Notifications accepted per subscription per minute; more are answered 429 (the hub retries).
CHIRP_WEBSUB_MAX_PER_MINUTE = env_int("CHIRP_WEBSUB_MAX_PER_MINUTE", 60, minimum=1)
# Requests to YouTube in flight at once across the installation (every worker, every thread).
CHIRP_YOUTUBE_MAX_IN_FLIGHT = env_int("CHIRP_YOUTUBE_MAX_IN_FLIGHT", 4, minimum=1)
CHIRP_YOUTUBE_PAUSE_SECONDS = env_float("CHIRP_YOUTUBE_PAUSE_SECONDS", 300.0, minimum=0.1)
CHIRP_YOUTUBE_MAX_PAUSE_SECONDS = env_float("CHIRP_YOUTUBE_MAX_PAUSE_SECONDS", 3600.0, minimum=0.1)
# The default cap on a channel's first import (0: every video); the dialog can change it.
CHIRP_IMPORT_FIRST_LIMIT = env_int("CHIRP_IMPORT_FIRST_LIMIT", 0, minimum=0)
# Channel lists (imports/lists.py): the most rows and bytes one list may have.
CHIRP_LIST_MAX_ROWS = env_int("CHIRP_LIST_MAX_ROWS", 10_000, minimum=1)
CHIRP_LIST_MAX_BYTES = env_int("CHIRP_LIST_MAX_BYTES", 2 * 1024 * 1024, minimum=1024)
# A list previewed and never started (its draft keeps the list's text) is removed this many
# hours after the preview, by an hourly task.
CHIRP_LIST_DRAFT_HOURS = env_int("CHIRP_LIST_DRAFT_HOURS", 24, minimum=1)
# Speech to text when YouTube has no captions (off unless the URL is set): an OpenAI-compatible
# API's base URL (e.g. https://api.groq.com/openai/v1), its key and model.
CHIRP_WHISPER_URL = env_str("CHIRP_WHISPER_URL") or None
CHIRP_WHISPER_API_KEY = env_str("CHIRP_WHISPER_API_KEY") or None
CHIRP_WHISPER_MODEL = env_str("CHIRP_WHISPER_MODEL", "whisper-large-v3")
CHIRP_WHISPER_TIMEOUT = env_float("CHIRP_WHISPER_TIMEOUT", 300.0, minimum=1)
# The audio sent is the smallest stream YouTube has, up to this size (the APIs' own limit).
CHIRP_WHISPER_MAX_MB = env_int("CHIRP_WHISPER_MAX_MB", 25, minimum=1)
# Media downloads (imports/media.py): yt-dlp writes into the scratch folder (only the files in
# flight, resumed from there after an interruption), then the file goes to the storage.
CHIRP_MEDIA_SCRATCH_DIR = env_path("CHIRP_MEDIA_SCRATCH_DIR", DATA_DIR / "scratch")
# A file larger than this is refused (0: no limit): before downloading when YouTube announces
# its size, as soon as it passes the limit otherwise.
CHIRP_MEDIA_MAX_BYTES = env_int("CHIRP_MEDIA_MAX_BYTES", 0, minimum=0)
# Bytes per second for each download (yt-dlp's ratelimit; 0: as fast as YouTube sends).
CHIRP_MEDIA_RATE_LIMIT = env_int("CHIRP_MEDIA_RATE_LIMIT", 0, minimum=0)
# Media downloads at once across the installation (every worker and thread); the others wait
# for a slot ("Waiting for a download slot"). A killed worker's slot lapses within minutes.
CHIRP_MEDIA_CONCURRENCY = env_int("CHIRP_MEDIA_CONCURRENCY", 2, minimum=1)
# Scratch files of downloads nobody will resume (cancelled or deleted imports...) are swept
# every hour once they are this old; those of a cancelled or deleted import at once.
CHIRP_MEDIA_SCRATCH_GRACE_HOURS = env_float("CHIRP_MEDIA_SCRATCH_GRACE_HOURS", 24.0, minimum=0)
# Pictures (avatars, banners, thumbnails) a run of the artwork backfill fetches at most, every 10
# minutes, for what was imported before Chirp kept artwork (0: no backfill).
CHIRP_ARTWORK_BACKFILL_BATCH = env_int("CHIRP_ARTWORK_BACKFILL_BATCH", 30, minimum=0)
# ffmpeg for merging video and audio: this binary, or imageio-ffmpeg's (from PyPI) when unset.
CHIRP_FFMPEG = env_str("CHIRP_FFMPEG") or None
