"""Multi-object tracking within one camera: detections per frame in, tracklets out.

``ByteTracker`` follows ByteTrack (Zhang et al., "ByteTrack: Multi-Object Tracking by Associating
Every Detection Box", ECCV 2022): every detection box takes part, the high-score ones first and the
low-score ones (often a partly occluded person) second, so that a person whom the detector barely
sees keeps their track instead of losing it. The motion model is a Kalman filter as in SORT
(Bewley et al., ICIP 2016), with the box width rather than the aspect ratio in the state, as
BoT-SORT (Aharon et al., 2022) found it fits boxes better.

What differs from the paper, and why: district CCTV is ingested at about 2 fps, sometimes with gaps,
so (1) the filter runs on the frames' timestamps, not on frame counts, and (2) a walker moves 0.3 to
0.8 of their height between frames, so the box of the previous frame and the new one often do not
overlap at all. IoU alone (the paper's cost) would then start a new track for every fast walker. A
track seen in the previous frame, or a tentative one, therefore also accepts a high-score box whose
IoU is low when its centre lies within the filter's own 99 % gate around the predicted centre and
the sizes agree (see ``_association_cost``). The gate is a Mahalanobis distance: wide for a young
track whose velocity is unknown, tight for one followed steadily.

A track that has missed a frame gets IoU only, as in the paper. Measured on the synthetic district
(``tests/test_tracking.py``), letting lost tracks use the widening centre gate as well cut
fragmentation a little but mixed people: whoever walked in through the door or frame border that
another person had just left took over that person's track. A split track costs little, since
re-identification joins the pieces; a tracklet holding two people cannot be undone downstream.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from reunite.errors import InvalidOptionError, SourceError
from reunite.pipeline.detection import Detection


@dataclass(frozen=True, slots=True)
class TrackedDetection:
    """A detection of this frame and the confirmed track it was assigned to."""

    track_id: int
    detection: Detection
    """The observed box, the very object passed to ``update`` (not the filter's estimate)."""


@dataclass
class Tracklet:
    """One person's path through one camera: every observed box, in time order.

    A track's first frames, seen before it was confirmed, are part of its history.
    """

    track_id: int
    frame_indices: list[int] = field(default_factory=list)
    timestamps: list[float] = field(default_factory=list)
    detections: list[Detection] = field(default_factory=list)


# Kalman filter noise, in box heights and seconds, so one setting suits near and far people and any
# frame rate. State: centre x, centre y, width, height and their velocities (constant velocity).
_MEASURE_STD = np.array([0.05, 0.05, 0.10, 0.05])
"""Box noise of a detector: 5 % of the height in position and height; the width twice that, since a
walker's legs open and close between frames."""
_INITIAL_VELOCITY_STD = np.array([1.0, 1.0, 0.02, 0.02])
"""Velocity uncertainty of a new track: walking is about 0.8 heights a second, so 1 height/s lets
the first gate reach fast walkers. Size changes are kept nearly out of the velocity: the visible
extent jumps when legs are hidden or a person steps out of a doorway, and a learnt "shrinking" rate
carried through a few frames made boxes vanish."""
_ACCELERATION_PSD = np.array([0.1, 0.1, 0.002, 0.002])
"""White-noise acceleration (heights² / s³): the velocity drifts by about 0.3 heights/s in a second,
enough for a walker to turn or change pace."""
_GATE_CHI2 = 9.21
"""99 % quantile of chi-square with 2 degrees of freedom: the centre gate."""
_MAX_SIZE_RATIO = 1.6
"""A centre-gated pair must agree in width and in height within this factor of the prediction."""


class _KalmanBox:
    """Constant-velocity Kalman filter of one box over (cx, cy, w, h), driven by elapsed seconds."""

    def __init__(self, box: Detection, timestamp_s: float) -> None:
        z = _box_to_z(box)
        self.time = timestamp_s
        self.mean = np.concatenate([z, np.zeros(4)])
        std = np.concatenate([2 * _MEASURE_STD, _INITIAL_VELOCITY_STD]) * z[3]
        self.cov = np.diag(std**2)

    def predict(self, timestamp_s: float, *, hold_size: bool = False) -> None:
        """Move the state to ``timestamp_s``; ``hold_size`` stops the box growing or shrinking
        (for a lost person, as ByteTrack does for the height)."""
        if hold_size:
            self.mean[6:] = 0.0
        dt = timestamp_s - self.time
        if dt <= 0:
            return
        transition = np.eye(8)
        transition[:4, 4:] = dt * np.eye(4)
        q = _ACCELERATION_PSD * self._height() ** 2
        noise = np.zeros((8, 8))
        noise[:4, :4] = np.diag(q * dt**3 / 3)
        noise[:4, 4:] = noise[4:, :4] = np.diag(q * dt**2 / 2)
        noise[4:, 4:] = np.diag(q * dt)
        self.mean = transition @ self.mean
        self.cov = transition @ self.cov @ transition.T + noise
        self.time = timestamp_s

    def update(self, box: Detection) -> None:
        innovation_cov = self.cov[:4, :4] + self._measure_cov()
        gain = np.linalg.solve(innovation_cov, self.cov[:4, :]).T
        self.mean = self.mean + gain @ (_box_to_z(box) - self.mean[:4])
        self.cov = self.cov - gain @ self.cov[:4, :]
        self.cov = (self.cov + self.cov.T) / 2

    def box(self) -> np.ndarray:
        """The estimated box as (x1, y1, x2, y2), at least a pixel in each side."""
        cx, cy, w, h = self.mean[:4]
        w, h = max(w, 1.0), max(h, 1.0)
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])

    def centre_distance2(self, box: Detection) -> float:
        """Squared Mahalanobis distance of the box centre from the predicted centre."""
        innovation_cov = self.cov[:2, :2] + self._measure_cov()[:2, :2]
        delta = _box_to_z(box)[:2] - self.mean[:2]
        return float(delta @ np.linalg.solve(innovation_cov, delta))

    def _height(self) -> float:
        return max(float(self.mean[3]), 1.0)

    def _measure_cov(self) -> np.ndarray:
        return np.diag((_MEASURE_STD * self._height()) ** 2)


