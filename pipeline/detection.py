"""Person detection: a BGR frame in, person boxes in frame pixels out.

``PersonDetector`` is the stage contract; ``OnnxYoloxDetector`` implements it for YOLOX-style ONNX
exports (anchor-free heads at strides 8/16/32, COCO classes, person = 0) on CPU with onnxruntime.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np
import onnxruntime as ort

from reunite.errors import InvalidOptionError, ReuniteError

PERSON_CLASS = 0
"""COCO class index of "person"; YOLOX exports keep COCO's order."""

_STRIDES = (8, 16, 32)
_PAD_VALUE = 114
_EDGE_MARGIN_PX = 8.0
"""How close (in model-input pixels) a tile detection may come to an inner tile edge before it is
taken as a person cut in two by the tile and dropped; the overlap gives another view of them."""
_MAX_RAW_BOX_VALUE = 32.0
"""Raw box outputs are cell offsets and log sizes in grid units, a few units at most for any box
inside the input; pixel coordinates from an export that decodes in the graph exceed this."""


class DetectorModelError(ReuniteError):
    """The detector model is missing, unreadable, or not a YOLOX-style export with raw output."""


@dataclass(frozen=True, slots=True)
class Detection:
    """One person box in the pixel coordinates of the frame it was found in (x2, y2 exclusive)."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    def as_xywh(self) -> tuple[float, float, float, float]:
        """Top-left corner and size, the form MOTChallenge files and OpenCV use."""
        return self.x1, self.y1, self.width, self.height


class PersonDetector(Protocol):
    """The detection stage: any model that finds people in a frame."""

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        """Return the people in an HxWx3 uint8 BGR frame, best score first."""
        ...


@runtime_checkable
class StatefulDetector(PersonDetector, Protocol):
    """A detector that learns about its camera as frames come (the background detector): its
    learnt state is saved with each ingest checkpoint and restored on resume."""

    def state(self) -> dict[str, Any]:
        """What was learnt, as JSON-ready data."""
        ...

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from ``state()`` of an earlier detector on the same camera."""
        ...


def tile_spans(length: int, count: int, overlap: float) -> list[tuple[int, int]]:
    """Split ``length`` pixels into ``count`` spans that overlap by ``overlap`` of a span.

    The spans cover the whole length exactly: the first starts at 0 and the last ends at ``length``.
    """
    span = length / (count - (count - 1) * overlap)
    step = span * (1.0 - overlap)
    return [(round(i * step), min(length, round(i * step + span))) for i in range(count)]


