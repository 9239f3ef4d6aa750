"""What tells a wrong rank-1 match apart from the query's person: a hand-computed case, then the
report of ``reunite eval`` on a set with a look-alike pair, and sets that describe no clothing."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from reunite.cli_eval import format_report_markdown, run_eval
from reunite.errors import DatasetLayoutError
from reunite.evaluation.confusions import differences, rank1_confusions
from reunite.evaluation.market1501 import Market1501Layout
from reunite.evaluation.pooled_splits import pool_eval_sets
from reunite.evaluation.reid_eval import market_eval_set
from reunite.models.attributes import Labels, labels_from_identity
from reunite.models.color_histogram import ColorHistogramEmbedder


def person(age: str, gender: str, top: str, bottom: str, kind: str = "tshirt") -> dict:
    """An identities.json entry as ``synth reid`` writes it."""
    return {
        "age_group": age,
        "gender": gender,
        "clothing": {
            "upper": {"type": kind, "colour": top, "sleeve": "short"},
            "lower": {"type": "trousers", "colour": bottom},
        },
        "accessories": [],
    }


def labels(*args: str) -> Labels:
    return labels_from_identity(person(*args))


def test_differences_name_each_attribute_that_differs() -> None:
    child = labels("child", "female", "red", "blue")
    assert not any(differences(child, child).values())
    adult = labels("adult", "male", "red", "blue", "hoodie")
    changed = {field for field, differs in differences(child, adult).items() if differs}
    assert changed == {"age_group", "gender", "upper_type"}
    backpack = labels_from_identity(
        person("child", "female", "red", "blue") | {"accessories": [{"type": "backpack"}]}
    )
    assert {f for f, d in differences(child, backpack).items() if d} == {"accessories"}


def test_rank1_confusions_by_hand() -> None:
    a = labels("child", "female", "red", "blue")
    twin = labels("adult", "male", "red", "blue")  # same colours, other age and gender
    other = labels("child", "female", "green", "blue")  # differs in the top's colour only
    # gallery: 0 = a, 1 = twin, 2 = other, 3 = an undescribed distractor
    g_pids, gallery = np.array([1, 2, 3, 0]), [a, twin, other, None]
    # queries: a right; a taken for twin; a taken for other; a taken for the distractor;
    # a query without a true match (not valid: not counted even though its top-1 is wrong)
    q_pids = np.array([1, 1, 1, 1, 1])
    top = np.array([[0], [1], [2], [3], [1]])
    valid = np.array([True, True, True, True, False])
    night = np.array([False, True, False, False, False])
    report = rank1_confusions(
        top, valid, [a] * 5, gallery, q_pids, g_pids, {"day": ~night, "night": night}
    )
    assert report["wrong_rank1"] == 3 and report["compared"] == 2
    assert report["same_colours"] == 0.5 and report["nothing_differs"] == 0.0
    assert report["differs"]["age_group"] == 0.5
    assert report["differs"]["upper_colour"] == 0.5
    assert report["differs"]["lower_colour"] == 0.0
    day, night_row = report["by_light"]["day"], report["by_light"]["night"]
    assert (day["wrong_rank1"], day["compared"], day["same_colours"]) == (2, 1, 0.0)
    assert (night_row["compared"], night_row["same_colours"]) == (1, 1.0)
    empty = rank1_confusions(top[:1], valid[:1], [a], gallery, q_pids[:1], g_pids)
    assert empty["wrong_rank1"] == 0 and empty["same_colours"] is None


def _split(root: Path, describe: bool = True) -> Path:
    """Three people on cameras 1-3; people 1 and 2 wear the same red top and blue trousers, and
    person 1's gallery crops are in shadow, so a colour model takes person 2 for person 1."""
    rng = np.random.default_rng(0)
    for folder in ("bounding_box_train", "bounding_box_test", "query"):
        (root / folder).mkdir(parents=True)
    colours = {1: ((0, 0, 200), (200, 0, 0)), 2: ((0, 0, 200), (200, 0, 0)),
               3: ((0, 200, 0), (0, 200, 200))}  # fmt: skip

    def crop(pid: int, shade: float = 1.0) -> np.ndarray:
        upper, lower = colours[pid]
        image = np.empty((64, 32, 3), np.float32)
        image[:32], image[32:] = upper, lower
        image = image * shade + rng.normal(0, 4, image.shape)
        return np.clip(image, 0, 255).astype(np.uint8)

    for pid in (1, 2, 3):
        cv2.imwrite(str(root / "query" / f"{pid:04d}_c1s1_000005_00.jpg"), crop(pid))
        for cam in (2, 3):
            shaded = crop(pid, 0.35 if pid == 1 else 1.0)
            cv2.imwrite(
                str(root / "bounding_box_test" / f"{pid:04d}_c{cam}s1_000010_00.jpg"), shaded
            )
    if describe:
        people = {
            "0001": person("child", "female", "red", "blue"),
            "0002": person("adult", "male", "red", "blue"),
            "0003": person("adult", "female", "green", "yellow"),
        }
        (root / "identities.json").write_text(json.dumps(people))
        (root / "sequences.json").write_text(json.dumps({"1": {"hour": 12.0, "light": "day"}}))
    return root


