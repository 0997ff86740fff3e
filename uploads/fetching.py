"""Fetching pages and images on a user's behalf without letting them reach inside our network.

A user hands Chirp a URL and the server fetches it, so the URL is an attacker's way to make the
server talk to addresses only it can reach (SSRF): the database, the cloud metadata service, an
admin panel on localhost. The defences, in the order a fetch meets them:

1. Only http and https; known metadata host names are refused by name.
2. The host name is resolved once (``socket.getaddrinfo``) and *every* address it resolves to is
   checked; one internal address refuses the whole URL. The check runs on resolved addresses, so
   every spelling of an address (``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1``,
   ``[::ffff:127.0.0.1]``) is caught by whatever the resolver turns it into.
3. The connection is made to the checked IP itself, never to the name: a second lookup is the
   window DNS rebinding needs (answer a public address to the check, a private one to the
   connection). The original name still travels in the ``Host`` header and, for https, in SNI
   and the certificate check, so virtual hosts and TLS behave as if we had connected by name.
4. Redirects are followed by hand, and every hop goes through 1-3 again.
5. Time and size are bounded: connect and read timeouts per wait, a total deadline enforced by a
   watchdog (see ``_Deadline``), a byte cap enforced while streaming, and a content-type check.

Every refusal raises ``FetchError`` with a message meant for the person who gave us the URL.
"""

from __future__ import annotations

import contextlib
import enum
import http.client
import ipaddress
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, NoReturn
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import NewConnectionError
from urllib3.exceptions import SSLError as Urllib3SSLError
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError
from urllib3.response import BaseHTTPResponse
from urllib3.util.ssl_match_hostname import CertificateError

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MB = 1024 * 1024

INTERNAL_ADDRESS_MESSAGE = "This address points inside the server's network and is not allowed"
TOO_SLOW_MESSAGE = "The server took too long to answer"
SCHEME_MESSAGE = "Only http and https addresses can be fetched"
INVALID_ADDRESS_MESSAGE = "This is not a valid web address"

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK_BYTES = 64 * 1024

