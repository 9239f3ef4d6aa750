"""``python bench/api_bench.py [--sightings N] [--quick]``: the API under load, on a real server.

A workspace with N synthetic sightings (default 100 000: 100 cameras over 7 days, vectors
clustered like re-ID embeddings around identity centres) in the database and the camera-day FAISS
shards; ``reunite serve`` in a subprocess on loopback; one case with 3 photos (real crops, embedded
by the shipped model). Measured with httpx, as a control room's clients would call it:

* ``GET /cases/{id}/matches`` one request at a time: p50 / p95 / p99 latency, for the default
  window (since the last-seen time, 24 h ago) and for the whole retention period;
* the same with 16 concurrent clients: throughput (requests/s) and p95 latency under load;
* the server's peak resident memory.

Writes ``bench/api_results.json`` and ``bench/api_results.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import httpx
import numpy as np
import psutil
from sqlalchemy import insert

from reunite.config import Settings
from reunite.pipeline.embedding_model import load_embedding_model
from reunite.pipeline.schema import Camera, Embedding, Sighting, Source
from reunite.pipeline.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "samples" / "district" / "cameras" / "c1" / "img1"
PASSWORD = "bench password 123"


def populate(data: Path, count: int, cameras: int = 100, days: int = 7, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    model = load_embedding_model("default")
    ws = Workspace.open(Settings(data_dir=data, database_url=""))
    now = datetime.now(UTC)
    identities = max(1, count // 8)
    centres = rng.normal(size=(identities, model.dim)).astype(np.float32)
    who = rng.integers(0, identities, count)
    vectors = centres[who] + 0.8 * rng.normal(size=(count, model.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    times = [now - timedelta(seconds=float(s)) for s in rng.uniform(60, days * 86400, count)]
    camera_of = [f"cam{i % cameras:03d}" for i in rng.integers(0, cameras, count)]
    with ws.db.session() as session:
        session.execute(
            insert(Camera),
            [
                {
                    "id": f"cam{i:03d}",
                    "name": f"Camera {i}",
                    "x": i * 50.0,
                    "y": 0.0,
                    "created_at": now,
                }
                for i in range(cameras)
            ],
        )
        session.execute(
            insert(Source),
            [
                {
                    "id": i + 1,
                    "camera_id": f"cam{i:03d}",
                    "uri": f"bench://{i}",
                    "kind": "frames",
                    "fingerprint": f"bench{i}",
                    "created_at": now,
                }
                for i in range(cameras)
            ],
        )
        rows, embeddings = [], []
        for i in range(count):
            cam = int(camera_of[i][3:])
            rows.append(
                {
                    "id": i + 1,
                    "camera_id": camera_of[i],
                    "source_id": cam + 1,
                    "chunk_index": i,
                    "track_id": 0,
                    "start_time": times[i],
                    "end_time": times[i],
                    "frames": 10,
                    "quality": 0.5,
                    "x1": 0.0,
                    "y1": 0.0,
                    "x2": 40.0,
                    "y2": 100.0,
                    "thumbnail_sha256": None,
                }
            )
            embeddings.append(
                {
                    "sighting_id": i + 1,
                    "model": model.version,
                    "dim": model.dim,
                    "vector": vectors[i].astype("<f4").tobytes(),
                }
            )
        session.execute(insert(Sighting), rows)
        session.execute(insert(Embedding), embeddings)
    version = ws.index_for(model.version, model.dim)
    with ws.writing(version) as store:
        for start in range(0, count, 10_000):
            end = min(count, start + 10_000)
            ids = np.arange(start + 1, end + 1, dtype=np.int64)
            store.add(ids, vectors[start:end], camera_of[start:end], times[start:end])
    ws.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def timed_get(client: httpx.Client, url: str, params: dict) -> float:
    started = time.perf_counter()
    response = client.get(url, params=params)
    response.raise_for_status()
    return (time.perf_counter() - started) * 1000


def under_load(
    url: str, headers: dict, path: str, params: dict, clients: int, per_client: int
) -> tuple[list[float], float]:
    """Latencies (ms) of ``clients`` threads each making ``per_client`` requests, and the wall
    time of the whole burst."""

    def one_client(_: int) -> list[float]:
        with httpx.Client(base_url=url, headers=headers, timeout=300) as own:
            return [timed_get(own, path, params) for _ in range(per_client)]

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [ms for batch in pool.map(one_client, range(clients)) for ms in batch]
    return latencies, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sightings", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="10 000 sightings, 50 requests")
    args = parser.parse_args()
    if args.quick:
        args.sightings, args.requests = 10_000, 50
    data = Path(tempfile.mkdtemp(prefix="reunite-api-bench-"))
    started = time.perf_counter()
    populate(data, args.sightings)
    populate_s = time.perf_counter() - started
    port = free_port()
    env = {
        **os.environ,
        "REUNITE_DATA_DIR": str(data),
        "REUNITE_LOG_LEVEL": "WARNING",
        "REUNITE_SEARCH_PER_MINUTE": "1000000",
    }
    cli = [sys.executable, "-m", "reunite.cli"]
    subprocess.run(
        [*cli, "users", "add", "bench", "--role", "operator", "--password-stdin"],
        input=PASSWORD,
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    server = subprocess.Popen([*cli, "serve", "--port", str(port), "--no-alerts"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        token = httpx.post(f"{url}/auth/token", data={"username": "bench", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        frame = cv2.imread(str(sorted(SAMPLE.glob("*.jpg"))[0]))
        photos = [frame[100:300, x : x + 80] for x in (300, 200, 400)]
        files = [
            ("photos", (f"p{i}.jpg", cv2.imencode(".jpg", p)[1].tobytes(), "image/jpeg"))
            for i, p in enumerate(photos)
        ]
        last_seen = (datetime.now(UTC) - timedelta(hours=24)).isoformat()
        client = httpx.Client(base_url=url, headers=headers, timeout=120)
        case = client.post(
            "/cases", data={"alias": "bench", "last_seen_time": last_seen}, files=files
        )
        case.raise_for_status()
        path = f"/cases/{case.json()['id']}/matches"
        windows = {
            "since last seen (24 h)": {"k": 20},
            "whole retention (30 d)": {
                "k": 20,
                "since": (datetime.now(UTC) - timedelta(days=30)).isoformat(),
            },
        }
        proc = psutil.Process(server.pid)
        peak_rss = proc.memory_info().rss
        results: dict[str, dict] = {}
        for name, params in windows.items():
            for _ in range(5):
                timed_get(client, path, params)  # warm-up: model, shard files, caches
            sequential = [timed_get(client, path, params) for _ in range(args.requests)]
            peak_rss = max(peak_rss, proc.memory_info().rss)
            per_client = max(1, args.requests // args.clients)
            loaded, wall = under_load(url, headers, path, params, args.clients, per_client)
            peak_rss = max(peak_rss, proc.memory_info().rss)
            results[name] = {
                "p50_ms": statistics.median(sequential),
                "p95_ms": percentile(sequential, 95),
                "p99_ms": percentile(sequential, 99),
                "concurrent_clients": args.clients,
                "throughput_rps": len(loaded) / wall,
                "p95_under_load_ms": percentile(loaded, 95),
                "results": len(client.get(path, params=params).json()["results"]),
            }
    finally:
        server.terminate()
        server.wait(timeout=30)
    report = {
        "sightings": args.sightings,
        "cameras": 100,
        "photos_per_case": 3,
        "requests_sequential": args.requests,
        "populate_s": populate_s,
        "server_peak_rss_mb": peak_rss / 2**20,
        "windows": results,
        "machine": f"{os.cpu_count()} CPUs",
    }
    out = REPO / "bench"
    lines = [
        f"# API under load: `GET /cases/{{id}}/matches`, {args.sightings:,} sightings, "
        f"a case with 3 photos",
        "",
        "| window | p50 ms | p95 ms | p99 ms | clients | throughput req/s | p95 under load ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['concurrent_clients']} | {r['throughput_rps']:.1f} | "
            f"{r['p95_under_load_ms']:.0f} |"
        )
    lines += [
        "",
        f"Server peak RSS {report['server_peak_rss_mb']:.0f} MB; populating took "
        f"{populate_s:.0f} s. One uvicorn worker on this 2-core machine.",
    ]
    report["markdown"] = "\n".join(lines[2:]) + "\n"  # bench/run.py puts it in results.md
    (out / "api_results.json").write_text(json.dumps(report, indent=2))
    (out / "api_results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
