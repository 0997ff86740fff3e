"""The SSRF-safe fetcher, against real HTTP servers on loopback.

Every test runs with `fake_dns` (no real DNS query leaves the machine) and `loopback_only` (a
connection attempt anywhere but loopback fails the test), so a fetcher that forgot a check
fails here instead of reaching the address.
"""

from __future__ import annotations

import gzip
import ipaddress
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from tests.uploads.conftest import FakeDNS, LocalHTTPServer
from uploads.fetching import FetchError, FetchPolicy, fetch_image, fetch_page

pytestmark = pytest.mark.usefixtures("loopback_only", "fake_dns")

INSIDE = "This address points inside the server's network and is not allowed"
TOO_SLOW = "The server took too long to answer"
ONLY_HTTP = "Only http and https addresses can be fetched"
KB = 1024
# A dripping server sends a byte every 0.2 s for this many bytes (4 s): far past the test
# deadlines, yet finite, so a fetcher without a deadline fails the test instead of hanging it.
DRIP_BYTES = 20
PAGE = b"<!doctype html><title>Hello</title><img src=/cat.jpg>"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

# The test servers live on 127.0.0.1, which a production policy refuses: these tests allow
# exactly that one address, so 127.0.0.2 and every other internal address stay refused.
LOOPBACK_SERVER = (ipaddress.ip_network("127.0.0.1/32"),)


def policy(**overrides: object) -> FetchPolicy:
    knobs: dict[str, object] = {
        "allowed_networks": LOOPBACK_SERVER,
        "timeout": 5.0,
        "connect_timeout": 2.0,
        "read_timeout": 2.0,
    }
    knobs.update(overrides)
    return FetchPolicy(**knobs)  # type: ignore[arg-type]


def refusal(fetch: Callable[[], object]) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch()
    return caught.value


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- what a successful fetch returns ---------------------------------------------------------


def test_fetches_a_page(local_http_server: LocalHTTPServer) -> None:
    local_http_server.respond("/page", PAGE, headers={"ETag": '"v1"'})

    page = fetch_page(local_http_server.url("/page"), policy())

    assert page.body == PAGE
    assert page.status == 200
    assert page.content_type == "text/html"
    assert page.charset == "utf-8"
    assert page.url == local_http_server.url("/page")
    assert page.headers["etag"] == '"v1"'
    request = local_http_server.requests[0]
    assert request.headers["user-agent"].startswith("Chirp/")


def test_fetches_an_image(local_http_server: LocalHTTPServer) -> None:
    local_http_server.respond("/cat.png", PNG, content_type="image/png")

    image = fetch_image(local_http_server.url("/cat.png"), policy())

    assert image.body == PNG
    assert image.content_type == "image/png"


def test_accepts_xhtml_pages(local_http_server: LocalHTTPServer) -> None:
    local_http_server.respond("/", PAGE, content_type="application/xhtml+xml")

    assert fetch_page(local_http_server.url(), policy()).body == PAGE


def test_quotes_spaces_in_paths(local_http_server: LocalHTTPServer) -> None:
    local_http_server.respond("/my%20cat.png", PNG, content_type="image/png")

    image = fetch_image(local_http_server.url("/my cat.png"), policy())

    assert image.body == PNG


def test_allow_private_lets_an_intranet_through(local_http_server: LocalHTTPServer) -> None:
    local_http_server.respond("/", PAGE)
    intranet = FetchPolicy(allow_private=True, timeout=5.0)

    assert fetch_page(local_http_server.url(), intranet).body == PAGE


def test_the_default_policy_refuses_loopback(local_http_server: LocalHTTPServer) -> None:
    local_http_server.respond("/", PAGE)

    error = refusal(lambda: fetch_page(local_http_server.url(), FetchPolicy(timeout=5.0)))

    assert str(error) == INSIDE
    assert local_http_server.requests == []


