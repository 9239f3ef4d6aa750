"""``reunite train --attribute-loss``: each identity's true attributes reach the right class, the
network learns them, a run resumes bit-exactly with its heads, the exported network is unchanged,
and data without ground truth fails clearly before anything is written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

# the tiny Market-1501 set and the run settings of the training tests
from test_training import IDS, _config, tiny_market  # noqa: F401
from typer.testing import CliRunner

from reunite.cli import app
from reunite.errors import CheckpointError, DatasetLayoutError
from reunite.models.attributes import FIELDS
from reunite.training.trainer import Trainer, checkpoint_network, load_checkpoint

UPPER = ["red", "blue", "green", "yellow"]


def _identity(pid: int) -> dict:
    """A described person; the top's colour and the age group vary with the pid."""
    return {
        "age_group": "child" if pid % 2 else "adult",
        "gender": "female",
        "clothing": {
            "upper": {"type": "tshirt", "colour": UPPER[pid % 4], "sleeve": "short"},
            "lower": {"type": "trousers", "colour": "black"},
        },
        "accessories": [{"type": "backpack", "colour": "red"}] if pid % 3 == 0 else [],
    }


@pytest.fixture
def described(tiny_market: Path, tmp_path: Path) -> Path:  # noqa: F811
    """The tiny set with identities.json for every pid but the last."""
    root = tmp_path / "described"
    shutil.copytree(tiny_market, root)
    people = {f"{pid:04d}": _identity(pid) for pid in range(1, IDS)}
    (root / "identities.json").write_text(json.dumps(people))
    return root


def test_each_class_gets_its_own_identitys_attributes(described: Path, tmp_path: Path) -> None:
    # two folders: the second folder's pid 1 is class IDS, a different person with the same file
    config = _config([described, described], tmp_path / "run", epochs=1, attribute_loss=1.0)
    data, _, targets = Trainer(config)._load_data()
    assert data.num_classes == 2 * IDS
    colours = list(FIELDS["upper_colour"])
    for folder in range(2):
        for pid in range(1, IDS + 1):
            label = folder * IDS + pid - 1
            if pid == IDS:  # not in identities.json: no attribute loss for it
                assert not targets.described[label]
                assert all(int(v[label]) == -1 for v in targets.fields.values())
                continue
            assert targets.described[label]
            assert colours[int(targets.fields["upper_colour"][label])] == UPPER[pid % 4]
            assert list(FIELDS["age_group"])[int(targets.fields["age_group"][label])] == (
                "child" if pid % 2 else "adult"
            )
            assert int(targets.fields["bag_colour"][label]) == (
                colours.index("red") if pid % 3 == 0 else -1
            )
            assert targets.accessories[label].sum() == (1 if pid % 3 == 0 else 0)


def test_the_network_learns_the_attributes_and_exports_unchanged(
    described: Path, tmp_path: Path
) -> None:
    trainer = Trainer(_config(described, tmp_path / "run", epochs=25, attribute_loss=1.0))
    trainer.run()
    history = trainer.history()
    first, last = history[0]["attribute_loss"], history[-1]["attribute_loss"]
    assert last < 0.6 * first, f"attribute loss did not fall: {first:.3f} -> {last:.3f}"
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert set(state["attribute_heads"]) >= {"fields.gender.weight", "accessories.weight"}
    # the heads live beside the network, so the embedding network has no extra keys
    plain = Trainer(_config(described, tmp_path / "plain", epochs=1))
    plain.run()
    plain_state = load_checkpoint(tmp_path / "plain" / "checkpoints" / "last.pt")
    assert plain_state["attribute_heads"] is None
    assert set(state["model"]) == set(plain_state["model"])
    network = checkpoint_network(state)
    assert network(torch.randn(2, 3, 64, 32)).shape == (2, network.feature_dim)


def test_a_run_with_attribute_heads_resumes_to_identical_weights(
    described: Path, tmp_path: Path
) -> None:
    Trainer(_config(described, tmp_path / "straight", epochs=3, attribute_loss=2.0)).run()

    def interrupt(stage: str, done: int, total: int, info: dict) -> None:
        if stage == "train" and info["epoch"] == 3:
            raise KeyboardInterrupt

    resumed = _config(described, tmp_path / "resumed", epochs=3, attribute_loss=2.0)
    with pytest.raises(KeyboardInterrupt):
        Trainer(resumed, interrupt).run()
    last = tmp_path / "resumed" / "checkpoints" / "last.pt"
    # tried: resuming it without the option, and a plain run's checkpoint with it
    with pytest.raises(CheckpointError, match="resume it with the same option"):
        Trainer(_config(described, tmp_path / "resumed", epochs=3)).run(resume=True)
    Trainer(_config(described, tmp_path / "plain", epochs=1)).run()
    with pytest.raises(CheckpointError, match="trained without --attribute-loss"):
        Trainer(_config(described, tmp_path / "plain", epochs=2, attribute_loss=1.0)).run(
            resume=True
        )
    assert load_checkpoint(last)["epoch"] == 2  # nothing overwritten by the refusals
    Trainer(resumed).run(resume=True)
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    b = load_checkpoint(last)
    for part in ("model", "attribute_heads"):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{part} {key} differs after resume"


def test_data_without_ground_truth_fails_before_writing(
    tiny_market: Path,  # noqa: F811
    described: Path,
    tmp_path: Path,
) -> None:
    # tried: no identities.json, one that is not JSON, a colour outside the vocabulary, a file
    # naming none of the training pids, and a negative weight on the command line
    with pytest.raises(DatasetLayoutError, match=r"needs .*identities\.json with each identity"):
        Trainer(_config(tiny_market, tmp_path / "a", epochs=1, attribute_loss=1.0)).run()
    broken = tmp_path / "broken"
    shutil.copytree(described, broken)
    (broken / "identities.json").write_text("{not json")
    with pytest.raises(DatasetLayoutError, match=r"cannot read .*identities\.json"):
        Trainer(_config(broken, tmp_path / "b", epochs=1, attribute_loss=1.0)).run()
    people = {f"{pid:04d}": _identity(pid) for pid in range(1, IDS)}
    people["0002"]["clothing"]["upper"]["colour"] = "teal"
    (broken / "identities.json").write_text(json.dumps(people))
    with pytest.raises(DatasetLayoutError, match="upper_colour value 'teal'"):
        Trainer(_config(broken, tmp_path / "c", epochs=1, attribute_loss=1.0)).run()
    (broken / "identities.json").write_text(json.dumps({"0999": _identity(1)}))
    with pytest.raises(DatasetLayoutError, match="describes none of the training identities"):
        Trainer(_config(broken, tmp_path / "d", epochs=1, attribute_loss=1.0)).run()
    for name in "abcd":
        assert not (tmp_path / name).exists(), f"a failed run wrote {name}/"
    result = CliRunner().invoke(
        app,
        ["train", "--data", str(described), "--out", str(tmp_path / "e"), "--attribute-loss",
         "-1"],
    )  # fmt: skip
    assert result.exit_code != 0 and not (tmp_path / "e").exists()
