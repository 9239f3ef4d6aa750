"""Specification of the hand-crafted colour-histogram baseline embedder."""

from __future__ import annotations

import numpy as np
import pytest

from reunite.models.color_histogram import ColorHistogramEmbedder
from reunite.models.embedder import Embedder, cosine_distance

RED, GREEN, BLUE, YELLOW, WHITE = (0, 0, 220), (0, 220, 0), (220, 0, 0), (0, 220, 220), (235,) * 3


def dressed(
    upper: tuple[int, ...], lower: tuple[int, ...], size: tuple[int, int] = (96, 40)
) -> np.ndarray:
    """A (H, W) BGR crop: head band, upper-body colour, lower-body colour, with a little noise."""
    height, width = size
    crop = np.empty((height, width, 3), dtype=np.int16)
    crop[: height // 2], crop[height // 2 :] = upper, lower
    crop[: height // 8] = (60, 80, 120)  # the head: outside both bands
    noise = np.random.default_rng(height * width).integers(-10, 11, crop.shape, dtype=np.int16)
    return np.clip(crop + noise, 0, 255).astype(np.uint8)


def test_embeddings_are_float32_unit_rows_of_the_declared_size() -> None:
    embedder = ColorHistogramEmbedder()
    features = embedder.embed([dressed(RED, BLUE), dressed(GREEN, WHITE, (300, 90))])
    assert isinstance(embedder, Embedder)
    assert features.shape == (2, embedder.dim) == (2, 256)
    assert features.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-6)


def test_the_same_image_is_at_distance_zero() -> None:
    crop = dressed(RED, BLUE)
    features = ColorHistogramEmbedder().embed([crop, crop.copy()])
    assert cosine_distance(features[:1], features[1:])[0, 0] == pytest.approx(0.0, abs=1e-6)


def test_same_upper_colour_is_closer_than_entirely_different_clothes() -> None:
    features = ColorHistogramEmbedder().embed(
        [dressed(RED, BLUE), dressed(RED, WHITE), dressed(GREEN, YELLOW)]
    )
    distances = cosine_distance(features[:1], features[1:])[0]
    assert distances[0] < distances[1]


def test_the_same_person_at_another_resolution_stays_close() -> None:
    features = ColorHistogramEmbedder().embed(
        [dressed(RED, BLUE, (64, 24)), dressed(RED, BLUE, (256, 100)), dressed(BLUE, RED)]
    )
    distances = cosine_distance(features[:1], features[1:])[0]
    assert distances[0] < 0.1 < distances[1]


def test_embedding_is_deterministic_and_independent_of_the_batch() -> None:
    crops = [dressed(RED, BLUE), dressed(YELLOW, GREEN)]
    embedder = ColorHistogramEmbedder()
    np.testing.assert_array_equal(embedder.embed(crops)[1:], embedder.embed(crops[1:]))


def test_an_empty_batch_gives_an_empty_matrix() -> None:
    assert ColorHistogramEmbedder().embed([]).shape == (0, 256)


@pytest.mark.parametrize(
    "crop",
    [
        np.zeros((10, 10), np.uint8),
        np.zeros((10, 10, 3), np.float32),
        np.zeros((0, 10, 3), np.uint8),
    ],
)
def test_a_crop_that_is_not_a_bgr_image_is_rejected(crop: np.ndarray) -> None:
    with pytest.raises(ValueError, match="crop 1"):
        ColorHistogramEmbedder().embed([dressed(RED, BLUE), crop])


def test_central_histogram_ignores_the_background_at_the_sides_of_a_loose_box():
    person = np.zeros((256, 128, 3), np.uint8)
    person[:, 40:88] = (30, 30, 200)  # a red-clad person in the middle (BGR)
    on_grass, on_road = person.copy(), person.copy()
    on_grass[:, :40], on_grass[:, 88:] = (40, 160, 40), (40, 160, 40)
    on_road[:, :40], on_road[:, 88:] = (90, 90, 90), (90, 90, 90)
    full, centre = ColorHistogramEmbedder(), ColorHistogramEmbedder(centre_fraction=0.35)
    d_full = 1 - float(np.dot(*full.embed([on_grass, on_road])))
    d_centre = 1 - float(np.dot(*centre.embed([on_grass, on_road])))
    assert d_centre < 1e-6 < d_full
    assert centre.name == "color_histogram_centre35"
