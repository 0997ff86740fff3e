"""Finding the images a web page shows, from its HTML.

Parsing uses beautifulsoup4 with the standard library's ``html.parser``: Beautiful Soup is the
long-maintained, forgiving choice for real-world (broken) HTML, and ``html.parser`` adds no
compiled dependency, which keeps installs trivial on any machine. Pages are capped at a few
megabytes by the fetcher, well within what it parses in a moment.

Each element contributes at most one URL, the best it offers: the largest ``srcset`` candidate,
else a lazy-loading attribute (the real image behind a placeholder), else ``src``. Tracking
pixels, ``data:`` URIs and anything that is not http(s) are dropped; what is left is
deduplicated in document order.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

from bs4 import BeautifulSoup, Tag
from django.conf import settings

logger = logging.getLogger(__name__)

_LAZY_SRC_ATTRIBUTES = ("data-src", "data-original", "data-lazy-src")
_SRCSET_ATTRIBUTES = ("srcset", "data-srcset", "data-lazy-srcset")
_META_IMAGE_NAMES = frozenset(
    {"og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src"}
)
_DESCRIPTOR = re.compile(r"^(\d+(?:\.\d+)?|\.\d+)([wxh])$", re.IGNORECASE)
_LEADING_NUMBER = re.compile(r"\s*(\d+)")

# Invisible images that exist to be requested, not seen.
_PIXEL_FILENAMES = frozenset(
    {
        "pixel.gif",
        "pixel.png",
        "1x1.gif",
        "1x1.png",
        "spacer.gif",
        "blank.gif",
        "clear.gif",
        "trans.gif",
        "transparent.gif",
        "transparent.png",
        "beacon.gif",
        "tracking.gif",
    }
)
_TRACKER_HOSTS = (
    "google-analytics.com",
    "doubleclick.net",
    "scorecardresearch.com",
    "quantserve.com",
    "bat.bing.com",
    "pixel.wp.com",
    "px.ads.linkedin.com",
    "ct.pinterest.com",
    "analytics.twitter.com",
)
_TRACKER_PATHS = {"facebook.com": ("/tr", "/tr/")}


@dataclass(frozen=True)
class ScrapeLimits:
    max_images: int = 500

    @classmethod
    def from_settings(cls) -> ScrapeLimits:
        return cls(max_images=int(getattr(settings, "CHIRP_SCRAPE_MAX_IMAGES", cls.max_images)))


@dataclass(frozen=True)
class DiscoveredImages:
    urls: list[str]  # absolute, normalised, without fragment, in document order
    total_found: int  # distinct images on the page, before the cap
    truncated: bool  # the cap cut the list
    title: str = ""  # the page's <title>, whitespace collapsed (as the page gave it: escape it)


def find_images(
    html: str | bytes,
    page_url: str,
    *,
    encoding: str | None = None,
    limits: ScrapeLimits | None = None,
) -> DiscoveredImages:
    """List the images ``html`` shows, resolved against ``page_url`` (the URL after redirects).

    ``encoding`` is the charset the server declared, used only when ``html`` is bytes;
    without it Beautiful Soup detects one.
    """
    limits = limits or ScrapeLimits.from_settings()
    if isinstance(html, bytes):
        soup = BeautifulSoup(html, "html.parser", from_encoding=encoding)
    else:
        soup = BeautifulSoup(html, "html.parser")
    base = _base_url(soup, page_url)
    found: dict[str, None] = {}  # an ordered set
    for candidates in _candidates_per_element(soup):
        for candidate in candidates:
            url = _usable_url(candidate, base)
            if url is not None:
                found.setdefault(url, None)
                break
    urls = list(found)
    truncated = len(urls) > limits.max_images
    if truncated:
        logger.info(
            "%s shows %d images; keeping the first %d", page_url, len(urls), limits.max_images
        )
    return DiscoveredImages(
        urls=urls[: limits.max_images],
        total_found=len(urls),
        truncated=truncated,
        title=page_title(soup),
    )


def page_title(soup: BeautifulSoup) -> str:
    """The document's own <title> (not one inside an inline SVG), on one line."""
    for title in soup.find_all("title"):
        if isinstance(title, Tag) and title.find_parent("svg") is None:
            return " ".join(title.get_text().split())
    return ""


def _base_url(soup: BeautifulSoup, page_url: str) -> str:
    base = soup.find("base", href=True)
    if isinstance(base, Tag):
        resolved = urljoin(page_url, _attribute(base, "href"))
        if urlsplit(resolved).scheme.lower() in {"http", "https"}:
            return resolved
    return page_url


