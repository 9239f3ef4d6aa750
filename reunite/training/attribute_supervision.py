"""Attribute supervision while training re-ID: the network also learns to name each identity's
인상착의 (age group, gender, kind and colour of top and bottom, sleeves, carried things).

This is the attribute-and-identity multi-task idea of Lin et al., "Improving person
re-identification by attribute and identity learning" (Pattern Recognition 2019): attribute
labels are shared by many identities, so they give the backbone a dense signal towards cues that
identity classification alone is slow to find. Why it seemed worth trying here: on the
validation split of seed 206, 7.0.0's wrong rank-1 matches in daylight differ from the query's
person in age group (38 %), gender (46 %) or kind of top (63 %), and a head trained on 7.0.0's
frozen embedding tells gender right only 66 % of the time (chance: 50 %). Measured, it did not
help: fine-tuning 7.0.0 with weights 1 and 4 lost 2 and 5 points of rank-1 against the same run
without it (README, RUN16-17), and the heads reached only 62 % on gender, so in these crops
much of what the description records is hardly visible.

The labels come from the ground truth that ``reunite synth reid`` writes (``identities.json``),
through the same vocabulary as the attribute model (``reunite.models.attributes``). Identities
the file does not describe get no attribute loss. The heads are linear, read the triplet feature
(before the BNNeck, which is an invertible per-dimension affine map of it), and are used only in
training: the exported network is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from reunite.errors import DatasetLayoutError
from reunite.evaluation.subgroups import IDENTITIES_FILE, identity_attributes
from reunite.models.attribute_training import encode
from reunite.models.attributes import ACCESSORIES, FIELDS, Labels

# the accessories' BCE counts as this many exclusive fields, as in the attribute model's loss
ACCESSORY_WEIGHT = len(ACCESSORIES) / 2


@dataclass(frozen=True)
class AttributeTargets:
    """Per training class: ``fields[f]`` (C,) value index or -1 (unknown or undefined),
    ``accessories`` (C, A) 0/1, ``described`` (C,) whether the data describes the class."""

    fields: dict[str, torch.Tensor]
    accessories: torch.Tensor
    described: torch.Tensor

    @classmethod
    def from_labels(cls, labels: Sequence[Labels | None]) -> AttributeTargets:
        blank = Labels(dict.fromkeys(FIELDS), frozenset())
        y, a = encode([label or blank for label in labels])
        return cls(
            {f: torch.from_numpy(v) for f, v in y.items()},
            torch.from_numpy(a),
            torch.tensor([label is not None for label in labels]),
        )


def read_identity_labels(folder: Path) -> dict[int, Labels]:
    """pid -> true attributes, from a re-ID set's ``identities.json``.

    Raises DatasetLayoutError when the set does not describe its identities' clothing:
    attribute supervision needs the ground truth of every folder it trains on.
    """
    labels = identity_attributes(folder)
    if labels is None:
        raise DatasetLayoutError(
            f"--attribute-loss needs {Path(folder) / IDENTITIES_FILE} with each identity's "
            "clothing, as `reunite synth reid` writes it"
        )
    return labels


class AttributeHeads(nn.Module):
    """One linear head per exclusive field and one for the accessories, on the re-ID feature."""

    def __init__(self, feature_dim: int) -> None:
        super().__init__()
        self.fields = nn.ModuleDict({f: nn.Linear(feature_dim, len(v)) for f, v in FIELDS.items()})
        self.accessories = nn.Linear(feature_dim, len(ACCESSORIES))

    def loss(self, features: torch.Tensor, targets: AttributeTargets, labels: torch.Tensor):
        """Mean loss per field over the batch's described identities (0 when none is): the
        cross-entropy of each field with a known value, and the accessories' BCE weighted as
        ``ACCESSORY_WEIGHT`` fields."""
        keep = targets.described[labels]
        if not bool(keep.any()):
            return features.sum() * 0.0
        x, labels = features[keep].float(), labels[keep]
        terms, weights = [], []
        for field, head in self.fields.items():
            y = targets.fields[field][labels]
            if bool((y >= 0).any()):
                terms.append(F.cross_entropy(head(x), y, ignore_index=-1))
                weights.append(1.0)
        bce = F.binary_cross_entropy_with_logits(self.accessories(x), targets.accessories[labels])
        terms.append(bce * ACCESSORY_WEIGHT)
        weights.append(ACCESSORY_WEIGHT)
        return torch.stack(terms).sum() / sum(weights)
