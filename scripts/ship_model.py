"""Turn a ``reunite train`` checkpoint into a shipped model: weights + model card in models/zoo.

The card carries what a user needs to trust the model: the exact training command and data,
the metrics of ``reunite eval`` on a held-out synthetic split (overall and per subgroup) and on
the real MOT17 sanity set, and the calibrated "same person" threshold. Usage:

    python scripts/ship_model.py CHECKPOINT --name NAME --synthetic REPORT.json \
        [--mot17 REPORT.json] [--calibration REPORT.json] --command "reunite train ..."

where the reports are ``metrics.json`` files written by ``reunite eval --out``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from reunite.models.preprocessing import Preprocessing
from reunite.models.registry import ZOO_DIR, ModelCard, save_card_model
from reunite.training.trainer import checkpoint_network, load_checkpoint

KEEP = ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP", "tpr@1e-3", "tpr@1e-4",
        "num_query", "num_gallery")  # fmt: skip


def _model_result(report: dict, name: str) -> dict:
    models = report["models"]
    if name not in models:
        raise SystemExit(f"no model {name!r} in the report; it has {', '.join(models)}")
    return models[name]


def main(
    checkpoint: Path,
    name: Annotated[str, typer.Option()],
    synthetic: Annotated[Path, typer.Option(help="metrics.json of reunite eval (synthetic)")],
    command: Annotated[str, typer.Option(help="the exact training command")],
    report_name: Annotated[str, typer.Option(help="the model's name inside the reports")],
    mot17: Annotated[Path | None, typer.Option(help="metrics.json of reunite eval --mot17")] = None,
    calibration: Annotated[
        Path | None,
        typer.Option(help="metrics.json on a separate validation split for the threshold"),
    ] = None,
    train_seconds: Annotated[float | None, typer.Option()] = None,
    hardware: Annotated[str, typer.Option()] = "2-core x86-64 CPU (AVX-512 BF16), no GPU",
    version: Annotated[str, typer.Option()] = "1.0.0",
) -> None:
    state = load_checkpoint(checkpoint)
    network = checkpoint_network(state)
    preprocessing = Preprocessing(**state["preprocessing"])
    config = state["config"]
    synth_report = json.loads(synthetic.read_text())
    synth = _model_result(synth_report, report_name)
    metrics = {
        "synthetic_test": {
            "data": synth_report["data"],
            **{k: synth["metrics"][k] for k in KEEP if k in synth["metrics"]},
            "subgroups": synth.get("subgroups", {}),
            "baselines": {
                other: {k: r["metrics"][k] for k in ("rank1", "mAP")}
                for other, r in synth_report["models"].items()
                if other != report_name
            },
        }
    }
    if mot17:
        mot_report = json.loads(mot17.read_text())
        mot = _model_result(mot_report, report_name)
        metrics["mot17_sanity"] = {
            k: mot["metrics"][k]
            for k in ("rank1", "rank5", "mAP", "num_query")
            if k in mot["metrics"]
        }
    # The alert threshold is fitted on a validation split, not on the split that reports it.
    calibration_report = json.loads(calibration.read_text()) if calibration else synth_report
    threshold = _model_result(calibration_report, report_name).get("threshold")
    card = ModelCard(
        name=name,
        version=version,
        architecture=state["architecture"],
        preprocessing=preprocessing,
        embedding_dim=network.feature_dim,
        licence="Apache-2.0 (weights trained by the Reunite project on its own synthetic data)",
        description=(
            f"{state['architecture']} re-ID network trained by `reunite train` on the project's "
            "synthetic multi-camera CCTV world (all ages, day and night); the default embedder."
        ),
        training={
            "command": command,
            "data": config["data"],
            "seed": config["seed"],
            "epochs": state["epoch"],
            "identities": state["num_classes"],
            "input_size": list(preprocessing.input_size),
            "seconds": train_seconds,
            "hardware": hardware,
            "checkpoint_format": state["format"],
        },
        metrics=metrics,
        threshold=threshold,
    )
    folder = ZOO_DIR / name
    saved = save_card_model(folder, network, card)
    typer.echo(f"wrote {folder} (sha256 {saved.sha256})")


if __name__ == "__main__":
    typer.run(main)
