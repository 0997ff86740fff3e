"""ASGI entry point: the web server (uvicorn) serves pages and server-sent event streams."""

import os

from django.conf import settings
from django.core.asgi import get_asgi_application

from chirp.bodylimit import RequestBodyLimit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chirp.settings")

django_application = get_asgi_application()

from imports.websub import CallbackRoute  # noqa: E402 (once Django is set up)

# Oversized bodies are refused before Django reads them (chirp/bodylimit.py); the WebSub hub's
# notifications are answered in front of Django (imports/websub.py `CallbackRoute`).
application = RequestBodyLimit(CallbackRoute(django_application), settings.CHIRP_MAX_REQUEST_BYTES)
