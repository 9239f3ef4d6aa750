"""Measure the 인상착의 attribute model and description search; write /work/runs/issue5/.

1. Attributes on a re-ID set of an unseen seed (default ``/work/data/reid_eval_s303``): per
   attribute accuracy, top-2 accuracy, mAP and calibration error, overall, per age group and by
   day / night (the model's card holds the same figures from training).
2. Description search on ingested synthetic districts (``--district``, repeatable): the district
   is ingested once into ``OUT/ws_<name>`` with the pipeline's defaults (attributes predicted
   during ingest), then for every child and elderly case a description is generated from the
   person's ground truth *with noise* — each clothing field dropped with p=0.2, each colour
   replaced by a neighbouring one with p=0.25, a backpack or bag said as just "bag" half the time,
   accessories mentioned with p=0.7 — written as Korean text and parsed back (the parser is part
   of what is measured). Every sighting of the district is ranked by: the description; the family
   photo (other clothes); the last-seen still; and fusions of description and photo. Case recall
   @1/5/10/50 and mAP, where a case's correct sightings are all the person's sightings.

    python scripts/eval_description_search.py --district /work/data/district_s12 \
        --district /work/data/district_s11 --out /work/runs/issue5
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from reunite.config import Settings
from reunite.models.attribute_model import DEFAULT_ATTRIBUTE_MODEL, AttributeModel
from reunite.models.attribute_training import load_set, measure_by_group
from reunite.models.attributes import (
    ACCESSORIES,
    FIELDS,
    NEIGHBOUR_COLOURS,
    Labels,
    korean,
    labels_from_identity,
)
from reunite.pipeline.describe import Description, parse_description
from reunite.pipeline.describe_search import FLOOR, fuse, log_likelihood

RECALL_AT = (1, 5, 10, 20, 50)
FUSION_WEIGHTS = (1.0, 2.0, 4.0)


# -- part 1: attributes on an unseen seed --------------------------------------------------------


def attribute_figures(model: AttributeModel, test: Path, cache: Path) -> dict:
    data = load_set(test, model.backbone, cache / f"{test.name}.npz")
    probs = model.predict_embeddings(data.x)
    return {"data": str(test), "crops": len(data), "by_group": measure_by_group(probs, data)}


# -- part 2: noisy descriptions from ground truth ------------------------------------------------


def noisy_description(truth: Labels, rng: np.random.Generator, noise: bool = True) -> str:
    """A caller's Korean description of a person: what they remember, not quite right."""
    drop = 0.2 if noise else 0.0
    swap = 0.25 if noise else 0.0

    def colour(c: str | None) -> str | None:
        if c is None:
            return None
        if rng.random() < swap:
            c = str(rng.choice(NEIGHBOUR_COLOURS[c]))
        return korean("upper_colour", c)

    e = truth.exclusive
    age, gender = e["age_group"], e["gender"]
    if age == "child":
        who = f"{int(rng.integers(5, 12))}살 " + ("남자아이" if gender == "male" else "여자아이")
    elif age == "elderly":
        who = "할아버지" if gender == "male" else "할머니"
    else:
        who = "남자" if gender == "male" else "여자"
    parts = [who]
    top = [] if rng.random() < drop else [colour(e["upper_colour"])]
    if e["sleeve"] == "short" and rng.random() < 0.5:
        top.append("반팔")
    if rng.random() >= drop:
        top.append(korean("upper_type", e["upper_type"]))
    elif top and top[0]:
        top.append("상의")
    if any(top):
        parts.append(" ".join(t for t in top if t))
    bottom = [] if rng.random() < drop else [colour(e["lower_colour"])]
    bottom.append(korean("lower_type", e["lower_type"]) if rng.random() >= drop else "하의")
    if bottom[0] or bottom[-1] != "하의":
        parts.append(" ".join(b for b in bottom if b))
    for name in ACCESSORIES:
        if name not in truth.accessories or rng.random() >= 0.7:
            continue
        word = korean("accessories", name)
        if name in ("backpack", "bag"):
            if rng.random() < 0.5:
                word = "가방"
            if e["bag_colour"] and rng.random() < 0.5:
                word = f"{colour(e['bag_colour'])} {word}"
        parts.append(word)
    return ", ".join(parts)


# -- part 2: rankings ----------------------------------------------------------------------------


@dataclass
class Variant:
    name: str
    ranks: list[int | None]
    aps: list[float]
    groups: list[str]

    def summary(self) -> dict:
        n = len(self.ranks)
        out = {"cases": n}
        for k in RECALL_AT:
            out[f"recall@{k}"] = round(sum(r is not None and r <= k for r in self.ranks) / n, 4)
        out["mAP"] = round(float(np.mean(self.aps)), 4)
        for g in ("child", "elderly"):
            idx = [i for i, x in enumerate(self.groups) if x == g]
            if idx:
                out[f"{g}_recall@10"] = round(
                    sum(self.ranks[i] is not None and self.ranks[i] <= 10 for i in idx) / len(idx),
                    4,
                )
                out[f"{g}_cases"] = len(idx)
        return out


