"""Hand-crafted baseline: HSV colour histograms of the upper and lower body.

Clothing colour is what a witness reports ("red jacket, blue jeans") and what survives low CCTV
resolution, so it is the floor any learned model must beat. Each crop is resized to 128x256 (WxH)
and two horizontal bands are described: the upper body (15%-50% of the height, below the head)
and the lower body (50%-90%, above the feet and floor). Each band gets a joint 8x4x4 H-S-V
histogram: 8 hue bins carry the colour; only 4 saturation and 4 value bins, so that the lighting
differences between cameras move a pixel across fewer bins. A joint histogram keeps "red and
bright" together, which three separate channel histograms would not.

Each band's histogram is L1-normalised (band size does not matter) and square-rooted, then the
two are concatenated and L2-normalised: the dot product of two embeddings is then the mean
Bhattacharyya coefficient of the two bands, and cosine distance is ``1 - dot``.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from reunite.models.embedder import check_bgr_crop, l2_normalise

_SIZE = (128, 256)  # W, H
_BANDS = ((0.15, 0.50), (0.50, 0.90))  # fractions of the height: upper body, lower body
_BINS = (8, 4, 4)  # H, S, V
_RANGES = (0, 180, 0, 256, 0, 256)  # OpenCV 8-bit HSV: hue is 0..179


class ColorHistogramEmbedder:
    """Deterministic, training-free embedder: 256-d (2 bands x 8x4x4 bins).

    ``centre_fraction`` < 1 describes only the central part of each band's width: detector boxes
    are loose, and the background at their sides otherwise outweighs the clothes.
    """

    dim = len(_BANDS) * int(np.prod(_BINS))

    def __init__(self, centre_fraction: float = 1.0) -> None:
        if not 0.1 <= centre_fraction <= 1.0:
            raise ValueError(f"centre_fraction must be 0.1..1, got {centre_fraction}")
        self.centre_fraction = centre_fraction
        self.name = (
            "color_histogram"
            if centre_fraction == 1.0
            else f"color_histogram_centre{round(100 * centre_fraction)}"
        )

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        out = np.empty((len(crops), self.dim), dtype=np.float32)
        for i, crop in enumerate(crops):
            check_bgr_crop(crop, i)
            out[i] = self._describe(crop)
        return l2_normalise(out)

    def _describe(self, crop: np.ndarray) -> np.ndarray:
        hsv = cv2.cvtColor(cv2.resize(crop, _SIZE, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2HSV)
        width, height = _SIZE
        x0 = round(width * (1 - self.centre_fraction) / 2)
        parts = []
        for top, bottom in _BANDS:
            band = hsv[round(top * height) : round(bottom * height), x0 : width - x0]
            hist = cv2.calcHist([band], [0, 1, 2], None, list(_BINS), list(_RANGES)).ravel()
            parts.append(np.sqrt(hist / hist.sum()))
        return np.concatenate(parts)
