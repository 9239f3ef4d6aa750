"""Specification of the ONNX re-ID embedder: on the real OSNet model and real MOT17 pedestrians,
and, for the preprocessing contract, on a tiny hand-encoded model whose output is exact."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from reunite.errors import InvalidOptionError
from reunite.models.embedder import Embedder, cosine_distance
from reunite.models.onnx_reid import OnnxReidEmbedder


def shared_dir() -> Path:
    """``../shared`` beside the repository root: real models and footage, sometimes absent."""
    return Path(__file__).resolve().parents[1].parent / "shared"


OSNET = shared_dir() / "models" / "osnet_x0_25_msmt17" / "osnet_x0_25_msmt17.onnx"
MOT17 = shared_dir() / "data" / "real" / "mot17_mini" / "train"
needs_shared = pytest.mark.skipif(
    not (OSNET.is_file() and MOT17.is_dir()),
    reason=f"needs the OSNet model and MOT17-mini from ../shared ({shared_dir()} is incomplete)",
)


# --- the real OSNet x0.25 (MSMT17) model on real MOT17 pedestrians ---------------------------


def mot17_crops(sequence: Path, min_height: int = 120) -> dict[int, dict[int, np.ndarray]]:
    """Crops {person id: {frame: BGR crop}} of clearly visible pedestrians in one sequence.

    gt.txt rows are MOTChallenge: frame, id, x, y, w, h, flag, class, visibility; class 1 is a
    pedestrian and flag 1 marks a box that is scored. Only frames present in img1/ are used.
    """
    crops: dict[int, dict[int, np.ndarray]] = {}
    frames: dict[int, np.ndarray] = {}
    for row in np.loadtxt(sequence / "gt" / "gt.txt", delimiter=",", ndmin=2):
        frame, pid, x, y, w, h, flag, cls, visibility = row
        image_path = sequence / "img1" / f"{int(frame):06d}.jpg"
        if flag != 1 or cls != 1 or visibility < 0.9 or h < min_height or not image_path.is_file():
            continue
        image = frames.setdefault(int(frame), cv2.imread(str(image_path)))
        x0, y0 = max(int(x), 0), max(int(y), 0)
        crop = image[y0 : int(y + h), x0 : int(x + w)]
        if crop.shape[0] >= min_height and crop.shape[1] >= min_height // 4:
            crops.setdefault(int(pid), {})[int(frame)] = crop
    return crops


@pytest.fixture(scope="module")
def osnet() -> OnnxReidEmbedder:
    return OnnxReidEmbedder(OSNET)


@pytest.mark.shared
@needs_shared
def test_osnet_gives_unit_512_d_float32_rows_for_crops_of_any_size(
    osnet: OnnxReidEmbedder,
) -> None:
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(40, 20), (300, 90)]]
    features = osnet.embed(crops * 20)  # 40 crops: more than one batch of 32
    assert isinstance(osnet, Embedder)
    assert (osnet.name, osnet.dim) == ("osnet_x0_25_msmt17", 512)
    assert features.shape == (40, 512)
    assert features.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(features[0], features[38], atol=1e-5)  # same crop, other batch


@pytest.mark.shared
@needs_shared
def test_osnet_finds_the_same_pedestrian_more_similar_than_another_pedestrian(
    osnet: OnnxReidEmbedder,
) -> None:
    # In each sequence: people seen in both its first and last frame. Same-person pairs are a
    # person's first and last crop; different-person pairs are a person's first crop with the
    # next person's last crop.
    same, different = [], []
    for sequence in ("MOT17-04-FRCNN", "MOT17-09-FRCNN", "MOT17-11-FRCNN"):
        crops = mot17_crops(MOT17 / sequence)
        first, last = min(min(f) for f in crops.values()), max(max(f) for f in crops.values())
        people = [pid for pid, by_frame in crops.items() if {first, last} <= set(by_frame)][:6]
        firsts = osnet.embed([crops[pid][first] for pid in people])
        lasts = osnet.embed([crops[pid][last] for pid in people])
        distances = cosine_distance(firsts, lasts)
        same += list(np.diag(distances))
        different += list(np.diag(np.roll(distances, 1, axis=1)))
    assert len(same) >= 8, "too few pedestrians visible in both frames to judge"
    assert np.mean(same) < np.mean(different)
    assert np.mean(np.array(same) < np.array(different)) >= 0.8


def test_a_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidOptionError, match=r"not found.*nowhere\.onnx"):
        OnnxReidEmbedder(tmp_path / "nowhere.onnx")


def test_a_file_that_is_not_a_model_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not a model")
    with pytest.raises(InvalidOptionError, match="cannot load ONNX model"):
        OnnxReidEmbedder(path)


# --- preprocessing contract, on a model that returns each channel's mean --------------------
# The model is GlobalAveragePool + Flatten: its "embedding" is the mean of each input channel,
# so channel order, scale, mean/std and batching can be checked exactly. It is written here as
# raw protobuf bytes because the `onnx` package is not a dependency.


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, value: int | bytes | str) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _tensor_info(name: str, dims: list[int | str]) -> bytes:
    shape = b"".join(_field(1, _field(1 if isinstance(d, int) else 2, d)) for d in dims)
    tensor_type = _field(1, 1) + _field(2, shape)  # elem_type 1 = float32
    return _field(1, name) + _field(2, _field(1, tensor_type))


def channel_mean_model(path: Path, batch: int | str, height: int = 8, width: int = 4) -> Path:
    nodes = _field(1, _field(1, "images") + _field(2, "pooled") + _field(4, "GlobalAveragePool"))
    nodes += _field(1, _field(1, "pooled") + _field(2, "features") + _field(4, "Flatten"))
    graph = nodes + _field(2, "channel_mean")
    graph += _field(11, _tensor_info("images", [batch, 3, height, width]))
    graph += _field(12, _tensor_info("features", [batch, "dim"]))
    model = _field(1, 8) + _field(8, _field(2, 13)) + _field(7, graph)  # IR 8, opset 13
    path.write_bytes(model)
    return path


def solid(bgr: tuple[int, int, int], size: tuple[int, int] = (30, 12)) -> np.ndarray:
    return np.full((*size, 3), bgr, dtype=np.uint8)


PLAIN = {"input_size": (4, 8), "scale": 1 / 255, "mean": (0, 0, 0), "std": (1, 1, 1)}


def test_rgb_order_feeds_red_first_and_bgr_order_feeds_blue_first(tmp_path: Path) -> None:
    model = channel_mean_model(tmp_path / "m.onnx", batch="batch")
    blue = solid((255, 0, 0))
    rgb = OnnxReidEmbedder(model, channel_order="rgb", **PLAIN).embed([blue])
    bgr = OnnxReidEmbedder(model, channel_order="bgr", **PLAIN).embed([blue])
    np.testing.assert_allclose(rgb, [[0, 0, 1]], atol=1e-6)
    np.testing.assert_allclose(bgr, [[1, 0, 0]], atol=1e-6)


def test_scale_mean_and_std_are_applied_per_channel_in_model_order(tmp_path: Path) -> None:
    model = channel_mean_model(tmp_path / "m.onnx", batch="batch")
    yellow = solid((0, 255, 255))  # RGB (1, 1, 0) after scaling
    options = {**PLAIN, "mean": (0.0, 0.5, 0.0), "std": (1.0, 0.25, 1.0)}
    features = OnnxReidEmbedder(model, **options).embed([yellow])
    np.testing.assert_allclose(features, [np.array([1, 2, 0]) / np.sqrt(5)], atol=1e-6)


def test_the_embedding_size_is_read_from_the_model(tmp_path: Path) -> None:
    embedder = OnnxReidEmbedder(channel_mean_model(tmp_path / "m.onnx", batch="b"), **PLAIN)
    assert embedder.dim == 3
    assert embedder.name == "m"


@pytest.mark.parametrize("fixed_batch", [1, 4])
def test_a_model_with_a_fixed_batch_gets_exactly_that_many_images_per_run(
    tmp_path: Path, fixed_batch: int
) -> None:
    model = channel_mean_model(tmp_path / "m.onnx", batch=fixed_batch)
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (0, 255, 255), (255, 0, 255)]
    embedder = OnnxReidEmbedder(model, channel_order="bgr", batch_size=32, **PLAIN)
    features = embedder.embed([solid(c) for c in colours])
    assert embedder.batch_size == fixed_batch
    np.testing.assert_allclose(features, [np.array(c) / np.linalg.norm(c) for c in colours])


def test_an_input_size_the_model_cannot_take_is_a_clear_error(tmp_path: Path) -> None:
    model = channel_mean_model(tmp_path / "m.onnx", batch=1)
    with pytest.raises(InvalidOptionError, match=r"input_size=\(W, H\)"):
        OnnxReidEmbedder(model, input_size=(8, 4))
