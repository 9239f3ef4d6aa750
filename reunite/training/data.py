"""Training data: decoded once into memory, sampled P identities x K images, augmented in batch.

On a 2-core machine JPEG decoding and per-image Python transforms would cost more than the
network itself, so every training crop is decoded and resized once into a uint8 tensor, and the
augmentations run on whole batches with tensor ops: flip, pad-and-crop and random erasing as in
the "Bag of Tricks" baseline (Luo et al. 2019), plus two that CCTV asks for: random greyscale
(night cameras switch to infrared and lose colour, so colour must not be the only cue) and
random low resolution (distant people are a few dozen pixels tall and upscaled).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from reunite.errors import DatasetLayoutError
from reunite.evaluation.market1501 import ReidImage
from reunite.models.preprocessing import Preprocessing

log = logging.getLogger(__name__)


@dataclass
class TrainingImages:
    """(N, 3, H, W) uint8 RGB images and their 0..C-1 identity labels.

    ``source_labels[c]`` is the label class ``c`` was given before skipped images could leave
    holes in the numbering.
    """

    pixels: torch.Tensor
    labels: torch.Tensor
    skipped: list[str]
    source_labels: np.ndarray

    @property
    def num_classes(self) -> int:
        return int(self.labels.max()) + 1


def load_training_images(
    images: list[ReidImage],
    preprocessing: Preprocessing,
    progress: Callable[[int, int], None] | None = None,
) -> TrainingImages:
    """Decode and resize every crop; unreadable files are skipped and listed, not fatal."""
    width, height = preprocessing.input_size
    pixels = np.empty((len(images), height, width, 3), dtype=np.uint8)
    labels, skipped, kept = [], [], 0
    for i, image in enumerate(images):
        bgr = cv2.imread(str(image.path), cv2.IMREAD_COLOR)
        if bgr is None or bgr.size == 0:
            skipped.append(image.path.name)
            log.warning("skipping unreadable image", extra={"path": str(image.path)})
            continue
        resized = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_LINEAR)
        pixels[kept] = resized if preprocessing.channel_order == "bgr" else resized[:, :, ::-1]
        labels.append(image.pid)
        kept += 1
        if progress and (i % 200 == 0 or i == len(images) - 1):
            progress(i + 1, len(images))
    if kept == 0:
        raise DatasetLayoutError("no readable training images (all were skipped as corrupt)")
    # labels must stay 0..C-1 without holes after skipping
    source, dense = np.unique(np.asarray(labels), return_inverse=True)
    tensor = torch.from_numpy(pixels[:kept]).permute(0, 3, 1, 2).contiguous()
    return TrainingImages(tensor, torch.from_numpy(dense.astype(np.int64)), skipped, source)


class IdentitySampler:
    """P x K batches: P identities, K images each (with replacement when an identity has fewer),
    which batch-hard triplet mining needs: every anchor has positives and negatives in its
    batch. One epoch visits every identity once (in batches of P).

    With ``class_weights`` (one per label 0..C-1) an epoch has as many batches, but each batch
    draws its P distinct identities with probability in proportion to their weights: a group
    that is rare among the training identities can be drawn as often as a common one.
    """

    def __init__(
        self,
        labels: torch.Tensor,
        p: int,
        k: int,
        seed: int,
        class_weights: np.ndarray | None = None,
    ) -> None:
        self.by_label = [np.flatnonzero(labels.numpy() == c) for c in range(int(labels.max()) + 1)]
        if class_weights is not None:
            if len(class_weights) != len(self.by_label) or not all(map(len, self.by_label)):
                raise ValueError("class_weights needs one weight per label 0..C-1, all present")
            class_weights = np.asarray(class_weights, float) / np.sum(class_weights)
        self.by_label = [idx for idx in self.by_label if len(idx)]
        if len(self.by_label) < 2:
            raise DatasetLayoutError("training needs at least 2 identities")
        self.p = min(p, len(self.by_label))
        self.k = k
        self.seed = seed
        self.class_weights = class_weights

    def batches_per_epoch(self) -> int:
        return len(self.by_label) // self.p

    def epoch(self, epoch: int) -> Iterator[np.ndarray]:
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.by_label)) if self.class_weights is None else None
        for b in range(self.batches_per_epoch()):
            if order is None:
                chosen = rng.choice(len(self.by_label), self.p, replace=False, p=self.class_weights)
            else:
                chosen = order[b * self.p : (b + 1) * self.p]
            yield np.concatenate(
                [
                    rng.choice(self.by_label[c], self.k, replace=len(self.by_label[c]) < self.k)
                    for c in chosen
                ]
            )


@dataclass(frozen=True)
class Augmentation:
    flip: float = 0.5
    pad: int = 10  # pixels at 256 px height; scaled with the input size
    erase: float = 0.5  # random erasing probability (Zhong et al. 2020)
    jitter: float = 0.2  # brightness/contrast jitter amplitude (CCTV exposure varies)
    greyscale: float = 0.0  # probability of dropping colour (infrared night footage)
    low_resolution: float = 0.0  # probability of a down-then-up resize to 30-70 % of the size
    infrared: float = 0.0  # probability of a simulated near-infrared camera (see simulate_infrared)


def augment(
    batch: torch.Tensor, aug: Augmentation, generator: torch.Generator, channel_order: str = "rgb"
) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float (B, 3, H, W) in 0..1 with flip, pad+crop, low resolution,
    jitter, simulated infrared, greyscale and erasing (each per image, with the probabilities
    of ``aug``)."""
    b, _, h, w = batch.shape
    x = batch.float() / 255.0
    rand = lambda *s: torch.rand(*s, generator=generator)  # noqa: E731
    flip = rand(b) < aug.flip
    x[flip] = x[flip].flip(3)
    pad = max(1, round(aug.pad * h / 256))
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    x = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])
    # A zero probability draws no random numbers, so older recipes replay exactly.
    low_res = rand(b) < aug.low_resolution if aug.low_resolution else torch.zeros(b, dtype=bool)
    for i in torch.nonzero(low_res).flatten().tolist():
        scale = float(rand(1)) * 0.4 + 0.3
        small = (max(4, round(h * scale)), max(2, round(w * scale)))
        shrunk = torch.nn.functional.interpolate(x[i : i + 1], small, mode="area")
        x[i] = torch.nn.functional.interpolate(shrunk, (h, w), mode="bilinear")[0]
    if aug.jitter:
        gain = 1 + (rand(b, 1, 1, 1) * 2 - 1) * aug.jitter
        bias = (rand(b, 1, 1, 1) * 2 - 1) * aug.jitter / 2
        x = (x * gain + bias).clamp(0, 1)
    infrared = rand(b) < aug.infrared if aug.infrared else torch.zeros(b, dtype=bool)
    if infrared.any():
        x[infrared] = simulate_infrared(x[infrared], generator)
    grey = rand(b) < aug.greyscale if aug.greyscale else torch.zeros(b, dtype=bool)
    if grey.any():
        luma = [0.299, 0.587, 0.114]  # ITU-R BT.601
        weights = torch.tensor(luma if channel_order == "rgb" else luma[::-1]).view(1, 3, 1, 1)
        x[grey] = (x[grey] * weights).sum(1, keepdim=True).expand(-1, 3, -1, -1)
    for i in torch.nonzero(rand(b) < aug.erase).flatten().tolist():
        area = float(rand(1)) * 0.38 + 0.02
        ratio = float(
            torch.exp(torch.empty(1).uniform_(np.log(0.3), np.log(3.3), generator=generator))
        )
        eh = min(h, max(1, round((area * h * w * ratio) ** 0.5)))
        ew = min(w, max(1, round((area * h * w / ratio) ** 0.5)))
        y0 = int(torch.randint(0, h - eh + 1, (1,), generator=generator))
        x0 = int(torch.randint(0, w - ew + 1, (1,), generator=generator))
        x[i, :, y0 : y0 + eh, x0 : x0 + ew] = rand(3, eh, ew)
    return x


