"""Any re-ID network exported to ONNX, run on the CPU with onnxruntime.

Exports differ only in their preprocessing, so that is what the constructor takes: input size,
channel order, pixel scale and per-channel mean/std. The defaults fit torchreid exports such as
OSNet (RGB, /255, ImageNet mean/std, 128x256); an OpenVINO-style model wants
``channel_order="bgr", scale=1.0, mean=(0, 0, 0), std=(1, 1, 1)``. The input name, the embedding
size and any fixed batch size are read from the model itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort

from reunite.errors import InvalidOptionError
from reunite.models.embedder import embed_in_batches, pad_to_fixed_batch
from reunite.models.preprocessing import IMAGENET_MEAN, IMAGENET_STD, Preprocessing


class OnnxReidEmbedder:
    """Embeds crops with an ONNX model that takes one NCHW float32 input.

    The model's first output, flattened per image, is the embedding: (N, 512) from a torchreid
    export, or (N, 512, 1, 1) from one that stops at the pooling layer.
    """

    def __init__(
        self,
        model_path: str | Path,
        input_size: tuple[int, int] = (128, 256),
        channel_order: Literal["rgb", "bgr"] = "rgb",
        scale: float = 1 / 255,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        batch_size: int = 32,
        threads: int | None = None,
        name: str | None = None,
    ) -> None:
        """``input_size`` is (W, H); ``mean``/``std`` are in the model's channel order, after scale.
        ``threads``: ONNX Runtime's intra-op threads (None: one per physical core).

        Raises InvalidOptionError for a missing or unreadable model, or preprocessing options that
        contradict the model's input shape.
        """
        path = Path(model_path)
        if not path.is_file():
            raise InvalidOptionError(f"ONNX re-ID model not found: {path}")
        if channel_order not in ("rgb", "bgr"):
            raise InvalidOptionError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
        if batch_size < 1 or (threads is not None and threads < 1):
            raise InvalidOptionError("batch_size and threads must be at least 1")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own untyped errors for bad files
            raise InvalidOptionError(f"cannot load ONNX model {path}: {error}") from error

        model_input = self._session.get_inputs()[0]
        batch, channels, height, width = _nchw(model_input.shape, path)
        if channels not in (3, None) or any(
            fixed not in (wanted, None)
            for fixed, wanted in ((width, input_size[0]), (height, input_size[1]))
        ):
            raise InvalidOptionError(
                f"{path.name} takes input {model_input.shape} (N, C, H, W) but the options say "
                f"3 channels of {input_size[1]}x{input_size[0]} (HxW); set input_size=(W, H)"
            )
        self._input_name = model_input.name
        self.preprocessing = Preprocessing(
            input_size=input_size, channel_order=channel_order, scale=scale,
            mean=tuple(mean), std=tuple(std),
        )  # fmt: skip
        # A model exported with a fixed batch gets exactly that many images per run (padded).
        self._fixed_batch = batch
        self.batch_size = batch or batch_size
        self.name = name or path.stem
        self.backend = "onnxruntime"
        self.precision = "fp32"  # an int8 (Q/DQ) graph is marked by whoever loads it
        feature_shape = self._session.get_outputs()[0].shape[1:]
        if all(isinstance(d, int) for d in feature_shape):
            self.dim = int(np.prod(feature_shape))
        else:  # symbolic sizes: ask the model
            blank = np.zeros((1, 3, input_size[1], input_size[0]), np.float32)
            self.dim = self._run(blank).shape[1]

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        return embed_in_batches(
            crops, self.dim, self.batch_size, self.preprocessing.to_nchw, self._run
        )

    def _run(self, batch: np.ndarray) -> np.ndarray:
        n = len(batch)
        batch = pad_to_fixed_batch(batch, self._fixed_batch)
        features = self._session.run(None, {self._input_name: batch})[0]
        return np.asarray(features, dtype=np.float32).reshape(len(batch), -1)[:n]


def _nchw(shape: Sequence[object], path: Path) -> tuple[int | None, ...]:
    """The input shape with symbolic (dynamic) dimensions as None."""
    if len(shape) != 4:
        raise InvalidOptionError(f"{path.name} input has shape {shape}; expected (N, 3, H, W)")
    return tuple(d if isinstance(d, int) and d > 0 else None for d in shape)