def test_the_report_says_what_a_wrong_match_differs_in(tmp_path: Path) -> None:
    eval_set = market_eval_set(Market1501Layout(_split(tmp_path / "s")))
    report = run_eval([ColorHistogramEmbedder()], eval_set, resamples=0)
    ((name, entry),) = report["models"].items()
    confusions = entry["confusions"]
    assert confusions["wrong_rank1"] == 1 and confusions["compared"] == 1
    assert confusions["same_colours"] == 1.0 and confusions["nothing_differs"] == 0.0
    assert confusions["differs"]["age_group"] == 1.0 and confusions["differs"]["gender"] == 1.0
    assert confusions["differs"]["upper_type"] == 0.0
    assert confusions["by_light"]["day"]["wrong_rank1"] == 1
    markdown = format_report_markdown(report)
    assert "## Wrong rank-1 matches: what tells the two people apart" in markdown
    assert f"| {name} | all | 1 | 1 | 1.000 | 0.000 | 1.000 | 1.000 | 0.000 |" in markdown

    # pooled with a split that describes no clothing: its queries are simply not compared
    pooled = pool_eval_sets(
        [eval_set, market_eval_set(Market1501Layout(_split(tmp_path / "t", False)))]
    )
    assert pooled.query_attributes[3:] == [None] * 3
    entry = run_eval([ColorHistogramEmbedder()], pooled, resamples=0)["models"][name]
    assert entry["confusions"]["compared"] == 1
    assert entry["confusions"]["wrong_rank1"] >= 1


def test_sets_without_clothing_have_no_confusions_and_bad_files_are_named(
    tmp_path: Path,
) -> None:
    # real data (no identities.json) and age-group-only files: no section, no error
    bare = _split(tmp_path / "bare", describe=False)
    report = run_eval([ColorHistogramEmbedder()], market_eval_set(Market1501Layout(bare)),
                      resamples=0)  # fmt: skip
    assert all(e["confusions"] is None for e in report["models"].values())
    assert "Wrong rank-1" not in format_report_markdown(report)
    (bare / "identities.json").write_text(json.dumps({"0001": {"age_group": "child"}}))
    assert market_eval_set(Market1501Layout(bare)).query_attributes is None
    # tried: a colour outside the vocabulary, and a file that is not JSON
    wrong = person("child", "female", "teal", "blue")
    (bare / "identities.json").write_text(json.dumps({"0001": wrong}))
    with pytest.raises(DatasetLayoutError, match="upper_colour value 'teal'"):
        market_eval_set(Market1501Layout(bare))
    (bare / "identities.json").write_text("{")
    with pytest.raises(DatasetLayoutError, match=r"cannot read .*identities\.json"):
        market_eval_set(Market1501Layout(bare))
