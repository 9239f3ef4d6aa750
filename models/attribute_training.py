"""Training, calibration and measurement of the attribute head on labelled crops.

Data: Market-1501-layout sets rendered by ``reunite synth reid`` (every crop of a person carries
that person's 인상착의 ground truth from ``identities.json``; sets rendered before the clothing
was recorded get it re-derived from their manifest by ``cohort_identities``). Crops are embedded
once with the backbone and cached, so training and calibration run on arrays in seconds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from reunite.errors import DatasetLayoutError
from reunite.models.attribute_model import AttributeHead, AttributeProbabilities, calibrated
from reunite.models.attributes import ACCESSORIES, FIELDS, Labels, labels_from_identity
from reunite.models.embedder import Embedder

log = logging.getLogger(__name__)
FOLDERS = ("bounding_box_train", "bounding_box_test", "query")


@dataclass
class LabelledSet:
    """Embedded crops with labels: ``y[field]`` class index or -1 (undefined), ``a`` 0/1."""

    x: np.ndarray  # (N, D) float32 embeddings
    y: dict[str, np.ndarray]  # field -> (N,) int64
    a: np.ndarray  # (N, A) float32
    split: np.ndarray  # (N,) the set's own split of each crop's person: train | test
    age_group: np.ndarray  # (N,) str
    light: np.ndarray  # (N,) day | night
    pid: np.ndarray  # (N,) int

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, mask: np.ndarray) -> LabelledSet:
        return LabelledSet(
            self.x[mask],
            {f: v[mask] for f, v in self.y.items()},
            self.a[mask],
            self.split[mask],
            self.age_group[mask],
            self.light[mask],
            self.pid[mask],
        )

    @staticmethod
    def concat(sets: Sequence[LabelledSet]) -> LabelledSet:
        return LabelledSet(
            np.concatenate([s.x for s in sets]),
            {f: np.concatenate([s.y[f] for s in sets]) for f in FIELDS},
            np.concatenate([s.a for s in sets]),
            np.concatenate([s.split for s in sets]),
            np.concatenate([s.age_group for s in sets]),
            np.concatenate([s.light for s in sets]),
            np.concatenate([s.pid for s in sets]),
        )


def encode(labels: Sequence[Labels]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    y = {
        f: np.array(
            [-1 if lab.exclusive[f] is None else vals.index(lab.exclusive[f]) for lab in labels],
            dtype=np.int64,
        )
        for f, vals in ((f, list(v)) for f, v in FIELDS.items())
    }
    a = np.array([[k in lab.accessories for k in ACCESSORIES] for lab in labels], np.float32)
    return y, a.reshape(len(labels), len(ACCESSORIES))


def read_ground_truth(root: Path) -> tuple[dict[str, dict], dict[str, dict]]:
    """``identities.json`` and ``sequences.json`` of a re-ID set, with clothing ground truth."""
    root = Path(root)
    people_file, seq_file = root / "identities.json", root / "sequences.json"
    if people_file.is_file() and seq_file.is_file():
        people = json.loads(people_file.read_text())
        if all("clothing" in p for p in people.values()):
            return people, json.loads(seq_file.read_text())
    manifest_file = root / "manifest.json"
    if not manifest_file.is_file():
        raise DatasetLayoutError(f"{root} has no manifest.json: not a `reunite synth reid` set")
    from reunite.synth.reid_job import ReidOptions, cohort_identities

    m = json.loads(manifest_file.read_text())
    log.info("re-deriving the clothing ground truth of %s from its manifest", root)
    return cohort_identities(
        ReidOptions(root, m["seed"], m["train_ids"], m["test_ids"], m["cameras"])
    )


def load_set(
    root: Path,
    embedder: Embedder,
    cache: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    batch: int = 256,
) -> LabelledSet:
    """Every labelled person crop of a re-ID set (junk and distractors left out), embedded."""
    from reunite.evaluation.market1501 import Market1501Layout

    root = Path(root)
    people, sequences = read_ground_truth(root)
    layout = Market1501Layout(root)
    images = [i for i in (*layout.train, *layout.gallery, *layout.query) if i.pid > 0]
    if cache is not None and cache.is_file():
        stored = np.load(cache)
        if len(stored["x"]) == len(images) and stored["model"].item() == embedder.name:
            x = stored["x"].astype(np.float32)
        else:
            x = None
    else:
        x = None
    if x is None:
        parts = []
        for start in range(0, len(images), batch):
            crops = [
                cv2.imread(str(i.path), cv2.IMREAD_COLOR) for i in images[start : start + batch]
            ]
            parts.append(embedder.embed(crops))
            if progress is not None:
                progress(min(start + batch, len(images)), len(images))
        x = np.concatenate(parts) if parts else np.zeros((0, embedder.dim), np.float32)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache, x=x.astype(np.float16), model=np.array(embedder.name))
    who = [people[f"{i.pid:04d}"] for i in images]
    y, a = encode([labels_from_identity(p) for p in who])
    return LabelledSet(
        x,
        y,
        a,
        np.array([p["split"] for p in who]),
        np.array([p["age_group"] for p in who]),
        np.array([sequences[str(i.seq)]["light"] for i in images]),
        np.array([i.pid for i in images]),
    )


def _loss(head: AttributeHead, x, y, a) -> torch.Tensor:
    logits, acc = head(x)
    loss = sum(
        (F.cross_entropy(logits[f], y[f], ignore_index=-1) for f in FIELDS if (y[f] >= 0).any()),
        torch.zeros(()),
    )
    # one BCE term per accessory, weighted like one exclusive field each at half strength
    return loss + F.binary_cross_entropy_with_logits(acc, a) * len(ACCESSORIES) / 2


def train_head(
    data: LabelledSet,
    hidden: int = 256,
    epochs: int = 30,
    batch: int = 256,
    lr: float = 2e-3,
    seed: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
) -> AttributeHead:
    """Fit the head with AdamW and a one-cycle schedule; returns it in eval mode."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(data.x.astype(np.float32))
    y = {f: torch.from_numpy(v) for f, v in data.y.items()}
    a = torch.from_numpy(data.a)
    head = AttributeHead(x.shape[1], hidden)
    head.mean.copy_(x.mean(0))
    head.std.copy_(x.std(0) + 1e-4)
    steps_per_epoch = max(1, len(x) // batch)
    opt = torch.optim.AdamW(head.parameters(), lr / 2, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * steps_per_epoch)
    for epoch in range(epochs):
        head.train()
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * batch : (step + 1) * batch]
            loss = _loss(head, x[idx], {f: v[idx] for f, v in y.items()}, a[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        if progress is not None:
            progress(epoch + 1, epochs, total / steps_per_epoch)
    return head.eval()


_GRID = np.exp(np.linspace(np.log(0.25), np.log(8.0), 121))


def fit_temperatures(head: AttributeHead, data: LabelledSet) -> dict[str, float]:
    """Per field (and per accessory) the temperature that minimises held-out NLL (grid search:
    one scalar each, so a fine grid is exact enough and cannot diverge)."""
    head.eval()
    with torch.inference_mode():
        logits, acc = head(torch.from_numpy(data.x.astype(np.float32)))
    temps: dict[str, float] = {}
    for f, z in logits.items():
        target = torch.from_numpy(data.y[f])
        keep = target >= 0
        if keep.sum() < 10:
            temps[f] = 1.0
            continue
        nll = [float(F.cross_entropy(z[keep] / t, target[keep])) for t in _GRID]
        temps[f] = round(float(_GRID[int(np.argmin(nll))]), 4)
    target = torch.from_numpy(data.a)
    for j, name in enumerate(ACCESSORIES):
        nll = [
            float(F.binary_cross_entropy_with_logits(acc[:, j] / t, target[:, j])) for t in _GRID
        ]
        temps[f"accessory:{name}"] = round(float(_GRID[int(np.argmin(nll))]), 4)
    return temps


def predict(head: AttributeHead, data: LabelledSet, temps: dict[str, float]):
    return calibrated(head, torch.from_numpy(data.x.astype(np.float32)), temps)


def average_precision(truth: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the precision-recall steps (ranked list); None without a positive."""
    truth = np.asarray(truth) > 0
    if not truth.any():
        return None
    hits = truth[np.argsort(-np.asarray(scores), kind="stable")]
    ranks = np.flatnonzero(hits) + 1
    return float(np.mean(np.arange(1, len(ranks) + 1) / ranks))


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 15):
    """|accuracy - confidence| averaged over equal-width confidence bins, weighted by count."""
    if len(confidence) == 0:
        return None
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges) - 1, 0, bins - 1)
    gap = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            gap += m.mean() * abs(correct[m].mean() - confidence[m].mean())
    return float(gap)


def measure(probs: AttributeProbabilities, data: LabelledSet) -> dict[str, dict]:
    """Per field: accuracy, top-2 accuracy, mAP (mean one-vs-rest AP over the values present),
    ECE, count;
    per accessory: AP, prevalence, ECE of the yes/no probability."""
    out: dict[str, dict] = {}
    for f, p in probs.fields.items():
        y = data.y[f]
        keep = y >= 0
        if not keep.any():
            continue
        pk, yk = p[keep], y[keep]
        pred = pk.argmax(1)
        # one-vs-rest AP of each value that occurs but is not everyone's (in the child subgroup
        # "age_group = child" is trivially perfect and would say nothing)
        aps = [
            average_precision(yk == k, pk[:, k])
            for k in range(pk.shape[1])
            if 0 < (yk == k).sum() < len(yk)
        ]
        out[f] = {
            "accuracy": round(float((pred == yk).mean()), 4),
            "top2_accuracy": round(
                float((np.argsort(-pk, 1)[:, :2] == yk[:, None]).any(1).mean()), 4
            ),
            "mAP": round(float(np.mean(aps)), 4) if aps else None,
            "ece": round(expected_calibration_error(pk.max(1), pred == yk), 4),
            "n": int(keep.sum()),
        }
    for j, name in enumerate(ACCESSORIES):
        truth, p = data.a[:, j], probs.accessories[:, j]
        ap = average_precision(truth, p)
        out[f"accessory:{name}"] = {
            "AP": None if ap is None else round(ap, 4),
            "prevalence": round(float(truth.mean()), 4),
            "accuracy": round(float(((p > 0.5) == (truth > 0)).mean()), 4),
            "ece": round(
                expected_calibration_error(np.maximum(p, 1 - p), (p > 0.5) == (truth > 0)), 4
            ),
            "n": len(truth),
        }
    return out


def measure_by_group(
    probs: AttributeProbabilities, data: LabelledSet
) -> dict[str, dict[str, dict]]:
    """``measure`` overall, per age group and per day / night."""
    groups: dict[str, np.ndarray] = {"all": np.ones(len(data), bool)}
    for g in ("child", "adult", "elderly"):
        groups[g] = data.age_group == g
    for light in ("day", "night"):
        groups[light] = data.light == light
    result = {}
    for name, mask in groups.items():
        if not mask.any():
            continue
        sub = AttributeProbabilities(
            {f: p[mask] for f, p in probs.fields.items()}, probs.accessories[mask]
        )
        result[name] = {"crops": int(mask.sum()), **measure(sub, data.subset(mask))}
    return result


def save_head(head: AttributeHead, path: Path) -> None:
    """float32 weights (the head is small); deterministic bytes for a stable sha256."""
    torch.save({k: v.detach().clone() for k, v in head.state_dict().items()}, path)
