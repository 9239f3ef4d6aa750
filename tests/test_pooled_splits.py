"""Several test splits evaluated together (``reunite eval --data A --data B``).

What is checked: each query is ranked (and re-ranked) only against its own split's gallery, pids
that repeat across splits stay different people (in the ranking, the verification pairs and the
bootstrap), every split keeps its own figures in a ``split`` table, pooled figures are the
average over all queries, and the gaps are standardised over light *and* split. Bad input: the
same folder twice, a split that is not Market-1501 layout, a malformed split among good ones.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_eval_cli import assert_one_clear_error, make_market, run_cli

from reunite.cli_eval import format_report_markdown
from reunite.errors import InvalidOptionError
from reunite.evaluation.market1501 import Market1501Layout
from reunite.evaluation.pooled_splits import pool_eval_sets, split_labels
from reunite.evaluation.rank import QueryScores
from reunite.evaluation.reid_eval import evaluate_set, market_eval_set
from reunite.evaluation.uncertainty import IdentityBootstrap, describe_uncertainty
from reunite.models.color_histogram import ColorHistogramEmbedder


def two_splits(tmp_path: Path) -> tuple[Path, Path]:
    """Split A (six people) and split B: A with every person's clothes swapped to those of
    person 7 - pid, so pid 1 of B wears what pid 6 of A wears. Pooled as one folder, pid 1's
    query in B would find A's pid 1 gallery crops of another person as 'matches'."""
    a = make_market(tmp_path / "a" / "split")
    b = tmp_path / "b" / "split"
    shutil.copytree(a, b)
    for folder in ("query", "bounding_box_test"):
        renamed = {}
        for path in (b / folder).glob("000[1-6]_*.jpg"):
            pid = int(path.name[:4])
            renamed[path] = b / folder / f"{7 - pid:04d}{path.name[4:]}"
        images = {target: cv2.imread(str(source)) for source, target in renamed.items()}
        for source in renamed:
            source.unlink()
        for target, image in images.items():
            cv2.imwrite(str(target), image)
    return a, b


def test_each_query_is_ranked_only_against_its_own_split(tmp_path: Path) -> None:
    a, b = two_splits(tmp_path)
    sets = [market_eval_set(Market1501Layout(folder)) for folder in (a, b)]
    pooled = pool_eval_sets(sets)
    embedder = ColorHistogramEmbedder()

    (result,) = evaluate_set([embedder], pooled, resamples=200)
    alone = [evaluate_set([embedder], s, resamples=0)[0] for s in sets]

    num_a = len(sets[0].gallery)
    assert len(pooled.query) == len(sets[0].query) + len(sets[1].query)
    a_queries = pooled.q_blocks == 0
    top = result.top_indices
    assert ((top[a_queries] < num_a) | (top[a_queries] == -1)).all()
    assert ((top[~a_queries] >= num_a) | (top[~a_queries] == -1)).all()
    # the colour histogram finds every colour-coded person in both splits: only because
    # A's pid 1 (red over blue) is never offered as a match for B's pid 1 (B's pid 6 colours)
    assert result.metrics["rank1"] == pytest.approx(1.0)
    for split, single in zip(("a/split", "b/split"), alone, strict=True):
        row = result.subgroups["split"][split]
        assert row["rank1"] == pytest.approx(single.metrics["rank1"])
        assert row["mAP"] == pytest.approx(single.metrics["mAP"])
        assert row["num_query"] == single.metrics["num_query"]
    pooled_map = np.mean([r.scores.ap[r.scores.valid].mean() for r in alone])  # equal sizes
    assert result.metrics["mAP"] == pytest.approx(pooled_map)
    # verification pairs are within a split only: the pooled counts are the splits' sums
    pairs = [s.threshold.positive_pairs + s.threshold.negative_pairs for s in alone]
    assert result.threshold.pairs == sum(pairs)
    assert result.threshold.positive_pairs == sum(s.threshold.positive_pairs for s in alone)
    # the bootstrap resamples 12 people, not the 6 pids both splits use
    assert result.intervals["num_identities"] == 12


def test_labels_and_subgroups_carry_the_split_they_came_from(tmp_path: Path) -> None:
    a, b = two_splits(tmp_path)
    (b / "identities.json").unlink()  # B does not describe ages: its queries are in no age group
    sets = [market_eval_set(Market1501Layout(folder)) for folder in (a, b)]
    pooled = pool_eval_sets(sets)

    assert pooled.query_labels[0].startswith("a/split/")
    assert pooled.gallery_labels[-1].startswith("b/split/")
    assert list(pooled.subgroups["split"]) == ["a/split", "b/split"]
    ages = pooled.subgroups["age_group"]
    assert list(ages) == ["child", "adult", "elderly"]
    assert not any(mask[pooled.q_blocks == 1].any() for mask in ages.values())
    assert sum(mask.sum() for mask in ages.values()) == len(sets[0].query)
    assert pooled.subgroups["light"]["night"].sum() == 2 * sets[0].subgroups["light"]["night"].sum()
    assert pool_eval_sets([sets[0]]) is sets[0]


