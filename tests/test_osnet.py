"""Specification of OSNet (``reunite.models.osnet``): the sizes the paper and the torchreid model
zoo publish, the outputs in each mode, and torchreid's parameter names, so that published
checkpoints load strictly."""

from __future__ import annotations

import onnx
import pytest
import torch
from onnx import numpy_helper

from reunite.models.osnet import WIDTHS, count_parameters, osnet

torch.set_num_threads(1)

# Parameters without the classifier. The OSNet paper and torchreid's model zoo give them in
# millions to one decimal; the exact counts are those of torchreid's release (its osnet_x*
# builders with the classifier left out), so any change to a layer shows up here.
PUBLISHED_MILLIONS = {"osnet_x1_0": 2.2, "osnet_x0_75": 1.3, "osnet_x0_5": 0.6, "osnet_x0_25": 0.2}
TORCHREID_COUNTS = {
    "osnet_x1_0": 2_169_508,
    "osnet_x0_75": 1_285_754,
    "osnet_x0_5": 630_034,
    "osnet_x0_25": 201_864,
}
BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def torchreid_state_dict_keys() -> list[str]:
    """torchreid's OSNet state-dict keys in order, spelled out from its naming scheme: stem
    ``conv1.conv/bn``; stages ``conv2``-``conv4`` of two OS blocks (the first with a
    ``downsample``), ``conv2``/``conv3`` ending in a transition ``<stage>.2.0.conv/bn``; each
    block ``conv1``, ``conv2a`` and the ``conv2b/c/d`` stacks of 2/3/4 lite 3x3 convs
    (``conv1``, ``conv2``, ``bn``), ``gate.fc1/fc2`` with biases, ``conv3``; then ``conv5``,
    ``fc.0`` (Linear), ``fc.1`` (BatchNorm1d) and ``classifier``."""

    def conv_bn(prefix: str) -> list[str]:
        return [f"{prefix}.conv.weight", *(f"{prefix}.bn.{b}" for b in BN)]

    def lite(prefix: str) -> list[str]:
        return [
            f"{prefix}.conv1.weight",
            f"{prefix}.conv2.weight",
            *(f"{prefix}.bn.{b}" for b in BN),
        ]

    def block(prefix: str, downsample: bool) -> list[str]:
        keys = conv_bn(f"{prefix}.conv1") + lite(f"{prefix}.conv2a")
        for stream, depth in (("conv2b", 2), ("conv2c", 3), ("conv2d", 4)):
            for i in range(depth):
                keys += lite(f"{prefix}.{stream}.{i}")
        keys += [f"{prefix}.gate.{fc}.{p}" for fc in ("fc1", "fc2") for p in ("weight", "bias")]
        keys += conv_bn(f"{prefix}.conv3")
        return keys + (conv_bn(f"{prefix}.downsample") if downsample else [])

    keys = conv_bn("conv1")
    for stage, transition in (("conv2", True), ("conv3", True), ("conv4", False)):
        keys += block(f"{stage}.0", downsample=True) + block(f"{stage}.1", downsample=False)
        if transition:
            keys += conv_bn(f"{stage}.2.0")
    keys += conv_bn("conv5")
    keys += ["fc.0.weight", "fc.0.bias", *(f"fc.1.{b}" for b in BN)]
    return [*keys, "classifier.weight", "classifier.bias"]


@pytest.mark.parametrize("arch", list(WIDTHS))
def test_parameter_count_without_classifier_matches_the_published_size(arch: str) -> None:
    # A missing stream, a gate without bias or a wrong stage width changes the count.
    count = count_parameters(osnet(arch, num_classes=751))
    assert count == TORCHREID_COUNTS[arch]
    assert round(count / 1e6, 1) == PUBLISHED_MILLIONS[arch]
    # the classifier is excluded: 751 classes add 512 * 751 + 751 parameters on top
    assert count_parameters(osnet(arch, 751), exclude_classifier=False) == count + 513 * 751


def test_eval_mode_gives_non_negative_512_d_embeddings_without_a_classifier_output() -> None:
    # torchreid's head ends in ReLU: an embedding with negative entries means a missing ReLU.
    model = osnet("osnet_x0_25", num_classes=10).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 256, 128))
    assert isinstance(out, torch.Tensor)
    assert out.shape == (2, 512)
    assert (out >= 0).all()
    assert model.feature_dim == 512


def test_train_mode_gives_logits_and_the_embedding_when_a_classifier_exists() -> None:
    model = osnet("osnet_x0_25", num_classes=10).train()
    logits, features = model(torch.randn(2, 3, 256, 128))
    assert logits.shape == (2, 10)
    assert features.shape == (2, 512)
    # without a classifier, training mode has nothing to classify: the embedding alone
    assert osnet("osnet_x0_25").train()(torch.randn(2, 3, 256, 128)).shape == (2, 512)


def test_feature_maps_are_16x8_times_smaller_than_a_256x128_input() -> None:
    # Stem stride 2, max-pool 2, two transitions of 2: a 16x downsampling, 16x8 for 256x128.
    maps = osnet("osnet_x0_25").eval().feature_maps(torch.zeros(1, 3, 256, 128))
    assert maps.shape == (1, WIDTHS["osnet_x0_25"][3], 16, 8)


def test_unknown_width_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="osnet_x0_25"):
        osnet("osnet_x2_0")


def test_state_dict_keys_are_torchreids_in_order() -> None:
    # The full key list of osnet_x0_25 with a classifier (567 keys), compared in order: a renamed
    # module, an extra buffer or a reordered layer breaks strict loading of torchreid files.
    state = osnet("osnet_x0_25", num_classes=10).state_dict()
    expected = torchreid_state_dict_keys()
    assert len(expected) == 567
    assert list(state) == expected
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    assert shapes["conv1.conv.weight"] == (16, 3, 7, 7)
    assert shapes["conv2.0.conv2a.conv2.weight"] == (16, 1, 3, 3)  # depthwise
    assert shapes["conv2.0.gate.fc1.weight"] == (1, 16, 1, 1)  # reduction 16
    assert shapes["conv2.0.downsample.conv.weight"] == (64, 16, 1, 1)
    assert shapes["conv3.2.0.conv.weight"] == (96, 96, 1, 1)  # transition
    assert shapes["fc.0.weight"] == (512, 128)
    assert "conv4.2.0.conv.weight" not in shapes  # no transition after the last stage


@pytest.mark.shared
def test_named_initialisers_of_torchreids_onnx_export_are_network_keys_of_the_same_shape(
    shared_dir,
) -> None:
    # The export keeps torch names for tensors it did not fold (the 1x1 convs inside lite 3x3
    # blocks, the gates, the fc head): each must be a key of the network with its shape.
    graph = onnx.load(shared_dir / "models/osnet_x0_25_msmt17/osnet_x0_25_msmt17.onnx").graph
    named = {
        t.name: numpy_helper.to_array(t).shape
        for t in graph.initializer
        if not t.name.startswith(("onnx::", "/"))
    }
    state = osnet("osnet_x0_25").state_dict()
    assert len(named) == 90  # 6 blocks x (10 lite 1x1 convs + 4 gate tensors) + 6 in the fc head
    assert {k: tuple(state[k].shape) for k in named if k in state} == named
    assert "fc.1.running_var" in named and "conv4.1.gate.fc2.bias" in named