# --- addresses inside the network ------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://127.0.0.2:8000/admin/",
        "http://localhost/",
        "http://LOCALHOST/",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",  # shared address space (carrier-grade NAT)
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.1.1/",
        "http://0.0.0.0/",
        "http://0/",
        "http://224.0.0.1/",
        "http://255.255.255.255/",
        "http://240.0.0.1/",
        # Other spellings of 127.0.0.1 that resolvers accept.
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0177.0.0.1/",
        "http://0x7f.0.0.1/",
        "http://127.1/",
        "http://127.0.1/",
        # IPv6, and IPv6 forms that carry an internal IPv4 address.
        "http://[::1]/",
        "http://[::]/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[fec0::1]/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://[::127.0.0.1]/",
        "http://[2002:7f00:1::]/",  # 6to4 around 127.0.0.1
        "http://[2002:a9fe:a9fe::]/",  # 6to4 around 169.254.169.254
        "http://[64:ff9b::7f00:1]/",  # NAT64 around 127.0.0.1
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
        "http://[ff02::1]/",
        # Metadata by name, refused before any lookup.
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://metadata.google.internal./computeMetadata/v1/",
        "https://METADATA.google.internal/",
        "http://metadata/",
    ],
)
def test_refuses_internal_addresses(url: str) -> None:
    error = refusal(lambda: fetch_page(url, FetchPolicy(timeout=2.0)))

    assert str(error) == INSIDE


@pytest.mark.parametrize(
    ("name", "addresses"),
    [
        ("intranet.test", ["10.0.0.5"]),
        ("loopback.test", ["127.0.0.1"]),
        ("v6-loopback.test", ["::1"]),
        ("mapped.test", ["::ffff:127.0.0.1"]),
        ("metadata.test", ["169.254.169.254"]),
        # One bad answer among good ones refuses the URL, whichever comes first.
        ("public-first.test", ["93.184.216.34", "127.0.0.1"]),
        ("private-first.test", ["192.168.0.10", "93.184.216.34"]),
    ],
)
def test_refuses_names_that_resolve_inside(
    fake_dns: FakeDNS, local_http_server: LocalHTTPServer, name: str, addresses: list[str]
) -> None:
    fake_dns.add(name, *addresses)
    local_http_server.respond("/", PAGE)

    error = refusal(lambda: fetch_page(local_http_server.url(host=name), FetchPolicy(timeout=2.0)))

    assert str(error) == INSIDE
    assert local_http_server.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:169.254.169.254]/",
        "http://100.100.100.200/",
        "http://metadata.google.internal/",
    ],
)
def test_metadata_stays_refused_when_private_addresses_are_allowed(url: str) -> None:
    everything = FetchPolicy(
        allow_private=True,
        allowed_networks=(
            ipaddress.ip_network("0.0.0.0/0"),
            ipaddress.ip_network("::/0"),
        ),
        timeout=2.0,
    )

    error = refusal(lambda: fetch_page(url, everything))

    assert str(error) == INSIDE


def test_allowed_networks_admit_only_what_they_name(
    make_local_http_server: Callable[..., LocalHTTPServer],
) -> None:
    other_loopback = make_local_http_server("127.0.0.2")
    other_loopback.respond("/", PAGE)

    error = refusal(lambda: fetch_page(other_loopback.url(), policy()))

    assert str(error) == INSIDE
    assert other_loopback.requests == []


def test_unknown_names_are_reported() -> None:
    error = refusal(lambda: fetch_page("http://no-such-host.test/", policy()))

    assert str(error) == "The address no-such-host.test could not be found"


# --- what kind of address ------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/cat.png",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_INFO",
        "dict://127.0.0.1:11211/stat",
        "javascript:alert(1)",
        "data:image/png;base64,iVBORw0KGgo=",
        "//example.com/cat.png",
        "example.com/cat.png",
        "",
    ],
)
def test_refuses_other_schemes(url: str) -> None:
    error = refusal(lambda: fetch_image(url, policy()))

    assert str(error) == ONLY_HTTP


@pytest.mark.parametrize("url", ["http://", "http:///path", "http://example.com:99999/"])
def test_refuses_malformed_addresses(url: str) -> None:
    error = refusal(lambda: fetch_page(url, policy()))

    assert str(error) == "This is not a valid web address"


def test_refuses_credentials_in_the_address(local_http_server: LocalHTTPServer) -> None:
    local_http_server.respond("/", PAGE)
    url = local_http_server.url().replace("http://", "http://admin:secret@")

    error = refusal(lambda: fetch_page(url, policy()))

    assert str(error) == "Addresses with a user name or password cannot be fetched"
    assert local_http_server.requests == []


# --- redirects -----------------------------------------------------------------------------


