"""Export a PyTorch re-ID model to ONNX and OpenVINO IR, fp32 or int8, as a model folder.

``reunite models export NAME --format onnx|openvino [--int8 --calibration DIR]`` writes
``<data_dir>/models/NAME.<format>-<fp32|int8>/``: the graph, and a card that names the source
model, its sha256, the precision and the runtime (``training.export``), so a stale export (the
source retrained under the same name) is noticed and redone. The same folders are the cache that
``--backend onnxruntime|openvino`` reads: fp32 exports are made on first use (a few seconds; in
memory when there is no data folder to keep them in), int8 ones only by the command, because
they need calibration crops.

The graph: opset 17, a dynamic batch, input ``images`` (N, 3, H, W) preprocessed as the card
says, output ``embedding`` (N, dim) before L2 normalisation. Batch norm is folded into the layer
before it (convolutions by the exporter, the BNNeck's BatchNorm1d into the Linear here), and a
card with ``flip`` gets the mirrored pass baked into the graph. Every export is checked against
PyTorch on probe crops: fp32 must agree to cosine >= 0.999, or nothing is written.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from reunite.errors import InvalidOptionError, ModelCardError, OutputExistsError
from reunite.models.download import sha256_of
from reunite.models.model_card import CARD_FILE, ModelCard
from reunite.models.preprocessing import Preprocessing

if TYPE_CHECKING:
    import onnx
    from torch import nn

log = logging.getLogger(__name__)

Format = Literal["onnx", "openvino"]
FORMATS: tuple[str, ...] = ("onnx", "openvino")
OPSET = 17
ONNX_FILE = "model.onnx"
IR_FILE = "model.xml"
IR_WEIGHTS = "model.bin"
INPUT_NAME = "images"
OUTPUT_NAME = "embedding"
FP32_MIN_COSINE = 0.999


def export_name(name: str, fmt: str, precision: str) -> str:
    """The folder (and registry) name of an export: ``NAME.onnx-fp32``, ``NAME.openvino-int8``."""
    return f"{name}.{fmt}-{precision}"


# --- graphs ------------------------------------------------------------------------------------


def _with_flip(network: nn.Module) -> nn.Module:
    """The network summing its output for the crop and its mirror image (``card.flip``)."""
    import torch
    from torch import nn

    class FlipSum(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x) + self.inner(torch.flip(x, dims=[3]))

    return FlipSum(network).eval()


def onnx_bytes(
    network: nn.Module, preprocessing: Preprocessing, *, flip: bool = False, opset: int = OPSET
) -> bytes:
    """The network as a serialised ONNX graph (dynamic batch, BNNeck folded, checked)."""
    import onnx
    import torch

    if opset < OPSET:
        raise InvalidOptionError(f"opset {opset} is too old: use {OPSET} or newer")
    network = network.eval()
    module = _with_flip(network) if flip else network
    width, height = preprocessing.input_size
    probe = torch.zeros(2, 3, height, width)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            module,
            (probe,),
            buffer,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            do_constant_folding=True,
            dynamo=False,
        )
    model = onnx.load_from_string(buffer.getvalue())
    fold_gemm_batchnorm(model)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def fold_gemm_batchnorm(model: onnx.ModelProto) -> int:
    """Fold each ``BatchNormalization`` that only follows a ``Gemm`` into that Gemm's weights.

    A BNNeck is a per-feature affine map in inference: ``y = (Wx + b - mean) * g / sqrt(var +
    eps) + beta``, i.e. a Gemm with rows of W and b scaled. One fewer node, and int8 quantisation
    sees one tensor instead of two. Returns the number of nodes folded.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    init = {t.name: t for t in graph.initializer}
    consumers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1
    producer = {out: node for node in graph.node for out in node.output}
    folded = 0
    for bn in [n for n in graph.node if n.op_type == "BatchNormalization"]:
        gemm = producer.get(bn.input[0])
        if gemm is None or gemm.op_type != "Gemm" or consumers.get(bn.input[0]) != 1:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in gemm.attribute}
        plain = attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0
        if attrs.get("transA", 0) or not plain:
            continue
        names = [gemm.input[1], *(gemm.input[2:3]), *bn.input[1:5]]
        if not all(name in init for name in names):
            continue
        eps = {a.name: helper.get_attribute_value(a) for a in bn.attribute}.get("epsilon", 1e-5)
        weight = numpy_helper.to_array(init[gemm.input[1]]).astype(np.float64)
        if not attrs.get("transB", 0):
            weight = weight.T  # rows = output features
        out_features = weight.shape[0]
        bias = (
            numpy_helper.to_array(init[gemm.input[2]]).astype(np.float64)
            if len(gemm.input) > 2 and gemm.input[2]
            else np.zeros(out_features)
        )
        gamma, beta, mean, var = (
            numpy_helper.to_array(init[n]).astype(np.float64) for n in bn.input[1:5]
        )
        scale = gamma / np.sqrt(var + eps)
        new_w = (weight * scale[:, None]).astype(np.float32)
        new_b = ((bias - mean) * scale + beta).astype(np.float32)
        w_name, b_name = f"{gemm.name}_bnfold_W", f"{gemm.name}_bnfold_b"
        graph.initializer.extend(
            [numpy_helper.from_array(new_w, w_name), numpy_helper.from_array(new_b, b_name)]
        )
        data = gemm.input[0]
        del gemm.input[:]
        gemm.input.extend([data, w_name, b_name])
        _set_attr(gemm, "transB", 1)
        gemm.output[0] = bn.output[0]
        graph.node.remove(bn)
        folded += 1
    _drop_unused_initializers(graph)
    return folded


