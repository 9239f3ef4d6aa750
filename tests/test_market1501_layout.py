"""Specification of the Market-1501 folder parser and of evaluating an embedder over one
(metrics dict, Markdown table, k-reciprocal re-ranking)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from reunite.errors import DatasetLayoutError
from reunite.evaluation.market1501 import Market1501Layout, ReidImage
from reunite.evaluation.reid_eval import (
    evaluate_embedder,
    evaluate_set,
    format_metrics_table,
    k_reciprocal_rerank,
    market_eval_set,
)
from reunite.evaluation.subgroups import height_band
from reunite.models.color_histogram import ColorHistogramEmbedder
from reunite.models.embedder import cosine_distance, l2_normalise

# Distinct (upper, lower) BGR clothing colours, one per person id.
CLOTHES = {
    1: ((0, 0, 200), (200, 0, 0)),
    2: ((0, 200, 0), (0, 200, 200)),
    3: ((200, 0, 200), (40, 40, 40)),
    4: ((0, 120, 255), (255, 255, 255)),
}


def person_crop(pid: int, rng: np.random.Generator) -> np.ndarray:
    """A 64x32 crop: pid's upper colour over its lower colour, plus noise (or random if unknown)."""
    upper, lower = CLOTHES.get(
        pid, (tuple(rng.integers(0, 256, 3)), tuple(rng.integers(0, 256, 3)))
    )
    crop = np.empty((64, 32, 3), dtype=np.int16)
    crop[:32], crop[32:] = upper, lower
    crop += rng.integers(-12, 13, crop.shape, dtype=np.int16)
    return np.clip(crop, 0, 255).astype(np.uint8)


def write_layout(root: Path, files: dict[str, list[str]], seed: int = 0) -> Path:
    """Create ``root/<folder>/<name>`` crops; the pid is read back from the name's prefix."""
    rng = np.random.default_rng(seed)
    for folder, names in files.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            cv2.imwrite(str(root / folder / name), person_crop(int(name.split("_")[0]), rng))
    return root


STANDARD_FILES = {
    "bounding_box_train": [
        "0007_c1s1_000100_00.jpg",
        "0007_c2s1_000200_01.jpg",
        "0003_c3s2_000300_00.jpg",
        "-1_c1s1_000400_02.jpg",
    ],
    "bounding_box_test": [
        "0001_c2s1_000151_01.jpg",
        "0002_c2s1_000151_02.jpg",
        "0000_c2s1_000160_00.jpg",
        "-1_c3s1_000170_00.jpg",
    ],
    "query": ["0001_c1s1_000050_00.jpg", "0002_c1s1_000050_01.jpg"],
}


def test_parses_train_gallery_and_query_with_pid_camera_sequence_and_frame(tmp_path: Path) -> None:
    layout = Market1501Layout(write_layout(tmp_path, STANDARD_FILES))

    assert [image.path.name for image in layout.query] == STANDARD_FILES["query"]
    assert layout.query[1] == ReidImage(
        tmp_path / "query" / "0002_c1s1_000050_01.jpg", pid=2, camid=1, seq=1, frame=50
    )
    assert len(layout.train) == 4
    assert {(image.pid, image.camid) for image in layout.gallery} == {
        (1, 2),
        (2, 2),
        (0, 2),
        (-1, 3),
    }


def test_junk_and_distractor_images_keep_their_special_pids(tmp_path: Path) -> None:
    layout = Market1501Layout(write_layout(tmp_path, STANDARD_FILES))
    pids = {image.path.name: image.pid for image in layout.gallery}
    assert pids["-1_c3s1_000170_00.jpg"] == -1
    assert pids["0000_c2s1_000160_00.jpg"] == 0


def test_relabel_train_maps_identities_to_consecutive_labels_and_drops_junk(
    tmp_path: Path,
) -> None:
    layout = Market1501Layout(write_layout(tmp_path, STANDARD_FILES))
    relabelled = layout.relabel_train()
    assert sorted((image.pid, image.camid) for image in relabelled) == [(0, 3), (1, 1), (1, 2)]


