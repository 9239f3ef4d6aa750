"""``reunite synth reid``: a Market-1501-layout re-ID data set cropped from rendered CCTV frames.

Crops are cut from full camera frames (background, other people, props, the camera's image
chain) with loose, jittered boxes as a detector gives them. Identities are rendered in cohorts
at different hours (day, dusk, night IR); train and test identities are disjoint. As in
Market-1501: one query per test identity and camera (its clearest crop, as Market-1501's
queries are hand-drawn boxes; at least ``QUERY_VISIBILITY`` of the person in view), the rest in
the gallery; ``-1`` junk (heavily occluded crops) and ``0000`` distractors (background and
body-part boxes) in the gallery.
Beside the images, ``identities.json`` (pid -> age group, age, gender, split, and the 인상착의
ground truth: clothing types and colour names, sleeve, accessories) and ``sequences.json`` (the
``s`` number of a file name -> hour and day/night) let evaluation report results per subgroup and
train the attribute model. ``cohort_identities`` re-derives the same identities from the options
alone (planning only, no rendering), for sets written before the clothing was recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reunite import __version__
from reunite.errors import InvalidOptionError
from reunite.synth.appearance import Identity
from reunite.synth.output import atomic_output_dir, check_free_space, write_jpeg, write_json
from reunite.synth.world import District, plan_district, repopulate

COHORT = 80  # identities rendered together (memory stays flat, hours vary between cohorts)
WINDOW_S = 150.0  # a cohort's clip: dense enough that one render yields many crops
GRID_S = 2.0  # a camera is rendered every GRID_S seconds of a cohort's clip
MIN_HEIGHT = 48  # pixels: smaller people are not cropped (as in Market-1501's detector)
JUNK_VISIBILITY = 0.3
# A query shows the whole person: Market-1501's queries are hand-drawn boxes around clearly seen
# people, and a case's "last seen" still is picked the same way (a crop of legs cut off by the
# frame edge is no one's query). The real MOT17 sanity set uses the same cut.
QUERY_VISIBILITY = 0.6
# Cohorts cycle through the day: mostly daylight, then dusk and night (IR or street lamps).
_HOURS = [9.0, 12.0, 22.0, 15.5, 18.5, 10.5, 13.5, 21.0]
Progress = Callable[[str, int, int], None]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReidOptions:
    out: Path
    seed: int = 0
    train_ids: int = 250
    test_ids: int = 250
    cameras: int = 6
    overwrite: bool = False
    size: tuple[int, int] = (1280, 720)
    crops_per_visit: int = 5

    def validate(self) -> None:
        if not 1 <= self.train_ids <= 20000 or not 1 <= self.test_ids <= 20000:
            raise InvalidOptionError("--train-ids and --test-ids must be 1..20000")
        if not 2 <= self.cameras <= 9:
            raise InvalidOptionError(
                f"--cameras must be 2..9 (Market-1501 names hold one digit), got {self.cameras}"
            )


@dataclass
class _Crop:
    pid: int
    cam: int
    seq: int
    frame: int
    image: np.ndarray
    visibility: float
    split: str


def generate_reid(opts: ReidOptions, kit, renderer, uv_maps, progress: Progress | None = None):
    """Render the data set into ``opts.out`` (atomically); returns a summary dict."""
    from reunite.synth.frames import DistrictRenderer

    opts.validate()
    progress = progress or (lambda stage, done, total: None)
    total_ids = opts.train_ids + opts.test_ids
    check_free_space(opts.out, total_ids * 12 * 12_000 + 20 * 2**20)
    base = plan_district(opts.seed, opts.cameras, 0, 60.0, opts.size)
    rng = np.random.default_rng([opts.seed, 5])
    counts = {
        "train_images": 0,
        "gallery_images": 0,
        "query_images": 0,
        "junk": 0,
        "distractors": 0,
    }
    done_ids = 0
    with atomic_output_dir(opts.out, opts.overwrite) as tmp:
        for name in ("bounding_box_train", "bounding_box_test", "query"):
            (tmp / name).mkdir()
        shared_cameras: dict = {}
        people: dict[str, dict] = {}  # pid -> who (subgroup results need it)
        sequences: dict[str, dict] = {}  # seq -> when (day / night results need it)
        for seq, split, cohort in _cohorts(base, opts):
            world = DistrictRenderer(cohort, kit, renderer, uv_maps, camera_cache=shared_cameras)
            people.update({f"{p.id:04d}": _who(p, split) for p in cohort.identities})
            sequences[str(seq)] = {
                "hour": cohort.hour,
                "light": "night" if cohort.night else "day",
                "split": split,
            }
            crops = _render_cohort(world, cohort, seq, split, opts, rng)
            _write_cohort(tmp, crops, split, rng, counts)
            world.close()
            done_ids += len(cohort.identities)
            progress("identities", done_ids, total_ids)
        summary = {
            "generator": "reunite synth reid",
            "version": __version__,
            "seed": opts.seed,
            "train_ids": opts.train_ids,
            "test_ids": opts.test_ids,
            "cameras": opts.cameras,
            **counts,
        }
        write_json(tmp / "manifest.json", summary)
        write_json(tmp / "identities.json", people)
        write_json(tmp / "sequences.json", sequences)
    log.info("re-ID set written", extra={"out": str(opts.out), **counts})
    return summary


def _cohorts(base: District, opts: ReidOptions) -> Iterator[tuple[int, str, District]]:
    """The cohorts of both splits in render order: (sequence number, split, planned cohort)."""
    seq = 0
    for split, first, n in (
        ("train", 1, opts.train_ids),
        ("test", opts.train_ids + 1, opts.test_ids),
    ):
        # at least four cohorts per split, so that every split sees several times of day
        step = int(np.clip(np.ceil(n / 4), 10, COHORT))
        for start in range(first, first + n, step):
            size = min(step, first + n - start)
            hour = _HOURS[seq % len(_HOURS)]
            seq += 1
            yield (
                seq,
                split,
                repopulate(base, opts.seed, start, size, hour, window_s=WINDOW_S, stops=(3, 6)),
            )


def _who(p: Identity, split: str) -> dict:
    """An identity's subgroups and its 인상착의 ground truth (what a description names)."""
    full = p.to_json()
    return {
        "age_group": p.age_group,
        "age": p.age_years,
        "gender": p.gender,
        "split": split,
        "clothing": full["clothing"],
        "accessories": full["accessories"],
    }


