"""``reunite eval``: evaluate one or several re-ID models side by side, as researchers report them.

``--data`` takes a Market-1501 layout (standard protocol, optional k-reciprocal re-ranking, TPR at
fixed FPR, the calibrated same-person threshold, subgroups when the set describes them), or several
to pool test splits (``pooled_splits``: each ranked on its own, a table per split beside the pooled
figures);
``--mot17`` takes MOTChallenge sequences for the same-camera sanity set on real people. With
``--out`` it writes, all at once or not at all:

    metrics.json   every figure, per model and per subgroup, the thresholds, skipped images
    metrics.md     the same as Markdown tables
    cmc.png        the CMC curves of all models on one plot
    ranked/<model>/ranked_01.png ...   failure sheets: queries and their top-10 matches
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from reunite.cli_common import Bars, progress_bars, user_errors
from reunite.errors import InvalidOptionError

if TYPE_CHECKING:  # evaluation loads OpenCV and matplotlib: only when `eval` runs
    from reunite.evaluation.reid_eval import EvalSet, ModelResult, Progress
    from reunite.models.embedder import Embedder

F = TypeVar("F", bound=Callable)
SHEET_ORDERS = ("worst", "random")
CMC_PLOT_RANKS = 20


@user_errors
def eval_command(
    model: Annotated[
        list[str],
        typer.Option(
            help="Model to evaluate: a registry name (e.g. color_histogram), a folder with "
            "card.json, a .onnx or OpenVINO .xml file, or a checkpoint. Repeat to compare."
        ),
    ],
    data: Annotated[
        list[Path] | None,
        typer.Option(
            help="Market-1501 layout folder (bounding_box_test/, query/, ...). Repeat to pool "
            "several test splits: each ranked on its own, figures over all their queries."
        ),
    ] = None,
    mot17: Annotated[
        Path | None,
        typer.Option(help="MOTChallenge folder for the same-camera sanity set on real people."),
    ] = None,
    rerank: Annotated[
        bool, typer.Option(help="k-reciprocal re-ranking (offline figure, --data only).")
    ] = False,
    centre_cameras: Annotated[
        bool,
        typer.Option(
            help="Subtract each camera's mean embedding before ranking (camera bias; unlabelled "
            "statistics of the ranked crops, --data only)."
        ),
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="Write metrics, plots and sheets here (new or empty).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty --out folder.")] = False,
    batch_size: Annotated[int, typer.Option(help="Crops per forward pass.")] = 64,
    max_queries: Annotated[
        int | None, typer.Option(help="Evaluate a seeded sample of this many queries.")
    ] = None,
    sheets: Annotated[
        str, typer.Option(help="Queries on the ranked sheets: 'worst' first or 'random'.")
    ] = "worst",
    sheet_queries: Annotated[
        int, typer.Option(help="How many queries the ranked sheets show (8 per sheet).")
    ] = 16,
    bootstrap: Annotated[
        int,
        typer.Option(
            help="Bootstrap resamples over query identities for 95% intervals, subgroup gaps "
            "and paired differences from the first model (0: off)."
        ),
    ] = 1000,
    seed: Annotated[
        int, typer.Option(help="Seed of --max-queries, random sheets and the bootstrap.")
    ] = 0,
    device: Annotated[str, typer.Option(help="Where PyTorch models run: cpu, cuda, ...")] = "cpu",
    backend: Annotated[
        str,
        typer.Option(
            help="torch, onnxruntime, openvino, or auto (the fastest measured; torch when "
            "--device is not cpu)."
        ),
    ] = "auto",
    precision: Annotated[
        str, typer.Option(help="fp32, bf16, int8 (after `reunite models export --int8`) or auto.")
    ] = "auto",
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the metrics JSON to stdout (for scripts).")
    ] = False,
) -> None:
    """Evaluate re-ID models: CMC, mAP, mINP, TPR@FPR, subgroups, failure sheets."""
    from reunite.cli import console
    from reunite.evaluation.market1501 import Market1501Layout
    from reunite.evaluation.mot_sanity import mot_sanity_set
    from reunite.evaluation.pooled_splits import pool_eval_sets
    from reunite.evaluation.reid_eval import market_eval_set
    from reunite.synth.output import check_output_dir

    _check_options(
        data, mot17, rerank, centre_cameras, batch_size, max_queries, sheets, sheet_queries,
        bootstrap,
    )  # fmt: skip
    if (backend, precision) != ("auto", "auto"):
        from reunite.models.backends import check_choice

        check_choice(backend, precision)  # before anything slow
    if out is not None:
        check_output_dir(out, overwrite)  # before anything slow
    if data:
        layouts = [Market1501Layout(folder) for folder in data]  # errors before any progress bar
        with progress_bars() as progress:
            eval_set = pool_eval_sets([market_eval_set(lay, Bars(progress)) for lay in layouts])
    else:
        eval_set = mot_sanity_set(mot17)
    eval_set = eval_set.sample_queries(max_queries, seed)
    eval_set.check_scorable()
    embedders = _load_models(model, batch_size, device, backend, precision)
    with progress_bars() as progress:
        report = run_eval(
            embedders,
            eval_set,
            rerank=rerank,
            centre_cameras=centre_cameras,
            out=out,
            overwrite=overwrite,
            sheets=sheets,
            sheet_queries=sheet_queries,
            seed=seed,
            resamples=bootstrap,
            progress=Bars(progress),
        )
    table = format_report_markdown(report)
    if json_output:
        typer.echo(json.dumps(report, indent=1))
        console.print(table, highlight=False, markup=False)
    else:
        typer.echo(table)
    for line in report["skipped_images"]:
        console.print(f"[yellow]skipped[/] {line}", highlight=False)
    if out is not None:
        console.print(f"wrote {out}", highlight=False)


def run_eval(
    embedders: Sequence[Embedder],
    eval_set: EvalSet,
    *,
    rerank: bool = False,
    centre_cameras: bool = False,
    out: Path | None = None,
    overwrite: bool = False,
    sheets: str = "worst",
    sheet_queries: int = 16,
    seed: int = 0,
    resamples: int = 1000,
    progress: Progress | None = None,
) -> dict:
    """Evaluate ``embedders`` on ``eval_set``; with ``out``, write the report folder atomically.

    Returns the report (what metrics.json holds). Nothing is written to ``out`` unless every step
    succeeds, and an existing folder is only replaced with ``overwrite``.
    """
    from reunite.evaluation.plots import plot_cmc, save_figure, write_ranked_sheets
    from reunite.evaluation.reid_eval import evaluate_set
    from reunite.synth.output import atomic_output_dir, write_json

    results = evaluate_set(
        embedders,
        eval_set,
        rerank,
        progress,
        resamples=resamples,
        seed=seed,
        centre_cameras=centre_cameras,
    )
    report = build_report(eval_set, results, rerank, centre_cameras)
    if out is None:
        return report
    with atomic_output_dir(out, overwrite) as tmp:
        report["sheets"] = {}
        for result in results:
            folder = Path("ranked") / _file_name(result.name)
            written = write_ranked_sheets(
                result, eval_set, tmp / folder, count=sheet_queries, order=sheets, seed=seed
            )
            report["sheets"][result.name] = [
                {
                    "file": str(folder / path.name),
                    "queries": [eval_set.query_labels[q] for q in shown],
                }
                for path, shown in written
            ]
        curves = {result.name: result.cmc for result in results}
        title = f"CMC ({eval_set.protocol})"
        save_figure(plot_cmc(curves, CMC_PLOT_RANKS, title), tmp / "cmc.png")
        write_json(tmp / "metrics.json", report)
        (tmp / "metrics.md").write_text(format_report_markdown(report))
    return report


def build_report(
    eval_set: EvalSet,
    results: Sequence[ModelResult],
    rerank: bool,
    centre_cameras: bool = False,
) -> dict:
    """The JSON-ready summary of an evaluation: the set, then every model's figures."""
    return {
        "data": eval_set.name,
        "protocol": eval_set.protocol,
        "rerank": rerank,
        "centre_cameras": centre_cameras,
        "num_query": len(eval_set.query),
        "num_gallery": len(eval_set.gallery),
        "num_skipped_images": len(eval_set.skipped),
        "skipped_images": list(eval_set.skipped),
        "models": {result.name: result.to_json() for result in results},
    }