def test_files_that_are_not_jpg_are_ignored(tmp_path: Path) -> None:
    write_layout(tmp_path, STANDARD_FILES)
    (tmp_path / "bounding_box_test" / "Thumbs.db").write_bytes(b"\0")
    assert len(Market1501Layout(tmp_path).gallery) == 4


@pytest.mark.parametrize("missing", ["bounding_box_train", "bounding_box_test", "query"])
def test_a_missing_folder_is_named_in_the_error(tmp_path: Path, missing: str) -> None:
    files = {folder: names for folder, names in STANDARD_FILES.items() if folder != missing}
    with pytest.raises(DatasetLayoutError, match=f"missing folder .*{missing}"):
        Market1501Layout(write_layout(tmp_path, files))


@pytest.mark.parametrize(
    "bad_name",
    ["1_c1s1_000050_00.jpg", "0001_c0s1_000050_00.jpg", "0001_c1s1_50_00.jpg", "person.jpg"],
)
def test_the_first_badly_named_image_is_named_in_the_error(tmp_path: Path, bad_name: str) -> None:
    write_layout(tmp_path, STANDARD_FILES)
    cv2.imwrite(str(tmp_path / "query" / bad_name), np.zeros((8, 4, 3), np.uint8))
    with pytest.raises(DatasetLayoutError, match=bad_name):
        Market1501Layout(tmp_path)


def test_a_bad_name_error_says_which_folder_and_what_the_name_should_look_like(
    tmp_path: Path,
) -> None:
    write_layout(tmp_path, STANDARD_FILES)
    cv2.imwrite(str(tmp_path / "query" / "abc.jpg"), np.zeros((8, 4, 3), np.uint8))
    with pytest.raises(DatasetLayoutError) as error:
        Market1501Layout(tmp_path)
    assert str(error.value).startswith("query/abc.jpg: name does not match PPPP_cCsS_FFFFFF_NN.jpg")
    assert "0001_c1s1_000151_01.jpg" in str(error.value)


def test_sequence_numbers_may_have_several_digits(tmp_path: Path) -> None:
    # Large synthetic sets number their cohorts past 9: s12 is sequence 12, not an error.
    files = {**STANDARD_FILES, "query": ["0001_c1s12_000050_00.jpg"]}
    layout = Market1501Layout(write_layout(tmp_path, files))
    assert (layout.query[0].seq, layout.query[0].frame) == (12, 50)


def test_an_empty_query_folder_is_an_error(tmp_path: Path) -> None:
    write_layout(tmp_path, {**STANDARD_FILES, "query": []})
    with pytest.raises(DatasetLayoutError, match=r"no \.jpg images"):
        Market1501Layout(tmp_path)


def test_a_root_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError, match="not found"):
        Market1501Layout(tmp_path / "nowhere")


# --- evaluating an embedder over a layout ---------------------------------------------------


def colour_coded_layout(root: Path) -> Market1501Layout:
    """Four people seen by cameras 1 (query) and 2-3 (gallery), plus distractors and junk."""
    gallery = [
        f"{pid:04d}_c{cam}s1_{frame:06d}_00.jpg"
        for pid in CLOTHES
        for cam in (2, 3)
        for frame in (10, 20)
    ]
    gallery += [f"0000_c2s1_{frame:06d}_01.jpg" for frame in range(6)]
    gallery += ["-1_c2s1_000030_02.jpg"]
    query = [f"{pid:04d}_c1s1_000005_00.jpg" for pid in CLOTHES]
    files = {"bounding_box_train": [], "bounding_box_test": gallery, "query": query}
    return Market1501Layout(write_layout(root, files))


