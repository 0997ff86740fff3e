"""A fake WebSub hub on loopback that behaves like Google's (pubsubhubbub.appspot.com).

    POST /subscribe   form-encoded hub.mode, hub.topic, hub.callback, hub.secret,
                      hub.lease_seconds, hub.verify=async → 202, then (in a thread) a GET to
                      the callback with hub.mode, hub.topic, hub.challenge, hub.lease_seconds;
                      the subscription counts when the answer is 2xx and exactly the challenge.

`publish(topic, body)` then delivers a notification to every verified callback of the topic,
signed `X-Hub-Signature: sha1=<hex HMAC-SHA1>` with its secret, as Google's hub does.
`faults` makes the next subscribe requests answer a status (503 with Retry-After, say).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

import requests

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<feed xmlns="http://www.w3.org/2005/Atom"><entry><title>&lol9;</title></entry></feed>
"""


def _iso(moment: datetime) -> str:
    # Google's hub writes nanoseconds.
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123+00:00"


def upload_body(
    channel_id: str,
    video_id: str,
    title: str,
    published: datetime | None = None,
    updated: datetime | None = None,
    channel_title: str = "A channel",
) -> bytes:
    """A notification of a new (or edited) video, as YouTube's hub sends it."""
    published = published or datetime.now(UTC)
    updated = updated or datetime.now(UTC)
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns:yt="http://www.youtube.com/xml/schemas/2015" xmlns="http://www.w3.org/2005/Atom">
 <link rel="hub" href="https://pubsubhubbub.appspot.com"/>
 <link rel="self" href="https://www.youtube.com/xml/feeds/videos.xml?channel_id={channel_id}"/>
 <title>YouTube video feed</title>
 <updated>{_iso(updated)}</updated>
 <entry>
  <id>yt:video:{video_id}</id>
  <yt:videoId>{video_id}</yt:videoId>
  <yt:channelId>{channel_id}</yt:channelId>
  <title>{escape(title)}</title>
  <link rel="alternate" href="https://www.youtube.com/watch?v={video_id}"/>
  <author>
   <name>{escape(channel_title)}</name>
   <uri>https://www.youtube.com/channel/{channel_id}</uri>
  </author>
  <published>{published.isoformat()}</published>
  <updated>{_iso(updated)}</updated>
 </entry>
</feed>
""".encode()


def deleted_body(channel_id: str, video_id: str, when: datetime | None = None) -> bytes:
    when = when or datetime.now(UTC)
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns:at="http://purl.org/atompub/tombstones/1.0" xmlns="http://www.w3.org/2005/Atom">
 <at:deleted-entry ref="yt:video:{video_id}" when="{_iso(when)}">
  <link href="https://www.youtube.com/watch?v={video_id}"/>
  <at:by>
   <name>A channel</name>
   <uri>https://www.youtube.com/channel/{channel_id}</uri>
  </at:by>
 </at:deleted-entry>
</feed>
""".encode()


def sign(secret: str, body: bytes) -> str:
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


@dataclass
class Request:
    """One subscribe/unsubscribe request as the hub received it."""

    mode: str
    topic: str
    callback: str
    secret: str
    lease_seconds: int | None
    verify: str
    status: int


@dataclass
class Verification:
    mode: str
    topic: str
    callback: str
    status: int
    confirmed: bool


@dataclass
class Subscription:
    topic: str
    callback: str
    secret: str
    lease_seconds: int


@dataclass
class Fault:
    status: int
    retry_after: str | None = None
    times: int = 1


@dataclass
class FakeHub:
    # The longest lease it grants (Google's: 10 days); a test shortens it.
    max_lease: int = 864000
    verify_delay: float = 0.05
    requests: list[Request] = field(default_factory=list)
    verifications: list[Verification] = field(default_factory=list)
    subscriptions: dict[tuple[str, str], Subscription] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self.http = requests.Session()

    # -- lifecycle

    def __enter__(self) -> FakeHub:
        handler = type("_BoundHub", (_Handler,), {"hub": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        self.http.close()

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/subscribe"

    # -- what the hub does

    def receive(self, form: dict[str, str]) -> tuple[int, dict[str, str]]:
        with self._lock:
            fault = next((f for f in self.faults if f.times > 0), None)
            if fault is not None:
                fault.times -= 1
        status = fault.status if fault else 202
        lease = form.get("hub.lease_seconds", "")
        request = Request(
            mode=form.get("hub.mode", ""),
            topic=form.get("hub.topic", ""),
            callback=form.get("hub.callback", ""),
            secret=form.get("hub.secret", ""),
            lease_seconds=int(lease) if lease.isdigit() else None,
            verify=form.get("hub.verify", ""),
            status=status,
        )
        with self._lock:
            self.requests.append(request)
        if status != 202:
            headers = {"Retry-After": fault.retry_after} if fault and fault.retry_after else {}
            return status, headers
        threading.Thread(target=self._verify, args=(request,), daemon=True).start()
        return 202, {}

    def _verify(self, request: Request) -> None:
        time.sleep(self.verify_delay)
        lease = min(request.lease_seconds or self.max_lease, self.max_lease)
        challenge = secrets.token_urlsafe(24)
        params = {
            "hub.mode": request.mode,
            "hub.topic": request.topic,
            "hub.challenge": challenge,
            "hub.lease_seconds": str(lease),
        }
        try:
            response = self.http.get(request.callback, params=params, timeout=10)
            status, confirmed = response.status_code, response.text == challenge
        except requests.RequestException:
            status, confirmed = 0, False
        confirmed = confirmed and 200 <= status < 300
        key = (request.topic, request.callback)
        with self._lock:
            self.verifications.append(
                Verification(request.mode, request.topic, request.callback, status, confirmed)
            )
            if confirmed and request.mode == "subscribe":
                self.subscriptions[key] = Subscription(
                    request.topic, request.callback, request.secret, lease
                )
            elif confirmed and request.mode == "unsubscribe":
                self.subscriptions.pop(key, None)

    def verified(self, topic: str) -> list[Subscription]:
        with self._lock:
            return [s for s in self.subscriptions.values() if s.topic == topic]

    def publish(self, topic: str, body: bytes) -> list[int]:
        """Deliver `body` to every verified subscriber of `topic`, signed: their statuses."""
        return [self.deliver(s.callback, body, sign(s.secret, body)) for s in self.verified(topic)]

    def deliver(self, callback: str, body: bytes, signature: str | None) -> int:
        headers = {"Content-Type": "application/atom+xml"}
        if signature is not None:
            headers["X-Hub-Signature"] = signature
        return self.http.post(callback, data=body, headers=headers, timeout=10).status_code


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        status, headers = self.hub.receive(form)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()
