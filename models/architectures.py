"""Every trainable re-ID architecture by name: the one place a model card's ``architecture`` is
turned into a network, for training, checkpoint loading and the registry alike."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from reunite.models.osnet import WIDTHS, osnet


def _resnet50_bnneck(num_classes: int) -> nn.Module:
    from reunite.models.resnet_bnneck import resnet50_bnneck

    return resnet50_bnneck(num_classes=num_classes)


def _mobilenetv2_reid(num_classes: int) -> nn.Module:
    from reunite.models.mobilenet_reid import mobilenetv2_reid

    return mobilenetv2_reid(num_classes=num_classes)


# The layout of `reunite train` checkpoints (architecture, preprocessing, model, optimiser, ...):
# written by reunite.training, read by the registry.
TRAIN_CHECKPOINT_FORMAT = "reunite-train-checkpoint/1"

BUILDERS: dict[str, Callable[[int], nn.Module]] = {
    **{arch: (lambda n, a=arch: osnet(a, n)) for arch in WIDTHS},
    "resnet50_bnneck": _resnet50_bnneck,
    "mobilenetv2_reid": _mobilenetv2_reid,
}


def build_network(architecture: str, num_classes: int = 0) -> nn.Module:
    """A freshly initialised network; ``num_classes`` > 0 adds the identity classifier."""
    if architecture not in BUILDERS:
        raise ValueError(f"unknown architecture {architecture!r}; known: {', '.join(BUILDERS)}")
    return BUILDERS[architecture](num_classes)
