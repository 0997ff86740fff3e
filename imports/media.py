"""Downloading a video's media with yt-dlp and storing it: the `download` stage of an import.

    media_file = store_media(video, "720", client=youtube, on_progress=show)

1. The media is downloaded into the scratch folder, one folder per video and quality
   (CHIRP_MEDIA_SCRATCH_DIR/<video id>/<quality>/), in the formats yt-dlp chooses with its own
   format sorting: the tallest picture at or under the height asked, H.264/AAC in MP4 first,
   VP9/Opus in WebM otherwise; the audio alone for "audio". One file over plain HTTP(S) (a
   progressive stream, the audio alone) is fetched by Chirp itself (_fetch: cheaper than
   yt-dlp's HTTP downloader, see there); anything else (separate video and audio
   streams, merged by ffmpeg: CHIRP_FFMPEG, or imageio-ffmpeg's binary) by yt-dlp, from the
   same extraction. Every request, media included, waits for its turn at the shared limiter
   (the client's gate). A download cut short (a shutdown, a kill, a lost connection) leaves
   its `.part` files there, and the next attempt continues them.
   Its SHA-256 is computed beside the download, from what yt-dlp has just written (a thread of
   its own: _FollowingHash), when it is one file fetched in order; otherwise (two streams
   merged) from the finished file.
2. The finished file goes into Django's default storage (the local media folder or S3,
   whichever is configured) under `media/<channel id>/<video id>/<uuid>.<ext>`: the media
   folder moves it into place (a rename, when the scratch folder is on the same filesystem),
   S3 is sent it in parts (hashed as they are read, if it was not hashed yet). The stored copy
   is then checked by size and SHA-256: a moved file is the very file that was hashed, if it was
   not written since (its device, inode, size and modification time); S3 verified each part's
   checksum as it arrived, so its size (chirp/storages.py); anything else is read back. Then
   the `MediaFile` is recorded and the scratch folder deleted. A storage that refuses the file
   leaves it in the scratch folder for a retry.

The file is stored once per (video, quality): a second request finds the `MediaFile`; two
downloads of it at once on one machine take turns (a lock beside the scratch folder), and on two
machines both store, and the one that records second deletes its copy. At most
CHIRP_MEDIA_CONCURRENCY downloads run at once across the installation (imports.limiter's
DownloadSlot); the others wait for a slot.
`enqueue_download` queues downloads outside an import (a video's button, "download all at").
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import IntegrityError, connections, transaction
from yt_dlp.networking import Request
from yt_dlp.networking.exceptions import HTTPError, TransportError
from yt_dlp.postprocessor.common import PostProcessor
from yt_dlp.utils import DownloadCancelled, YoutubeDLError

from chirp.storages import verified_on_upload
from imports.limiter import DownloadSlot
from imports.models import MediaFile, Quality, Video
from imports.youtube import YOUTUBE, Reason, YouTube, YouTubeError, _causes, classify_error

logger = logging.getLogger(__name__)

# Live progress is sent at most this often (a card redrawn 50 times a second helps nobody).
PROGRESS_INTERVAL = 0.5
# A media URL answered 403 (its signature expired): ask for fresh URLs this many times.
FRESH_URL_ATTEMPTS = 2
READ_CHUNK = 1024 * 1024
# yt-dlp's first read on each connection (each of YouTube's 10 MB ranges); it then sizes its
# reads to about a second of data, up to 4 MB. (Its default starts at 1 KB: a dozen tiny reads,
# writes and progress reports per range. Not a fixed megabyte either: a read waits until its
# buffer is full, and a stop is seen between reads: 10 s apart on a 100 kB/s link.)
YTDLP_FIRST_READ = 64 * 1024
# Seconds between yt-dlp's own progress lines: formatted at every read even when nobody sees
# them (quiet), a tenth of the download's CPU time on a fast connection.
YTDLP_PROGRESS_EVERY = 3600.0
LOCK_POLL = 0.2  # seconds between looks at another download's lock
# Chirp's own HTTP download (_fetch): reads sized to about this long at the speed measured,
# between these bounds, into one buffer reused (a fresh megabyte per read, as `read()`
# allocates, costs page faults on every page: a third of the time of a loopback download).
FETCH_READ_SECONDS = 0.25
FETCH_MIN_READ = 64 * 1024
FETCH_MAX_READ = 1024 * 1024
# A connection lost in the middle of the file: continue from where it stopped this many times.
FETCH_RETRIES = 5


class StorageError(Exception):
    """The storage refused the file (bucket missing, credentials, disk full...)."""


class ChecksumMismatch(Exception):
    """The stored copy is not what was downloaded (it has been deleted)."""


class DownloadInterrupted(DownloadCancelled):
    """Told to stop (a shutdown, a cancel): the .part files stay for the next attempt."""

    msg = "The download was interrupted"


class TooLarge(DownloadCancelled):
    msg = "The file is larger than CHIRP_MEDIA_MAX_BYTES"


@dataclass(frozen=True)
class Progress:
    downloaded: int
    total: int | None
    speed: float | None  # bytes per second
    eta: float | None  # seconds

    @property
    def percent(self) -> int | None:
        return min(100, int(100 * self.downloaded / self.total)) if self.total else None

    def __str__(self) -> str:
        """ "Downloading 45 % · 38 MB of 84 MB · 3.2 MB/s · 14 s left"."""
        parts = ["Downloading"]
        if self.percent is not None:
            parts[0] += f" {self.percent} %"
        parts.append(
            f"{_megabytes(self.downloaded)} of {_megabytes(self.total)}"
            if self.total
            else _megabytes(self.downloaded)
        )
        if self.speed:
            parts.append(f"{self.speed / 1e6:.1f} MB/s")
        if self.eta is not None and self.total:
            parts.append(f"{int(self.eta)} s left")
        return " · ".join(parts)


def _megabytes(size: int | None) -> str:
    size = size or 0
    return f"{size / 1e6:.0f} MB" if size >= 10e6 else f"{size / 1e6:.1f} MB"


# -- format choice -----------------------------------------------------------------------------


def format_options(quality: str) -> dict[str, Any]:
    """yt-dlp's own format selection for `quality`: separate video and audio streams (merged),
    else the best progressive one; sorted by height at or under the limit, then by what a
    browser plays (H.264 and AAC in MP4 before VP9 and Opus in WebM)."""
    quality = Quality(quality)
    if quality == Quality.AUDIO:
        return {"format": "ba/b", "format_sort": ["acodec:aac", "ext:mp4:m4a"]}
    height = quality.max_height
    return {
        "format": "bv+ba/b",
        "format_sort": [f"res:{height}" if height else "res", "vcodec:h264", "acodec:aac",
                        "ext:mp4:m4a"],
        "merge_output_format": "mp4/webm/mkv",
    }  # fmt: skip


def ffmpeg_location(scratch: Path) -> str:
    """A folder holding `ffmpeg`: yt-dlp finds the binary by that name, and imageio-ffmpeg's
    is named after its version. (There is no ffprobe: merging needs none, and the fixups that
    would are turned off.)"""
    binary = settings.CHIRP_FFMPEG
    if binary is None:
        import imageio_ffmpeg

        binary = imageio_ffmpeg.get_ffmpeg_exe()
    folder = scratch / ".ffmpeg"
    link = folder / "ffmpeg"
    if not link.exists() or os.path.realpath(link) != os.path.realpath(binary):
        folder.mkdir(parents=True, exist_ok=True)
        # A name of its own: the worker's threads (and other workers) may be here at once.
        tmp = folder / f"ffmpeg.{uuid.uuid4().hex}"
        tmp.symlink_to(binary)
        tmp.replace(link)  # atomic: another download may be reading it
    return str(folder)


def scratch_folder(video: Video, quality: str) -> Path:
    """Where `video` is downloaded at `quality`: the same folder every time, so an interrupted
    download continues its .part files."""
    return settings.CHIRP_MEDIA_SCRATCH_DIR / video.youtube_id / quality


# -- download ----------------------------------------------------------------------------------


class _ProgressHook:
    """yt-dlp's progress hook: adds up the streams of a merged download, reports at most every
    PROGRESS_INTERVAL, stops a download passing the size limit or told to stop."""

    def __init__(
        self,
        on_progress: Callable[[Progress], None] | None,
        interrupted: Callable[[], bool] | None,
        max_bytes: int,
    ) -> None:
        self.on_progress = on_progress
        self.interrupted = interrupted
        self.max_bytes = max_bytes
        self.files: dict[str, tuple[int, int | None]] = {}  # filename -> (done, total)
        self.expected: int | None = None  # all requested streams, once known
        self.last = 0.0
        self.hasher = _FollowingHash()

    def __call__(self, d: dict[str, Any]) -> None:
        self.hasher.report(d)
        if self.interrupted is not None and self.interrupted():
            raise DownloadInterrupted()
        name = d.get("filename") or ""
        total = d.get("total_bytes") or d.get("total_bytes_estimate")
        self.files[name] = (d.get("downloaded_bytes") or 0, total)
        downloaded = sum(done for done, _ in self.files.values())
        if self.max_bytes and downloaded > self.max_bytes:
            raise TooLarge()
        now = time.monotonic()
        if self.on_progress is None:
            return
        if d.get("status") == "downloading" and now - self.last < PROGRESS_INTERVAL:
            return
        self.last = now
        known = sum(t or 0 for _, t in self.files.values())
        self.on_progress(
            Progress(
                downloaded=downloaded,
                total=max(self.expected or 0, known) or None,
                speed=d.get("speed"),
                eta=d.get("eta"),
            )
        )


class _FollowingHash:
    """The SHA-256 of the file yt-dlp is downloading, computed beside the download: a thread
    reads from the .part file what each progress report says was written (still in the page
    cache) and hashes it (hashlib and file reads let go of the interpreter lock), so that the
    finished file needs no pass of its own before it is stored.

    Followed: one file fetched over HTTP(S), which yt-dlp writes in order, appending chunk after
    chunk (a resumed .part file is read from its start). Anything else switches it off, and the
    finished file is hashed on its own: streams to be merged (the merged file is another), a
    fragmented download, a second file, a download starting over from zero (yt-dlp truncates
    the file when a server ignores the range asked: the reported size falls back to its first
    read, YTDLP_FIRST_READ, or less), a file renamed over or grown since (`digest_of` compares
    the inode and the size with what was read)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._off = False
        self._name: str | None = None  # the .part file being written
        self._file: Any = None
        self._identity: tuple[int, int] | None = None  # (device, inode) of that file
        self._written = 0  # bytes yt-dlp says it wrote
        self._finished: str | None = None  # the finished file, renamed from the .part one
        self._done = False
        self._sha256 = hashlib.sha256()
        self._hashed = 0
        self._thread: threading.Thread | None = None

    def off(self) -> None:
        with self._changed:
            self._off = True
            self._changed.notify_all()

    def report(self, d: dict[str, Any]) -> None:
        """(yt-dlp's thread, from the progress hook.)"""
        with self._changed:
            if self._off:
                return
            protocol = (d.get("info_dict") or {}).get("protocol")
            status = d.get("status")
            if protocol not in ("http", "https") or status not in ("downloading", "finished"):
                self._switch_off()
            elif status == "downloading":
                self._downloading(d.get("tmpfilename"), d.get("downloaded_bytes") or 0)
            elif self._name is None or self._finished is not None:
                self._switch_off()  # found complete, never downloaded here; or a second file
            else:
                self._finished = d.get("filename")
            self._changed.notify_all()

    def _downloading(self, name: str | None, written: int) -> None:
        if self._name is None and name:
            try:
                self._file = open(name, "rb", buffering=0)  # noqa: SIM115 (closed in close())
            except OSError:
                self._switch_off()
                return
            stat = os.fstat(self._file.fileno())
            self._name, self._identity = name, (stat.st_dev, stat.st_ino)
            self._thread = threading.Thread(target=self._run, name="media-sha256", daemon=True)
            self._thread.start()
        elif name != self._name or written <= max(self._written, YTDLP_FIRST_READ):
            self._switch_off()  # another file, or the same one started over
            return
        self._written = written

    def _switch_off(self) -> None:
        self._off = True

    def _run(self) -> None:
        try:
            self._hash()
        finally:  # whatever stopped it, digest_of does not wait for it any longer
            with self._changed:
                if not self._done:
                    self._off = True
                self._changed.notify_all()

    def _hash(self) -> None:
        """(Its own thread.) Up to what was reported written (the last read may still be in
        yt-dlp's file buffer: read again at the next report), then to the end once finished."""
        buffer = bytearray(READ_CHUNK)
        view = memoryview(buffer)
        tried = 0
        while True:
            with self._changed:
                while not self._off and self._finished is None and self._written <= tried:
                    self._changed.wait()
                if self._off:
                    return
                finished, goal = self._finished is not None, self._written
            while finished or self._hashed < goal:
                wanted = READ_CHUNK if finished else min(READ_CHUNK, goal - self._hashed)
                read = self._file.readinto(view[:wanted])
                if not read:
                    break
                self._sha256.update(view[:read])
                self._hashed += read
            tried = goal
            if finished:
                self._done = True
                return

    def digest_of(self, path: Path) -> tuple[str, int] | None:
        """(SHA-256, size) of `path` if it is the file followed, whole and unchanged."""
        with self._changed:
            if self._off or self._finished is None or Path(self._finished) != path:
                return None
            while not self._done and not self._off:
                self._changed.wait()
            if self._off:
                return None
        try:
            stat = os.stat(path)
        except OSError:
            return None
        if (stat.st_dev, stat.st_ino) != self._identity or stat.st_size != self._hashed:
            return None
        return self._sha256.hexdigest(), self._hashed

    def close(self) -> None:
        self.off()
        if self._thread is not None:
            self._thread.join()
        if self._file is not None:
            self._file.close()


