"""The 인상착의 attribute model: calibrated per-attribute probabilities from a person crop.

It is a small multi-head network on the shipped re-ID model's embedding (frozen): the embedding
already encodes clothing colour and shape, body build and carried things — what tells people
apart — so a head of a few hundred thousand weights trains in seconds on precomputed embeddings,
and during ingest it costs nothing extra, because the crops are embedded anyway. Measured on the
synthetic test split, the re-ID embedding did as well as the backbone's 1280-d pooled map, its
3-stripe part pooling, or those plus a Lab colour thumbnail (``scripts/train_attributes.py``).

Exclusive fields get a softmax, accessories independent sigmoids. Each field's logits are divided
by a temperature fitted on a held-out split (Guo et al., "On Calibration of Modern Neural
Networks", ICML 2017), so that a 0.7 means right seven times in ten: the description search
multiplies these probabilities, and over-confident ones would let one field decide a ranking.

The model is saved as ``attributes.json`` (an ``AttributeCard``, the model-card conventions of
``model_card.py``) beside ``weights.pt`` in ``models/zoo/<name>/``; it has no ``card.json``, so the
re-ID registry does not list it as an embedder.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torch import nn

from reunite.errors import ModelCardError, ModelIntegrityError, ModelNotFoundError
from reunite.models.attributes import ACCESSORIES, FIELDS
from reunite.models.embedder import Embedder
from reunite.models.model_card import MODEL_NAME, write_atomically

ATTRIBUTE_CARD = "attributes.json"
DEFAULT_ATTRIBUTE_MODEL = "reunite-attributes-synth"
ZOO_DIR = Path(__file__).resolve().parent / "zoo"


class AttributeCard(BaseModel):
    """What an attribute model is, what it reads, its calibration and how good it is."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=MODEL_NAME.pattern)
    version: str = "1.0.0"
    architecture: str = "mlp_on_reid_embedding"
    backbone: str = Field(description="re-ID model whose embeddings it reads (registry name)")
    backbone_version: str = Field(description="name@version of that model, as the index records")
    input_dim: int = Field(gt=0)
    hidden: int = Field(gt=0)
    fields: dict[str, list[str]]
    accessories: list[str]
    temperatures: dict[str, float]
    weights: str = "weights.pt"
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    licence: str
    description: str
    training: dict[str, Any] = {}
    metrics: dict[str, Any] = {}

    @classmethod
    def read(cls, folder: Path) -> AttributeCard:
        path = Path(folder) / ATTRIBUTE_CARD
        try:
            return cls.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise ModelNotFoundError(f"no {ATTRIBUTE_CARD} in {folder}") from None
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'card'}: {e['msg']}" for e in error.errors()
            )
            raise ModelCardError(f"{path} is not a valid attribute card: {problems}") from error

    def write(self, folder: Path) -> Path:
        return write_atomically(
            Path(folder) / ATTRIBUTE_CARD, self.model_dump_json(indent=2) + "\n"
        )

    @property
    def model_version(self) -> str:
        """``name@version``: stored with every sighting's attributes."""
        return f"{self.name}@{self.version}"


