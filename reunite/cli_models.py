"""``reunite models``: list the re-ID models, show a model card, download a published model,
export a PyTorch model to ONNX / OpenVINO (fp32 or int8)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from reunite.cli_common import user_errors
from reunite.config import Settings
from reunite.errors import InvalidOptionError, ModelNotFoundError
from reunite.models.download import ProgressHook
from reunite.models.registry import ModelCard, Registry, RegistryEntry

models_app = typer.Typer(help="List, inspect and download re-ID models.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable)


def _registry(ctx: typer.Context) -> Registry:
    settings = ctx.obj if isinstance(ctx.obj, Settings) else Settings()
    return Registry(data_dir=settings.data_dir)


@models_app.command("list")
@user_errors
def list_models(ctx: typer.Context) -> None:
    """Every model by name: built-in, installed, or downloadable with `reunite models pull`."""
    # Few, short columns so the table reads at 80 columns; `show NAME` has the licence etc.
    table = Table(title="Re-ID models", box=box.SIMPLE_HEAD)
    table.add_column("name", no_wrap=True)
    table.add_column("arch", no_wrap=True)
    table.add_column("dim", justify="right")
    table.add_column("installed", no_wrap=True)
    table.add_column("rank-1/mAP %", no_wrap=True)
    for entry in _registry(ctx).entries():
        card = entry.card
        table.add_row(
            card.name, card.architecture, str(card.embedding_dim), _status(entry), _headline(card)
        )
    out.print(table)


@models_app.command("show")
@user_errors
def show_model(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A model name from `reunite models list`.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the card as JSON.")] = False,
) -> None:
    """The full model card: preprocessing, training, metrics, threshold, licence, source."""
    entry = _registry(ctx).get(name)
    if as_json:
        typer.echo(entry.card.model_dump_json(indent=2))
        return
    where = {"built-in": "built in", "installed": "installed", "downloadable": "not installed"}
    table = Table(title=f"{name} ({where[entry.status]})", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    if entry.folder is not None:
        table.add_row("folder", str(entry.folder))
    for key, value in entry.card.model_dump(mode="json").items():
        table.add_row(key, _pretty(value))
    out.print(table)


@models_app.command("pull")
@user_errors
def pull_model(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A downloadable model (see `reunite models list`).")],
    force: Annotated[
        bool, typer.Option("--force", help="Download again even if installed.")
    ] = False,
    url_base: Annotated[
        str | None,
        typer.Option(help="Fetch the files from this folder URL instead (a mirror)."),
    ] = None,
) -> None:
    """Download a published model into <data_dir>/models/<name>/, verified, with its card."""
    registry = _registry(ctx)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as progress:

        def hook_for(file_name: str) -> ProgressHook:
            task = progress.add_task(file_name, total=None)
            return lambda done, total: progress.update(task, completed=done, total=total)

        result = registry.pull(name, force=force, url_base=url_base, progress=hook_for)
    if not result.installed_now:
        out.print(f"{name} is already installed in {result.folder} (files verified)")
        return
    out.print(f"installed {name} in {result.folder}")
    for file in result.unpinned:
        digest = (
            result.card.sha256 if file == result.card.weights else result.card.extra_files[file]
        )
        out.print(
            f"{file}: no checksum is published for it; it loaded strictly as "
            f"{result.card.architecture}. Its sha256, now pinned in card.json and checked on "
            f"every load: {digest}"
        )


def _status(entry: RegistryEntry) -> str:
    return {"built-in": "built-in", "installed": "yes", "downloadable": "no"}[entry.status]


def _headline(card: ModelCard) -> str:
    found = card.headline()
    if found is None:
        return ""
    data, metrics = found
    mean_ap = metrics.get("mAP")
    figures = f"{100 * metrics['rank1']:.0f}" + (f"/{100 * mean_ap:.0f}" if mean_ap else "")
    return f"{figures} {data}"


def _pretty(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value) if value else "-"
    return "-" if value is None else str(value)


@models_app.command("export")
@user_errors
def export_model(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A PyTorch model (name or card folder) to export.")],
    fmt: Annotated[
        str, typer.Option("--format", help="onnx (ONNX Runtime) or openvino (OpenVINO IR).")
    ] = "onnx",
    int8: Annotated[
        bool, typer.Option("--int8", help="Static int8 quantisation (needs --calibration).")
    ] = False,
    calibration: Annotated[
        Path | None,
        typer.Option(help="Folder of person crops (JPEG/PNG) to calibrate int8 on."),
    ] = None,
    calibration_images: Annotated[
        int, typer.Option(help="How many calibration crops to use (spread over the folder).")
    ] = 512,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing export.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the new card as JSON.")] = False,
) -> None:
    """Export a model to ONNX or OpenVINO IR (fp32, or int8 calibrated on crops) into
    <data_dir>/models/NAME.<format>-<precision>/, where --backend finds it."""
    from reunite.models.export import describe, dumps, export_card_model
    from reunite.models.model_card import CARD_FILE
    from reunite.models.registry import DEFAULT_MODEL

    registry = _registry(ctx)
    name = DEFAULT_MODEL if name == "default" else name
    entry = registry.find(name)
    if entry is not None and entry.folder is not None:
        card, folder = entry.card, entry.folder
    elif (Path(name) / CARD_FILE).is_file():
        card, folder = ModelCard.read(Path(name)), Path(name)
    elif entry is not None:
        raise ModelNotFoundError(
            f"{name} is not installed here ({entry.status}); "
            + ("it has no weights to export" if entry.status == "built-in" else "pull it first")
        )
    else:
        raise ModelNotFoundError(f"no model {name!r}: give a name from `reunite models list`")
    if registry.user_dir is None:
        raise InvalidOptionError("no data folder to write the export into")
    with err.status(f"exporting {card.name} to {fmt}{' int8' if int8 else ''}"):
        result = export_card_model(
            card,
            folder,
            fmt,
            registry.user_dir,
            int8=int8,
            calibration=calibration,
            calibration_count=calibration_images,
            overwrite=overwrite,
        )
    if as_json:
        typer.echo(dumps(result))
        return
    out.print(describe(result), highlight=False)
