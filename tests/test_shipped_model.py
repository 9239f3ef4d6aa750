"""The shipped default model: its card is complete and honest, its weights verify, and it
embeds real crops sensibly."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reunite.models.registry import DEFAULT_MODEL, Registry, load_embedder


def test_card_is_complete_and_weights_verify() -> None:
    entry = Registry().get(DEFAULT_MODEL)  # the shipped zoo alone, no user folder
    card, folder = entry.card, entry.folder
    assert entry.installed and folder is not None
    weights = folder / card.weights
    assert weights.stat().st_size < 10 * 2**20  # the limit for a committed model
    assert card.sha256 and card.embedding_dim == 512
    assert "reunite train " in card.training["command"]
    assert card.training["seed"] is not None and card.training["seconds"] > 0
    synthetic = card.metrics["synthetic_test"]
    for key in ("rank1", "mAP", "mINP", "tpr@1e-3"):
        assert 0 <= synthetic[key] <= 1, key
    assert set(synthetic["subgroups"]["age_group"]) == {"child", "adult", "elderly"}
    assert set(synthetic["subgroups"]["light"]) == {"day", "night"}
    assert card.threshold is not None and 0 < card.threshold["cosine_distance"] < 2
    # loading verifies the sha256 (a tampered file is refused: tests/test_registry.py)
    assert load_embedder("default").name == DEFAULT_MODEL


def test_embeds_real_crops_and_finds_real_people(shared_dir: Path) -> None:
    """Real MOT17 people (never seen in training): unit-norm 512-d float32 embeddings, and the
    same-camera sanity set answered (rank-1 >= 0.9; the real OSNet x0.25 gets 0.97)."""
    from reunite.evaluation.mot_sanity import mot_sanity_set
    from reunite.evaluation.reid_eval import evaluate_set, load_crop

    eval_set = mot_sanity_set(shared_dir / "data" / "real" / "mot17_mini")
    embedder = load_embedder("default")
    emb = embedder.embed([load_crop(c) for c in eval_set.query[:16]])
    assert emb.shape == (16, 512) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    (result,) = evaluate_set([embedder], eval_set)
    assert result.metrics["rank1"] >= 0.9
