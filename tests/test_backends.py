"""Backends and precisions of the embedders: every fp32 runtime gives PyTorch's vectors, bf16
stays close, the version of the vectors never depends on the runtime, and bad choices fail with
one clear error. Bad input tried: an unknown backend or precision, int8 on PyTorch, bf16 on ONNX
Runtime, int8 that was never exported, a loose checkpoint on another runtime."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from reunite.errors import InvalidOptionError
from reunite.evaluation.mot import find_mot_sequences
from reunite.models.backends import check_choice, cpu_has_bf16
from reunite.models.export import cosine_agreement
from reunite.models.registry import DEFAULT_MODEL, Registry, load_embedder
from reunite.pipeline.embedding_model import load_embedding_model

SHIPPED_VERSION = f"{DEFAULT_MODEL}@{Registry().get(DEFAULT_MODEL).card.version}"

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "samples" / "district"


def district_crops(district: Path = SAMPLE, min_height: float = 20.0) -> list[np.ndarray]:
    """Every ground-truth person box of a rendered district, cut from its frames (BGR)."""
    crops = []
    for seq in find_mot_sequences(district / "cameras"):
        for frame, boxes in sorted(seq.gt.items()):
            image = cv2.imread(str(seq.frames[frame]))
            for box in boxes:
                x1, y1, x2, y2 = (round(v) for v in box.as_xyxy())
                x1, y1 = max(x1, 0), max(y1, 0)
                if y2 - y1 >= min_height and x2 - x1 >= 8:
                    crops.append(image[y1:y2, x1:x2].copy())
    return crops


@pytest.fixture(scope="module")
def crops() -> list[np.ndarray]:
    found = district_crops()
    assert len(found) >= 20, "the checked-in sample district should give a few dozen people"
    return found


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Registry:
    """A registry with a data folder, so exports are cached once for the module."""
    data = tmp_path_factory.mktemp("data")
    return Registry(data_dir=data)


@pytest.fixture(scope="module")
def torch_vectors(registry, crops) -> np.ndarray:
    return load_embedder("default", registry=registry, backend="torch").embed(crops)


@pytest.mark.parametrize("backend", ["torch", "onnxruntime", "openvino"])
def test_every_fp32_backend_gives_the_pytorch_vectors(registry, crops, torch_vectors, backend):
    embedder = load_embedder("default", registry=registry, backend=backend, precision="fp32")
    assert embedder.dim == 512
    assert getattr(embedder, "precision", "fp32") == "fp32"
    vectors = embedder.embed(crops)
    assert vectors.dtype == np.float32 and vectors.shape == torch_vectors.shape
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert cosine_agreement(torch_vectors, vectors).min() >= 0.999


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no native bf16")
def test_bf16_stays_close_to_fp32(registry, crops, torch_vectors):
    # bf16 keeps 8 bits of mantissa: close, not equal (mAP equal within noise, see bench)
    embedder = load_embedder("default", registry=registry, backend="openvino", precision="bf16")
    assert embedder.precision == "bf16"
    assert embedder.name == f"{DEFAULT_MODEL}.openvino-bf16"  # from fp32 weights, in bf16
    agreement = cosine_agreement(torch_vectors, embedder.embed(crops))
    assert agreement.mean() >= 0.99 and agreement.min() >= 0.9
    assert agreement.mean() < 0.99999, "a bf16 hint that changes nothing is not bf16"


def test_the_default_call_loads_the_fastest_backend_with_the_same_version(tmp_path):
    # the API calls load_embedding_model("default") without options: it must keep working, and
    # a data folder that does not exist must not be created just to cache an export
    absent = tmp_path / "absent"
    model = load_embedding_model("default", data_dir=absent)
    assert not absent.exists()
    assert model.runtime == "onnxruntime fp32"  # bf16 costs 7.0.0 over 1 point of mAP
    native = load_embedding_model("default", data_dir=absent, backend=None, precision=None)
    assert native.runtime == "torch fp32"
    ort = load_embedding_model("default", data_dir=absent, backend="onnxruntime")
    assert model.version == native.version == ort.version == SHIPPED_VERSION


def test_an_export_folder_as_model_counts_as_its_source(registry):
    load_embedder("default", registry=registry, backend="onnxruntime", precision="fp32")
    folder = registry.user_dir / f"{DEFAULT_MODEL}.onnx-fp32"
    assert (folder / "card.json").is_file(), "fp32 exports are cached in the data folder"
    by_folder = load_embedding_model(folder, data_dir=registry.user_dir.parent)
    by_name = load_embedding_model(f"{DEFAULT_MODEL}.onnx-fp32", data_dir=registry.user_dir.parent)
    assert by_folder.version == by_name.version == SHIPPED_VERSION


def test_auto_picks_the_fastest_measured_backend_for_a_precision():
    assert check_choice("auto", "fp32") == ("onnxruntime", "fp32")
    assert check_choice(None, "int8") == ("onnxruntime", "int8")
    assert check_choice("openvino", None)[1] == "fp32"
    assert check_choice(None, None) == check_choice("auto", "auto") == ("onnxruntime", "fp32")
    assert check_choice("torch", "auto") == ("torch", "fp32")


@pytest.mark.parametrize(
    ("backend", "precision", "message"),
    [
        ("cuda", "fp32", "unknown backend 'cuda'"),
        ("openvino", "fp8", "unknown precision 'fp8'"),
        ("torch", "int8", "the torch backend does not run int8"),
        ("onnxruntime", "bf16", "the onnxruntime backend does not run bf16"),
    ],
)
def test_impossible_choices_fail_with_one_clear_error(backend, precision, message):
    with pytest.raises(InvalidOptionError, match=message):
        check_choice(backend, precision)


def test_int8_that_was_never_exported_says_how_to_make_it(tmp_path):
    registry = Registry(data_dir=tmp_path)
    with pytest.raises(InvalidOptionError, match=r"reunite models export .* --int8 --calibration"):
        load_embedder("default", registry=registry, backend="onnxruntime", precision="int8")


def test_a_loose_checkpoint_runs_on_torch_only(tmp_path):
    registry = Registry(data_dir=tmp_path)
    network = load_embedder("default", registry=registry, backend="torch").network
    path = tmp_path / "trained.pth"
    torch.save(network.state_dict(), path)
    with pytest.raises(InvalidOptionError, match="loose PyTorch checkpoint"):
        load_embedder(path, registry=registry, backend="openvino", precision="fp32")


def test_the_cli_refuses_an_unknown_backend_in_one_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from reunite.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REUNITE_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(
        app, ["eval", "--model", "default", "--mot17", str(tmp_path), "--backend", "tpu"]
    )
    assert result.exit_code == 2
    assert "unknown backend 'tpu'" in result.output
    assert "Traceback" not in result.output


def test_one_openvino_embedder_serves_concurrent_callers(registry, crops):
    # an OpenVINO infer request is not thread-safe: the API embeds from several threads at once
    from concurrent.futures import ThreadPoolExecutor

    embedder = load_embedder("default", registry=registry, backend="openvino", precision="fp32")
    reference = embedder.embed(crops)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: embedder.embed(crops), range(8)))
    for result in results:
        np.testing.assert_array_equal(result, reference)
