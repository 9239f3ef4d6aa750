"""``reunite attributes``: the 인상착의 attributes stored with sightings (backfill, parse check).

``backfill`` predicts attributes for sightings ingested before they were stored (or under an
older attribute model) from their stored crops; ``parse`` shows how a description is understood
without searching, so an operator can check the wording first.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from reunite.cli_common import console, user_errors

attributes_app = typer.Typer(
    help="Appearance attributes (인상착의) of sightings: backfill, parse.", no_args_is_help=True
)


@attributes_app.command("backfill")
@user_errors
def backfill_command(
    ctx: typer.Context,
    model: Annotated[
        str, typer.Option(help="Attribute model: a zoo name or a folder with attributes.json.")
    ] = "reunite-attributes-synth",
    batch_size: Annotated[int, typer.Option(help="Sightings per committed batch.")] = 64,
) -> None:
    """Predict and store attributes for every sighting that has none yet (resumable: run it
    again after an interruption)."""
    from reunite.cli_pipeline import _workspace
    from reunite.errors import InvalidOptionError
    from reunite.pipeline.attributes import backfill, load_attribute_model

    if batch_size < 1:
        raise InvalidOptionError(f"--batch-size must be >= 1, got {batch_size}")
    attribute_model = load_attribute_model(model)
    with (
        _workspace(ctx) as ws,
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar,
    ):
        task = bar.add_task(f"attributes {attribute_model.version}", total=None)
        report = backfill(
            ws,
            attribute_model,
            batch_size=batch_size,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    console.print(
        f"{report.sightings} sightings given attributes ({report.model}); "
        f"{report.skipped_without_crops} without readable crops skipped"
        + (f", {report.missing_crop_files} crop files missing" if report.missing_crop_files else "")
    )


@attributes_app.command("parse")
@user_errors
def parse_command(
    text: Annotated[str, typer.Argument(help="The description, Korean or English.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show how a description is understood (nothing is searched)."""
    from reunite.pipeline.describe import parse_description

    description = parse_description(text)
    if as_json:
        Console().print_json(json.dumps(description.model_dump()))
        return
    print_description(description)


def print_description(description) -> None:
    """The parsed form, in English and Korean, and what was not used: shown before results."""
    console.print(f"[bold]understood:[/] {description.summary()}", highlight=False)
    console.print(f"[bold]해석:[/] {description.summary('ko')}", highlight=False)
    if description.ignored:
        console.print(
            f"[yellow]ignored (not understood):[/] {', '.join(description.ignored)}",
            highlight=False,
        )
    for note in description.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
