"""Footage sources: CCTV video files, folders of frames and live streams as timestamped frames.

The first ingest stage. ``open_source`` picks the reader from the location (a URL with a scheme is
a stream, a directory a frame folder, a file a video) and each reader yields ``Frame`` records:
the position of the frame in the source, its UTC wall-clock time and its BGR pixels.

Sampling rule. Re-identification needs a few looks at each passer-by, not every frame, so frames
are sampled on a clock of ``fps`` ticks a second (2 by default): tick k is at t0 + k/fps, t0 being
the first frame's time, and the frame kept for tick k is the first frame whose time is >= that tick.
A frame is kept at most once (two ticks with no frame between them give one frame), so footage
slower than the sampling rate is kept whole. Equivalently: a frame is kept when its tick number
floor((t - t0) * fps) is higher than that of every frame before it, so the decision depends only on
frame times, never on pixels.

Resume guarantee. ``frames(start_index=s)`` yields exactly the frames that a full ``frames()``
yields with index >= s: same indices, times and pixels. An ingest job interrupted after frame s-1
can therefore restart at s without duplicating or losing a sighting. Folders know every frame's time
from names or ``timestamps.csv`` before reading any pixels; videos learn theirs from a packet scan
of the container (no decoding) and resume by seeking to frame s-1, which is accepted only if the
decoder lands on the frame with exactly the expected presentation time; otherwise (variable frame
rate, raw H.264, an unseekable file) they decode forward from the start, which is slower but exact.
Live streams cannot be rewound: they ignore ``start_index``.

Cost. OpenCV's FFmpeg ``grab()`` decodes (only the conversion to BGR is left to ``retrieve()``),
and inter-coded video cannot be decoded out of order, so every frame is decoded; skipped frames
save the colour conversion and the copy. Measured on a shared 2-core machine (best of 3, FFmpeg's
default 2 decoding threads): 1280x720 MPEG-4 part 2 at 25 fps sampled at 2 fps reads about 1900
source frames/s (76x real time) against about 1000 when every frame is converted; 768x432 H.264 at
10 fps about 1700 against 1450; a folder of 1280x720 JPEGs about 370 frames/s, since only sampled
images are decoded. A resume seek costs up to one keyframe interval of decoding.

Bad input is never fatal once a source is open: what decodes is yielded and each problem is added
to ``errors`` in words (a truncated tail, an undecodable stretch or image, a stream that dropped).
"""

from __future__ import annotations

import csv
import hashlib
import logging
import math
import os
import re
import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

import cv2
import numpy as np

from reunite.errors import InvalidOptionError, SourceError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".ts", ".mts", ".mpg", ".mpeg", ".flv"}
    | {".wmv", ".264", ".h264", ".265", ".h265", ".hevc", ".mjpg", ".mjpeg"}
)
"""Names taken for a video when a directory holds no images but one such file (synthetic
``--format video`` cameras); a file passed directly is tried whatever its name."""

MAX_SAMPLING_FPS = 60.0
ASSUMED_FPS = 25.0
"""Frame rate assumed for footage that reports none, and the one FFmpeg gives raw H.264 streams."""
TIMESTAMPS_CSV = "timestamps.csv"
STREAM_OPEN_TIMEOUT_MS = 10_000
STREAM_READ_TIMEOUT_MS = 10_000
"""A stalled stream blocks a read this long before it counts as dropped (OpenCV waits 30 s)."""

_HASH_BLOCK = 1 << 20
_PTS_TOLERANCE_MS = 0.5
_HEAD_BYTES = 64 << 10
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PLAUSIBLE_EPOCH_MS = (946_684_800_000, 4_102_444_800_000)  # 2000-01-01 .. 2100-01-01
_ISO_IN_NAME = re.compile(
    r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})[T_ -]?(\d{2})[:-]?(\d{2})[:-]?(\d{2})"
    r"(?:[.,](\d{1,6}))?(Z|[+-]\d{2}:?\d{2})?(?!\d)"
)
_EPOCH_MS_IN_NAME = re.compile(r"(?<!\d)(\d{13})(?!\d)")
_LEADING_NUMBER = re.compile(r"^(\d+)")


