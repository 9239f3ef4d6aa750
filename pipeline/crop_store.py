"""Crop images on disk, addressed by the sha256 of their JPEG bytes.

Content addressing makes writes idempotent (a re-ingested chunk stores nothing new, two processes
writing the same crop agree) and lets a reader detect a damaged file. Files live at
``root/ab/cd/<sha>.jpg`` so that no folder grows past 65536 entries; each is written to a temp file
in its final folder, fsynced and renamed into place, so a reader never sees half a crop and a crash
leaves at most a stray temp file (never a wrong ``<sha>.jpg``).
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import cv2
import numpy as np

from reunite.errors import DiskFullError, InvalidOptionError, NotFoundError, StoreError

SUFFIX = ".jpg"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TEMP_PREFIX = "."
"""Temp files start with a dot: ``iter_all`` and anyone listing the store skips them."""
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class CropStore:
    """Content-addressed JPEG crops under ``root`` (created on first write)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @staticmethod
    def encode(image_bgr: np.ndarray, quality: int = 90) -> bytes:
        """JPEG bytes of a BGR (or grey) uint8 crop; the same pixels give the same bytes."""
        if not 1 <= quality <= 100:
            raise InvalidOptionError(f"JPEG quality must be 1-100, got {quality}")
        image = np.asarray(image_bgr)
        shape_ok = image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3))
        if image.dtype != np.uint8 or not shape_ok or image.size == 0:
            raise InvalidOptionError(
                f"a crop must be a non-empty HxWx3 BGR uint8 image, got {image.dtype} "
                f"of shape {image.shape}"
            )
        ok, buffer = cv2.imencode(SUFFIX, image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:
            raise StoreError(f"OpenCV could not encode a crop of shape {image.shape} as JPEG")
        return buffer.tobytes()

    @staticmethod
    def decode(data: bytes) -> np.ndarray:
        """The BGR uint8 image of stored JPEG bytes (to re-embed crops with another model)."""
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise StoreError("the stored bytes are not a decodable JPEG")
        return image

    def path(self, sha256: str) -> Path:
        """Where the crop with this hash lives; the hash is checked so it cannot escape ``root``."""
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
            raise InvalidOptionError(
                f"{sha256!r} is not a crop id: expected 64 lowercase hex digits (a sha256)"
            )
        return self.root / sha256[:2] / sha256[2:4] / f"{sha256}{SUFFIX}"

    def put(self, data: bytes) -> str:
        """Store ``data`` (idempotent) and return its sha256.

        A file already there with the right size is not rewritten, only its mtime refreshed: a
        garbage collector that spares recent files (a running ingest puts crops before it commits
        the rows naming them) then also spares an old orphan that was just put again. A file of
        another size (truncated by a crash or another tool) is replaced. A full disk raises
        ``DiskFullError`` and leaves nothing behind.
        """
        sha = hashlib.sha256(data).hexdigest()
        target = self.path(sha)
        temp: Path | None = None
        try:
            if _refresh_if_complete(target, len(data)):
                return sha
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = _create_temp(target.parent)
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, target)
            temp = None
            _fsync_dir(target.parent)
        except OSError as exc:
            if exc.errno in _DISK_FULL:
                raise DiskFullError(
                    f"the disk holding the crop store {self.root} is full ({exc.strerror}); "
                    "nothing was written. Free some space, then run the command again"
                ) from exc
            raise StoreError(f"cannot write crop {sha} under {self.root}: {exc}") from exc
        finally:
            if temp is not None:
                with suppress(FileNotFoundError):
                    temp.unlink()
        return sha

    def get(self, sha256: str) -> bytes:
        """The bytes of a stored crop, checked against their hash."""
        path = self.path(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"no crop {sha256} in the crop store {self.root}") from None
        except OSError as exc:
            raise StoreError(f"cannot read crop file {path}: {exc.strerror}") from exc
        if hashlib.sha256(data).hexdigest() != sha256:
            raise StoreError(
                f"crop file {path} is corrupt: its content no longer matches its sha256 (disk "
                "damage or an outside edit); delete it, and re-ingest its footage to restore it"
            )
        return data

    def get_image(self, sha256: str) -> np.ndarray:
        """The stored crop as a BGR uint8 image."""
        return self.decode(self.get(sha256))

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def delete(self, sha256: str) -> bool:
        """Remove a crop; False if it was not there. Empty folders are kept (a concurrent put
        may be about to write into them)."""
        try:
            self.path(sha256).unlink()
        except FileNotFoundError:
            return False
        return True

    def iter_all(self) -> Iterator[str]:
        """Every stored sha256, in sorted order (for finding crops no sighting refers to).

        Only well-formed entries in their proper folder count: temp files and anything else found
        under ``root`` are skipped, never returned for deletion.
        """
        for first in _sorted_dirs(self.root):
            for second in _sorted_dirs(first):
                prefix = first.name + second.name
                try:
                    names = sorted(e.name for e in os.scandir(second) if e.is_file())
                except FileNotFoundError:
                    continue
                for name in names:
                    sha = name.removesuffix(SUFFIX)
                    if name.endswith(SUFFIX) and _SHA256.fullmatch(sha) and sha[:4] == prefix:
                        yield sha


def _refresh_if_complete(path: Path, size: int) -> bool:
    """Whether ``path`` already holds ``size`` bytes (then its mtime is set to now)."""
    try:
        if path.stat().st_size != size:
            return False
        os.utime(path)
    except FileNotFoundError:
        return False  # not there, or deleted just now: write it
    except PermissionError:
        pass  # a store we may read but not touch: the file is there, which is what counts
    return True


def _create_temp(directory: Path) -> tuple[int, Path]:
    """A new, exclusively created temp file in ``directory`` (same file system as the target, so
    the rename is atomic); returns its open descriptor and path."""
    fd, name = tempfile.mkstemp(dir=directory, prefix=_TEMP_PREFIX, suffix=".tmp")
    return fd, Path(name)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable: without it a power cut may lose a crop the DB refers to."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sorted_dirs(folder: Path) -> list[Path]:
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(
        (Path(e.path) for e in entries if e.is_dir() and re.fullmatch(r"[0-9a-f]{2}", e.name)),
        key=lambda p: p.name,
    )