def _candidates_per_element(soup: BeautifulSoup) -> Iterator[list[str]]:
    """For each element that shows an image, its URLs from most to least preferred."""
    for element in soup.find_all(["img", "picture", "meta", "link"]):
        if element.name == "meta":
            names = {_attribute(element, name).lower() for name in ("property", "name", "itemprop")}
            if names & _META_IMAGE_NAMES or "image" in names:
                yield [_attribute(element, "content")]
        elif element.name == "link":
            rels = element.get_attribute_list("rel")
            if any(rel and rel.lower() == "image_src" for rel in rels):
                yield [_attribute(element, "href")]
        elif element.name == "picture":
            img = element.find("img")
            if isinstance(img, Tag) and _is_tracking_pixel(img):
                continue
            sources = [*element.find_all("source"), *([img] if isinstance(img, Tag) else [])]
            ranked = _ranked_srcset(sources)
            yield [*ranked, *(_plain_sources(img) if isinstance(img, Tag) else [])]
        elif element.find_parent("picture") is None and not _is_tracking_pixel(element):
            # <img> inside <picture> was handled with its <source>s.
            yield [*_ranked_srcset([element]), *_plain_sources(element)]


def _plain_sources(img: Tag) -> list[str]:
    # Lazy-loading attributes first: when present, src is usually a placeholder.
    return [_attribute(img, name) for name in (*_LAZY_SRC_ATTRIBUTES, "src")]


@dataclass(frozen=True)
class _SrcsetCandidate:
    url: str
    width: float | None
    density: float | None


def _ranked_srcset(elements: list[Tag]) -> list[str]:
    """Every srcset candidate of ``elements``, largest first.

    Width descriptors rank when any candidate has one, else pixel densities; a srcset without
    either lists its candidates smallest first by convention, so the last comes first.
    """
    candidates = [
        candidate
        for element in elements
        for name in _SRCSET_ATTRIBUTES
        for candidate in _parse_srcset(_attribute(element, name))
    ]
    if any(candidate.width is not None for candidate in candidates):
        candidates.sort(key=lambda candidate: -(candidate.width or 0))
    elif any(candidate.density is not None for candidate in candidates):
        candidates.sort(key=lambda candidate: -(candidate.density or 1.0))
    else:
        candidates.reverse()
    return [candidate.url for candidate in candidates]


def _parse_srcset(value: str) -> list[_SrcsetCandidate]:
    """Parse a srcset the way the HTML standard does, so commas inside URLs survive."""
    candidates: list[_SrcsetCandidate] = []
    position, length = 0, len(value)
    while position < length:
        while position < length and (value[position].isspace() or value[position] == ","):
            position += 1
        start = position
        while position < length and not value[position].isspace():
            position += 1
        url = value[start:position]
        descriptors = ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            start, depth = position, 0
            while position < length:
                character = value[position]
                if character == "(":
                    depth += 1
                elif character == ")" and depth:
                    depth -= 1
                elif character == "," and not depth:
                    break
                position += 1
            descriptors = value[start:position]
        if not url:
            continue
        width = density = None
        for token in descriptors.split():
            match = _DESCRIPTOR.match(token)
            if match and match[2].lower() == "w":
                width = float(match[1])
            elif match and match[2].lower() == "x":
                density = float(match[1])
        candidates.append(_SrcsetCandidate(url=url, width=width, density=density))
    return candidates


def _is_tracking_pixel(img: Tag) -> bool:
    for name in ("width", "height"):
        match = _LEADING_NUMBER.match(_attribute(img, name))
        if match and int(match[1]) <= 1:
            return True
    return False


def _usable_url(value: str, base: str) -> str | None:
    """The normalised absolute URL for ``value``, or None when it is not an image to fetch."""
    if not value or value.lower().startswith("data:"):
        return None
    try:
        parts = urlsplit(urljoin(base, value))
        scheme = parts.scheme.lower()
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if scheme not in {"http", "https"} or not host or parts.username or parts.password:
        return None
    path = parts.path or "/"
    if _is_tracker(host, path):
        return None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != (443 if scheme == "https" else 80):
        netloc = f"{netloc}:{port}"
    # Quote what a browser would (spaces, non-ASCII) but leave existing escapes alone, so the
    # same image written two ways dedupes to one URL.
    path = quote(path, safe="/%:@!$&'()*+,;=-._~")
    query = quote(parts.query, safe="/?%:@!$&'()*+,;=-._~")
    return urlunsplit((scheme, netloc, path, query, ""))


def _is_tracker(host: str, path: str) -> bool:
    if path.rsplit("/", 1)[-1].lower() in _PIXEL_FILENAMES:
        return True
    if any(host == tracker or host.endswith(f".{tracker}") for tracker in _TRACKER_HOSTS):
        return True
    return any(
        (host == domain or host.endswith(f".{domain}")) and path in paths
        for domain, paths in _TRACKER_PATHS.items()
    )


def _attribute(element: Tag, name: str) -> str:
    value = element.get(name)
    if isinstance(value, list):  # multi-valued attributes such as class and rel
        value = " ".join(value)
    return (value or "").strip()
