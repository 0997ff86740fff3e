"""Fakes at the network boundary for the uploads tests.

`make_local_http_server` runs real HTTP servers on loopback addresses in threads; `fake_dns`
answers host names from a table (and never asks a real DNS server); `loopback_only` fails any
test whose code tries to connect anywhere but loopback.

`sample_pictures` are real photographs shipped inside installed packages (scikit-image,
matplotlib), with and without faces, for the image and face tests.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

RouteHandler = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]


class _Handler(BaseHTTPRequestHandler):
    server: _RoutingHTTPServer

    def do_GET(self) -> None:
        self.server.owner.requests.append(
            RecordedRequest(self.path, {k.lower(): v for k, v in self.headers.items()})
        )
        route = self.server.owner.routes.get(self.path.split("?", 1)[0])
        if route is None:
            self.send_error(404)
            return
        # The client hanging up mid-answer is what several tests want.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            route(self)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _RoutingHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: LocalHTTPServer


@dataclass
class LocalHTTPServer:
    """A real HTTP server on a loopback address, answering from a table of routes."""

    host: str
    port: int = 0
    scheme: str = "http"
    routes: dict[str, RouteHandler] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    # Set when the test ends, so handlers that stream forever stop.
    stopping: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str = "/", host: str | None = None) -> str:
        return f"{self.scheme}://{host or self.host}:{self.port}{path}"

    def route(self, path: str, handler: RouteHandler) -> None:
        self.routes[path] = handler

    def respond(
        self,
        path: str,
        body: bytes = b"",
        *,
        content_type: str | None = "text/html; charset=utf-8",
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        def handler(request: BaseHTTPRequestHandler) -> None:
            request.send_response(status)
            if content_type is not None:
                request.send_header("Content-Type", content_type)
            request.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                request.send_header(name, value)
            request.end_headers()
            request.wfile.write(body)

        self.route(path, handler)

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        self.respond(path, status=status, headers={"Location": location})


@pytest.fixture
def make_local_http_server() -> Iterator[Callable[..., LocalHTTPServer]]:
    started: list[tuple[LocalHTTPServer, _RoutingHTTPServer, threading.Thread]] = []

    def start(
        host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> LocalHTTPServer:
        assert ipaddress.ip_address(host).is_loopback, "test servers listen on loopback only"
        httpd = _RoutingHTTPServer((host, port), _Handler)
        if ssl_context is not None:
            httpd.socket = ssl_context.wrap_socket(httpd.socket, server_side=True)
        local = LocalHTTPServer(
            host=host, port=httpd.server_address[1], scheme="https" if ssl_context else "http"
        )
        httpd.owner = local
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
        thread.daemon = True
        thread.start()
        started.append((local, httpd, thread))
        return local

    yield start
    for local, httpd, thread in started:
        local.stopping.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def local_http_server(make_local_http_server: Callable[..., LocalHTTPServer]) -> LocalHTTPServer:
    return make_local_http_server()


class FakeDNS:
    """Answers host names from a table; IP literals and `localhost` resolve as usual.

    Any other name fails to resolve, so no test can send a query to a real DNS server.
    """

    def __init__(self, real_getaddrinfo: Callable[..., list]) -> None:
        self._real = real_getaddrinfo
        self._answers: dict[str, list[list[str]]] = {}
        self.lookups: list[str] = []

    def add(self, name: str, *addresses: str) -> None:
        self._answers[name.lower()] = [list(addresses)]

    def add_sequence(self, name: str, *answers: list[str]) -> None:
        """Answer each lookup with the next list, repeating the last: a rebinding attacker."""
        self._answers[name.lower()] = [list(answer) for answer in answers]

    def lookup_count(self, name: str) -> int:
        return self.lookups.count(name.lower())

    def getaddrinfo(
        self,
        host: object,
        port: object,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list:
        name = host.decode() if isinstance(host, bytes) else str(host)
        self.lookups.append(name.lower())
        answers = self._answers.get(name.lower())
        if answers is None:
            if name == "localhost":
                return self._real(host, port, family, type, proto, flags)
            return self._real(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
        addresses = answers.pop(0) if len(answers) > 1 else answers[0]
        results = []
        for address in addresses:
            ip = ipaddress.ip_address(address)
            if ip.version == 6:
                results.append(
                    (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, int(port or 0), 0, 0))
                )
            else:
                results.append(
                    (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 0)))
                )
        return results


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    dns = FakeDNS(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", dns.getaddrinfo)
    return dns


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Refuse, and fail the test for, any outgoing connection to a non-loopback address."""
    attempts: list[object] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def allowed(address: object) -> bool:
        if isinstance(address, tuple):
            try:
                return ipaddress.ip_address(str(address[0]).split("%")[0]).is_loopback
            except ValueError:
                return False
        return True  # Unix sockets stay on this machine

    def connect(self: socket.socket, address: object) -> None:
        if not allowed(address):
            attempts.append(address)
            raise ConnectionRefusedError(f"test tried to connect to {address!r}")
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: object) -> int:
        if not allowed(address):
            attempts.append(address)
            raise ConnectionRefusedError(f"test tried to connect to {address!r}")
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield attempts
    assert not attempts, f"connections left loopback: {attempts}"


