"""Person recall and precision of a YOLOX ONNX model on the real MOT17-mini frames in ../shared.

Counts pedestrians with visibility > 0.5 (others are ignore regions) at IoU 0.5, on frame 1 of
each sequence (the figure ../shared/README.md quotes) and on every frame, for the native input,
a larger input when the model allows it, and tiling. Prints a Markdown table.

    .venv/bin/python scripts/eval_yolox_mot17.py [--shared ../shared]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import cv2

from reunite.errors import InvalidOptionError
from reunite.evaluation.detection import DetectionCounts, match_detections
from reunite.evaluation.mot import MotSequence, find_mot_sequences
from reunite.pipeline.detection import OnnxYoloxDetector

MIN_VISIBILITY = 0.5
CONFIGS: dict[str, dict[str, Any]] = {
    "native": {},
    "input 640": {"input_size": 640},
    "tiled 2x2": {"tile": True, "tile_grid": (2, 2)},
    "tiled 2x3 (default)": {"tile": True, "tile_grid": (2, 3)},
}


def evaluate(detector: OnnxYoloxDetector, sequences: list[MotSequence]) -> dict[str, Any]:
    """Counts on frame 1, counts on all frames, and the median milliseconds per frame."""
    first = every = DetectionCounts()
    times_ms = []
    for sequence in sequences:
        for number, path in sorted(sequence.frames.items()):
            frame = cv2.imread(str(path))
            start = time.perf_counter()
            dets = detector.detect(frame)
            times_ms.append((time.perf_counter() - start) * 1000)
            counts = match_detections(
                dets, sequence.gt.get(number, []), iou=0.5, min_visibility=MIN_VISIBILITY
            )
            every += counts
            if number == 1:
                first += counts
    return {"first": first, "all": every, "ms": statistics.median(times_ms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared"
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model = args.shared / "models" / "yolox_nano" / "yolox_nano.onnx"
    sequences = find_mot_sequences(args.shared / "data" / "real" / "mot17_mini" / "train")
    frames = sum(len(s.frames) for s in sequences)
    print(f"{len(sequences)} sequences, {frames} frames, model {model.name}\n")

    rows, notes = [], []
    for name, options in CONFIGS.items():
        try:
            detector = OnnxYoloxDetector(model, threads=args.threads, **options)
        except InvalidOptionError as error:
            notes.append(f"- {name}: not run: {error}")
            continue
        result = evaluate(detector, sequences)
        first, every = result["first"], result["all"]
        rows.append(
            f"| {name} | {detector.input_width}x{detector.input_height} "
            f"| {first.recall:.3f} | {first.precision:.3f} "
            f"| {every.recall:.3f} | {every.precision:.3f} | {every.tp}/{every.fp}/{every.fn} "
            f"| {result['ms']:.0f} |"
        )

    print(
        "| config | input | recall f1 | precision f1 | recall all | precision all "
        "| TP/FP/FN all | median ms/frame |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if notes:
        print("\n" + "\n".join(notes))


if __name__ == "__main__":
    main()
