"""Which person detector an ingest uses: ``mog2`` (the no-weights default for fixed cameras) or a
YOLOX-style ONNX file the user supplies. A factory, because the background model is per camera."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from reunite.errors import InvalidOptionError
from reunite.pipeline.detection import PersonDetector

DEFAULT_DETECTOR = "mog2"


def detector_factory(
    spec: str = DEFAULT_DETECTOR, *, tile: bool = False
) -> Callable[[], PersonDetector]:
    if spec == DEFAULT_DETECTOR:
        from reunite.pipeline.background import BackgroundSubtractionDetector

        return BackgroundSubtractionDetector
    path = Path(spec).expanduser()
    if path.suffix.lower() != ".onnx" or not path.is_file():
        raise InvalidOptionError(
            f"--detector {spec!r}: use 'mog2' (background subtraction, no weights) or the path of "
            "a YOLOX-style person-detection .onnx export"
        )
    from reunite.pipeline.detection import OnnxYoloxDetector

    detector = OnnxYoloxDetector(path, tile=tile)  # stateless: one instance serves every source
    return lambda: detector