def test_re_ranking_pooled_splits_stays_within_each_split(tmp_path: Path) -> None:
    a, b = two_splits(tmp_path)
    pooled = pool_eval_sets([market_eval_set(Market1501Layout(f)) for f in (a, b)])

    (result,) = evaluate_set([ColorHistogramEmbedder()], pooled, rerank=True, resamples=0)

    num_a = int((pooled.g_blocks == 0).sum())
    top_b = result.top_indices[pooled.q_blocks == 1]
    assert ((top_b >= num_a) | (top_b == -1)).all()
    assert result.metrics["rank1"] == pytest.approx(1.0)


def test_gaps_of_pooled_splits_are_taken_at_the_reference_mix_of_light_and_split() -> None:
    # Two splits, 100 children and 100 adults in each, one query per person, all by day. Split 1
    # is easy (every query a hit), split 2 hard (every query a miss), whoever it shows; 80 % of
    # the children but 20 % of the adults walk in split 1. Raw, children lead by 0.6; within each
    # split they are level, so at the adults' split mix the gap is exactly 0.
    people = np.arange(400)
    split = people >= 200
    in_easy = ~split
    child = np.where(in_easy, people % 200 < 160, people % 200 < 40)  # 160 vs 40 children
    groups = {
        "age_group": {"child": child, "adult": ~child},
        "light": {"day": np.ones(400, bool)},
        "split": {"easy": ~split, "hard": split},
    }
    hit = in_easy
    scores = QueryScores(np.where(hit, 1, 2), np.where(hit, 1.0, 0.5), np.ones(400))
    entry = describe_uncertainty(IdentityBootstrap(people, 200, seed=0), scores, groups)
    gap = entry["gaps"]["age_group"]["child"]

    assert gap["rank1"] == pytest.approx(160 / 200 - 40 / 200)
    assert gap["adjusted_for"] == "light and split"
    assert gap["rank1_adjusted"] == pytest.approx(0.0)
    assert "split" not in entry["gaps"]  # splits have no reference group
    # the light gap is standardised over the splits only (not over light itself)
    assert "adjusted_for" not in entry["gaps"].get("light", {}).get("night", {})


def test_split_labels_are_folder_names_made_as_long_as_needed_to_differ() -> None:
    assert split_labels(["/d/s206", "/d/s305"]) == ["s206", "s305"]
    assert split_labels(["/x/a/test", "/y/a/test"]) == ["x/a/test", "y/a/test"]


def test_the_same_split_twice_is_refused(tmp_path: Path) -> None:
    a, _ = two_splits(tmp_path)
    single = market_eval_set(Market1501Layout(a))
    with pytest.raises(InvalidOptionError, match="given twice"):
        pool_eval_sets([single, single])


# --- from the command line -------------------------------------------------------------------


def test_two_data_folders_give_one_pooled_report_with_a_table_per_split(tmp_path: Path) -> None:
    a, b = two_splits(tmp_path)
    out = tmp_path / "report"

    result = run_cli(
        "--model", "color_histogram", "--data", str(a), "--data", str(b),
        "--out", str(out), "--bootstrap", "100", "--sheet-queries", "8",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    report = json.loads((out / "metrics.json").read_text())
    assert report["protocol"] == "market1501, splits pooled"
    assert report["num_query"] == 12
    entry = report["models"]["color_histogram"]
    assert set(entry["subgroups"]["split"]) == {"a/split", "b/split"}
    gap = entry["intervals"]["gaps"]["age_group"]["child"]
    assert gap["adjusted_for"] == "light and split"
    markdown = (out / "metrics.md").read_text()
    assert "## By split (of the query)" in markdown
    assert "at the reference's light and split mix" in markdown
    shown = [q for sheet in report["sheets"]["color_histogram"] for q in sheet["queries"]]
    assert all(q.startswith(("a/split/", "b/split/")) for q in shown)
    assert format_report_markdown(report) == markdown


def test_the_same_folder_given_twice_is_one_clear_error(tmp_path: Path) -> None:
    a, _ = two_splits(tmp_path)
    out = tmp_path / "report"
    result = run_cli("--model", "color_histogram", "--data", str(a), "--data", str(a) + "/",
                     "--out", str(out))  # fmt: skip
    assert_one_clear_error(result, "--data names the same folder twice")
    assert not out.exists()


def test_a_bad_split_among_good_ones_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    a, b = two_splits(tmp_path)
    next((b / "query").glob("0001_*.jpg")).rename(b / "query" / "person1.jpg")
    out = tmp_path / "report"
    result = run_cli("--model", "color_histogram", "--data", str(a), "--data", str(b),
                     "--out", str(out))  # fmt: skip
    assert_one_clear_error(result, "person1.jpg")
    assert not out.exists()
