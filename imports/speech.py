"""Speech to text: the transcript of a video YouTube has no captions for (or refuses them).

Off unless CHIRP_WHISPER_URL is set: the base URL of an OpenAI-compatible API (OpenAI's, Groq's
with whisper-large-v3, a local server...). The video's smallest audio stream is downloaded with
yt-dlp (through the shared limiter, like every YouTube request), sent to
`<base URL>/audio/transcriptions`, and deleted. The answer's timed segments become the
transcript, with source `whisper`.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import requests
from django.conf import settings

from imports.transcripts import Segment, Transcript
from imports.youtube import YouTube

logger = logging.getLogger(__name__)


class SpeechError(Exception):
    """The speech-to-text service failed; str() says how, for the logs."""


def configured() -> bool:
    return bool(settings.CHIRP_WHISPER_URL)


def transcribe(video_id: str, client: YouTube) -> Transcript:
    """Download the audio and have it transcribed. Raises YouTubeError (download) or
    SpeechError (the service)."""
    max_bytes = settings.CHIRP_WHISPER_MAX_MB * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="chirp-audio-") as directory:
        audio = client.download_audio(video_id, Path(directory), max_bytes)
        answer = _post(audio)
    return _transcript(video_id, answer)


def _post(audio: Path) -> dict[str, Any]:
    url = settings.CHIRP_WHISPER_URL.rstrip("/") + "/audio/transcriptions"
    headers = {}
    if settings.CHIRP_WHISPER_API_KEY:
        headers["Authorization"] = f"Bearer {settings.CHIRP_WHISPER_API_KEY}"
    data = {
        "model": settings.CHIRP_WHISPER_MODEL,
        "response_format": "verbose_json",
        "timestamp_granularities[]": "segment",
    }
    try:
        with audio.open("rb") as file:
            response = requests.post(
                url,
                headers=headers,
                data=data,
                files={"file": (audio.name, file, "application/octet-stream")},
                timeout=settings.CHIRP_WHISPER_TIMEOUT,
            )
    except requests.RequestException as exc:
        raise SpeechError(f"The speech-to-text service could not be reached: {exc}") from exc
    if response.status_code != 200:
        raise SpeechError(
            f"The speech-to-text service answered {response.status_code}: {response.text[:300]}"
        )
    try:
        answer = response.json()
    except ValueError as exc:
        raise SpeechError("The speech-to-text service did not answer in JSON.") from exc
    if not isinstance(answer, dict):
        raise SpeechError("The speech-to-text service's answer has no transcript.")
    return answer


def _transcript(video_id: str, answer: dict[str, Any]) -> Transcript:
    segments = [
        Segment(
            start=float(part.get("start") or 0),
            duration=max(0.0, float(part.get("end") or 0) - float(part.get("start") or 0)),
            text=str(part.get("text") or "").strip(),
        )
        for part in answer.get("segments") or ()
        if isinstance(part, dict) and str(part.get("text") or "").strip()
    ]
    if not segments and str(answer.get("text") or "").strip():
        segments = [
            Segment(
                start=0.0,
                duration=float(answer.get("duration") or 0),
                text=str(answer["text"]).strip(),
            )
        ]
    if not segments:
        raise SpeechError("The speech-to-text service heard nothing.")
    language = str(answer.get("language") or "")
    return Transcript(
        video_id=video_id,
        language_code=_language_code(language),
        language=language,
        source="whisper",
        segments=tuple(segments),
    )


_CODES = {"english": "en", "german": "de", "french": "fr", "spanish": "es", "japanese": "ja"}


def _language_code(language: str) -> str:
    # Whisper's verbose_json names the language ("english"); keep codes as they come.
    lowered = language.strip().lower()
    return _CODES.get(lowered, lowered[:20])
