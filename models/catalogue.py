"""The models Reunite knows without a folder: two weight-free baselines built in, and published
third-party models that ``reunite models pull`` installs from their official URLs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reunite.models.color_histogram import ColorHistogramEmbedder
from reunite.models.embedder import Embedder
from reunite.models.model_card import ModelCard
from reunite.models.preprocessing import OPENVINO_OMZ, TORCHREID, Preprocessing


@dataclass(frozen=True)
class RemoteFile:
    """One file of a downloadable model; ``sha256`` is None where upstream publishes none."""

    name: str
    url: str
    sha256: str | None


@dataclass(frozen=True)
class PublishedModel:
    """A third-party model ``pull`` can install: its card (less the checksums the download
    fills in) and its files, the weights first."""

    card: ModelCard
    files: tuple[RemoteFile, ...]


_HISTOGRAM_INPUT = Preprocessing(
    channel_order="bgr", scale=1.0, mean=(0, 0, 0), std=(1, 1, 1), interpolation="area"
)


def _histogram_card(name: str, description: str) -> ModelCard:
    return ModelCard(
        name=name,
        architecture="color_histogram",
        preprocessing=_HISTOGRAM_INPUT,
        embedding_dim=ColorHistogramEmbedder.dim,
        licence="Apache-2.0",
        description=description,
    )


BUILT_IN: dict[str, tuple[ModelCard, Callable[[], Embedder]]] = {
    "color_histogram": (
        _histogram_card(
            "color_histogram",
            "Hand-crafted baseline: HSV histograms of the upper and lower body; no training, "
            "no weights. The floor any learned model must beat.",
        ),
        ColorHistogramEmbedder,
    ),
    "color_histogram_centre50": (
        _histogram_card(
            "color_histogram_centre50",
            "The colour-histogram baseline on the central half of each crop's width, which "
            "leaves out most of the background of loose detector boxes.",
        ),
        lambda: ColorHistogramEmbedder(centre_fraction=0.5),
    ),
}

_TORCHREID_URL = "https://drive.google.com/uc?export=download&id=1sSwXSUlj4_tHZequ_iZ8w_Jh0VaRQMqF"
_OMZ_URL = (
    "https://storage.openvinotoolkit.org/repositories/open_model_zoo/2023.0/models_bin/1/"
    "person-reidentification-retail-0288/FP32/person-reidentification-retail-0288"
)

PUBLISHED: dict[str, PublishedModel] = {
    "osnet_x0_25_msmt17": PublishedModel(
        card=ModelCard(
            name="osnet_x0_25_msmt17",
            architecture="osnet_x0_25",
            preprocessing=TORCHREID,
            embedding_dim=512,
            weights="osnet_x0_25_msmt17.pth",
            weights_format="torchreid",
            licence="MIT",
            description=(
                "OSNet x0.25 trained on MSMT17 by the torchreid authors (model zoo, same-domain "
                "table), MIT-licensed; MSMT17, its training data, is licensed for research "
                "only. No checksum is published for this file: `reunite models pull` checks it "
                "by a strict load into osnet_x0_25 and pins the sha256 it got in the installed "
                "card, which every later load verifies."
            ),
            training={
                "data": "MSMT17 (train)",
                "by": "torchreid authors (Zhou et al.)",
                "loss": "softmax cross-entropy with label smoothing",
                "input": "256x128",
                "transforms": "random_flip",
                "docs": "https://kaiyangzhou.github.io/deep-person-reid/MODEL_ZOO",
            },
            metrics={
                "msmt17": {"rank1": 0.614, "mAP": 0.295, "source": "torchreid MODEL_ZOO"},
            },
            source_url=_TORCHREID_URL,
        ),
        files=(RemoteFile("osnet_x0_25_msmt17.pth", _TORCHREID_URL, None),),
    ),
    "person-reidentification-retail-0288": PublishedModel(
        card=ModelCard(
            name="person-reidentification-retail-0288",
            architecture="openvino",
            preprocessing=OPENVINO_OMZ,
            embedding_dim=256,
            weights="person-reidentification-retail-0288.xml",
            licence="Apache-2.0",
            description=(
                "Intel Open Model Zoo person re-identification model (OmniScaleNet backbone, "
                "0.183 M parameters), OpenVINO IR FP32; BGR 0-255 input, compare embeddings "
                "by cosine distance."
            ),
            training={
                "by": "Intel",
                "framework": "PyTorch, converted to OpenVINO IR",
                "data": "not published",
                "docs": "https://github.com/openvinotoolkit/open_model_zoo/tree/master/models/"
                "intel/person-reidentification-retail-0288",
            },
            metrics={
                "market1501": {"rank1": 0.861, "mAP": 0.58857, "source": "Open Model Zoo docs"},
            },
            source_url=f"{_OMZ_URL}.xml",
        ),
        files=(
            RemoteFile(
                "person-reidentification-retail-0288.xml",
                f"{_OMZ_URL}.xml",
                "30f452b2ed2763f7bf429eea23f8f243ad0e7f3cdd7226db6888f1660efb3424",
            ),
            RemoteFile(
                "person-reidentification-retail-0288.bin",
                f"{_OMZ_URL}.bin",
                "6496b8d51741703c9e9c7f6474cb96c60de1856d7b4fd77235e48cea146066a5",
            ),
        ),
    ),
}
