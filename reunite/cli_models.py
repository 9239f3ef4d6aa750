"""``reunite models``: list the re-ID models, show a model card, download a published model."""

from __future__ import annotations

import json
from collections.abc import Callable
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
