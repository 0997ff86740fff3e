from __future__ import annotations

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from PIL import Image, ImageFile

from uploads.faces import Face, FaceDetector, detect_faces, detector_for_thread

# What opencv's Haar cascade, as deepface drives it, finds in each sample picture.
OPENCV_COUNTS = {
    "astronaut": 1,
    "grace_hopper": 1,
    "coffee": 0,
    "chelsea": 0,
    "rocket": 0,
    "horse": 0,
}
# dlib also finds the astronaut's mission patch (confidence 0.12).
DLIB_COUNTS = {**OPENCV_COUNTS, "astronaut": 2}


def _counts_in_threads(
    pictures: dict[str, Image.Image], threads: int, rounds: int
) -> list[tuple[str, int]]:
    names = list(pictures) * rounds  # interleaved: each thread gets a mix of pictures
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda name: (name, len(detect_faces(pictures[name]))), names))


@pytest.mark.parametrize("name", OPENCV_COUNTS)
def test_counts_faces(name: str, sample_pictures: dict[str, Image.Image]) -> None:
    assert len(detect_faces(sample_pictures[name])) == OPENCV_COUNTS[name]


def test_face_box_is_in_the_pictures_pixels(sample_pictures: dict[str, Image.Image]) -> None:
    picture = sample_pictures["grace_hopper"]

    [face] = detect_faces(picture)

    assert 0 <= face.x < face.x + face.w <= picture.width
    assert 0 <= face.y < face.y + face.h <= picture.height
    assert 0.0 <= face.confidence <= 1.0
    # Her face is in the upper middle, about a third of the picture's width.
    assert picture.width * 0.25 < face.x + face.w / 2 < picture.width * 0.6
    assert picture.height * 0.2 < face.y + face.h / 2 < picture.height * 0.5
    assert picture.width * 0.25 < face.w < picture.width * 0.6


def test_large_pictures_are_searched_shrunk_and_boxes_mapped_back(
    sample_pictures: dict[str, Image.Image], monkeypatch: pytest.MonkeyPatch
) -> None:
    picture = sample_pictures["grace_hopper"]
    [small_face] = detect_faces(picture)
    large = picture.resize((picture.width * 3, picture.height * 3))
    seen_shapes: list[tuple[int, ...]] = []
    model = detector_for_thread()._model
    real_detect = model.detect_faces

    def spy(image):  # type: ignore[no-untyped-def]
        seen_shapes.append(image.shape)
        return real_detect(image)

    monkeypatch.setattr(model, "detect_faces", spy)

    [face] = detect_faces(large)

    assert max(seen_shapes[0][:2]) == 1024
    for small, big in [
        (small_face.x, face.x),
        (small_face.y, face.y),
        (small_face.w, face.w),
        (small_face.h, face.h),
    ]:
        assert big == pytest.approx(small * 3, rel=0.1, abs=15)


def test_max_side_comes_from_the_setting(
    settings, sample_pictures: dict[str, Image.Image], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.CHIRP_FACE_MAX_SIDE = 300
    seen_shapes: list[tuple[int, ...]] = []
    model = detector_for_thread()._model
    real_detect = model.detect_faces

    def spy(image):  # type: ignore[no-untyped-def]
        seen_shapes.append(image.shape)
        return real_detect(image)

    monkeypatch.setattr(model, "detect_faces", spy)

    faces = detect_faces(sample_pictures["grace_hopper"])

    assert max(seen_shapes[0][:2]) == 300
    assert len(faces) == 1
    assert faces[0].x + faces[0].w <= sample_pictures["grace_hopper"].width


def test_two_threads_count_like_one(sample_pictures: dict[str, Image.Image]) -> None:
    """deepface's shared opencv detector miscounts here (about one picture in four)."""
    one_thread = [(name, len(detect_faces(picture))) for name, picture in sample_pictures.items()]
    assert dict(one_thread) == OPENCV_COUNTS

    two_threads = _counts_in_threads(sample_pictures, threads=2, rounds=4)

    assert two_threads == one_thread * 4


def test_each_thread_has_its_own_detector() -> None:
    both_started = threading.Barrier(2)

    def detectors() -> tuple[int, int]:
        first = detector_for_thread()
        both_started.wait(timeout=10)
        return id(first), id(detector_for_thread())

    with ThreadPoolExecutor(2) as pool:
        (a, a_again), (b, b_again) = pool.map(lambda _: detectors(), range(2))

    assert a == a_again
    assert b == b_again
    assert a != b


def test_a_detector_outlives_its_thread_for_the_next_one() -> None:
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(detector_for_thread).result()
    with ThreadPoolExecutor(1) as pool:
        second = pool.submit(detector_for_thread).result()

    assert second is first  # not built again


def test_backend_comes_from_the_setting(settings) -> None:
    settings.CHIRP_FACE_DETECTOR = "nonsense"

    with pytest.raises(ImproperlyConfigured, match="Unknown face detector 'nonsense'"):
        detect_faces(Image.new("RGB", (10, 10)))


def test_a_blank_picture_has_no_face() -> None:
    assert detect_faces(Image.new("RGB", (200, 100), (128, 128, 128))) == []


def test_any_picture_mode_is_accepted(sample_pictures: dict[str, Image.Image]) -> None:
    grey = sample_pictures["grace_hopper"].convert("L")

    assert [type(face) for face in detect_faces(grey)] == [Face]


def test_building_detectors_keeps_truncated_pictures_rejected() -> None:
    FaceDetector("opencv")

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_importing_the_module_does_not_load_deepface() -> None:
    code = (
        "import sys; import uploads.faces; "
        "print(sorted({'deepface', 'cv2', 'numpy'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )

    assert result.stdout.strip() == "[]"


class TestDlib:
    @pytest.fixture(autouse=True)
    def _dlib(self, settings) -> None:
        pytest.importorskip("dlib")
        pytest.importorskip("face_recognition_models")
        settings.CHIRP_FACE_DETECTOR = "dlib"

    def test_counts_faces(self, sample_pictures: dict[str, Image.Image]) -> None:
        counts = {name: len(detect_faces(picture)) for name, picture in sample_pictures.items()}

        assert counts == DLIB_COUNTS
        assert detector_for_thread().backend == "dlib"

    def test_two_threads_count_like_one(self, sample_pictures: dict[str, Image.Image]) -> None:
        """deepface's shared dlib detector crashes the process here."""
        two_threads = _counts_in_threads(sample_pictures, threads=2, rounds=2)

        assert two_threads == [(name, DLIB_COUNTS[name]) for name in sample_pictures] * 2
