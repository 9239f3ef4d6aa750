"""``reunite models export``: ONNX and OpenVINO round trips of the shipped model, int8 static
quantisation, and what a user gets wrong. Bad input tried: int8 without calibration crops, a
calibration folder with too few images, an unknown format, an export that exists, a model with
no weights, a corrupt ONNX file, an export whose file was replaced, a stale export."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch
import typer
from test_backends import district_crops
from typer.testing import CliRunner

from reunite.cli_models import models_app
from reunite.errors import InvalidOptionError, ModelIntegrityError, OutputExistsError
from reunite.models.export import (
    cosine_agreement,
    export_card_model,
    export_record,
    fold_gemm_batchnorm,
    is_current,
)
from reunite.models.registry import DEFAULT_MODEL, Registry, load_card_model, load_embedder

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def shipped() -> tuple:
    entry = Registry(zoo=Registry().roots[-1]).get(DEFAULT_MODEL)
    return entry.card, entry.folder


@pytest.fixture(scope="module")
def crops() -> list[np.ndarray]:
    return district_crops()


@pytest.fixture(scope="module")
def onnx_export(tmp_path_factory, shipped):
    card, folder = shipped
    return export_card_model(card, folder, "onnx", tmp_path_factory.mktemp("exports"))


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REUNITE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    root = typer.Typer()
    root.callback()(lambda: None)
    root.add_typer(models_app, name="models")
    return lambda *args: CliRunner().invoke(root, ["models", *args])


def test_onnx_export_round_trip(onnx_export, shipped, crops):
    source, source_folder = shipped
    card, folder = onnx_export.card, onnx_export.folder
    assert folder.name == f"{DEFAULT_MODEL}.onnx-fp32"
    record = export_record(card)
    assert record["source"] == f"{DEFAULT_MODEL}@{source.version}"
    assert record["source_sha256"] == source.sha256
    assert (record["precision"], record["backend"], record["opset"]) == ("fp32", "onnxruntime", 17)
    assert card.architecture == "onnx" and is_current(card, source)
    assert card.metrics == source.metrics  # same vectors, same figures
    graph = onnx.load(folder / card.weights)
    assert max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) >= 17
    batch = graph.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param, "the batch must be dynamic"
    assert not [n for n in graph.graph.node if n.op_type == "BatchNormalization"], "BNNeck folded"
    exported = load_embedder(folder)
    reference = load_card_model(source, source_folder).embed(crops)
    for n in (1, 5, len(crops)):  # batches of any size
        assert cosine_agreement(reference[:n], exported.embed(crops[:n])).min() >= 0.999


def test_openvino_export_round_trip(tmp_path, shipped, crops):
    source, source_folder = shipped
    result = export_card_model(source, source_folder, "openvino", tmp_path)
    assert {p.name for p in result.folder.iterdir()} == {"card.json", "model.xml", "model.bin"}
    assert set(result.card.extra_files) == {"model.bin"}
    assert export_record(result.card)["backend"] == "openvino"
    exported = load_embedder(result.folder)
    assert exported.precision == "fp32"
    reference = load_card_model(source, source_folder).embed(crops)
    assert cosine_agreement(reference, exported.embed(crops)).min() >= 0.999


def test_folding_a_bnneck_keeps_the_output(shipped):
    # the fold rewrites weights: check it against the unfolded graph on random input
    import io

    import onnxruntime as ort

    source, folder = shipped
    network = load_card_model(source, folder).network
    buffer = io.BytesIO()
    with pytest.warns(DeprecationWarning):  # the TorchScript exporter, as export.py uses it
        torch.onnx.export(network, (torch.zeros(2, 3, 128, 64),), buffer, dynamo=False)
    model = onnx.load_from_string(buffer.getvalue())
    before = ort.InferenceSession(model.SerializeToString())
    assert fold_gemm_batchnorm(model) == 1
    after = ort.InferenceSession(model.SerializeToString())
    x = np.random.default_rng(0).normal(size=(2, 3, 128, 64)).astype(np.float32)
    name = before.get_inputs()[0].name
    np.testing.assert_allclose(
        before.run(None, {name: x})[0], after.run(None, {name: x})[0], rtol=1e-4, atol=1e-4
    )


def test_int8_export_runs_on_both_int8_backends_close_to_fp32(tmp_path, shipped, crops):
    source, source_folder = shipped
    calibration = tmp_path / "crops"
    calibration.mkdir()
    for i, crop in enumerate(crops * 2):  # >= 32 images; a real run uses hundreds
        cv2.imwrite(str(calibration / f"{i:03d}.jpg"), crop[:, ::-1] if i % 2 else crop)
    roots = tmp_path / "data" / "models"
    result = export_card_model(
        source, source_folder, "onnx", roots, int8=True, calibration=calibration
    )
    record = export_record(result.card)
    assert record["precision"] == "int8" and record["calibration"]["images"] >= 32
    assert result.card.metrics == {}, "fp32 figures do not describe an int8 model"
    assert (result.folder / "model.onnx").stat().st_size < 0.4 * (11 << 20)  # int8 weights
    registry = Registry(data_dir=tmp_path / "data")
    reference = load_card_model(source, source_folder).embed(crops)
    ort8 = load_embedder("default", registry=registry, backend="onnxruntime", precision="int8")
    ov8 = load_embedder("default", registry=registry, backend="openvino", precision="int8")
    assert ort8.precision == ov8.precision == "int8"
    for embedder in (ort8, ov8):
        agreement = cosine_agreement(reference, embedder.embed(crops))
        assert agreement.mean() >= 0.95, agreement.mean()  # ~0.97 measured with 512 crops
        assert agreement.min() < 0.9999, "an int8 graph that changes nothing is not int8"


def test_int8_without_good_calibration_data_is_refused(tmp_path, shipped):
    source, folder = shipped
    with pytest.raises(InvalidOptionError, match="--int8 needs --calibration DIR"):
        export_card_model(source, folder, "onnx", tmp_path, int8=True)
    few = tmp_path / "few"
    few.mkdir()
    for i in range(5):
        cv2.imwrite(str(few / f"{i}.png"), np.full((64, 32, 3), 40 * i, np.uint8))
    (few / "notes.txt").write_text("not an image")
    with pytest.raises(InvalidOptionError, match="holds 5 readable images"):
        export_card_model(source, folder, "onnx", tmp_path, int8=True, calibration=few)
    with pytest.raises(InvalidOptionError, match="does not exist"):
        export_card_model(
            source, folder, "onnx", tmp_path, int8=True, calibration=tmp_path / "nowhere"
        )
    assert not list(tmp_path.glob("*.onnx-int8")), "a refused export leaves nothing behind"


def test_an_existing_export_is_kept_unless_overwritten(onnx_export, shipped):
    source, folder = shipped
    with pytest.raises(OutputExistsError, match="--overwrite"):
        export_card_model(source, folder, "onnx", onnx_export.folder.parent)


def test_a_corrupt_onnx_file_fails_clearly(tmp_path, onnx_export):
    garbage = tmp_path / "broken.onnx"
    garbage.write_bytes(b"\x08\x07 this is not a protobuf" * 50)
    with pytest.raises(InvalidOptionError, match="cannot load ONNX model"):
        load_embedder(garbage, registry=Registry(data_dir=tmp_path))
    with pytest.raises(InvalidOptionError, match="cannot read OpenVINO model"):
        load_embedder(garbage, registry=Registry(data_dir=tmp_path), backend="openvino")
    # an export folder whose graph was replaced: its card's sha256 catches it
    copy = tmp_path / onnx_export.folder.name
    copy.mkdir()
    (copy / "card.json").write_text((onnx_export.folder / "card.json").read_text())
    (copy / "model.onnx").write_bytes(garbage.read_bytes())
    with pytest.raises(ModelIntegrityError, match="corrupt, truncated or replaced"):
        load_embedder(copy, registry=Registry(data_dir=tmp_path))


def test_a_stale_export_is_redone_not_used(tmp_path, shipped):
    source, _ = shipped
    registry = Registry(data_dir=tmp_path)
    load_embedder("default", registry=registry, backend="onnxruntime", precision="fp32")
    card_path = registry.user_dir / f"{DEFAULT_MODEL}.onnx-fp32" / "card.json"
    card = json.loads(card_path.read_text())
    card["training"]["export"]["source_sha256"] = "0" * 64  # made from other weights
    card_path.write_text(json.dumps(card))
    load_embedder("default", registry=registry, backend="onnxruntime", precision="fp32")
    redone = json.loads(card_path.read_text())
    assert redone["training"]["export"]["source_sha256"] == source.sha256


def test_cli_export_writes_a_model_the_registry_lists(cli):
    result = cli("export", "default", "--format", "openvino")
    assert result.exit_code == 0, result.output
    assert "worst cosine against PyTorch" in " ".join(result.output.split())
    listed = cli("list")
    assert f"{DEFAULT_MODEL}.openvino-fp32" in listed.output
    shown = json.loads(cli("show", f"{DEFAULT_MODEL}.openvino-fp32", "--json").output)
    assert shown["training"]["export"]["precision"] == "fp32"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "default", "--int8"], "--int8 needs --calibration DIR"),
        (["export", "default", "--format", "tflite"], "unknown export format 'tflite'"),
        (["export", "color_histogram"], "it has no weights to export"),
        (["export", "no-such-model"], "no model 'no-such-model'"),
    ],
)
def test_cli_export_bad_input_is_one_line_and_exit_2(cli, args, message):
    result = cli(*args)
    assert result.exit_code == 2
    assert message in result.output.replace("\n", " ")
    assert "Traceback" not in result.output
