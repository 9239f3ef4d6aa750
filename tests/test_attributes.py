"""The attribute vocabulary, the shipped attribute model and its training tools.

Bad input tried: ground truth outside the vocabulary, embeddings of the wrong size, a corrupt or
replaced weights file, a folder without a card, aggregation weights that do not fit or are all
zero, and an over-confident head (which calibration must soften)."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from reunite.errors import ModelIntegrityError, ModelNotFoundError
from reunite.models import attributes as vocab
from reunite.models.attribute_model import (
    DEFAULT_ATTRIBUTE_MODEL,
    ZOO_DIR,
    AttributeModel,
    AttributeProbabilities,
)
from reunite.models.attribute_training import (
    LabelledSet,
    average_precision,
    expected_calibration_error,
    fit_temperatures,
    measure,
    predict,
    train_head,
)
from reunite.models.registry import DEFAULT_MODEL, Registry
from reunite.synth import appearance

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples" / "district"


def test_the_vocabulary_is_the_synthetic_worlds():
    # The model is trained on the world's names: a renamed colour or garment must fail here.
    assert list(vocab.COLOURS) == appearance.COLOUR_NAMES
    assert {c: ko for c, (ko, _) in appearance.PALETTE.items()} == vocab.COLOURS
    assert list(vocab.UPPER_TYPES) == appearance.UPPER_GARMENTS
    assert list(vocab.LOWER_TYPES) == appearance.LOWER_GARMENTS
    assert list(vocab.ACCESSORIES) == appearance.ACCESSORIES
    assert list(vocab.AGE_GROUPS) == appearance.AGE_GROUPS
    for colour, neighbours in vocab.NEIGHBOUR_COLOURS.items():
        assert colour in vocab.COLOURS and neighbours
        assert set(neighbours) <= set(vocab.COLOURS) - {colour}


def test_ground_truth_maps_onto_the_vocabulary():
    rng = np.random.default_rng(3)
    for pid in range(200):
        ident = appearance.sample_identity(rng, pid + 1)
        labels = vocab.labels_from_identity(ident.to_json())
        e = labels.exclusive
        assert e["upper_type"] == ident.outfit.upper.kind
        assert e["lower_colour"] == ident.outfit.lower.colour
        assert labels.accessories == {a.kind for a in ident.outfit.accessories}
        bags = [a for a in ident.outfit.accessories if a.kind in ("backpack", "bag")]
        assert (e["bag_colour"] is None) == (not bags)
    entry = appearance.sample_identity(rng, 999).to_json()
    entry["clothing"]["upper"]["colour"] = "turquoise"  # not a palette name
    with pytest.raises(ValueError, match="turquoise"):
        vocab.labels_from_identity(entry)


@pytest.fixture(scope="module")
def model() -> AttributeModel:
    torch.set_num_threads(1)
    return AttributeModel.load()


def sample_crops(n: int = 6) -> list[np.ndarray]:
    """Person crops from the checked-in district's ground-truth boxes."""
    crops = []
    frames = sorted((SAMPLES / "cameras" / "c1" / "img1").glob("*.jpg"))
    lines = (SAMPLES / "cameras" / "c1" / "gt" / "gt.txt").read_text().split()
    for line in lines:
        frame, _pid, x, y, w, h, *_ = line.split(",")
        if float(h) < 40:
            continue
        image = cv2.imread(str(frames[int(frame) - 1]))
        x0, y0 = int(float(x)), int(float(y))
        crops.append(image[y0 : y0 + int(float(h)), x0 : x0 + int(float(w))].copy())
        if len(crops) == n:
            break
    assert len(crops) == n, "the sample district has people in it"
    return crops


def test_the_shipped_model_gives_probability_distributions(model: AttributeModel):
    crops = sample_crops()
    probs = model.predict(crops)
    assert len(probs) == len(crops)
    for field, values in vocab.FIELDS.items():
        p = probs.fields[field]
        assert p.shape == (len(crops), len(values))
        assert np.all(p >= 0) and np.allclose(p.sum(1), 1.0, atol=1e-6)
    assert probs.accessories.shape == (len(crops), len(vocab.ACCESSORIES))
    assert np.all((probs.accessories > 0) & (probs.accessories < 1))
    row = probs.row(0)
    assert set(row) == {*vocab.FIELDS, "accessories"}
    assert abs(sum(row["upper_colour"].values()) - 1) < 1e-3
    # the same crops as embeddings give the same answer (the ingest path)
    again = model.predict_embeddings(model.backbone.embed(crops))
    assert np.allclose(again.fields["age_group"], probs.fields["age_group"], atol=1e-6)
    assert len(model.predict([])) == 0
    # the shipped head reads the shipped re-ID model, and its version follows that model's, so
    # attributes stored by a head on an older backbone stay apart
    backbone = Registry().get(DEFAULT_MODEL).card
    assert model.backbone_version == f"{DEFAULT_MODEL}@{backbone.version}"
    assert model.version == f"{DEFAULT_ATTRIBUTE_MODEL}@{backbone.version}"


def test_wrong_sized_embeddings_are_refused(model: AttributeModel):
    with pytest.raises(ValueError, match="512"):
        model.predict_embeddings(np.zeros((2, 256), np.float32))


