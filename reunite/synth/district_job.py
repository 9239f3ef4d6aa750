"""``reunite synth district``: render a multi-camera district clip with its ground truth.

Output (``OUT``)::

    manifest.json      seed, options, clock (start time), frames per camera, generator version
    cameras.json       id, name, plan position, orientation, mounting height, tilt, optics
    graph.json         walking graph: edges with distances (m) and the world's top speed
    identities.json    age group, age, height, clothing (colour names, garment types), accessories
    visits.json        every (person, camera, start, end) crossing, the source of all boxes
    cases.json         per child / elderly identity: family photo (other clothes), last-seen still
    cameras/cN/img1/000001_<epoch ms>.jpg   (or cameras/cN/video.mp4 with --format video)
    cameras/cN/timestamps.csv              frame, epoch ms, ISO time
    cameras/cN/gt/gt.txt                   MOT: frame, id, x, y, w, h, 1, 1, visibility
    cameras/cN/masks/000001.png            with --masks: 16-bit person ids per pixel
    cases/PPPP/family.jpg, cases/PPPP/last_seen.jpg
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from reunite import __version__
from reunite.errors import InvalidOptionError
from reunite.synth.output import (
    atomic_output_dir,
    check_free_space,
    check_output_dir,
    write_jpeg,
    write_json,
)
from reunite.synth.world import MAX_SPEED, District, plan_district

log = logging.getLogger(__name__)

MAX_SIDE = 4096
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class DistrictOptions:
    out: Path
    seed: int = 0
    cameras: int = 6
    people: int = 60
    minutes: float = 2.0
    fps: float = 5.0
    width: int = 1280
    height: int = 720
    format: str = "frames"
    hour: float | None = None
    overwrite: bool = False
    jpeg_quality: int = 90
    masks: bool = False  # also write each frame's person-id mask (16-bit PNG, 0 = nobody)

    def validate(self) -> None:
        if not 1 <= self.cameras <= 64:
            raise InvalidOptionError(f"--cameras must be 1..64, got {self.cameras}")
        if not 0 <= self.people <= 5000:
            raise InvalidOptionError(f"--people must be 0..5000, got {self.people}")
        if not 0 < self.minutes <= 120:
            raise InvalidOptionError(f"--minutes must be > 0 and at most 120, got {self.minutes}")
        if not 0.1 <= self.fps <= 30:
            raise InvalidOptionError(f"--fps must be 0.1..30, got {self.fps}")
        if not (64 <= self.width <= MAX_SIDE and 64 <= self.height <= MAX_SIDE):
            raise InvalidOptionError(
                f"--size {self.width}x{self.height} is impossible: each side must be 64..{MAX_SIDE}"
            )
        if self.format not in ("frames", "video"):
            raise InvalidOptionError(f"--format must be 'frames' or 'video', got {self.format!r}")
        if self.hour is not None and not 0 <= self.hour < 24:
            raise InvalidOptionError(f"--hour must be 0..24, got {self.hour}")

    @property
    def frames_per_camera(self) -> int:
        return max(1, round(self.minutes * 60 * self.fps))


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InvalidOptionError(f"--size must look like 1280x720, got {text!r}") from None
    return w, h


def generate_district(
    opts: DistrictOptions,
    world_factory: Callable[[District], object],
    progress: Progress | None = None,
) -> dict:
    """Plan, render and write a district; returns the manifest. ``world_factory`` builds the
    ``DistrictRenderer`` (so the CLI can share one GL context and body kit between jobs)."""
    opts.validate()
    check_output_dir(opts.out, opts.overwrite)
    frames = opts.frames_per_camera
    bytes_per_frame = opts.width * opts.height // 8
    check_free_space(opts.out, opts.cameras * frames * bytes_per_frame + 50 * 2**20)
    district = plan_district(
        opts.seed,
        opts.cameras,
        opts.people,
        opts.minutes * 60,
        (opts.width, opts.height),
        hour=opts.hour,
    )
    world = world_factory(district)
    progress = progress or (lambda stage, done, total: None)
    log.info(
        "rendering district",
        extra={
            "out": str(opts.out),
            "seed": opts.seed,
            "cameras": opts.cameras,
            "people": opts.people,
            "frames_per_camera": frames,
            "hour": district.hour,
        },
    )
    with atomic_output_dir(opts.out, opts.overwrite) as tmp:
        _write_static(tmp, district, opts)
        cases = _write_cases(tmp, world, district, progress)
        write_json(tmp / "cases.json", cases)
        total = opts.cameras * frames
        done = 0
        for cam in district.cameras:
            done = _write_camera(tmp, world, district, cam.id, opts, progress, done, total)
        manifest = _manifest(district, opts, frames, len(cases))
        write_json(tmp / "manifest.json", manifest)
    log.info("district written", extra={"out": str(opts.out), "cases": len(cases)})
    return manifest


def _manifest(district: District, opts: DistrictOptions, frames: int, cases: int) -> dict:
    start = datetime.fromtimestamp(district.start_epoch_s, UTC)
    return {
        "generator": "reunite synth district",
        "version": __version__,
        "seed": opts.seed,
        "options": {
            "cameras": opts.cameras,
            "people": opts.people,
            "minutes": opts.minutes,
            "fps": opts.fps,
            "size": [opts.width, opts.height],
            "format": opts.format,
        },
        "hour": district.hour,
        "start_time": start.isoformat(),
        "start_epoch_s": district.start_epoch_s,
        "duration_s": district.duration_s,
        "frames_per_camera": frames,
        "cases": cases,
        "gt_format": "MOT: frame, id, x, y, w, h, conf(1), class(1 = pedestrian), visibility; "
        "boxes are the visible extent, frames 1-based",
    }


def _write_static(tmp: Path, district: District, opts: DistrictOptions) -> None:
    write_json(tmp / "cameras.json", [c.to_json() for c in district.cameras])
    write_json(
        tmp / "graph.json",
        {
            "edges": [{"a": a, "b": b, "distance_m": d} for a, b, d in district.edges],
            "max_speed_mps": MAX_SPEED,
        },
    )
    write_json(
        tmp / "visits.json",
        [
            {
                "person_id": v.person_id,
                "camera_id": v.camera_id,
                "start_s": round(v.start, 3),
                "end_s": round(v.end, 3),
                "speed_mps": round(v.speed, 3),
            }
            for v in district.visits
        ],
    )


def _write_cases(tmp: Path, world, district: District, progress: Progress) -> list[dict]:
    from reunite.synth.cases import family_photo, last_seen_still  # needs the GL stack

    subjects = [p for p in district.identities if p.age_group in ("child", "elderly")]
    cases = []
    for i, ident in enumerate(subjects):
        rng = np.random.default_rng([district.seed, ident.id, 99])
        folder = tmp / "cases" / f"{ident.id:04d}"
        photo, worn = family_photo(world, ident, rng)
        write_jpeg(folder / "family.jpg", photo, 92)
        entry = {
            "person_id": ident.id,
            "age_group": ident.age_group,
            "family_photo": f"cases/{ident.id:04d}/family.jpg",
            "family_photo_outfit": worn,
        }
        still = last_seen_still(world, ident, rng)
        if still is not None:
            crop, info = still
            write_jpeg(folder / "last_seen.jpg", crop, 92)
            entry.update(last_seen=f"cases/{ident.id:04d}/last_seen.jpg", last_seen_info=info)
        cases.append(entry)
        progress("case photos", i + 1, len(subjects))
    # identities.json after the renders: building a person fixes its measured height
    write_json(tmp / "identities.json", [p.to_json() for p in district.identities])
    return cases


def _write_camera(tmp, world, district, cam_id, opts, progress, done, total) -> int:
    folder = tmp / "cameras" / f"c{cam_id}"
    (folder / "gt").mkdir(parents=True)
    rng = np.random.default_rng([district.seed, cam_id, 1])
    writer = None
    if opts.format == "video":
        writer = cv2.VideoWriter(
            str(folder / "video.mp4"),
            cv2.VideoWriter_fourcc(*"mp4v"),
            opts.fps,
            (opts.width, opts.height),
        )
        if not writer.isOpened():
            raise OSError(f"OpenCV could not open an MP4 writer for {folder / 'video.mp4'}")
    gt_lines, stamps = [], ["frame,epoch_ms,iso_time"]
    times = [f / opts.fps for f in range(opts.frames_per_camera)]
    for f, frame in enumerate(world.render_sequence(cam_id, times, rng)):
        t = times[f]
        epoch_ms = round((district.start_epoch_s + t) * 1000)
        iso = datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="milliseconds")
        stamps.append(f"{f + 1},{epoch_ms},{iso}")
        if writer is not None:
            writer.write(cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR))
        else:
            write_jpeg(
                folder / "img1" / f"{f + 1:06d}_{epoch_ms}.jpg", frame.rgb, opts.jpeg_quality
            )
        if opts.masks:
            mask_path = folder / "masks" / f"{f + 1:06d}.png"
            mask_path.parent.mkdir(exist_ok=True)
            if not cv2.imwrite(str(mask_path), np.clip(frame.ids, 0, 65535).astype(np.uint16)):
                raise OSError(f"could not write {mask_path}")
        for b in frame.boxes:
            gt_lines.append(
                f"{f + 1},{b.person_id},{b.x:.1f},{b.y:.1f},{b.w:.1f},{b.h:.1f},1,1,"
                f"{b.visibility:.3f}"
            )
        done += 1
        progress("frames", done, total)
    if writer is not None:
        writer.release()
    (folder / "gt" / "gt.txt").write_text("\n".join(gt_lines) + ("\n" if gt_lines else ""))
    (folder / "timestamps.csv").write_text("\n".join(stamps) + "\n")
    (folder / "seqinfo.ini").write_text(
        f"[Sequence]\nname=c{cam_id}\nimDir=img1\nframeRate={opts.fps}\n"
        f"seqLength={opts.frames_per_camera}\nimWidth={opts.width}\nimHeight={opts.height}\n"
        f"imExt=.jpg\n"
    )
    return done
