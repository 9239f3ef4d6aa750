"""The main job on a rendered district: register its cameras, ingest all footage, search for
every child and elderly case with its last-seen still, print the ranks and write an HTML report.

Used by ``reunite demo`` (after it renders the district) and by ``reunite demo --district DIR``
for an existing one; the measured figures go to ``results.json`` beside the report.
"""

from __future__ import annotations

import base64
import html
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from reunite.config import Settings
from reunite.evaluation.district_cases import RECALL_AT, CaseReport, StoredSighting, evaluate_cases
from reunite.pipeline.cameras import add_camera, read_district_cameras
from reunite.pipeline.detectors import detector_factory
from reunite.pipeline.embedding_model import load_embedding_model
from reunite.pipeline.ingest import IngestOptions, IngestReport, ingest_source
from reunite.pipeline.jobs import run_job
from reunite.pipeline.workspace import Workspace

Progress = Callable[[str, int, int], None]


@dataclass
class DemoResult:
    reports: list[CaseReport]
    ingests: list[IngestReport]
    sightings: int
    ingest_seconds: float
    report_html: Path
    results_json: Path

    @property
    def frames(self) -> int:
        return sum(r.frames for r in self.ingests)

    @property
    def frames_per_s_per_camera(self) -> float:
        """Frames processed per second of wall time, per camera processed one after another."""
        return self.frames / self.ingest_seconds if self.ingest_seconds else 0.0


def ingest_district(
    ws: Workspace,
    district: Path,
    model_spec: str = "default",
    detector: str = "mog2",
    progress: Progress | None = None,
    options: IngestOptions | None = None,
) -> tuple[list[IngestReport], float]:
    model = load_embedding_model(model_spec, data_dir=ws.data_dir)
    version = ws.index_for(model.version, model.dim)
    specs = read_district_cameras(district)
    with ws.db.session() as session:
        for spec in specs:
            add_camera(session, spec, replace=True)
    factory = detector_factory(detector)
    reports, started = [], time.perf_counter()
    for spec in specs:
        folder = district / "cameras" / spec.id
        with run_job(
            ws.db, "ingest", f"camera:{spec.id}", {"paths": [str(folder)], "camera": spec.id}
        ) as job:

            def tick(done: int, total: int | None, _s: int, camera: str = spec.id) -> None:
                if progress is not None:
                    progress(f"ingest {camera}", done, total or done)

            reports.append(
                ingest_source(
                    ws,
                    model,
                    version,
                    spec.id,
                    folder,
                    factory,
                    options or IngestOptions(),
                    job,
                    tick,
                )
            )
    return reports, time.perf_counter() - started


def run_main_job(
    settings: Settings, district: Path, out: Path, progress: Progress | None = None
) -> DemoResult:
    ws = Workspace.open(settings)
    try:
        ingests, seconds = ingest_district(ws, district, progress=progress)
        model = load_embedding_model("default", data_dir=ws.data_dir)
        cases, sightings, reports = evaluate_cases(ws, district, model)
        html_path = write_html_report(
            out / "report.html", district, cases, sightings, reports[0], ws
        )
        result = DemoResult(
            reports, ingests, len(sightings), seconds, html_path, out / "results.json"
        )
        result.results_json.write_text(json.dumps(summary(result), indent=1))
        return result
    finally:
        ws.close()


def summary(result: DemoResult) -> dict:
    return {
        "sightings": result.sightings,
        "frames": result.frames,
        "ingest_seconds": round(result.ingest_seconds, 2),
        "frames_per_s_per_camera": round(result.frames_per_s_per_camera, 2),
        "variants": {
            r.variant: {
                "cases": len(r.cases),
                "answerable": len(r.answerable),
                **{f"recall@{k}": _finite(r.recall_at(k)) for k in RECALL_AT},
                "mAP": _finite(r.mean_ap),
                "by_age_group": {
                    group: {
                        "answerable": len([c for c in r.answerable if c.age_group == group]),
                        "recall@10": _finite(
                            _mean(
                                [
                                    c.rank is not None and c.rank <= 10
                                    for c in r.answerable
                                    if c.age_group == group
                                ]
                            )
                        ),
                    }
                    for group in ("child", "elderly")
                },
            }
            for r in result.reports
        },
    }


def _finite(value: float) -> float | None:
    """JSON has no NaN: a figure over zero cases is null."""
    return None if value != value else round(value, 4)


def _mean(values: list[bool]) -> float:
    return float(np.mean(values)) if values else float("nan")


def _data_uri(image: np.ndarray | None, height: int = 128) -> str:
    if image is None:
        return ""
    scale = height / image.shape[0]
    image = cv2.resize(
        image, (max(1, round(image.shape[1] * scale)), height), interpolation=cv2.INTER_AREA
    )
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return "data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode() if ok else ""


def write_html_report(
    path: Path,
    district: Path,
    cases: list[dict],
    sightings: list[StoredSighting],
    report: CaseReport,
    ws: Workspace,
) -> Path:
    """One self-contained page: each case's last-seen still and its top-10 sightings (thumbnails
    inlined), correct ones outlined in green, with camera, time and score."""
    by_id = {s.id: s for s in sightings}
    rows = []
    for case, result in zip(cases, report.cases, strict=True):
        still = cv2.imread(str(district / case["last_seen"]), cv2.IMREAD_COLOR)
        cells = []
        for sid in result.ranked:
            s = by_id[sid]
            thumb = cv2.imdecode(
                np.frombuffer(ws.crops.get(s.crop_shas[0]), np.uint8), cv2.IMREAD_COLOR
            )
            ok = "ok" if sid in result.correct else ""
            cells.append(
                f'<td class="{ok}"><img src="{_data_uri(thumb)}" alt="sighting {sid}"><br>'
                f"{html.escape(s.camera_id)} {s.start_time:%H:%M:%S}</td>"
            )
        rank = result.rank if result.rank is not None else "—"
        status = "" if result.answerable else " (not seen on another camera: not counted)"
        rows.append(
            f"<tr><th>person {result.person_id}<br>{result.age_group}<br>last seen "
            f"{html.escape(result.last_seen_camera)}<br>rank {rank}{status}</th>"
            f'<td class="query"><img src="{_data_uri(still)}" alt="last-seen still"></td>'
            + "".join(cells)
            + "</tr>"
        )
    figures = ", ".join(f"recall@{k} {report.recall_at(k):.2f}" for k in (1, 5, 10))
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Reunite — case search on a synthetic district</title>
<style>
body {{ font-family: sans-serif; margin: 1em; }} table {{ border-collapse: collapse; }}
td, th {{ padding: 4px; text-align: center; font-size: 12px; vertical-align: top; }}
th {{ text-align: left; min-width: 9em; }} td.ok img {{ outline: 4px solid #1a7f37; }}
td.query img {{ outline: 4px solid #0550ae; }}
</style></head><body>
<h1>Case search on a synthetic district</h1>
<p>{len(report.answerable)} answerable cases of {len(report.cases)}; {figures};
mAP {report.mean_ap:.2f}.
Query (blue): the last-seen still. Green: the right person on another camera.</p>
<table>{"".join(rows)}</table></body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path