def cohort_identities(opts: ReidOptions) -> tuple[dict[str, dict], dict[str, dict]]:
    """``identities.json`` and ``sequences.json`` of the set these options render, re-derived by
    planning alone (seconds, no GL): people and hours depend only on the seed and the counts.
    Lets sets rendered before the clothing was recorded gain their attribute ground truth."""
    opts.validate()
    base = plan_district(opts.seed, opts.cameras, 0, 60.0, opts.size)
    people: dict[str, dict] = {}
    sequences: dict[str, dict] = {}
    for seq, split, cohort in _cohorts(base, opts):
        people.update({f"{p.id:04d}": _who(p, split) for p in cohort.identities})
        light = "night" if cohort.night else "day"
        sequences[str(seq)] = {"hour": cohort.hour, "light": light, "split": split}
    return people, sequences


def _render_cohort(
    world, cohort: District, seq: int, split: str, opts: ReidOptions, rng: np.random.Generator
) -> list[_Crop]:
    """Render each camera on a time grid and crop the people due a sample in that frame."""
    due: dict[int, dict[int, set[int]]] = {}  # camera -> grid cell -> people due a crop
    for v in cohort.visits:
        times = v.start + (np.arange(opts.crops_per_visit) + rng.uniform(0.2, 0.8)) * (
            (v.end - v.start) / opts.crops_per_visit
        )
        for t in times:
            due.setdefault(v.camera_id, {}).setdefault(int(t // GRID_S), set()).add(v.person_id)
    crops: list[_Crop] = []
    frame_rng = np.random.default_rng([opts.seed, seq, 3])
    for cam_id in sorted(due):
        cells = sorted(due[cam_id])
        times = [(cell + 0.5) * GRID_S for cell in cells]
        for cell, t, frame in zip(
            cells, times, world.render_sequence(cam_id, times, frame_rng), strict=True
        ):
            frame_no = int(t * 25) + 1
            for b in frame.boxes:
                if b.person_id not in due[cam_id][cell] or b.h < MIN_HEIGHT:
                    continue
                crop = _loose_crop(frame.rgb, (b.x, b.y, b.w, b.h), rng)
                crops.append(_Crop(b.person_id, cam_id, seq, frame_no, crop, b.visibility, split))
            if split == "test" and rng.random() < 0.35:
                crops.append(_distractor(frame, cam_id, seq, frame_no, rng))
    return crops


def _loose_crop(
    rgb: np.ndarray, box: tuple[float, float, float, float], rng: np.random.Generator
) -> np.ndarray:
    """A detector-like box: a little too large, a little off-centre."""
    x, y, w, h = box
    w2, h2 = w * rng.uniform(1.0, 1.25), h * rng.uniform(1.0, 1.12)
    cx = x + w / 2 + rng.normal(0, 0.06) * w
    cy = y + h / 2 + rng.normal(0, 0.04) * h
    x0, y0 = int(max(cx - w2 / 2, 0)), int(max(cy - h2 / 2, 0))
    x1 = int(min(cx + w2 / 2, rgb.shape[1]))
    y1 = int(min(cy + h2 / 2, rgb.shape[0]))
    return rgb[y0:y1, x0:x1].copy()


def _distractor(frame, cam_id: int, seq: int, frame_no: int, rng: np.random.Generator) -> _Crop:
    """Market-1501's 0000 images: background boxes or a part of a person (IoU < 0.5)."""
    hgt, wid = frame.rgb.shape[:2]
    if frame.boxes and rng.random() < 0.5:
        b = frame.boxes[int(rng.integers(len(frame.boxes)))]
        top = rng.random() < 0.5
        box = (b.x, b.y if top else b.y + 0.55 * b.h, b.w, 0.45 * b.h)
    else:
        h = rng.uniform(60, 200)
        box = (rng.uniform(0, wid - h / 2), rng.uniform(0, hgt - h), h / 2, h)
    return _Crop(0, cam_id, seq, frame_no, _loose_crop(frame.rgb, box, rng), 0.0, "distractor")


def _write_cohort(
    tmp: Path, crops: list[_Crop], split: str, rng: np.random.Generator, counts: dict
) -> None:
    index: dict[tuple[int, int, int], int] = {}

    def write(folder: str, c: _Crop, pid: int, *counters: str) -> None:
        key = (c.cam, c.seq, c.frame)
        index[key] = index.get(key, 0) + 1
        label = "-1" if pid < 0 else f"{pid:04d}"
        name = f"{label}_c{c.cam}s{c.seq}_{c.frame:06d}_{index[key]:02d}.jpg"
        write_jpeg(tmp / folder / name, c.image, 92)
        for counter in counters:
            counts[counter] += 1

    if split == "train":
        for c in crops:
            if c.visibility >= JUNK_VISIBILITY and c.image.size:
                write("bounding_box_train", c, c.pid, "train_images")
        return
    groups_of: dict[int, dict[int, list[_Crop]]] = {}  # person -> camera -> crops
    for c in crops:
        if c.split == "distractor":
            write("bounding_box_test", c, 0, "distractors", "gallery_images")
        elif c.visibility < JUNK_VISIBILITY:
            write("bounding_box_test", c, -1, "junk", "gallery_images")
        else:
            groups_of.setdefault(c.pid, {}).setdefault(c.cam, []).append(c)
    for pid in sorted(groups_of):
        groups = groups_of[pid]
        queries = _pick_queries(groups)
        for cam in sorted(groups):
            group = groups[cam]
            order = rng.permutation(len(group))
            # The query is the camera's best clear crop (most visible, then tallest); the
            # harder ones stay in the gallery.
            order = sorted(order, key=lambda i: _query_order(group[i]))
            for rank, i in enumerate(order):
                if rank == 0 and cam in queries:
                    write("query", group[i], pid, "query_images")
                else:
                    write("bounding_box_test", group[i], pid, "gallery_images")


def _query_order(c: _Crop) -> tuple[bool, float]:
    """Sort key, best query first: clear crops, then most visible and tallest."""
    return (not _is_clear(c), -c.visibility * min(c.image.shape[0] / 160.0, 1.0))


def _is_clear(c: _Crop) -> bool:
    return c.visibility >= QUERY_VISIBILITY


def _pick_queries(groups: dict[int, list[_Crop]]) -> set[int]:
    """Cameras that give this person a query image (one each, as in Market-1501): those where
    the person is clearly seen at least once.

    Every query must stay answerable: the camera with most images keeps them in the gallery
    (giving up one only if another camera keeps a gallery image too).
    """
    if len(groups) < 2:
        return set()
    clear = {cam for cam, group in groups.items() if any(_is_clear(c) for c in group)}
    anchor = max(groups, key=lambda cam: (len(groups[cam]), -cam))
    queries = {cam for cam in groups if cam != anchor and cam in clear}
    keeps_gallery = any(len(groups[c]) > (c in queries) for c in groups if c != anchor)
    if anchor in clear and len(groups[anchor]) >= 2 and keeps_gallery:
        queries.add(anchor)
    return queries
