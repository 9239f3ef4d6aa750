"""``reunite synth district``: what it writes, and whether its ground truth can be trusted."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from reunite.errors import DiskFullError, OutputExistsError
from reunite.synth.district_job import DistrictOptions, generate_district
from reunite.synth.output import atomic_output_dir

pytestmark = pytest.mark.slow

SIZE = (640, 360)


def small(out: Path, **kw) -> DistrictOptions:
    base = dict(
        seed=5,
        cameras=3,
        people=14,
        minutes=0.15,
        fps=2.0,
        width=SIZE[0],
        height=SIZE[1],
        hour=11.0,
    )
    base.update(kw)
    return DistrictOptions(out, **base)


@pytest.fixture(scope="module")
def district(tmp_path_factory, world_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "district"
    generate_district(small(out), world_factory)
    return out


def read_gt(path: Path) -> np.ndarray:
    text = path.read_text().strip()
    return np.array([[float(v) for v in line.split(",")] for line in text.splitlines()])


def test_district_writes_the_documented_layout(district: Path):
    for name in (
        "manifest.json",
        "cameras.json",
        "graph.json",
        "identities.json",
        "visits.json",
        "cases.json",
    ):
        assert (district / name).is_file(), name
    manifest = json.loads((district / "manifest.json").read_text())
    cameras = json.loads((district / "cameras.json").read_text())
    assert len(cameras) == 3
    for cam in cameras:
        assert {"id", "name", "plan_position", "orientation_deg", "mount_height_m"} <= set(cam)
        assert 2.5 <= cam["mount_height_m"] <= 6.0
        folder = district / "cameras" / f"c{cam['id']}"
        frames = sorted((folder / "img1").glob("*.jpg"))
        assert len(frames) == manifest["frames_per_camera"] == 18
        number, epoch_ms = frames[0].stem.split("_")
        assert number == "000001" and int(epoch_ms) == round(manifest["start_epoch_s"] * 1000)
        assert cv2.imread(str(frames[0])).shape == (SIZE[1], SIZE[0], 3)
    people = json.loads((district / "identities.json").read_text())
    assert len(people) == 14
    for p in people:
        assert p["age_group"] in ("child", "adult", "elderly")
        assert {"upper", "lower"} <= set(p["clothing"])
        assert p["clothing"]["upper"]["colour"] and p["clothing"]["upper"]["colour_ko"]


def test_every_box_lies_inside_the_frame_with_visibility_in_0_1(district: Path):
    boxes = 0
    for gt_file in district.glob("cameras/c*/gt/gt.txt"):
        gt = read_gt(gt_file) if gt_file.read_text().strip() else np.zeros((0, 9))
        boxes += len(gt)
        if len(gt):
            x, y, w, h, vis = gt[:, 2], gt[:, 3], gt[:, 4], gt[:, 5], gt[:, 8]
            assert (x >= 0).all() and (y >= 0).all() and (w > 0).all() and (h > 0).all()
            assert (x + w <= SIZE[0]).all() and (y + h <= SIZE[1]).all()
            assert ((vis >= 0) & (vis <= 1)).all()
    assert boxes > 20  # people were actually seen


def test_boxes_cover_the_person_pixels_of_the_frame(district: Path, world_factory):
    """The box is the visible extent: re-render one frame and compare with its id buffer."""
    from reunite.synth.world import plan_district

    opts = small(district)
    plan = plan_district(opts.seed, opts.cameras, opts.people, opts.minutes * 60, SIZE, hour=11.0)
    world = world_factory(plan)
    gt = read_gt(district / "cameras" / "c1" / "gt" / "gt.txt")
    frame_no = int(gt[len(gt) // 2, 0])
    frame = world.render(1, (frame_no - 1) / opts.fps, np.random.default_rng(0))
    world.close()
    rows = gt[gt[:, 0] == frame_no]
    for b in frame.boxes:
        ys, xs = np.nonzero(frame.ids == b.person_id)
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (b.x, b.y, b.x + b.w, b.y + b.h)
        assert b.person_id in rows[:, 1]


def _shortest_paths(graph: dict) -> dict[tuple[int, int], float]:
    nodes = {e[k] for e in graph["edges"] for k in ("a", "b")}
    dist = {(a, b): (0.0 if a == b else np.inf) for a in nodes for b in nodes}
    for e in graph["edges"]:
        dist[e["a"], e["b"]] = dist[e["b"], e["a"]] = e["distance_m"]
    for k in nodes:
        for a in nodes:
            for b in nodes:
                dist[a, b] = min(dist[a, b], dist[a, k] + dist[k, b])
    return dist


def test_appearances_are_ordered_and_respect_walking_times(district: Path):
    graph = json.loads((district / "graph.json").read_text())
    dist = _shortest_paths(graph)
    vmax = graph["max_speed_mps"]
    manifest = json.loads((district / "manifest.json").read_text())
    fps = manifest["options"]["fps"]
    frames: dict[int, list[tuple[float, int]]] = {}  # person -> (time, camera) of every box
    for gt_file in district.glob("cameras/c*/gt/gt.txt"):
        cam = int(gt_file.parent.parent.name[1:])
        for row in read_gt(gt_file):
            frames.setdefault(int(row[1]), []).append(((row[0] - 1) / fps, cam))
    for seen in frames.values():
        seen.sort()
        for (t0, c0), (t1, c1) in itertools.pairwise(seen):
            if c0 != c1:  # left one camera, appeared in another: no faster than walking
                assert t1 - t0 >= dist[c0, c1] / vmax - 1.0 / fps
    visits = json.loads((district / "visits.json").read_text())
    for pid in {v["person_id"] for v in visits}:
        own = sorted((v for v in visits if v["person_id"] == pid), key=lambda v: v["start_s"])
        for a, b in itertools.pairwise(own):
            assert b["start_s"] - a["end_s"] >= dist[a["camera_id"], b["camera_id"]] / vmax


def test_every_child_and_elderly_identity_has_both_case_photos(district: Path):
    people = json.loads((district / "identities.json").read_text())
    cases = {c["person_id"]: c for c in json.loads((district / "cases.json").read_text())}
    subjects = [p["id"] for p in people if p["age_group"] in ("child", "elderly")]
    assert subjects and set(subjects) == set(cases)
    for pid in subjects:
        case = cases[pid]
        family = cv2.imread(str(district / case["family_photo"]))
        still = cv2.imread(str(district / case["last_seen"]))
        assert family is not None and family.shape[0] > family.shape[1]
        assert still is not None and still.size > 0
        assert case["last_seen_info"]["t"] < 0  # seen before the clip starts
        day = next(p for p in people if p["id"] == pid)["clothing"]["upper"]["colour"]
        assert case["family_photo_outfit"]["upper"]["colour"] != day  # other clothes


def test_same_seed_same_ground_truth(tmp_path: Path, world_factory):
    def run(name: str) -> Path:
        out = tmp_path / name
        generate_district(small(out, cameras=2, people=6, minutes=0.05), world_factory)
        return out

    a, b = run("a"), run("b")
    for rel in (
        "cameras.json",
        "identities.json",
        "visits.json",
        "graph.json",
        "cameras/c1/gt/gt.txt",
        "cameras/c2/gt/gt.txt",
    ):
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_video_format_writes_a_readable_mp4(tmp_path: Path, world_factory):
    out = tmp_path / "video"
    generate_district(small(out, cameras=1, people=3, minutes=0.05, format="video"), world_factory)
    cap = cv2.VideoCapture(str(out / "cameras" / "c1" / "video.mp4"))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    ok, frame = cap.read()
    assert ok and frame.shape == (SIZE[1], SIZE[0], 3)


def test_a_crash_midway_leaves_no_folder_behind(tmp_path: Path, world_factory):
    out = tmp_path / "crash"

    def broken_factory(d):
        world = world_factory(d)
        calls = {"n": 0}
        rasterize = world.rasterize

        def rasterize_then_crash(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] > 4:
                raise RuntimeError("simulated crash in the middle of the job")
            return rasterize(*args, **kwargs)

        world.rasterize = rasterize_then_crash
        return world

    with pytest.raises(RuntimeError, match="simulated crash"):
        generate_district(small(out, cameras=1, people=3, minutes=0.05), broken_factory)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".crash")]


def test_no_disk_space_is_a_clear_error_before_any_work(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10, 10, 1024))
    with pytest.raises(DiskFullError, match="not enough disk space"):
        generate_district(small(tmp_path / "full"), lambda d: None)
    assert not (tmp_path / "full").exists()


def test_existing_output_is_kept_unless_overwrite(tmp_path: Path):
    out = tmp_path / "keep"
    out.mkdir()
    (out / "x.txt").write_text("mine")
    with pytest.raises(OutputExistsError):
        generate_district(small(out), lambda d: None)
    assert (out / "x.txt").read_text() == "mine"


def test_output_written_meanwhile_by_another_run_is_not_replaced(tmp_path: Path):
    # tried: two runs into the same --out (no --overwrite); the other one finishes first
    out = tmp_path / "race"
    with (
        pytest.raises(OutputExistsError, match="another run") as raised,
        atomic_output_dir(out, overwrite=False) as tmp,
    ):
        (tmp / "mine.txt").write_text("second run")
        out.mkdir()
        (out / "theirs.txt").write_text("first run")
    assert [p.name for p in out.iterdir()] == ["theirs.txt"]
    kept = next(p for p in tmp_path.iterdir() if p.name.startswith("race.new-"))
    assert str(kept) in str(raised.value)
    assert (kept / "mine.txt").read_text() == "second run"
    with atomic_output_dir(out, overwrite=True) as tmp:  # --overwrite still replaces it
        (tmp / "mine.txt").write_text("third run")
    assert [p.name for p in out.iterdir()] == ["mine.txt"]


def test_masks_hold_the_person_ids_of_the_boxes(tmp_path: Path, world_factory):
    out = tmp_path / "masks"
    generate_district(small(out, cameras=1, people=6, minutes=0.05, masks=True), world_factory)
    gt = read_gt(out / "cameras" / "c1" / "gt" / "gt.txt")
    for row in gt:
        mask = cv2.imread(
            str(out / "cameras" / "c1" / "masks" / f"{int(row[0]):06d}.png"), cv2.IMREAD_UNCHANGED
        )
        assert mask.dtype == np.uint16
        x, y, w, h = (int(v) for v in row[2:6])
        assert (mask[y : y + h, x : x + w] == int(row[1])).any()


def test_people_cut_by_the_frame_edge_are_not_fully_visible(district: Path):
    cut = 0
    for gt_file in district.glob("cameras/c*/gt/gt.txt"):
        for row in read_gt(gt_file):
            x, y, w, h, vis = row[2], row[3], row[4], row[5], row[8]
            if x <= 0 or y <= 0 or x + w >= SIZE[0] or y + h >= SIZE[1]:
                cut += 1
                assert vis < 1.0, row
    assert cut > 0  # the clip does show people entering and leaving the view
