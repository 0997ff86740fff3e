"""Tiny real media for the fake YouTube, made with ffmpeg (imageio-ffmpeg's) at test time.

    clips = make_clips(directory)        # cached per test session by the `media_clips` fixture
    fake_youtube.serve_media(clips)      # the player answers list them, googlevideo serves them

As YouTube lists them: video-only H.264 streams at 360p, 720p and 1080p (itags 134, 136, 137)
and a VP9 one at 360p (243), an audio-only AAC stream (140) and an Opus one (251), and one
progressive 360p MP4 with both (18). Pictures of noise do not compress: the 720p stream weighs
4 MB (a slow media host is caught in the middle of it), the 1080p one 15 MB (an upload to S3
takes several 5 MiB parts, the smallest boto3 sends).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg

SECONDS = 4
_PICTURE = "testsrc2=size={w}x{h}:rate=25,noise=alls=60:allf=t+u"
_SOUND = "sine=frequency=440:sample_rate=44100"


@dataclass(frozen=True)
class Clip:
    itag: int
    path: Path
    mime: str  # YouTube's mimeType, with codecs
    width: int | None = None
    height: int | None = None
    bitrate: int = 0
    announced: bool = True  # its size and bitrate are in the player answer, as usual

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    @property
    def has_video(self) -> bool:
        return self.height is not None

    @property
    def has_audio(self) -> bool:
        return "mp4a" in self.mime or "opus" in self.mime


def ffmpeg(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _make(path: Path, *args: str) -> Path:
    if not path.exists():
        result = ffmpeg("-loglevel", "error", "-y", *args, str(path))
        assert result.returncode == 0, result.stderr
    return path


def make_clips(directory: Path) -> dict[int, Clip]:
    """The clips by itag, made once in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)

    def picture(w: int, h: int) -> list[str]:
        return ["-f", "lavfi", "-i", _PICTURE.format(w=w, h=h), "-t", str(SECONDS), "-an"]

    h264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    sound = ["-f", "lavfi", "-i", _SOUND, "-t", str(SECONDS), "-vn"]
    clips = [
        Clip(134, _make(directory / "134.mp4", *picture(640, 360), *h264, "-b:v", "1M"),
             'video/mp4; codecs="avc1.4d401e"', 640, 360, 1_000_000),
        Clip(136, _make(directory / "136.mp4", *picture(1280, 720), *h264, "-b:v", "6M"),
             'video/mp4; codecs="avc1.4d401f"', 1280, 720, 6_000_000),
        Clip(137, _make(directory / "137.mp4", *picture(1920, 1080), *h264, "-b:v", "30M"),
             'video/mp4; codecs="avc1.640028"', 1920, 1080, 30_000_000),
        Clip(243, _make(directory / "243.webm", *picture(640, 360), "-c:v", "libvpx-vp9",
                        "-deadline", "realtime", "-b:v", "500k"),
             'video/webm; codecs="vp9"', 640, 360, 500_000),
        Clip(140, _make(directory / "140.m4a", *sound, "-c:a", "aac", "-b:a", "128k"),
             'audio/mp4; codecs="mp4a.40.2"', bitrate=128_000),
        Clip(251, _make(directory / "251.webm", *sound, "-c:a", "libopus", "-b:a", "96k"),
             'audio/webm; codecs="opus"', bitrate=96_000),
        Clip(18, _make(directory / "18.mp4", "-f", "lavfi", "-i", _PICTURE.format(w=640, h=360),
                       "-f", "lavfi", "-i", _SOUND, "-t", str(SECONDS), *h264, "-b:v", "500k",
                       "-c:a", "aac", "-shortest"),
             'video/mp4; codecs="avc1.42001E, mp4a.40.2"', 640, 360, 630_000),
    ]  # fmt: skip
    return {clip.itag: clip for clip in clips}


@dataclass(frozen=True)
class Streams:
    """What `ffmpeg -i file` says of a file's streams."""

    container: str
    video: list[tuple[str, int, int]]  # (codec, width, height)
    audio: list[str]  # codecs
    duration: float


_DURATION = re.compile(r"Duration: (\d+):(\d+):([\d.]+)")
_VIDEO = re.compile(r"Stream #\S+.*?: Video: (\w+).*?, (\d{2,5})x(\d{2,5})")
_AUDIO = re.compile(r"Stream #\S+.*?: Audio: (\w+)")
_INPUT = re.compile(r"Input #0, ([\w,]+), from")


def probe(path: Path) -> Streams:
    """ffprobe's answer, from ffmpeg's own stderr (imageio-ffmpeg ships no ffprobe)."""
    text = ffmpeg("-i", str(path)).stderr
    duration = _DURATION.search(text)
    container = _INPUT.search(text)
    return Streams(
        container=container[1] if container else "",
        video=[(m[1], int(m[2]), int(m[3])) for m in _VIDEO.finditer(text)],
        audio=[m[1] for m in _AUDIO.finditer(text)],
        duration=(
            int(duration[1]) * 3600 + int(duration[2]) * 60 + float(duration[3]) if duration else 0
        ),
    )