def load_sample_pictures() -> dict[str, Image.Image]:
    """Upright RGB photographs by name: astronaut and grace_hopper show a face, the rest none.

    Left out on purpose: skimage's `coins` (heads on coins) and `camera` (a face opencv misses).
    """
    import skimage.data

    # The file path rather than matplotlib.cbook: importing matplotlib writes a config folder.
    matplotlib = importlib.util.find_spec("matplotlib")
    assert matplotlib is not None and matplotlib.submodule_search_locations
    grace_hopper = Path(
        matplotlib.submodule_search_locations[0], "mpl-data/sample_data/grace_hopper.jpg"
    )
    with Image.open(grace_hopper) as hopper:
        pictures = {"grace_hopper": hopper.convert("RGB")}
    for name in ("astronaut", "coffee", "chelsea", "rocket", "horse"):
        pictures[name] = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
    return pictures


@pytest.fixture(scope="session")
def sample_pictures() -> dict[str, Image.Image]:
    return load_sample_pictures()


# -- a small photo site, for the pipeline, worker and browser tests ------------------------

# What opencv finds in the samples once served as JPEG (as the pipeline sees them).
SAMPLE_FACES = {
    "astronaut": 1,
    "grace_hopper": 1,
    "coffee": 0,
    "chelsea": 0,
    "rocket": 0,
    "horse": 0,
}
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'


def jpeg_bytes(picture: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=quality)
    return out.getvalue()


@pytest.fixture(scope="session")
def sample_jpegs(sample_pictures: dict[str, Image.Image]) -> dict[str, bytes]:
    return {name: jpeg_bytes(picture) for name, picture in sample_pictures.items()}


@dataclass
class PhotoSite:
    """A page showing the six samples, a copy of one under another name, an SVG logo and a
    picture that fails (500) until `fix_broken()`."""

    server: LocalHTTPServer
    jpegs: dict[str, bytes]
    fixed: bytes  # what broken.jpg serves once fixed: a picture without a face

    @property
    def page_url(self) -> str:
        return self.server.url("/gallery.html")

    def image_url(self, name: str) -> str:
        return self.server.url(f"/img/{name}")

    def image_requests(self) -> list[str]:
        return [r.path for r in self.server.requests if r.path.startswith("/img/")]

    def fix_broken(self) -> None:
        self.server.respond("/img/broken.jpg", self.fixed, content_type="image/jpeg")


PHOTO_PAGE_IMAGES = [
    *(f"{name}.jpg" for name in SAMPLE_FACES),
    "copy-of-coffee.jpg",
    "logo.svg",
    "broken.jpg",
]