class OnnxYoloxDetector:
    """Finds people with a YOLOX-style ONNX model, optionally on overlapping tiles too.

    The model must give *raw* head output ``[1, N, 5 + C]`` (box offsets in grid units, then
    objectness and class scores, which YOLOX already passes through a sigmoid inside the graph),
    with N the number of grid cells at strides 8/16/32. Exports with the decoding built in are
    refused with a clear error rather than decoded twice.

    Why tiles: at a 416 input a 1920x1080 frame shrinks 4.6 times, so a 60-pixel-tall pedestrian
    becomes 13 pixels, below what a nano model resolves. With ``tile=True`` the frame is also cut
    into ``tile_grid`` (rows, cols) tiles overlapping by ``tile_overlap`` of a tile, each
    letterboxed to the model input. The default 2x3 suits landscape CCTV: on 16:9 a tile is near
    square (738x600 for 1080p), so it fills a square input with little grey padding and people
    appear 2.6x larger than in the full frame; 2x2 tiles stay 16:9 and gain only 1.8x for one model
    run less (seven runs a frame against five). The full frame is still run because people larger
    than the overlap are cut by some tile edge: tile boxes touching an inner tile edge are dropped,
    since any person no larger than the overlap whom one tile cuts lies whole in its neighbour, and
    larger people are left to the full-frame pass. All views are merged with one NMS.
    """

    def __init__(
        self,
        model_path: Path | str,
        input_size: int | tuple[int, int] | None = None,
        score_threshold: float = 0.3,
        nms_iou: float = 0.45,
        tile: bool = False,
        tile_grid: tuple[int, int] = (2, 3),
        tile_overlap: float = 0.2,
        threads: int = 2,
    ) -> None:
        """Load the model.

        ``input_size`` is the model input as one side or (width, height); None takes the model's
        own static size, or 416 when its input is dynamic. A static model accepts only its size.
        """
        if not 0.0 <= score_threshold <= 1.0:
            raise InvalidOptionError(f"score_threshold must be in [0, 1], got {score_threshold}")
        if not 0.0 < nms_iou <= 1.0:
            raise InvalidOptionError(f"nms_iou must be in (0, 1], got {nms_iou}")
        if min(tile_grid) < 1:
            raise InvalidOptionError(f"tile_grid rows and cols must be >= 1, got {tile_grid}")
        if not 0.0 <= tile_overlap < 1.0:
            raise InvalidOptionError(f"tile_overlap must be in [0, 1), got {tile_overlap}")
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.tile = tile
        self.tile_grid = tile_grid
        self.tile_overlap = tile_overlap
        self._session = _open_session(Path(model_path), threads)
        self._input_name = self._session.get_inputs()[0].name
        self.input_width, self.input_height = _resolve_input_size(self._session, input_size)
        self._grid, self._stride = _make_grid(self.input_width, self.input_height)

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        """Return the people in an HxWx3 uint8 BGR frame, best score first."""
        if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3 or frame_bgr.dtype != np.uint8:
            raise ValueError(
                f"expected an HxWx3 uint8 BGR frame, got {frame_bgr.shape} {frame_bgr.dtype}"
            )
        height, width = frame_bgr.shape[:2]
        boxes, scores = self._detect_view(frame_bgr)
        if self.tile:
            all_boxes, all_scores = [boxes], [scores]
            rows, cols = self.tile_grid
            for y0, y1 in tile_spans(height, rows, self.tile_overlap):
                for x0, x1 in tile_spans(width, cols, self.tile_overlap):
                    tile_boxes, tile_scores = self._detect_view(frame_bgr[y0:y1, x0:x1])
                    keep = self._away_from_inner_edges(tile_boxes, (x0, y0, x1, y1), width, height)
                    all_boxes.append(tile_boxes[keep] + np.array([x0, y0, x0, y0], np.float32))
                    all_scores.append(tile_scores[keep])
            boxes, scores = np.concatenate(all_boxes), np.concatenate(all_scores)
        return self._nms(boxes, scores)

    def _detect_view(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Person boxes (K, 4) xyxy in ``image`` pixels and their scores, before NMS."""
        blob, scale = self._letterbox(image)
        (raw,) = self._session.run(None, {self._input_name: blob})
        boxes, scores = self._decode(raw)
        boxes /= scale
        height, width = image.shape[:2]
        np.clip(boxes, 0, [width, height, width, height], out=boxes)
        return boxes, scores

    def _letterbox(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """Resize keeping the aspect ratio, place top-left on a 114-grey canvas, as YOLOX trains."""
        height, width = image.shape[:2]
        scale = min(self.input_width / width, self.input_height / height)
        new_w, new_h = max(1, int(width * scale)), max(1, int(height * scale))
        canvas = np.full((self.input_height, self.input_width, 3), _PAD_VALUE, np.uint8)
        canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        return canvas.transpose(2, 0, 1)[None].astype(np.float32), scale

    def _decode(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Turn raw head output into person boxes (xyxy, input pixels) above the score threshold."""
        if raw.ndim != 3 or raw.shape[0] != 1 or raw.shape[2] < 5 + PERSON_CLASS + 1:
            raise DetectorModelError(
                f"model output has shape {list(raw.shape)}; expected [1, N, 5 + classes]"
            )
        if raw.shape[1] != len(self._grid):
            raise DetectorModelError(
                f"model output has {raw.shape[1]} rows but a {self.input_width}x"
                f"{self.input_height} input has {len(self._grid)} grid cells at strides "
                f"{_STRIDES}: is this a YOLOX export with raw (undecoded) output?"
            )
        pred = raw[0]
        scores = pred[:, 4] * pred[:, 5 + PERSON_CLASS]
        keep = scores >= self.score_threshold
        pred, scores = pred[keep], scores[keep]
        if len(pred) and np.abs(pred[:, :4]).max() > _MAX_RAW_BOX_VALUE:
            raise DetectorModelError(
                "model box output holds pixel-sized values: this export decodes boxes in the "
                "graph; export YOLOX with raw head output (decoding in inference turned off)"
            )
        centres = (pred[:, :2] + self._grid[keep]) * self._stride[keep]
        sizes = np.exp(pred[:, 2:4]) * self._stride[keep]
        boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)
        return boxes.astype(np.float32), scores.astype(np.float32)

    def _away_from_inner_edges(
        self, boxes: np.ndarray, tile: tuple[int, int, int, int], width: int, height: int
    ) -> np.ndarray:
        """Mask of tile boxes that do not touch a tile edge lying inside the frame."""
        x0, y0, x1, y1 = tile
        margin = _EDGE_MARGIN_PX / min(self.input_width / (x1 - x0), self.input_height / (y1 - y0))
        keep = np.ones(len(boxes), bool)
        if x0 > 0:
            keep &= boxes[:, 0] > margin
        if y0 > 0:
            keep &= boxes[:, 1] > margin
        if x1 < width:
            keep &= boxes[:, 2] < (x1 - x0) - margin
        if y1 < height:
            keep &= boxes[:, 3] < (y1 - y0) - margin
        return keep

    def _nms(self, boxes: np.ndarray, scores: np.ndarray) -> list[Detection]:
        """Non-maximum suppression; one class (person), so class-aware NMS is plain NMS."""
        if len(boxes) == 0:
            return []
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
        kept = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), self.score_threshold, self.nms_iou)
        order = sorted(np.asarray(kept, int).ravel(), key=lambda i: -scores[i])
        return [Detection(*map(float, boxes[i]), score=float(scores[i])) for i in order]


