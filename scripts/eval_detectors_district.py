"""Person recall and precision of the detectors on a synthetic district, overall and per camera.

Replays each camera as the ingest pipeline does: frames in order (the district is written at the
sampling rate, 2 fps, so every frame is used), the background detector warmed up on the first
``--warmup`` frames of each chunk of ``--chunk`` frames, then run on every frame of the chunk,
warm-up frames included. People at least 48 pixels tall and more than half visible count; smaller
or more hidden ones are ignore regions (a detection on them is neither right nor wrong). IoU 0.5.
Prints a Markdown table: detector x (recall, precision, TP, FP, FN, ms/frame), overall, per
camera, and by day/night when the district has night cameras.

    .venv/bin/python scripts/eval_detectors_district.py DISTRICT_DIR \
        [--yolox ../shared/models/yolox_nano/yolox_nano.onnx]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from reunite.errors import DatasetLayoutError
from reunite.evaluation.detection import DetectionCounts, match_detections
from reunite.evaluation.mot import load_mot_sequence
from reunite.pipeline.background import BackgroundSubtractionDetector
from reunite.pipeline.detection import OnnxYoloxDetector, PersonDetector

MIN_HEIGHT = 48
MIN_VISIBILITY = 0.5
IOU = 0.5
NIGHT_HOURS = (19.0, 6.0)
"""Local hours from which to which a camera without its own IR illuminator films at night."""
DEFAULT_YOLOX = Path(__file__).resolve().parents[2] / "shared/models/yolox_nano/yolox_nano.onnx"


@dataclass
class Tally:
    """Counts and per-frame detect times of one detector on one camera."""

    counts: DetectionCounts = field(default_factory=DetectionCounts)
    times_ms: list[float] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.counts += other.counts
        self.times_ms += other.times_ms


@dataclass(frozen=True)
class Camera:
    id: int
    folder: Path
    night: bool


def district_cameras(district: Path) -> list[Camera]:
    """The district's cameras with their folders, and whether each films at night."""
    try:
        cameras = json.loads((district / "cameras.json").read_text())
        manifest = json.loads((district / "manifest.json").read_text())
    except (OSError, ValueError) as error:
        raise DatasetLayoutError(
            f"{district} is not a synthetic district (cameras.json, manifest.json): {error}"
        ) from error
    hour = float(manifest.get("hour", 12.0))
    dark = hour >= NIGHT_HOURS[0] or hour < NIGHT_HOURS[1]
    return [
        Camera(c["id"], district / "cameras" / f"c{c['id']}", bool(c.get("night_ir")) or dark)
        for c in cameras
    ]


def run_camera(
    make: Callable[[], PersonDetector], camera: Camera, chunk: int, warmup: int, limit: int | None
) -> Tally:
    """Replay one camera through a fresh detector; warm up stateful ones at each chunk start."""
    sequence = load_mot_sequence(camera.folder)
    numbers = sorted(sequence.frames)[:limit]
    detector = make()
    tally = Tally()
    for start in range(0, len(numbers), chunk):
        numbers_in_chunk = numbers[start : start + chunk]
        frames = [cv2.imread(str(sequence.frames[n])) for n in numbers_in_chunk]
        if hasattr(detector, "warm_up"):
            detector.warm_up(frames[:warmup])
        for number, frame in zip(numbers_in_chunk, frames, strict=True):
            begin = time.perf_counter()
            dets = detector.detect(frame)
            tally.times_ms.append((time.perf_counter() - begin) * 1000)
            tally.counts += match_detections(
                dets,
                sequence.gt.get(number, []),
                iou=IOU,
                min_height=MIN_HEIGHT,
                min_visibility=MIN_VISIBILITY,
            )
    return tally


def row(name: str, scope: str, tally: Tally) -> str:
    c = tally.counts
    ms = statistics.mean(tally.times_ms) if tally.times_ms else float("nan")
    return (
        f"| {name} | {scope} | {c.recall:.3f} | {c.precision:.3f} | {c.tp} | {c.fp} | {c.fn} "
        f"| {ms:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("district", type=Path)
    parser.add_argument("--yolox", type=Path, default=DEFAULT_YOLOX)
    parser.add_argument("--no-yolox", action="store_true", help="evaluate the MOG2 detector only")
    parser.add_argument("--chunk", type=int, default=0, help="frames per chunk (0: whole camera)")
    parser.add_argument("--warmup", type=int, default=10, help="warm-up frames per chunk")
    parser.add_argument("--cameras", type=str, default="", help="comma-separated ids (all)")
    parser.add_argument("--frames", type=int, default=None, help="first N frames per camera")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for every detector")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)

    cameras = district_cameras(args.district)
    if args.cameras:
        wanted = {int(c) for c in args.cameras.split(",")}
        cameras = [c for c in cameras if c.id in wanted]
    detectors: dict[str, Callable[[], PersonDetector]] = {
        "MOG2 (default)": BackgroundSubtractionDetector,
    }
    if not args.no_yolox and args.yolox.is_file():
        native = OnnxYoloxDetector(args.yolox, threads=args.threads)
        tiled = OnnxYoloxDetector(args.yolox, tile=True, threads=args.threads)
        detectors["YOLOX native"] = lambda: native
        detectors["YOLOX tiled 2x3"] = lambda: tiled
    chunk = args.chunk or 10**9

    lines = []
    for name, make in detectors.items():
        total, by_light = Tally(), {False: Tally(), True: Tally()}
        per_camera = []
        for camera in cameras:
            tally = run_camera(make, camera, chunk, args.warmup, args.frames)
            per_camera.append(row(name, f"c{camera.id}", tally))
            total.add(tally)
            by_light[camera.night].add(tally)
        lines.append(row(name, "**all**", total))
        if by_light[True].times_ms:
            lines += [row(name, "day", by_light[False]), row(name, "night", by_light[True])]
        lines += per_camera

    frames = sum(len(t) for t in [])  # placeholder removed below
    del frames
    print(
        f"{args.district}: {len(cameras)} cameras; counted people >= {MIN_HEIGHT} px tall with "
        f"visibility > {MIN_VISIBILITY}, IoU {IOU}; ms/frame = mean detect() time on "
        f"{args.threads} thread(s)\n"
    )
    print("| detector | scope | recall | precision | TP | FP | FN | ms/frame |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
