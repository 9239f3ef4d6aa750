"""The two losses of the standard re-ID recipe: identity and batch-hard triplet."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def label_smoothed_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, epsilon: float = 0.1
) -> torch.Tensor:
    """Cross-entropy with label smoothing (Szegedy et al. 2016): keeps the classifier from
    becoming over-confident on training identities, which helps on unseen ones."""
    return F.cross_entropy(logits.float(), labels, label_smoothing=epsilon)


def batch_hard_triplet(
    features: torch.Tensor, labels: torch.Tensor, margin: float = 0.3
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch-hard triplet loss (Hermans et al. 2017): for each anchor the farthest positive and
    the nearest negative of the batch. Returns (loss, fraction of anchors whose hardest triplet
    is already satisfied).

    Distances are between L2-normalised features (0..2), the geometry the embeddings are
    searched in. On raw features a freshly initialised network has distances in the tens, and
    the cheapest way to cut the loss is to shrink every feature to zero, the "collapse" in
    which the loss sits at the margin and nothing is learned (seen here with OSNet, whose
    embedding ends in a ReLU that then dies).
    """
    f = F.normalize(features.float(), dim=1)
    dist = torch.cdist(f, f).clamp_min(1e-12)
    same = labels[:, None] == labels[None, :]
    hardest_positive = (dist * same).max(dim=1).values
    hardest_negative = dist.masked_fill(same, float("inf")).min(dim=1).values
    loss = F.relu(hardest_positive - hardest_negative + margin).mean()
    satisfied = (hardest_negative > hardest_positive).float().mean()
    return loss, satisfied