def test_the_card_records_calibration_that_does_no_harm(model: AttributeModel):
    card = model.card
    assert card.temperatures["age_group"] > 0 and "accessory:cane" in card.temperatures
    test = card.metrics["synthetic_test"]
    before, after = test["ece_before_calibration"], test["calibrated"]["all"]
    for field in ("upper_colour", "lower_colour", "upper_type", "gender", "age_group", "sleeve"):
        assert after[field]["ece"] < 0.06, field  # calibrated on unseen identities
        # temperatures are fitted on other identities (the validation split): on a head that
        # leaves training nearly calibrated they may move the test ECE by noise (~0.01 over
        # 4.5k crops), never by more
        assert after[field]["ece"] <= before[field] + 0.015, field
    assert {"child", "adult", "elderly", "day", "night"} <= set(test["calibrated"])
    assert (ZOO_DIR / DEFAULT_ATTRIBUTE_MODEL / "weights.pt").stat().st_size < 3 * 2**20


def test_a_corrupt_weights_file_or_missing_card_fails_loudly(tmp_path: Path):
    folder = tmp_path / "copy"
    shutil.copytree(ZOO_DIR / DEFAULT_ATTRIBUTE_MODEL, folder)
    AttributeModel.load(folder)  # an intact copy loads
    data = bytearray((folder / "weights.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "weights.pt").write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        AttributeModel.load(folder)
    with pytest.raises(ModelNotFoundError, match=r"attributes\.json"):
        AttributeModel.load(tmp_path)


def test_aggregation_is_a_weighted_mixture():
    probs = AttributeProbabilities(
        {"age_group": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])},
        np.array([[0.9] * 7, [0.1] * 7]),
    )
    mixed = probs.aggregate([3.0, 1.0])
    assert np.allclose(mixed.fields["age_group"], [[0.75, 0.0, 0.25]])
    assert np.allclose(mixed.accessories, 0.7)
    assert np.allclose(probs.aggregate([0.0, 0.0]).fields["age_group"], [[0.5, 0.0, 0.5]])
    with pytest.raises(ValueError, match="one weight per crop"):
        probs.aggregate([1.0])


def _toy_set(n: int, rng: np.random.Generator) -> LabelledSet:
    """Labels that features predict only partly (30 % of labels random): an over-fitted head
    is over-confident on held-out data."""
    x = rng.normal(size=(n, 16)).astype(np.float32)
    y = {}
    for i, (field, values) in enumerate(vocab.FIELDS.items()):
        clean = (x[:, i] > 0).astype(np.int64) % len(values)
        noisy = rng.random(n) < 0.3
        y[field] = np.where(noisy, rng.integers(0, len(values), n), clean)
    a = (x[:, 8:15] + rng.normal(0, 1.0, (n, 7)) > 0.8).astype(np.float32)
    return LabelledSet(
        x, y, a, np.full(n, "train"), np.full(n, "adult"), np.full(n, "day"), np.arange(n)
    )


def _nll(probs: AttributeProbabilities, data: LabelledSet, field: str) -> float:
    p = probs.fields[field][np.arange(len(data)), data.y[field]]
    return float(-np.log(np.maximum(p, 1e-12)).mean())


def test_temperature_scaling_softens_an_overconfident_head():
    rng = np.random.default_rng(0)
    train, held_out = _toy_set(120, rng), _toy_set(1500, rng)
    head = train_head(train, hidden=128, epochs=150, batch=32, lr=2e-2)  # over-fits on purpose
    temps = fit_temperatures(head, held_out)
    assert temps["age_group"] > 1.0  # over-confident: its logits are divided down
    raw, cal = predict(head, held_out, {}), predict(head, held_out, temps)
    for field in ("age_group", "upper_colour"):
        assert _nll(cal, held_out, field) < _nll(raw, held_out, field)
    figures = measure(cal, held_out)
    assert 0.3 < figures["age_group"]["accuracy"] <= 1.0
    assert "accessory:cane" in figures and figures["accessory:cane"]["AP"] is not None


def test_average_precision_and_calibration_error_by_hand():
    # ranked: hit, miss, hit -> precision 1/1 and 2/3
    assert average_precision(np.array([1, 0, 1]), np.array([0.9, 0.8, 0.7])) == pytest.approx(
        (1 + 2 / 3) / 2
    )
    assert average_precision(np.array([0, 0]), np.array([0.5, 0.4])) is None
    # confidence 0.8, right 4 times in 5: calibrated
    assert expected_calibration_error(np.full(5, 0.8), np.array([1, 1, 1, 1, 0])) == pytest.approx(
        0.0
    )
    assert expected_calibration_error(np.full(4, 0.9), np.zeros(4)) == pytest.approx(0.9)


@pytest.mark.slow
def test_a_rendered_reid_set_records_the_clothing_it_rendered(
    tmp_path: Path, body_kit, renderer, uv_maps
):
    # The re-ID writer's identities.json must carry the 인상착의 ground truth, and re-deriving it
    # from the options alone (for sets rendered before it was recorded) must give the same.
    import json

    from reunite.synth.reid_job import ReidOptions, cohort_identities, generate_reid

    opts = ReidOptions(tmp_path / "reid", seed=7, train_ids=3, test_ids=10, cameras=2)
    generate_reid(opts, body_kit, renderer, uv_maps)
    people = json.loads((opts.out / "identities.json").read_text())
    sequences = json.loads((opts.out / "sequences.json").read_text())
    assert (people, sequences) == cohort_identities(opts)
    assert len(people) == 13
    for entry in people.values():
        labels = vocab.labels_from_identity(entry)
        assert labels.exclusive["upper_colour"] in vocab.COLOURS
