"""The re-ID model the pipeline embeds with, and the version string every stored vector carries.

Vectors from different models live in different spaces: the version string keeps them apart in
the database (``Embedding.model``) and in the index (one index version per model), so a reindex
with a new model never mixes the two.

The runtime does not change the version. fp32 on PyTorch, ONNX Runtime and OpenVINO gives the
same vectors (cosine >= 0.999), and fp32 is what ``auto`` runs. bf16 and int8 give the same
model's vectors rounded and share its index: for model 1.0.0 the rounding stayed inside the
tolerance the issue sets (1 point of mAP) in every mix of query and gallery precision on the
synthetic test split (fp32 mAP 44.64; bf16 44.55-44.99, int8 43.72-44.93) and the card's
threshold kept its false-positive rate. For 7.0.0, OpenVINO bf16 costs 1.5-2 points of mAP and
lets 1.5 times as many stranger pairs through the card's threshold (see models.backends), so
it is no longer a default; a district that chooses it, or int8, for speed should measure it on
its model first, and reindex in fp32 to get every point back.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from reunite.models.backends import AUTO
from reunite.models.embedder import Embedder
from reunite.models.export import export_record
from reunite.models.model_card import ModelCard
from reunite.models.registry import DEFAULT_MODEL, Registry, load_embedder

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EmbeddingModel:
    """An embedder and the version of its vectors, e.g. ``reunite-mobilenetv2-synth@1.0.0``."""

    embedder: Embedder
    version: str

    @property
    def dim(self) -> int:
        return self.embedder.dim

    @property
    def runtime(self) -> str:
        """What computes the vectors, e.g. ``openvino bf16`` (for logs and job parameters)."""
        backend = getattr(self.embedder, "backend", None) or "torch"
        return f"{backend} {getattr(self.embedder, 'precision', None) or 'fp32'}"


def model_version(spec: str | Path, registry: Registry) -> str:
    """A stable version string for a ``--model`` value: name@version for registry models (the card
    pins the weights' sha256), name#sha256-prefix for loose files, so retrained weights saved
    under the same file name still count as another model."""
    text = DEFAULT_MODEL if str(spec) == "default" else str(spec)
    entry = registry.find(text)
    if entry is not None:
        return _card_version(entry.card)
    path = Path(text).expanduser()
    if path.is_dir():
        return _card_version(ModelCard.read(path))
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"{path.stem}#{digest.hexdigest()[:12]}"


def _card_version(card: ModelCard) -> str:
    """``name@version``; an export (``reunite models export``) counts as its source model."""
    record = export_record(card)
    return str(record["source"]) if record and "source" in record else f"{card.name}@{card.version}"


def load_embedding_model(
    spec: str | Path = "default",
    *,
    data_dir: Path | None = None,
    batch_size: int = 64,
    backend: str | None = AUTO,
    precision: str | None = AUTO,
) -> EmbeddingModel:
    """Load the embedder a ``--model`` value names (see ``registry.load_embedder``) on
    ``backend`` in ``precision`` (``auto``: the fastest measured to give the same ranking, see
    ``reunite.models.backends``; ``None`` for both: the runtime the model comes in).

    When the automatic choice cannot load here (no OpenVINO, an export that fails on this
    machine), the model's own runtime is used and a warning logged; an explicit choice fails.
    """
    registry = Registry(data_dir=data_dir) if data_dir is not None else Registry.default()
    try:
        embedder = load_embedder(
            spec, batch_size=batch_size, registry=registry, backend=backend, precision=precision
        )
    except (ImportError, OSError, RuntimeError) as error:
        if backend not in (None, AUTO):
            raise
        log.warning("the automatic backend cannot load %s (%s); using its own runtime", spec, error)
        embedder = load_embedder(spec, batch_size=batch_size, registry=registry)
    return EmbeddingModel(embedder, model_version(spec, registry))