@pytest.fixture
def photo_site(
    local_http_server: LocalHTTPServer,
    sample_jpegs: dict[str, bytes],
    sample_pictures: dict[str, Image.Image],
) -> PhotoSite:
    site = PhotoSite(local_http_server, sample_jpegs, jpeg_bytes(sample_pictures["coffee"], 60))
    tags = "\n".join(f'<img src="/img/{name}" alt="">' for name in PHOTO_PAGE_IMAGES)
    page = f"<!doctype html><title>Photos</title><h1>Photos</h1>{tags}".encode()
    local_http_server.respond("/gallery.html", page)
    for name, data in sample_jpegs.items():
        local_http_server.respond(f"/img/{name}.jpg", data, content_type="image/jpeg")
    local_http_server.respond(
        "/img/copy-of-coffee.jpg", sample_jpegs["coffee"], content_type="image/jpeg"
    )
    local_http_server.respond("/img/logo.svg", SVG, content_type="image/svg+xml")
    local_http_server.respond("/img/broken.jpg", b"oops", content_type="text/plain", status=500)
    return site


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Thumbnails go to the test's own folder, in this process and in the web server and
    worker processes a test starts (they inherit the environment)."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    monkeypatch.setenv("CHIRP_MEDIA_ROOT", settings.MEDIA_ROOT)
    return tmp_path / "media"


# -- rows for the view, API and admin tests -----------------------------------------------


def make_image(name: str = "a", faces: int = 0, seen_by=None, **fields):
    """An image in the shared catalogue; `seen_by` a user: found by that user's job on the
    image's `found_on` page (what the pipeline records), so that user sees it."""
    from django.core.files.base import ContentFile

    from uploads.models import DetectedFace, Sighting
    from uploads.models import Image as ImageRecord

    values = {
        "source_url": f"https://photos.example/{name}.jpg",
        "sha256": f"{name:0>64}"[:64],
        "width": 400,
        "height": 200,
        "format": "JPEG",
        "byte_size": 1234,
        "face_count": faces,
        "found_on": "https://photos.example/",
        **fields,
    }
    image = ImageRecord(**values)
    thumbnail = jpeg_bytes(Image.new("RGB", (40, 20), "teal"))
    image.thumbnail.save("t.jpg", ContentFile(thumbnail), save=False)
    image.save()
    for n in range(faces):
        DetectedFace.objects.create(image=image, x=10 + 100 * n, y=20, w=80, h=100, confidence=0.9)
    if seen_by is not None:
        Sighting.objects.create(
            owner=seen_by,
            image=image,
            source_url=image.source_url,
            page_url=image.found_on,
            first_seen=image.first_seen,
            last_seen=image.first_seen,
        )
    return image


def make_job(owner, statuses: list[str] = (), url: str = "https://photos.example/", **fields):
    """A job that has been prepared, with one item per status given (completed ones with an
    image); the counters agree with the items."""
    from uploads.models import ScrapeJob, ScrapeJobItem

    counters = {
        "completed": "done",
        "skipped": "skipped",
        "failed": "failed",
        "cancelled": "cancelled",
    }
    values = {"total": len(statuses), "found": len(statuses), "prepared": bool(statuses)}
    for status in statuses:
        if status in counters:
            values[counters[status]] = values.get(counters[status], 0) + 1
    values.update(fields)
    job = ScrapeJob.objects.create(owner=owner, url=url, **values)
    for n, status in enumerate(statuses):
        ScrapeJobItem.objects.create(
            job=job,
            source_url=f"{url}img/{n}.jpg",
            status=status,
            image=make_image(f"{job.pk}-{n}", faces=1, seen_by=owner, found_on=url)
            if status == "completed"
            else None,
            error="The server answered 404 Not Found" if status == "failed" else "",
        )
    return job
