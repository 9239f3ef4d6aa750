"""Imprint a fresh identity classifier from the start network's own embeddings.

A fine-tune on new identities (``--init-from``) gets a classifier initialised at random: with
10 000+ identities its identity loss stays at chance (ln C) for the first epochs, and the
backbone learns from noise while it should refine. Weight imprinting (Qi, Brown and Lowe, "Low-Shot
Learning with Imprinted Weights", CVPR 2018) sets each identity's classifier row to the direction
of the mean embedding of its crops, so the identity loss is informative from the first step. The
rows share one scale, chosen where it minimises the run's own label-smoothed identity loss on the
imprinting crops.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from reunite.errors import InvalidOptionError
from reunite.models.preprocessing import Preprocessing
from reunite.training.data import TrainingImages, normalise
from reunite.training.losses import label_smoothed_cross_entropy

SCALES = tuple(2.0**k for k in range(-6, 5))  # 1/64 .. 16


@torch.no_grad()
def class_mean_directions(
    network: torch.nn.Module,
    data: TrainingImages,
    preprocessing: Preprocessing,
    device: torch.device,
    batch_size: int = 256,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit-length mean embedding per identity, and every crop's embedding (eval mode, no
    augmentation: the network as it stands before training)."""
    was_training = network.training
    network.eval()
    embeddings = []
    for start in range(0, len(data.labels), batch_size):
        x = normalise(data.pixels[start : start + batch_size].float() / 255.0, preprocessing)
        x = x.to(device, memory_format=torch.channels_last)
        embeddings.append(network(x).float().cpu())
    network.train(was_training)
    features = torch.cat(embeddings)
    sums = torch.zeros(data.num_classes, features.shape[1]).index_add_(0, data.labels, features)
    return F.normalize(sums, dim=1), features


@torch.no_grad()
def imprint_classifier(
    network: torch.nn.Module,
    data: TrainingImages,
    preprocessing: Preprocessing,
    device: torch.device,
    label_smoothing: float,
    sample: int = 4096,
) -> dict[str, float]:
    """Overwrite ``network.classifier`` with scaled class-mean directions; returns the chosen
    scale and the identity loss and accuracy it gives on the imprinting crops."""
    classifier = getattr(network, "classifier", None)
    if not isinstance(classifier, torch.nn.Linear):
        raise InvalidOptionError(
            f"{type(network).__name__} has no linear identity classifier to imprint"
        )
    directions, features = class_mean_directions(network, data, preprocessing, device)
    picked = torch.randperm(len(features), generator=torch.Generator().manual_seed(0))[:sample]
    logits = features[picked] @ directions.T
    labels = data.labels[picked]
    losses = {s: float(label_smoothed_cross_entropy(s * logits, labels, label_smoothing))
              for s in SCALES}  # fmt: skip
    scale = min(losses, key=losses.get)
    classifier.weight.copy_((scale * directions).to(classifier.weight))
    if classifier.bias is not None:  # OSNet's classifier has one; a mean direction needs none
        classifier.bias.zero_()
    accuracy = float((logits.argmax(1) == labels).float().mean())
    return {"scale": scale, "id_loss": losses[scale], "accuracy": accuracy}
