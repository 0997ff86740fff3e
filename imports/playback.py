"""Serving a stored media file to the browser: played in the page, or saved as a file.

    response = media_response(request, media_file, as_attachment=False)

From the local media folder, Chirp answers itself and honours HTTP Range requests (a <video>
seeks by asking for the bytes it needs: 206 with that slice, 416 past the end), streaming the
slice in chunks so a 2 GB file is never read whole. From S3, the browser is sent to a presigned
URL that expires soon, and S3 answers the ranges. `signed_url` is the one place that knows
which storage is which.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

from django.core.files.storage import default_storage
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.utils.http import content_disposition_header

from imports.models import MediaFile

# A presigned URL is good for this long: enough for the browser to start playing (each seek
# asks Chirp again and gets a fresh one), short enough that a copied link soon stops working.
PRESIGNED_SECONDS = 15 * 60
CHUNK = 256 * 1024
CONTENT_TYPES = {
    ("video", "mp4"): "video/mp4",
    ("video", "webm"): "video/webm",
    ("video", "mkv"): "video/x-matroska",
    ("audio", "m4a"): "audio/mp4",
    ("audio", "mp4"): "audio/mp4",
    ("audio", "webm"): "audio/webm",
    ("audio", "mp3"): "audio/mpeg",
    ("audio", "opus"): "audio/ogg",
    ("audio", "ogg"): "audio/ogg",
}
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def signed_url(key: str, *, disposition: str | None = None) -> str | None:
    """A short-lived URL of the stored file when the storage hands them out (S3), else None:
    Chirp serves the file itself."""
    from chirp.storages import S3Storage

    if not isinstance(default_storage, S3Storage):  # (the lazy object passes for its storage)
        return None
    parameters = {"ResponseContentDisposition": disposition} if disposition else None
    return default_storage.url(key, parameters=parameters, expire=PRESIGNED_SECONDS)


def download_name(media_file: MediaFile) -> str:
    """ "<channel> - <title> [<id>].<ext>", with nothing a file system would misread: path
    separators become "-", control characters go."""
    video = media_file.video
    name = f"{video.channel} - {video.title or video.youtube_id} [{video.youtube_id}]"
    name = name.replace("/", "-").replace("\\", "-")
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    name = " ".join(name.split()).strip(". ") or video.youtube_id
    return f"{name}.{media_file.container}"


def content_type(media_file: MediaFile) -> str:
    key = (media_file.kind, media_file.container)
    return CONTENT_TYPES.get(key, f"{media_file.kind}/{media_file.container}")


def parse_range(header: str, size: int) -> tuple[int, int] | bool | None:
    """The byte range (first, last, inclusive) a Range header asks of a file of `size` bytes;
    None when there is no usable header (the whole file is sent), False when it cannot be
    satisfied (416). Several ranges at once are answered with the whole file, as RFC 9110
    allows."""
    found = _RANGE.match(header.strip()) if header else None
    if found is None:
        return None
    first, last = found.groups()
    if not first and not last:
        return None
    if not first:  # a suffix: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            return False
        return max(0, size - length), size - 1
    start = int(first)
    if start >= size:
        return False
    end = min(int(last), size - 1) if last else size - 1
    if end < start:
        return None  # invalid: ignored
    return start, end


def _slice(file, start: int, length: int) -> Iterator[bytes]:  # type: ignore[no-untyped-def]
    try:
        file.seek(start)
        while length > 0:
            chunk = file.read(min(CHUNK, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        file.close()


def media_response(
    request: HttpRequest, media_file: MediaFile, *, as_attachment: bool
) -> HttpResponse:
    """The stored file: a redirect to a presigned URL (S3) or the bytes, ranges honoured."""
    disposition = content_disposition_header(as_attachment, download_name(media_file))
    url = signed_url(media_file.key, disposition=disposition)
    if url is not None:
        response: HttpResponse = HttpResponseRedirect(url)
        response["Cache-Control"] = "private, no-store"  # the URL expires: ask again each time
        return response
    size = media_file.size
    wanted = parse_range(request.headers.get("Range", ""), size)
    if wanted is False:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        response["Accept-Ranges"] = "bytes"
        return response
    start, end = wanted or (0, size - 1)
    file = default_storage.open(media_file.key, "rb")
    response = StreamingHttpResponse(
        _slice(file, start, end - start + 1),
        status=206 if wanted else 200,
        content_type=content_type(media_file),
    )
    response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    if wanted:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Content-Disposition"] = disposition
    # The stored file never changes (a new download is a new key).
    response["Cache-Control"] = "private, max-age=86400"
    return response