@pytest.mark.parametrize("rerank", [False, True])
def test_colour_histogram_finds_every_colour_coded_person(tmp_path: Path, rerank: bool) -> None:
    metrics = evaluate_embedder(ColorHistogramEmbedder(), colour_coded_layout(tmp_path), rerank)

    assert metrics["rank1"] == 1.0
    assert metrics["mAP"] == pytest.approx(1.0)
    assert metrics["mINP"] == pytest.approx(1.0)
    assert (metrics["num_query"], metrics["num_valid_query"], metrics["num_gallery"]) == (4, 4, 23)
    assert set(metrics) >= {"rank5", "rank10", "rank20", "tpr@1e-3", "thr@1e-3", "tpr@1e-4"}
    assert 0.0 <= metrics["tpr@1e-4"] <= metrics["tpr@1e-3"] <= 1.0


def test_a_corrupt_image_is_skipped_counted_and_named(tmp_path: Path) -> None:
    # A truncated download: one gallery file is not a JPEG any more.
    layout = colour_coded_layout(tmp_path)
    broken = layout.gallery[3].path
    broken.write_bytes(b"not a jpeg")

    eval_set = market_eval_set(layout)
    metrics = evaluate_embedder(ColorHistogramEmbedder(), layout)

    assert eval_set.skipped == [f"bounding_box_test/{broken.name}: cannot be decoded"]
    assert broken not in eval_set.gallery
    assert metrics["num_gallery"] == 22
    assert metrics["rank1"] == 1.0


def test_a_layout_where_no_query_can_match_fails_before_embedding(tmp_path: Path) -> None:
    files = {
        "bounding_box_train": [],
        "bounding_box_test": ["0001_c1s1_000010_00.jpg", "0002_c2s1_000010_00.jpg"],
        "query": ["0001_c1s1_000005_00.jpg"],  # its only gallery image is on its own camera
    }
    with pytest.raises(DatasetLayoutError, match="nothing can be scored"):
        evaluate_embedder(ColorHistogramEmbedder(), Market1501Layout(write_layout(tmp_path, files)))


def test_metrics_table_is_markdown_with_one_row_per_model() -> None:
    table = format_metrics_table(
        {
            "color_histogram": {"rank1": 0.25, "mAP": 0.125, "num_query": 4},
            "osnet": {"rank1": 0.5, "mAP": 0.375, "num_query": 4},
        }
    )
    assert table.splitlines() == [
        "| model | rank1 | mAP | num_query |",
        "|---|---|---|---|",
        "| color_histogram | 0.250 | 0.125 | 4 |",
        "| osnet | 0.500 | 0.375 | 4 |",
    ]


def paper_rerank(
    query: np.ndarray, gallery: np.ndarray, k1: int, k2: int, lambda_: float
) -> np.ndarray:
    """Zhong et al. 2017 transcribed literally, with dense matrices and Python sets."""
    features = np.concatenate([query, gallery])
    distance = cosine_distance(features, features).astype(np.float64)
    order = np.argsort(distance, axis=1, kind="stable")

    def reciprocal(p: int, k: int) -> set[int]:
        return {g for g in order[p, : k + 1] if p in order[g, : k + 1]}

    total, num_q = len(features), len(query)
    v = np.zeros((total, total))
    for p in range(total):
        expanded = reciprocal(p, k1)
        for q in reciprocal(p, k1):
            candidate = reciprocal(q, round(k1 / 2))
            if len(candidate & reciprocal(p, k1)) >= 2 / 3 * len(candidate):
                expanded |= candidate
        for g in expanded:
            v[p, g] = np.exp(-distance[p, g])
    v = np.stack([v[order[p, :k2]].mean(axis=0) for p in range(total)])
    jaccard = np.array(
        [
            [
                1 - np.minimum(v[i], v[g]).sum() / np.maximum(v[i], v[g]).sum()
                for g in range(num_q, total)
            ]
            for i in range(num_q)
        ]
    )
    return (1 - lambda_) * jaccard + lambda_ * distance[:num_q, num_q:]


def clustered_features(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(8, 16))
    people = rng.integers(0, 8, 60)
    return l2_normalise(centres[people] + rng.normal(size=(60, 16))), people


