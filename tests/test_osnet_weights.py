"""Specification of OSNet weight import (``reunite.models.osnet_weights``): torchreid checkpoints
in each layout torchreid writes, the errors for files that do not fit, and torchreid's fused ONNX
export against onnxruntime on real MOT17 pedestrians."""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch
from onnx import helper, numpy_helper

from reunite.errors import CheckpointMismatchError, UnreadableCheckpointError
from reunite.evaluation.mot import PEDESTRIAN_CLASS, find_mot_sequences
from reunite.models.onnx_reid import OnnxReidEmbedder
from reunite.models.osnet import WIDTHS, OSNet, osnet
from reunite.models.osnet_weights import (
    import_fused_onnx,
    infer_osnet_arch,
    load_torchreid_checkpoint,
)
from reunite.models.preprocessing import TORCHREID
from reunite.models.torch_reid import TorchReidEmbedder

torch.set_num_threads(1)

SHARED_ONNX = "models/osnet_x0_25_msmt17/osnet_x0_25_msmt17.onnx"


class Stranger:
    """A class of this test module: pickling it makes a file that needs code to unpickle."""


def randomised(arch: str = "osnet_x0_25", num_classes: int = 0, seed: int = 0) -> OSNet:
    """A network whose every tensor, batch-norm statistics included, is random, so that a tensor
    left unloaded changes the embeddings."""
    torch.manual_seed(seed)
    model = osnet(arch, num_classes)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 2.0)
                module.num_batches_tracked.fill_(seed + 100)
    return model.eval()


def crops(count: int = 4) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [
        rng.integers(0, 256, (int(rng.integers(80, 200)), 50, 3), np.uint8) for _ in range(count)
    ]


def embed(model: torch.nn.Module, images: list[np.ndarray]) -> np.ndarray:
    return TorchReidEmbedder(model, TORCHREID, name="osnet").embed(images)


def state_without_classifier(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if not k.startswith("classifier.")}