def format_report_markdown(report: dict) -> str:
    """The report as Markdown: main table, thresholds, subgroup tables, skipped images."""
    from reunite.evaluation.reid_eval import CMC_RANKS, format_cell, format_metrics_table

    models = report["models"]
    reranked = ", k-reciprocal re-ranking" if report["rerank"] else ""
    if report.get("centre_cameras"):
        reranked += ", centred by camera"
    lines = [
        "# Re-ID evaluation",
        "",
        f"Data: {report['data']} ({report['protocol']}{reranked}): {report['num_query']} "
        f"queries, {report['num_gallery']} gallery images.",
        "",
        format_metrics_table({name: entry["metrics"] for name, entry in models.items()}),
    ]
    lines += _format_intervals(models)
    thresholds = {name: e["threshold"] for name, e in models.items() if e["threshold"]}
    if thresholds:
        lines += [
            "## Same-person threshold (cosine distance"
            + (", centred by camera)" if report.get("centre_cameras") else ", no re-ranking)"),
            "",
            "| model | FPR | cosine distance | TPR | positive pairs | negative pairs |",
            "|---|---|---|---|---|---|",
        ]
        for name, t in thresholds.items():
            note = "" if t["negative_pairs"] * t["fpr"] >= 1 else " (too few negatives)"
            lines.append(
                f"| {name} | {t['fpr']:g} | {t['cosine_distance']:.4f} | {t['tpr']:.3f} |"
                f" {t['positive_pairs']} | {t['negative_pairs']}{note} |"
            )
        lines.append("")
    kinds = dict.fromkeys(kind for entry in models.values() for kind in entry["subgroups"])
    with_intervals = any(entry.get("intervals") for entry in models.values())
    extra = ["rank1 interval", "mAP interval"] if with_intervals else []
    for kind in kinds:
        columns = ["num_query", "num_valid_query", *(f"rank{k}" for k in CMC_RANKS[:2]), "mAP"]
        lines += [
            f"## By {kind.replace('_', ' ')} (of the query)",
            "",
            "| model | group | " + " | ".join([*columns, *extra]) + " |",
            "|" + "---|" * (len(columns) + len(extra) + 2),
        ]
        for name, entry in models.items():
            spreads = (entry.get("intervals") or {}).get("subgroups", {}).get(kind, {})
            for group, row in entry["subgroups"].get(kind, {}).items():
                cells = [format_cell(row.get(column)) for column in columns]
                if with_intervals:
                    spread = spreads.get(group, {})
                    cells += [_interval(spread.get("rank1")), _interval(spread.get("mAP"))]
                lines.append(f"| {name} | {group} | " + " | ".join(cells) + " |")
        lines.append("")
        lines += _format_gaps(models, kind)
    lines += _format_confusions(models)
    if report["skipped_images"]:
        lines += ["## Skipped images (unreadable)", ""]
        lines += [f"- {line}" for line in report["skipped_images"]]
        lines.append("")
    return "\n".join(lines)


