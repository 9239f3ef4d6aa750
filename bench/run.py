"""``make bench``: measure the synthetic world and write ``bench/results.md`` and ``.json``.

Sections (each a median of several runs, comparisons side by side in one run):

1. render speed: frames/s at 1280x720 with 20 people in view, per stage;
2. ``synth reid`` on its defaults: wall time and image counts;
3. is the world hard? colour-histogram baseline on the re-ID test split (Market-1501 protocol);
4. does it look like people to real models? the real OSNet x0.25 (MSMT17) on the same split, and
   the real YOLOX-nano on district frames (recall / precision at IoU 0.5), from ../shared;
5. embedding speed and accuracy per model x backend x precision (``embed_bench.py``);
6. ingest end to end at 1280x720: sequential on PyTorch (as before) against pipelined on the
   default backend, side by side on the same footage;
7. the vector index by collection size: flat / HNSW / IVF-PQ at 100 k and 1 M (``index_choice.py``,
   in its own process so its peak memory is its own);
8. API p95 under concurrent load: ``bench/api_bench.py`` writes ``bench/api_results.json``, merged
   here when present.

Usage: ``python bench/run.py [--quick] [--out bench/out] [--only SECTION ...]``. ``--quick`` uses
smaller sets; ``--only`` runs some sections (render, district, ingest, reid, embed, ingest_overlap,
index) and keeps the other figures of the last ``results.json``.
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
DATA = Path("/work/data")  # the project's rendered sets, when this machine has them
SECTIONS = ("render", "district", "ingest", "reid", "embed", "ingest_overlap", "index")


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


def card_split(reid_dir: Path) -> Path:
    """reid_eval_s303 when this machine has it (the split the shipped model's card reports),
    else the bench's own split."""
    card = DATA / "reid_eval_s303"
    return card if card.is_dir() else reid_dir


def bench_embed(reid_dir: Path, out: Path, quick: bool) -> dict:
    """Section 5 (see embed_bench.py); accuracy on ``card_split``."""
    sys.path.insert(0, str(Path(__file__).parent))
    import embed_bench

    reid = card_split(reid_dir)
    calibration = DATA / "reid_train_s101" / "bounding_box_train"
    if not calibration.is_dir():
        calibration = reid_dir / "bounding_box_train"
    return embed_bench.run(
        reid, out / "embed_data", calibration, quick, batch=32, rounds=3 if quick else 7
    )


def bench_ingest_overlap(district_dir: Path, out: Path, quick: bool) -> dict:
    """Section 6: the same footage ingested sequentially on PyTorch fp32 (the loop before this
    change) and pipelined on the default backend, alternately, ``runs`` times each."""
    import shutil

    from reunite.config import Settings
    from reunite.pipeline.cameras import add_camera, read_district_cameras
    from reunite.pipeline.detectors import detector_factory
    from reunite.pipeline.embedding_model import load_embedding_model
    from reunite.pipeline.ingest import IngestOptions, ingest_source
    from reunite.pipeline.workspace import Workspace

    variants = {
        "sequential, torch fp32": ("torch", "fp32", False),
        "pipelined, default backend": ("auto", "auto", True),
    }
    specs = read_district_cameras(district_dir)
    results: dict[str, dict] = {name: {"runs": []} for name in variants}
    for _ in range(1 if quick else 2):
        for name, (backend, precision, pipelined) in variants.items():
            folder = out / "ingest_overlap"
            shutil.rmtree(folder, ignore_errors=True)
            ws = Workspace.open(Settings(data_dir=folder, database_url=""))
            model = load_embedding_model(
                "default", data_dir=out / "embed_data", backend=backend, precision=precision
            )
            with ws.db.session() as session:
                for spec in specs:
                    add_camera(session, spec, replace=True)
            version = ws.index_for(model.version, model.dim)
            options = IngestOptions(pipelined=pipelined, prefetch_frames=8 if pipelined else 0)
            started, reports = time.perf_counter(), []
            for spec in specs:
                reports.append(
                    ingest_source(
                        ws, model, version, spec.id, district_dir / "cameras" / spec.id,
                        detector_factory(), options,
                    )
                )  # fmt: skip
            wall = time.perf_counter() - started
            ws.close()
            frames = sum(r.frames for r in reports)
            stages: dict[str, float] = {}
            for r in reports:
                for stage, t in r.stage_seconds.items():
                    stages[stage] = stages.get(stage, 0.0) + t
            results[name]["runs"].append(
                {
                    "runtime": model.runtime,
                    "frames": frames,
                    "sightings": sum(r.sightings for r in reports),
                    "wall_s": round(wall, 1),
                    "frames_per_s": round(frames / wall, 1),
                    "per_camera_fps_median": round(
                        statistics.median(r.frames_per_s for r in reports), 1
                    ),
                    "ms_per_frame_by_stage": {
                        k: round(1000 * v / frames, 2) for k, v in stages.items()
                    },
                    "load_average": [round(x, 2) for x in os.getloadavg()],
                }
            )
            print(name, results[name]["runs"][-1], flush=True)
    for entry in results.values():
        fps = statistics.median(run["frames_per_s"] for run in entry["runs"])
        entry["frames_per_s_median"] = round(fps, 1)
        entry["cameras_at_2fps_per_machine"] = round(fps / 2.0, 1)
    first = next(iter(results.values()))["runs"][0]
    return {
        "district": str(district_dir),
        "cameras": len(specs),
        "frames": first["frames"],
        "variants": results,
    }


def bench_index(reid_dir: Path, out: Path, quick: bool) -> dict:
    """Section 7, in a child process (its peak memory and FAISS threads are its own), with
    vectors modelled on the shipped model's embeddings of ``card_split``: without a split the
    generic fallback spectrum is not comparable to earlier runs."""
    import subprocess

    json_path = out / "index_choice.json"
    cmd = [sys.executable, str(Path(__file__).parent / "index_choice.py"), "--json", str(json_path)]
    cmd += ["--reid", str(card_split(reid_dir))]
    subprocess.run([*cmd, *(["--quick"] if quick else [])], check=True)
    result = json.loads(json_path.read_text())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=None)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REPO))
    if args.only:
        _run_only(args)
        return
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
    _new_sections(results, args, district_dir, reid_dir, set(SECTIONS))
    _write(results)