def assert_unchanged(model: torch.nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


# --- torchreid checkpoints -------------------------------------------------------------------


def test_training_checkpoint_with_dataparallel_prefix_loads_to_identical_embeddings(
    tmp_path: Path,
) -> None:
    # torchreid's save_checkpoint layout: state_dict (here saved from DataParallel, every key
    # under "module."), epoch, rank1 as a numpy scalar, the optimizer's state.
    source = randomised(num_classes=751, seed=1)
    optimizer = torch.optim.SGD(source.parameters(), lr=0.01, momentum=0.9)
    logits, _ = source.train()(torch.randn(2, 3, 64, 32))
    logits.sum().backward()
    optimizer.step()
    source.eval()
    path = tmp_path / "model.pth.tar-3"
    torch.save(
        {
            "state_dict": {f"module.{k}": v for k, v in source.state_dict().items()},
            "epoch": 3,
            "rank1": np.float64(0.612),
            "optimizer": optimizer.state_dict(),
        },
        path,
    )
    target = randomised(seed=2)
    images = crops()
    assert not np.allclose(embed(target, images), embed(source, images), atol=1e-3)

    report = load_torchreid_checkpoint(target, path)

    np.testing.assert_array_equal(embed(target, images), embed(source, images))
    assert (report.arch, report.epoch, report.stripped_prefix) == ("osnet_x0_25", 3, True)
    assert (report.classifier, report.classifier_classes) == ("skipped", 751)  # no head here
    assert report.loaded == len(state_without_classifier(target)) == 565
    assert report.path == path


def test_bare_state_dict_with_the_same_class_count_loads_the_classifier_too(
    tmp_path: Path,
) -> None:
    source = randomised(num_classes=10, seed=3)
    torch.save(source.state_dict(), tmp_path / "bare.pth")
    target = randomised(num_classes=10, seed=4)

    report = load_torchreid_checkpoint(target, tmp_path / "bare.pth")

    assert (report.classifier, report.loaded, report.epoch) == ("loaded", 567, None)
    assert not report.stripped_prefix
    assert torch.equal(target.classifier.weight, source.classifier.weight)


def test_classifier_of_another_data_set_is_skipped_and_the_networks_own_kept(
    tmp_path: Path,
) -> None:
    # Market-1501 has 751 training ids, the network here 10: the classifier cannot load, and
    # that is expected; everything else must.
    source = randomised(num_classes=751, seed=5)
    torch.save({"state_dict": source.state_dict(), "epoch": 60}, tmp_path / "market.pth")
    target = randomised(num_classes=10, seed=6)
    own_head = target.classifier.weight.clone()

    report = load_torchreid_checkpoint(target, tmp_path / "market.pth")

    assert (report.classifier, report.classifier_classes, report.epoch) == ("skipped", 751, 60)
    assert torch.equal(target.classifier.weight, own_head)
    loaded, wanted = state_without_classifier(target), state_without_classifier(source)
    assert all(torch.equal(loaded[k], wanted[k]) for k in wanted)


def test_checkpoint_from_before_num_batches_tracked_existed_still_loads(tmp_path: Path) -> None:
    # PyTorch < 0.4.1 wrote no num_batches_tracked buffers; they do not affect embeddings.
    source = randomised(seed=7)
    old = {k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(old, tmp_path / "old.pth")
    target = randomised(seed=8)
    load_torchreid_checkpoint(target, tmp_path / "old.pth")
    np.testing.assert_array_equal(embed(target, crops(2)), embed(source, crops(2)))


def test_checkpoint_of_another_width_is_refused_naming_the_keys_and_its_width(
    tmp_path: Path,
) -> None:
    # Bad input: an osnet_x0_5 checkpoint for an osnet_x0_25 network (every shape differs).
    torch.save(randomised("osnet_x0_5", seed=9).state_dict(), tmp_path / "x0_5.pth")
    target = randomised(seed=10)
    before = snapshot(target)

    with pytest.raises(CheckpointMismatchError) as caught:
        load_torchreid_checkpoint(target, tmp_path / "x0_5.pth")

    message = str(caught.value)
    assert "x0_5.pth does not fit osnet_x0_25: it looks like osnet_x0_5" in message
    assert "conv1.conv.weight (32, 3, 7, 7) (network (16, 3, 7, 7))" in message
    assert "with another shape" in message and "more)" in message  # first few, then a count
    assert "Build the network as osnet_x0_5" in message
    assert_unchanged(target, before)


def test_missing_and_unexpected_keys_are_named_and_nothing_is_loaded(tmp_path: Path) -> None:
    # Bad input: one tensor lost, one foreign tensor added (e.g. a checkpoint of a variant).
    state = randomised(seed=11).state_dict()
    del state["conv5.bn.running_var"]
    state["conv5.attention.weight"] = torch.zeros(3)
    torch.save({"state_dict": state}, tmp_path / "edited.pth")
    target = randomised(seed=12)
    before = snapshot(target)

    with pytest.raises(CheckpointMismatchError) as caught:
        load_torchreid_checkpoint(target, tmp_path / "edited.pth")

    message = str(caught.value)
    assert "1 missing: conv5.bn.running_var" in message
    assert "1 unexpected: conv5.attention.weight" in message
    assert "it looks like osnet_x0_25" in message
    assert_unchanged(target, before)


def test_truncated_checkpoint_is_reported_by_file_name(tmp_path: Path) -> None:
    # Bad input: a download cut off half way.
    whole = tmp_path / "whole.pth"
    torch.save(randomised(seed=13).state_dict(), whole)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(UnreadableCheckpointError, match=r"cut\.pth: the file is truncated"):
        load_torchreid_checkpoint(osnet("osnet_x0_25"), cut)


@pytest.mark.parametrize(
    ("write", "says"),
    [
        (
            lambda p: p.write_bytes(pickle.dumps({"x": [1, 2]}, protocol=2)),
            "not a PyTorch checkpoint",
        ),
        (lambda p: torch.save({"lr": 0.1, "epoch": 3}, p), "entries are not tensors: lr, epoch"),
        (lambda p: torch.save(torch.zeros(3), p), "holds a Tensor"),
        (lambda p: torch.save({}, p), "holds an empty dict"),
        (lambda p: torch.save(Stranger(), p), "holds Python objects, not only tensors"),
        (lambda p: p.write_text("model weights are on the shared drive\n"), "cannot read"),
        (lambda p: p.write_bytes(b""), "cannot read"),
    ],
    ids=["plain-pickle", "no-tensors", "one-tensor", "empty", "custom-class", "text", "empty-file"],
)
def test_files_that_are_not_checkpoints_get_a_clear_error_naming_them(
    tmp_path: Path, write, says: str
) -> None:
    # Bad input: files that are no state dict; never a raw pickle / zip traceback.
    path = tmp_path / "weights.pth"
    write(path)
    with pytest.raises(UnreadableCheckpointError) as caught:
        load_torchreid_checkpoint(osnet("osnet_x0_25"), path)
    assert str(path) in str(caught.value)
    assert says in str(caught.value)


def test_missing_checkpoint_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(UnreadableCheckpointError, match=r"checkpoint not found: .*absent\.pth"):
        load_torchreid_checkpoint(osnet("osnet_x0_25"), tmp_path / "absent.pth")


@pytest.mark.parametrize("arch", list(WIDTHS))
def test_infer_osnet_arch_reads_the_width_of_the_stem(arch: str) -> None:
    state = osnet(arch).state_dict()
    assert infer_osnet_arch(state) == arch
    assert infer_osnet_arch({f"module.{k}": v for k, v in state.items()}) == arch


def test_infer_osnet_arch_refuses_a_state_dict_of_another_network() -> None:
    # Bad input: a ResNet state dict (its stem is "conv1.weight"), and an OSNet-named stem of a
    # width no OSNet has.
    with pytest.raises(CheckpointMismatchError, match=r"no conv1\.conv\.weight among its 1 keys"):
        infer_osnet_arch({"conv1.weight": torch.zeros(64, 3, 7, 7)})
    with pytest.raises(CheckpointMismatchError, match=r"shape \(24, 3, 7, 7\)"):
        infer_osnet_arch({"conv1.conv.weight": torch.zeros(24, 3, 7, 7)})


# --- fused ONNX exports ----------------------------------------------------------------------


def export_onnx(model: torch.nn.Module, path: Path) -> None:
    """PyTorch's TorchScript exporter, which folds eval-mode batch norms into convolutions and
    shares repeated constants through Identity nodes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's own deprecation notice
        torch.onnx.export(
            model.eval(),
            torch.zeros(1, 3, 256, 128),
            str(path),
            dynamo=False,
            input_names=["images"],
            output_names=["output"],
            dynamic_axes={"images": {0: "batch"}, "output": {0: "batch"}},
        )


def test_folded_export_of_a_random_network_imports_back_to_the_same_embeddings(
    tmp_path: Path,
) -> None:
    # Random batch-norm statistics make folding change every conv; a misplaced layer, a lost
    # bias or a wrong identity batch norm would move the embeddings.
    source = randomised(seed=14)
    export_onnx(source, tmp_path / "osnet.onnx")
    graph = onnx.load(tmp_path / "osnet.onnx").graph
    assert not any(n.op_type == "BatchNormalization" and "conv" in n.output[0] for n in graph.node)
    target = randomised(seed=15)

    import_fused_onnx(target, tmp_path / "osnet.onnx")

    images = crops()
    np.testing.assert_allclose(embed(target, images), embed(source, images), atol=1e-5)
    assert torch.equal(target.conv1.bn.weight, torch.ones(16))  # the identity batch norm
    assert torch.allclose(target.conv1.bn.running_var + target.conv1.bn.eps, torch.ones(16))


def real_pedestrian_crops(shared_dir: Path, count: int = 32) -> list[np.ndarray]:
    """``count`` crops spread over all MOT17-mini sequences: scored pedestrians at least 60%
    visible and 60 px tall."""
    candidates = []
    for sequence in find_mot_sequences(shared_dir / "data/real/mot17_mini/train"):
        for frame, boxes in sorted(sequence.gt.items()):
            if frame in sequence.frames:
                candidates += [
                    (sequence.frames[frame], box)
                    for box in boxes
                    if box.consider
                    and box.cls == PEDESTRIAN_CLASS
                    and box.visibility >= 0.6
                    and box.h >= 60
                ]
    assert len(candidates) >= count
    images: dict[Path, np.ndarray] = {}
    result = []
    for i in np.linspace(0, len(candidates) - 1, count).round().astype(int):
        path, box = candidates[i]
        image = images.setdefault(path, cv2.imread(str(path)))
        x0, y0, x1, y1 = (round(v) for v in box.as_xyxy())
        crop = image[max(y0, 0) : min(y1, image.shape[0]), max(x0, 0) : min(x1, image.shape[1])]
        result.append(np.ascontiguousarray(crop))
    return result


@pytest.fixture(scope="module")
def imported_msmt17(shared_dir: Path) -> OSNet:
    model = osnet("osnet_x0_25")
    import_fused_onnx(model, shared_dir / SHARED_ONNX)
    return model


@pytest.mark.shared
def test_imported_msmt17_weights_match_onnxruntime_on_real_pedestrians(
    shared_dir: Path, imported_msmt17: OSNet
) -> None:
    # The published torchreid OSNet x0.25 (MSMT17) export, through PyTorch and through
    # onnxruntime, on 32 real MOT17 crops: the same embedding per crop.
    images = real_pedestrian_crops(shared_dir)
    reference = OnnxReidEmbedder(shared_dir / SHARED_ONNX, threads=1).embed(images)
    ours = embed(imported_msmt17, images)
    cosine = (reference * ours).sum(1)
    print(f"min cosine torch vs onnxruntime over {len(images)} crops: {cosine.min():.7f}")
    assert cosine.min() >= 0.999
    # and the crops are different people: the check is not passed by 32 near-equal vectors
    assert (reference @ reference.T).min() < 0.9


def rename_initialisers(model: onnx.ModelProto, names: dict[str, str]) -> None:
    for tensor in model.graph.initializer:
        tensor.name = names.get(tensor.name, tensor.name)
    for node in model.graph.node:
        node.input[:] = [names.get(n, n) for n in node.input]


@pytest.mark.shared
def test_anonymous_initialiser_names_import_the_same_weights(
    shared_dir: Path, imported_msmt17: OSNet, tmp_path: Path
) -> None:
    # Names are not trusted: with every initialiser renamed "w0", "w1"... the walk over the
    # graph must place each tensor exactly as before.
    model = onnx.load(shared_dir / SHARED_ONNX)
    rename_initialisers(model, {t.name: f"w{i}" for i, t in enumerate(model.graph.initializer)})
    onnx.save(model, tmp_path / "anonymous.onnx")
    target = osnet("osnet_x0_25")
    import_fused_onnx(target, tmp_path / "anonymous.onnx")
    expected = imported_msmt17.state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in target.state_dict().items())


@pytest.mark.shared
def test_head_batch_norm_folded_into_the_gemm_imports_to_the_same_embeddings(
    shared_dir: Path, imported_msmt17: OSNet, tmp_path: Path
) -> None:
    # The published export keeps fc.1 as a BatchNormalization node; other exporters fold it into
    # the Gemm. Fold it here by hand (W' = W k, b' = (b - mean) k + beta, k = gamma / std).
    model = onnx.load(shared_dir / SHARED_ONNX)
    graph = model.graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    bn = next(n for n in graph.node if n.op_type == "BatchNormalization")
    gemm = next(n for n in graph.node if n.op_type == "Gemm")
    eps = next(a.f for a in bn.attribute if a.name == "epsilon")
    k = init["fc.1.weight"] / np.sqrt(init["fc.1.running_var"] + eps)
    weight = init["fc.0.weight"] * k[:, None]
    bias = (init["fc.0.bias"] - init["fc.1.running_mean"]) * k + init["fc.1.bias"]
    kept = [t for t in graph.initializer if not t.name.startswith(("fc.0.", "fc.1."))]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    graph.initializer.extend(
        [numpy_helper.from_array(weight, "fc.0.weight"), numpy_helper.from_array(bias, "fc.0.bias")]
    )
    gemm.output[0] = bn.output[0]
    graph.node.remove(bn)
    onnx.save(model, tmp_path / "folded_head.onnx")
    target = osnet("osnet_x0_25")

    import_fused_onnx(target, tmp_path / "folded_head.onnx")

    images = crops()
    np.testing.assert_allclose(embed(target, images), embed(imported_msmt17, images), atol=1e-5)
    assert torch.equal(target.fc[1].weight, torch.ones(512))


@pytest.mark.shared
def test_onnx_of_another_width_is_refused_naming_the_shape_and_its_width(
    shared_dir: Path,
) -> None:
    # Bad input: the x0.25 export for an x0.5 network.
    target = randomised("osnet_x0_5", seed=16)
    before = snapshot(target)
    with pytest.raises(CheckpointMismatchError) as caught:
        import_fused_onnx(target, shared_dir / SHARED_ONNX)
    message = str(caught.value)
    assert "does not fit osnet_x0_5 (the ONNX model looks like osnet_x0_25)" in message
    assert (
        "conv1.conv.weight the shape (16, 3, 7, 7), but the network's is (32, 3, 7, 7)" in message
    )
    assert_unchanged(target, before)


def add_input_scaling(model: onnx.ModelProto) -> None:
    """Bake a pixel scaling into the graph: a Mul by a constant before the stem."""
    graph = model.graph
    graph.initializer.append(numpy_helper.from_array(np.full(1, 0.5, np.float32), "pixel_scale"))
    graph.node.insert(0, helper.make_node("Mul", ["images", "pixel_scale"], ["scaled"]))
    graph.node[1].input[0] = "scaled"


def add_dangling_initialiser(model: onnx.ModelProto) -> None:
    model.graph.initializer.append(numpy_helper.from_array(np.ones(8, np.float32), "calibration"))


@pytest.mark.shared
@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (add_input_scaling, "conv1.conv (Conv2d) meets Mul 'scaled' where the graph should"),
        (add_dangling_initialiser, "1 initialisers have no place in the network: calibration"),
    ],
    ids=["baked-in-scaling", "dangling-initialiser"],
)
def test_graph_with_weights_the_network_cannot_hold_is_refused(
    shared_dir: Path, tmp_path: Path, edit, says: str
) -> None:
    # Bad input: an export with an extra constant-carrying op, or a stray weight tensor.
    model = onnx.load(shared_dir / SHARED_ONNX)
    edit(model)
    onnx.save(model, tmp_path / "edited.onnx")
    with pytest.raises(CheckpointMismatchError, match=re.escape(says)):
        import_fused_onnx(osnet("osnet_x0_25"), tmp_path / "edited.onnx")


@pytest.mark.shared
def test_truncated_onnx_file_is_reported_by_name(shared_dir: Path, tmp_path: Path) -> None:
    # Bad input: a copy cut off half way.
    whole = (shared_dir / SHARED_ONNX).read_bytes()
    (tmp_path / "cut.onnx").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(UnreadableCheckpointError, match=r"cut\.onnx: the file is truncated"):
        import_fused_onnx(osnet("osnet_x0_25"), tmp_path / "cut.onnx")


def test_missing_onnx_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(UnreadableCheckpointError, match=r"ONNX model not found: .*none\.onnx"):
        import_fused_onnx(osnet("osnet_x0_25"), tmp_path / "none.onnx")
