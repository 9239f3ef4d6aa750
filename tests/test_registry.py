"""Specification of the model registry: cards, checksums, every kind of ``--model`` value, and
installing published models (served from a real local HTTP server, never the internet)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from test_model_download import UNREACHABLE, http_server

from reunite.errors import (
    CheckpointMismatchError,
    DownloadError,
    InvalidOptionError,
    ModelCardError,
    ModelIntegrityError,
    ModelNotFoundError,
    UnreadableCheckpointError,
)
from reunite.models.architectures import build_network
from reunite.models.color_histogram import ColorHistogramEmbedder
from reunite.models.onnx_reid import OnnxReidEmbedder
from reunite.models.openvino_reid import OpenVinoReidEmbedder
from reunite.models.preprocessing import OPENVINO_OMZ, TORCHREID, Preprocessing
from reunite.models.registry import (
    PUBLISHED,
    TRAIN_CHECKPOINT_FORMAT,
    ModelCard,
    Registry,
    load_embedder,
    save_card_model,
)
from reunite.models.torch_reid import TorchReidEmbedder

OMZ_0288 = Path("models/openvino_omz/person-reidentification-retail-0288/FP32")

torch.set_num_threads(1)


@pytest.fixture
def serve() -> Iterator:
    """``serve(folder) -> base URL`` of a real local HTTP server (see test_model_download)."""
    with contextlib.ExitStack() as stack:
        yield lambda folder: stack.enter_context(http_server(folder))


@pytest.fixture
def crops() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(96, 40), (200, 70)]]


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    """A zoo-like root in tmp_path, a user data folder, and no shipped zoo."""
    (tmp_path / "zoo").mkdir()
    return Registry(roots=[tmp_path / "zoo"], data_dir=tmp_path / "data", zoo=None)


def tiny_card(name: str = "tiny-osnet", **changes) -> ModelCard:
    fields = {
        "name": name,
        "architecture": "osnet_x0_25",
        "preprocessing": TORCHREID,
        "embedding_dim": 512,
        "licence": "Apache-2.0",
        "description": "randomly initialised, for tests",
        "metrics": {"synth": {"rank1": 0.5, "mAP": 0.25}},
    }
    return ModelCard(**{**fields, **changes})


def reference(network: torch.nn.Module, crops: list[np.ndarray], prep=TORCHREID) -> np.ndarray:
    return TorchReidEmbedder(network, prep, "reference").embed(crops)


@pytest.fixture
def trained(registry: Registry) -> tuple[torch.nn.Module, Path]:
    """A randomly initialised OSNet x0.25 with a 7-class classifier, saved into the zoo root."""
    torch.manual_seed(0)
    network = build_network("osnet_x0_25", num_classes=7)
    folder = registry.roots[0] / "tiny-osnet"
    save_card_model(folder, network, tiny_card())
    return network, folder


# --- cards, saving, checksums --------------------------------------------------------------------


def test_save_card_model_writes_weights_without_classifier_and_a_card_with_their_sha256(trained):
    _, folder = trained
    state = torch.load(folder / "weights.pt", weights_only=True)
    card = json.loads((folder / "card.json").read_text())
    assert state and not any(k.startswith("classifier.") for k in state)
    build_network("osnet_x0_25").load_state_dict(state, strict=True)
    assert card["weights"] == "weights.pt" and card["weights_format"] == "state_dict"
    assert card["sha256"] == hashlib.sha256((folder / "weights.pt").read_bytes()).hexdigest()
    assert sorted(p.name for p in folder.iterdir()) == ["card.json", "weights.pt"]


def test_a_saved_model_loads_by_name_and_by_folder_and_embeds_like_the_network(
    trained, registry, crops
):
    network, folder = trained
    by_name = load_embedder("tiny-osnet", registry=registry, batch_size=1)
    by_folder = load_embedder(str(folder), registry=registry)
    assert (by_name.name, by_name.dim) == ("tiny-osnet", 512)
    np.testing.assert_allclose(by_name.embed(crops), reference(network, crops), atol=1e-6)
    np.testing.assert_allclose(by_folder.embed(crops), reference(network, crops), atol=1e-6)


def test_a_truncated_weights_file_is_refused_naming_the_file(trained, registry):
    # Bad input: weights cut short (an interrupted copy).
    _, folder = trained
    weights = folder / "weights.pt"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelIntegrityError, match=rf"{weights} is corrupt, truncated or replaced"):
        load_embedder("tiny-osnet", registry=registry)


def test_weights_changed_by_one_byte_are_refused(trained, registry):
    # Bad input: same size, one byte different: only the checksum can tell.
    _, folder = trained
    data = bytearray((folder / "weights.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "weights.pt").write_bytes(bytes(data))
    with pytest.raises(
        ModelIntegrityError, match=r"sha256 is [0-9a-f]{64}, the card of tiny-osnet"
    ):
        load_embedder("tiny-osnet", registry=registry)


def test_a_card_without_a_checksum_is_refused_and_told_the_checksum_to_add(trained, registry):
    # Bad input: a hand-written card that names weights but no sha256.
    _, folder = trained
    card = json.loads((folder / "card.json").read_text())
    digest, card["sha256"] = card["sha256"], None
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelCardError, match=f'add "sha256": "{digest}" to the card'):
        load_embedder("tiny-osnet", registry=registry)


def test_save_card_model_refuses_a_wrong_embedding_dim_and_other_weights(tmp_path):
    # Bad input: a card that says 256-d for a 512-d network; then weights of another width.
    torch.manual_seed(0)
    network = build_network("osnet_x0_25")
    with pytest.raises(ModelCardError, match="says embedding_dim 256 but osnet_x0_25 gives 512"):
        save_card_model(tmp_path / "a", network, tiny_card(embedding_dim=256))
    with pytest.raises(CheckpointMismatchError, match="does not fit osnet_x0_5"):
        save_card_model(tmp_path / "b", network, tiny_card(architecture="osnet_x0_5"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_card_that_is_not_valid_names_the_file_and_the_field(registry):
    # Bad input: a card.json missing its licence, with a weights path escaping its folder.
    folder = registry.roots[0] / "broken"
    folder.mkdir()
    card = tiny_card("broken").model_dump(mode="json") | {"weights": "../../etc/passwd"}
    del card["licence"]
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelCardError) as caught:
        load_embedder("broken", registry=registry)
    assert str(folder / "card.json") in str(caught.value)
    assert "licence: Field required" in str(caught.value)
    assert "weights: Value error, must be a file name inside the card's folder" in str(caught.value)
    assert "broken" not in [e.card.name for e in registry.entries()]  # listing skips it


def test_a_card_whose_name_differs_from_its_folder_is_refused(trained, registry):
    # Bad input: a model folder copied under a new name without editing its card.
    _, folder = trained
    shutil.copytree(folder, folder.parent / "renamed")
    with pytest.raises(ModelCardError, match="names the model 'tiny-osnet' but its folder is"):
        load_embedder("renamed", registry=registry)


def test_extra_roots_are_searched_before_the_user_folder(trained, registry, tmp_path):
    _, folder = trained
    user_copy = registry.user_dir / "tiny-osnet"
    save_card_model(user_copy, build_network("osnet_x0_25"), tiny_card(version="0.0.1"))
    assert registry.get("tiny-osnet").folder == folder
    assert Registry(data_dir=tmp_path / "data", zoo=None).get("tiny-osnet").folder == user_copy


# --- names -------------------------------------------------------------------------------------


def test_the_colour_histogram_baselines_are_built_in(registry, crops):
    plain = load_embedder("color_histogram", registry=registry)
    centre = load_embedder("color_histogram_centre50", registry=registry)
    assert isinstance(plain, ColorHistogramEmbedder) and plain.centre_fraction == 1.0
    assert isinstance(centre, ColorHistogramEmbedder) and centre.centre_fraction == 0.5
    assert registry.get("color_histogram").status == "built-in"
    assert centre.embed(crops).shape == (2, 256)


def test_an_unknown_spec_lists_the_names_and_the_file_types(trained, registry):
    # Bad input: a typo in a model name.
    with pytest.raises(ModelNotFoundError) as caught:
        load_embedder("osnet_x0_25_msmt71", registry=registry)
    message = str(caught.value)
    for known in ("color_histogram", "tiny-osnet", "person-reidentification-retail-0288"):
        assert known in message
    assert ".onnx" in message and ".xml" in message and ".pth" in message


def test_a_published_model_that_is_not_pulled_says_how_to_pull_it(registry):
    assert registry.get("osnet_x0_25_msmt17").status == "downloadable"
    with pytest.raises(ModelNotFoundError, match="reunite models pull osnet_x0_25_msmt17"):
        load_embedder("osnet_x0_25_msmt17", registry=registry)


def test_a_file_of_another_type_is_refused(registry, tmp_path):
    # Bad input: an image passed as a model; then a folder with no card.
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(ModelNotFoundError, match=r"photo\.jpg is not a model file"):
        load_embedder(str(tmp_path / "photo.jpg"), registry=registry)
    with pytest.raises(ModelNotFoundError, match=r"folder without card\.json"):
        load_embedder(str(tmp_path), registry=registry)


# --- files ---------------------------------------------------------------------------------------


def test_a_training_checkpoint_loads_its_architecture_and_preprocessing_without_classifier(
    registry, tmp_path, crops
):
    torch.manual_seed(1)
    network = build_network("osnet_x0_25", num_classes=5)
    prep = Preprocessing(input_size=(64, 128))
    path = tmp_path / "epoch_3.pt"
    torch.save(
        {
            "format": TRAIN_CHECKPOINT_FORMAT,
            "architecture": "osnet_x0_25",
            "preprocessing": prep.model_dump(mode="json"),
            "model": network.state_dict(),
            "epoch": 3,
        },
        path,
    )
    embedder = load_embedder(str(path), registry=registry)
    assert (embedder.name, embedder.dim, embedder.preprocessing) == ("epoch_3", 512, prep)
    np.testing.assert_allclose(embedder.embed(crops), reference(network, crops, prep), atol=1e-6)


def test_a_training_checkpoint_of_another_format_version_is_refused(registry, tmp_path):
    # Bad input: a checkpoint written by a newer, incompatible `reunite train`.
    path = tmp_path / "future.pt"
    torch.save({"format": "reunite-train-checkpoint/2", "model": {}}, path)
    with pytest.raises(UnreadableCheckpointError, match="reads 'reunite-train-checkpoint/1'"):
        load_embedder(str(path), registry=registry)


def test_a_torchreid_checkpoint_loads_with_its_width_read_from_the_weights(
    registry, tmp_path, crops
):
    torch.manual_seed(2)
    network = build_network("osnet_x0_5", num_classes=11)
    state = {f"module.{k}": v for k, v in network.state_dict().items()}  # DataParallel layout
    path = tmp_path / "osnet_x0_5_market.pth.tar"
    torch.save({"state_dict": state, "epoch": 60}, path)
    embedder = load_embedder(str(path), registry=registry)
    assert embedder.name == "osnet_x0_5_market"
    assert embedder.network.arch == "osnet_x0_5"
    np.testing.assert_allclose(embedder.embed(crops), reference(network, crops), atol=1e-6)


def channel_mean_onnx(path: Path) -> Path:
    """An ONNX model whose 'embedding' is each input channel's mean (GlobalAveragePool)."""
    image = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["n", 3, 8, 4])
    out = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["n", 3])
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["features"]),
        ],
        "channel_mean",
        [image],
        [out],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_an_onnx_file_gets_torchreid_preprocessing_unless_other_is_given(registry, tmp_path):
    # TORCHREID is RGB with ImageNet mean/std; a pure blue crop then gives (-2.1, -2.0, +2.6)
    # per channel, while a plain BGR /255 preprocessing gives (1, 0, 0).
    path = channel_mean_onnx(tmp_path / "means.onnx")
    blue = [np.full((30, 12, 3), (255, 0, 0), np.uint8)]
    with pytest.raises(
        InvalidOptionError, match="input_size"
    ):  # the default 128x256 does not fit 4x8
        load_embedder(str(path), registry=registry)
    plain = Preprocessing(input_size=(4, 8), channel_order="bgr", mean=(0, 0, 0), std=(1, 1, 1))
    embedder = load_embedder(str(path), registry=registry, preprocessing=plain)
    assert isinstance(embedder, OnnxReidEmbedder) and embedder.name == "means"
    np.testing.assert_allclose(embedder.embed(blue), [[1, 0, 0]], atol=1e-6)
    rgb = load_embedder(
        str(path),
        registry=registry,
        preprocessing=TORCHREID.model_copy(update={"input_size": (4, 8)}),
    )
    expected = (np.array([0, 0, 1]) - TORCHREID.mean) / TORCHREID.std
    np.testing.assert_allclose(rgb.embed(blue)[0], expected / np.linalg.norm(expected), atol=1e-5)


