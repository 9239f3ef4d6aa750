"""The MOT17 same-camera sanity set: who becomes a query, who the gallery, and real figures."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from reunite.errors import DatasetLayoutError
from reunite.evaluation.mot_sanity import PROTOCOL, mot_sanity_set
from reunite.evaluation.reid_eval import evaluate_set
from reunite.models.color_histogram import ColorHistogramEmbedder

# gt lines: frame, id, x, y, w, h, consider, class, visibility
SEQUENCE_A = [
    "1,1,10,20,40,100,1,1,1.0",  # person 1, first frame: gallery
    "1,2,100,20,40,100,1,1,0.9",  # person 2, first frame: gallery
    "1,3,200,20,40,100,1,1,0.5",  # person 3: too occluded -> not in the gallery
    "1,4,300,20,40,50,1,1,1.0",  # person 4: too small -> not in the gallery
    "1,5,250,150,40,100,1,7,1.0",  # class 7 (static person) -> never used
    "1,6,50,150,40,100,0,1,1.0",  # consider flag 0 -> never used
    "1,7,380,20,60,100,1,1,1.0",  # person 7, half outside the 400 px frame: cropped to 20 px
    "3,1,12,22,40,100,1,1,1.0",  # person 1, last frame: query
    "3,2,102,22,40,100,1,1,0.6",  # person 2, last frame, exactly 60 % visible: query
    "3,3,202,22,40,100,1,1,1.0",  # person 3: not in the gallery -> not a query
    "3,8,150,150,40,100,1,1,1.0",  # person 8: only in the last frame -> not a query
    "2,1,11,21,40,100,1,1,1.0",  # a middle frame is not used at all
]
SEQUENCE_B = [
    "1,1,10,20,40,100,1,1,1.0",
    "2,1,10,20,40,100,1,1,1.0",  # the same person 1 as a query in sequence B's last frame
]


def write_sequence(root: Path, name: str, lines: list[str], frames: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    (root / name / "img1").mkdir(parents=True)
    (root / name / "gt").mkdir()
    for frame in range(1, frames + 1):
        image = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
        cv2.imwrite(str(root / name / "img1" / f"{frame:06d}.jpg"), image)
    (root / name / "gt" / "gt.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def mot_root(tmp_path: Path) -> Path:
    write_sequence(tmp_path, "SEQ-A", SEQUENCE_A, frames=3, seed=1)
    write_sequence(tmp_path, "SEQ-B", SEQUENCE_B, frames=2, seed=2)
    return tmp_path


def test_queries_are_last_frame_people_seen_clearly_in_the_first_frame(mot_root: Path) -> None:
    eval_set = mot_sanity_set(mot_root)

    assert eval_set.query_labels == ["SEQ-A f3 id1", "SEQ-A f3 id2", "SEQ-B f2 id1"]
    # Person 7 is 60 px wide but only 20 px of it is inside the frame: kept, cropped.
    assert eval_set.gallery_labels == [
        "SEQ-A f1 id1",
        "SEQ-A f1 id2",
        "SEQ-A f1 id7",
        "SEQ-B f1 id1",
    ]
    assert [crop.shape for crop in eval_set.gallery] == [(100, 40, 3)] * 2 + [(100, 20, 3)] + [
        (100, 40, 3)
    ]
    assert eval_set.q_blocks.tolist() == [0, 0, 1] and eval_set.g_blocks.tolist() == [0, 0, 0, 1]
    assert eval_set.protocol == PROTOCOL and not eval_set.exclude_same_camera
    assert {name: mask.tolist() for name, mask in eval_set.subgroups["sequence"].items()} == {
        "SEQ-A": [True, True, False],
        "SEQ-B": [False, False, True],
    }


def test_each_query_is_ranked_only_against_its_own_sequence(mot_root: Path) -> None:
    # Person 1 of SEQ-B is a different human from person 1 of SEQ-A, although the ids match.
    (result,) = evaluate_set([ColorHistogramEmbedder()], mot_sanity_set(mot_root))

    assert result.top_indices[2].tolist() == [3] + [-1] * 9  # SEQ-B's one gallery entry
    assert set(result.top_indices[0][:3].tolist()) == {0, 1, 2}
    assert result.threshold is None  # one camera: no cross-camera pairs to calibrate on
    assert "tpr@1e-3" not in result.metrics
    assert result.metrics["num_query"] == 3


def test_re_ranking_a_set_ranked_per_sequence_stays_within_each_sequence(mot_root: Path) -> None:
    (result,) = evaluate_set([ColorHistogramEmbedder()], mot_sanity_set(mot_root), rerank=True)

    assert result.top_indices[2].tolist() == [3] + [-1] * 9  # SEQ-B's one gallery entry
    assert set(result.top_indices[0][:3].tolist()) == {0, 1, 2}


def test_a_folder_with_no_usable_query_is_an_error(tmp_path: Path) -> None:
    # Only one frame: the first frame is the last one, nobody can be re-identified.
    write_sequence(tmp_path, "SEQ-C", ["1,1,10,20,40,100,1,1,1.0"], frames=1, seed=3)
    with pytest.raises(DatasetLayoutError, match="first and its last frame"):
        mot_sanity_set(tmp_path)


@pytest.mark.shared
@pytest.mark.parametrize("model", ["osnet_x0_25_msmt17_onnx", "color_histogram"])
def test_real_people_on_mot17_are_found_again_a_few_frames_later(shared_dir: Path, model: str):
    """Sanity, not a benchmark: consecutive frames of one camera are easy for any working model."""
    from reunite.models.onnx_reid import OnnxReidEmbedder
    from reunite.models.preprocessing import TORCHREID

    eval_set = mot_sanity_set(shared_dir / "data" / "real" / "mot17_mini")
    if model == "color_histogram":
        embedder = ColorHistogramEmbedder()
    else:
        onnx = shared_dir / "models" / "osnet_x0_25_msmt17" / "osnet_x0_25_msmt17.onnx"
        embedder = OnnxReidEmbedder(
            onnx, TORCHREID.input_size, TORCHREID.channel_order, TORCHREID.scale,
            TORCHREID.mean, TORCHREID.std, threads=1,
        )  # fmt: skip

    (result,) = evaluate_set([embedder], eval_set)

    metrics = result.metrics
    print(
        f"\n{embedder.name}: rank-1 {metrics['rank1']:.3f}, rank-5 {metrics['rank5']:.3f}, "
        f"mAP {metrics['mAP']:.3f} over {metrics['num_valid_query']} queries, "
        f"{len(eval_set.subgroups['sequence'])} sequences"
    )
    assert (metrics["num_query"], metrics["num_valid_query"], metrics["num_gallery"]) == (
        66,
        66,
        75,
    )
    assert len(eval_set.subgroups["sequence"]) == 7
    assert metrics["rank1"] >= 0.9
    assert metrics["rank5"] == 1.0