def test_follows_redirects_to_the_final_url(local_http_server: LocalHTTPServer) -> None:
    local_http_server.redirect("/old", "/moved/here", status=301)
    local_http_server.redirect("/moved/here", "../final?x=1#ignored", status=307)
    local_http_server.respond("/final", PAGE)

    page = fetch_page(local_http_server.url("/old"), policy())

    assert page.body == PAGE
    assert page.url == local_http_server.url("/final?x=1")
    assert [request.path for request in local_http_server.requests] == [
        "/old",
        "/moved/here",
        "/final?x=1",
    ]


def test_refuses_a_redirect_to_another_loopback_address(
    local_http_server: LocalHTTPServer, make_local_http_server: Callable[..., LocalHTTPServer]
) -> None:
    internal = make_local_http_server("127.0.0.2")
    internal.respond("/secret", b"<p>the crown jewels</p>")
    local_http_server.redirect("/", internal.url("/secret"))

    error = refusal(lambda: fetch_page(local_http_server.url(), policy()))

    assert str(error) == INSIDE
    assert internal.requests == []


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[::1]/",
        "http://2130706434/",  # 127.0.0.2: the policy allows only 127.0.0.1
        "http://0x7f000002/",
        "http://metadata.google.internal/",
    ],
)
def test_refuses_redirects_into_private_space(
    local_http_server: LocalHTTPServer, location: str
) -> None:
    local_http_server.redirect("/", location)

    error = refusal(lambda: fetch_page(local_http_server.url(), policy()))

    assert str(error) == INSIDE


def test_refuses_a_redirect_to_another_scheme(local_http_server: LocalHTTPServer) -> None:
    local_http_server.redirect("/", "file:///etc/passwd")

    error = refusal(lambda: fetch_page(local_http_server.url(), policy()))

    assert str(error) == ONLY_HTTP


def test_refuses_too_many_redirects(local_http_server: LocalHTTPServer) -> None:
    local_http_server.redirect("/loop", "/loop")

    error = refusal(lambda: fetch_page(local_http_server.url("/loop"), policy(max_redirects=3)))

    assert str(error) == "Too many redirects (more than 3)"
    assert len(local_http_server.requests) == 4


def test_follows_exactly_the_allowed_number_of_redirects(
    local_http_server: LocalHTTPServer,
) -> None:
    for hop in range(3):
        local_http_server.redirect(f"/{hop}", f"/{hop + 1}")
    local_http_server.respond("/3", PAGE)

    page = fetch_page(local_http_server.url("/0"), policy(max_redirects=3))

    assert page.body == PAGE


def test_refuses_a_redirect_without_a_location(local_http_server: LocalHTTPServer) -> None:
    local_http_server.respond("/", status=302)

    error = refusal(lambda: fetch_page(local_http_server.url(), policy()))

    assert str(error) == "The server sent a redirect without saying where to"


# --- resolution happens once, and the connection goes where the check looked ----------------


def test_resolves_each_hop_once_and_sends_the_original_host(
    fake_dns: FakeDNS, local_http_server: LocalHTTPServer
) -> None:
    fake_dns.add("example.test", "127.0.0.1")
    local_http_server.redirect("/", "/next")
    local_http_server.respond("/next", PAGE)

    page = fetch_page(local_http_server.url(host="example.test"), policy())

    assert page.body == PAGE
    assert page.url == local_http_server.url("/next", host="example.test")
    assert fake_dns.lookup_count("example.test") == 2
    assert {request.headers["host"] for request in local_http_server.requests} == {
        f"example.test:{local_http_server.port}"
    }


def test_dns_rebinding_cannot_redirect_the_connection(
    fake_dns: FakeDNS, make_local_http_server: Callable[..., LocalHTTPServer]
) -> None:
    # The attacker's DNS answers the allowed address to the first lookup and an internal one
    # to every later lookup. Only a fetcher that looks up the name again can reach "internal".
    public = make_local_http_server("127.0.0.1")
    internal = make_local_http_server("127.0.0.2", port=public.port)
    public.respond("/", b"<p>public</p>")
    internal.respond("/", b"<p>internal</p>")
    fake_dns.add_sequence("rebind.test", ["127.0.0.1"], ["127.0.0.2"])

    page = fetch_page(public.url(host="rebind.test"), policy())

    assert page.body == b"<p>public</p>"
    assert internal.requests == []


