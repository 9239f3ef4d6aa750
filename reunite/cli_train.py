"""``reunite train``: train a re-ID network on a Market-1501-layout folder, resumably."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reunite.cli_common import console, progress_bars, user_errors


@user_errors
def train_command(
    data: Annotated[
        list[Path],
        typer.Option(
            help="Market-1501-layout folder (bounding_box_train/); repeat it to train on several "
            "(their identities are kept apart)."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Run folder: checkpoints, metrics, curves.")],
    arch: Annotated[
        str,
        typer.Option(
            help="osnet_x1_0 | osnet_x0_75 | osnet_x0_5 | osnet_x0_25 | "
            "resnet50_bnneck | mobilenetv2_reid"
        ),
    ] = "mobilenetv2_reid",
    epochs: Annotated[int, typer.Option(min=1)] = 60,
    width: Annotated[int, typer.Option(help="Input width in pixels.")] = 64,
    height: Annotated[int, typer.Option(help="Input height in pixels.")] = 128,
    p: Annotated[int, typer.Option(help="Identities per batch.")] = 16,
    k: Annotated[int, typer.Option(help="Images per identity in a batch.")] = 4,
    lr: Annotated[float, typer.Option(help="Peak learning rate (Adam/AMSGrad).")] = 5e-4,
    warmup: Annotated[int, typer.Option(help="Warm-up epochs.")] = 3,
    seed: int = 0,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N")] = "auto",
    amp: Annotated[
        bool | None, typer.Option("--amp/--no-amp", help="Mixed precision (default: auto).")
    ] = None,
    pretrained: Annotated[
        bool, typer.Option(help="Start from ImageNet weights where the architecture has them.")
    ] = True,
    max_images: Annotated[int | None, typer.Option(help="Use only the first N crops.")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = None,
    greyscale: Annotated[
        float, typer.Option(help="Probability of dropping a crop's colour (IR night footage).")
    ] = 0.0,
    low_resolution: Annotated[
        float, typer.Option(help="Probability of a down-then-up resize (distant people).")
    ] = 0.0,
    infrared: Annotated[
        float,
        typer.Option(
            help="Probability of simulating a near-infrared camera: a random channel mix, black "
            "level and tone curve (IR night footage)."
        ),
    ] = 0.0,
    init_from: Annotated[
        str | None,
        typer.Option(
            help="Start from these weights (new schedule): a `reunite train` checkpoint, or a "
            "PyTorch model (default, a registry name, a model folder)."
        ),
    ] = None,
    imprint: Annotated[
        bool,
        typer.Option(
            help="With --init-from on new identities: start the classifier from each identity's "
            "mean embedding (Qi et al. 2018) instead of at random."
        ),
    ] = False,
    classifier_lr_scale: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="The identity classifier's learning rate as a share of --lr (0 freezes it): "
            "keeps an imprinted classifier from drifting.",
        ),
    ] = 1.0,
    balance: Annotated[
        str | None,
        typer.Option(
            help="age_group | light: draw identities so that each group of this kind (as the "
            "data's identities.json / sequences.json say) is drawn equally often.",
        ),
    ] = None,
    attribute_loss: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Weight of an attribute loss (age group, gender, clothing, carried things, from "
            "each folder's identities.json, as `reunite synth reid` writes it); 0: off.",
        ),
    ] = 0.0,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Discard the run in --out.")] = False,
) -> None:
    """Train with identity + triplet loss; a checkpoint after every epoch, resumable."""
    from reunite.errors import InvalidOptionError
    from reunite.training.trainer import BALANCE_KINDS, TrainConfig, Trainer

    if balance is not None and balance not in BALANCE_KINDS:
        known = ", ".join(BALANCE_KINDS)
        raise InvalidOptionError(f"--balance must be one of {known}, got {balance!r}")
    config = TrainConfig(
        data=data, out=out, architecture=arch, epochs=epochs, input_size=(width, height),
        p=p, k=k, lr=lr, warmup_epochs=warmup, seed=seed, device=device, amp=amp,
        pretrained=pretrained, max_images=max_images, threads=threads, init_from=init_from,
        greyscale=greyscale, low_resolution=low_resolution, infrared=infrared, imprint=imprint,
        classifier_lr_scale=classifier_lr_scale, balance=balance,
        attribute_loss=attribute_loss,
    )  # fmt: skip
    with progress_bars() as progress:
        tasks: dict[str, int] = {}

        def report(stage: str, done: int, total: int, info: dict[str, float]) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            label = stage
            if info:
                label = f"{stage} epoch {info['epoch']:.0f} loss {info['loss']:.3f}"
            progress.update(tasks[stage], completed=done, total=total, description=label)

        summary = Trainer(config, report).run(resume=resume, overwrite=overwrite)
    final = summary["final"]
    if summary["skipped_images"]:
        console.print(f"skipped {len(summary['skipped_images'])} unreadable images")
    console.print(
        f"trained {arch} on {summary['train_images']} crops of {summary['identities']} "
        f"identities: epoch {final.get('epoch')}, loss {final.get('loss', float('nan')):.3f}, "
        f"accuracy {final.get('accuracy', float('nan')):.3f}; checkpoint {summary['checkpoint']}"
    )