def _open_session(model_path: Path, threads: int) -> ort.InferenceSession:
    if not model_path.is_file():
        raise DetectorModelError(f"detector model not found: {model_path}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    # onnxruntime's error types derive from Exception directly, with no common base of their own.
    except Exception as error:
        raise DetectorModelError(f"cannot load detector model {model_path}: {error}") from error
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(inputs[0].shape) != 4 or len(outputs) != 1:
        raise DetectorModelError(
            f"{model_path} is not a YOLOX-style detector: expected one input [1, 3, H, W] and one "
            f"output [1, N, 5 + classes], got inputs {[i.shape for i in inputs]} and outputs "
            f"{[o.shape for o in outputs]}"
        )
    out_shape = outputs[0].shape
    if len(out_shape) != 3 or (isinstance(out_shape[2], int) and out_shape[2] < 6):
        raise DetectorModelError(
            f"{model_path} output has shape {out_shape}; expected [1, N, 5 + classes] raw YOLOX "
            "head output"
        )
    return session


def _resolve_input_size(
    session: ort.InferenceSession, requested: int | tuple[int, int] | None
) -> tuple[int, int]:
    """The (width, height) to run at: the model's static size, or the requested one if dynamic."""
    _, _, model_h, model_w = session.get_inputs()[0].shape
    static = isinstance(model_h, int) and isinstance(model_w, int)
    if requested is None:
        return (model_w, model_h) if static else (416, 416)
    width, height = (requested, requested) if isinstance(requested, int) else requested
    if static and (width, height) != (model_w, model_h):
        raise InvalidOptionError(
            f"the model has a static {model_w}x{model_h} input; input_size {width}x{height} needs "
            "an export with dynamic height and width"
        )
    if width % _STRIDES[-1] or height % _STRIDES[-1] or min(width, height) <= 0:
        raise InvalidOptionError(
            f"input_size {width}x{height} must be positive multiples of {_STRIDES[-1]}"
        )
    return width, height


def _make_grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell offsets (N, 2) and strides (N, 1) in the head's output order: by stride, row-major."""
    grids, strides = [], []
    for stride in _STRIDES:
        ys, xs = np.mgrid[0 : height // stride, 0 : width // stride]
        grids.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        strides.append(np.full((xs.size, 1), stride))
    return np.concatenate(grids).astype(np.float32), np.concatenate(strides).astype(np.float32)