class _CheckBeforeDownload(PostProcessor):
    """Before a byte is downloaded: the announced size against the limit and the free space."""

    def __init__(self, hook: _ProgressHook, scratch: Path) -> None:
        super().__init__()
        self.hook = hook
        self.scratch = scratch

    def run(self, info: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        formats = info.get("requested_formats") or [info]
        if len(formats) > 1:  # merged afterwards: that file is hashed once made
            self.hook.hasher.off()
        sizes = [f.get("filesize") or f.get("filesize_approx") for f in formats]
        announced = sum(sizes) if all(sizes) else None
        self.hook.expected = announced
        limit = self.hook.max_bytes
        if announced and limit and announced > limit:
            raise YouTubeError(
                Reason.UNAVAILABLE,
                f"announced {announced} bytes",
                f"This video's file ({_megabytes(announced)}) is larger than the "
                f"{_megabytes(limit)} allowed (CHIRP_MEDIA_MAX_BYTES).",
            )
        free = shutil.disk_usage(self.scratch).free
        if announced and announced > free:
            raise YouTubeError(
                Reason.UNAVAILABLE,
                f"announced {announced} bytes, {free} free",
                f"Not enough free space in the scratch folder for this video's file "
                f"({_megabytes(announced)} needed, {_megabytes(free)} free).",
            )
        return [], info


@dataclass(frozen=True)
class Downloaded:
    path: Path
    info: dict[str, Any]
    digest: tuple[str, int] | None = None  # (SHA-256, size), if computed during the download


def download(
    video: Video,
    quality: str,
    client: YouTube,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    interrupted: Callable[[], bool] | None = None,
) -> Downloaded:
    """`video` at `quality` in its scratch folder (continued from what an earlier attempt left).
    Raises YouTubeError (classified as for metadata) or DownloadInterrupted."""
    scratch = scratch_folder(video, quality)
    scratch.mkdir(parents=True, exist_ok=True)
    hook = _ProgressHook(on_progress, interrupted, settings.CHIRP_MEDIA_MAX_BYTES)
    params = {
        **format_options(quality),
        "outtmpl": {"default": str(scratch / "%(id)s.%(ext)s")},
        "noplaylist": True,
        "continuedl": True,  # on from the .part file
        "fixup": "never",  # the fixups need ffprobe, which imageio-ffmpeg does not ship
        "ffmpeg_location": ffmpeg_location(settings.CHIRP_MEDIA_SCRATCH_DIR),
        "ratelimit": settings.CHIRP_MEDIA_RATE_LIMIT or None,
        "buffersize": YTDLP_FIRST_READ,
        "progress_delta": YTDLP_PROGRESS_EVERY,
        "progress_hooks": [hook],
        # Only the video extractor: a YoutubeDL loading all ~1,800 of yt-dlp's spends ~35 ms
        # doing so, and one is built per download (tests/benchmarks/bench_media.py).
        "allowed_extractors": ["youtube"],
        # The manifests' formats too: some clients' plain streams need a token theirs do not.
        "extractor_args": {},
    }
    url = f"{YOUTUBE}/watch?v={video.youtube_id}"
    try:
        info = _download_with_fresh_urls(video, client, params, hook, scratch, url)
        paths = [d.get("filepath") for d in (info or {}).get("requested_downloads") or ()]
        found = [Path(p) for p in paths if p and Path(p).exists()]
        if not found:
            raise YouTubeError(
                Reason.UNKNOWN, "yt-dlp downloaded nothing", "No file was downloaded."
            )
        return Downloaded(found[0], info, hook.hasher.digest_of(found[0]))
    finally:
        hook.hasher.close()


def _download_with_fresh_urls(
    video: Video,
    client: YouTube,
    params: dict[str, Any],
    hook: _ProgressHook,
    scratch: Path,
    url: str,
) -> dict[str, Any]:
    for attempt in range(FRESH_URL_ATTEMPTS + 1):
        with client.downloader(params) as ydl:
            check = _CheckBeforeDownload(hook, scratch)
            ydl.add_post_processor(check, when="before_dl")
            try:
                info = ydl.extract_info(url, download=False)
                if _plain_http(info):
                    check.run(info)
                    return _fetch(ydl, info, hook)
                # Streams to merge, a manifest...: yt-dlp's downloaders, on the formats chosen
                # (the page is not extracted a second time).
                return ydl.process_ie_result(info, download=True)
            except TooLarge as exc:  # no use resuming it: the partial files go
                shutil.rmtree(scratch, ignore_errors=True)
                limit = _megabytes(settings.CHIRP_MEDIA_MAX_BYTES)
                raise YouTubeError(
                    Reason.UNAVAILABLE,
                    "stopped at the size limit",
                    f"This video's file is larger than the {limit} allowed "
                    "(CHIRP_MEDIA_MAX_BYTES): its download was stopped.",
                ) from exc
            except DownloadCancelled:
                raise
            except YouTubeError:  # refused before the download (size, free space)
                shutil.rmtree(scratch, ignore_errors=True)
                raise
            except YoutubeDLError as exc:
                if _media_forbidden(exc) and attempt < FRESH_URL_ATTEMPTS:
                    # The URL's signature expired: extract again (fresh URLs), go on.
                    logger.info("Media URL of %s refused (403); fresh URLs", video.youtube_id)
                    continue
                error = classify_error(exc, client.warnings)
                if _media_forbidden(exc):
                    error = YouTubeError(
                        Reason.NETWORK,
                        error.detail,
                        "YouTube refused the video's file (HTTP 403), even at fresh addresses.",
                    )
                if not error.transient:  # nobody will resume it: the partial files go
                    shutil.rmtree(scratch, ignore_errors=True)
                raise error from exc
    raise AssertionError("unreachable: the last attempt returns or raises")


def _plain_http(info: dict[str, Any]) -> bool:
    """Whether yt-dlp chose one file over plain HTTP(S): Chirp downloads it itself (_fetch)."""
    return (
        not info.get("requested_formats")
        and info.get("protocol") in ("http", "https")
        and bool(info.get("url"))
        and not info.get("fragments")
    )


_LOST = (OSError, http.client.HTTPException, TransportError)


def _fetch(ydl: Any, info: dict[str, Any], hook: _ProgressHook) -> dict[str, Any]:
    """The one file yt-dlp chose, downloaded by Chirp into its scratch name: what yt-dlp's
    HTTP downloader does (continue a `.part` file, ranges of the format's chunk size, the
    bandwidth limit, progress reports to `hook`, which stops it at the size limit or when told
    to), with fewer costs: one buffer reused for every read, written where it belongs, no
    per-read bookkeeping, and no wait between ranges (the next one is asked for while the one
    before it is read: _Ahead; 2.5 ms a range from the fake media host, a round trip to
    googlevideo.com, a turn at the limiter). A 200 MB file over loopback
    (tests/benchmarks/bench_media.py, on a 2-core machine busy with other work, so in ranges):
    the whole stage took 1.8-2.4x the time of a plain fetch with yt-dlp's downloader, 1.4-2.0x
    with this, and this process 0.36-0.42 s of CPU, 0.27-0.31 s with this (the plain fetch:
    0.12 s; the SHA-256 alone is 0.12 s).
    Requests go through yt-dlp's (the transport, the gate, its headers); an HTTP error is
    raised as yt-dlp raises it (a 403 asks for fresh URLs, a 429 pauses the lane); an answer
    cut short is continued from where it stopped (a read that fails, or a range answered with
    nothing, FETCH_RETRIES times at most)."""
    path = Path(ydl.prepare_filename(info))
    part = path.with_name(path.name + ".part")
    report = {"filename": str(path), "tmpfilename": str(part), "info_dict": info}
    if path.exists():  # downloaded by an earlier attempt, not stored (the storage refused)
        size = path.stat().st_size
        hook({**report, "status": "finished", "downloaded_bytes": size, "total_bytes": size})
        return {**info, "requested_downloads": [{**info, "filepath": str(path)}]}
    total: int | None = info.get("filesize")
    chunk = (info.get("downloader_options") or {}).get("http_chunk_size") or None
    headers = {**(info.get("http_headers") or {}), "Accept-Encoding": "identity"}
    rate = settings.CHIRP_MEDIA_RATE_LIMIT or None
    buffer = bytearray(FETCH_MAX_READ)
    view = memoryview(buffer)

    def send(wanted: str) -> Any:
        return ydl.urlopen(Request(info["url"], headers={**headers, "Range": wanted}))

    ahead = _Ahead(send)
    fd = os.open(part, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        done = os.fstat(fd).st_size  # continued from what an earlier attempt wrote
        started, start_bytes, lost = time.monotonic(), done, 0
        while total is None or done < total:
            wanted, end = _range(done, chunk, total, ahead.start)
            try:
                response = ahead.take(wanted)
                if response is None:
                    response = send(wanted)
            except HTTPError as exc:
                if exc.status == 416 and done and total in (None, done):
                    break  # the .part file was complete already
                raise
            with response:
                if done and response.status == 200:  # the range was ignored: from the start
                    os.ftruncate(fd, 0)
                    done = start_bytes = 0
                if total is None:
                    total = _total_of(response, done)
                if response.status == 206 and not rate and end and total and end + 1 < total:
                    # The next range asked for now, read once this one is: the media host's
                    # answer (and the limiter's turn) comes while this one streams. (Not under
                    # a bandwidth limit: a range lasts seconds there, the wait is nothing.)
                    ahead.ask(end + 1, _range(end + 1, chunk, total)[0])
                readinto = getattr(response.fp, "readinto", None)
                before = done
                try:
                    while True:
                        speed = (done - start_bytes) / max(time.monotonic() - started, 1e-3)
                        size = _read_size(speed, rate, None if total is None else total - done)
                        if readinto is not None:
                            read = readinto(view[:size])
                        else:
                            data = response.read(size)
                            read = len(data)
                            view[:read] = data
                        if not read:
                            break
                        _write_all(fd, view[:read], done)
                        done += read
                        elapsed = time.monotonic() - started
                        speed = (done - start_bytes) / max(elapsed, 1e-3)
                        eta = (total - done) / speed if total and speed else None
                        hook({**report, "status": "downloading", "downloaded_bytes": done,
                              "total_bytes": total, "speed": speed, "eta": eta})  # fmt: skip
                        if rate and (done - start_bytes) / rate > elapsed:
                            _pause((done - start_bytes) / rate - elapsed, hook)
                except _LOST as exc:
                    if lost >= FETCH_RETRIES:
                        raise TransportError(cause=exc) from exc
                    lost += 1
                    logger.info("Media download cut at %d bytes: continuing", done)
                    continue
            if total is None and (done == before or end is None):
                break  # the end of a file of unknown size (an empty answer, or all of it read)
            if done == before:  # a range answered with nothing: as a lost connection
                if lost >= FETCH_RETRIES:
                    raise TransportError("The media host sent no bytes of the file.")
                lost += 1
    finally:
        ahead.close()
        os.close(fd)
    os.replace(part, path)
    hook({**report, "status": "finished", "downloaded_bytes": done, "total_bytes": done})
    return {**info, "requested_downloads": [{**info, "filepath": str(path)}]}


def _range(
    start: int, chunk: int | None, total: int | None, ahead: int | None = None
) -> tuple[str, int | None]:
    """The Range header asking for the chunk at `start` (to the end without a chunk size),
    and the chunk's last byte: before `ahead` (where the range asked for already begins)."""
    end = None
    if chunk:
        end = start + chunk - 1 if total is None else min(start + chunk, total) - 1
    if ahead is not None and start < ahead and (end is None or end >= ahead):
        end = ahead - 1
    return f"bytes={start}-{'' if end is None else end}", end


class _Ahead:
    """The next range's request, sent while the range before it is read, by a thread of this
    download's own (one for all its ranges: one database connection for the limiter, closed
    at the end); its answer, or its error (raised as if asked for then), taken once that one
    is read (after the rest of it, if it was cut short). An answer not taken (a stop, a range
    the host ignored) is closed when it comes."""

    def __init__(self, send: Callable[[str], Any]) -> None:
        self._send = send
        self._thread: ThreadPoolExecutor | None = None
        self._next: tuple[str, Future[Any]] | None = None
        self.start: int | None = None  # the first byte of the range asked for

    def ask(self, start: int, wanted: str) -> None:
        if self._next is not None:
            if self._next[0] == wanted:
                return  # asked already (the range before it was cut short, then continued)
            _close_when_done(self._next[1])
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="media-next-range")
        self._next, self.start = (wanted, self._thread.submit(self._send, wanted)), start

    def take(self, wanted: str) -> Any:
        """The answer to `wanted` if that is what was asked for ahead, else None."""
        if self._next is None or self._next[0] != wanted:
            return None
        (_, answer), self._next, self.start = self._next, None, None
        return answer.result()

    def close(self) -> None:
        """Not waited for (the request may be waiting for the limiter's turn)."""
        if self._next is not None:
            _close_when_done(self._next[1])
            self._next, self.start = None, None
        if self._thread is not None:
            self._thread.submit(connections.close_all)  # the thread's own, after its request
            self._thread.shutdown(wait=False)


def _close_when_done(answer: Future[Any]) -> None:
    def close(done: Future[Any]) -> None:
        if not done.cancelled() and done.exception() is None:
            done.result().close()

    answer.add_done_callback(close)


def _read_size(speed: float, rate: int | None, left: int | None) -> int:
    """Bytes to ask of the next read: about FETCH_READ_SECONDS at the speed so far (a read
    waits until its buffer is full, and a stop is seen between reads), a quarter of a second
    under the bandwidth limit, never past the end of the file (at least 1: the end is read)."""
    size = min(max(speed * FETCH_READ_SECONDS, FETCH_MIN_READ), FETCH_MAX_READ)
    if rate:
        size = min(size, max(rate / 4, 1024))
    if left is not None:
        size = min(size, left)
    return max(1, int(size))


def _total_of(response: Any, done: int) -> int | None:
    """The whole file's size, from a 206's Content-Range or a 200's Content-Length."""
    content_range = response.headers.get("Content-Range") or ""
    if "/" in content_range and content_range.rsplit("/", 1)[1].isdigit():
        return int(content_range.rsplit("/", 1)[1])
    length = response.headers.get("Content-Length")
    if response.status == 200 and length and length.isdigit():
        return int(length)
    return None


def _write_all(fd: int, data: memoryview, offset: int) -> None:
    while data:
        written = os.pwrite(fd, data, offset)
        data, offset = data[written:], offset + written


def _pause(seconds: float, hook: _ProgressHook) -> None:
    """The bandwidth limit's wait, a quarter of a second at a time: a stop is seen meanwhile."""
    until = time.monotonic() + seconds
    while (left := until - time.monotonic()) > 0:
        if hook.interrupted is not None and hook.interrupted():
            raise DownloadInterrupted()
        time.sleep(min(left, 0.25))


def _media_forbidden(exc: BaseException) -> bool:
    """A 403 from a media host (googlevideo.com), not from YouTube's pages."""
    for cause in _causes(exc):
        if isinstance(cause, HTTPError) and cause.status == 403:
            host = (cause.response.url or "").split("/")[2:3]
            return bool(host) and host[0].split(":")[0].endswith("googlevideo.com")
    return False


# -- storage -----------------------------------------------------------------------------------


class _HashingFile:
    """A file read for the storage, hashed on the way: bytes read again after a seek back (a
    retried part, a checksum pass by boto3) are not hashed twice. `complete` says whether every
    byte went through in order; if not, the caller hashes the file itself."""

    def __init__(self, file) -> None:  # type: ignore[no-untyped-def]
        self.file = file
        self.sha256 = hashlib.sha256()
        self.hashed = 0
        self.gap = False

    def read(self, size: int = -1) -> bytes:
        position = self.file.tell()
        data = self.file.read(size)
        if position > self.hashed:
            self.gap = True
        elif position + len(data) > self.hashed:
            self.sha256.update(data[self.hashed - position :])
            self.hashed = position + len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.file, name)