# --- size ----------------------------------------------------------------------------------


def test_refuses_a_declared_length_over_the_cap_before_reading(
    local_http_server: LocalHTTPServer,
) -> None:
    def huge(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "text/html")
        request.send_header("Content-Length", str(6 * 1024 * 1024))
        request.end_headers()
        local_http_server.stopping.wait(10)  # never sends the body

    local_http_server.route("/", huge)
    started = time.monotonic()

    error = refusal(lambda: fetch_page(local_http_server.url(), policy()))

    assert str(error) == "The page is larger than 5 MB"
    assert time.monotonic() - started < 1.5


def test_refuses_an_endless_stream_at_the_cap(local_http_server: LocalHTTPServer) -> None:
    def endless(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "image/jpeg")
        request.end_headers()
        while not local_http_server.stopping.is_set():
            request.wfile.write(b"\xff" * 16 * KB)

    local_http_server.route("/", endless)

    error = refusal(lambda: fetch_image(local_http_server.url(), policy(image_max_bytes=64 * KB)))

    assert str(error) == "The image is larger than 64 KB"


def test_counts_decompressed_bytes_against_the_cap(local_http_server: LocalHTTPServer) -> None:
    bomb = gzip.compress(b"\x00" * 4 * 1024 * 1024)
    local_http_server.respond("/", bomb, headers={"Content-Encoding": "gzip"})

    error = refusal(lambda: fetch_page(local_http_server.url(), policy(page_max_bytes=64 * KB)))

    assert len(bomb) < 64 * KB
    assert str(error) == "The page is larger than 64 KB"


def test_a_body_exactly_at_the_cap_is_accepted(local_http_server: LocalHTTPServer) -> None:
    body = b"x" * 64 * KB
    local_http_server.respond("/", body)

    assert fetch_page(local_http_server.url(), policy(page_max_bytes=64 * KB)).body == body


# --- time ----------------------------------------------------------------------------------


def test_a_slow_drip_body_is_cut_off_at_the_deadline(local_http_server: LocalHTTPServer) -> None:
    def drip(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "text/html")
        request.end_headers()
        for _ in range(DRIP_BYTES):
            if local_http_server.stopping.wait(0.2):
                break
            request.wfile.write(b"<")

    local_http_server.route("/", drip)
    started = time.monotonic()

    error = refusal(lambda: fetch_page(local_http_server.url(), policy(timeout=1.0)))

    assert str(error) == TOO_SLOW
    assert 0.9 < time.monotonic() - started < 2.5


def test_slow_drip_headers_are_cut_off_at_the_deadline(local_http_server: LocalHTTPServer) -> None:
    def drip(request: BaseHTTPRequestHandler) -> None:
        request.wfile.write(b"HTTP/1.0 200 OK\r\nX-Slow: ")
        for _ in range(DRIP_BYTES):
            if local_http_server.stopping.wait(0.2):
                break
            request.wfile.write(b"z")

    local_http_server.route("/", drip)
    started = time.monotonic()

    error = refusal(lambda: fetch_page(local_http_server.url(), policy(timeout=1.0)))

    assert str(error) == TOO_SLOW
    assert time.monotonic() - started < 2.5


def test_a_silent_server_hits_the_read_timeout(local_http_server: LocalHTTPServer) -> None:
    def silent(request: BaseHTTPRequestHandler) -> None:
        local_http_server.stopping.wait(10)

    local_http_server.route("/", silent)
    started = time.monotonic()

    error = refusal(lambda: fetch_page(local_http_server.url(), policy(read_timeout=0.3)))

    assert str(error) == TOO_SLOW
    assert time.monotonic() - started < 1.5


# --- what the server answers ---------------------------------------------------------------


def test_refuses_an_image_where_a_page_was_expected(local_http_server: LocalHTTPServer) -> None:
    local_http_server.respond("/", PNG, content_type="image/png")

    error = refusal(lambda: fetch_page(local_http_server.url(), policy()))

    assert str(error) == "Expected a web page but the server sent image/png"