def rank_of(scores: np.ndarray, ids: np.ndarray, correct: np.ndarray) -> tuple[int | None, float]:
    order = np.lexsort((ids, -scores))
    hits = correct[order]
    if not hits.any():
        return None, 0.0
    positions = np.flatnonzero(hits) + 1
    return int(positions[0]), float(np.mean(np.arange(1, len(positions) + 1) / positions))


def district_figures(
    district: Path, out: Path, model: AttributeModel, floors: list[float], seed: int
) -> dict:
    from reunite.demo_job import ingest_district
    from reunite.evaluation.district_cases import load_sightings, read_cases
    from reunite.pipeline.attributes import load_attributes
    from reunite.pipeline.embedding_model import load_embedding_model
    from reunite.pipeline.workspace import Workspace

    settings = Settings(data_dir=out / f"ws_{district.name}")
    ws = Workspace.open(settings)
    ingest_info = {}
    try:
        if ws.active_version() is None:
            started = time.perf_counter()
            reports, seconds = ingest_district(ws, district)
            stages: dict[str, float] = {}
            for r in reports:
                for k, v in r.stage_seconds.items():
                    stages[k] = stages.get(k, 0.0) + v
            ingest_info = {
                "seconds": round(seconds, 1),
                "frames": sum(r.frames for r in reports),
                "stage_seconds": {k: round(v, 2) for k, v in stages.items()},
                "wall_seconds": round(time.perf_counter() - started, 1),
            }
            (out / f"ingest_{district.name}.json").write_text(json.dumps(ingest_info, indent=1))
        embedding = load_embedding_model("default", data_dir=ws.data_dir)
        sightings = load_sightings(ws, district, embedding.version)
        stored = load_attributes(ws, [s.id for s in sightings], model.version)
    finally:
        ws.close()
    people = {p["id"]: p for p in json.loads((district / "identities.json").read_text())}
    cases = read_cases(district)
    ids = np.array([s.id for s in sightings])
    gallery = np.stack([s.vector for s in sightings])
    rows = [stored.get(s.id, {}) for s in sightings]
    person = np.array([s.person_id if s.person_id is not None else -1 for s in sightings])

    # attribute accuracy of the stored (aggregated) sighting attributes against the ground truth
    sighting_accuracy = _sighting_accuracy(sightings, rows, people)

    rng = np.random.default_rng(seed)
    family = embedding.embedder.embed([_read(district / c["family_photo"]) for c in cases])
    still = embedding.embedder.embed([_read(district / c["last_seen"]) for c in cases])
    variants: dict[str, Variant] = {}
    examples, parse_mismatch = [], 0

    def add(name: str, scores: np.ndarray, correct: np.ndarray, group: str) -> None:
        v = variants.setdefault(name, Variant(name, [], [], []))
        rank, ap = rank_of(scores, ids, correct)
        v.ranks.append(rank)
        v.aps.append(ap)
        v.groups.append(group)

    answerable = 0
    for i, case in enumerate(cases):
        pid = int(case["person_id"])
        correct = person == pid
        if not correct.any():
            continue
        answerable += 1
        truth = labels_from_identity(people[pid])
        text = noisy_description(truth, rng)
        clean_text = noisy_description(truth, np.random.default_rng([seed, pid]), noise=False)
        try:
            described = parse_description(text)
        except Exception as error:  # a parse failure is a result, counted and shown
            parse_mismatch += 1
            examples.append({"person": pid, "text": text, "error": str(error)})
            described = Description(age_group=truth.exclusive["age_group"])
        if described.ignored:
            parse_mismatch += 1
        clean = parse_description(clean_text)
        group = case["age_group"]
        photo_family = family[i] @ gallery.T
        photo_still = still[i] @ gallery.T
        for floor in floors:
            ll = log_likelihood(described, rows, floor)
            suffix = "" if floor == FLOOR else f" (floor {floor})"
            add(f"description (noisy){suffix}", ll, correct, group)
            if floor == FLOOR:
                add(
                    "description (noisy, no colour confusion)",
                    log_likelihood(described, rows, floor, confusion=0.0),
                    correct,
                    group,
                )
                add("description (exact)", log_likelihood(clean, rows, floor), correct, group)
                add("family photo (other clothes)", photo_family, correct, group)
                add("last-seen still", photo_still, correct, group)
                for method in ("rank", "zscore"):
                    for w in FUSION_WEIGHTS:
                        tag = f"{method} fusion" + ("" if w == 1 else f", description x{w:g}")
                        add(
                            f"family photo + description ({tag})",
                            fuse(photo_family, ll, ids, method, w),
                            correct,
                            group,
                        )
                        add(
                            f"last-seen still + description ({tag})",
                            fuse(photo_still, ll, ids, method, w),
                            correct,
                            group,
                        )
        if len(examples) < 12:
            examples.append(
                {
                    "person": pid,
                    "age_group": group,
                    "query": text,
                    "understood": described.summary(),
                    "truth": truth.as_dict(),
                    "rank": variants["description (noisy)"].ranks[-1],
                }
            )
    return {
        "district": str(district),
        "sightings": len(sightings),
        "sightings_with_identity": int((person >= 0).sum()),
        "sightings_with_attributes": sum(1 for r in rows if r),
        "cases": len(cases),
        "answerable": answerable,
        "queries_with_parse_problems": parse_mismatch,
        "ingest": ingest_info,
        "sighting_attribute_accuracy": sighting_accuracy,
        "variants": {name: v.summary() for name, v in variants.items()},
        "examples": examples,
    }