def _sha256_of(read: Callable[[int], bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := read(READ_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


class _ScratchFile(File):
    """The downloaded file as given to the storage: the media folder (FileSystemStorage) moves
    it into place by its path (Django's temporary_file_path: a rename on one filesystem, else a
    copy); any other storage reads it."""

    def __init__(self, file, path: Path) -> None:  # type: ignore[no-untyped-def]
        super().__init__(file, name=path.name)
        self.path = path

    def temporary_file_path(self) -> str:
        return str(self.path)


def _sha256_of_file(path: Path) -> tuple[str, int]:
    with path.open("rb", buffering=0) as file:
        return _sha256_of(file.read)


def _mark(path: Path) -> tuple[int, int, int, int]:
    """(device, inode, size, modification time) of `path`, its modification time first set a
    minute back if it is more recent: any write from now on sets it to the present, so a file
    with the same four later has not been written since (yt-dlp's time, the Last-Modified of
    the media, is usually long past and kept)."""
    stat = os.stat(path)
    latest = time.time_ns() - 60 * 10**9
    if stat.st_mtime_ns > latest:
        os.utime(path, ns=(stat.st_atime_ns, latest))
        stat = os.stat(path)
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def _stored_mark(key: str) -> tuple[int, int, int, int] | None:
    if not isinstance(default_storage, FileSystemStorage):
        return None
    try:
        stat = os.stat(default_storage.path(key))
    except OSError:
        return None
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def store_file(
    video: Video, path: Path, digest: tuple[str, int] | None = None
) -> tuple[str, int, str]:
    """`path` put into the default storage under a new key: (key, size, sha256), checked
    against the stored copy. `digest`: (SHA-256, size) of `path` if known already (computed
    during the download); else computed here, in the pass that sends the file to S3, or before
    the media folder moves it. The media folder moves the file (it leaves the scratch folder);
    anything else copies it. StorageError when the storage refuses (the file stays where it
    was); ChecksumMismatch (the stored copy deleted) when what it holds is not what was sent."""
    key = MediaFile.new_key(video, path.suffix.lstrip(".") or "bin")
    moving = isinstance(default_storage, FileSystemStorage)
    if digest is None and moving:
        digest = _sha256_of_file(path)
    mark = _mark(path) if moving else None
    size = path.stat().st_size
    with path.open("rb") as raw:
        hashing = _HashingFile(raw) if digest is None else None
        try:
            content = _ScratchFile(raw if hashing is None else hashing, path)
            key = default_storage.save(key, content)
        except Exception as exc:  # whatever the backend raises: OSError, botocore's errors
            if moving:
                # A copy across disks cut short (the disk full) leaves its part at the key, which
                # no record names: gone now. (S3's multipart upload is aborted by boto3.)
                with contextlib.suppress(OSError):
                    default_storage.delete(key)
            raise StorageError(_storage_problem(exc)) from exc
    if hashing is not None:
        if hashing.gap or hashing.hashed != size:  # not read in order: hashed on its own
            digest = _sha256_of_file(path)
        else:
            digest = hashing.sha256.hexdigest(), size
    assert digest is not None
    sha256, size = digest
    try:
        if mark is not None and _stored_mark(key) == mark:
            # The file hashed, moved into place and not written since: what was hashed.
            stored_sha256, stored_size = sha256, size
        elif verified_on_upload(default_storage):  # S3 checked each part: the size will do
            stored_sha256, stored_size = sha256, default_storage.size(key)
        else:
            with default_storage.open(key, "rb") as stored:
                stored_sha256, stored_size = _sha256_of(stored.read)
    except Exception as exc:
        raise StorageError(_storage_problem(exc)) from exc
    if (stored_sha256, stored_size) != (sha256, size):
        default_storage.delete(key)
        difference = (
            f"{stored_size} bytes instead of {size}"
            if stored_size != size
            else f"SHA-256 {stored_sha256[:12]}… instead of {sha256[:12]}…"
        )
        raise ChecksumMismatch(
            f"The stored file did not match the download ({difference}): it was deleted."
        )
    return key, size, sha256


def _storage_problem(exc: Exception) -> str:
    """The storage's refusal, in words: what went wrong and where."""
    from urllib.parse import urlsplit

    from botocore.exceptions import ConnectionError as S3ConnectionError

    where = "S3" if getattr(default_storage, "bucket_name", None) else "the media folder"
    code = (
        getattr(exc, "response", {}).get("Error", {}).get("Code")
        if hasattr(exc, "response")
        else None
    )
    problem = {
        "NoSuchBucket": "the bucket does not exist",
        "InvalidAccessKeyId": "the access key is wrong",
        "SignatureDoesNotMatch": "the secret key is wrong",
        "AccessDenied": "access is denied",
        # A HEAD request's refusal has no body, hence no code: the wrong access key, the wrong
        # secret key or a missing permission, S3 does not say which.
        "403": "access was refused (403 Forbidden): check the access key, the secret key "
        "and the bucket's permissions",
    }.get(code or "")
    if problem is None and isinstance(exc, OSError) and exc.errno == 28:
        problem = "the disk is full"
    if problem is None and isinstance(exc, S3ConnectionError):  # down, or a wrong address
        url = urlsplit(getattr(exc, "kwargs", {}).get("endpoint_url") or "")
        problem = f"cannot connect to {url.scheme}://{url.netloc}" if url.netloc else None
    return f"Could not store the file in {where}: {problem or exc}."


# -- the stage ---------------------------------------------------------------------------------


def store_media(
    video: Video,
    quality: str,
    client: YouTube,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    interrupted: Callable[[], bool] | None = None,
    on_wait: Callable[[], None] | None = None,
) -> MediaFile:
    """`video`'s media at `quality`, downloaded and stored, or the one stored already (by
    whichever download of it ran first: they take turns, see _one_at_a_time). The download
    waits for one of the installation's CHIRP_MEDIA_CONCURRENCY slots (calling `on_wait` if
    it has to), held until the file is stored."""
    existing = MediaFile.objects.filter(video=video, quality=quality).first()
    if existing is not None:
        return existing
    with _one_at_a_time(video, quality, interrupted):
        existing = MediaFile.objects.filter(video=video, quality=quality).first()
        if existing is not None:
            return existing
        with DownloadSlot(sleep=_sleep_unless(interrupted), on_wait=on_wait):
            return _download_and_store(video, quality, client, on_progress, interrupted)


def _sleep_unless(interrupted: Callable[[], bool] | None) -> Callable[[float], None]:
    """time.sleep, but told to stop (a shutdown, a cancel) it raises DownloadInterrupted."""

    def sleep(seconds: float) -> None:
        if interrupted is not None and interrupted():
            raise DownloadInterrupted()
        time.sleep(seconds)

    return sleep


def lock_path(youtube_id: str, quality: str) -> Path:
    return settings.CHIRP_MEDIA_SCRATCH_DIR / f"{youtube_id}.{quality}.lock"


@contextlib.contextmanager
def unless_downloading(youtube_id: str, quality: str) -> Iterator[bool]:
    """The lock of this download, if nobody holds it (True): its scratch files can be removed
    (imports/scratch.py), a download of it waiting meanwhile. False while one runs."""
    path = lock_path(youtube_id, quality)
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    except FileNotFoundError:  # no scratch folder at all
        yield True
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            current = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if not current:  # a download released it and another took a new one meanwhile
            yield False
            return
        try:
            yield True
        finally:
            path.unlink(missing_ok=True)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _one_at_a_time(
    video: Video, quality: str, interrupted: Callable[[], bool] | None
) -> Iterator[None]:
    """Hold the lock of `video` at `quality` on this machine: two downloads of it (two users'
    imports) would write the same scratch files. The other waits (and then finds the file
    stored). A flock, so a killed worker's lock goes with it; its file is removed on release,
    and a waiter that locked a removed file tries again with the new one."""
    root = settings.CHIRP_MEDIA_SCRATCH_DIR
    root.mkdir(parents=True, exist_ok=True)
    path = lock_path(video.youtube_id, quality)
    while True:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if interrupted is not None and interrupted():
                        raise DownloadInterrupted() from None
                    time.sleep(LOCK_POLL)
            try:
                current = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:
                try:
                    yield
                finally:
                    path.unlink(missing_ok=True)
                return
        finally:
            os.close(fd)


def _download_and_store(
    video: Video,
    quality: str,
    client: YouTube,
    on_progress: Callable[[Progress], None] | None,
    interrupted: Callable[[], bool] | None,
) -> MediaFile:
    downloaded = download(video, quality, client, on_progress=on_progress, interrupted=interrupted)
    key, size, sha256 = store_file(video, downloaded.path, downloaded.digest)
    info = downloaded.info
    try:
        with transaction.atomic():
            media = MediaFile.objects.create(
                video=video,
                kind=MediaFile.Kind.AUDIO if quality == Quality.AUDIO else MediaFile.Kind.VIDEO,
                quality=quality,
                height=info.get("height") if quality != Quality.AUDIO else None,
                vcodec=_codec(info.get("vcodec")),
                acodec=_codec(info.get("acodec")),
                container=downloaded.path.suffix.lstrip("."),
                size=size,
                sha256=sha256,
                duration=info.get("duration"),
                key=key,
            )
    except IntegrityError:  # another download of it was recorded meanwhile: keep that one
        default_storage.delete(key)
        media = MediaFile.objects.get(video=video, quality=quality)
    folder = scratch_folder(video, quality)
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):  # the video's folder, unless another quality is there
        folder.parent.rmdir()
    return media


def _codec(value: Any) -> str:
    return "" if value in (None, "none") else str(value)[:50]


def enqueue_download(owner, videos: list[Video], quality: str):  # type: ignore[no-untyped-def]
    """Queue the download of `videos` (one video, or many of one channel that `owner` sees)
    at `quality`: an import job with no listing and one item per video, run in the imports
    lane like any other (progress, pause, cancel, retry). Returns (job, created): see
    ImportJob.start_download. For the video page's "Download" button and "download all at …"."""
    from imports.models import ImportJob

    return ImportJob.start_download(owner, videos, quality)
