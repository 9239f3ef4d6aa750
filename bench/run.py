"""``make bench``: measure the synthetic world and write ``bench/results.md`` and ``.json``.

Sections (each a median of several runs, comparisons side by side in one run):

1. render speed: frames/s at 1280x720 with 20 people in view, per stage;
2. ``synth reid`` on its defaults: wall time and image counts;
3. is the world hard? colour-histogram baseline on the re-ID test split (Market-1501 protocol);
4. does it look like people to real models? the real OSNet x0.25 (MSMT17) on the same split, and
   the real YOLOX-nano on district frames (recall / precision at IoU 0.5), from ../shared.

Usage: ``python bench/run.py [--quick] [--out bench/out]``. ``--quick`` uses smaller sets.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("LP_NUM_THREADS", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def _median_ms(samples: list[float]) -> float:
    return round(1000 * statistics.median(samples), 1)


def bench_render(kit, renderer, maps, frames: int = 15) -> dict:
    """Frames/s of one camera with 20 people in view: GL render + lens + CCTV chain + boxes."""
    from reunite.synth.frames import DistrictRenderer
    from reunite.synth.output import write_jpeg
    from reunite.synth.world import Visit, plan_district, point_along, polyline_length

    district = plan_district(11, 1, 20, 60.0, (1280, 720), hour=11.0)
    site = district.site(1)
    rng = np.random.default_rng(0)
    visits = []
    view = district.camera(1).view()
    for ident in district.identities:  # everyone in the frame for the whole probe
        speed = ident.walking_speed
        for _ in range(200):
            way = int(rng.integers(len(site.walkways)))
            path = site.walkways[way]
            length = polyline_length(path)
            offset = rng.uniform(0.1, 0.8) * length
            ends = [point_along(path, offset + d) for d in (0.0, 3.0 * speed)]
            pts = np.array([(x, y, z) for x, y, _ in ends for z in (0.0, 1.7)])
            px, depth = view.project(pts)
            if (
                (depth > 1).all()
                and (px >= 0).all()
                and (px[:, 0] < 1280).all()
                and (px[:, 1] < 720).all()
            ):
                break
        start = -offset / speed
        visits.append(Visit(ident.id, 1, way, False, 0.0, start, start + length / speed, speed))
    district.visits = visits
    world = DistrictRenderer(district, kit, renderer, maps)
    t0 = time.perf_counter()
    for ident in district.identities:
        world.gpu_person(ident.id)
    build_s = time.perf_counter() - t0
    world.render(1, 0.0, rng)  # warm-up: camera state, uploads
    tmp = REPO / "bench" / "out" / "render_probe.jpg"
    times = [i * 0.2 for i in range(frames)]  # three seconds of walking
    totals, in_view = [], []
    for i in range(frames):  # one frame at a time: latency
        s = time.perf_counter()
        frame = world.render(1, times[i], rng)
        write_jpeg(tmp, frame.rgb, 90)
        totals.append(time.perf_counter() - s)
        in_view.append(len(frame.boxes))
    runs = []
    for _ in range(3):  # as the district job renders: pipelined, frames/s over the sequence
        s = time.perf_counter()
        for frame in world.render_sequence(1, times, rng):
            write_jpeg(tmp, frame.rgb, 90)
        runs.append(frames / (time.perf_counter() - s))
    world.close()
    med = statistics.median(totals)
    return {
        "people_in_view_median": statistics.median(in_view),
        "frame_ms_median": round(med * 1000, 1),
        "frames_per_s_one_by_one": round(1 / med, 1),
        "frames_per_s_pipelined": round(statistics.median(runs), 1),
        "person_build_and_upload_s_each": round(build_s / len(district.identities), 3),
    }


def bench_reid(kit, renderer, maps, out: Path, quick: bool) -> dict:
    from reunite.synth.reid_job import ReidOptions, generate_reid

    opts = ReidOptions(
        out, seed=0, overwrite=True, **({"train_ids": 40, "test_ids": 80} if quick else {})
    )
    t0 = time.perf_counter()
    summary = generate_reid(opts, kit, renderer, maps)
    summary["wall_s"] = round(time.perf_counter() - t0, 1)
    return summary


def _reid_embedders() -> dict:
    """Every model worth comparing: the baselines, the shipped model, the real ones in shared."""
    from reunite.models.color_histogram import ColorHistogramEmbedder
    from reunite.models.registry import DEFAULT_MODEL, load_embedder

    models = {
        "colour histogram (HSV, upper+lower)": ColorHistogramEmbedder(),
        "colour histogram, central 50 % of the width": ColorHistogramEmbedder(centre_fraction=0.5),
        f"shipped {DEFAULT_MODEL} (PyTorch)": load_embedder("default"),
    }
    osnet = SHARED / "models" / "osnet_x0_25_msmt17" / "osnet_x0_25_msmt17.onnx"
    if osnet.exists():
        models["real OSNet x0.25 (MSMT17, ONNX)"] = load_embedder(osnet)
    omz = SHARED / "models" / "openvino_omz" / "person-reidentification-retail-0288" / "FP32"
    if omz.exists():
        models["real OMZ retail-0288 (OpenVINO)"] = load_embedder(
            omz / "person-reidentification-retail-0288.xml"
        )
    return models


def bench_reid_models(reid_dir: Path) -> tuple[dict, dict]:
    """Accuracy on the split and embedding speed (crops/s, median of 3 passes over 256 crops,
    batches of 64, 2 threads), measured side by side in one run."""
    import cv2

    from reunite.evaluation.market1501 import Market1501Layout
    from reunite.evaluation.reid_eval import evaluate_embedder

    layout = Market1501Layout(reid_dir)
    crops = [cv2.imread(str(image.path)) for image in layout.gallery[:256]]
    accuracy, speed = {}, {}
    for name, embedder in _reid_embedders().items():
        accuracy[name] = evaluate_embedder(embedder, layout)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            embedder.embed(crops)
            times.append(time.perf_counter() - t0)
        speed[name] = {"crops_per_s": round(len(crops) / statistics.median(times), 1),
                       "dim": embedder.dim}  # fmt: skip
    return accuracy, speed


def bench_detector(district_dir: Path) -> dict:
    """Real YOLOX-nano on the district's frames, people >= 48 px tall and >= 50 % visible."""
    model = SHARED / "models" / "yolox_nano" / "yolox_nano.onnx"
    if not model.exists():
        return {"skipped": f"{model} absent"}
    import cv2

    from reunite.evaluation.detection import DetectionCounts, match_detections
    from reunite.evaluation.mot import find_mot_sequences
    from reunite.pipeline.detection import OnnxYoloxDetector

    results = {}
    for tile in (False, True):
        det = OnnxYoloxDetector(model, tile=tile)
        counts = DetectionCounts()
        times = []
        for seq in find_mot_sequences(district_dir / "cameras"):
            for f, path in sorted(seq.frames.items())[::2]:
                img = cv2.imread(str(path))
                s = time.perf_counter()
                dets = det.detect(img)
                times.append(time.perf_counter() - s)
                counts = counts + match_detections(
                    dets, seq.gt.get(f, []), iou=0.5, min_height=48, min_visibility=0.5
                )
        results["tiled 2x3" if tile else "native 416"] = {
            "recall": round(counts.recall, 3),
            "precision": round(counts.precision, 3),
            "tp": counts.tp,
            "fp": counts.fp,
            "fn": counts.fn,
            "ms_per_frame": _median_ms(times),
        }
    return results


