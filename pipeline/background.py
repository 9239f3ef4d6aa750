"""Person detection for fixed cameras without model weights: background subtraction (MOG2).

A fixed camera sees the same street all day, so whatever differs from the learnt background and
has a person's shape is most likely a person. The stages, on the frame downscaled to
``process_width`` (MOG2's cost grows with pixels, and people stay tens of pixels tall):

1. MOG2 (Zivkovic's per-pixel Gaussian mixture) marks the pixels that changed.
2. A frame-wide change (lights switched on, an exposure jump) re-learns the background instead of
   reporting blobs.
3. Cast shadows are taken out. A shadow darkens the ground by one factor in every channel, so
   changed pixels whose ratio to the background is grey and within shadow range are *shadow-like*.
   Dark clothes on a dark pavement are shadow-like too, so two cues give pixels back to the
   person: lying between a body's certain pixels (its hull), or a ratio image that is not smooth
   (a shadow cancels the ground's texture out of frame / background, clothes put their own in).
   How rough the ratio must be scales with how deep this camera's shadows are, learnt as it runs:
   a deep midday shadow has stronger edges than a faint one at dusk.
4. Morphology (an opening removes noise specks, a closing joins a body's parts), then connected
   components; fragments of one body (head apart from legs, a leg cut off by a fence bar) are
   joined when together they keep a person's shape.
5. Merged people are split. Side by side: where the column profile of the mask dips between two
   peaks, or into equal parts when the blob is far wider than one person. One behind the other:
   the camera looks down on a ground plane, so a person's height in pixels grows linearly with the
   image row of their feet; the detector learns that line from its own clean detections and splits
   a blob too tall for the row it stands on into the person in front (bottom) and the one behind
   (top). The same line cuts off what rises above a head (an umbrella).
6. Blobs of a person's size, aspect and fill are reported, scored from fill, contrast to the
   background and (once learnt) how well their height fits their row, so that a tracker's
   high/low score thresholds (ByteTrack) can tell clean blobs from doubtful ones.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np
from scipy.signal import find_peaks
from scipy.stats import theilslopes

from reunite.errors import InvalidOptionError
from reunite.pipeline.detection import Detection

_SHADOW = 127
_MIN_FRAME_SIDE = 16

# Shadows (stage 3).
_SHADOW_RATIO = (0.35, 0.95)
"""Frame/background brightness ratios a cast shadow can give (deeper ones are not shadows)."""
_SHADOW_GREY = 0.08
"""Largest spread between the three channel ratios of a shadow pixel."""
_ROUGHNESS_PER_DEPTH = 0.18
"""Ratio-image roughness that gives a shadow-like pixel back to the person, per unit of the
camera's shadow depth (1 - ratio)."""
_ROUGHNESS_RANGE = (0.02, 0.1)
_DEPTH_START = 0.2
"""Shadow depth assumed until enough shadow-like pixels were seen (a dusk-like, faint shadow)."""

# Blobs (stages 4-6).
_THIN_COLUMN = 0.1
"""Side columns holding less foreground than this fraction of the blob's height are trimmed."""
_WIDEST_PERSON = 0.75
"""Width over height of a person striding across the view, seen from above; wider blobs with no
dip in their column profile are taken as people side by side."""
_SPLIT_FROM = 1.3
_JOIN_GAP_PERSON = 0.35
_MIN_STRONG = 0.05
"""Fraction of a box that must be changed and not shadow-like for the box to be reported."""
_MIN_HEIGHT_RATIO = 0.4
"""Blobs shorter than this fraction of a person at their row are not reported."""
_MIN_ROW_SPREAD = 1.0
"""The feet rows the person scale is learnt from must span this many person heights."""
_MAX_SCALE_SCATTER = 0.12
"""Median relative distance of the samples from the learnt line above which it is not used."""


@dataclass(frozen=True, slots=True)
class _Blob:
    """A candidate in processing pixels: box (x2, y2 exclusive), foreground pixels, provenance."""

    x1: int
    y1: int
    x2: int
    y2: int
    area: int
    split: bool = False

    @property
    def width(self) -> int:
        return self.x2 - self.x1

    @property
    def height(self) -> int:
        return self.y2 - self.y1


