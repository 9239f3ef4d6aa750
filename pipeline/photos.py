"""Photos from outside (a family's portrait, a CCTV still): checked, cleaned, and the person found.

Checks run on the bytes before anything is decoded: the size limit, the type by content (magic
numbers: JPEG, PNG, WebP only; a file's name and declared type are not trusted), and the pixel
count read from the header (a small PNG can declare 100 000 x 100 000 pixels: a decompression
bomb). Only then is the image decoded in full, with EXIF orientation applied, and re-encoded as a
JPEG without metadata: the stored copy carries no GPS position or device serial of the family.
Pillow does the decoding (it reads the header without decoding and honours EXIF orientation,
which OpenCV's imdecode does not expose).
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from reunite.errors import (
    BadImageError,
    NoPersonFoundError,
    UnsupportedMediaError,
    UploadTooLargeError,
)
from reunite.pipeline.detection import Detection, PersonDetector

DEFAULT_MAX_BYTES = 10 * 2**20
DEFAULT_MAX_PIXELS = 40_000_000
"""40 megapixels: more than any phone or CCTV camera gives, far less than a bomb decodes to."""
_MIN_WIDTH, _MIN_HEIGHT = 16, 32
"""A distant person in a CCTV still can be this small; the re-ID model upsamples every crop."""


def sniff_type(data: bytes) -> str | None:
    """'jpeg', 'png' or 'webp' by magic number, else None."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


@dataclass(frozen=True, slots=True)
class CleanPhoto:
    image: np.ndarray
    """BGR uint8, upright (EXIF orientation applied)."""
    jpeg: bytes
    """The image re-encoded as JPEG without any metadata: what is stored."""
    original_type: str


def clean_photo(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS
) -> CleanPhoto:
    """Check and decode an uploaded photo; raises an ``UploadError`` that says what is wrong."""
    if len(data) == 0:
        raise BadImageError("the file is empty")
    if len(data) > max_bytes:
        raise UploadTooLargeError(
            f"the file has {len(data) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB"
        )
    kind = sniff_type(data)
    if kind is None:
        raise UnsupportedMediaError(
            "not a JPEG, PNG or WebP image by its content (the file name and declared type are "
            "not trusted); convert the photo to JPEG"
        )
    try:
        # Image.open reads the header only (and itself refuses sizes far past its own limit).
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
            if width * height > max_pixels:
                raise UploadTooLargeError(
                    f"the image declares {width}x{height} pixels; the limit is "
                    f"{max_pixels / 1e6:.0f} megapixels"
                )
            if width < _MIN_WIDTH or height < _MIN_HEIGHT:
                raise BadImageError(
                    f"the image is {width}x{height} pixels; at least {_MIN_WIDTH}x{_MIN_HEIGHT} "
                    "is needed to see a person"
                )
            probe.load()  # decodes everything: a truncated file fails here
            upright = ImageOps.exif_transpose(probe).convert("RGB")
    except Image.DecompressionBombError as exc:
        raise UploadTooLargeError(f"the image declares too many pixels: {exc}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        message = f"the {kind.upper()} file cannot be decoded completely: {exc}"
        raise BadImageError(message) from None
    image = cv2.cvtColor(np.asarray(upright), cv2.COLOR_RGB2BGR)
    out = io.BytesIO()
    upright.save(out, format="JPEG", quality=92)  # no exif= argument: nothing is carried over
    return CleanPhoto(image=image, jpeg=out.getvalue(), original_type=kind)


# -- finding the person -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FoundPerson:
    box: Detection
    found_by: str
    """box (given by the operator), detector, face (a portrait: body from the face), whole."""


_CROP_ASPECT = (1.2, 4.0)
"""Height over width of a photo that is already a person crop (a cut-out CCTV still)."""
_MIN_TEXTURE = 4.0


def find_person(
    image: np.ndarray,
    *,
    box: tuple[float, float, float, float] | None = None,
    detector: PersonDetector | None = None,
) -> FoundPerson:
    """The person to search for: the operator's box, else the most prominent detection (largest
    and most central), else a body extrapolated from the most prominent face, else the whole
    photo when it is shaped like a person crop. Raises ``NoPersonFoundError`` otherwise."""
    height, width = image.shape[:2]
    if box is not None:
        x1, y1, x2, y2 = (float(v) for v in box)
        x1, y1, x2, y2 = max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2)
        if x2 - x1 < 8 or y2 - y1 < 16:
            raise NoPersonFoundError(
                f"the box {box} does not lie on the {width}x{height} photo or is too small"
            )
        return FoundPerson(Detection(x1, y1, x2, y2, 1.0), "box")
    if detector is not None:
        people = [d for d in detector.detect(image) if d.height >= 32]
        if people:
            return FoundPerson(_most_prominent(people, width, height), "detector")
    face = _most_prominent_face(image)
    if face is not None:
        return FoundPerson(body_from_face(face, width, height), "face")
    aspect = height / width
    texture = float(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).std())
    if _CROP_ASPECT[0] <= aspect <= _CROP_ASPECT[1] and texture >= _MIN_TEXTURE:
        return FoundPerson(Detection(0.0, 0.0, float(width), float(height), 1.0), "whole")
    raise NoPersonFoundError(
        "no person found in the photo: upload a photo where the person is clearly visible, "
        "crop it to the person, or give the person's box (x1,y1,x2,y2 in pixels)"
    )


def _most_prominent(boxes: list[Detection], width: int, height: int) -> Detection:
    """Largest and most central: area discounted by distance from the centre."""

    def prominence(d: Detection) -> float:
        cx, cy = (d.x1 + d.x2) / 2 / width - 0.5, (d.y1 + d.y2) / 2 / height - 0.5
        return d.width * d.height * (1.0 - min(1.0, (cx * cx + cy * cy) ** 0.5))

    return max(boxes, key=prominence)


def body_from_face(face: Detection, width: int, height: int) -> Detection:
    """A standing person's box from their face box: about 7.5 face heights tall, 3 wide, the face
    near the top (adult proportions; for a child the box is generous, which the re-ID crop
    tolerates better than a cut-off body). Clipped to the photo."""
    face_h, cx = face.height, (face.x1 + face.x2) / 2
    x1, x2 = cx - 1.5 * face.width, cx + 1.5 * face.width
    y1, y2 = face.y1 - 0.3 * face_h, face.y1 + 7.5 * face_h
    return Detection(max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2), 1.0)


def _most_prominent_face(image: np.ndarray) -> Detection | None:
    import dlib  # imported here: only portraits need it, and it takes a moment to load

    detector = _face_detector()
    scale = min(1.0, 1000.0 / max(image.shape[:2]))
    small = cv2.resize(image, None, fx=scale, fy=scale) if scale < 1.0 else image
    rgb = np.ascontiguousarray(small[:, :, ::-1])
    faces: list[dlib.rectangle] = list(detector(rgb, 1))
    if not faces:
        return None
    boxes = [
        Detection(f.left() / scale, f.top() / scale, f.right() / scale, f.bottom() / scale, 1.0)
        for f in faces
    ]
    return _most_prominent(boxes, image.shape[1], image.shape[0])


@functools.cache
def _face_detector():  # dlib has no type stubs
    """dlib's HOG frontal-face detector (built into dlib: no weights file), loaded once."""
    import dlib

    return dlib.get_frontal_face_detector()