@dataclass(frozen=True, slots=True)
class Frame:
    """One sampled frame: where it sits in its source, when it was filmed, and its pixels."""

    index: int
    """0-based decoded-frame number (video), file order (folder), running read count (stream)."""
    timestamp: datetime
    """Timezone-aware UTC wall-clock time of the frame."""
    image: np.ndarray
    """HxWx3 uint8 BGR."""


class FrameSource(Protocol):
    """Footage that yields sampled, timestamped frames; see the module docstring for the rules."""

    uri: str
    kind: str
    errors: list[str]

    def fingerprint(self) -> str:
        """A stable id of the content, so the same footage is recognised when given again."""
        ...

    def estimated_frames(self) -> int | None:
        """How many sampled frames to expect (for progress bars); None for live streams."""
        ...

    def frames(self, start_index: int = 0) -> Iterator[Frame]:
        """The sampled frames, from the first sampled frame whose index is >= ``start_index``."""
        ...


def open_source(
    location: str | Path,
    *,
    fps: float = 2.0,
    start_time: datetime | None = None,
    max_reconnects: int = 5,
    reconnect_base_s: float = 0.5,
    reconnect_max_s: float = 8.0,
) -> FrameSource:
    """Open footage for sampling at ``fps`` frames a second.

    A URL with a scheme (rtsp://, http://, udp://, ...) is a live stream, a directory a folder of
    frames (or the MOT-style camera folder above its ``img1``), any other file a video. Only a video
    takes ``start_time`` (its first frame's wall-clock time); folders are timed by their names or a
    ``timestamps.csv`` and streams by the clock, so giving one there is refused rather than ignored.
    The reconnect options apply to streams. Raises ``SourceError`` for footage that cannot be read
    at all and ``InvalidOptionError`` for option values that cannot work.
    """
    if not (math.isfinite(fps) and 0.0 < fps <= MAX_SAMPLING_FPS):
        raise InvalidOptionError(
            f"sampling fps must be > 0 and <= {MAX_SAMPLING_FPS:g}, got {fps}; 2 is usually enough"
        )
    if start_time is not None and start_time.utcoffset() is None:
        raise InvalidOptionError(
            f"start_time {start_time.isoformat()} has no time zone; give one (e.g. ...Z or +01:00) "
            "so that frames from different cameras line up"
        )
    text = str(location)
    if not isinstance(location, Path) and _is_url(text):
        if urlsplit(text).scheme.lower() == "file":
            location = Path(unquote(urlsplit(text).path))
        else:
            _refuse_start_time(start_time, "a live stream is timed by the clock as it is read")
            return StreamSource(text, fps, max_reconnects, reconnect_base_s, reconnect_max_s)
    path = Path(location).expanduser().resolve()
    if not path.exists():
        raise SourceError(f"footage not found: {path}; check the path (or give a stream URL)")
    if path.is_dir():
        images = _image_folder(path)
        if images is not None:
            _refuse_start_time(start_time, "frames in a folder are timed by their names or CSV")
            return FrameFolderSource(*images, fps=fps)
        return VideoFileSource(_lone_video(path), fps, start_time)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise SourceError(
            f"{path} is a single image; pass the folder that holds the frames instead"
        )
    return VideoFileSource(path, fps, start_time)


def timestamp_from_name(name: str) -> datetime | None:
    """The UTC time written in a file name, or None.

    Accepted: an ISO-like date and time, with or without separators (``20261125T140501Z``,
    ``20261125-140501``, ``2026-11-25T14-05-01.250+01:00``; no zone means UTC), or a 13-digit epoch
    in milliseconds (``000001_1795644400000.jpg``, the synthetic district's frame names).
    """
    for match in _ISO_IN_NAME.finditer(name):
        year, month, day, hour, minute, second, fraction, zone = match.groups()
        try:
            stamp = datetime(
                int(year),
                int(month),
                int(day),
                int(hour),
                int(minute),
                int(second),
                int((fraction or "0").ljust(6, "0")),
                tzinfo=_zone(zone),
            )
        except ValueError:
            continue
        return stamp.astimezone(UTC)
    for match in _EPOCH_MS_IN_NAME.finditer(name):
        value = int(match.group(1))
        if _PLAUSIBLE_EPOCH_MS[0] <= value < _PLAUSIBLE_EPOCH_MS[1]:
            return _EPOCH + timedelta(milliseconds=value)
    return None