def _sighting_accuracy(sightings, rows, people) -> dict:
    """Top-1 accuracy of the stored per-sighting attributes (aggregated over crops)."""
    hits: dict[str, list[bool]] = {}
    for s, probs in zip(sightings, rows, strict=True):
        if s.person_id is None or not probs or s.person_id not in people:
            continue
        truth = labels_from_identity(people[s.person_id])
        for f in FIELDS:
            value = truth.exclusive[f]
            if value is None or f not in probs:
                continue
            best = max(probs[f], key=probs[f].get)
            hits.setdefault(f, []).append(best == value)
        for a in ACCESSORIES:
            p = probs.get("accessories", {}).get(a)
            if p is not None:
                hits.setdefault(f"accessory:{a}", []).append((p > 0.5) == (a in truth.accessories))
    return {k: {"accuracy": round(float(np.mean(v)), 4), "n": len(v)} for k, v in hits.items()}


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"{path} is missing or unreadable")
    return image


# -- report --------------------------------------------------------------------------------------


def markdown(attributes: dict | None, districts: list[dict]) -> str:
    lines = []
    if attributes:
        lines.append(f"### Attributes on an unseen seed ({attributes['data']})\n")
        groups = [g for g in ("all", "child", "adult", "elderly", "day", "night")]
        groups = [g for g in groups if g in attributes["by_group"]]
        lines.append("| attribute | " + " | ".join(groups) + " |")
        lines.append("|---|" + "---|" * len(groups))
        for f in [*FIELDS, *(f"accessory:{a}" for a in ACCESSORIES)]:
            cells = []
            for g in groups:
                m = attributes["by_group"][g].get(f)
                if not m:
                    cells.append("–")
                elif f.startswith("accessory:"):
                    cells.append("–" if m["AP"] is None else f"AP {m['AP']:.2f}")
                else:
                    ap = "–" if m["mAP"] is None else f"{m['mAP']:.2f}"
                    cells.append(f"{m['accuracy']:.2f} / {ap}")
            lines.append(f"| {f} | " + " | ".join(cells) + " |")
        crops = ", ".join(f"{g} {attributes['by_group'][g]['crops']}" for g in groups)
        lines.append(f"\nexclusive fields: accuracy / mAP; accessories: AP. Crops: {crops}.\n")
    for d in districts:
        lines.append(
            f"### Description search on {Path(d['district']).name}: {d['answerable']} answerable "
            f"cases of {d['cases']}, {d['sightings']} sightings\n"
        )
        lines.append("| query | R@1 | R@5 | R@10 | R@50 | mAP | child R@10 | elderly R@10 |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for name, v in d["variants"].items():
            lines.append(
                f"| {name} | {v['recall@1']:.2f} | {v['recall@5']:.2f} | {v['recall@10']:.2f} | "
                f"{v['recall@50']:.2f} | {v['mAP']:.2f} | {v.get('child_recall@10', 0):.2f} | "
                f"{v.get('elderly_recall@10', 0):.2f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--district", type=Path, action="append", default=[])
    ap.add_argument("--test", type=Path, default=Path("/work/data/reid_eval_s303"))
    ap.add_argument("--skip-attributes", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("/work/runs/issue5"))
    ap.add_argument("--model", default=DEFAULT_ATTRIBUTE_MODEL)
    ap.add_argument("--floors", type=float, nargs="*", default=[FLOOR, 0.005, 0.05, 0.15])
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    args.out.mkdir(parents=True, exist_ok=True)
    model = AttributeModel.load(args.model)
    attributes = None
    if not args.skip_attributes:
        attributes = attribute_figures(model, args.test, args.out / "cache")
        (args.out / "attributes_test.json").write_text(json.dumps(attributes, indent=1))
        print(json.dumps({k: v for k, v in attributes["by_group"]["all"].items()}, indent=0))
    districts = []
    for district in args.district:
        result = district_figures(district, args.out, model, args.floors, args.seed)
        (args.out / f"description_search_{district.name}.json").write_text(
            json.dumps(result, indent=1, default=str)
        )
        districts.append(result)
        print(json.dumps(result["variants"], indent=1))
    (args.out / "results.md").write_text(markdown(attributes, districts))
    print((args.out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
