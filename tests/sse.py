"""A small server-sent events client over a real socket, for tests and benchmarks."""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class SSEvent:
    event: str
    data: str
    id: str | None
    received: float


class SSEClient:
    def __init__(
        self,
        url: str,
        cookies: dict[str, str] | None = None,
        last_event_id: str | None = None,
        timeout: float = 10,
    ) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        headers = {"Accept": "text/event-stream"}
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self.conn.request(
            "GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers
        )
        self.response = self.conn.getresponse()
        self.status = self.response.status

    def events(self, timeout: float = 10):
        """Yield events (keep-alives and padding skipped) until `timeout` passes without one."""
        self.conn.sock.settimeout(timeout)
        fields: dict[str, str] = {}
        data: list[str] = []
        while True:
            try:
                raw = self.response.readline()
            except (TimeoutError, AttributeError, ValueError, OSError):
                return  # timed out, or closed by close() from another thread
            if not raw:
                return
            line = raw.decode().rstrip("\r\n")
            if line == "":
                if data or fields.get("event"):
                    kind = fields.get("event", "message")
                    if kind != "keep-alive":
                        yield SSEvent(kind, "\n".join(data), fields.get("id"), time.monotonic())
                fields, data = {}, []
            elif line.startswith(":"):
                continue
            else:
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "data":
                    data.append(value)
                else:
                    fields[name] = value

    def next_event(self, kind: str | None = None, timeout: float = 10) -> SSEvent:
        deadline = time.monotonic() + timeout
        for event in self.events(timeout):
            if kind is None or event.event == kind:
                return event
            if time.monotonic() > deadline:
                break
        raise AssertionError(f"no {kind or 'event'} within {timeout}s")

    def close(self) -> None:
        self.conn.close()


def stored_events(user, name: str | None = None) -> list[tuple[str, str]]:
    """(name, html) of every live event stored for `user`, oldest first, from whichever store
    the settings use (Redis with REDIS_URL, else the event table)."""
    from django_eventstream.utils import get_storage

    events = get_storage().get_events(f"user-{user.pk}", 0, limit=1_000_000)
    return [(e.type, e.data) for e in events if name is None or e.type == name]
