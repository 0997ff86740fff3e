"""WSGI entry point (pages only: live updates need the ASGI server, see chirp/asgi.py)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chirp.settings")

application = get_wsgi_application()
