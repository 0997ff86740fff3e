"""ASGI entry point: the web server (uvicorn) serves pages and server-sent event streams."""

import os

from django.conf import settings
from django.core.asgi import get_asgi_application

from chirp.bodylimit import RequestBodyLimit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chirp.settings")

# Oversized bodies are refused before Django reads them (chirp/bodylimit.py).
application = RequestBodyLimit(get_asgi_application(), settings.CHIRP_MAX_REQUEST_BYTES)