class _Ticks:
    """Tick numbers of the sampling clock that starts at ``t0``: tick k is at t0 + k/fps."""

    def __init__(self, t0: datetime, fps: float) -> None:
        self.t0 = t0
        self.fps = fps

    def __call__(self, t: datetime) -> int:
        # Times are whole microseconds, so a frame filmed exactly on a tick that is not a whole
        # microsecond (fps = 3) lands up to half a microsecond early: allow one microsecond.
        offset_us = (t - self.t0) // timedelta(microseconds=1)
        return math.floor((offset_us + 1) * self.fps / 1e6)


def sampled_positions(times: Iterable[datetime], fps: float) -> list[int]:
    """Positions of the frames the sampling rule keeps from frame times in source order."""
    kept: list[int] = []
    ticks: _Ticks | None = None
    last = -1
    for position, t in enumerate(times):
        ticks = ticks or _Ticks(t, fps)
        tick = ticks(t)
        if tick > last:
            kept.append(position)
            last = tick
    return kept


class _ErrorLog:
    """The ``errors`` list plus a warning in the log; a repeated message is recorded once."""

    errors: list[str]

    def _note(self, message: str) -> None:
        if message not in self.errors:
            self.errors.append(message)
            log.warning(message)


class FrameFolderSource(_ErrorLog):
    """A folder of still frames (.jpg .jpeg .png .bmp .webp), each timed by the folder's
    ``timestamps.csv`` (here or in the parent, as the synthetic district and MOT layouts have it)
    or by a time in its name. Frames are ordered by time then name; index is that order.

    Every frame's time is known before any pixel is read, so the sampled set is fixed at open.
    A sampled image that does not decode is skipped and named in ``errors``; its tick is not handed
    to the next image, which keeps the sampled set (and so resume) independent of pixel reads.
    """

    kind = "frames"

    def __init__(self, folder: Path, images: list[Path], *, fps: float) -> None:
        self.uri = str(folder)
        self.errors = []
        self._folder = folder
        self._fps = fps
        self._names = sorted(p.name for p in images)
        self._files, self._times = self._timed_files(folder, images)
        self._sampled = sampled_positions(self._times, fps)

    def fingerprint(self) -> str:
        """sha256 over the sorted (name, size, sha256 of the first 64 KiB) of the images."""
        digest = hashlib.sha256()
        for name in self._names:
            path = self._folder / name
            with path.open("rb") as handle:
                head = hashlib.sha256(handle.read(_HEAD_BYTES)).hexdigest()
            digest.update(f"{name}\0{path.stat().st_size}\0{head}\n".encode())
        return digest.hexdigest()

    def estimated_frames(self) -> int:
        return len(self._sampled)

    def frames(self, start_index: int = 0) -> Iterator[Frame]:
        for index in self._sampled:
            if index < start_index:
                continue
            path = self._files[index]
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                self._note(f"skipped {path.name} in {self._folder}: it cannot be decoded")
                continue
            if path.suffix.lower() in {".jpg", ".jpeg"} and not _has_jpeg_end(path):
                self._note(f"{path.name} in {self._folder} is truncated; kept what decodes")
            yield Frame(index, self._times[index], image)

    def _timed_files(self, folder: Path, images: list[Path]) -> tuple[list[Path], list[datetime]]:
        """Each image with its time, in time order; images with no time are left out (noted)."""
        table_path = next(
            (p for p in (folder / TIMESTAMPS_CSV, folder.parent / TIMESTAMPS_CSV) if p.is_file()),
            None,
        )
        by_name = sorted(images, key=lambda p: p.name)
        numbers = [_LEADING_NUMBER.match(p.stem) for p in by_name]
        if all(numbers):
            frame_numbers = [int(m.group(1)) for m in numbers if m]
        else:
            frame_numbers = list(range(1, len(by_name) + 1))
        table = _read_timestamps_csv(table_path) if table_path else {}
        timed: list[tuple[datetime, str, Path]] = []
        untimed: list[str] = []
        for path, number in zip(by_name, frame_numbers, strict=True):
            stamp = table.get(number) or timestamp_from_name(path.stem)
            if stamp is None:
                untimed.append(path.name)
            else:
                timed.append((stamp, path.name, path))
        if not timed:
            where = f" and {table_path} does not list them" if table_path else ""
            raise SourceError(
                f"no frame times for the {len(images)} images in {folder}{where}: name each frame "
                "with its UTC time as epoch milliseconds or ISO (000001_1795644400000.jpg, "
                "cam1_20261125T140501.250Z.jpg), or put a timestamps.csv with columns "
                "frame,epoch_ms (frame = the 1-based number that starts each file name) in the "
                "folder or its parent"
            )
        if untimed:
            self._note(
                f"left out {len(untimed)} images of {folder} with no time in their name or in "
                f"{TIMESTAMPS_CSV} (first: {untimed[0]})"
            )
        if any(a[0] > b[0] for a, b in pairwise(timed)):
            self._note(
                f"the frame times in {folder} do not follow the file names; frames are read in "
                "time order"
            )
        timed.sort(key=lambda item: (item[0], item[1]))
        return [path for _, _, path in timed], [stamp for stamp, _, _ in timed]