def _new_sections(results: dict, args, district_dir: Path, reid_dir: Path, wanted: set) -> None:
    """Sections 5-7 (embedding backends, pipelined ingest, index choice)."""
    if "embed" in wanted:
        print("embedding backends ...", flush=True)
        results["embed"] = bench_embed(reid_dir, args.out, args.quick)
    if "ingest_overlap" in wanted:
        print("ingest, sequential vs pipelined ...", flush=True)
        big = DATA / "district_s11"  # 6 cameras, 1280x720, 2 min at 2 fps
        footage = big if (big / "manifest.json").is_file() and not args.quick else district_dir
        results["ingest_overlap"] = bench_ingest_overlap(footage, args.out, args.quick)
    if "index" in wanted:
        print("index choice ...", flush=True)
        results["index_choice"] = bench_index(reid_dir, args.out, args.quick)


def _run_only(args) -> None:
    """Run the chosen sections; keep every other figure of the last results.json."""
    path = REPO / "bench" / "results.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    results.update({"machine": f"{os.cpu_count()} cores", "quick": args.quick})
    district_dir, reid_dir = args.out / "district", args.out / "reid"
    unsupported = set(args.only) & {"render", "district", "ingest", "reid"}
    if unsupported:
        raise SystemExit(f"--only runs {', '.join(SECTIONS[4:])}; run all for the others")
    _new_sections(results, args, district_dir, reid_dir, set(args.only))
    _write(results)


def _write(results: dict) -> None:
    api = REPO / "bench" / "api_results.json"  # written by bench/api_bench.py
    if api.is_file():
        results["api"] = json.loads(api.read_text())
    (REPO / "bench" / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (REPO / "bench" / "results.md").write_text(_markdown(results))
    print((REPO / "bench" / "results.md").read_text())


def _markdown(r: dict) -> str:
    """Sections 1-4 (when this results.json has them), then 5-8."""
    try:
        text = _markdown_base(r)
    except KeyError as missing:
        text = (
            f"# Benchmark results\n\nMachine: {r.get('machine')}; quick={r.get('quick')}. Every "
            f"time is a median.\n\n(Sections 1-4 are not in this results.json: no {missing}; "
            "run `python bench/run.py` for all.)\n"
        )
    return text + _markdown_new(r)


def _markdown_new(r: dict) -> str:
    sys.path.insert(0, str(Path(__file__).parent))
    import embed_bench
    import index_choice

    parts = []
    if "embed" in r:
        parts.append(embed_bench.markdown(r["embed"]))
    if "ingest_overlap" in r:
        ov = r["ingest_overlap"]
        lines = [
            f"## Ingest end to end: sequential on PyTorch vs pipelined on the default backend "
            f"({ov['cameras']} cameras, {ov['frames']} frames of `{ov['district']}`, camera "
            "after camera, MOG2 + tracker + embedding + attributes + SQLite + FAISS)",
            "",
            "| variant | runtime | runs | frames/s (median) | cameras at 2 fps per machine | "
            "per-camera frames/s (median, last run) | ms/frame by stage (last run) | "
            "load average |",
            "|---|---|---:|---:|---:|---:|---|---|",
        ]
        for name, v in ov["variants"].items():
            last = v["runs"][-1]
            stages = ", ".join(f"{k} {t}" for k, t in last["ms_per_frame_by_stage"].items())
            lines.append(
                f"| {name} | {last['runtime']} | {len(v['runs'])} | "
                f"{v['frames_per_s_median']} | {v['cameras_at_2fps_per_machine']} | "
                f"{last['per_camera_fps_median']} | {stages} | {last['load_average']} |"
            )
        lines.append(
            "\nWith the pipeline the stage times overlap, so they add up to more than the wall "
            "time."
        )
        parts.append("\n".join(lines) + "\n")
    if "index_choice" in r:
        parts.append(index_choice.markdown(r["index_choice"]))
    if "api" in r:
        api = r["api"]
        if isinstance(api, dict) and isinstance(api.get("markdown"), str):
            parts.append(api["markdown"])
        else:
            parts.append(
                "## API under concurrent load (bench/api_results.json)\n\n```json\n"
                + json.dumps(api, indent=1)
                + "\n```\n"
            )
    return "\n" + "\n".join(parts) if parts else ""


def _markdown_base(r: dict) -> str:
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
    ing = r.get("ingest")  # absent from results measured before the ingest section existed
    lines += (
        []
        if ing is None
        else [
            "## Ingest end to end (1280x720, 2 fps, MOG2 + tracker + shipped model + SQLite"
            " + FAISS)",
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
    )
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