def _format_confusions(models: dict) -> list[str]:
    """What tells each wrong rank-1 match apart from the query's person (sets that describe
    their people's clothing only)."""
    from reunite.evaluation.confusions import BY_KIND, COMPARED
    from reunite.evaluation.reid_eval import format_cell

    described = {name: e["confusions"] for name, e in models.items() if e.get("confusions")}
    if not described:
        return []
    fields = [f.replace("_", " ") for f in COMPARED]
    lines = [
        "## Wrong rank-1 matches: what tells the two people apart",
        "",
        "Shares of the wrong rank-1 matches whose top match is a described person. Same "
        "colours and nothing differing point to look-alikes; a differing age group, gender or "
        "kind of clothing to what the model does not see.",
        "",
        "| model | queries | wrong rank-1 | compared | same colours | nothing differs | "
        + " | ".join(f"{f} differs" for f in fields)
        + " |",
        "|" + "---|" * (len(fields) + 6),
    ]
    for name, confusions in described.items():
        rows = {"all": confusions, **confusions.get("by_" + BY_KIND, {})}
        for group, row in rows.items():
            cells = [row["wrong_rank1"], row["compared"], row["same_colours"]]
            cells += [row["nothing_differs"], *(row["differs"][f] for f in COMPARED)]
            lines.append(
                f"| {name} | {group} | " + " | ".join(format_cell(c) for c in cells) + " |"
            )
    return [*lines, ""]