@pytest.mark.parametrize(("k1", "k2"), [(8, 3), (20, 6)])  # (20, 6): the paper's setting
@pytest.mark.parametrize("seed", range(2))
def test_rerank_matches_a_literal_transcription_of_the_paper(seed: int, k1: int, k2: int) -> None:
    features, _ = clustered_features(seed)
    query, gallery = features[:15], features[15:]
    np.testing.assert_allclose(
        k_reciprocal_rerank(query, gallery, k1=k1, k2=k2, lambda_=0.3),
        paper_rerank(query, gallery, k1=k1, k2=k2, lambda_=0.3),
        atol=1e-5,
    )


def test_rerank_defaults_are_the_papers_k1_20_k2_6_lambda_0_3() -> None:
    features, _ = clustered_features(seed=3)
    np.testing.assert_allclose(
        k_reciprocal_rerank(features[:15], features[15:]),
        paper_rerank(features[:15], features[15:], k1=20, k2=6, lambda_=0.3),
        atol=1e-5,
    )


def test_rerank_with_lambda_one_is_the_plain_cosine_distance() -> None:
    features, _ = clustered_features(seed=5)
    np.testing.assert_allclose(
        k_reciprocal_rerank(features[:10], features[10:], lambda_=1.0),
        cosine_distance(features[:10], features[10:]),
        atol=1e-6,
    )


# --- evaluation sets, several models, subgroups -------------------------------------------


def subgroup_layout(root: Path) -> Market1501Layout:
    """Four people; queries on camera 1 in sequence 1 (pids 1, 3) or 2 (pids 2, 4)."""
    gallery = [f"{pid:04d}_c{cam}s3_000010_00.jpg" for pid in CLOTHES for cam in (2, 3)]
    query = [f"{pid:04d}_c1s{2 - pid % 2}_000005_00.jpg" for pid in CLOTHES]
    files = {"bounding_box_train": [], "bounding_box_test": gallery, "query": query}
    layout_root = write_layout(root, files)
    (root / "identities.json").write_text(
        json.dumps(
            {
                "0001": {"age_group": "child", "age": 7, "split": "test"},
                "0002": {"age_group": "adult", "age": 30, "split": "test"},
                "0003": {"age_group": "elderly", "age": 80, "split": "test"},
                "0004": {"age_group": "adult", "age": 41, "split": "test"},
            }
        )
    )
    (root / "sequences.json").write_text(
        json.dumps({"1": {"hour": 11.0, "light": "day"}, "2": {"hour": 22.5, "light": "night"}})
    )
    return Market1501Layout(layout_root)


def test_queries_are_grouped_by_age_group_and_by_the_light_of_their_sequence(
    tmp_path: Path,
) -> None:
    eval_set = market_eval_set(subgroup_layout(tmp_path))

    age, light = eval_set.subgroups["age_group"], eval_set.subgroups["light"]
    assert list(age) == ["child", "adult", "elderly"]  # reading order, not file order
    assert age["adult"].tolist() == [False, True, False, True]
    assert light["day"].tolist() == [True, False, True, False]  # pids 1 and 3 are in s1
    assert light["night"].tolist() == [False, True, False, True]


def test_subgroup_figures_are_reported_per_model(tmp_path: Path) -> None:
    (result,) = evaluate_set([ColorHistogramEmbedder()], market_eval_set(subgroup_layout(tmp_path)))

    assert result.subgroups["age_group"]["adult"]["num_query"] == 2
    assert result.subgroups["light"]["night"]["num_valid_query"] == 2
    assert result.subgroups["age_group"]["child"]["rank1"] == 1.0


def test_a_set_without_description_files_has_no_subgroups(tmp_path: Path) -> None:
    # Real Market-1501 ships no identities.json / sequences.json: no error, no subgroups.
    assert market_eval_set(colour_coded_layout(tmp_path)).subgroups == {}


