"""A cap on request bodies, enforced in front of Django (a pure ASGI wrapper).

Django's ASGI handler reads a whole body (spooling it to disk) before any middleware or view
runs, so a check inside Django would come too late: an anonymous 400 MB upload would be on disk
before its 401. This wrapper answers 413 from the `Content-Length` header without reading a
byte, and counts the chunks of a body without one (chunked) as they arrive, stopping at the
limit. The answer carries `Connection: close`, so the server drops the rest instead of reading
it to reuse the connection.
"""

from __future__ import annotations

import json
import logging
from typing import Any

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]


class RequestBodyLimit:
    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, send, declared)
            return

        received = 0
        too_large = False

        async def counting_receive() -> Message:
            nonlocal received, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # To Django, the client went away: it drops what it spooled and answers
                    # nothing (it reads the whole body before running any code of ours).
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, counting_receive, send)
        if too_large:
            await self._refuse(scope, send, received)

    async def _refuse(self, scope: Scope, send: Any, size: int) -> None:
        limit_mb = self.max_bytes / (1024 * 1024)
        message = f"The request body is too large: the limit is {limit_mb:g} MB."
        logger.warning(
            "Refused a %s %s body of %s bytes or more (limit %s)",
            scope.get("method"),
            scope.get("path"),
            size,
            self.max_bytes,
        )
        if scope.get("path", "").startswith("/api/"):
            content_type, body = b"application/json", json.dumps({"error": message}).encode()
        else:
            content_type = b"text/html; charset=utf-8"
            body = (
                "<!doctype html><title>Request too large</title>"
                f"<h1>Request too large</h1><p>{message}</p>"
            ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(body)).encode()),
                    # The unread rest of the body is dropped with the connection.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server itself refuses a malformed length
    return None
