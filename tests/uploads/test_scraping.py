"""Finding a page's images: what a user would see listed for a page they pasted."""

from __future__ import annotations

import pytest

from uploads.scraping import DiscoveredImages, ScrapeLimits, find_images

PAGE_URL = "https://example.com/blog/post.html"


def urls(html: str | bytes, page_url: str = PAGE_URL, **options: object) -> list[str]:
    return find_images(html, page_url, limits=ScrapeLimits(), **options).urls  # type: ignore[arg-type]


def test_resolves_img_src_against_the_page() -> None:
    html = """
        <img src="cat.jpg">
        <img src="/images/dog.png">
        <img src="//cdn.example.org/bird.webp">
        <img src="../fish.gif">
        <img src="http://other.example.net/frog.jpg">
        <img src="  spaced.jpg  ">
    """

    assert urls(html) == [
        "https://example.com/blog/cat.jpg",
        "https://example.com/images/dog.png",
        "https://cdn.example.org/bird.webp",
        "https://example.com/fish.gif",
        "http://other.example.net/frog.jpg",
        "https://example.com/blog/spaced.jpg",
    ]


def test_base_href_changes_where_relative_urls_point() -> None:
    html = """
        <head><base href="https://static.example.net/assets/"></head>
        <img src="cat.jpg"><img src="/root.jpg">
    """

    assert urls(html) == [
        "https://static.example.net/assets/cat.jpg",
        "https://static.example.net/root.jpg",
    ]


def test_a_relative_base_href_is_resolved_against_the_page() -> None:
    assert urls('<base href="/media/"><img src="cat.jpg">') == ["https://example.com/media/cat.jpg"]


def test_a_base_href_that_is_not_http_is_ignored() -> None:
    assert urls('<base href="javascript:alert(1)"><img src="cat.jpg">') == [
        "https://example.com/blog/cat.jpg"
    ]


def test_srcset_takes_the_widest_candidate() -> None:
    html = '<img src="small.jpg" srcset="medium.jpg 800w, large.jpg 1600w, small.jpg 400w">'

    assert urls(html) == ["https://example.com/blog/large.jpg"]


def test_srcset_takes_the_highest_density_without_widths() -> None:
    html = '<img src="a.jpg" srcset="a@3x.jpg 3x, a.jpg, a@2x.jpg 2x">'

    assert urls(html) == ["https://example.com/blog/a@3x.jpg"]


def test_srcset_without_descriptors_takes_the_last() -> None:
    assert urls('<img srcset="first.jpg, second.jpg">') == ["https://example.com/blog/second.jpg"]


def test_srcset_urls_may_contain_commas() -> None:
    html = """<img srcset="
        https://res.example.com/upload/w_400,h_300/cat.jpg 400w,
        https://res.example.com/upload/w_1200,h_900/cat.jpg 1200w">"""

    assert urls(html) == ["https://res.example.com/upload/w_1200,h_900/cat.jpg"]


def test_picture_gives_its_largest_source_once() -> None:
    html = """
        <picture>
          <source type="image/avif" srcset="hero-800.avif 800w, hero-1600.avif 1600w">
          <source type="image/webp" srcset="hero-1200.webp 1200w">
          <img src="hero.jpg" alt="Hero">
        </picture>
        <img src="after.jpg">
    """

    assert urls(html) == [
        "https://example.com/blog/hero-1600.avif",
        "https://example.com/blog/after.jpg",
    ]


def test_picture_without_source_srcsets_falls_back_to_its_img() -> None:
    html = '<picture><source media="(min-width: 600px)"><img src="only.jpg"></picture>'

    assert urls(html) == ["https://example.com/blog/only.jpg"]


@pytest.mark.parametrize("attribute", ["data-src", "data-original", "data-lazy-src"])
def test_lazy_loading_attributes_win_over_the_placeholder(attribute: str) -> None:
    html = f"""
        <img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" {attribute}="/real/cat.jpg">
        <img src="/loading.gif" {attribute}="/real/dog.jpg">
    """

    assert urls(html) == ["https://example.com/real/cat.jpg", "https://example.com/real/dog.jpg"]


def test_lazy_srcset_takes_the_widest_candidate() -> None:
    html = '<img src="/blank.png" data-srcset="/m.jpg 640w, /l.jpg 1280w">'

    assert urls(html) == ["https://example.com/l.jpg"]


def test_a_data_uri_candidate_falls_back_to_the_next_best() -> None:
    html = '<img srcset="data:image/png;base64,AAAA 2x" src="real.jpg">'

    assert urls(html) == ["https://example.com/blog/real.jpg"]