def test_queries_are_grouped_by_the_height_of_their_crop(tmp_path: Path) -> None:
    # Far people are short crops: resize three of the four queries (the fourth keeps the test
    # crops' 64 px); the gallery's heights do not matter.
    layout = subgroup_layout(tmp_path)
    queries = sorted(layout.root.joinpath("query").glob("*.jpg"))
    for path, height in zip(queries, (60, 100, 200), strict=False):
        image = cv2.imread(str(path))
        cv2.imwrite(str(path), cv2.resize(image, (height // 2, height)))

    bands = market_eval_set(Market1501Layout(layout.root)).subgroups["height"]

    assert list(bands) == ["< 80 px", "80-119 px", ">= 160 px"]  # no query is 120-159 px
    assert bands["< 80 px"].tolist() == [True, False, False, True]
    assert bands[">= 160 px"].tolist() == [False, False, True, False]
    assert height_band(79) == "< 80 px" and height_band(80) == "80-119 px"
    assert height_band(160) == ">= 160 px"


@pytest.mark.parametrize("content", ["{not json", '["0001", "0002"]'])
def test_a_malformed_description_file_is_named_in_the_error(tmp_path: Path, content: str) -> None:
    layout = subgroup_layout(tmp_path)
    (tmp_path / "identities.json").write_text(content)
    with pytest.raises(DatasetLayoutError, match=r"identities\.json"):
        market_eval_set(layout)


def test_a_query_sample_keeps_the_whole_gallery_and_its_subgroups_aligned(tmp_path: Path) -> None:
    full = market_eval_set(subgroup_layout(tmp_path))
    sample = full.sample_queries(2, seed=1)

    assert len(sample.query) == 2 and sample.gallery == full.gallery
    picked = [full.query_labels.index(label) for label in sample.query_labels]
    assert sample.q_pids.tolist() == full.q_pids[picked].tolist()
    assert sample.subgroups["light"]["night"].tolist() == (
        full.subgroups["light"]["night"][picked].tolist()
    )
    assert full.sample_queries(10) is full  # asking for more than there are keeps them all


def test_several_models_are_evaluated_side_by_side_with_distinct_names(tmp_path: Path) -> None:
    eval_set = market_eval_set(colour_coded_layout(tmp_path))
    results = evaluate_set(
        [ColorHistogramEmbedder(), ColorHistogramEmbedder(0.5), ColorHistogramEmbedder()], eval_set
    )
    assert [r.name for r in results] == [
        "color_histogram",
        "color_histogram_centre50",
        "color_histogram (2)",
    ]
    assert results[0].metrics == results[2].metrics


def test_verification_figures_use_plain_cosine_distances_even_when_re_ranking(
    tmp_path: Path,
) -> None:
    # A live alert cannot re-rank, so the calibrated threshold must not depend on --rerank.
    eval_set = market_eval_set(colour_coded_layout(tmp_path))
    (plain,) = evaluate_set([ColorHistogramEmbedder()], eval_set)
    (reranked,) = evaluate_set([ColorHistogramEmbedder()], eval_set, rerank=True)

    assert plain.threshold == reranked.threshold
    assert plain.threshold.data == str(tmp_path)
    assert plain.metrics["thr@1e-3"] == reranked.metrics["thr@1e-3"]
    assert plain.threshold.cosine_distance == plain.metrics["thr@1e-3"]


def test_top_matches_of_each_query_are_kept_for_failure_sheets(tmp_path: Path) -> None:
    eval_set = market_eval_set(colour_coded_layout(tmp_path))
    (result,) = evaluate_set([ColorHistogramEmbedder()], eval_set)

    assert result.top_indices.shape == (4, 10)
    # Every query's four images of itself (cameras 2 and 3) come first.
    for q, pid in enumerate(eval_set.q_pids):
        assert (eval_set.g_pids[result.top_indices[q, :4]] == pid).all()
    assert np.all(np.diff(result.top_distances, axis=1) >= 0)
