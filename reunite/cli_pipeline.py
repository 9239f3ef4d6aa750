"""Pipeline commands: cameras, ingest, reindex, purge, jobs, search, index.

Thin: each command opens the workspace from the settings, runs one ``reunite.pipeline`` function
inside a recorded job, and prints what happened. Everything here is also usable from Python.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from reunite.cli_common import console, user_errors
from reunite.config import Settings
from reunite.errors import InvalidOptionError

if TYPE_CHECKING:  # the pipeline is imported inside the commands, to keep `--help` fast
    from reunite.pipeline.search import SightingResult

cameras_app = typer.Typer(help="Register and list cameras.", no_args_is_help=True)
out = Console()

BackendOption = Annotated[
    str,
    typer.Option(
        help="Where embeddings are computed: torch, onnxruntime, openvino, or auto (the fastest "
        "measured; see bench/results.md)."
    ),
]
PrecisionOption = Annotated[
    str,
    typer.Option(
        help="fp32, bf16 (CPUs with AVX-512 BF16 / AMX), int8 (after `reunite models export "
        "--int8`), or auto (bf16 on OpenVINO where the CPU has it, else fp32)."
    ),
]


def _settings(ctx: typer.Context) -> Settings:
    return ctx.obj if isinstance(ctx.obj, Settings) else Settings()


@contextmanager
def _workspace(ctx: typer.Context) -> Iterator:
    from reunite.pipeline.workspace import Workspace

    ws = Workspace.open(_settings(ctx))
    try:
        yield ws
    finally:
        ws.close()


def parse_time(text: str | None, *, now: datetime | None = None) -> datetime | None:
    """An ISO 8601 time (UTC unless a zone is given) or an age before now: ``2h``, ``3d``."""
    if text is None:
        return None
    from reunite.pipeline.retention import parse_age

    if text[-1:].lower() in "mhdw" and text[:-1].isdigit():
        return (now or datetime.now(UTC)) - parse_age(text)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidOptionError(
            f"time {text!r} not understood: use ISO 8601 (2026-11-25T14:00, UTC unless a zone "
            "is given) or an age such as 30m, 2h, 3d"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# -- cameras -------------------------------------------------------------------------------


@cameras_app.command("add")
@user_errors
def cameras_add(
    ctx: typer.Context,
    camera_id: Annotated[str, typer.Argument(help="Camera id, e.g. c12 or seongsu-288.")],
    name: Annotated[str, typer.Option(help="Human-readable name or address.")],
    x: Annotated[float, typer.Option(help="Plan position east, metres.")] = 0.0,
    y: Annotated[float, typer.Option(help="Plan position north, metres.")] = 0.0,
    area: Annotated[str | None, typer.Option(help="Area or district name.")] = None,
    replace: Annotated[bool, typer.Option(help="Update a camera that exists.")] = False,
) -> None:
    """Register a camera (every ingest names one)."""
    from reunite.pipeline.cameras import CameraSpec, add_camera

    with _workspace(ctx) as ws, ws.db.session() as session:
        add_camera(session, CameraSpec(camera_id, name, x, y, area), replace=replace)
    console.print(f"camera {camera_id} registered")


@cameras_app.command("import")
@user_errors
def cameras_import(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A synthetic district folder or its cameras.json.")],
    replace: Annotated[bool, typer.Option(help="Update cameras that exist.")] = False,
) -> None:
    """Register every camera of a synthetic district (ids c1, c2, ... as its folders)."""
    from reunite.pipeline.cameras import add_camera, read_district_cameras

    specs = read_district_cameras(path)
    with _workspace(ctx) as ws, ws.db.session() as session:
        for spec in specs:
            add_camera(session, spec, replace=replace)
    console.print(f"{len(specs)} cameras registered: {', '.join(s.id for s in specs)}")


@cameras_app.command("list")
@user_errors
def cameras_list(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """List the registered cameras."""
    from reunite.pipeline.cameras import list_cameras

    with _workspace(ctx) as ws, ws.db.session() as session:
        rows = [
            {"id": c.id, "name": c.name, "x": c.x, "y": c.y, "area": c.area}
            for c in list_cameras(session)
        ]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("id", "name", "x (m)", "y (m)", "area")
    for r in rows:
        table.add_row(r["id"], r["name"], f"{r['x']:.1f}", f"{r['y']:.1f}", r["area"] or "")
    out.print(table)


# -- ingest --------------------------------------------------------------------------------


@user_errors
def ingest_command(
    ctx: typer.Context,
    paths: Annotated[list[str], typer.Argument(help="Video files, frame folders or stream URLs.")],
    camera: Annotated[str, typer.Option(help="The registered camera the footage comes from.")],
    model: Annotated[str, typer.Option(help="Re-ID model (default: the active index's).")] = "",
    detector: Annotated[
        str, typer.Option(help="'mog2' (no weights) or a YOLOX-style .onnx person detector.")
    ] = "mog2",
    tile: Annotated[bool, typer.Option(help="With an ONNX detector: also run on tiles.")] = False,
    fps: Annotated[float, typer.Option(help="Frames sampled per second of footage.")] = 2.0,
    start: Annotated[
        str | None, typer.Option(help="Wall-clock time of a video's first frame (ISO 8601).")
    ] = None,
    chunk_frames: Annotated[
        int, typer.Option(help="Sampled frames per committed chunk (the resume unit).")
    ] = 120,
    backend: BackendOption = "auto",
    precision: PrecisionOption = "auto",
) -> None:
    """Detect, track and index the people in footage from one camera. Resumable: run the same
    command again after an interruption; footage already ingested is not added twice."""
    from reunite.pipeline.detectors import detector_factory
    from reunite.pipeline.embedding_model import load_embedding_model
    from reunite.pipeline.ingest import IngestOptions, ingest_source
    from reunite.pipeline.jobs import run_job
    from reunite.pipeline.sources import open_source

    options = IngestOptions(fps=fps, start_time=parse_time(start), chunk_frames=chunk_frames)
    factory = detector_factory(detector, tile=tile)
    for path in paths:  # every path opens before any work starts: a typo fails fast
        if "://" not in path:
            open_source(path, fps=fps, start_time=options.start_time)
    with _workspace(ctx) as ws:
        with ws.db.session() as session:
            from reunite.pipeline.cameras import get_camera

            get_camera(session, camera)
        active = ws.active_version()
        spec = model or (active.model.split("@")[0] if active else "default")
        embedding_model = load_embedding_model(
            spec, data_dir=ws.data_dir, backend=backend, precision=precision
        )
        version = ws.index_for(
            embedding_model.version, embedding_model.dim, _settings(ctx).index_kind
        )
        params = {
            "paths": paths,
            "camera": camera,
            "model": embedding_model.version,
            "detector": detector,
            "runtime": embedding_model.runtime,
            "fps": fps,
            "start": start,
        }
        with run_job(ws.db, "ingest", f"camera:{camera}", params) as job, _ingest_bars() as bars:
            for path in paths:
                task = bars.add_task(Path(path).name, total=None, sightings=0, rate="")
                began = time.perf_counter()
                first: list[int] = []

                def progress(
                    done: int,
                    total: int | None,
                    sightings: int,
                    task=task,
                    began=began,
                    first=first,
                ) -> None:
                    if not first:
                        first.append(done)
                    rate = (done - first[0]) / max(time.perf_counter() - began, 1e-9)
                    bars.update(
                        task,
                        completed=done,
                        total=total,
                        sightings=sightings,
                        rate=f"{rate:.1f} frames/s",
                    )

                report = ingest_source(
                    ws, embedding_model, version, camera, path, factory, options, job, progress
                )
                if report.already_ingested:
                    bars.update(task, total=1, completed=1, rate="already ingested")
                    console.print(f"{path}: already ingested for camera {camera}; nothing added")
                    continue
                note = (
                    f" (resumed at chunk {report.resumed_from_chunk})"
                    if report.resumed_from_chunk
                    else ""
                )
                console.print(
                    f"{path}: {report.frames} frames, {report.sightings} sightings, "
                    f"{report.frames_per_s:.1f} frames/s{note}"
                )
                for error in report.errors:
                    console.print(f"[yellow]warning:[/] {path}: {error}", highlight=False)


def _ingest_bars() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TextColumn("{task.fields[sightings]} sightings"),
        TimeElapsedColumn(),
        console=console,
    )


# -- reindex / purge / jobs ----------------------------------------------------------------


@user_errors
def reindex_command(
    ctx: typer.Context,
    model: Annotated[str, typer.Option(help="The model to re-embed every stored crop with.")],
    batch_size: Annotated[int, typer.Option(help="Sightings per committed batch.")] = 128,
    kind: Annotated[
        str | None, typer.Option(help="flat, hnsw or ivfpq (default: the index_kind setting).")
    ] = None,
    backend: BackendOption = "auto",
    precision: PrecisionOption = "auto",
) -> None:
    """Re-embed every sighting with another model into a new index version and switch to it
    when complete; searches keep using the current index meanwhile. Resumable."""
    from reunite.pipeline.embedding_model import load_embedding_model
    from reunite.pipeline.jobs import run_job
    from reunite.pipeline.reindex import reindex

    with _workspace(ctx) as ws:
        embedding_model = load_embedding_model(
            model, data_dir=ws.data_dir, backend=backend, precision=precision
        )
        params = {"model": embedding_model.version, "runtime": embedding_model.runtime}
        with run_job(ws.db, "reindex", "index", params) as job, _simple_bar() as bar:
            task = bar.add_task(f"reindex {embedding_model.version}", total=None)
            report = reindex(
                ws,
                embedding_model,
                job,
                batch_size=batch_size,
                kind=kind or _settings(ctx).index_kind,
                on_progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    console.print(
        f"index version {report.version_id} ({report.model}) is active: "
        f"{report.embedded} sightings embedded in this run"
    )
    for line in report.skipped:
        console.print(f"[yellow]skipped:[/] {line}", highlight=False)


@user_errors
def purge_command(
    ctx: typer.Context,
    older_than: Annotated[
        str | None, typer.Option(help="Age limit, e.g. 30d (default: the retention setting).")
    ] = None,
) -> None:
    """Delete sightings older than the limit with their crops and index entries."""
    from datetime import timedelta

    from reunite.pipeline.jobs import run_job
    from reunite.pipeline.retention import parse_age, purge

    settings = _settings(ctx)
    age = parse_age(older_than) if older_than else timedelta(days=settings.retention_days)
    with _workspace(ctx) as ws, run_job(ws.db, "purge", "index", {"older_than": str(age)}) as job:
        report = purge(ws, age, job)
    console.print(
        f"purged {report.sightings} sightings started before {report.cutoff:%Y-%m-%d %H:%M} UTC, "
        f"{report.crop_files} crop files, {report.orphan_files} orphan files"
    )


@user_errors
def jobs_command(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="How many of the newest jobs.")] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recent batch jobs and their status; a job whose process died shows as interrupted."""
    from reunite.pipeline.jobs import list_jobs

    with _workspace(ctx) as ws, ws.db.session() as session:
        rows = [
            {
                "id": j.id,
                "kind": j.kind,
                "status": j.status,
                "lock": j.lock_key,
                "progress": j.progress_done,
                "total": j.progress_total,
                "started": j.started_at.isoformat() if j.started_at else None,
                "finished": j.finished_at.isoformat() if j.finished_at else None,
                "errors": len(j.errors or []),
                "message": j.message,
                "params": j.params,
            }
            for j in list_jobs(session, limit)
        ]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("id", "kind", "status", "lock", "progress", "started (UTC)", "errors", "message")
    for r in rows:
        progress = f"{r['progress']}/{r['total']}" if r["total"] else str(r["progress"])
        started = (r["started"] or "")[:19].replace("T", " ")
        table.add_row(
            str(r["id"]),
            r["kind"],
            r["status"],
            r["lock"] or "",
            progress,
            started,
            str(r["errors"]),
            r["message"] or "",
        )
    out.print(table)


