"""Finding faces in pictures with deepface's detectors, safely from several threads.

deepface caches one detector per backend for the whole process (`modeling.build_model`), and
those detectors are not thread-safe: two threads sharing the opencv one get wrong face counts
(the errors are swallowed inside deepface), and sharing the dlib one crashes the process. So
every thread here builds and keeps its own detector instance (`detector_for_thread`), and
calls the detector directly rather than through `DeepFace.extract_faces`: no alignment work,
and a picture without a face gives no face (extract_faces would invent one covering the whole
picture, or raise).

deepface, numpy and opencv are imported on first use, so importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

DEFAULT_BACKEND = "opencv"
DEFAULT_MAX_SIDE = 1024

# The backends that work without downloading weights at run time: opencv's Haar cascades ship
# in opencv-contrib-python-headless 4.x, dlib's landmark weights in face_recognition_models.
BACKENDS = ("opencv", "dlib")
_INSTALL_HINTS = {
    "opencv": "It needs opencv-contrib-python-headless<5 (its Haar cascades).",
    "dlib": "It needs dlib-bin and face_recognition_models.",
}

_build_lock = threading.Lock()
_local = threading.local()


@dataclass(frozen=True)
class Face:
    """A face's box in the pixels of the picture given to the detector."""

    x: int
    y: int
    w: int
    h: int
    confidence: float
    """Between 0 and 1, as the backend reports it; opencv's is not calibrated (false positives
    score 0.95 and more), so count faces rather than trusting it."""


class FaceDetector:
    """One detector instance of one backend. Not thread-safe: one per thread."""

    def __init__(self, backend: str = DEFAULT_BACKEND) -> None:
        if backend not in BACKENDS:
            raise ImproperlyConfigured(
                f"Unknown face detector {backend!r}; choose one of {', '.join(BACKENDS)}."
            )
        self.backend = backend
        self._model = _build_model(backend)

    def detect(self, image: Image.Image, *, max_side: int = DEFAULT_MAX_SIDE) -> list[Face]:
        """Faces in `image`, searched in a copy shrunk to `max_side` at most."""
        import numpy as np
        from PIL import Image

        rgb = image if image.mode == "RGB" else image.convert("RGB")
        scale = max_side / max(rgb.size)
        if scale < 1:
            size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
            rgb = rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        # deepface's detectors take BGR arrays, as cv2.imread gives them.
        bgr = np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])
        regions = self._model.detect_faces(bgr)
        x_scale, y_scale = image.width / rgb.width, image.height / rgb.height
        return [_to_face(region, x_scale, y_scale, image.size) for region in regions]


def detect_faces(image: Image.Image) -> list[Face]:
    """Faces in `image`, in its own pixels, with this thread's detector.

    The backend is the CHIRP_FACE_DETECTOR setting; pictures are searched at most
    CHIRP_FACE_MAX_SIDE pixels wide or high.
    """
    max_side = getattr(settings, "CHIRP_FACE_MAX_SIDE", DEFAULT_MAX_SIDE)
    if max_side < 1:
        raise ImproperlyConfigured("CHIRP_FACE_MAX_SIDE must be at least 1.")
    return detector_for_thread().detect(image, max_side=max_side)


def detector_for_thread() -> FaceDetector:
    """The calling thread's own detector of the configured backend.

    A detector whose thread has ended is handed to the next new thread rather than built
    again: the job runner starts fresh image threads for every job, and building a detector
    costs as much as a few detections.
    """
    backend = getattr(settings, "CHIRP_FACE_DETECTOR", DEFAULT_BACKEND)
    held: _HeldDetector | None = getattr(_local, "held", None)
    if held is None or held.detector.backend != backend:
        held = _local.held = _HeldDetector(_reusable(backend) or FaceDetector(backend))
    return held.detector


# Detectors of threads that have ended, free for the next thread (deque: append and pop are
# atomic, so no lock is taken in __del__ below).
_idle: deque[FaceDetector] = deque()


class _HeldDetector:
    """A thread's detector; when the thread ends (its locals are freed) the detector is put
    back for reuse. Only one thread ever uses it at a time."""

    def __init__(self, detector: FaceDetector) -> None:
        self.detector = detector

    def __del__(self) -> None:
        _idle.append(self.detector)


def _reusable(backend: str) -> FaceDetector | None:
    while True:
        try:
            detector = _idle.pop()
        except IndexError:
            return None
        if detector.backend == backend:
            return detector


def _to_face(region: Any, x_scale: float, y_scale: float, size: tuple[int, int]) -> Face:
    width, height = size
    left = max(0, int(region.x * x_scale))
    top = max(0, int(region.y * y_scale))
    right = min(width, round((region.x + region.w) * x_scale))
    bottom = min(height, round((region.y + region.h) * y_scale))
    confidence = min(1.0, max(0.0, float(region.confidence or 0)))
    return Face(x=left, y=top, w=right - left, h=bottom - top, confidence=round(confidence, 2))


def _build_model(backend: str) -> Any:
    # deepface prints (rather than logs) what it does, e.g. a weights download; keep that out
    # of stdout. redirect_stdout swaps sys.stdout for the whole process, hence the lock.
    with _build_lock:
        noise = io.StringIO()
        try:
            with contextlib.redirect_stdout(noise):
                model = _build_dlib() if backend == "dlib" else _build_deepface(backend)
        except (ImportError, ValueError, RuntimeError) as exc:
            raise ImproperlyConfigured(
                f"The {backend} face detector cannot be built: {exc}. "
                + _INSTALL_HINTS.get(backend, "")
            ) from exc
        finally:
            if noise.getvalue().strip():
                logger.debug("deepface: %s", noise.getvalue().strip())
    logger.debug("Built the %s face detector of thread %s", backend, threading.get_ident())
    return model


def _build_deepface(backend: str) -> Any:
    from deepface.modules import modeling

    # A new instance, not modeling.build_model(), which returns the process-wide shared one.
    return modeling.get_model_class("face_detector", backend)()


def _build_dlib() -> Any:
    import dlib
    from deepface.models.face_detection.Dlib import DlibClient

    # DlibClient() would download its landmark weights from dlib.net; the same file ships in
    # face_recognition_models, found without importing it (it imports pkg_resources).
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("No module named 'face_recognition_models'")
    weights = Path(
        spec.submodule_search_locations[0], "models/shape_predictor_5_face_landmarks.dat"
    )
    client = DlibClient.__new__(DlibClient)
    client.model = {
        "face_detector": dlib.get_frontal_face_detector(),
        "sp": dlib.shape_predictor(str(weights)),
    }
    return client