@dataclass(frozen=True, slots=True)
class _Probe:
    """What opening a video reveals: the container's claims and the first frame's time."""

    frame_count: int | None
    fps: float | None
    has_pts: bool
    """Whether the container gives frame times (raw H.264 and some MJPEG streams do not)."""
    first_msec: float


class VideoFileSource(_ErrorLog):
    """A video file read with OpenCV's FFmpeg backend (MP4, AVI, MKV, raw .264, ...).

    Frame times, first match wins: ``start_time`` plus the frame's presentation time; a
    ``timestamps.csv`` sidecar beside the video (frame, epoch_ms; frame 1-based) giving each
    frame's time; a UTC time in the file name plus the presentation time; else the file's mtime
    minus the duration (a guess, logged as a warning). A file without frame times (raw H.264) is
    timed at its reported frame rate from the start, which is noted in ``errors`` because FFmpeg
    reports 25 fps for any raw stream; pass ``start_time`` and check the rate, or add a sidecar.

    Damage: when decoding fails before the container's frame count is reached, seeks look for the
    first frame that decodes again and reading goes on from there (an OpenCV seek decodes from up
    to 16 frames or one keyframe before its target, so a few sound frames after the damage go with
    it). Index stays the frame's place in the container, found by its presentation time, so a
    skipped stretch never renumbers later frames and resume still agrees with a full run.
    """

    kind = "video"

    def __init__(self, path: Path, fps: float, start_time: datetime | None) -> None:
        self.uri = str(path)
        self.errors = []
        self._path = path
        self._fps = fps
        self._probe = _probe_video(path)
        self._footage_fps = self._probe.fps or ASSUMED_FPS
        if self._probe.fps is None:
            self._note(f"{path.name} reports no frame rate; {ASSUMED_FPS:g} fps assumed")
        self._packet_msec: list[float] | None = None
        self._table: dict[int, datetime] = {}
        sidecar = path.parent / TIMESTAMPS_CSV
        if start_time is not None:
            self._start = start_time.astimezone(UTC)
        elif sidecar.is_file():
            self._table = _read_timestamps_csv(sidecar)
            self._start = self._table[min(self._table)]
        elif (named := timestamp_from_name(path.stem)) is not None:
            self._start = named
        else:
            mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            self._start = mtime - timedelta(seconds=self._duration_s())
            log.warning(
                "no start time for %s (no start_time, %s or time in its name): guessed %s from "
                "the file's modification time minus its duration",
                path.name,
                TIMESTAMPS_CSV,
                self._start.isoformat(),
            )
        if not self._probe.has_pts and not self._table:
            self._note(
                f"{path.name} carries no frame times (a raw stream): frames are timed at "
                f"{self._footage_fps:g} fps from the start; check that rate, or give a "
                f"{TIMESTAMPS_CSV} sidecar"
            )
        self._ticks = _Ticks(self._frame_time(0, self._probe.first_msec), fps)

    def fingerprint(self) -> str:
        """sha256 of the file bytes."""
        digest = hashlib.sha256()
        with self._path.open("rb") as handle:
            while block := handle.read(_HASH_BLOCK):
                digest.update(block)
        return digest.hexdigest()

    def estimated_frames(self) -> int | None:
        """Exact for an intact file: the rule applied to the packet scan (one read, no decoding)."""
        timeline = self._timeline()
        return None if timeline is None else len(sampled_positions(timeline, self._fps))

    def frames(self, start_index: int = 0) -> Iterator[Frame]:
        capture = _open_capture(self._path)
        try:
            index, last_tick = 0, -1
            if start_index > 0:
                resumed = self._seek_to(capture, start_index)
                if resumed is None:
                    log.info(
                        "resuming %s at frame %d: decoding from the start",
                        self._path.name,
                        start_index,
                    )
                    capture.release()
                    capture = _open_capture(self._path)
                else:
                    log.debug("resuming %s at frame %d: seeked", self._path.name, start_index)
                    index, last_tick = resumed
            while True:
                grabbed = self._grab(capture, index)
                if grabbed is None:
                    return
                pos_msec = capture.get(cv2.CAP_PROP_POS_MSEC)
                index = self._aligned(grabbed, pos_msec)
                stamp = self._frame_time(index, pos_msec)
                tick = self._ticks(stamp)
                if tick > last_tick:
                    last_tick = tick
                    if index >= start_index:
                        ok, image = capture.retrieve()
                        if ok and image is not None:
                            yield Frame(index, stamp, image)
                        else:
                            self._note(f"frame {index} of {self._path.name} cannot be decoded")
                index += 1
        finally:
            capture.release()

    def _grab(self, capture: cv2.VideoCapture, index: int) -> int | None:
        """Decode the next frame; past damage, seek on to the first frame that decodes.

        Returns the index of the frame now held, or None at the end of what can be read.
        """
        if capture.grab():
            return index
        total = self._expected_total()
        # A count estimated from duration x rate may be one over: one frame short is an end.
        if total is None or total - index <= 1:
            return None
        readable = self._first_seekable(capture, index + 1, total) if self._probe.has_pts else None
        if readable is None:
            self._note(
                f"stopped at frame {index} of {total}: {self._path.name} is truncated or corrupt"
            )
            return None
        self._note(
            f"frames {index}-{readable - 1} of {self._path.name} cannot be decoded (damaged data); "
            f"skipped to frame {readable}"
        )
        return readable

    def _aligned(self, index: int, pos_msec: float) -> int:
        """The container position of the frame just decoded, given the count so far.

        A decoder may drop a damaged frame without failing the read; counting would then give
        every later frame the number of its predecessor, and a resume seek (which goes by time)
        would disagree. The presentation time finds the frame's place in the packet scan.
        """
        packets = self._packet_times() if self._probe.has_pts else []
        position = bisect_left(packets, pos_msec - _PTS_TOLERANCE_MS)
        if position <= index or position >= len(packets):
            return index
        if abs(packets[position] - pos_msec) > _PTS_TOLERANCE_MS:
            return index
        self._note(
            f"frames {index}-{position - 1} of {self._path.name} cannot be decoded (damaged data); "
            "skipped"
        )
        return position

    def _first_seekable(self, capture: cv2.VideoCapture, low: int, total: int) -> int | None:
        """The first frame in [low, total) that a seek reaches, by doubling then bisection.

        Seeks restart decoding at a keyframe, so past a damaged stretch they succeed from the next
        clean keyframe on; searching for the first success keeps what a resume seek would reach.
        """
        step, failed, found = 1, low - 1, None
        while found is None and failed < total - 1:
            target = min(low + step - 1, total - 1)
            if _seek_exactly(capture, target):
                found = target
            else:
                failed = target
            step *= 2
        if found is None:
            return None
        while found - failed > 1:
            middle = (failed + found) // 2
            if _seek_exactly(capture, middle):
                found = middle
            else:
                failed = middle
        return found if _seek_exactly(capture, found) else None

    def _seek_to(self, capture: cv2.VideoCapture, start_index: int) -> tuple[int, int] | None:
        """Position the decoder to resume at ``start_index``: (next index, last tick) or None.

        The seek lands on frame s-1 and is trusted only if that frame's presentation time is the
        one the packet scan gives frame s-1 (frame numbers after a seek are derived from times,
        which drift from decoded counts in variable-frame-rate files).
        """
        packets = self._packet_times()
        timeline = self._timeline()
        if not self._probe.has_pts or not packets or timeline is None:
            return None
        if start_index >= len(packets):
            return None
        target = start_index - 1
        if not _seek_exactly(capture, target):
            return None
        if abs(capture.get(cv2.CAP_PROP_POS_MSEC) - packets[target]) > _PTS_TOLERANCE_MS:
            return None
        return start_index, max(self._ticks(t) for t in timeline[:start_index])

    def _frame_time(self, index: int, pos_msec: float) -> datetime:
        if self._table:
            return self._table_time(index)
        if self._probe.has_pts:
            return self._start + timedelta(milliseconds=pos_msec)
        return self._start + timedelta(seconds=index / self._footage_fps)

    def _table_time(self, index: int) -> datetime:
        """The sidecar time of a 0-based frame; past its rows, the nearest earlier row + periods."""
        number = index + 1
        if number in self._table:
            return self._table[number]
        self._note(
            f"{TIMESTAMPS_CSV} beside {self._path.name} does not list frame {number}; later "
            f"frames are timed at {self._footage_fps:g} fps from its nearest row"
        )
        earlier = [n for n in self._table if n < number]
        anchor = max(earlier) if earlier else min(self._table)
        return self._table[anchor] + timedelta(seconds=(number - anchor) / self._footage_fps)

    def _packet_times(self) -> list[float]:
        """Presentation times (ms) of every frame in order, from the container without decoding.

        In raw mode FFmpeg's demuxer hands over packets undecoded, so this reads the file once at
        disk speed; sorting turns decode order (B-frames) into display order.
        """
        if self._packet_msec is None:
            capture = cv2.VideoCapture(str(self._path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_FORMAT, -1])
            times: list[float] = []
            try:
                while capture.isOpened() and capture.grab():
                    times.append(capture.get(cv2.CAP_PROP_POS_MSEC))
            finally:
                capture.release()
            self._packet_msec = sorted(times)
        return self._packet_msec

    def _timeline(self) -> list[datetime] | None:
        """Every frame's time from the packet scan; frames the container counts beyond the
        packets that could be read (damage) are timed at the footage rate."""
        packets = self._packet_times()
        count = max(len(packets), self._probe.frame_count or 0)
        if count == 0:
            return None
        period_ms = 1000.0 / self._footage_fps
        return [
            self._frame_time(i, packets[i] if i < len(packets) else i * period_ms)
            for i in range(count)
        ]

    def _expected_total(self) -> int | None:
        counts = [c for c in (self._probe.frame_count, len(self._packet_times())) if c]
        return max(counts) if counts else None

    def _duration_s(self) -> float:
        packets = self._packet_times()
        if self._probe.has_pts and packets:
            return packets[-1] / 1000.0 + 1.0 / self._footage_fps
        count = self._probe.frame_count or len(packets)
        return count / self._footage_fps


