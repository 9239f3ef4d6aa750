"""The one command-line tool, ``reunite``. Every user-facing error is one line and exit code 2."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reunite import __version__
from reunite.cli_common import Bars, console, progress_bars, user_errors
from reunite.config import Settings
from reunite.logging import configure_logging

if TYPE_CHECKING:  # the synth stack loads lazily: commands that do not render stay fast
    from reunite.synth.district_job import DistrictOptions

app = typer.Typer(
    help="Reunite: missing-person matching over district CCTV.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
synth_app = typer.Typer(help="Render the synthetic multi-camera CCTV world.", no_args_is_help=True)
app.add_typer(synth_app, name="synth")

log = logging.getLogger("reunite.cli")


@app.callback()
def main(
    ctx: typer.Context,
    log_level: Annotated[str | None, typer.Option(help="DEBUG, INFO, WARNING, ERROR")] = None,
) -> None:
    settings = Settings(**({"log_level": log_level} if log_level else {}))
    configure_logging(settings.log_level, settings.log_json)
    ctx.obj = settings


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def _world_kit(settings: Settings):
    """The body kit and renderer, created once per process (anny takes ~1 s once cached)."""
    from reunite.synth.bodies import BodyKit
    from reunite.synth.renderer import Renderer

    renderer = Renderer(threads=settings.render_threads)  # fails fast without EGL
    with console.status("loading the body model (first run builds a ~790 MB cache, ~1 min)"):
        kit = BodyKit(settings.anny_cache_dir)
        maps = kit.uv_maps(renderer)
    return kit, renderer, maps


def _render_district(
    settings: Settings, opts: DistrictOptions, checked_out: Path, overwrite: bool
) -> dict:
    """Refuse a non-empty ``checked_out`` before the slow body-model load, then render."""
    from reunite.synth.district_job import generate_district
    from reunite.synth.frames import DistrictRenderer
    from reunite.synth.output import check_output_dir

    check_output_dir(checked_out, overwrite)
    kit, renderer, maps = _world_kit(settings)
    with progress_bars() as progress:
        return generate_district(
            opts, lambda d: DistrictRenderer(d, kit, renderer, maps), Bars(progress)
        )


@synth_app.command("district")
@user_errors
def synth_district(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Output folder (must be new or empty).")],
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same world.")] = 0,
    cameras: Annotated[int, typer.Option(help="Number of cameras.")] = 6,
    people: Annotated[int, typer.Option(help="Number of identities walking the district.")] = 60,
    minutes: Annotated[
        float, typer.Option(help="Clip length in minutes (may be fractional).")
    ] = 2.0,
    fps: Annotated[float, typer.Option(help="Frames per second per camera.")] = 5.0,
    size: Annotated[str, typer.Option(help="Frame size WxH.")] = "1280x720",
    format: Annotated[
        str, typer.Option(help="'frames' (timestamped JPEGs) or 'video' (MP4).")
    ] = "frames",
    hour: Annotated[
        float | None, typer.Option(help="Time of day 0-24 (default: from seed).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty output folder.")] = False,
    masks: Annotated[bool, typer.Option(help="Also write per-frame person-id masks.")] = False,
) -> None:
    """Render a multi-camera district clip with MOT ground truth and case photos."""
    from reunite.synth.district_job import DistrictOptions, parse_size

    w, h = parse_size(size)
    opts = DistrictOptions(
        out, seed, cameras, people, minutes, fps, w, h, format, hour, overwrite, masks=masks
    )
    opts.validate()
    manifest = _render_district(ctx.obj, opts, out, overwrite)
    console.print(
        f"wrote {out}: {cameras} cameras x {manifest['frames_per_camera']} frames, "
        f"{people} people, {manifest['cases']} case photo sets"
    )


@synth_app.command("reid")
@user_errors
def synth_reid(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Output folder (must be new or empty).")],
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same data set.")] = 0,
    train_ids: Annotated[int, typer.Option(help="Training identities.")] = 250,
    test_ids: Annotated[int, typer.Option(help="Test identities (query + gallery).")] = 250,
    cameras: Annotated[int, typer.Option(help="Cameras (Market-1501 has 6).")] = 6,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty output folder.")] = False,
) -> None:
    """Render a Market-1501-layout re-ID data set (train / gallery / query)."""
    from reunite.synth.output import check_output_dir
    from reunite.synth.reid_job import ReidOptions, generate_reid

    opts = ReidOptions(out, seed, train_ids, test_ids, cameras, overwrite)
    opts.validate()
    check_output_dir(out, overwrite)
    kit, renderer, maps = _world_kit(ctx.obj)
    with progress_bars() as progress:
        summary = generate_reid(opts, kit, renderer, maps, Bars(progress))
    console.print(
        f"wrote {out}: {summary['train_images']} train, {summary['gallery_images']} gallery, "
        f"{summary['query_images']} query images"
    )


@app.command()
@user_errors
def demo(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("demo_out"),
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty output folder.")] = False,
    seed: Annotated[int, typer.Option(help="Random seed of the district.")] = 12,
    district: Annotated[
        Path | None, typer.Option(help="Use this rendered district instead of rendering one.")
    ] = None,
    cameras: Annotated[int, typer.Option(help="Cameras in the rendered district.")] = 6,
    people: Annotated[int, typer.Option(help="People in the rendered district.")] = 120,
    minutes: Annotated[float, typer.Option(help="Length of the rendered footage.")] = 5.0,
) -> None:
    """The main job on the embedded defaults: render a district, ingest all its footage into
    SQLite + FAISS under OUT/data with the shipped model, search every child and elderly case
    with its last-seen still, print the ranks and write OUT/report.html."""
    from reunite.demo_job import run_main_job, summary
    from reunite.synth.contact_sheet import write_contact_sheets
    from reunite.synth.district_job import DistrictOptions
    from reunite.synth.output import check_output_dir

    settings: Settings = ctx.obj
    if district is None:
        opts = DistrictOptions(
            out / "district",
            seed=seed,
            cameras=cameras,
            people=people,
            minutes=minutes,
            fps=2.0,
            overwrite=True,
        )
        _render_district(settings, opts, out, overwrite)
        district = out / "district"
        for path in write_contact_sheets(district, out):
            console.print(f"wrote {path}")
    else:
        check_output_dir(out, overwrite)
        out.mkdir(parents=True, exist_ok=True)
    if overwrite:  # a previous run's database would mix its sightings with this district's
        import shutil

        shutil.rmtree(out / "data", ignore_errors=True)
    run_settings = settings.model_copy(update={"data_dir": out / "data", "database_url": ""})
    with progress_bars() as progress:
        result = run_main_job(run_settings, district, out, Bars(progress))
    _print_cases(result)
    figures = summary(result)
    console.print(
        f"{figures['sightings']} sightings from {figures['frames']} frames at "
        f"{figures['frames_per_s_per_camera']:.1f} frames/s per camera; wrote {result.report_html}"
    )


def _print_cases(result) -> None:
    from rich.table import Table

    main = result.reports[0]
    table = Table("person", "age group", "last seen", "rank of first correct sighting elsewhere")
    for case in main.cases:
        rank = str(case.rank) if case.rank is not None else "-"
        table.add_row(
            str(case.person_id),
            case.age_group,
            case.last_seen_camera,
            rank if case.answerable else "not seen elsewhere (not counted)",
        )
    console.print(table)
    figures = Table(
        "sighting vectors", "answerable cases", "recall@1", "recall@5", "recall@10", "mAP"
    )
    for report in result.reports:
        figures.add_row(
            report.variant,
            str(len(report.answerable)),
            *(f"{report.recall_at(k):.3f}" for k in (1, 5, 10)),
            f"{report.mean_ap:.3f}",
        )
    console.print(figures)


if __name__ == "__main__":  # pragma: no cover
    # Run as `python -m reunite.cli`, this file is `__main__`; the commands registered at the
    # bottom belong to the imported module `reunite.cli`, so run that module's app.
    from reunite.cli import app as registered_app

    sys.exit(registered_app())


# Commands that live in their own modules (they import the helpers above).
from reunite.cli_eval import eval_command  # noqa: E402
from reunite.cli_models import models_app  # noqa: E402
from reunite.cli_train import train_command  # noqa: E402

app.command("train")(train_command)
app.command("eval")(eval_command)
app.add_typer(models_app, name="models")

from reunite.cli_pipeline import (  # noqa: E402
    cameras_app,
    index_check_command,
    ingest_command,
    jobs_command,
    purge_command,
    reindex_command,
    search_command,
)

app.add_typer(cameras_app, name="cameras")
app.command("ingest")(ingest_command)
app.command("reindex")(reindex_command)
app.command("purge")(purge_command)
app.command("jobs")(jobs_command)
app.command("search")(search_command)
app.command("index-check")(index_check_command)

from reunite.cli_api import alerts_app, audit_app, serve_command, users_app  # noqa: E402

app.command("serve")(serve_command)
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")
app.add_typer(alerts_app, name="alerts")

from reunite.cli_attributes import attributes_app  # noqa: E402

app.add_typer(attributes_app, name="attributes")
