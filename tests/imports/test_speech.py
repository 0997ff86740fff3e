"""The speech-to-text fallback against a local OpenAI-compatible endpoint (and the fake YouTube's
audio): off by default, a transcript with source "whisper" when on, never a failed video."""

from __future__ import annotations

import json
import threading
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from chirp import engine
from imports import speech
from imports.models import ImportJob, Video
from imports.youtube import YouTube, parse_channel_input

pytestmark = pytest.mark.django_db(transaction=True)

AUDIO = b"\x00\x00\x00\x18ftypM4A \x00\x00\x02\x00M4A mp42isom" + bytes(range(256)) * 8


class FakeSpeech:
    """POST /v1/audio/transcriptions, as OpenAI and Groq answer it (verbose_json)."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.status = 200
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
                message = BytesParser(policy=HTTP).parsebytes(head + body)
                fields, files = {}, {}
                for part in message.iter_parts():
                    name = part.get_param("name", header="content-disposition")
                    if part.get_filename():
                        files[name] = part.get_payload(decode=True)
                    else:
                        fields[name] = part.get_content().strip()
                with fake.lock:
                    fake.calls.append(
                        {
                            "path": self.path,
                            "auth": self.headers.get("Authorization"),
                            "fields": fields,
                            "files": files,
                        }
                    )
                answer = {
                    "task": "transcribe",
                    "language": "english",
                    "duration": 9.5,
                    "text": "Hello from the audio. Second sentence.",
                    "segments": [
                        {"id": 0, "start": 0.0, "end": 4.2, "text": " Hello from the audio."},
                        {"id": 1, "start": 4.2, "end": 9.5, "text": " Second sentence."},
                    ],
                }
                data = json.dumps(answer if fake.status == 200 else {"error": "busy"}).encode()
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def whisper(settings):
    endpoint = FakeSpeech()
    settings.CHIRP_WHISPER_URL = endpoint.url
    settings.CHIRP_WHISPER_API_KEY = "gsk_test"
    settings.CHIRP_WHISPER_MODEL = "whisper-large-v3"
    yield endpoint
    endpoint.stop()


def run_import(owner, text: str) -> ImportJob:
    job, _ = ImportJob.start(owner, parse_channel_input(text))
    engine.run_lane("imports")
    job.refresh_from_db()
    return job


def test_it_is_off_by_default(alice, fake_youtube, settings):
    assert settings.CHIRP_WHISPER_URL is None and not speech.configured()
    fake_youtube.media = AUDIO
    fake_youtube.add_channel("quiet", videos=2, captions="none")

    job = run_import(alice, "@quiet")

    assert (job.done, job.failed) == (2, 0)
    assert set(Video.objects.values_list("transcript_source", flat=True)) == {"none"}
    assert fake_youtube.count("media") == 0


def test_transcribe_sends_the_audio_and_reads_the_segments(fake_youtube, whisper, tmp_path):
    fake_youtube.media = AUDIO
    channel = fake_youtube.add_channel("talky", videos=1, captions="none")

    with YouTube(retry_backoff=0) as client:
        transcript = speech.transcribe(channel.videos[0].id, client)

    assert transcript.source == "whisper" and transcript.language_code == "en"
    assert [(s.start, s.duration, s.text) for s in transcript.segments] == [
        (0.0, 4.2, "Hello from the audio."),
        (4.2, 5.3, "Second sentence."),
    ]
    [call] = whisper.calls
    assert call["path"] == "/v1/audio/transcriptions"
    assert call["auth"] == "Bearer gsk_test"
    assert call["fields"]["model"] == "whisper-large-v3"
    assert call["fields"]["response_format"] == "verbose_json"
    assert call["files"]["file"] == AUDIO
    assert fake_youtube.count("media") == 1
    assert not list(Path("/tmp").glob("chirp-audio-*/*"))  # the audio is deleted


def test_videos_without_captions_get_a_whisper_transcript(alice, fake_youtube, whisper):
    fake_youtube.media = AUDIO
    fake = fake_youtube.add_channel("mixed", videos=4, captions={1: "none", 2: "disabled"})

    job = run_import(alice, "@mixed")

    assert (job.status, job.done, job.failed) == ("completed", 4, 0)
    sources = {v.youtube_id: v.transcript_source for v in Video.objects.all()}
    assert sources == {
        fake.videos[0].id: "manual",
        fake.videos[1].id: "whisper",
        fake.videos[2].id: "whisper",
        fake.videos[3].id: "manual",
    }
    heard = Video.objects.get(youtube_id=fake.videos[1].id)
    assert heard.transcript == "Hello from the audio.\nSecond sentence."
    assert heard.transcript_segments == [
        [0.0, 4.2, "Hello from the audio."],
        [4.2, 5.3, "Second sentence."],
    ]
    assert len(whisper.calls) == 2 and fake_youtube.count("media") == 2
    assert "without captions" not in job.finished_summary()


def test_a_failing_service_leaves_the_video_without_a_transcript(alice, fake_youtube, whisper):
    fake_youtube.media = AUDIO
    whisper.status = 503
    fake_youtube.add_channel("down", videos=2, captions="none")

    job = run_import(alice, "@down")

    assert (job.done, job.failed) == (2, 0)
    assert set(Video.objects.values_list("transcript_source", flat=True)) == {"none"}
    assert len(whisper.calls) == 2


def test_audio_too_large_is_not_sent(alice, fake_youtube, whisper, settings):
    settings.CHIRP_WHISPER_MAX_MB = 1  # the fake's audio stream says 1.9 MB
    fake_youtube.media = AUDIO
    fake_youtube.add_channel("long", videos=1, captions="none")

    job = run_import(alice, "@long")

    assert (job.done, job.failed) == (1, 0)
    assert Video.objects.get().transcript_source == "none"
    assert whisper.calls == [] and fake_youtube.count("media") == 0
