"""The re-ID model the pipeline embeds with, and the version string every stored vector carries.

Vectors from different models live in different spaces: the version string keeps them apart in
the database (``Embedding.model``) and in the index (one index version per model), so a reindex
with a new model never mixes the two.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from reunite.models.embedder import Embedder
from reunite.models.registry import DEFAULT_MODEL, Registry, load_embedder


@dataclass(frozen=True, slots=True)
class EmbeddingModel:
    """An embedder and the version of its vectors, e.g. ``reunite-mobilenetv2-synth@1.0.0``."""

    embedder: Embedder
    version: str

    @property
    def dim(self) -> int:
        return self.embedder.dim


def model_version(spec: str | Path, registry: Registry) -> str:
    """A stable version string for a ``--model`` value: name@version for registry models (the card
    pins the weights' sha256), name#sha256-prefix for loose files, so retrained weights saved
    under the same file name still count as another model."""
    text = DEFAULT_MODEL if str(spec) == "default" else str(spec)
    entry = registry.find(text)
    if entry is not None:
        return f"{entry.card.name}@{entry.card.version}"
    path = Path(text).expanduser()
    if path.is_dir():
        from reunite.models.model_card import ModelCard

        card = ModelCard.read(path)
        return f"{card.name}@{card.version}"
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"{path.stem}#{digest.hexdigest()[:12]}"


def load_embedding_model(
    spec: str | Path = "default", *, data_dir: Path | None = None, batch_size: int = 64
) -> EmbeddingModel:
    """Load the embedder a ``--model`` value names (see ``registry.load_embedder``)."""
    registry = Registry(data_dir=data_dir) if data_dir is not None else Registry.default()
    embedder = load_embedder(spec, batch_size=batch_size, registry=registry)
    return EmbeddingModel(embedder, model_version(spec, registry))