def _set_attr(node: onnx.NodeProto, name: str, value: int) -> None:
    from onnx import helper

    for attr in list(node.attribute):
        if attr.name == name:
            node.attribute.remove(attr)
    node.attribute.append(helper.make_attribute(name, value))


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    used = {name for node in graph.node for name in node.input}
    for tensor in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(tensor)


def onnx_to_openvino(onnx_path: Path, xml_path: Path) -> Path:
    """Convert an ONNX graph (fp32, or int8 with Q/DQ nodes) to IR; weights stay as they are."""
    import openvino as ov

    model = ov.convert_model(str(onnx_path))
    ov.save_model(model, str(xml_path), compress_to_fp16=False)
    return xml_path


# --- checking ----------------------------------------------------------------------------------


def probe_crops(count: int = 16, seed: int = 0) -> list[np.ndarray]:
    """Person-sized BGR crops with structure (gradients, blocks, noise): enough to exercise
    every channel of a network without shipping images."""
    rng = np.random.default_rng(seed)
    crops = []
    for i in range(count):
        h, w = int(rng.integers(96, 300)), int(rng.integers(40, 140))
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        base = rng.uniform(0, 255, 3)
        crop = base + 60 * np.sin(yy[..., None] / (5 + i) + rng.uniform(0, 6, 3))
        crop[: h // 2] += rng.uniform(-80, 80, 3)  # a "shirt" and "trousers"
        crop += rng.normal(0, 12, (h, w, 3)) + 0.2 * xx[..., None]
        crops.append(np.clip(crop, 0, 255).astype(np.uint8))
    return crops


def cosine_agreement(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Row-wise cosine between two (N, dim) embedding matrices (normalised here)."""
    a = reference / np.maximum(np.linalg.norm(reference, axis=1, keepdims=True), 1e-12)
    b = candidate / np.maximum(np.linalg.norm(candidate, axis=1, keepdims=True), 1e-12)
    return np.sum(a * b, axis=1)


# --- model folders -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    card: ModelCard
    min_cosine: float
    """Worst cosine against PyTorch fp32 on the probe crops."""
    seconds: float


def export_record(card: ModelCard) -> dict | None:
    """The ``training.export`` record of an exported card, or None for an original model."""
    record = card.training.get("export") if isinstance(card.training, dict) else None
    return record if isinstance(record, dict) else None


def is_current(export_card: ModelCard, source: ModelCard) -> bool:
    """Whether an export was made from exactly these source weights."""
    record = export_record(export_card)
    return (
        record is not None
        and record.get("source") == f"{source.name}@{source.version}"
        and record.get("source_sha256") == source.sha256
    )


def export_card_model(
    source: ModelCard,
    source_folder: Path,
    fmt: str,
    out_root: Path,
    *,
    int8: bool = False,
    calibration: Path | None = None,
    calibration_count: int = 512,
    overwrite: bool = False,
) -> ExportResult:
    """Export the card model in ``source_folder`` to ``out_root/<export_name>/``.

    The folder is written under a temporary name and renamed when complete (a reader never
    sees half an export). Raises OutputExistsError when it exists (unless ``overwrite``),
    InvalidOptionError for an unknown format, a model that is not a PyTorch one, or int8
    without calibration crops, and ModelCardError when the export disagrees with PyTorch.
    """
    from reunite.models.registry import NON_TORCH_ARCHITECTURES, embedder_from_card

    if fmt not in FORMATS:
        raise InvalidOptionError(f"unknown export format {fmt!r}: use {' or '.join(FORMATS)}")
    if source.architecture in NON_TORCH_ARCHITECTURES:
        raise InvalidOptionError(
            f"{source.name} is a {source.architecture} model, not a PyTorch one: there is nothing "
            "to export (ONNX and OpenVINO models already run on those backends)"
        )
    if int8 and calibration is None:
        raise InvalidOptionError(
            "--int8 needs --calibration DIR: a folder of person crops (JPEG/PNG, e.g. a "
            "`reunite synth reid` bounding_box_train/) to measure activation ranges on"
        )
    precision = "int8" if int8 else "fp32"
    name = export_name(source.name, fmt, precision)
    folder = Path(out_root) / name
    if (folder / CARD_FILE).exists() and not overwrite:
        raise OutputExistsError(f"{folder} exists; pass --overwrite to export again")
    started = time.perf_counter()
    calibration_crops = None
    if int8:
        from reunite.models.quantize import read_calibration_crops

        calibration_crops = read_calibration_crops(calibration, calibration_count)
    torch_model = embedder_from_card(source, source_folder, batch_size=64)
    network = torch_model.network  # type: ignore[attr-defined]
    prep = source.preprocessing
    Path(out_root).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out_root))
    umask = os.umask(0)
    os.umask(umask)
    work.chmod(0o777 & ~umask)  # mkdtemp makes it private; the export is an ordinary folder
    try:
        fp32_onnx = work / ONNX_FILE
        fp32_onnx.write_bytes(onnx_bytes(network, prep, flip=source.flip))
        calibration_info: dict = {}
        if int8:
            from reunite.models.quantize import quantize_int8

            int8_onnx = work / "model.int8.onnx"
            calibration_info = quantize_int8(fp32_onnx, int8_onnx, prep, calibration_crops)
            calibration_info["folder"] = str(calibration)
            int8_onnx.replace(fp32_onnx)
        files: dict[str, str] = {}
        if fmt == "openvino":
            onnx_to_openvino(fp32_onnx, work / IR_FILE)
            fp32_onnx.unlink()
            weights, files = IR_FILE, {IR_WEIGHTS: sha256_of(work / IR_WEIGHTS)}
        else:
            weights = ONNX_FILE
        card = _export_card(source, name, fmt, precision, weights, work, files, calibration_info)
        exported = embedder_from_card(card, work, batch_size=64)
        crops = probe_crops()
        agreement = cosine_agreement(torch_model.embed(crops), exported.embed(crops))
        if not int8 and agreement.min() < FP32_MIN_COSINE:
            raise ModelCardError(
                f"the {fmt} export of {source.name} disagrees with PyTorch (worst cosine "
                f"{agreement.min():.5f} < {FP32_MIN_COSINE}); nothing was written"
            )
        card = card.model_copy(
            update={
                "training": {
                    "export": {
                        **card.training["export"],
                        "probe_min_cosine": round(float(agreement.min()), 5),
                    }
                }
            }
        )
        card.write(work)
        if folder.exists():
            shutil.rmtree(folder)
        work.rename(folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ExportResult(folder, card, float(agreement.min()), time.perf_counter() - started)


def _export_card(
    source: ModelCard,
    name: str,
    fmt: str,
    precision: str,
    weights: str,
    folder: Path,
    extra_files: dict[str, str],
    calibration: dict,
) -> ModelCard:
    import onnx
    import onnxruntime
    import openvino
    import torch

    runtime = "onnxruntime" if fmt == "onnx" else "openvino"
    versions = {"torch": torch.__version__, "onnx": onnx.__version__}
    versions[runtime] = onnxruntime.__version__ if fmt == "onnx" else openvino.__version__
    record = {
        "source": f"{source.name}@{source.version}",
        "source_sha256": source.sha256,
        "format": fmt,
        "backend": runtime,
        "precision": precision,
        "opset": OPSET,
        "versions": versions,
        **({"calibration": calibration} if calibration else {}),
    }
    same_vectors = precision == "fp32"
    return ModelCard(
        name=name,
        version=source.version,
        architecture="onnx" if fmt == "onnx" else "openvino",
        preprocessing=source.preprocessing,
        embedding_dim=source.embedding_dim,
        weights=weights,
        sha256=sha256_of(folder / weights),
        extra_files=extra_files,
        licence=source.licence,
        description=(
            f"{source.name} {source.version} exported to {fmt} ({precision}, runs on {runtime}) "
            "by `reunite models export`. "
            + (
                "Same vectors as the source (fp32): its metrics and threshold apply."
                if same_vectors
                else "Static int8 (QDQ) calibrated on synthetic crops; see training.export and "
                "bench/results.md for its accuracy against fp32."
            )
        ),
        training={"export": record},
        metrics=source.metrics if same_vectors else {},
        threshold=source.threshold,
        source_url=None,
        flip=False,  # baked into the graph
    )


def describe(result: ExportResult) -> str:
    """One line for the CLI."""
    record = export_record(result.card) or {}
    return (
        f"exported {record.get('source')} to {result.folder} ({record.get('format')}, "
        f"{record.get('precision')}, {result.seconds:.1f} s; worst cosine against PyTorch on "
        f"probe crops {result.min_cosine:.5f})"
    )


def dumps(result: ExportResult) -> str:
    return json.dumps(
        {"folder": str(result.folder), "card": result.card.model_dump(mode="json")}, indent=2
    )
