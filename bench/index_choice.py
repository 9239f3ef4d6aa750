"""Which FAISS index for how many sightings: flat, HNSW and IVF-PQ at 100 k and 1 M, measured.

``python bench/index_choice.py [--quick] [--sizes 100000 1000000] [--json OUT]``

Vectors are clustered like re-ID embeddings: a Gaussian model fitted to the shipped model's
embeddings of a synthetic test split (identity centres from the between-identity covariance,
sightings around them from the within-identity one, ~5 per identity; 512-d with an effective
dimension of about 30, L2-normalised, inner product). Isotropic random clusters would make every
non-match equidistant in 512-d, so "the exact top 10" past the true matches would be ties no
index can reproduce. Queries are new photos of known people. For each size and index:

* build time (train + add; FAISS on 2 threads, as ``reunite reindex`` would run);
* memory: the serialized index size, and the growth of this process's peak RSS while it was
  built (``VmHWM``), which catches training buffers;
* query latency p50 / p99, one query at a time on 1 thread (an API request), and recall@10
  against exact search of the same vectors, for a few settings of each index's speed knob
  (HNSW efSearch, IVF nprobe), so the trade-off is a curve rather than a point.

IVF-PQ codes are lossy; ``ivfpq+refine`` re-ranks its candidates with the exact vectors
(``IndexRefineFlat``), which buys recall for the memory of the vectors.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from index_bench import unit

DIM = 512
BUILD_THREADS = 2
QUERIES = {"quick": 200, "full": 500}


def vm_hwm_mib() -> float:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def reset_hwm() -> None:
    """Reset the peak-RSS mark (Linux: write 5 to clear_refs), so each build is measured alone."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


@dataclass(frozen=True)
class Spectrum:
    """A Gaussian model of re-ID embeddings: the mean, and between-identity and within-identity
    covariances as factors (``x = mean + B z_identity + W z_sighting``, then normalised)."""

    mean: np.ndarray
    between: np.ndarray  # (DIM, k)
    within: np.ndarray  # (DIM, k)
    source: str


def _factor(cov: np.ndarray, keep: float = 0.999) -> np.ndarray:
    values, vectors = np.linalg.eigh(cov)
    values, vectors = np.clip(values[::-1], 0, None), vectors[:, ::-1]
    k = int(np.searchsorted(np.cumsum(values) / values.sum(), keep)) + 1
    return (vectors[:, :k] * np.sqrt(values[:k])).astype(np.float32)


def spectrum_from(reid: Path | None) -> Spectrum:
    """Fit the model to the shipped model's embeddings of a synthetic test split's gallery
    (intrinsic dimension ~30 of 512, as real re-ID embeddings have), or, without one, an
    exponential spectrum of the same effective dimension and variances."""
    if reid is not None and (reid / "bounding_box_test").is_dir():
        from reunite.evaluation.market1501 import Market1501Layout
        from reunite.evaluation.reid_eval import load_crop
        from reunite.models.registry import load_embedder

        layout = Market1501Layout(reid)
        images = [i for i in layout.gallery if i.pid > 0]
        vectors = load_embedder("default", backend="auto", precision="auto").embed(
            [load_crop(i.path) for i in images]
        )
        pids = np.array([i.pid for i in images])
        ids, inverse = np.unique(pids, return_inverse=True)
        means = np.stack([vectors[inverse == k].mean(0) for k in range(len(ids))])
        within = np.cov((vectors - means[inverse]).T)
        between = np.cov(means.T)
        return Spectrum(vectors.mean(0), _factor(between), _factor(within), str(reid))
    rng = np.random.default_rng(5)
    basis = np.linalg.qr(rng.standard_normal((DIM, DIM)))[0].astype(np.float32)
    decay = np.exp(-np.arange(DIM) / 15.0)
    b = basis * np.sqrt(0.58 * decay / decay.sum())
    w = basis[:, ::-1] * np.sqrt(0.39 * decay / decay.sum())
    return Spectrum(np.zeros(DIM, np.float32), b, w, "exponential spectrum (no re-ID split)")