def test_refuses_a_page_where_an_image_was_expected(local_http_server: LocalHTTPServer) -> None:
    local_http_server.respond("/cat.png", PAGE, content_type="text/html; charset=utf-8")

    error = refusal(lambda: fetch_image(local_http_server.url("/cat.png"), policy()))

    assert str(error) == "Expected an image but the server sent text/html"


def test_refuses_an_answer_without_a_content_type(local_http_server: LocalHTTPServer) -> None:
    local_http_server.respond("/cat.png", PNG, content_type=None)

    error = refusal(lambda: fetch_image(local_http_server.url("/cat.png"), policy()))

    assert str(error) == "Expected an image but the server sent no content type"


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (404, "The server answered 404 Not Found"),
        (410, "The server answered 410 Gone"),
        (500, "The server answered 500 Internal Server Error"),
    ],
)
def test_http_errors_carry_their_status(
    local_http_server: LocalHTTPServer, status: int, message: str
) -> None:
    local_http_server.respond("/page", b"<p>nope</p>", status=status)

    error = refusal(lambda: fetch_page(local_http_server.url("/page"), policy()))

    assert str(error) == message
    assert error.status == status


def test_a_closed_port_is_reported() -> None:
    port = free_loopback_port()

    error = refusal(lambda: fetch_page(f"http://127.0.0.1:{port}/", policy()))

    assert str(error) == "Could not connect to 127.0.0.1"


# --- two threads at once ---------------------------------------------------------------------


def test_fetches_from_two_threads_keep_their_own_results_and_deadlines(
    local_http_server: LocalHTTPServer,
) -> None:
    def drip(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "text/html")
        request.end_headers()
        for _ in range(DRIP_BYTES):
            if local_http_server.stopping.wait(0.2):
                break
            request.wfile.write(b"<")

    def slowish(request: BaseHTTPRequestHandler) -> None:
        time.sleep(0.3)
        request.send_response(200)
        request.send_header("Content-Type", "text/html")
        request.end_headers()
        request.wfile.write(b"<p>slowish</p>")

    local_http_server.route("/drip", drip)
    local_http_server.route("/slowish", slowish)
    local_http_server.respond("/quick", b"<p>quick</p>")

    with ThreadPoolExecutor(max_workers=3) as pool:
        dripping = pool.submit(fetch_page, local_http_server.url("/drip"), policy(timeout=1.0))
        slow = pool.submit(fetch_page, local_http_server.url("/slowish"), policy())
        quick = pool.submit(fetch_page, local_http_server.url("/quick"), policy())

        assert slow.result().body == b"<p>slowish</p>"
        assert quick.result().body == b"<p>quick</p>"
        with pytest.raises(FetchError, match=TOO_SLOW):
            dripping.result()


# --- https: SNI and the certificate check use the name, the connection uses the IP ----------