class StreamSource(_ErrorLog):
    """A live stream (RTSP, HTTP MJPEG, UDP ...) read with OpenCV's FFmpeg backend.

    Frames are timed by the UTC clock when read and sampled on that clock; index counts every
    frame read, across reconnects. All frames are read (a live stream must be drained) but only
    sampled ones are converted to BGR. When a read fails the stream is reopened after
    ``reconnect_base_s * 2**n`` seconds (at most ``reconnect_max_s``); after ``max_reconnects``
    failed attempts in a row the iterator ends cleanly, so frames already ingested are kept, and
    ``errors`` says why. ``uri``, ``fingerprint()`` and messages show the URL with its password
    masked, so that credentials never reach the database, logs or reports. RTSP over TCP needs
    ``OPENCV_FFMPEG_CAPTURE_OPTIONS=rtsp_transport;tcp`` in the environment (FFmpeg tries UDP
    first, which firewalls often drop).
    """

    kind = "stream"

    def __init__(
        self,
        url: str,
        fps: float,
        max_reconnects: int = 5,
        reconnect_base_s: float = 0.5,
        reconnect_max_s: float = 8.0,
    ) -> None:
        if max_reconnects < 0:
            raise InvalidOptionError(f"max_reconnects must be >= 0, got {max_reconnects}")
        if not 0.0 < reconnect_base_s <= reconnect_max_s:
            raise InvalidOptionError(
                "reconnect delays must satisfy 0 < reconnect_base_s <= reconnect_max_s, got "
                f"{reconnect_base_s} and {reconnect_max_s}"
            )
        self.uri = _redact(url)
        self.errors = []
        self._url = url
        self._fps = fps
        self._max_reconnects = max_reconnects
        self._base_s = reconnect_base_s
        self._max_s = reconnect_max_s
        self._pending = self._connect()
        if self._pending is None:
            raise SourceError(
                f"cannot open stream {self.uri}: check the address, credentials and that the "
                "camera is on (for RTSP behind a firewall set "
                "OPENCV_FFMPEG_CAPTURE_OPTIONS=rtsp_transport;tcp)"
            )

    def fingerprint(self) -> str:
        """The URL, with any password masked (as in ``uri``)."""
        return self.uri

    def estimated_frames(self) -> None:
        return None

    def frames(self, start_index: int = 0) -> Iterator[Frame]:
        """Sampled live frames until the stream is gone; ``start_index`` is ignored (live)."""
        capture, self._pending = self._pending, None
        index, last_tick, failures = 0, -1, 0
        ticks: _Ticks | None = None
        try:
            while True:
                if capture is not None and capture.grab():
                    failures = 0
                    now = datetime.now(UTC)
                    ticks = ticks or _Ticks(now, self._fps)
                    tick = ticks(now)
                    if tick > last_tick:
                        last_tick = tick
                        ok, image = capture.retrieve()
                        if ok and image is not None:
                            yield Frame(index, now, image)
                    index += 1
                    continue
                if capture is not None:
                    capture.release()
                    capture = None
                    self.errors.append(f"stream {self.uri} dropped after {index} frames")
                if failures >= self._max_reconnects:
                    self.errors.append(
                        f"gave up on {self.uri} after {failures} failed reconnect attempts; "
                        "frames read so far are kept"
                    )
                    log.warning(self.errors[-1])
                    return
                delay = min(self._base_s * 2**failures, self._max_s)
                failures += 1
                time.sleep(delay)
                capture = self._connect()
                outcome = "reconnected" if capture is not None else "failed"
                self.errors.append(
                    f"reconnect attempt {failures} of {self._max_reconnects} to {self.uri} "
                    f"after {delay:g} s: {outcome}"
                )
                log.warning(self.errors[-1])
        finally:
            if capture is not None:
                capture.release()

    def _connect(self) -> cv2.VideoCapture | None:
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            STREAM_OPEN_TIMEOUT_MS,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            STREAM_READ_TIMEOUT_MS,
        ]
        capture = cv2.VideoCapture(self._url, cv2.CAP_FFMPEG, params)
        if capture.isOpened():
            return capture
        capture.release()
        return None


