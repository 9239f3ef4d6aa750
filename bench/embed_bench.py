"""Embedding speed and accuracy per model x backend x precision, side by side in one run.

``python bench/embed_bench.py [--quick] [--reid DIR] [--json OUT]``

* throughput: crops/s of the network alone on a preprocessed batch (``--batch``, default 32)
  and per-batch latency, every configuration timed in turn, round after round (``--rounds``,
  median); plus crops/s of the whole ``embed()`` (resizing and normalising included);
* the fraction of the machine's FLOP ceiling (172 GFLOP/s fp32 and 411 GFLOP/s bf16 on two
  cores, a 2048^3 torch matmul; int8 has no measured ceiling, so it is given against bf16's);
  FLOPs counted with torch's FlopCounterMode on one crop (a multiply-add is 2 FLOPs);
* accuracy: mAP and rank-1 of each configuration of the shipped model on a Market-1501 layout
  test split (``--reid``), so a faster path is only worth it at the same accuracy;
* memory: the peak resident set of a fresh process that loads the configuration and embeds 256
  crops (one process per configuration, so one model's memory does not hide another's).

The real OSNet x0.25 (MSMT17) ONNX export in ``../shared/models`` is the peer: what a user gets
by dropping a model of the same size into ONNX Runtime or OpenVINO.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
OSNET_ONNX = SHARED / "models" / "osnet_x0_25_msmt17" / "osnet_x0_25_msmt17.onnx"
CEILING_GFLOPS = {"fp32": 172.0, "bf16": 411.0, "int8": 411.0}
THREADS = 2


@dataclass(frozen=True)
class Config:
    label: str
    model: str  # "shipped" or "osnet_x0_25"
    backend: str
    precision: str


SHIPPED = [
    Config("shipped, torch eager fp32 (baseline)", "shipped", "torch", "fp32"),
    Config("shipped, torch autocast bf16", "shipped", "torch", "bf16"),
    Config("shipped, onnxruntime fp32 (default)", "shipped", "onnxruntime", "fp32"),
    Config("shipped, openvino fp32", "shipped", "openvino", "fp32"),
    Config("shipped, openvino bf16", "shipped", "openvino", "bf16"),
    Config("shipped, onnxruntime int8", "shipped", "onnxruntime", "int8"),
    Config("shipped, openvino int8", "shipped", "openvino", "int8"),
]
PEERS = [
    Config("OSNet x0.25 MSMT17 (peer), onnxruntime fp32", "osnet_x0_25", "onnxruntime", "fp32"),
    Config("OSNet x0.25 MSMT17 (peer), openvino fp32", "osnet_x0_25", "openvino", "fp32"),
    Config("OSNet x0.25 MSMT17 (peer), openvino bf16", "osnet_x0_25", "openvino", "bf16"),
]


def load(config: Config, data_dir: Path):
    """The embedder of a configuration; int8 needs the export made by ``ensure_int8``."""
    from reunite.models.preprocessing import TORCHREID
    from reunite.models.registry import Registry, load_embedder

    registry = Registry(data_dir=data_dir)
    if config.model == "osnet_x0_25":
        return load_embedder(
            OSNET_ONNX,
            registry=registry,
            preprocessing=TORCHREID,
            batch_size=64,
            backend=config.backend,
            precision=config.precision,
        )
    return load_embedder(
        "default",
        registry=registry,
        batch_size=64,
        backend=config.backend,
        precision=config.precision,
    )


def ensure_int8(data_dir: Path, calibration: Path) -> None:
    """Export the shipped model to int8 ONNX once (calibrated on synthetic training crops)."""
    from reunite.models.export import export_card_model, is_current
    from reunite.models.model_card import ModelCard
    from reunite.models.registry import DEFAULT_MODEL, Registry

    registry = Registry(data_dir=data_dir)
    entry = registry.get(DEFAULT_MODEL)
    target = registry.user_dir / f"{DEFAULT_MODEL}.onnx-int8"
    if (target / "card.json").is_file() and is_current(ModelCard.read(target), entry.card):
        return
    export_card_model(
        entry.card, entry.folder, "onnx", registry.user_dir, int8=True,
        calibration=calibration, overwrite=True,
    )  # fmt: skip


def gflop_per_crop(config: Config) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from reunite.models.registry import load_embedder

    if config.model == "osnet_x0_25":
        from reunite.models.osnet import osnet

        network, size = osnet("osnet_x0_25", 0).eval(), (256, 128)
    else:
        network = load_embedder("default", backend="torch").network
        size = (128, 64)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        network(torch.zeros(1, 3, *size))
    return counter.get_total_flops() / 1e9


def _forward(embedder):
    """The network alone on a preprocessed batch (what the FLOP ceiling is about)."""
    if hasattr(embedder, "embed_tensor"):  # torch (autocast wrapper passes it through)
        import torch

        inner = getattr(embedder, "inner", embedder)
        if getattr(embedder, "precision", "fp32") == "bf16":

            def run(batch):
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return inner.embed_tensor(torch.from_numpy(batch))

            return run
        return lambda batch: inner.embed_tensor(torch.from_numpy(batch))
    return embedder._run


def read_crops(folder: Path, count: int) -> list[np.ndarray]:
    paths = sorted(folder.glob("*.jpg"))
    paths = [paths[int(i)] for i in np.linspace(0, len(paths) - 1, min(count, len(paths)))]
    return [cv2.imread(str(p)) for p in paths]


def speed(configs: list[Config], data_dir: Path, crops, batch: int, rounds: int) -> dict:
    import torch

    torch.set_num_threads(THREADS)
    embedders = {c.label: load(c, data_dir) for c in configs}
    batches = {c.label: embedders[c.label].preprocessing.to_nchw(crops[:batch]) for c in configs}
    forwards = {label: _forward(e) for label, e in embedders.items()}
    for label, forward in forwards.items():  # warm-up: first-shape compilation, caches
        forward(batches[label])
        embedders[label].embed(crops[:batch])
    forward_s: dict[str, list[float]] = {c.label: [] for c in configs}
    embed_s: dict[str, list[float]] = {c.label: [] for c in configs}
    for _ in range(rounds):  # round-robin: every configuration sees the same machine load
        for c in configs:
            start = time.perf_counter()
            forwards[c.label](batches[c.label])
            forward_s[c.label].append(time.perf_counter() - start)
            start = time.perf_counter()
            embedders[c.label].embed(crops)
            embed_s[c.label].append(time.perf_counter() - start)
    out = {}
    for c in configs:
        gflop = gflop_per_crop(c)
        per_batch = statistics.median(forward_s[c.label])
        crops_s = batch / per_batch
        achieved = crops_s * gflop
        out[c.label] = {
            **c.__dict__,
            "batch": batch,
            "gflop_per_crop": round(gflop, 4),
            "forward_crops_per_s": round(crops_s, 1),
            "forward_ms_per_batch_p50": round(1000 * per_batch, 2),
            "forward_ms_per_batch_min": round(1000 * min(forward_s[c.label]), 2),
            "forward_ms_per_batch_max": round(1000 * max(forward_s[c.label]), 2),
            "embed_crops_per_s": round(len(crops) / statistics.median(embed_s[c.label]), 1),
            "gflops_achieved": round(achieved, 1),
            "fraction_of_fp32_ceiling": round(achieved / CEILING_GFLOPS["fp32"], 3),
            "fraction_of_own_ceiling": round(achieved / CEILING_GFLOPS[c.precision], 3),
        }
    return out


def accuracy(configs: list[Config], data_dir: Path, reid: Path) -> dict:
    from reunite.evaluation.market1501 import Market1501Layout
    from reunite.evaluation.reid_eval import evaluate_embedder

    layout = Market1501Layout(reid)
    out = {}
    for c in configs:
        metrics = evaluate_embedder(load(c, data_dir), layout)
        out[c.label] = {k: metrics[k] for k in ("mAP", "rank1", "rank5", "num_query")}
        print(f"  {c.label}: mAP {100 * metrics['mAP']:.2f}", file=sys.stderr, flush=True)
    return out


def peak_memory(config: Config, data_dir: Path, crops_dir: Path) -> float:
    """MiB: the peak RSS of a fresh process loading the configuration and embedding 256 crops
    (VmHWM: ru_maxrss would carry over the parent's peak through fork and exec)."""
    code = (
        "import sys, json; sys.path.insert(0, sys.argv[4])\n"
        "from embed_bench import Config, load, read_crops\n"
        "c = Config(**json.loads(sys.argv[1])); from pathlib import Path\n"
        "e = load(c, Path(sys.argv[2])); e.embed(read_crops(Path(sys.argv[3]), 256))\n"
        "print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])\n"
    )
    args = [json.dumps(config.__dict__), str(data_dir), str(crops_dir), str(Path(__file__).parent)]
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return round(int(result.stdout.split()[-1]) / 1024, 0)


def run(reid: Path, data_dir: Path, calibration: Path, quick: bool, batch: int, rounds: int):
    started = time.perf_counter()
    ensure_int8(data_dir, calibration)
    configs = SHIPPED + (PEERS if OSNET_ONNX.exists() else [])
    from reunite.models.backends import cpu_has_bf16

    if not cpu_has_bf16():
        configs = [c for c in configs if c.precision != "bf16"]
    crops_dir = reid / "bounding_box_test"
    crops = read_crops(crops_dir, 256)
    result = {
        "batch": batch,
        "rounds": rounds,
        "threads": THREADS,
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "ceilings_gflops": CEILING_GFLOPS,
        "speed": speed(configs, data_dir, crops, batch, rounds),
    }
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    result["accuracy_on"] = str(reid)
    shipped = [c for c in configs if c.model == "shipped"]
    result["accuracy"] = accuracy(shipped[:1] + shipped[2:] if quick else shipped, data_dir, reid)
    result["peak_rss_mib"] = {c.label: peak_memory(c, data_dir, crops_dir) for c in configs}
    result["bench_process_peak_rss_mib"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0
    )
    result["wall_s"] = round(time.perf_counter() - started, 1)
    return result


def markdown(r: dict) -> str:
    base = r["speed"]["shipped, torch eager fp32 (baseline)"]["forward_crops_per_s"]
    lines = [
        f"## Embedding: model x backend x precision (CPU, {r['threads']} threads, batch "
        f"{r['batch']}, median of {r['rounds']} interleaved rounds)",
        "",
        f"Load average before / after: {r['load_average_before']} / {r['load_average_after']} "
        "(other jobs share this machine: compare rows, not runs). FLOP ceilings: 172 GFLOP/s "
        "fp32, 411 GFLOP/s bf16 (int8 rows against bf16's). Accuracy on "
        f"`{r['accuracy_on']}`.",
        "",
        "| configuration | GFLOP/crop | crops/s (network) | × torch fp32 | ms/batch p50 (min-max) "
        "| crops/s (embed, incl. resize) | GFLOP/s | of fp32 ceiling | of own ceiling "
        "| mAP | rank-1 | peak RSS MiB |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, s in r["speed"].items():
        acc = r["accuracy"].get(label)
        lines.append(
            f"| {label} | {s['gflop_per_crop']:.3f} | {s['forward_crops_per_s']:.0f} | "
            f"{s['forward_crops_per_s'] / base:.2f} | {s['forward_ms_per_batch_p50']:.1f} "
            f"({s['forward_ms_per_batch_min']:.1f}-{s['forward_ms_per_batch_max']:.1f}) | "
            f"{s['embed_crops_per_s']:.0f} | {s['gflops_achieved']:.0f} | "
            f"{100 * s['fraction_of_fp32_ceiling']:.0f} % | "
            f"{100 * s['fraction_of_own_ceiling']:.0f} % | "
            + (f"{100 * acc['mAP']:.2f} | {100 * acc['rank1']:.2f} | " if acc else "- | - | ")
            + f"{r['peak_rss_mib'].get(label, '-')} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reid", type=Path, default=Path("/work/data/reid_eval_s303"))
    parser.add_argument(
        "--calibration", type=Path, default=Path("/work/data/reid_train_s101/bounding_box_train")
    )
    parser.add_argument("--data-dir", type=Path, default=REPO / "bench" / "out" / "embed_data")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 7)
    result = run(args.reid, args.data_dir, args.calibration, args.quick, args.batch, rounds)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