def test_social_meta_and_image_src_links() -> None:
    html = """
        <head>
          <meta property="og:image" content="https://example.com/og.jpg">
          <meta property="og:image:url" content="/og-url.jpg">
          <meta name="twitter:image" content="twitter.jpg">
          <meta property="og:title" content="not an image">
          <link rel="image_src" href="/linked.jpg">
          <link rel="stylesheet" href="/style.css">
        </head>
    """

    assert urls(html) == [
        "https://example.com/og.jpg",
        "https://example.com/og-url.jpg",
        "https://example.com/blog/twitter.jpg",
        "https://example.com/linked.jpg",
    ]


def test_duplicates_are_listed_once_where_first_seen() -> None:
    html = """
        <meta property="og:image" content="https://example.com/cat.jpg#top">
        <img src="/dog.jpg">
        <img src="https://EXAMPLE.com:443/cat.jpg">
        <img src="../cat.jpg#gallery">
        <img src="/dog.jpg">
        <noscript><img src="/dog.jpg"></noscript>
    """

    result = find_images(html, PAGE_URL, limits=ScrapeLimits())

    assert result.urls == ["https://example.com/cat.jpg", "https://example.com/dog.jpg"]
    assert result.total_found == 2


def test_tracking_pixels_are_skipped() -> None:
    html = """
        <img src="/one.gif" width="1" height="1">
        <img src="/zero.gif" width="0">
        <img src="/px.gif" height="1px">
        <img src="/stats/pixel.gif">
        <img src="/t/1x1.gif?id=3">
        <img src="/spacer.gif">
        <img src="https://www.facebook.com/tr?id=123&ev=PageView&noscript=1">
        <img src="https://www.google-analytics.com/collect?v=1">
        <img src="https://stats.g.doubleclick.net/r/collect">
        <picture><img src="/hidden.jpg" width="1" height="1"></picture>
        <img src="/real.jpg" width="640" height="480">
        <img src="https://www.facebook.com/photo.jpg">
    """

    assert urls(html) == [
        "https://example.com/real.jpg",
        "https://www.facebook.com/photo.jpg",
    ]


def test_non_http_sources_are_skipped() -> None:
    html = """
        <img src="data:image/png;base64,iVBORw0KGgo=">
        <img src="javascript:alert(1)">
        <img src="blob:https://example.com/0b7c">
        <img src="ftp://example.com/cat.jpg">
        <img src="mailto:someone@example.com">
        <img src="https://user:secret@example.com/private.jpg">
        <img src="">
        <img>
        <meta property="og:image" content="">
    """

    assert urls(html) == []


def test_urls_are_quoted_the_way_a_browser_would() -> None:
    html = '<img src="/my photos/café.jpg?size=big one">'

    assert urls(html) == ["https://example.com/my%20photos/caf%C3%A9.jpg?size=big%20one"]


def test_reads_bytes_in_the_declared_encoding() -> None:
    html = '<img src="/café.jpg" alt="€">'.encode("cp1252")

    assert urls(html, encoding="windows-1252") == ["https://example.com/caf%C3%A9.jpg"]


def test_the_cap_keeps_the_first_images_and_says_so() -> None:
    html = "".join(f'<img src="/{number}.jpg">' for number in range(12))

    result = find_images(html, PAGE_URL, limits=ScrapeLimits(max_images=5))

    assert result == DiscoveredImages(
        urls=[f"https://example.com/{number}.jpg" for number in range(5)],
        total_found=12,
        truncated=True,
    )


def test_a_page_exactly_at_the_cap_is_not_truncated() -> None:
    html = "".join(f'<img src="/{number}.jpg">' for number in range(5))

    result = find_images(html, PAGE_URL, limits=ScrapeLimits(max_images=5))

    assert len(result.urls) == 5
    assert result.truncated is False


def test_a_page_without_images() -> None:
    result = find_images("<p>Just words.</p>", PAGE_URL, limits=ScrapeLimits())

    assert result == DiscoveredImages(urls=[], total_found=0, truncated=False)


def test_broken_html_still_yields_its_images() -> None:
    html = "<div><p><img src=/a.jpg><table><tr><td><img src='/b.jpg'></div></span><img src=/c.jpg>"

    assert urls(html) == [
        "https://example.com/a.jpg",
        "https://example.com/b.jpg",
        "https://example.com/c.jpg",
    ]


def test_the_cap_comes_from_settings(settings: object) -> None:
    if hasattr(settings, "CHIRP_SCRAPE_MAX_IMAGES"):
        delattr(settings, "CHIRP_SCRAPE_MAX_IMAGES")
    assert ScrapeLimits.from_settings() == ScrapeLimits(max_images=500)

    settings.CHIRP_SCRAPE_MAX_IMAGES = 2  # type: ignore[attr-defined]
    html = '<img src="/1.jpg"><img src="/2.jpg"><img src="/3.jpg">'
    result = find_images(html, PAGE_URL)

    assert result.urls == ["https://example.com/1.jpg", "https://example.com/2.jpg"]
    assert result.truncated is True