def bench_ingest(district_dir: Path, out: Path) -> dict:
    """The whole ingest (MOG2 + tracker + shipped model + SQLite + FAISS) on the district's
    1280x720 footage, camera after camera; frames/s per camera and where the time goes."""
    import resource
    import shutil

    from reunite.config import Settings
    from reunite.demo_job import ingest_district
    from reunite.pipeline.workspace import Workspace

    shutil.rmtree(out, ignore_errors=True)
    ws = Workspace.open(Settings(data_dir=out, database_url=""))
    reports, seconds = ingest_district(ws, district_dir)
    ws.close()
    frames = sum(r.frames for r in reports)
    stages: dict[str, float] = {}
    for r in reports:
        for stage, t in r.stage_seconds.items():
            stages[stage] = stages.get(stage, 0.0) + t
    per_camera_fps = [r.frames_per_s for r in reports]
    return {
        "cameras": len(reports),
        "frames": frames,
        "sightings": sum(r.sightings for r in reports),
        "wall_s": round(seconds, 1),
        "frames_per_s_per_camera_median": round(statistics.median(per_camera_fps), 1),
        "cameras_at_2fps_per_machine": round(frames / seconds / 2.0, 1),
        "ms_per_frame_by_stage": {k: round(1000 * v / frames, 2) for k, v in stages.items()},
        "process_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REPO))
    from reunite.synth.bodies import BodyKit
    from reunite.synth.district_job import DistrictOptions, generate_district
    from reunite.synth.frames import DistrictRenderer
    from reunite.synth.renderer import Renderer

    renderer = Renderer(threads=2)
    kit = BodyKit()
    maps = kit.uv_maps(renderer)
    results: dict = {"machine": f"{os.cpu_count()} cores", "quick": args.quick}
    print("render speed ...", flush=True)
    results["render"] = bench_render(kit, renderer, maps)
    print(results["render"], flush=True)
    print("district for the detector check ...", flush=True)
    district_dir = args.out / "district"
    generate_district(
        DistrictOptions(
            district_dir,
            seed=3,
            cameras=6,
            people=60,
            minutes=0.5 if args.quick else 1.0,
            fps=2.0,
            overwrite=True,
        ),
        lambda d: DistrictRenderer(d, kit, renderer, maps),
    )
    results["detector_on_district"] = bench_detector(district_dir)
    print(results["detector_on_district"], flush=True)
    print("ingest ...", flush=True)
    results["ingest"] = bench_ingest(district_dir, args.out / "ingest")
    print(results["ingest"], flush=True)
    print("synth reid ...", flush=True)
    reid_dir = args.out / "reid"
    results["synth_reid"] = bench_reid(kit, renderer, maps, reid_dir, args.quick)
    print(results["synth_reid"], flush=True)
    results["reid_models"], results["reid_speed"] = bench_reid_models(reid_dir)
    (REPO / "bench" / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (REPO / "bench" / "results.md").write_text(_markdown(results))
    print((REPO / "bench" / "results.md").read_text())


def _markdown(r: dict) -> str:
    from reunite.evaluation.reid_eval import format_metrics_table

    rd = r["render"]
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {r['machine']}; quick={r['quick']}. Every time is a median.",
        "",
        "## Rendering (1280x720, one camera)",
        "",
        "| people in view | ms / frame, one by one (render + lens + CCTV + GT + JPEG) |"
        " frames/s one by one | frames/s pipelined (as the district job runs) |"
        " person build + upload (s each) |",
        "|---|---|---|---|---|",
        f"| {rd['people_in_view_median']} | {rd['frame_ms_median']} |"
        f" {rd['frames_per_s_one_by_one']} | {rd['frames_per_s_pipelined']} |"
        f" {rd['person_build_and_upload_s_each']} |",
        "",
        "## `synth reid` on its defaults",
        "",
        "| train imgs | gallery imgs | query imgs | junk | distractors | wall (s) |",
        "|---|---|---|---|---|---|",
    ]
    s = r["synth_reid"]
    lines += [
        f"| {s['train_images']} | {s['gallery_images']} | {s['query_images']} |"
        f" {s['junk']} | {s['distractors']} | {s['wall_s']} |",
        "",
        "## Re-ID on the synthetic test split (Market-1501 protocol)",
        "",
        format_metrics_table(r["reid_models"]),
        "",
        "## Embedding speed (CPU, 2 threads, batches of 64, median of 3)",
        "",
        "| model | dim | crops/s |",
        "|---|---|---|",
        *(f"| {name} | {v['dim']} | {v['crops_per_s']} |" for name, v in r["reid_speed"].items()),
        "",
        "## Real YOLOX-nano on district frames (IoU 0.5, >= 48 px, >= 50 % visible)",
        "",
    ]
    ing = r["ingest"]
    lines += [
        "## Ingest end to end (1280x720, 2 fps, MOG2 + tracker + shipped model + SQLite + FAISS)",
        "",
        "| cameras | frames | sightings | wall (s) | frames/s per camera (median) |"
        " cameras at 2 fps per machine | peak RSS of the bench process (MiB) |",
        "|---|---|---|---|---|---|---|",
        f"| {ing['cameras']} | {ing['frames']} | {ing['sightings']} | {ing['wall_s']} |"
        f" {ing['frames_per_s_per_camera_median']} | {ing['cameras_at_2fps_per_machine']} |"
        f" {ing['process_peak_rss_mib']} |",
        "",
        "| stage | ms per frame |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in ing["ms_per_frame_by_stage"].items()),
        "",
    ]
    det = r["detector_on_district"]
    if "skipped" in det:
        lines.append(f"skipped: {det['skipped']}")
    else:
        lines += [
            "| config | recall | precision | TP | FP | FN | ms/frame |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, d in det.items():
            lines.append(
                f"| {name} | {d['recall']} | {d['precision']} | {d['tp']} | {d['fp']} |"
                f" {d['fn']} | {d['ms_per_frame']} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