def _is_url(text: str) -> bool:
    """A scheme of two letters or more followed by ``://`` (``C:\\`` is a Windows drive)."""
    scheme = urlsplit(text).scheme
    return len(scheme) > 1 and text.lower().startswith(f"{scheme.lower()}://")


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def _refuse_start_time(start_time: datetime | None, why: str) -> None:
    if start_time is not None:
        raise InvalidOptionError(f"start_time applies to video files only: {why}")


def _zone(text: str | None) -> timezone:
    """The zone of an ISO suffix: none or Z is UTC, else a fixed offset such as +01:00."""
    if not text or text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def _image_folder(folder: Path) -> tuple[Path, list[Path]] | None:
    """The images of a frame folder, or of its ``img1`` (MOT layout); None if neither has any."""
    for candidate in (folder, folder / "img1"):
        if candidate.is_dir():
            try:
                images = [
                    Path(entry.path)
                    for entry in os.scandir(candidate)
                    if entry.is_file()
                    and not entry.name.startswith(".")  # macOS "._" resource files are no frames
                    and Path(entry.name).suffix.lower() in IMAGE_SUFFIXES
                ]
            except OSError as error:
                raise SourceError(f"cannot list {candidate}: {error}") from error
            if images:
                return candidate, images
    return None


def _lone_video(folder: Path) -> Path:
    """The one video in a folder without images (a synthetic ``--format video`` camera)."""
    videos = sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
    )
    if len(videos) == 1:
        return videos[0]
    accepted = " ".join(sorted(IMAGE_SUFFIXES))
    if not videos:
        raise SourceError(
            f"no frames in {folder}: it holds no images ({accepted}) directly or in img1/, and no "
            "video; point at the folder that holds the footage"
        )
    names = ", ".join(p.name for p in videos[:5])
    raise SourceError(f"{folder} holds several videos ({names}); open each file on its own")