def data_for(spectrum: Spectrum, n: int, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """``n`` sightings of ``n // 5`` identities (5 each on average) and the identity centres."""
    rng = np.random.default_rng(seed)
    people = max(n // 5, 1)
    centres = (
        spectrum.mean
        + rng.standard_normal((people, spectrum.between.shape[1]), dtype=np.float32)
        @ spectrum.between.T
    )
    vectors = np.empty((n, DIM), np.float32)
    who = rng.integers(0, people, n)
    for lo in range(0, n, 100_000):  # in blocks: bounded temporaries at 1 M
        hi = min(n, lo + 100_000)
        noise = rng.standard_normal((hi - lo, spectrum.within.shape[1]), dtype=np.float32)
        vectors[lo:hi] = unit(centres[who[lo:hi]] + noise @ spectrum.within.T)
    return vectors, centres


def queries_for(spectrum: Spectrum, centres: np.ndarray, count: int, seed: int = 12) -> np.ndarray:
    """New photos of known people: their centre plus fresh within-identity noise."""
    rng = np.random.default_rng(seed)
    people = rng.integers(0, len(centres), count)
    noise = rng.standard_normal((count, spectrum.within.shape[1]), dtype=np.float32)
    return unit(centres[people] + noise @ spectrum.within.T)


def build(kind: str, vectors: np.ndarray) -> faiss.Index:
    n = len(vectors)
    if kind == "flat":
        index = faiss.IndexFlatIP(DIM)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 40
    else:
        nlist = int(4 * np.sqrt(n))  # the usual 4*sqrt(n) lists
        quantizer = faiss.IndexFlatIP(DIM)
        ivf = faiss.IndexIVFPQ(quantizer, DIM, nlist, 64, 8, faiss.METRIC_INNER_PRODUCT)
        train = vectors[np.random.default_rng(0).choice(n, min(n, 40 * nlist), replace=False)]
        ivf.train(train)
        index = faiss.IndexRefineFlat(ivf) if kind == "ivfpq+refine" else ivf
        if kind == "ivfpq+refine":
            index.k_factor = 8
    index.add(vectors)
    return index


def knobs(kind: str) -> list[int | None]:
    if kind == "hnsw":
        return [32, 64, 128, 256]
    if kind.startswith("ivfpq"):
        return [16, 64, 256]
    return [None]


def set_knob(index: faiss.Index, kind: str, value: int | None) -> str:
    if kind == "hnsw":
        index.hnsw.efSearch = value
        return f"efSearch={value}"
    if kind.startswith("ivfpq"):
        faiss.extract_index_ivf(index).nprobe = value
        return f"nprobe={value}"
    return "exact"


def measure(spectrum: Spectrum, n: int, kinds: list[str], queries: int, log) -> dict:
    faiss.omp_set_num_threads(BUILD_THREADS)
    vectors, centres = data_for(spectrum, n)
    q = queries_for(spectrum, centres, queries)
    exact = faiss.IndexFlatIP(DIM)
    exact.add(vectors)
    _, truth = exact.search(q, 10)
    del exact
    log(f"{n:,}: data and exact answers ready")
    rows = []
    for kind in kinds:
        reset_hwm()
        before = vm_hwm_mib()
        faiss.omp_set_num_threads(BUILD_THREADS)
        start = time.perf_counter()
        index = build(kind, vectors)
        build_s = time.perf_counter() - start
        peak = vm_hwm_mib() - before
        size = len(faiss.serialize_index(index))
        faiss.omp_set_num_threads(1)
        for value in knobs(kind):
            setting = set_knob(index, kind, value)
            index.search(q[:5], 10)  # warm-up
            times, hits = [], 0
            for i in range(len(q)):
                t = time.perf_counter()
                _, found = index.search(q[i : i + 1], 10)
                times.append(1000 * (time.perf_counter() - t))
                hits += len(set(found[0].tolist()) & set(truth[i].tolist()))
            rows.append(
                {
                    "sightings": n,
                    "index": kind,
                    "setting": setting,
                    "build_s": round(build_s, 1),
                    "index_mib": round(size / 2**20, 1),
                    "build_peak_rss_growth_mib": round(peak, 0),
                    "p50_ms": round(float(np.percentile(times, 50)), 3),
                    "p99_ms": round(float(np.percentile(times, 99)), 3),
                    "recall_at_10": round(hits / (10 * len(q)), 4),
                }
            )
            log(f"{n:,} {kind} {setting}: {rows[-1]}")
        del index
    return {"rows": rows}


def choose(rows: list[dict], p99_ms: float = 20.0, recall: float = 0.95) -> dict[int, str]:
    """Per size: the least memory among settings that meet p99 and recall (else: none)."""
    picks = {}
    for n in sorted({r["sightings"] for r in rows}):
        ok = [
            r
            for r in rows
            if r["sightings"] == n and r["p99_ms"] <= p99_ms and r["recall_at_10"] >= recall
        ]
        best = min(ok, key=lambda r: (r["index_mib"], r["p99_ms"]), default=None)
        picks[n] = f"{best['index']} {best['setting']}" if best else "none meets both"
    return picks


def markdown(result: dict) -> str:
    lines = [
        "## Vector index by collection size (512-d clustered sightings; one query at a time, "
        "1 thread; build on 2 threads)",
        "",
        f"Vectors: Gaussian model of {result['vectors']} (between / within identity factors "
        f"of rank {result['effective_dims'][0]} / {result['effective_dims'][1]}).",
        "",
        "| sightings | index | setting | build s | index MiB | build peak RSS +MiB | p50 ms | "
        "p99 ms | recall@10 |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['sightings']:,} | {r['index']} | {r['setting']} | {r['build_s']} | "
            f"{r['index_mib']} | {r['build_peak_rss_growth_mib']:.0f} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['recall_at_10']:.3f} |"
        )
    lines += ["", "Least memory with p99 <= 20 ms and recall@10 >= 0.95:", ""]
    lines += [f"* {int(n):,}: {pick}" for n, pick in result["choice"].items()]
    lines.append(f"\nWall time {result['wall_s']:.0f} s, {result['queries']} queries per setting.")
    return "\n".join(lines) + "\n"


def run(sizes: list[int], queries: int, kinds: list[str], reid: Path | None) -> dict:
    began = time.perf_counter()
    spectrum = spectrum_from(reid)

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - began:6.1f} s] {message}", file=sys.stderr, flush=True)

    rows = []
    for n in sizes:
        rows += measure(spectrum, n, kinds, queries, log)["rows"]
    return {
        "vectors": spectrum.source,
        "effective_dims": [spectrum.between.shape[1], spectrum.within.shape[1]],
        "rows": rows,
        "choice": choose(rows),
        "queries": queries,
        "faiss": faiss.__version__,
        "wall_s": round(time.perf_counter() - began, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 k and 100 k, 200 queries")
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--kinds", nargs="+", default=["flat", "hnsw", "ivfpq", "ivfpq+refine"])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--reid",
        type=Path,
        default=Path("/work/data/reid_eval_s303"),
        help="Market-1501 split whose embeddings the vectors are modelled on",
    )
    args = parser.parse_args()
    sizes = args.sizes or ([20_000, 100_000] if args.quick else [100_000, 1_000_000])
    queries = QUERIES["quick" if args.quick else "full"]
    result = run(sizes, queries, args.kinds, args.reid if args.reid.is_dir() else None)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