@pytest.mark.shared
def test_an_openvino_xml_loads_with_open_model_zoo_preprocessing(registry, shared_dir):
    xml = shared_dir / OMZ_0288 / "person-reidentification-retail-0288.xml"
    embedder = load_embedder(str(xml), registry=registry, batch_size=4)
    assert isinstance(embedder, OpenVinoReidEmbedder)
    assert (embedder.dim, embedder.preprocessing) == (256, OPENVINO_OMZ)


# --- pull ----------------------------------------------------------------------------------------


@pytest.mark.shared
def test_pull_installs_the_openvino_model_from_a_mirror_with_its_published_checksums(
    registry, shared_dir, serve, crops
):
    result = registry.pull(
        "person-reidentification-retail-0288", url_base=serve(shared_dir / OMZ_0288)
    )
    folder = registry.user_dir / "person-reidentification-retail-0288"
    assert result.folder == folder and len(result.downloaded) == 2 and result.unpinned == []
    spec = {f.name: f.sha256 for f in PUBLISHED["person-reidentification-retail-0288"].files}
    card = ModelCard.read(folder)
    assert {card.weights: card.sha256, **card.extra_files} == spec
    assert sorted(p.name for p in folder.iterdir()) == ["card.json", *sorted(spec)]
    embedder = load_embedder("person-reidentification-retail-0288", registry=registry)
    assert embedder.embed(crops).shape == (2, 256)
    # Installed: a second pull verifies the files and fetches nothing (no server needed).
    again = registry.pull("person-reidentification-retail-0288", url_base=UNREACHABLE)
    assert not again.installed_now and again.downloaded == [] and again.card == card