def _read_timestamps_csv(path: Path) -> dict[int, datetime]:
    """Frame number (1-based) to UTC time from a ``frame,epoch_ms`` CSV."""
    try:
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            fields = set(reader.fieldnames or [])
            if not {"frame", "epoch_ms"} <= fields:
                raise SourceError(
                    f"{path} lacks the columns frame,epoch_ms (has {sorted(fields)}); fix its "
                    "header or remove it"
                )
            table = {}
            for line, row in enumerate(reader, start=2):
                try:
                    table[int(row["frame"])] = _EPOCH + timedelta(
                        milliseconds=float(row["epoch_ms"])
                    )
                except (TypeError, ValueError, OverflowError):
                    raise SourceError(
                        f"{path} line {line}: frame and epoch_ms must be numbers, got "
                        f"{row.get('frame')!r} and {row.get('epoch_ms')!r}"
                    ) from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise SourceError(f"cannot read {path}: {error}") from error
    if not table:
        raise SourceError(f"{path} lists no frames; fill it in or remove it")
    return table


def _has_jpeg_end(path: Path) -> bool:
    """Whether a JPEG ends with its end-of-image marker (a cut-off file decodes partly grey)."""
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - 32))
        return b"\xff\xd9" in handle.read()


def _open_capture(path: Path) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if capture.isOpened():
        return capture
    capture.release()
    if _mp4_without_index(path):
        raise SourceError(
            f"cannot read {path}: it is an MP4 whose index (moov box) is missing, which happens "
            "when a recording is cut short or copied while still being written; re-export it "
            "from the recorder, or repair it with a tool such as untrunc"
        )
    raise SourceError(
        f"cannot open {path} as a video (not a video, an unsupported codec, or damaged); check "
        "that it plays, or convert it to MP4 (H.264)"
    )