@pytest.fixture(scope="module")
def certificate_authority(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate authority")
    folder = tmp_path_factory.mktemp("tls")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    curve = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl(
        "req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=Chirp test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    openssl("req", *curve, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=secure.test")
    (folder / "leaf.ext").write_text(
        "subjectAltName=DNS:secure.test\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid,issuer\n"
        "subjectKeyIdentifier=hash\n"
    )
    openssl(
        "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "leaf.pem", "-days", "2", "-extfile", "leaf.ext",
    )  # fmt: skip
    return {"ca": folder / "ca.pem", "cert": folder / "leaf.pem", "key": folder / "leaf.key"}


@pytest.fixture
def https_server(
    certificate_authority: dict[str, Path],
    make_local_http_server: Callable[..., LocalHTTPServer],
) -> tuple[LocalHTTPServer, list[str | None]]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate_authority["cert"], certificate_authority["key"])
    server_names: list[str | None] = []

    def remember_sni(sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        server_names.append(name)

    context.sni_callback = remember_sni  # type: ignore[assignment]
    server = make_local_http_server(ssl_context=context)
    server.respond("/", PAGE)
    return server, server_names


def test_https_checks_the_certificate_against_the_name(
    fake_dns: FakeDNS,
    certificate_authority: dict[str, Path],
    https_server: tuple[LocalHTTPServer, list[str | None]],
) -> None:
    server, server_names = https_server
    fake_dns.add("secure.test", "127.0.0.1")

    page = fetch_page(
        server.url(host="secure.test"), policy(ca_certs=str(certificate_authority["ca"]))
    )

    assert page.body == PAGE
    assert server_names == ["secure.test"]
    assert server.requests[0].headers["host"] == f"secure.test:{server.port}"


def test_https_refuses_a_certificate_for_another_name(
    fake_dns: FakeDNS,
    certificate_authority: dict[str, Path],
    https_server: tuple[LocalHTTPServer, list[str | None]],
) -> None:
    server, _ = https_server
    fake_dns.add("impostor.test", "127.0.0.1")

    error = refusal(
        lambda: fetch_page(
            server.url(host="impostor.test"), policy(ca_certs=str(certificate_authority["ca"]))
        )
    )

    assert str(error) == "The secure connection to impostor.test could not be verified"
    assert server.requests == []


def test_https_refuses_an_untrusted_certificate(
    fake_dns: FakeDNS, https_server: tuple[LocalHTTPServer, list[str | None]]
) -> None:
    server, _ = https_server
    fake_dns.add("secure.test", "127.0.0.1")

    error = refusal(lambda: fetch_page(server.url(host="secure.test"), policy()))

    assert str(error) == "The secure connection to secure.test could not be verified"


# --- settings --------------------------------------------------------------------------------

SETTING_NAMES = [
    "CHIRP_FETCH_ALLOW_PRIVATE",
    "CHIRP_FETCH_ALLOWED_NETWORKS",
    "CHIRP_FETCH_PAGE_MAX_BYTES",
    "CHIRP_FETCH_IMAGE_MAX_BYTES",
    "CHIRP_FETCH_TIMEOUT",
    "CHIRP_FETCH_CONNECT_TIMEOUT",
    "CHIRP_FETCH_READ_TIMEOUT",
    "CHIRP_FETCH_MAX_REDIRECTS",
    "CHIRP_FETCH_USER_AGENT",
    "CHIRP_FETCH_CA_CERTS",
]


def test_policy_defaults_when_settings_are_absent(settings: object) -> None:
    for name in SETTING_NAMES:
        if hasattr(settings, name):
            delattr(settings, name)

    assert FetchPolicy.from_settings() == FetchPolicy(
        allow_private=False,
        allowed_networks=(),
        page_max_bytes=5 * 1024 * 1024,
        image_max_bytes=25 * 1024 * 1024,
        timeout=30.0,
        connect_timeout=10.0,
        read_timeout=15.0,
        max_redirects=5,
    )


def test_policy_reads_settings(settings: object) -> None:
    values = {
        "CHIRP_FETCH_ALLOW_PRIVATE": True,
        "CHIRP_FETCH_ALLOWED_NETWORKS": ["10.0.0.0/8", "fd12::/16", "192.168.1.7"],
        "CHIRP_FETCH_PAGE_MAX_BYTES": 1000,
        "CHIRP_FETCH_IMAGE_MAX_BYTES": 2000,
        "CHIRP_FETCH_TIMEOUT": 7,
        "CHIRP_FETCH_CONNECT_TIMEOUT": 3,
        "CHIRP_FETCH_READ_TIMEOUT": 4,
        "CHIRP_FETCH_MAX_REDIRECTS": 2,
        "CHIRP_FETCH_USER_AGENT": "ChirpTest/1",
        "CHIRP_FETCH_CA_CERTS": "/etc/chirp/ca.pem",
    }
    for name, value in values.items():
        setattr(settings, name, value)

    assert FetchPolicy.from_settings() == FetchPolicy(
        allow_private=True,
        allowed_networks=(
            ipaddress.ip_network("10.0.0.0/8"),
            ipaddress.ip_network("fd12::/16"),
            ipaddress.ip_network("192.168.1.7/32"),
        ),
        page_max_bytes=1000,
        image_max_bytes=2000,
        timeout=7.0,
        connect_timeout=3.0,
        read_timeout=4.0,
        max_redirects=2,
        user_agent="ChirpTest/1",
        ca_certs="/etc/chirp/ca.pem",
    )


def test_policy_rejects_a_bad_network_setting(settings: object) -> None:
    settings.CHIRP_FETCH_ALLOWED_NETWORKS = ["10.0.0.0/8", "intranet"]  # type: ignore[attr-defined]

    with pytest.raises(ImproperlyConfigured, match="'intranet' is not a network"):
        FetchPolicy.from_settings()
