"""OSNet, the omni-scale re-ID network (Zhou et al., ICCV 2019), written from the paper.

Each bottleneck ("OS block") runs T = 4 streams of 1, 2, 3 and 4 stacked lightweight 3x3 convs
(pointwise + depthwise), so the streams see receptive fields of 3, 5, 7 and 9 pixels; one shared
"aggregation gate" (a tiny channel-attention MLP) weights each stream per channel before they are
summed, which lets the network mix scales per image. The stem is a 7x7 conv and a max-pool,
stages 2-3 end in a 1x1 conv + 2x2 average-pool transition, and the head is global average pooling
then a 512-d fully connected layer with batch norm and ReLU: that 512-d vector is the embedding.

Module and parameter names follow the public torchreid release (``conv1.conv.weight``,
``conv2.0.conv2a.conv1.weight``, ``conv2.0.gate.fc1.weight``, ``fc.0.weight``, ``classifier.*``),
so checkpoints published for torchreid load with ``strict=True`` (see ``osnet_weights``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

# Stage widths of the four published sizes (Table 1 of the paper, scaled by the width multiplier).
WIDTHS: dict[str, tuple[int, int, int, int]] = {
    "osnet_x1_0": (64, 256, 384, 512),
    "osnet_x0_75": (48, 192, 288, 384),
    "osnet_x0_5": (32, 128, 192, 256),
    "osnet_x0_25": (16, 64, 96, 128),
}
FEATURE_DIM = 512


class ConvLayer(nn.Module):
    """conv + batch norm + ReLU (the stem)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class Conv1x1(nn.Module):
    """1x1 conv + batch norm, with ReLU unless ``linear``."""

    def __init__(self, cin: int, cout: int, linear: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.linear = linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return x if self.linear else F.relu(x)


class LightConv3x3(nn.Module):
    """The paper's "Lite 3x3": pointwise conv, then depthwise 3x3, batch norm, ReLU."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False, groups=cout)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv2(self.conv1(x))))


class ChannelGate(nn.Module):
    """The aggregation gate: global pool, 1x1 conv down by 16, ReLU, 1x1 conv up, sigmoid."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = F.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(w))))


class OSBlock(nn.Module):
    """Omni-scale residual bottleneck: 1x1 reduce (by 4), four gated streams, 1x1 expand."""

    def __init__(self, cin: int, cout: int, reduction: int = 4):
        super().__init__()
        mid = cout // reduction
        self.conv1 = Conv1x1(cin, mid)
        self.conv2a = LightConv3x3(mid, mid)
        self.conv2b = nn.Sequential(*(LightConv3x3(mid, mid) for _ in range(2)))
        self.conv2c = nn.Sequential(*(LightConv3x3(mid, mid) for _ in range(3)))
        self.conv2d = nn.Sequential(*(LightConv3x3(mid, mid) for _ in range(4)))
        self.gate = ChannelGate(mid)
        self.conv3 = Conv1x1(mid, cout, linear=True)
        self.downsample = Conv1x1(cin, cout, linear=True) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv1(x)
        streams = (self.conv2a(x1), self.conv2b(x1), self.conv2c(x1), self.conv2d(x1))
        out = self.conv3(sum(self.gate(s) for s in streams))
        # conv3 runs before downsample, as in torchreid, so traced graphs (ONNX exports) list the
        # layers in the same order; ``osnet_weights.import_fused_onnx`` relies on that order.
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


def _stage(cin: int, cout: int, blocks: int, reduce: bool) -> nn.Sequential:
    layers: list[nn.Module] = [OSBlock(cin, cout)]
    layers += [OSBlock(cout, cout) for _ in range(blocks - 1)]
    if reduce:  # transition: 1x1 conv then 2x2 average pooling
        layers.append(nn.Sequential(Conv1x1(cout, cout), nn.AvgPool2d(2, stride=2)))
    return nn.Sequential(*layers)


class OSNet(nn.Module):
    """OSNet backbone + 512-d embedding head (+ identity classifier for training).

    ``forward`` returns the embedding in eval mode, and ``(logits, embedding)`` in training mode
    when a classifier exists (``num_classes > 0``): the embedding feeds the triplet loss, the
    logits the identity loss.
    """

    def __init__(self, arch: str = "osnet_x1_0", num_classes: int = 0):
        super().__init__()
        if arch not in WIDTHS:
            raise ValueError(f"unknown OSNet size {arch!r}; known: {', '.join(WIDTHS)}")
        c = WIDTHS[arch]
        self.arch = arch
        self.feature_dim = FEATURE_DIM
        self.conv1 = ConvLayer(3, c[0], 7, stride=2, padding=3)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = _stage(c[0], c[1], 2, reduce=True)
        self.conv3 = _stage(c[1], c[2], 2, reduce=True)
        self.conv4 = _stage(c[2], c[3], 2, reduce=False)
        self.conv5 = Conv1x1(c[3], c[3])
        self.fc = nn.Sequential(
            nn.Linear(c[3], FEATURE_DIM), nn.BatchNorm1d(FEATURE_DIM), nn.ReLU(inplace=True)
        )
        self.classifier = nn.Linear(FEATURE_DIM, num_classes) if num_classes > 0 else None
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        return self.conv5(self.conv4(self.conv3(self.conv2(x))))

    def forward(self, x: torch.Tensor):
        v = F.adaptive_avg_pool2d(self.feature_maps(x), 1).flatten(1)
        v = self.fc(v)
        if self.training and self.classifier is not None:
            return self.classifier(v), v
        return v


def osnet(arch: str, num_classes: int = 0) -> OSNet:
    return OSNet(arch, num_classes)


def count_parameters(model: nn.Module, exclude_classifier: bool = True) -> int:
    return sum(
        p.numel()
        for name, p in model.named_parameters()
        if not (exclude_classifier and name.startswith("classifier."))
    )