@pytest.mark.shared
def test_pull_installs_files_placed_by_hand_without_the_network(registry, shared_dir):
    # The offline route the download error describes: put the files in place, pull again.
    folder = registry.user_dir / "person-reidentification-retail-0288"
    shutil.copytree(shared_dir / OMZ_0288, folder)
    result = registry.pull("person-reidentification-retail-0288", url_base=UNREACHABLE)
    assert result.installed_now and result.downloaded == [] and (folder / "card.json").is_file()


def torchreid_file(folder: Path, arch: str = "osnet_x0_25") -> Path:
    """A torchreid-layout checkpoint (MSMT17 has 1041 training identities) under the zoo's name."""
    folder.mkdir(exist_ok=True)
    torch.manual_seed(3)
    network = build_network(arch, num_classes=1041)
    path = folder / "osnet_x0_25_msmt17.pth"
    torch.save({"state_dict": network.state_dict(), "epoch": 180, "rank1": 0.614}, path)
    return path


def test_pull_pins_the_sha256_of_a_torchreid_file_after_a_strict_load(
    registry, serve, tmp_path, crops
):
    served = torchreid_file(tmp_path / "mirror")
    base = serve(served.parent)
    result = registry.pull("osnet_x0_25_msmt17", url_base=base)
    digest = hashlib.sha256(served.read_bytes()).hexdigest()
    assert result.unpinned == ["osnet_x0_25_msmt17.pth"] and result.card.sha256 == digest
    assert result.card.source_url == f"{base}/osnet_x0_25_msmt17.pth"
    assert ModelCard.read(result.folder).sha256 == digest
    embedder = load_embedder("osnet_x0_25_msmt17", registry=registry)
    network = build_network("osnet_x0_25")
    network.load_state_dict(
        {k: v for k, v in torch.load(served)["state_dict"].items() if "classifier" not in k}
    )
    np.testing.assert_allclose(embedder.embed(crops), reference(network, crops), atol=1e-6)


def test_pull_removes_an_unpinned_file_that_does_not_load(registry, serve, tmp_path):
    # Bad input: the server hands out an OSNet of another width under the expected name.
    served = torchreid_file(tmp_path / "mirror", arch="osnet_x0_5")
    with pytest.raises(
        CheckpointMismatchError, match=r"do not load \(osnet_x0_25_msmt17.pth removed"
    ):
        registry.pull("osnet_x0_25_msmt17", url_base=serve(served.parent))
    assert list((registry.user_dir / "osnet_x0_25_msmt17").iterdir()) == []


def test_pull_of_an_unreachable_mirror_installs_nothing(registry):
    # Bad input: no network.
    with pytest.raises(DownloadError, match="cannot reach"):
        registry.pull("osnet_x0_25_msmt17", url_base=UNREACHABLE)
    assert registry.get("osnet_x0_25_msmt17").status == "downloadable"


def test_pull_of_a_name_that_is_not_published_lists_the_downloadable_ones(registry):
    with pytest.raises(ModelNotFoundError, match="downloadable: osnet_x0_25_msmt17, person-"):
        registry.pull("color_histogram")