def _simple_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


# -- search --------------------------------------------------------------------------------


@user_errors
def search_command(
    ctx: typer.Context,
    photo: Annotated[
        list[Path] | None, typer.Option(help="A person crop (CCTV still); repeatable.")
    ] = None,
    describe: Annotated[
        str | None,
        typer.Option(
            help="Appearance description (인상착의), Korean or English, e.g. "
            "'노란 우비, 남색 바지, 분홍 가방'; with --photo the two are fused."
        ),
    ] = None,
    since: Annotated[str | None, typer.Option(help="ISO time or age (2h, 3d).")] = None,
    until: Annotated[str | None, typer.Option(help="ISO time or age.")] = None,
    camera: Annotated[
        list[str] | None, typer.Option(help="Only these cameras; repeatable.")
    ] = None,
    k: Annotated[int, typer.Option("-k", help="How many sightings.")] = 10,
    fusion: Annotated[str, typer.Option(help="Fuse several photos' scores: max or mean.")] = "max",
    rerank: Annotated[bool, typer.Option(help="k-reciprocal re-ranking.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    backend: BackendOption = "auto",
    precision: PrecisionOption = "auto",
) -> None:
    """Find the sightings that look like the person in the photos (a crop of the person), or
    that fit a description of what they wore (--describe), or both."""
    from reunite.pipeline.search import search_photos

    settings = _settings(ctx)
    if not photo and describe is None:
        raise InvalidOptionError("give --photo, --describe, or both")
    if describe is not None:
        _search_described(ctx, describe, photo or [], since, until, camera, k, rerank, as_json)
        return
    with _workspace(ctx) as ws:
        search = (
            search_photos
            if (backend, precision) == ("auto", "auto")
            else _search_on(backend, precision)
        )
        results = search(
            ws,
            photo,
            since=parse_time(since),
            until=parse_time(until),
            cameras=camera or None,
            k=k,
            fusion=fusion,
            rerank=rerank,
            retention_days=settings.retention_days,
        )
    if as_json:
        out.print_json(json.dumps([r.as_dict() for r in results]))
        return
    table = Table("rank", "sighting", "camera", "start (UTC)", "end (UTC)", "score", "thumbnail")
    for rank, r in enumerate(results, 1):
        table.add_row(*_result_cells(rank, r), str(r.thumbnail_path or ""))
    out.print(table)


def _search_described(ctx, describe, photos, since, until, camera, k, rerank, as_json) -> None:
    """``search --describe``: print the parsed description first, then the ranked sightings."""
    from reunite.cli_attributes import print_description
    from reunite.pipeline.describe import parse_description
    from reunite.pipeline.describe_search import search_description

    if rerank:
        raise InvalidOptionError("--rerank applies to photo search only, not with --describe")
    description = parse_description(describe)
    if not as_json:
        print_description(description)
    with _workspace(ctx) as ws:
        found = search_description(
            ws,
            description,
            photos=photos,
            since=parse_time(since),
            until=parse_time(until),
            cameras=camera or None,
            k=k,
            retention_days=_settings(ctx).retention_days,
        )
    if as_json:
        out.print_json(json.dumps(found.as_dict()))
        return
    for warning in found.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    what = "fused description + photo score" if photos else "log-likelihood"
    table = Table("rank", "sighting", "camera", "start (UTC)", "end (UTC)", what, "P(part)")
    for rank, (r, evidence) in enumerate(zip(found.results, found.evidence, strict=True), 1):
        parts = " ".join(f"{k.split(':')[-1]}={v:.2f}" for k, v in evidence.items())
        table.add_row(*_result_cells(rank, r), parts)
    out.print(table)
    console.print(f"{found.considered} sightings searched ({found.attribute_model})")


@user_errors
def index_check_command(ctx: typer.Context) -> None:
    """Check the active index against the database and repair it from stored embeddings."""
    with _workspace(ctx) as ws:
        version = ws.active_version()
        if version is None:
            console.print("no index yet: ingest some footage first")
            return
        report = ws.sync_report(version)
    console.print(f"index v{version.id} ({version.model}): {report}")


def _search_on(backend: str, precision: str):
    """``search_photos`` with the query photos embedded on an explicit backend / precision (the
    version check is the same: every runtime gives the active index's model's vectors)."""
    from reunite.errors import NotFoundError
    from reunite.pipeline.embedding_model import load_embedding_model
    from reunite.pipeline.search import read_photo, search_embeddings, window

    def search(ws, photos, *, since, until, cameras, k, fusion, rerank, retention_days):
        version = ws.active_version()
        if version is None:
            raise NotFoundError("there is no index yet: ingest footage first (`reunite ingest`)")
        spec = version.model.split("@")[0].split("#")[0]
        model = load_embedding_model(
            spec, data_dir=ws.data_dir, backend=backend, precision=precision
        )
        if model.version != version.model:
            raise InvalidOptionError(
                f"the active index holds {version.model} embeddings, not {model.version}"
            )
        queries = model.embedder.embed([read_photo(Path(p)) for p in photos])
        where = window(since, until, cameras, retention_days)
        return search_embeddings(ws, queries, where, k=k, fusion=fusion, rerank=rerank)

    return search


def _result_cells(rank: int, r: SightingResult) -> tuple[str, ...]:
    """rank, sighting, camera, start, end, score: the columns both search tables open with."""
    return (
        str(rank),
        str(r.sighting_id),
        f"{r.camera_id} {r.camera_name}",
        f"{r.start_time:%Y-%m-%d %H:%M:%S}",
        f"{r.end_time:%H:%M:%S}",
        f"{r.score:.3f}",
    )
