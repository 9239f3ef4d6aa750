"""Any PyTorch re-ID network as an ``Embedder``: preprocess, run in batches, L2-normalise."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from reunite.models.embedder import embed_in_batches
from reunite.models.preprocessing import Preprocessing


class TorchReidEmbedder:
    """Wraps a network whose eval-mode ``forward`` returns (N, dim) embeddings.

    The network is put in eval mode (batch norm uses its running statistics, no classifier
    output), and run without gradients on ``device``; ``flip`` averages the embedding of the crop
    and its mirror image, the usual cheap test-time augmentation for re-ID.
    """

    def __init__(
        self,
        network: nn.Module,
        preprocessing: Preprocessing,
        name: str,
        batch_size: int = 64,
        device: str | torch.device = "cpu",
        flip: bool = False,
    ) -> None:
        self.network = network.eval().to(device)
        self.preprocessing = preprocessing
        self.name = name
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.flip = flip
        width, height = preprocessing.input_size
        with torch.inference_mode():
            probe = torch.zeros(2, 3, height, width, device=self.device)
            self.dim = int(self.network(probe).shape[1])

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        return embed_in_batches(
            crops,
            self.dim,
            self.batch_size,
            self.preprocessing.to_nchw,
            lambda batch: self.embed_tensor(torch.from_numpy(batch)),
        )

    @torch.inference_mode()
    def embed_tensor(self, batch: torch.Tensor) -> np.ndarray:
        """Raw (not yet normalised) embeddings of a preprocessed NCHW batch."""
        batch = batch.to(self.device)
        features = self.network(batch)
        if self.flip:
            features = features + self.network(batch.flip(3))
        return features.float().cpu().numpy()