class PersonScale:
    """How tall a person with their feet at image row ``y`` looks: ``h = a * y + b``.

    True for a camera looking down on flat ground (the height in pixels is proportional to the
    feet's distance below the horizon row). Learnt by a Theil-Sen fit, robust to the merged and
    broken blobs among the samples, over the latest ``max_samples`` (feet row, height) pairs.
    """

    def __init__(
        self,
        min_height: float,
        max_samples: int = 400,
        min_samples: int = 50,
        refit_every: int = 10,
    ) -> None:
        self.min_height = min_height
        self.min_samples = min_samples
        self.refit_every = refit_every
        self._samples: deque[tuple[float, float]] = deque(maxlen=max_samples)
        self._since_fit = 0
        self.line: tuple[float, float] | None = None

    def state(self) -> dict[str, Any]:
        """What was learnt, as JSON-ready data (see ``BackgroundSubtractionDetector.state``)."""
        return {
            "samples": [list(pair) for pair in self._samples],
            "since_fit": self._since_fit,
            "line": None if self.line is None else list(self.line),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self._samples.clear()
        self._samples.extend((float(y), float(h)) for y, h in state["samples"])
        self._since_fit = int(state["since_fit"])
        line = state["line"]
        self.line = None if line is None else (float(line[0]), float(line[1]))

    def add(self, feet_y: float, height: float) -> None:
        self._samples.append((feet_y, height))
        self._since_fit += 1
        if len(self._samples) >= self.min_samples and self._since_fit >= self.refit_every:
            self._fit()

    def expected(self, feet_y: float) -> float | None:
        """Height of a person whose feet are at row ``feet_y``, or None before the line is learnt
        or where it gives less than ``min_height`` (near the horizon the line says little)."""
        if self.line is None:
            return None
        height = self.line[0] * feet_y + self.line[1]
        return height if height >= self.min_height else None

    def height_from_top(self, top_y: float) -> float | None:
        """Height of a person whose head is at row ``top_y``: solves h = a * (top_y + h) + b."""
        if self.line is None:
            return None
        height = (self.line[0] * top_y + self.line[1]) / (1.0 - self.line[0])
        return height if height >= self.min_height else None

    def _fit(self) -> None:
        self._since_fit = 0
        feet, heights = np.asarray(self._samples, np.float64).T
        if np.ptp(feet) < _MIN_ROW_SPREAD * np.median(heights):
            return  # everyone on nearly the same rows: the slope is not determined yet
        slope, intercept, *_ = theilslopes(heights, feet)
        fitted = slope * feet + intercept
        # People nearer the camera (lower in the image) look taller; a line that most samples do
        # not follow is a fit to merged and broken blobs, not to people.
        if not (0.0 < slope < 1.0 and fitted.min() > 0):
            return
        if np.median(np.abs(heights - fitted) / fitted) > _MAX_SCALE_SCATTER:
            return
        self.line = (float(slope), float(intercept))


class BackgroundSubtractionDetector:
    """Finds moving people in one fixed camera's frames; keep one instance per camera.

    Stateful: each ``detect`` also teaches the background model, so frames must come in order.
    Tuned for frames sampled at about 2 fps (the ingest pipeline's rate): ``history`` counts
    sampled frames, so the default 240 forgets the background over two minutes, and a person who
    stops fades into it after about ten seconds.
    """

    def __init__(
        self,
        *,
        history: int = 240,
        var_threshold: float = 16.0,
        min_height: int = 24,
        process_width: int = 640,
        warmup_frames: int = 10,
        min_warmup_frames: int = 3,
        person_aspect: float = 0.42,
        min_aspect: float = 0.12,
        max_aspect: float = 1.1,
        min_fill: float = 0.2,
        global_change: float = 0.35,
    ) -> None:
        """Set up the detector; nothing is learnt until frames come.

        ``var_threshold`` is MOG2's squared Mahalanobis distance for a background match;
        ``min_height`` is in frame pixels. ``person_aspect`` is a person's usual width over
        height, ``min_aspect``/``max_aspect`` the range a reported box may have, ``min_fill`` the
        least share of its box a blob must cover. ``global_change`` is the fraction of changed
        pixels at which the background is re-learnt rather than searched.
        """
        checks = [
            (history >= 2, f"history must be at least 2 frames, got {history}"),
            (var_threshold > 0, f"var_threshold must be positive, got {var_threshold}"),
            (min_height >= 4, f"min_height must be at least 4 pixels, got {min_height}"),
            (process_width >= 64, f"process_width must be at least 64, got {process_width}"),
            (
                1 <= min_warmup_frames <= warmup_frames,
                f"need 1 <= min_warmup_frames <= warmup_frames, got {min_warmup_frames} and "
                f"{warmup_frames}",
            ),
            (
                0 < min_aspect < person_aspect < max_aspect,
                f"need 0 < min_aspect < person_aspect < max_aspect, got {min_aspect}, "
                f"{person_aspect}, {max_aspect}",
            ),
            (0 <= min_fill < 1, f"min_fill must be in [0, 1), got {min_fill}"),
            (0 < global_change <= 1, f"global_change must be in (0, 1], got {global_change}"),
        ]
        for ok, message in checks:
            if not ok:
                raise InvalidOptionError(message)
        self.history = history
        self.var_threshold = var_threshold
        self.min_height = min_height
        self.process_width = process_width
        self.warmup_frames = warmup_frames
        self.min_warmup_frames = min_warmup_frames
        self.person_aspect = person_aspect
        self.min_aspect = min_aspect
        self.max_aspect = max_aspect
        self.min_fill = min_fill
        self.global_change = global_change
        self._scale = 1.0
        self.reset()

    # -- public ---------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything: the background, the shadow depth and the person scale."""
        self._forget_background()
        self._frame_shape: tuple[int, int] | None = None
        self._shadow_depth = _DEPTH_START
        self.person_scale = PersonScale(min_height=0.5 * self.min_height * self._scale)

    def state(self) -> dict[str, Any]:
        """What was learnt about the camera (not the background), as JSON-ready data.

        The ingest pipeline keeps it with each chunk's checkpoint, so that a resumed ingest
        continues with what the interrupted one had learnt and finds exactly the same people.
        """
        return {
            "frame_shape": None if self._frame_shape is None else list(self._frame_shape),
            "shadow_depth": self._shadow_depth,
            "person_scale": self.person_scale.state(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from ``state()`` of an earlier detector on the same camera."""
        try:
            shape = state["frame_shape"]
            self.reset()
            if shape is not None:
                height, width = int(shape[0]), int(shape[1])
                self._scale = min(1.0, self.process_width / width)
                self.reset()  # the person scale's least height depends on the processing scale
                self._frame_shape = (height, width)
            self._shadow_depth = float(state["shadow_depth"])
            self.person_scale.load_state(state["person_scale"])
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            self.reset()
            raise InvalidOptionError(f"not a background detector state: {exc!r}") from exc

    @property
    def ready(self) -> bool:
        """Whether a background has been learnt (``detect`` reports people only then)."""
        return self._subtractor is not None

    def warm_up(self, frames: Sequence[np.ndarray]) -> None:
        """Learn the background from ``frames`` without reporting anything.

        Replaces any previous background. The per-pixel temporal median ignores anyone who covers
        a pixel in fewer than half the frames, so people walking through stay out of it. What was
        learnt about the camera (person scale, shadow depth) is kept unless the frame size changed:
        it holds from one processing chunk to the next.
        """
        if len(frames) == 0:
            raise InvalidOptionError("warm_up needs at least one frame")
        small = [self._prepare(frame) for frame in frames]
        if any(s.shape != small[-1].shape for s in small):
            sizes = sorted({f.shape[:2] for f in frames})
            raise InvalidOptionError(f"warm_up frames differ in size {sizes}: give one camera's")
        self._learn(small)

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        """Update the background with this frame and return the people in it, best first.

        Without a warm-up, the first ``min_warmup_frames - 1`` frames only build the background
        and return nothing; the background is learnt again once ``warmup_frames`` have come.
        """
        small = self._prepare(frame_bgr)
        if (self._subtractor is None or self._pending) and not self._collect(small):
            return []
        assert self._subtractor is not None
        mask = self._subtractor.apply(small, learningRate=1.0 / self.history)
        if np.count_nonzero(mask) > self.global_change * mask.size:
            # The whole scene changed at once (lights, exposure): learn it again from here.
            self._forget_background()
            self._collect(small)
            return []
        background = self._subtractor.getBackgroundImage()
        foreground, strong = self._foreground(mask, small, background)
        blobs = self._people(foreground)
        return self._detections(blobs, small, foreground, strong, background)

    # -- background -----------------------------------------------------------------------------
    def _forget_background(self) -> None:
        self._subtractor: cv2.BackgroundSubtractorMOG2 | None = None
        self._pending: list[np.ndarray] = []
        self._noise = 2.0

    def _prepare(self, frame: np.ndarray) -> np.ndarray:
        """Check the frame, start afresh on a new frame size, and downscale for processing."""
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
            shape = getattr(frame, "shape", None)
            raise InvalidOptionError(
                f"expected an HxWx3 BGR frame, got shape {shape}; convert grey frames with "
                "cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)"
            )
        if frame.dtype != np.uint8 or min(frame.shape[:2]) < _MIN_FRAME_SIDE:
            raise InvalidOptionError(
                f"expected a uint8 frame of at least {_MIN_FRAME_SIDE}x{_MIN_FRAME_SIDE} pixels, "
                f"got {frame.shape} {frame.dtype}"
            )
        height, width = frame.shape[:2]
        if self._frame_shape != (height, width):
            self._scale = min(1.0, self.process_width / width)
            self.reset()
            self._frame_shape = (height, width)
        if self._scale == 1.0:
            return frame
        size = (round(width * self._scale), round(height * self._scale))
        return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)

    def _collect(self, small: np.ndarray) -> bool:
        """Warm up on the fly: learn from the first frames, again when ``warmup_frames`` are in.

        Returns whether a background is there to search against.
        """
        self._pending.append(small)
        count = len(self._pending)
        if count == self.min_warmup_frames or count >= self.warmup_frames:
            frames = self._pending
            self._learn(frames)
            if count < self.warmup_frames:
                self._pending = frames  # keep collecting for a median over more frames
        return self._subtractor is not None

    def _learn(self, small: list[np.ndarray]) -> None:
        """Start MOG2 from the frames' median, then show it the frames with people masked out.

        The median gives the means; the frames (pixels far from the median replaced by it) give
        MOG2 the noise of each pixel, which a single image cannot.
        """
        stack = np.stack(small)
        median = np.median(stack, axis=0).astype(np.uint8)
        diff = np.abs(stack.astype(np.int16) - median)
        self._noise = max(1.0, 1.4826 * float(np.median(diff)))
        subtractor = cv2.createBackgroundSubtractorMOG2(
            history=self.history, varThreshold=self.var_threshold, detectShadows=True
        )
        subtractor.setVarInit(max(4.0, (2.0 * self._noise) ** 2))
        subtractor.apply(median, learningRate=1.0)
        outlier = (diff > 4.0 * self._noise).any(axis=3)
        for i, frame in enumerate(small):
            clean = np.where(outlier[i][..., None], median, frame)
            subtractor.apply(clean, learningRate=1.0 / (i + 2))
        self._subtractor = subtractor
        self._pending = []

    def _foreground(
        self, mask: np.ndarray, small: np.ndarray, background: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """People's pixels, and the changed pixels that are not shadow-like (see stage 3).

        Works inside the box around all changed pixels, which is most often a small part of the
        frame.
        """
        changed = mask > 0
        foreground = np.zeros_like(changed)
        strong = np.zeros_like(changed)
        x, y, w, h = cv2.boundingRect(mask)
        if w == 0:
            return foreground, strong
        pad = 8
        box = (slice(max(0, y - pad), y + h + pad), slice(max(0, x - pad), x + w + pad))
        # OpenCV rather than numpy reductions over the channel axis: ten times faster here.
        frame_f = small[box].astype(np.float32) + 1.0
        ratio = cv2.divide(frame_f, background[box].astype(np.float32) + 1.0)
        channels = cv2.split(ratio)
        brightness = cv2.transform(ratio, np.full((1, 3), 1.0 / 3.0, np.float32))
        spread = cv2.max(cv2.max(*channels[:2]), channels[2]) - cv2.min(
            cv2.min(*channels[:2]), channels[2]
        )
        grey = spread <= _SHADOW_GREY
        lo, hi = _SHADOW_RATIO
        in_range = (brightness >= lo) & (brightness <= hi)
        shadow_like = changed[box] & ((in_range & grey) | (mask[box] == _SHADOW))
        certain = changed[box] & ~shadow_like

        depths = brightness[shadow_like]
        if depths.size >= 200:
            median = float(np.partition(depths, depths.size // 2)[depths.size // 2])
            self._shadow_depth += 0.1 * (1.0 - median - self._shadow_depth)
        smooth = cv2.GaussianBlur(brightness, (0, 0), 1.0)
        roughness = cv2.GaussianBlur(np.abs(brightness - smooth), (0, 0), 1.5)
        limit = np.clip(_ROUGHNESS_PER_DEPTH * self._shadow_depth, *_ROUGHNESS_RANGE)
        hull = cv2.morphologyEx(certain.astype(np.uint8), cv2.MORPH_CLOSE, _ellipse(7, 13)) > 0
        foreground[box] = certain | (shadow_like & (hull | (roughness > limit)))
        strong[box] = certain
        return foreground, strong

    # -- blobs ----------------------------------------------------------------------------------
    def _people(self, foreground: np.ndarray) -> list[_Blob]:
        """Person-sized boxes (processing pixels) from the foreground mask."""
        mask = foreground.astype(np.uint8)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, _ellipse(3, 3))
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, _ellipse(5, 9))
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        min_h = self.min_height * self._scale
        blobs = [
            _Blob(int(x), int(y), int(x + w), int(y + h), int(a))
            for x, y, w, h, a in stats[1:count]
            if h >= 0.3 * min_h and a >= 0.05 * min_h * min_h
        ]
        blobs = _join_fragments(blobs, self.person_scale)
        people = []
        for blob in filter(None, (_tighten(mask, b) for b in blobs)):
            for part in self._split_side_by_side(blob, mask):
                people += self._split_front_back(part, mask)
        return [
            b
            for b in people
            if b.height >= min_h
            and self.min_aspect <= b.width / b.height <= self.max_aspect
            and b.area >= self.min_fill * b.width * b.height
        ]

    def _split_side_by_side(self, blob: _Blob, mask: np.ndarray) -> list[_Blob]:
        """Split a blob wider than one person at the dips of its column profile, or, with no dip,
        into equal parts when it is at least about two people wide."""
        person_height = self.person_scale.expected(blob.y2) or blob.height
        expected = self.person_aspect * min(person_height, 1.2 * blob.height)
        if blob.width < _SPLIT_FROM * expected:
            return [blob]
        region = mask[blob.y1 : blob.y2, blob.x1 : blob.x2]
        profile = region.sum(axis=0, dtype=np.float32)
        profile = cv2.GaussianBlur(profile[None], (0, 0), sigmaX=max(1.0, expected / 6))[0]
        peaks, _ = find_peaks(
            np.concatenate([[0.0], profile, [0.0]]),
            prominence=0.3 * profile.max(),
            distance=max(1, int(0.6 * expected)),
        )
        peaks -= 1
        if len(peaks) >= 2:
            dips = [int(a + np.argmin(profile[a:b])) for a, b in itertools.pairwise(peaks)]
            cuts = [0, *dips, blob.width]
        else:
            parts = int(blob.width / (_WIDEST_PERSON * person_height))
            if parts < 2:
                return [blob]
            cuts = [round(k * blob.width / parts) for k in range(parts + 1)]
        out = []
        for a, b in itertools.pairwise(cuts):
            part = _tighten(mask, replace(blob, x1=blob.x1 + a, x2=blob.x1 + b))
            if part is not None:
                out.append(replace(part, split=True))
        return out

    def _split_front_back(self, blob: _Blob, mask: np.ndarray) -> list[_Blob]:
        """Split a blob too tall for its row: the bottom is the person in front, the top is one
        behind (or, when it is wider than tall, something held above the head: cut off)."""
        expected = self.person_scale.expected(blob.y2)
        if expected is None or blob.height < 1.25 * expected:
            return [blob]
        front_top = blob.y2 - round(expected)
        front = _tighten(mask, replace(blob, y1=front_top))
        above = _tighten(mask, replace(blob, y2=front_top))
        if front is None or above is None or above.width > 1.2 * above.height:
            return [blob] if front is None else [front]
        behind_height = self.person_scale.height_from_top(blob.y1) or expected
        behind = _tighten(mask, replace(blob, y2=min(blob.y2, blob.y1 + round(behind_height))))
        if behind is None:
            return [front]
        # The rows the front person covers say nothing of the width of the one behind.
        behind = replace(behind, x1=above.x1, x2=above.x2, split=True)
        return [replace(front, split=True), behind]

    # -- output ---------------------------------------------------------------------------------
    def _detections(
        self,
        blobs: list[_Blob],
        small: np.ndarray,
        foreground: np.ndarray,
        strong: np.ndarray,
        background: np.ndarray,
    ) -> list[Detection]:
        """Frame-pixel detections with scores; clean single blobs teach the person scale.

        Dropped: blobs that are nearly all shadow-like (the edge of a shadow), and, once the
        person scale is learnt, blobs far too short for their row (a shadow, a bag, a fragment
        the joining missed).
        """
        height, width = foreground.shape
        inv = 1.0 / self._scale
        out = []
        for b in blobs:
            box = (slice(b.y1, b.y2), slice(b.x1, b.x2))
            if np.count_nonzero(strong[box]) < _MIN_STRONG * b.width * b.height:
                continue
            expected = self.person_scale.expected(b.y2)
            ratio = b.height / expected if expected is not None else 1.0
            if ratio < _MIN_HEIGHT_RATIO:
                continue
            fill = b.area / (b.width * b.height)
            contrast = float(
                cv2.absdiff(small[box], background[box]).max(axis=2)[foreground[box]].mean()
            )
            score = (
                min(1.0, fill / 0.5) ** 0.5
                * (1.0 - np.exp(-contrast / (6.0 * self._noise)))
                * float(np.clip(min(ratio / 0.6, 1.3 / ratio), 0.2, 1.0))
            )
            inside = b.x1 > 1 and b.y1 > 1 and b.x2 < width - 1 and b.y2 < height - 1
            if not b.split and inside and 0.2 <= b.width / b.height <= 0.75 and fill >= 0.35:
                self.person_scale.add(b.y2, b.height)
            out.append(
                Detection(b.x1 * inv, b.y1 * inv, b.x2 * inv, b.y2 * inv, max(1e-3, float(score)))
            )
        out.sort(key=lambda d: -d.score)
        return out


def _ellipse(width: int, height: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, height))


def _tighten(mask: np.ndarray, box: _Blob) -> _Blob | None:
    """The box shrunk to the foreground it holds (None when it holds none), less thin side
    columns: a shadow streak or a pole's edge along the ground beside the feet."""
    region = mask[box.y1 : box.y2, box.x1 : box.x2]
    rows = np.flatnonzero(region.any(axis=1))
    if len(rows) == 0:
        return None
    counts = region.sum(axis=0)
    cols = np.flatnonzero(counts >= _THIN_COLUMN * (rows[-1] - rows[0] + 1))
    if len(cols) == 0:
        return None
    x1, x2 = box.x1 + int(cols[0]), box.x1 + int(cols[-1]) + 1
    region = region[:, cols[0] : cols[-1] + 1]
    rows = np.flatnonzero(region.any(axis=1))
    return replace(
        box,
        x1=x1,
        y1=box.y1 + int(rows[0]),
        x2=x2,
        y2=box.y1 + int(rows[-1]) + 1,
        area=int(np.count_nonzero(region)),
    )


def _join_fragments(blobs: list[_Blob], scale: PersonScale) -> list[_Blob]:
    """Join parts of one body the mask broke apart (a torso like the background, a fence bar in
    front): a much shorter blob right above, below or beside a taller one, or two blobs one right
    above the other, when together they still have a person's shape and height."""
    blobs = sorted(blobs, key=lambda b: -b.height)
    i = 0
    while i < len(blobs):
        a = blobs[i]
        for j in range(i + 1, len(blobs)):
            b = blobs[j]
            x1, y1 = min(a.x1, b.x1), min(a.y1, b.y1)
            x2, y2 = max(a.x2, b.x2), max(a.y2, b.y2)
            w, h = x2 - x1, y2 - y1
            if not 0.2 <= w / h <= 0.85:
                continue
            expected = scale.expected(y2)
            if expected is not None and h > 1.2 * expected:
                continue
            # A union as tall as a person at its row may bridge a wider gap (dark legs lost).
            person_tall = expected is not None and h > 0.75 * expected
            gap_x = max(a.x1, b.x1) - min(a.x2, b.x2)
            gap_y = max(a.y1, b.y1) - min(a.y2, b.y2)
            above = gap_x < 0 and gap_y <= (_JOIN_GAP_PERSON if person_tall else 0.15) * h
            near = max(gap_x, gap_y) <= 0.1 * h
            stacked = -gap_x > 0.5 * min(a.width, b.width) and h > 0.9 * (a.height + b.height)
            if (above or near) and (b.height < 0.7 * a.height or stacked):
                blobs[i] = a = _Blob(x1, y1, x2, y2, a.area + b.area)
                del blobs[j]
                break
        else:
            i += 1
    return blobs
