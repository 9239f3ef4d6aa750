"""The "Bag of Tricks" strong re-ID baseline (Luo et al., CVPR Workshops 2019), from the paper.

A ResNet-50 whose last stage keeps stride 1, so a 256x128 input gives a 16x8 final map instead of
8x4: more spatial detail for the same weights, at little cost. Global average pooling gives the
2048-d feature ``f_t``, on which the triplet loss works; a BatchNorm1d, the "BNNeck", turns it
into ``f_i`` for the identity (softmax) loss and for retrieval. The two losses want different
geometry (triplet: free Euclidean space; softmax: separable directions on a hypersphere), and the
BNNeck lets each act on its own side. Its bias is frozen (no shift), and the classifier after it
has no bias, as in the paper, so the classes stay separated by direction around the origin.

Module names follow torchvision's ResNet (``conv1``, ``bn1``, ``layer1``..``layer4`` of
Bottleneck blocks ``conv1/bn1/conv2/bn2/conv3/bn3/downsample.0/.1``, stride on the 3x3 conv), so
torchvision's ImageNet weights load into it without renaming (all but their ``fc``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

FEATURE_DIM = 2048
_STAGES = ((64, 3), (128, 4), (256, 6), (512, 3))  # (bottleneck width, blocks): ResNet-50
_EXPANSION = 4


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand by 4; projection shortcut when the shape
    changes."""

    def __init__(self, cin: int, width: int, stride: int = 1):
        super().__init__()
        cout = width * _EXPANSION
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet50BNNeck(nn.Module):
    """``forward``: eval -> (N, 2048) post-BNNeck embedding; train with a classifier ->
    ``(logits, f_t)``, the logits for the identity loss, the pre-BNNeck feature for the triplet
    loss; train without a classifier -> the embedding, as in eval."""

    def __init__(self, num_classes: int = 0, last_stride: int = 1):
        super().__init__()
        self.feature_dim = FEATURE_DIM
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin = 64
        stages = []
        for i, (width, blocks) in enumerate(_STAGES):
            stride = 1 if i == 0 else (last_stride if i == len(_STAGES) - 1 else 2)
            layers = [Bottleneck(cin, width, stride)]
            cin = width * _EXPANSION
            layers += [Bottleneck(cin, width) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.bottleneck = nn.BatchNorm1d(FEATURE_DIM)
        self.bottleneck.bias.requires_grad_(False)  # the BNNeck only scales: no shift to learn
        self.classifier = (
            nn.Linear(FEATURE_DIM, num_classes, bias=False) if num_classes > 0 else None
        )
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if self.classifier is not None:
            nn.init.normal_(self.classifier.weight, std=0.001)

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: torch.Tensor):
        feature = F.adaptive_avg_pool2d(self.feature_maps(x), 1).flatten(1)
        embedding = self.bottleneck(feature)
        if self.training and self.classifier is not None:
            return self.classifier(embedding), feature
        return embedding


def resnet50_bnneck(num_classes: int = 0) -> ResNet50BNNeck:
    return ResNet50BNNeck(num_classes)