def _format_intervals(models: dict) -> list[str]:
    """95 % intervals of rank-1 and mAP, and each model's paired difference from the first."""
    from reunite.evaluation.reid_eval import format_cell

    described = {name: e["intervals"] for name, e in models.items() if e.get("intervals")}
    if not described:
        return []
    first = next(iter(described.values()))
    lines = [
        f"## {first['level']:.0%} intervals (bootstrap over {first['num_identities']} query "
        f"identities, {first['resamples']} resamples)",
        "",
        "| model | rank1 | rank1 interval | mAP | mAP interval | vs first: rank1 | interval "
        "| vs first: mAP | interval |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, intervals in described.items():
        metrics = models[name]["metrics"]
        versus = intervals.get("versus") or {}
        cells = [
            format_cell(metrics["rank1"]),
            _interval(intervals["overall"]["rank1"]),
            format_cell(metrics["mAP"]),
            _interval(intervals["overall"]["mAP"]),
            _signed(versus.get("rank1")),
            _interval(versus.get("rank1_interval"), signed=True),
            _signed(versus.get("mAP")),
            _interval(versus.get("mAP_interval"), signed=True),
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _format_gaps(models: dict, kind: str) -> list[str]:
    """Each group's gap to its reference group (child - adult, night - day), with intervals,
    and where the report has them, the gaps at the reference group's mix of light."""
    gaps = {
        name: (entry.get("intervals") or {}).get("gaps", {}).get(kind, {})
        for name, entry in models.items()
    }
    adjusted = next(
        (
            gap["adjusted_for"]
            for rows in gaps.values()
            for gap in rows.values()
            if "adjusted_for" in gap
        ),
        None,
    )
    metrics = ["rank1", "mAP"] + (["rank1_adjusted", "mAP_adjusted"] if adjusted else [])
    rows = []
    for name, model_gaps in gaps.items():
        for group, gap in model_gaps.items():
            cells = [
                f"{_signed(gap.get(m))} | {_interval(gap.get(f'{m}_interval'), signed=True)}"
                for m in metrics
            ]
            rows.append(f"| {name} | {group} - {gap['reference']} | " + " | ".join(cells) + " |")
    if not rows:
        return []
    titles = ["rank1", "mAP"]
    if adjusted:
        titles += [
            f"rank1 at the reference's {adjusted} mix",
            f"mAP at the reference's {adjusted} mix",
        ]
    header = [
        "| model | gap | " + " | ".join(f"{t} | interval" for t in titles) + " |",
        "|---|---|" + "---|---|" * len(titles),
    ]
    return [*header, *rows, ""]


def _signed(value: float | None) -> str:
    return "" if value is None else f"{value:+.3f}"


def _interval(pair: list[float] | None, signed: bool = False) -> str:
    """``[0.741, 0.803]``; blank when there is none (too few identities, or not asked for)."""
    from reunite.evaluation.reid_eval import format_cell

    if pair is None:
        return ""
    show = _signed if signed else format_cell
    return f"[{show(pair[0])}, {show(pair[1])}]"


def _check_options(
    data: list[Path] | None,
    mot17: Path | None,
    rerank: bool,
    centre_cameras: bool,
    batch_size: int,
    max_queries: int | None,
    sheets: str,
    sheet_queries: int,
    bootstrap: int,
) -> None:
    if bool(data) == (mot17 is not None):
        raise InvalidOptionError("give exactly one of --data (Market-1501 layouts) or --mot17")
    folders = data or []
    resolved = [folder.resolve() for folder in folders]
    repeated = sorted({str(f) for f in folders if resolved.count(f.resolve()) > 1})
    if repeated:
        raise InvalidOptionError(f"--data names the same folder twice: {', '.join(repeated)}")
    if rerank and mot17 is not None:
        raise InvalidOptionError(
            "--rerank applies to --data only: the MOT17 sanity set is ranked per sequence"
        )
    if centre_cameras and mot17 is not None:
        raise InvalidOptionError(
            "--centre-cameras applies to --data only: the MOT17 sanity set has one camera per "
            "sequence, so there is no camera bias between query and gallery to remove"
        )
    if batch_size < 1:
        raise InvalidOptionError(f"--batch-size must be at least 1, got {batch_size}")
    if max_queries is not None and max_queries < 1:
        raise InvalidOptionError(f"--max-queries must be at least 1, got {max_queries}")
    if sheets not in SHEET_ORDERS:
        raise InvalidOptionError(f"--sheets must be 'worst' or 'random', got {sheets!r}")
    if sheet_queries < 0:
        raise InvalidOptionError(f"--sheet-queries must be 0 or more, got {sheet_queries}")
    if bootstrap < 0:
        raise InvalidOptionError(f"--bootstrap must be 0 (off) or more resamples, got {bootstrap}")


def _load_models(
    specs: Sequence[str], batch_size: int, device: str, backend: str, precision: str
) -> list[Embedder]:
    from reunite.models.registry import load_embedder

    if device != "cpu" and backend == "auto":
        backend = "torch"  # the ONNX / OpenVINO paths here are CPU ones
    choice = {"backend": backend, "precision": precision}
    return [load_embedder(spec, device=device, batch_size=batch_size, **choice) for spec in specs]


def _file_name(name: str) -> str:
    """A model name made safe as a folder name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"
