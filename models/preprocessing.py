"""How a re-ID network wants its input: size, channel order, pixel scale, mean and std.

Every embedder backend (PyTorch, ONNX Runtime, OpenVINO) takes the same description, and a
model card records it, so the same weights get the same input whichever runtime runs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Preprocessing(BaseModel):
    """``input_size`` is (W, H); ``mean``/``std`` apply after ``scale``, in ``channel_order``."""

    model_config = ConfigDict(frozen=True)

    input_size: tuple[int, int] = (128, 256)
    channel_order: Literal["rgb", "bgr"] = "rgb"
    scale: float = 1 / 255
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: Literal["linear", "area"] = Field(
        "linear", description="resize filter; 'linear' is what torchreid's transforms use"
    )

    def to_nchw(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """BGR uint8 crops of any size -> float32 (N, 3, H, W) batch, normalised."""
        width, height = self.input_size
        flag = cv2.INTER_LINEAR if self.interpolation == "linear" else cv2.INTER_AREA
        batch = np.empty((len(crops), height, width, 3), dtype=np.float32)
        for i, crop in enumerate(crops):
            image = cv2.resize(crop, (width, height), interpolation=flag)
            if self.channel_order == "rgb":
                image = image[:, :, ::-1]
            batch[i] = image
        batch *= np.float32(self.scale)
        batch -= np.asarray(self.mean, dtype=np.float32)
        batch /= np.asarray(self.std, dtype=np.float32)
        return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))


TORCHREID = Preprocessing()
OPENVINO_OMZ = Preprocessing(channel_order="bgr", scale=1.0, mean=(0, 0, 0), std=(1, 1, 1))
