"""``reunite train`` on a tiny Market-1501-layout set: the loss falls, checkpoints reload
bit-exactly, an interrupted run resumes to the very same weights, and bad input fails clearly."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from reunite.cli import app
from reunite.errors import (
    CheckpointError,
    DatasetLayoutError,
    InvalidOptionError,
    ModelIntegrityError,
    ModelNotFoundError,
    OutputExistsError,
)
from reunite.models.registry import DEFAULT_MODEL, ZOO_DIR, Registry, card_weights
from reunite.training.data import Augmentation, IdentitySampler, augment, simulate_infrared
from reunite.training.soup import average_weights
from reunite.training.trainer import (
    TrainConfig,
    Trainer,
    checkpoint_network,
    load_checkpoint,
    lr_factor,
)

IDS, PER_ID = 8, 6


def _person(rng: np.random.Generator, top: tuple, bottom: tuple) -> np.ndarray:
    """A crude person crop: upper and lower clothing colours over a noisy background."""
    img = rng.integers(60, 120, (96, 48, 3), dtype=np.uint8)
    x0 = int(rng.integers(8, 14))
    cv2.rectangle(img, (x0, 10), (x0 + 22, 50), top, -1)
    cv2.rectangle(img, (x0 + 2, 50), (x0 + 20, 90), bottom, -1)
    return img


@pytest.fixture(scope="module")
def tiny_market(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny_market")
    rng = np.random.default_rng(0)
    for name in ("bounding_box_train", "bounding_box_test", "query"):
        (root / name).mkdir()
    for pid in range(1, IDS + 1):
        top = tuple(int(v) for v in rng.integers(0, 256, 3))
        bottom = tuple(int(v) for v in rng.integers(0, 256, 3))
        for i in range(PER_ID):
            cam = 1 + i % 3
            cv2.imwrite(
                str(root / "bounding_box_train" / f"{pid:04d}_c{cam}s1_{i:06d}_01.jpg"),
                _person(rng, top, bottom),
            )
        cv2.imwrite(
            str(root / "query" / f"{pid:04d}_c1s1_000100_01.jpg"), _person(rng, top, bottom)
        )
        cv2.imwrite(
            str(root / "bounding_box_test" / f"{pid:04d}_c2s1_000100_01.jpg"),
            _person(rng, top, bottom),
        )
    return root


def _config(data: Path | list[Path], out: Path, epochs: int = 2, **kw) -> TrainConfig:
    base = dict(
        data=data, out=out, epochs=epochs, p=4, k=4, warmup_epochs=1, threads=2,
        input_size=(32, 64), lr=3e-3, architecture="osnet_x0_25",
    )  # fmt: skip
    return TrainConfig(**(base | kw))


def test_learning_rate_warms_up_then_decays() -> None:
    assert lr_factor(0, 5, 60) == pytest.approx(0.01)
    assert lr_factor(5, 5, 60) == pytest.approx(1.0)
    assert lr_factor(32.5, 5, 60) == pytest.approx(0.5)
    assert lr_factor(60, 5, 60) == pytest.approx(0.0, abs=1e-9)


def test_loss_falls_and_checkpoint_reloads_bit_exactly(tiny_market: Path, tmp_path: Path) -> None:
    trainer = Trainer(_config(tiny_market, tmp_path / "run", epochs=30))
    summary = trainer.run()
    history = trainer.history()
    assert len(history) == 30
    first, last = history[0]["loss"], history[-1]["loss"]
    assert last < 0.75 * first, f"loss did not fall: {first:.3f} -> {last:.3f}"
    assert summary["identities"] == IDS
    for name in ("metrics.jsonl", "metrics.csv", "curves.png", "config.json"):
        assert (tmp_path / "run" / name).is_file(), name

    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    network = checkpoint_network(state)
    again = checkpoint_network(load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt"))
    for (name, a), (_, b) in zip(
        network.state_dict().items(), again.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    x = torch.randn(3, 3, 64, 32)
    assert torch.equal(network(x), again(x))


def test_interrupted_run_resumes_to_identical_weights(tiny_market: Path, tmp_path: Path) -> None:
    straight = _config(tiny_market, tmp_path / "straight", epochs=3)
    Trainer(straight).run()

    # interrupted (Ctrl-C) in the first step of epoch 3, then resumed with the same command
    def interrupt(stage: str, done: int, total: int, info: dict) -> None:
        if stage == "train" and info["epoch"] == 3:
            raise KeyboardInterrupt

    resumed = _config(tiny_market, tmp_path / "resumed", epochs=3)
    with pytest.raises(KeyboardInterrupt):
        Trainer(resumed, interrupt).run()
    assert load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")["epoch"] == 2
    Trainer(resumed).run(resume=True)
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")["model"]
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs after resume"
    epochs = [json.loads(line)["epoch"] for line in (tmp_path / "resumed" / "metrics.jsonl").open()]
    assert epochs == [1, 2, 3]
    # tried: resuming a checkpoint whose optimiser predates the classifier's own parameter group
    last = tmp_path / "resumed" / "checkpoints" / "last.pt"
    old = load_checkpoint(last)
    for group in old["optimizer"]["param_groups"]:
        del group["lr_scale"]
    torch.save(old, last)
    with pytest.raises(CheckpointError, match="older than --classifier-lr-scale"):
        Trainer(_config(tiny_market, tmp_path / "resumed", epochs=4)).run(resume=True)
    assert load_checkpoint(last)["epoch"] == 3  # nothing overwritten


def test_corrupt_image_is_skipped_and_reported(tiny_market: Path, tmp_path: Path) -> None:
    # tried: a JPEG truncated to garbage among the training crops
    data = tmp_path / "data"
    data.mkdir()
    for sub in tiny_market.iterdir():
        (data / sub.name).mkdir()
        for f in sub.iterdir():
            (data / sub.name / f.name).write_bytes(f.read_bytes())
    bad = data / "bounding_box_train" / "0001_c1s1_000099_01.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    summary = Trainer(_config(data, tmp_path / "run", epochs=1)).run()
    assert summary["skipped_images"] == [bad.name]
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["skipped_images"] == [
        bad.name
    ]


def test_bad_inputs_fail_clearly_and_overwrite_nothing(tiny_market: Path, tmp_path: Path) -> None:
    # tried: a folder without the Market-1501 layout
    with pytest.raises(DatasetLayoutError, match="bounding_box_train"):
        Trainer(_config(tmp_path, tmp_path / "run1")).run()
    # tried: a badly named training image
    bad = tmp_path / "badnames"
    for sub in ("bounding_box_train", "bounding_box_test", "query"):
        (bad / sub).mkdir(parents=True)
    (bad / "bounding_box_train" / "person7.jpg").write_bytes(b"x")
    with pytest.raises(DatasetLayoutError, match=r"person7\.jpg"):
        Trainer(_config(bad, tmp_path / "run2")).run()
    # a run that fails on its data leaves no folder behind (the next try needs no --overwrite)
    assert not (tmp_path / "run1").exists() and not (tmp_path / "run2").exists()
    # tried: --overwrite of an earlier run with bad data: the earlier run's files are kept
    earlier = tmp_path / "earlier"
    (earlier / "checkpoints").mkdir(parents=True)
    (earlier / "checkpoints" / "last.pt").write_bytes(b"an earlier run")
    (earlier / "metrics.csv").write_text("epoch\n1\n")
    with pytest.raises(DatasetLayoutError, match=r"person7\.jpg"):
        Trainer(_config(bad, earlier)).run(overwrite=True)
    assert (earlier / "checkpoints" / "last.pt").read_bytes() == b"an earlier run"
    assert (earlier / "metrics.csv").read_text() == "epoch\n1\n"
    # tried: an output folder that holds something else
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("keep me")
    with pytest.raises(OutputExistsError):
        Trainer(_config(tiny_market, busy)).run()
    # tried: --resume on a folder that holds no checkpoint
    with pytest.raises(OutputExistsError, match="no checkpoint to resume"):
        Trainer(_config(tiny_market, busy)).run(resume=True)
    assert (busy / "notes.txt").read_text() == "keep me"


def test_resume_refuses_foreign_or_truncated_checkpoints(tiny_market: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    Trainer(_config(tiny_market, run, epochs=1)).run()
    checkpoint = run / "checkpoints" / "last.pt"
    # tried: resuming with another architecture
    with pytest.raises(CheckpointError, match="osnet_x0_25 checkpoint"):
        Trainer(_config(tiny_market, run, architecture="osnet_x0_5")).run(resume=True)
    # tried: a checkpoint cut short (disk full, copy interrupted)
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="truncated"):
        Trainer(_config(tiny_market, run, epochs=2)).run(resume=True)


def test_cli_trains_and_reports_errors(tiny_market: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli_run"
    args = ["train", "--data", str(tiny_market), "--out", str(out), "--epochs", "1",
            "--width", "32", "--height", "64", "--p", "4", "--k", "2",
            "--arch", "osnet_x0_25"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (out / "checkpoints" / "last.pt").is_file()
    again = runner.invoke(app, args)  # same folder, no --resume / --overwrite
    assert again.exit_code == 2
    assert "not empty" in again.output
    missing = runner.invoke(
        app, ["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]
    )
    assert missing.exit_code == 2


def test_init_from_an_earlier_run(tiny_market: Path, tmp_path: Path) -> None:
    first = tmp_path / "first"
    Trainer(_config(tiny_market, first, epochs=1)).run()
    checkpoint = first / "checkpoints" / "last.pt"
    summary = Trainer(_config(tiny_market, tmp_path / "second", init_from=checkpoint)).run()
    assert summary["final"]["epoch"] == 2
    # tried: fine-tuning from a checkpoint of another architecture
    with pytest.raises(CheckpointError, match="osnet_x0_25 checkpoint"):
        Trainer(
            _config(
                tiny_market, tmp_path / "third", architecture="osnet_x0_5", init_from=checkpoint
            )
        ).run()


def test_init_from_the_shipped_model(tiny_market: Path, tmp_path: Path) -> None:
    """A shipped model (its float16 card weights, sha256-checked) starts a fine-tuning run."""
    config = _config(
        tiny_market, tmp_path / "ft", architecture="mobilenetv2_reid", pretrained=False,
        init_from="default",
    )  # fmt: skip
    network, _, _ = Trainer(config)._build(IDS)
    card, weights = card_weights("default")
    assert card.name == DEFAULT_MODEL and weights
    state = network.state_dict()
    for key, value in weights.items():
        assert value.dtype == state[key].dtype
        assert torch.equal(state[key], value), key
    assert {k for k in state if k not in weights} == {"classifier.weight"}
    folder_card, _ = card_weights(str(ZOO_DIR / DEFAULT_MODEL))  # a model folder works too
    assert folder_card.sha256 == card.sha256
    # tried: the shipped model into another architecture, a model without weights, one not
    # downloaded, a misspelt name, a truncated copy of the weights
    with pytest.raises(CheckpointError, match="is a mobilenetv2_reid model"):
        Trainer(_config(tiny_market, tmp_path / "osnet", init_from="default"))._build(IDS)
    empty = Registry(data_dir=tmp_path / "data")
    with pytest.raises(ModelNotFoundError, match="built-in"):
        card_weights("color_histogram", empty)
    with pytest.raises(ModelNotFoundError, match="reunite models pull osnet_x0_25_msmt17"):
        card_weights("osnet_x0_25_msmt17", empty)
    with pytest.raises(ModelNotFoundError, match="not a checkpoint file"):
        card_weights("reunite-mobilenetv2-synht", empty)
    copy = tmp_path / "copy"
    shutil.copytree(ZOO_DIR / DEFAULT_MODEL, copy)
    blob = (copy / card.weights).read_bytes()
    (copy / card.weights).write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ModelIntegrityError, match="truncated"):
        card_weights(str(copy), empty)


def test_weight_average_is_the_weighted_mean_of_two_networks() -> None:
    from reunite.models.architectures import build_network

    one, two = (
        build_network("osnet_x0_25", 5).state_dict(),
        build_network("osnet_x0_25", 7).state_dict(),
    )
    two = {k: v + 1 if v.is_floating_point() else v + 3 for k, v in two.items()}
    mixed = average_weights([one, two], [3, 1])
    assert not any(k.startswith("classifier.") for k in mixed)  # each run's own identities
    key = next(k for k, v in mixed.items() if v.is_floating_point() and v.ndim == 4)
    assert torch.allclose(mixed[key], 0.75 * one[key] + 0.25 * two[key], atol=1e-6)
    counter = next(k for k in mixed if k.endswith("num_batches_tracked"))
    assert torch.equal(mixed[counter], one[counter])  # integers come from the first network
    half = {k: v.half() if v.is_floating_point() else v for k, v in one.items()}
    assert mixed[key].dtype == torch.float32
    assert average_weights([half, one])[key].dtype == torch.float16  # the first one's dtype
    # tried: networks of two architectures, one network, a zero share
    with pytest.raises(CheckpointError, match="keys differ"):
        average_weights([one, build_network("osnet_x0_5", 5).state_dict()])
    with pytest.raises(CheckpointError, match="at least two"):
        average_weights([one])
    with pytest.raises(CheckpointError, match="positive share"):
        average_weights([one, two], [1, 0])


def test_two_data_folders_keep_their_identities_apart(tiny_market: Path, tmp_path: Path) -> None:
    # the same pids in two folders are different people (two renders of the world)
    config = _config([tiny_market, tiny_market], tmp_path / "two", epochs=1)
    summary = Trainer(config).run()
    assert summary["identities"] == 2 * IDS
    assert summary["train_images"] == 2 * IDS * PER_ID
    assert json.loads((tmp_path / "two" / "config.json").read_text())["data"] == [
        str(tiny_market),
        str(tiny_market),
    ]
    # a run config written with a single folder still reads
    assert TrainConfig(data=tiny_market, out=tmp_path / "x").data == [tiny_market]


def test_weighted_sampler_draws_a_rare_group_as_often_as_a_common_one() -> None:
    # 80 identities of one group, 20 of another: weights 1/80 and 1/20 make each group half the
    # draws; every batch still holds P distinct identities with K crops each
    labels = torch.arange(100).repeat_interleave(3)
    weights = np.where(np.arange(100) < 80, 1 / 80, 1 / 20)
    sampler = IdentitySampler(labels, p=10, k=4, seed=0, class_weights=weights)
    drawn = []
    for epoch in range(20):
        for batch in sampler.epoch(epoch):
            identities = labels[batch].numpy()
            assert len(batch) == 40 and len(set(identities)) == 10
            drawn += sorted(set(identities))
    rare_share = np.mean(np.asarray(drawn) >= 80)
    assert 0.4 < rare_share < 0.6  # uniform draws would give 0.2
    assert sampler.batches_per_epoch() == 10  # as many batches as without weights
    with pytest.raises(ValueError, match="one weight per label"):
        IdentitySampler(labels, p=10, k=4, seed=0, class_weights=weights[:50])


def test_balance_reads_each_identitys_group_from_the_data(
    tiny_market: Path, tmp_path: Path
) -> None:
    # the tiny set describes nothing: balancing by light must say which file it lacks
    with pytest.raises(DatasetLayoutError, match=r"sequences\.json"):
        Trainer(_config(tiny_market, tmp_path / "no_light", epochs=1, balance="light")).run()
    described = tmp_path / "described"
    shutil.copytree(tiny_market, described)
    groups = {pid: "child" if pid <= 2 else "adult" for pid in range(1, IDS + 1)}
    (described / "identities.json").write_text(
        json.dumps({f"{pid:04d}": {"age_group": g} for pid, g in groups.items() if pid != IDS})
    )
    config = _config([tiny_market, described], tmp_path / "mixed", epochs=1)
    trainer = Trainer(config.model_copy(update={"balance": "age_group"}))
    with pytest.raises(DatasetLayoutError, match=r"identities\.json"):
        trainer.run()  # the first folder describes nothing either
    config = _config(described, tmp_path / "balanced", epochs=1, balance="age_group")
    trainer = Trainer(config)
    _, class_groups, _ = trainer._load_data()
    assert class_groups == ["child"] * 2 + ["adult"] * (IDS - 3) + ["unlisted"]
    weights = trainer._class_weights(class_groups)
    assert weights[0] == pytest.approx(1 / 2) and weights[2] == pytest.approx(1 / (IDS - 3))
    summary = trainer.run()
    assert summary["identities"] == IDS
    assert json.loads((tmp_path / "balanced" / "config.json").read_text())["balance"] == (
        "age_group"
    )
    result = CliRunner().invoke(
        app, ["train", "--data", str(described), "--out", str(tmp_path / "x"), "--balance", "hue"]
    )
    assert result.exit_code != 0 and "--balance must be one of age_group, light" in result.output
    assert not (tmp_path / "x").exists()


def test_cctv_augmentations_drop_colour_and_resolution() -> None:
    rng = np.random.default_rng(1)
    batch = torch.from_numpy(rng.integers(0, 256, (6, 3, 64, 32), dtype=np.uint8))
    plain = Augmentation(flip=0, pad=0, erase=0, jitter=0)
    grey = augment(batch, replace(plain, greyscale=1.0), torch.Generator().manual_seed(0))
    assert torch.allclose(grey[:, 0], grey[:, 1]) and torch.allclose(grey[:, 1], grey[:, 2])
    blurred = augment(batch, replace(plain, low_resolution=1.0), torch.Generator().manual_seed(0))
    untouched = augment(batch, plain, torch.Generator().manual_seed(0))
    assert blurred.shape == untouched.shape == (6, 3, 64, 32)
    # fewer pixels carry less detail: neighbouring pixels differ far less than in the original
    detail = lambda x: (x[..., 1:, :] - x[..., :-1, :]).abs().mean()  # noqa: E731
    assert detail(blurred) < 0.6 * detail(untouched)

    # zero probabilities draw no random numbers (recipes from before these options replay),
    # while any other probability does
    def state_after(aug: Augmentation) -> torch.Tensor:
        generator = torch.Generator().manual_seed(3)
        augment(batch, aug, generator)
        return generator.get_state()

    off = state_after(Augmentation())
    assert not torch.equal(off, state_after(Augmentation(greyscale=1e-9)))
    assert not torch.equal(off, state_after(Augmentation(low_resolution=1e-9)))
    assert not torch.equal(off, state_after(Augmentation(infrared=1e-9)))


def test_simulated_infrared_is_grey_but_does_not_keep_the_order_of_brightness() -> None:
    # Crops of a saturated red band over a saturated green band over black: to the eye (luma) the
    # green is far brighter. Random IR cameras must make each crop grey, lift black above zero,
    # and disagree on which band is brighter, as dyes' NIR reflectance does not follow colour.
    crop = torch.zeros(1, 3, 9, 4)
    crop[:, 0, :3] = 0.8
    crop[:, 1, 3:6] = 0.8
    batch = crop.repeat(400, 1, 1, 1)
    ir = simulate_infrared(batch, torch.Generator().manual_seed(0))

    assert ir.shape == batch.shape and torch.equal(ir[:, 0], ir[:, 2])
    assert ir.min() >= 0 and ir.max() <= 1
    band = lambda rows: ir[:, 0, rows].mean((1, 2))  # noqa: E731  (grain averaged out)
    red, green, black = band(slice(0, 3)), band(slice(3, 6)), band(slice(6, 9))
    assert 0.2 < (red > green).float().mean() < 0.8
    assert 0.1 < black.mean() < 0.4  # black level 0-35 %, then contrast squeezed to the mean
    assert ((black < red) | (black < green)).float().mean() > 0.95  # black is not the brightest
    grain = ir[:, 0, 6:].flatten(1).std(1)
    assert grain.max() > 0.04 and grain.min() < 0.01  # from clean to grainy
    cameras = augment(
        (batch * 255).to(torch.uint8),
        Augmentation(flip=0, pad=0, erase=0, jitter=0, infrared=0.5),
        torch.Generator().manual_seed(1),
    )
    is_grey = (cameras[:, 0] == cameras[:, 1]).flatten(1).all(1)
    assert 0.35 < is_grey.float().mean() < 0.65


def test_imprinted_classifier_knows_the_identities_before_training(
    tiny_market: Path, tmp_path: Path
) -> None:
    first = tmp_path / "first"
    Trainer(_config(tiny_market, first, epochs=1)).run()
    checkpoint = first / "checkpoints" / "last.pt"
    # a random classifier is right 1 time in IDS; the imprinted one from the first step far more
    summary = Trainer(
        _config(tiny_market, tmp_path / "imprinted", epochs=1, init_from=checkpoint, imprint=True)
    ).run()
    assert summary["imprinted"]["accuracy"] >= 0.6
    assert summary["imprinted"]["id_loss"] < np.log(IDS)
    # a classifier learning-rate share of 0 keeps the imprint as it is while the backbone trains
    frozen_run = tmp_path / "frozen"
    Trainer(
        _config(tiny_market, frozen_run, epochs=1, init_from=checkpoint, imprint=True,
                classifier_lr_scale=0.0)
    ).run()  # fmt: skip
    imprinted = load_checkpoint(tmp_path / "imprinted" / "checkpoints" / "last.pt")["model"]
    frozen = load_checkpoint(frozen_run / "checkpoints" / "last.pt")["model"]
    start = load_checkpoint(checkpoint)["model"]
    # imprinted rows are one shared scale times unit directions, with the bias zeroed: so they
    # stay when frozen, and training at the full rate moves them
    norms = frozen["classifier.weight"].norm(dim=1)
    assert torch.allclose(norms, norms[0].expand_as(norms), rtol=1e-5)
    assert not frozen["classifier.bias"].any()
    assert imprinted["classifier.bias"].any()
    assert not torch.equal(imprinted["classifier.weight"], frozen["classifier.weight"])
    backbone = next(k for k in frozen if k.endswith(".weight") and "classifier" not in k)
    assert not torch.equal(frozen[backbone], start[backbone])
    # tried: imprinting without a start network (nothing to take class means from)
    with pytest.raises(InvalidOptionError, match="--imprint needs --init-from"):
        Trainer(_config(tiny_market, tmp_path / "none", imprint=True))