def simulate_infrared(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(N, 3, H, W) colour crops in 0..1 as a random near-infrared camera would see them: grey,
    ``floor + (1 - floor) * sum_c w_c * linear_c ** gamma``, drawn per crop.

    Why not greyscale: an IR camera sees each dye's near-infrared reflectance, not its luma, so
    a dark-red shirt can outshine a light-green one and black cloth turns mid grey. How a real
    camera maps colour to IR brightness is unknown, so every crop gets its own random channel
    weights (Dirichlet(1, 1, 1), from the idea of random channel augmentation for
    visible-infrared re-ID, Ye et al., ICCV 2021), black level (0-35 %) and tone curve (gamma
    0.3-0.8 on linear light): the network has to stop trusting colour order, not learn one map.
    Night footage is also dim and amplified: contrast falls to 40-100 % and grain (std 0-8 %)
    is added.
    """
    n = len(x)
    uniform = lambda *s: torch.rand(*s, generator=generator)  # noqa: E731
    exponentials = -torch.log(uniform(n, 3).clamp_min(1e-12))
    weights = (exponentials / exponentials.sum(1, keepdim=True)).view(n, 3, 1, 1)
    floor = (uniform(n) * 0.35).view(n, 1, 1, 1)
    gamma = (uniform(n) * 0.5 + 0.3).view(n, 1, 1, 1)
    linear = x.clamp(0, 1) ** 2.2  # sRGB codes to linear light, near enough for an augmentation
    grey = floor + (1 - floor) * (weights * linear.clamp_min(1e-6) ** gamma).sum(1, keepdim=True)
    # a dim scene amplified: contrast squeezed towards the crop's mean, then sensor noise
    contrast = (uniform(n) * 0.6 + 0.4).view(n, 1, 1, 1)
    mean = grey.mean((2, 3), keepdim=True)
    noise = torch.randn(grey.shape, generator=generator) * (uniform(n) * 0.08).view(n, 1, 1, 1)
    grey = mean + (grey - mean) * contrast + noise
    return grey.expand(-1, 3, -1, -1).clamp(0, 1)


def normalise(x: torch.Tensor, preprocessing: Preprocessing) -> torch.Tensor:
    """0..1 floats in the model's channel order -> the model's input scale (mean/std)."""
    factor = 255.0 * preprocessing.scale
    mean = torch.tensor(preprocessing.mean).view(1, 3, 1, 1)
    std = torch.tensor(preprocessing.std).view(1, 3, 1, 1)
    return (x * factor - mean) / std
