"""ASGI entry point: the web server (uvicorn) serves pages and server-sent event streams."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chirp.settings")

application = get_asgi_application()