class AttributeHead(nn.Module):
    """Standardise the embedding, one shared hidden layer, then one linear head per field."""

    def __init__(self, input_dim: int, hidden: int = 256) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(input_dim))
        self.register_buffer("std", torch.ones(input_dim))
        self.trunk = nn.Sequential(
            nn.Dropout(0.2),
            nn.Linear(input_dim, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Dropout(0.3),
        )
        self.heads = nn.ModuleDict({f: nn.Linear(hidden, len(v)) for f, v in FIELDS.items()})
        self.accessories = nn.Linear(hidden, len(ACCESSORIES))

    def forward(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        z = self.trunk((x - self.mean) / self.std)
        return {f: head(z) for f, head in self.heads.items()}, self.accessories(z)


@dataclass
class AttributeProbabilities:
    """Calibrated probabilities for N crops: (N, K) per exclusive field, (N, A) accessories."""

    fields: dict[str, np.ndarray]
    accessories: np.ndarray

    def __len__(self) -> int:
        return len(self.accessories)

    def row(self, i: int, digits: int = 4) -> dict[str, dict[str, float]]:
        """One crop's probabilities as JSON-ready ``{field: {value: p}}`` (and ``accessories``)."""
        out = {
            f: {v: round(float(p), digits) for v, p in zip(FIELDS[f], probs[i], strict=True)}
            for f, probs in self.fields.items()
        }
        out["accessories"] = {
            a: round(float(p), digits)
            for a, p in zip(ACCESSORIES, self.accessories[i], strict=True)
        }
        return out

    def aggregate(self, weights: Sequence[float] | np.ndarray) -> AttributeProbabilities:
        """The weighted mean over the crops (one row): a sighting's attributes from its crops.

        A mixture of the crops' distributions, not a product: one blurred or occluded crop
        widens the sighting's distribution instead of vetoing the others."""
        w = np.asarray(weights, dtype=np.float64)
        if len(w) != len(self) or len(w) == 0:
            raise ValueError(f"need one weight per crop ({len(self)}), got {len(w)}")
        if not np.any(w > 0):
            w = np.ones_like(w)
        w = w / w.sum()
        return AttributeProbabilities(
            {f: (w[:, None] * p).sum(0, keepdims=True) for f, p in self.fields.items()},
            (w[:, None] * self.accessories).sum(0, keepdims=True),
        )


def calibrated(
    head: AttributeHead, x: torch.Tensor, temperatures: dict[str, float]
) -> AttributeProbabilities:
    """Run ``head`` (eval mode) and turn its logits into temperature-scaled probabilities."""
    head.eval()
    with torch.inference_mode():
        logits, acc = head(x)
    fields = {
        f: torch.softmax(z / temperatures.get(f, 1.0), dim=1).double().numpy()
        for f, z in logits.items()
    }
    t_acc = torch.tensor([temperatures.get(f"accessory:{a}", 1.0) for a in ACCESSORIES])
    return AttributeProbabilities(fields, torch.sigmoid(acc / t_acc).double().numpy())


class AttributeModel:
    """Crops (or the backbone's embeddings of them) in, ``AttributeProbabilities`` out."""

    def __init__(
        self, card: AttributeCard, head: AttributeHead, backbone: Embedder | None = None
    ) -> None:
        self.card = card
        self.head = head.eval()
        self._backbone = backbone

    @property
    def version(self) -> str:
        return self.card.model_version

    @property
    def backbone_version(self) -> str:
        return self.card.backbone_version

    @property
    def backbone(self) -> Embedder:
        """The re-ID embedder the head reads, loaded on first use (ingest usually has it)."""
        if self._backbone is None:
            from reunite.models.registry import Registry

            self._backbone = Registry().load(self.card.backbone)
        return self._backbone

    @classmethod
    def load(
        cls, spec: str | Path = DEFAULT_ATTRIBUTE_MODEL, backbone: Embedder | None = None
    ) -> AttributeModel:
        """A zoo model by name or a folder holding ``attributes.json``; weights verified."""
        folder = Path(spec) if Path(spec).is_dir() else ZOO_DIR / str(spec)
        if not (folder / ATTRIBUTE_CARD).is_file():
            raise ModelNotFoundError(
                f"no attribute model {str(spec)!r}: expected a folder with {ATTRIBUTE_CARD} "
                f"(shipped: {DEFAULT_ATTRIBUTE_MODEL})"
            )
        card = AttributeCard.read(folder)
        weights = folder / card.weights
        if not weights.is_file():
            raise ModelIntegrityError(f"{weights} is missing; the card of {card.name} needs it")
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()
        if digest != card.sha256:
            raise ModelIntegrityError(
                f"{weights} is corrupt or replaced: sha256 {digest}, the card expects "
                f"{card.sha256}; restore the file or retrain with scripts/train_attributes.py"
            )
        if card.fields != {f: list(v) for f, v in FIELDS.items()} or card.accessories != list(
            ACCESSORIES
        ):
            raise ModelCardError(
                f"{folder / ATTRIBUTE_CARD} was trained on another vocabulary than "
                "reunite.models.attributes; retrain it"
            )
        head = AttributeHead(card.input_dim, card.hidden)
        state = torch.load(weights, map_location="cpu", weights_only=True)
        head.load_state_dict({k: v.float() for k, v in state.items()})
        return cls(card, head, backbone)

    def predict(self, crops: Sequence[np.ndarray]) -> AttributeProbabilities:
        """Probabilities for BGR uint8 crops of any size (embedded with the backbone first)."""
        if len(crops) == 0:
            return self.predict_embeddings(np.zeros((0, self.card.input_dim), np.float32))
        return self.predict_embeddings(self.backbone.embed(crops))

    def predict_embeddings(self, embeddings: np.ndarray) -> AttributeProbabilities:
        """Probabilities from the backbone's L2-normalised embeddings, (N, input_dim)."""
        x = np.asarray(embeddings, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.card.input_dim:
            raise ValueError(
                f"expected ({self.card.input_dim})-d embeddings of {self.card.backbone_version}, "
                f"got shape {x.shape}"
            )
        return calibrated(self.head, torch.from_numpy(x), self.card.temperatures)
