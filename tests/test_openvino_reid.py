"""Specification of the OpenVINO re-ID embedder: the Open Model Zoo's person-reidentification-retail
-0288 on real MOT17 pedestrians, and the clear errors for models that cannot be run."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from reunite.errors import InvalidOptionError
from reunite.evaluation.mot import MotSequence, find_mot_sequences
from reunite.models.embedder import Embedder, cosine_distance
from reunite.models.openvino_reid import OpenVinoReidEmbedder
from reunite.models.preprocessing import OPENVINO_OMZ, Preprocessing

OMZ_0288 = Path("models/openvino_omz/person-reidentification-retail-0288")


@pytest.fixture(scope="module")
def model_xml(shared_dir: Path) -> Path:
    return shared_dir / OMZ_0288 / "FP32" / "person-reidentification-retail-0288.xml"


@pytest.fixture(scope="module")
def reid(model_xml: Path) -> OpenVinoReidEmbedder:
    return OpenVinoReidEmbedder(model_xml, threads=1, batch_size=8)


def first_and_last_crops(sequence: MotSequence, people: int = 6) -> list[tuple[np.ndarray, ...]]:
    """(first-frame crop, last-frame crop) of up to ``people`` clearly visible pedestrians seen in
    both the first and the last frame of a sequence."""
    first, last = min(sequence.frames), max(sequence.frames)

    def boxes(frame: int) -> dict[int, tuple[int, int, int, int]]:
        return {
            b.track_id: tuple(round(v) for v in b.as_xyxy())
            for b in sequence.gt.get(frame, [])
            if b.consider and b.cls == 1 and b.visibility >= 0.9 and b.h >= 120 and b.x >= 0
        }

    early, late = boxes(first), boxes(last)
    both = sorted(set(early) & set(late))[:people]
    images = {f: cv2.imread(str(sequence.frames[f])) for f in (first, last)}

    def crop(frame: int, box: tuple[int, int, int, int]) -> np.ndarray:
        return images[frame][max(box[1], 0) : box[3], box[0] : box[2]]

    return [(crop(first, early[pid]), crop(last, late[pid])) for pid in both]


@pytest.mark.shared
def test_0288_gives_unit_256_d_float32_rows_for_crops_of_any_size(reid: OpenVinoReidEmbedder):
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(40, 20), (300, 90)]]
    features = reid.embed(crops * 10)  # 20 crops: batches of 8, 8 and 4 through a dynamic batch
    assert isinstance(reid, Embedder)
    assert (reid.name, reid.dim) == ("person-reidentification-retail-0288", 256)
    assert features.shape == (20, 256) and features.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(features[1], features[19], atol=1e-5)  # same crop, other batch
    np.testing.assert_allclose(reid.embed(crops[:1])[0], features[0], atol=1e-5)  # alone
    assert reid.embed([]).shape == (0, 256)


@pytest.mark.shared
def test_0288_finds_the_same_pedestrian_closer_than_another_pedestrian(
    reid: OpenVinoReidEmbedder, shared_dir: Path
):
    # Same-person pairs: a person's crops in the first and last frame of a sequence; different-
    # person pairs: a person's first crop with the next person's last crop.
    same, different = [], []
    for sequence in find_mot_sequences(shared_dir / "data" / "real" / "mot17_mini"):
        pairs = first_and_last_crops(sequence)
        if len(pairs) < 2:
            continue
        distances = cosine_distance(
            reid.embed([p[0] for p in pairs]), reid.embed([p[1] for p in pairs])
        )
        same += list(np.diag(distances))
        different += list(np.diag(np.roll(distances, 1, axis=1)))
    assert len(same) >= 8, "too few pedestrians visible in both frames to judge"
    assert np.mean(same) < np.mean(different)
    assert np.mean(np.array(same) < np.array(different)) >= 0.8


@pytest.mark.shared
def test_the_fp16_model_agrees_with_the_fp32_model(reid: OpenVinoReidEmbedder, shared_dir: Path):
    fp16 = OpenVinoReidEmbedder(
        shared_dir / OMZ_0288 / "FP16" / "person-reidentification-retail-0288.xml", threads=1
    )
    crops = [np.random.default_rng(i).integers(0, 256, (160, 64, 3), np.uint8) for i in range(4)]
    assert np.min(np.sum(fp16.embed(crops) * reid.embed(crops), axis=1)) > 0.999


def test_a_missing_model_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(InvalidOptionError, match=r"OpenVINO model not found: .*nowhere\.xml"):
        OpenVinoReidEmbedder(tmp_path / "nowhere.xml")


@pytest.mark.shared
def test_an_xml_without_its_bin_names_the_missing_file(model_xml: Path, tmp_path: Path):
    # Bad input: only the .xml was copied, as happens when one file of the pair is forgotten.
    xml = Path(shutil.copy(model_xml, tmp_path))
    with pytest.raises(InvalidOptionError, match=r"has no weights: .*retail-0288\.bin is missing"):
        OpenVinoReidEmbedder(xml)


def test_a_file_that_is_not_an_ir_model_is_a_clear_error(tmp_path: Path):
    # Bad input: an .xml/.bin pair that is not an OpenVINO model at all.
    (tmp_path / "broken.xml").write_text("<html>not a model</html>")
    (tmp_path / "broken.bin").write_bytes(b"\0" * 16)
    with pytest.raises(InvalidOptionError, match="cannot read OpenVINO model"):
        OpenVinoReidEmbedder(tmp_path / "broken.xml")


@pytest.mark.shared
def test_an_input_size_the_model_cannot_take_is_a_clear_error(model_xml: Path):
    # Bad input: preprocessing for a 64x128 model on the 128x256 0288.
    small = Preprocessing(**{**OPENVINO_OMZ.model_dump(), "input_size": (64, 128)})
    with pytest.raises(InvalidOptionError, match=r"128x64 \(HxW\)"):
        OpenVinoReidEmbedder(model_xml, small)


@pytest.mark.shared
def test_a_device_openvino_does_not_have_lists_the_ones_it_has(model_xml: Path):
    with pytest.raises(InvalidOptionError, match=r"no device 'NPU-9000' here; available: .*CPU"):
        OpenVinoReidEmbedder(model_xml, device="NPU-9000")