def _probe_video(path: Path) -> _Probe:
    """Open once to learn the frame rate, the count, and whether frames carry times."""
    capture = _open_capture(path)
    try:
        fps = capture.get(cv2.CAP_PROP_FPS)
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        if not capture.grab():
            raise SourceError(
                f"{path} opens as a video but no frame decodes; it is empty or damaged"
            )
        first = capture.get(cv2.CAP_PROP_POS_MSEC)
        second = capture.get(cv2.CAP_PROP_POS_MSEC) if capture.grab() else None
    finally:
        capture.release()
    return _Probe(
        frame_count=int(count) if 0 < count < 1e9 else None,
        fps=fps if math.isfinite(fps) and 0 < fps <= 1000 else None,
        has_pts=second is None or second > first,
        first_msec=first,
    )


def _seek_exactly(capture: cv2.VideoCapture, index: int) -> bool:
    """Seek to frame ``index`` and grab it; True only if the decoder says it holds that frame."""
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    return capture.grab() and int(capture.get(cv2.CAP_PROP_POS_FRAMES)) == index + 1


def _mp4_without_index(path: Path) -> bool:
    """An ISO-BMFF file (``ftyp`` first) whose top-level boxes hold no ``moov``."""
    with path.open("rb") as handle:
        size = path.stat().st_size
        position, types = 0, []
        while position + 8 <= size and len(types) < 1000:
            handle.seek(position)
            header = handle.read(16)
            box_size = int.from_bytes(header[:4], "big")
            types.append(header[4:8])
            if box_size == 1 and len(header) == 16:
                box_size = int.from_bytes(header[8:16], "big")
            elif box_size == 0:
                box_size = size - position
            if box_size < 8:
                break
            position += box_size
    return bool(types) and types[0] == b"ftyp" and b"moov" not in types