def _box_to_z(box: Detection) -> np.ndarray:
    return np.array([(box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2, box.width, box.height])


class _Track:
    def __init__(self, box: Detection, frame_index: int, timestamp_s: float) -> None:
        self.filter = _KalmanBox(box, timestamp_s)
        self.history = Tracklet(track_id=0)
        self.confirmed = False
        self.last_seen = timestamp_s
        self.record(box, frame_index, timestamp_s)

    def record(self, box: Detection, frame_index: int, timestamp_s: float) -> None:
        self.history.frame_indices.append(frame_index)
        self.history.timestamps.append(timestamp_s)
        self.history.detections.append(box)
        self.last_seen = timestamp_s

    @property
    def hits(self) -> int:
        return len(self.history.detections)


class ByteTracker:
    """ByteTrack association over a timestamp-driven Kalman filter; one instance per camera.

    Per frame: (1) high-score detections (``>= high_threshold``) against every confirmed track,
    seen or lost, with the IoU-or-centre-gate cost (the centre gate only for tracks seen in the
    previous frame); (2) low-score ones (``>= low_threshold``)
    against the confirmed tracks still unmatched, by IoU only, since a weak box is trusted only
    where it overlaps a track's expected box (the ByteTrack step: it carries a person through
    partial occlusion); (3) remaining high-score detections against tentative tracks, so that a
    blip never takes a real person's box. Each step is a Hungarian assignment. A tentative track
    that misses a frame is dropped, and a remaining high-score detection scoring
    ``>= new_track_threshold`` starts one; ``min_hits`` matched frames in a row confirm it.
    A confirmed track unseen for more than ``max_lost_seconds`` is finished.

    Track ids are given on confirmation, 1, 2, 3, ... in order, so a blip that never becomes a
    track leaves no gap; the same input always gives the same ids.
    """

    def __init__(
        self,
        *,
        high_threshold: float = 0.5,
        low_threshold: float = 0.1,
        new_track_threshold: float = 0.6,
        match_iou: float = 0.2,
        max_lost_seconds: float = 3.0,
        min_hits: int = 2,
    ) -> None:
        for name, value in (
            ("high_threshold", high_threshold),
            ("low_threshold", low_threshold),
            ("new_track_threshold", new_track_threshold),
        ):
            if not 0.0 <= value <= 1.0:
                raise InvalidOptionError(f"{name} must be in [0, 1], got {value}")
        if low_threshold > high_threshold:
            raise InvalidOptionError(
                f"low_threshold ({low_threshold}) must not exceed high_threshold ({high_threshold})"
            )
        if not 0.0 < match_iou <= 1.0:
            raise InvalidOptionError(f"match_iou must be in (0, 1], got {match_iou}")
        if not max_lost_seconds >= 0.0:
            raise InvalidOptionError(f"max_lost_seconds must be >= 0, got {max_lost_seconds}")
        if min_hits < 1:
            raise InvalidOptionError(f"min_hits must be >= 1, got {min_hits}")
        self.high_threshold = high_threshold
        self.low_threshold = low_threshold
        self.new_track_threshold = new_track_threshold
        self.match_iou = match_iou
        self.max_lost_seconds = max_lost_seconds
        self.min_hits = min_hits
        self._tracks: list[_Track] = []
        self._finished: list[Tracklet] = []
        self._next_id = 1
        self._last_time: float | None = None
        self._previous_time: float | None = None

    def update(
        self, detections: Sequence[Detection], frame_index: int, timestamp_s: float
    ) -> list[TrackedDetection]:
        """Track one frame; return its detections that belong to confirmed tracks.

        That includes tracks confirmed by this very frame (their earlier, tentative boxes are in
        their tracklet). Detections scoring below ``low_threshold`` are ignored, and so are boxes
        without area or with a non-finite coordinate (a detector that clips boxes to the frame
        can leave a zero-width one at the edge; no person can be followed by it).
        """
        self._check_time(timestamp_s)
        self._previous_time, self._last_time = self._last_time, timestamp_s
        self._retire_lost(timestamp_s)
        for track in self._tracks:
            track.filter.predict(timestamp_s, hold_size=not self._seen_last_frame(track))

        usable = [i for i, d in enumerate(detections) if _trackable(d)]
        high = [i for i in usable if detections[i].score >= self.high_threshold]
        low = [i for i in usable if self.low_threshold <= detections[i].score < self.high_threshold]
        confirmed = [t for t in self._tracks if t.confirmed]
        tentative = [t for t in self._tracks if not t.confirmed]

        matches, unmatched, high = self._associate(confirmed, detections, high, centre_gate=True)
        low_matches, _, _ = self._associate(unmatched, detections, low, centre_gate=False)
        young_matches, unmatched_young, high = self._associate(
            tentative, detections, high, centre_gate=True
        )

        owner: dict[int, _Track] = {}
        for track, i in [*matches, *low_matches, *young_matches]:
            track.filter.update(detections[i])
            track.record(detections[i], frame_index, timestamp_s)
            owner[i] = track
        self._tracks = [t for t in self._tracks if t not in unmatched_young]
        for i in high:
            if detections[i].score >= self.new_track_threshold:
                owner[i] = _Track(detections[i], frame_index, timestamp_s)
                self._tracks.append(owner[i])
        for track in self._tracks:
            if not track.confirmed and track.hits >= self.min_hits:
                track.confirmed = True
                track.history.track_id = self._next_id
                self._next_id += 1
        return [
            TrackedDetection(owner[i].history.track_id, detections[i])
            for i in sorted(owner)
            if owner[i].confirmed
        ]

    def pop_finished(self) -> list[Tracklet]:
        """Confirmed tracks lost for longer than ``max_lost_seconds`` (as of the last frame), which
        the tracker forgets; each is returned once. Tracks never confirmed are dropped silently."""
        if self._last_time is not None:
            self._retire_lost(self._last_time)
        finished, self._finished = self._finished, []
        return finished

    def finish(self) -> list[Tracklet]:
        """End of footage: every confirmed track not yet popped, by id; the tracker is emptied."""
        remaining = self._finished + [t.history for t in self._tracks if t.confirmed]
        self._tracks, self._finished = [], []
        return sorted(remaining, key=lambda tracklet: tracklet.track_id)

    def _seen_last_frame(self, track: _Track) -> bool:
        return track.last_seen == self._previous_time

    def _check_time(self, timestamp_s: float) -> None:
        if not math.isfinite(timestamp_s):
            raise SourceError(f"frame timestamp {timestamp_s} is not a finite number of seconds")
        if self._last_time is not None and timestamp_s < self._last_time:
            raise SourceError(
                f"frame timestamps go backwards ({timestamp_s:.3f} s after "
                f"{self._last_time:.3f} s): feed each camera's frames in time order, or fix the "
                "source's timestamps"
            )

    def _retire_lost(self, now_s: float) -> None:
        """Move confirmed tracks unseen for too long to the finished list; drop stale tentatives."""
        keep = []
        for track in self._tracks:
            if now_s - track.last_seen <= self.max_lost_seconds:
                keep.append(track)
            elif track.confirmed:
                self._finished.append(track.history)
        self._tracks = keep

    def _associate(
        self,
        tracks: list[_Track],
        detections: Sequence[Detection],
        candidates: list[int],
        *,
        centre_gate: bool,
    ) -> tuple[list[tuple[_Track, int]], list[_Track], list[int]]:
        """Hungarian assignment of ``detections[candidates]`` to ``tracks``; returns the pairs
        (track, detection index), the unmatched tracks and the unmatched detection indices."""
        if not tracks or not candidates:
            return [], tracks, candidates
        cost = np.array(
            [
                [self._association_cost(t, detections[i], centre_gate) for i in candidates]
                for t in tracks
            ]
        )
        rows, cols = linear_sum_assignment(np.where(np.isfinite(cost), cost, _NO_MATCH))
        pairs = [(r, c) for r, c in zip(rows, cols, strict=True) if np.isfinite(cost[r, c])]
        matched_rows = {r for r, _ in pairs}
        matched_cols = {c for _, c in pairs}
        return (
            [(tracks[r], candidates[c]) for r, c in pairs],
            [t for r, t in enumerate(tracks) if r not in matched_rows],
            [i for c, i in enumerate(candidates) if c not in matched_cols],
        )

    def _association_cost(self, track: _Track, box: Detection, centre_gate: bool) -> float:
        """Cost of giving ``box`` to ``track``, in [0, 1], or infinity where it is not allowed.

        ``1 - IoU`` with the predicted box where the IoU reaches ``match_iou``. Otherwise, if the
        centre gate is on and the track is tentative or was seen in the previous frame, the box
        centre lies within the 99 % Mahalanobis gate of the predicted centre and width and height
        agree within ``_MAX_SIZE_RATIO``, the cost rises linearly from ``1 - match_iou`` at the
        predicted centre to 1 at the gate's edge. Every IoU match thus costs less than any
        centre-only match: overlap remains the stronger evidence, and the centre gate only rescues
        pairs that IoU cannot judge (a walker who moved more than their width since the last frame,
        or a new track whose velocity is not known yet).
        """
        predicted = track.filter.box()
        overlap = _iou(predicted, box)
        if overlap >= self.match_iou:
            return 1.0 - overlap
        if not centre_gate:
            return math.inf
        if track.confirmed and not self._seen_last_frame(track):
            return math.inf
        pred_w, pred_h = predicted[2] - predicted[0], predicted[3] - predicted[1]
        if not (_sizes_agree(box.width, pred_w) and _sizes_agree(box.height, pred_h)):
            return math.inf
        distance2 = track.filter.centre_distance2(box)
        if distance2 > _GATE_CHI2:
            return math.inf
        return 1.0 - self.match_iou * (1.0 - math.sqrt(distance2 / _GATE_CHI2))


_NO_MATCH = 1e6
"""Stands in for a forbidden pair in the assignment; such pairs are dropped afterwards."""


def _iou(box: np.ndarray, other: Detection) -> float:
    inter_w = min(box[2], other.x2) - max(box[0], other.x1)
    inter_h = min(box[3], other.y2) - max(box[1], other.y1)
    if inter_w <= 0 or inter_h <= 0:
        return 0.0
    inter = inter_w * inter_h
    union = (box[2] - box[0]) * (box[3] - box[1]) + other.width * other.height - inter
    return float(inter / union)


def _sizes_agree(observed: float, predicted: float) -> bool:
    return 1 / _MAX_SIZE_RATIO <= observed / predicted <= _MAX_SIZE_RATIO


def _trackable(box: Detection) -> bool:
    values = (box.x1, box.y1, box.x2, box.y2, box.score)
    return all(math.isfinite(v) for v in values) and box.width > 0 and box.height > 0
