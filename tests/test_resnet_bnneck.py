"""Specification of the "Bag of Tricks" ResNet-50 BNNeck baseline
(``reunite.models.resnet_bnneck``): ResNet-50's size and torchvision's names, last stride 1, and
the BNNeck's two sides."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from reunite.models.resnet_bnneck import ResNet50BNNeck, resnet50_bnneck

torch.set_num_threads(1)

# torchvision's resnet50 has 25,557,032 parameters, of which its ImageNet fc holds
# 2048 * 1000 + 1000 = 2,049,000: the backbone is 23,508,032.
RESNET50_BACKBONE = 23_508_032
BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def torchvision_resnet50_keys() -> list[str]:
    """torchvision's ResNet-50 state-dict keys without ``fc``, in order."""

    def bn(prefix: str) -> list[str]:
        return [f"{prefix}.{b}" for b in BN]

    keys = ["conv1.weight", *bn("bn1")]
    for stage, blocks in enumerate((3, 4, 6, 3), start=1):
        for block in range(blocks):
            p = f"layer{stage}.{block}"
            for i in (1, 2, 3):
                keys += [f"{p}.conv{i}.weight", *bn(f"{p}.bn{i}")]
            if block == 0:
                keys += [f"{p}.downsample.0.weight", *bn(f"{p}.downsample.1")]
    return keys


@pytest.fixture(scope="module")
def model() -> ResNet50BNNeck:
    torch.manual_seed(0)
    return resnet50_bnneck(num_classes=12)


@pytest.fixture(scope="module")
def batch() -> torch.Tensor:
    return torch.randn(2, 3, 256, 128, generator=torch.Generator().manual_seed(1))


def test_backbone_is_resnet50_with_torchvisions_names(model: ResNet50BNNeck) -> None:
    # A missing block, a biased conv or a renamed module breaks loading ImageNet weights.
    state = model.state_dict()
    backbone = [k for k in state if not k.startswith(("bottleneck.", "classifier."))]
    assert backbone == torchvision_resnet50_keys()
    sizes = {k: p.numel() for k, p in model.named_parameters()}
    head = ("bottleneck.", "classifier.")
    assert sum(n for k, n in sizes.items() if not k.startswith(head)) == RESNET50_BACKBONE
    assert sum(sizes.values()) == RESNET50_BACKBONE + 2 * 2048 + 12 * 2048  # BNNeck + classifier
    assert tuple(state["layer4.0.conv2.weight"].shape) == (512, 512, 3, 3)
    assert tuple(state["classifier.weight"].shape) == (12, 2048)
    assert "classifier.bias" not in state  # the classifier after the BNNeck has no bias
    assert model.feature_dim == 2048


def test_last_stage_keeps_stride_1_so_256x128_gives_a_16x8_map(
    model: ResNet50BNNeck, batch: torch.Tensor
) -> None:
    # With torchvision's stride 2 in layer4 the map would be 8x4.
    assert model.layer4[0].conv2.stride == (1, 1)
    assert model.layer4[0].downsample[0].stride == (1, 1)
    assert model.layer3[0].conv2.stride == (2, 2)  # the other stages downsample as usual
    with torch.no_grad():
        maps = model.eval().feature_maps(batch)
    assert maps.shape == (2, 2048, 16, 8)


def test_eval_gives_the_feature_after_the_bnneck(
    model: ResNet50BNNeck, batch: torch.Tensor
) -> None:
    # Returning the pre-BN feature (or logits) in eval would still be (N, 2048)-ish: compare
    # with the BNNeck applied by hand to pooled feature maps.
    model.eval()
    with torch.no_grad():
        model.bottleneck.running_mean.normal_(0, 0.1)  # so that the BNNeck visibly transforms
        model.bottleneck.running_var.uniform_(0.5, 2.0)
        embedding = model(batch)
        pooled = F.adaptive_avg_pool2d(model.feature_maps(batch), 1).flatten(1)
        bn = model.bottleneck
        by_hand = (pooled - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight
    assert embedding.shape == (2, 2048)
    torch.testing.assert_close(embedding, by_hand, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(embedding, pooled, atol=1e-3)


def test_train_gives_logits_after_and_the_feature_before_the_bnneck(
    model: ResNet50BNNeck, batch: torch.Tensor
) -> None:
    # Triplet loss on f_t (before the BNNeck), identity loss on logits of f_i (after it); a
    # swapped pair, or the post-BN feature returned, fails the comparisons.
    model.train()
    logits, feature = model(batch)
    assert logits.shape == (2, 12)
    assert feature.shape == (2, 2048)
    with torch.no_grad():
        pooled = F.adaptive_avg_pool2d(model.feature_maps(batch), 1).flatten(1)
        torch.testing.assert_close(feature.detach(), pooled, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(logits.detach(), model.classifier(model.bottleneck(pooled)))

    (logits.sum() + feature.sum()).backward()
    assert model.bottleneck.bias.grad is None  # frozen: no shift is learnt
    assert model.bottleneck.weight.grad is not None
    assert model.classifier.weight.grad is not None
    trainable = {k for k, p in model.named_parameters() if p.requires_grad}
    assert "bottleneck.bias" not in trainable and "bottleneck.weight" in trainable
    model.zero_grad(set_to_none=True)
    model.eval()


def test_without_classes_there_is_no_classifier_and_training_gives_the_embedding() -> None:
    bare = resnet50_bnneck()
    assert bare.classifier is None
    assert not any(k.startswith("classifier.") for k in bare.state_dict())
    with torch.no_grad():
        out = bare.train()(torch.randn(2, 3, 64, 32))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 2048)