# Cloud metadata services hand out credentials to whoever asks from inside the instance. They
# stay refused even when private addresses are allowed, so an intranet deployment that sets
# CHIRP_FETCH_ALLOW_PRIVATE does not hand its cloud credentials to any user with a URL.
_METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, DigitalOcean, OpenStack...
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure wire server: a public address, so no range check catches it
    )
)
_METADATA_HOSTNAMES = frozenset(
    {
        "metadata.google.internal",
        "metadata.goog",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, RFC 6598
_NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")


class FetchError(Exception):
    """A fetch was refused or failed; ``str(error)`` is fit to show the user."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Expected(enum.Enum):
    """What the caller wants back, which decides the accepted content types and the size cap."""

    PAGE = "page"
    IMAGE = "image"

    def accepts(self, content_type: str) -> bool:
        if self is Expected.PAGE:
            return content_type in {"text/html", "application/xhtml+xml"}
        return content_type.startswith("image/")

    @property
    def description(self) -> str:
        return "a web page" if self is Expected.PAGE else "an image"


@dataclass(frozen=True)
class FetchPolicy:
    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()
    page_max_bytes: int = 5 * MB
    image_max_bytes: int = 25 * MB
    timeout: float = 30.0
    connect_timeout: float = 10.0
    read_timeout: float = 15.0
    max_redirects: int = 5
    user_agent: str = "Chirp/0.1 (self-hosted media importer)"
    # A CA bundle for https, for intranets with their own authority; None trusts the system's.
    ca_certs: str | None = None

    @classmethod
    def from_settings(cls) -> FetchPolicy:
        defaults = cls()
        networks: list[IPNetwork] = []
        for cidr in getattr(settings, "CHIRP_FETCH_ALLOWED_NETWORKS", ()):
            try:
                networks.append(ipaddress.ip_network(cidr, strict=False))
            except ValueError:
                raise ImproperlyConfigured(
                    f"CHIRP_FETCH_ALLOWED_NETWORKS: {cidr!r} is not a network such as 10.0.0.0/8."
                ) from None
        return cls(
            allow_private=bool(getattr(settings, "CHIRP_FETCH_ALLOW_PRIVATE", False)),
            allowed_networks=tuple(networks),
            page_max_bytes=int(
                getattr(settings, "CHIRP_FETCH_PAGE_MAX_BYTES", defaults.page_max_bytes)
            ),
            image_max_bytes=int(
                getattr(settings, "CHIRP_FETCH_IMAGE_MAX_BYTES", defaults.image_max_bytes)
            ),
            timeout=float(getattr(settings, "CHIRP_FETCH_TIMEOUT", defaults.timeout)),
            connect_timeout=float(
                getattr(settings, "CHIRP_FETCH_CONNECT_TIMEOUT", defaults.connect_timeout)
            ),
            read_timeout=float(
                getattr(settings, "CHIRP_FETCH_READ_TIMEOUT", defaults.read_timeout)
            ),
            max_redirects=int(
                getattr(settings, "CHIRP_FETCH_MAX_REDIRECTS", defaults.max_redirects)
            ),
            user_agent=str(getattr(settings, "CHIRP_FETCH_USER_AGENT", defaults.user_agent)),
            ca_certs=getattr(settings, "CHIRP_FETCH_CA_CERTS", defaults.ca_certs),
        )

    def max_bytes(self, expected: Expected) -> int:
        return self.page_max_bytes if expected is Expected.PAGE else self.image_max_bytes


@dataclass(frozen=True)
class FetchedResource:
    url: str  # after redirects
    status: int
    content_type: str  # media type only, lower case: "image/png"
    charset: str | None
    body: bytes
    headers: dict[str, str] = field(repr=False)  # lower-case names, repeated headers joined


def fetch_page(url: str, policy: FetchPolicy | None = None) -> FetchedResource:
    return fetch(url, Expected.PAGE, policy)


def fetch_image(url: str, policy: FetchPolicy | None = None) -> FetchedResource:
    return fetch(url, Expected.IMAGE, policy)


def check_url(url: str, policy: FetchPolicy | None = None) -> str:
    """Refuse now, with fetch()'s own message, a URL that fetch() would refuse before it
    connects (scheme, credentials, an internal or unknown host). Returns it without fragment.

    For telling a person at once; fetch() checks again, as the answer may change meanwhile.
    """
    target = _Target.parse(url)
    _resolve_checked(target, policy or FetchPolicy.from_settings())
    return target.url


def fetch(url: str, expected: Expected, policy: FetchPolicy | None = None) -> FetchedResource:
    """Fetch ``url`` under ``policy`` (the settings' when None) or raise FetchError.

    Safe to call from several threads at once: every call opens its own connections and the
    policy is immutable.
    """
    policy = policy or FetchPolicy.from_settings()
    with _Deadline(policy.timeout) as deadline:
        for _hop in range(policy.max_redirects + 1):
            target = _Target.parse(url)
            addresses = _resolve_checked(target, policy)
            with _network_errors(target, deadline):
                connection, response = _send(target, addresses, expected, policy, deadline)
                try:
                    location = _redirect_location(response)
                    if location is None:
                        return _read(target, response, expected, policy, deadline)
                finally:
                    response.close()
                    connection.close()
                    deadline.release_sockets()
            url = urljoin(target.url, location)
            logger.debug("Following redirect from %s to %s", target.url, url)
    raise FetchError(f"Too many redirects (more than {policy.max_redirects})")


@dataclass(frozen=True)
class _Target:
    """One hop's URL, taken apart into what the connection and the request need."""

    url: str  # without fragment: it is never sent and means nothing to the fetch
    scheme: str
    host: str  # ASCII (IDNA) host name or IP literal, without brackets
    port: int
    request_path: str
    host_header: str

    @classmethod
    def parse(cls, url: str) -> _Target:
        try:
            parts = urlsplit(url.strip())
            scheme = parts.scheme.lower()
            if scheme not in {"http", "https"}:
                raise FetchError(SCHEME_MESSAGE)
            if parts.username is not None or parts.password is not None:
                # user:pass@ is a classic way to disguise the real host from a person reading it.
                raise FetchError("Addresses with a user name or password cannot be fetched")
            hostname = parts.hostname
            if not hostname:
                raise FetchError(INVALID_ADDRESS_MESSAGE)
            host = hostname.encode("idna").decode("ascii")
            explicit_port = parts.port
        except (ValueError, UnicodeError):
            raise FetchError(INVALID_ADDRESS_MESSAGE) from None
        port = explicit_port or (443 if scheme == "https" else 80)
        host_header = f"[{host}]" if ":" in host else host
        if explicit_port is not None:
            host_header = f"{host_header}:{explicit_port}"
        # Re-quote what a browser would: spaces and non-ASCII in links are common, and
        # http.client refuses them, while existing %-escapes are left alone.
        path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
        query = quote(parts.query, safe="/?%:@!$&'()*+,;=-._~")
        request_path = f"{path}?{query}" if query else path
        return cls(
            url=urlunsplit((scheme, parts.netloc, parts.path or "/", parts.query, "")),
            scheme=scheme,
            host=host,
            port=port,
            request_path=request_path,
            host_header=host_header,
        )


def _resolve_checked(target: _Target, policy: FetchPolicy) -> list[IPAddress]:
    """Resolve the host once and return its addresses, refusing if any one is not allowed."""
    if target.host.rstrip(".") in _METADATA_HOSTNAMES:
        _refuse(target, "cloud metadata host name")
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise FetchError(f"The address {target.host} could not be found") from None
    addresses: list[IPAddress] = []
    for info in infos:
        try:
            address = ipaddress.ip_address(str(info[4][0]))
        except ValueError:
            _refuse(target, f"unparseable address {info[4][0]!r}")
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise FetchError(f"The address {target.host} could not be found")
    for address in addresses:
        reason = _refusal_reason(address, policy)
        if reason:
            _refuse(target, f"{address} is {reason}")
    return addresses


def _refuse(target: _Target, reason: str) -> NoReturn:
    logger.info("Refused to fetch %s: %s", target.url, reason)
    raise FetchError(INTERNAL_ADDRESS_MESSAGE)


def _refusal_reason(address: IPAddress, policy: FetchPolicy) -> str | None:
    forms = [address, *_embedded_ipv4(address)]
    if any(form in _METADATA_ADDRESSES for form in forms):
        return "a cloud metadata address"
    if any(form.is_multicast or form.is_unspecified for form in forms):
        return "not a unicast address"
    if policy.allow_private:
        return None
    if any(form in network for form in forms for network in policy.allowed_networks):
        return None
    for form in forms:
        if (
            not form.is_global
            or form.is_private
            or form.is_loopback
            or form.is_link_local
            or form.is_reserved
            or form in _SHARED_ADDRESS_SPACE
            or (isinstance(form, ipaddress.IPv6Address) and form.is_site_local)
        ):
            return "not a public address"
    return None


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries, which some networks would route to."""
    if isinstance(address, ipaddress.IPv4Address):
        return []
    embedded: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:  # ::ffff:127.0.0.1
        embedded.append(address.ipv4_mapped)
    if address.sixtofour is not None:  # 2002:7f00:1::
        embedded.append(address.sixtofour)
    if address.teredo is not None:  # 2001:0::/32, (server, client)
        embedded.extend(address.teredo)
    low_bits = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _NAT64_PREFIX:  # 64:ff9b::7f00:1
        embedded.append(low_bits)
    if int(address) >> 32 == 0:  # deprecated IPv4-compatible form, ::127.0.0.1
        embedded.append(low_bits)
    return embedded


class _Deadline:
    """Ends the whole fetch at a fixed time, however the server paces its bytes.

    Socket timeouts bound each single wait, so a server that sends one byte just before every
    timeout (in the headers or the body) could hold a worker for hours. A timer thread shuts the
    watched sockets down when the time is up, which wakes any blocked read; the fetch then sees
    ``expired`` and reports the timeout rather than whatever the cut-off read produced.
    """

    def __init__(self, seconds: float) -> None:
        self._ends_at = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        self.release_sockets()

    def release_sockets(self) -> None:
        # The duplicates keep a connection open after urllib3 closes it, so a finished hop
        # lets them go at once rather than when the whole fetch ends.
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    def remaining(self) -> float:
        left = self._ends_at - time.monotonic()
        if self.expired or left <= 0:
            raise FetchError(TOO_SLOW_MESSAGE)
        return left

    def watch(self, sock: socket.socket) -> None:
        # A duplicate descriptor, because TLS wrapping detaches the original socket object;
        # shutting down either descriptor ends the one underlying connection.
        duplicate = sock.dup()
        with self._lock:
            self._sockets.append(duplicate)
            if self.expired:
                self._shutdown(duplicate)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                self._shutdown(sock)

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class _DeadlineConnectionMixin:
    """Hands each new socket to the deadline and switches to the read timeout once connected."""

    deadline: _Deadline
    read_timeout: float
    timeout: Any

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        self.deadline.watch(sock)
        # urllib3 re-applies self.timeout to the socket before sending and before reading.
        self.timeout = self.read_timeout
        return sock


class _DeadlineHTTPConnection(_DeadlineConnectionMixin, HTTPConnection):
    pass


class _DeadlineHTTPSConnection(_DeadlineConnectionMixin, HTTPSConnection):
    pass


def _send(
    target: _Target,
    addresses: list[IPAddress],
    expected: Expected,
    policy: FetchPolicy,
    deadline: _Deadline,
) -> tuple[HTTPConnection, BaseHTTPResponse]:
    """Send the GET to the first checked address that accepts a connection."""
    headers = {
        "Host": target.host_header,
        "User-Agent": policy.user_agent,
        "Accept": (
            "text/html,application/xhtml+xml;q=0.9"
            if expected is Expected.PAGE
            else "image/avif,image/webp,image/*;q=0.9"
        ),
        "Connection": "close",
    }
    last_error: NewConnectionError | None = None
    for address in addresses:
        connection = _connection_to(address, target, policy, deadline)
        try:
            connection.connect()
        except NewConnectionError as error:
            connection.close()
            last_error = error
            continue
        except BaseException:
            connection.close()
            raise
        try:
            connection.request("GET", target.request_path, headers=headers, preload_content=False)
            response = connection.getresponse()
        except BaseException:
            connection.close()
            raise
        if deadline.expired:
            response.close()
            connection.close()
            raise FetchError(TOO_SLOW_MESSAGE)
        return connection, response
    assert last_error is not None  # addresses is never empty
    raise last_error


def _connection_to(
    address: IPAddress, target: _Target, policy: FetchPolicy, deadline: _Deadline
) -> HTTPConnection:
    # The connection's host is the checked IP, so urllib3 has no name left to resolve.
    connect_timeout = min(policy.connect_timeout, deadline.remaining())
    connection: _DeadlineHTTPConnection | _DeadlineHTTPSConnection
    if target.scheme == "https":
        connection = _DeadlineHTTPSConnection(
            str(address),
            target.port,
            timeout=connect_timeout,
            cert_reqs="CERT_REQUIRED",
            ca_certs=policy.ca_certs,
            # SNI and the certificate check use the name the user gave, not the IP.
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    else:
        connection = _DeadlineHTTPConnection(str(address), target.port, timeout=connect_timeout)
    connection.deadline = deadline
    connection.read_timeout = min(policy.read_timeout, deadline.remaining())
    return connection


def _redirect_location(response: BaseHTTPResponse) -> str | None:
    if response.status not in _REDIRECT_STATUSES:
        return None
    location = response.headers.get("Location", "").strip()
    if not location:
        raise FetchError(
            "The server sent a redirect without saying where to", status=response.status
        )
    return location


def _read(
    target: _Target,
    response: BaseHTTPResponse,
    expected: Expected,
    policy: FetchPolicy,
    deadline: _Deadline,
) -> FetchedResource:
    status = response.status
    if not 200 <= status < 300:
        answer = f"{status} {_reason(status)}".strip()
        raise FetchError(f"The server answered {answer}", status=status)
    content_type, charset = _parse_content_type(response.headers.get("Content-Type", ""))
    if not expected.accepts(content_type):
        sent = content_type or "no content type"
        raise FetchError(f"Expected {expected.description} but the server sent {sent}")
    limit = policy.max_bytes(expected)
    too_large = FetchError(f"The {expected.value} is larger than {_format_size(limit)}")
    declared = response.headers.get("Content-Length", "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    # Decoding happens before counting, so a small gzip bomb still stops at the cap.
    for chunk in response.stream(_CHUNK_BYTES, decode_content=True):
        body += chunk
        if len(body) > limit:
            raise too_large
        deadline.remaining()
    # The watchdog's shutdown looks like a normal end of body to a close-delimited response.
    deadline.remaining()
    return FetchedResource(
        url=target.url,
        status=status,
        content_type=content_type,
        charset=charset,
        body=bytes(body),
        headers={name.lower(): value for name, value in response.headers.itermerged()},
    )


@contextlib.contextmanager
def _network_errors(target: _Target, deadline: _Deadline) -> Iterator[None]:
    """Turn the many ways a connection can fail into a FetchError a person can read."""
    try:
        yield
    except FetchError:
        raise
    except (Urllib3Error, http.client.HTTPException, OSError, CertificateError) as error:
        logger.info("Fetching %s failed: %r", target.url, error)
        if deadline.expired:
            raise FetchError(TOO_SLOW_MESSAGE) from error
        if isinstance(error, NewConnectionError):
            raise FetchError(f"Could not connect to {target.host}") from error
        if isinstance(error, Urllib3TimeoutError | TimeoutError):
            raise FetchError(TOO_SLOW_MESSAGE) from error
        if isinstance(error, Urllib3SSLError | ssl.SSLError | CertificateError):
            raise FetchError(
                f"The secure connection to {target.host} could not be verified"
            ) from error
        raise FetchError(f"The connection to {target.host} failed") from error


def _parse_content_type(value: str) -> tuple[str, str | None]:
    media_type, _, parameters = value.partition(";")
    charset = None
    for parameter in parameters.split(";"):
        name, _, parameter_value = parameter.partition("=")
        if name.strip().lower() == "charset" and parameter_value.strip():
            charset = parameter_value.strip().strip("\"'")
    return media_type.strip().lower(), charset


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _format_size(size: int) -> str:
    for unit, factor in (("MB", MB), ("KB", 1024)):
        if size >= factor:
            return f"{size / factor:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"
