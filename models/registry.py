"""Every re-ID model by name: its card, where its files are, and how to turn it into an Embedder.

A model is a folder holding ``card.json`` (a ``ModelCard``) beside its weights. Folders are found,
in this order, under the extra roots a caller gives, the user's ``<data_dir>/models/`` (where
``pull`` puts downloads) and the zoo shipped in the package (``models/zoo/``). Two weight-free
baselines are built in, and a few published third-party models are listed as downloadable until
pulled. ``load_embedder`` also takes plain files (ONNX, OpenVINO IR, torchreid and ``reunite
train`` checkpoints), so every tool accepts the same ``--model`` values.

Every weights file is checked against the sha256 its card records before it is loaded: a model
that is corrupt, truncated or silently replaced fails loudly instead of embedding badly.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import ValidationError

from reunite.errors import (
    CheckpointMismatchError,
    InvalidOptionError,
    ModelCardError,
    ModelIntegrityError,
    ModelNotFoundError,
    ReuniteError,
    UnreadableCheckpointError,
)
from reunite.models.architectures import TRAIN_CHECKPOINT_FORMAT
from reunite.models.catalogue import BUILT_IN, PUBLISHED
from reunite.models.color_histogram import ColorHistogramEmbedder
from reunite.models.download import ProgressHook, download, sha256_of
from reunite.models.embedder import Embedder
from reunite.models.export import export_record
from reunite.models.model_card import CARD_FILE, MODEL_NAME, ModelCard
from reunite.models.preprocessing import OPENVINO_OMZ, TORCHREID, Preprocessing

if TYPE_CHECKING:  # torch loads lazily: listing and showing cards stays fast
    from torch import nn

log = logging.getLogger(__name__)

ZOO_DIR = Path(__file__).resolve().parent / "zoo"
# The shipped model every tool uses unless told otherwise (``--model default``); see its card.
DEFAULT_MODEL = "reunite-mobilenetv2-synth"
WEIGHTS_FILE = "weights.pt"
CHECKPOINT_SUFFIXES = (".pth.tar", ".pth", ".pt", ".tar", ".ckpt")
NON_TORCH_ARCHITECTURES = ("onnx", "openvino", "color_histogram")
# The runtime a model runs on when none is asked for, and those that can read its files.
_NATIVE_BACKEND = {"onnx": "onnxruntime", "openvino": "openvino", "color_histogram": "none"}
_RUNTIMES_OF = {
    "onnx": ("onnxruntime", "openvino"),
    "openvino": ("openvino",),
    "color_histogram": ("none", "torch", "onnxruntime", "openvino"),
}
ACCEPTED_FILES = (
    "a folder holding card.json, an ONNX model (.onnx), an OpenVINO IR model (.xml beside its "
    ".bin), a torchreid OSNet checkpoint (.pth, .pth.tar) or a `reunite train` checkpoint"
)


@dataclass(frozen=True)
class RegistryEntry:
    """A name the registry knows. ``folder`` is set for installed models."""

    card: ModelCard
    status: Literal["built-in", "installed", "downloadable"]
    folder: Path | None = None

    @property
    def installed(self) -> bool:
        return self.status != "downloadable"


@dataclass(frozen=True)
class PullResult:
    card: ModelCard
    folder: Path
    installed_now: bool = True
    """False when the model was installed before (its files were verified, nothing changed)."""
    downloaded: list[str] = field(default_factory=list)
    """Files fetched by this pull (others were already in place)."""
    unpinned: list[str] = field(default_factory=list)
    """Files with no published checksum: verified by loading them, their sha256 now pinned."""


# --- the registry ------------------------------------------------------------------------------


class Registry:
    """Looks models up by name across the card folders, the built-ins and the published list.

    ``roots`` are searched first (tests, a team's shared model folder), then
    ``<data_dir>/models`` when ``data_dir`` is given, then the shipped zoo.
    """

    def __init__(
        self,
        roots: Sequence[str | Path] = (),
        data_dir: str | Path | None = None,
        zoo: Path | None = ZOO_DIR,
    ) -> None:
        self.user_dir = Path(data_dir) / "models" if data_dir is not None else None
        self.roots = [Path(r) for r in roots]
        self.roots += [d for d in (self.user_dir, zoo) if d is not None]

    @classmethod
    def default(cls) -> Registry:
        """The registry the CLI uses: the user folder of the current ``Settings``, the zoo."""
        from reunite.config import Settings

        return cls(data_dir=Settings().data_dir)

    def find(self, name: str) -> RegistryEntry | None:
        """The entry called ``name``, or None; an installed model whose card is broken raises."""
        if not MODEL_NAME.fullmatch(name):
            return None
        if name in BUILT_IN:
            return RegistryEntry(BUILT_IN[name][0], "built-in")
        for root in self.roots:
            folder = root / name
            if (folder / CARD_FILE).is_file():
                card = ModelCard.read(folder)
                if card.name != name:
                    raise ModelCardError(
                        f"{folder / CARD_FILE} names the model {card.name!r} but its folder is "
                        f"{name!r}; rename one so that they agree"
                    )
                return RegistryEntry(card, "installed", folder)
        if name in PUBLISHED:
            return RegistryEntry(PUBLISHED[name].card, "downloadable")
        return None

    def get(self, name: str) -> RegistryEntry:
        entry = self.find(name)
        if entry is None:
            raise ModelNotFoundError(f"no model called {name!r}; known: {', '.join(self.names())}")
        return entry

    def names(self) -> list[str]:
        """Every name, built-ins first, each once (an installed copy hides a published one)."""
        installed = (p.name for root in self.roots for p in _card_folders(root))
        return list(dict.fromkeys([*BUILT_IN, *installed, *PUBLISHED]))

    def entries(self) -> list[RegistryEntry]:
        """One entry per name; a folder with a broken card is logged and left out."""
        found = []
        for name in self.names():
            try:
                entry = self.find(name)
            except ModelCardError as error:
                log.warning("skipping %s: %s", name, error)
                continue
            if entry is not None:
                found.append(entry)
        return found

    def load(
        self,
        name: str,
        *,
        device: str = "cpu",
        batch_size: int = 64,
        preprocessing: Preprocessing | None = None,
        backend: str | None = None,
        precision: str | None = None,
    ) -> Embedder:
        """The embedder called ``name``, its files verified first; ``backend``/``precision`` as
        ``load_card_model`` takes them (both None: the runtime the model comes in)."""
        entry = self.get(name)
        if entry.status == "built-in":
            return BUILT_IN[name][1]()  # weight-free: no runtime to choose
        if entry.folder is None:
            raise ModelNotFoundError(
                f"model {name!r} is not installed; download it with `reunite models pull {name}`"
            )
        return load_card_model(
            entry.card,
            entry.folder,
            backend=backend,
            precision=precision,
            registry=self,
            device=device,
            batch_size=batch_size,
            preprocessing=preprocessing,
        )

    def pull(
        self,
        name: str,
        *,
        force: bool = False,
        url_base: str | None = None,
        progress: Callable[[str], ProgressHook] | None = None,
        timeout: float = 30.0,
    ) -> PullResult:
        """Install a published model into ``<data_dir>/models/<name>/``.

        Files already there (an earlier, interrupted pull, or placed by hand where there is no
        internet) are kept when their checksum matches; ``force`` downloads everything again.
        ``url_base`` replaces the address of each file's folder (a mirror, a local server).
        The model is loaded once before its card is written, so a card only appears for a model
        that works; files without a published checksum that fail that load are removed.
        ``progress(file name)`` gives the hook that follows that file's download.
        """
        if self.user_dir is None:
            raise InvalidOptionError("this registry has no data folder to install models into")
        if name not in PUBLISHED:
            raise ModelNotFoundError(
                f"{name!r} is not a downloadable model; downloadable: {', '.join(PUBLISHED)}"
                + (" (built-in and installed models need no pull)" if self.find(name) else "")
            )
        published = PUBLISHED[name]
        folder = self.user_dir / name
        if force:
            (folder / CARD_FILE).unlink(missing_ok=True)
        elif (folder / CARD_FILE).is_file():
            card = ModelCard.read(folder)
            verify_files(card, folder, hint=f"run `reunite models pull {name} --force`")
            return PullResult(card, folder, installed_now=False)

        checksums: dict[str, str] = {}
        downloaded: list[str] = []
        for remote in published.files:
            dest = folder / remote.name
            if not force and dest.is_file():
                digest = sha256_of(dest)
                if remote.sha256 in (None, digest):
                    checksums[remote.name] = digest
                    continue
            url = f"{url_base.rstrip('/')}/{remote.name}" if url_base else remote.url
            hook = progress(remote.name) if progress else None
            checksums[remote.name] = download(
                url, dest, sha256=remote.sha256, progress=hook, timeout=timeout
            )
            downloaded.append(remote.name)

        weights, *extra = published.files
        card = published.card.model_copy(
            update={
                "sha256": checksums[weights.name],
                "extra_files": {f.name: checksums[f.name] for f in extra},
                "source_url": f"{url_base.rstrip('/')}/{weights.name}"
                if url_base and weights.name in downloaded
                else published.card.source_url,
            }
        )
        unpinned = [f.name for f in published.files if f.sha256 is None]
        try:
            embedder_from_card(card, folder, batch_size=1)
        except ReuniteError as error:
            for file in unpinned:
                (folder / file).unlink(missing_ok=True)
            removed = f" ({', '.join(unpinned)} removed)" if unpinned else ""
            raise type(error)(f"the files of {name} do not load{removed}: {error}") from error
        card.write(folder)
        return PullResult(card, folder, downloaded=downloaded, unpinned=unpinned)


def _card_folders(root: Path) -> Iterator[Path]:
    if root.is_dir():
        yield from sorted(p for p in root.iterdir() if (p / CARD_FILE).is_file())


def card_weights(spec: str, registry: Registry | None = None) -> tuple[ModelCard, dict]:
    """The float32 weights of a PyTorch card model (``default``, a registry name or a folder
    holding ``card.json``), verified against the card's sha256: where a fine-tuning run starts,
    so that a shipped model can be trained further without the checkpoint it was exported from.
    """
    registry = registry or Registry.default()
    text = DEFAULT_MODEL if spec == "default" else spec
    entry = registry.find(text)
    if entry is not None:
        if entry.folder is None:
            pull = "" if entry.installed else f"; download them: `reunite models pull {text}`"
            raise ModelNotFoundError(
                f"{text} is {entry.status}: it has no weights here to start from{pull}"
            )
        card, folder = entry.card, entry.folder
    elif (Path(text).expanduser() / CARD_FILE).is_file():
        folder = Path(text).expanduser()
        card = ModelCard.read(folder)
    else:
        raise ModelNotFoundError(
            f"no model {text!r} to start from: not a checkpoint file, a registry name or a folder "
            f"with {CARD_FILE}. Registry names: {', '.join(registry.names())}"
        )
    if card.weights is None or card.weights_format != "state_dict":
        raise ModelCardError(
            f"{card.name} is a {card.architecture} model without PyTorch weights in the state-dict "
            "layout (a `reunite train` export); only such a model can start a training run"
        )
    verify_files(card, folder)
    state = _read_checkpoint(folder / card.weights)
    if not isinstance(state, dict):
        raise UnreadableCheckpointError(f"{folder / card.weights} holds no state dict")
    return card, {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


# --- from a card to an embedder ------------------------------------------------------------------


def verify_files(card: ModelCard, folder: Path, hint: str | None = None) -> None:
    """Check every file the card names against its sha256: present, complete, unchanged."""
    files = dict(card.extra_files)
    if card.weights is not None:
        files = {card.weights: card.sha256, **files}
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            raise ModelIntegrityError(
                f"{path} is missing; the card of {card.name} needs it"
                + (f" ({hint})" if hint else "")
            )
        actual = sha256_of(path)
        if expected is None:
            raise ModelCardError(
                f"{folder / CARD_FILE} gives no sha256 for {name}, so it cannot be verified; "
                f'if you trust the file, add "sha256": "{actual}" to the card'
            )
        if actual != expected:
            raise ModelIntegrityError(
                f"{path} is corrupt, truncated or replaced: its sha256 is {actual}, the card of "
                f"{card.name} expects {expected}; restore the file"
                + (f" or {hint}" if hint else "")
            )


def embedder_from_card(
    card: ModelCard,
    folder: Path,
    *,
    device: str = "cpu",
    batch_size: int = 64,
    preprocessing: Preprocessing | None = None,
    backend: str | None = None,
    precision: str | None = None,
) -> Embedder:
    """Verify the card's files, build its embedder and check it gives ``embedding_dim``.

    ``device`` is a torch device for PyTorch models; OpenVINO gets its upper-case form (``cpu``
    -> ``CPU``); ONNX models run on the CPU. ``backend`` picks the runtime among those that read
    the card's files (an ONNX file runs in ONNX Runtime or OpenVINO), None the usual one;
    ``precision`` is the arithmetic (bf16: OpenVINO's hint or PyTorch autocast); a graph
    quantised by ``reunite models export --int8`` is int8 whatever is asked.
    """
    folder = Path(folder)
    verify_files(card, folder)
    prep = preprocessing or card.preprocessing
    weights = folder / card.weights if card.weights else None
    exported = export_record(card)
    if exported is not None and exported.get("precision") == "int8":
        precision = "int8"
    runtime = backend or _NATIVE_BACKEND.get(card.architecture, "torch")
    if card.architecture == "color_histogram":
        embedder: Embedder = ColorHistogramEmbedder()
    elif weights is None:
        raise ModelCardError(f"{folder / CARD_FILE} names no weights for {card.architecture!r}")
    elif runtime not in _RUNTIMES_OF.get(card.architecture, ("torch",)):
        runs_on = " or ".join(_RUNTIMES_OF.get(card.architecture, ("torch",)))
        raise InvalidOptionError(
            f"{card.name} is a {card.architecture} model: it runs on {runs_on}, not {runtime}"
            + (
                f"; export it first (`reunite models export {card.name} --format onnx`)"
                if runtime != "torch"
                else ""
            )
        )
    elif runtime == "onnxruntime":
        embedder = _onnx_embedder(weights, prep, batch_size, card.name)
        embedder.precision = precision or "fp32"  # type: ignore[attr-defined]
    elif runtime == "openvino":
        from reunite.models.openvino_reid import OpenVinoReidEmbedder

        embedder = OpenVinoReidEmbedder(
            weights,
            prep,
            device=device.upper(),
            batch_size=batch_size,
            name=card.name,
            precision=precision or "fp32",
        )
    else:
        network = _network_for(card.architecture, folder)
        if card.weights_format == "torchreid":
            from reunite.models.osnet_weights import load_torchreid_checkpoint

            load_torchreid_checkpoint(network, weights)
        else:
            _load_state_dict(network, _read_checkpoint(weights), weights)
        embedder = _torch_embedder(network, prep, card.name, batch_size, device, card.flip)
        if precision == "bf16":
            from reunite.models.backends import AutocastEmbedder

            embedder = AutocastEmbedder(embedder)
            embedder.name = f"{card.name} (bf16)"  # reports and caches must tell it from fp32
    if embedder.dim != card.embedding_dim:
        raise ModelCardError(
            f"{folder / CARD_FILE} says embedding_dim {card.embedding_dim} but the model gives "
            f"{embedder.dim}-d embeddings; correct the card"
        )
    return embedder


def _network_for(architecture: str, folder: Path) -> nn.Module:
    from reunite.models.architectures import BUILDERS, build_network

    if architecture not in BUILDERS:
        known = ", ".join([*BUILDERS, *NON_TORCH_ARCHITECTURES])
        raise ModelCardError(
            f"{folder / CARD_FILE}: unknown architecture {architecture!r}; known: {known}"
        )
    return build_network(architecture, num_classes=0)


def _onnx_embedder(path: Path, prep: Preprocessing, batch_size: int, name: str) -> Embedder:
    from reunite.models.onnx_reid import OnnxReidEmbedder

    return OnnxReidEmbedder(
        path,
        input_size=prep.input_size,
        channel_order=prep.channel_order,
        scale=prep.scale,
        mean=prep.mean,
        std=prep.std,
        batch_size=batch_size,
        name=name,
    )


def _torch_embedder(
    network: nn.Module,
    prep: Preprocessing,
    name: str,
    batch_size: int,
    device: str,
    flip: bool = False,
) -> Embedder:
    from reunite.models.torch_reid import TorchReidEmbedder

    try:
        return TorchReidEmbedder(
            network, prep, name, batch_size=batch_size, device=device, flip=flip
        )
    except (RuntimeError, AssertionError) as error:  # torch's answers to a device it lacks
        raise InvalidOptionError(f"cannot run {name} on device {device!r}: {error}") from error


def _read_checkpoint(path: Path) -> object:
    """A torch file's content, read without running code (numpy scalars allowed)."""
    from reunite.models.osnet_weights import read_torch_file  # one reader for every .pt

    return read_torch_file(path)


def _load_state_dict(network: nn.Module, state: object, path: Path) -> None:
    """Strict load of a plain state dict (classifier keys dropped); errors name the keys."""
    if not isinstance(state, dict):
        raise UnreadableCheckpointError(f"{path} holds a {type(state).__name__}, not a state dict")
    body = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    expected = network.state_dict()
    problems = {
        "missing": [k for k in expected if k not in body],
        "unexpected": [k for k in body if k not in expected],
        "with another shape": [
            f"{k} {tuple(v.shape)} (network {tuple(expected[k].shape)})"
            for k, v in body.items()
            if k in expected and getattr(v, "shape", None) != expected[k].shape
        ],
    }
    if any(problems.values()):
        raise CheckpointMismatchError(
            f"{path} does not fit {getattr(network, 'arch', type(network).__name__)}: "
            + "; ".join(
                f"{len(keys)} {what}: {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
                for what, keys in problems.items()
                if keys
            )
        )
    network.load_state_dict(body, strict=True)


# --- backends -----------------------------------------------------------------------------------


def load_card_model(
    card: ModelCard,
    folder: Path,
    *,
    backend: str | None = None,
    precision: str | None = None,
    registry: Registry | None = None,
    device: str = "cpu",
    batch_size: int = 64,
    preprocessing: Preprocessing | None = None,
) -> Embedder:
    """The card model on ``backend`` in ``precision`` (see ``reunite.models.backends``).

    Both None: the runtime the model comes in (PyTorch for a PyTorch model). Otherwise ``None``
    or ``auto`` mean the measured defaults. A PyTorch model on ONNX Runtime or OpenVINO runs its
    export (``reunite.models.export``): found in the registry's folders when current, made now
    for fp32 (kept in ``<data_dir>/models`` when that data folder exists, in memory otherwise),
    never made here for int8, which needs calibration crops: InvalidOptionError then says how.
    """
    options = {"device": device, "batch_size": batch_size, "preprocessing": preprocessing}
    if (backend is None and precision is None) or card.architecture == "color_histogram":
        return embedder_from_card(card, folder, **options)
    from reunite.models.backends import check_choice

    backend, precision = check_choice(backend, precision)
    if card.architecture in NON_TORCH_ARCHITECTURES or backend == "torch":
        return embedder_from_card(card, folder, backend=backend, precision=precision, **options)
    from reunite.models.export import export_name

    fmt = "onnx" if backend == "onnxruntime" else "openvino"
    embedder = _exported_embedder(card, folder, backend, fmt, precision, registry, options)
    # named by what computes it (NAME.openvino-bf16), not by the file it read: OpenVINO runs the
    # ONNX export, and in bf16 from fp32 weights; reports and caches must tell those runs apart
    embedder.name = export_name(card.name, fmt, precision)
    return embedder


def _exported_embedder(
    card: ModelCard,
    folder: Path,
    backend: str,
    fmt: str,
    precision: str,
    registry: Registry | None,
    options: dict,
) -> Embedder:
    """The ``fmt`` export of ``card`` that ``backend`` runs: a current one from the registry's
    folders, or one made now (fp32 only; see ``load_card_model``)."""
    from reunite.models.export import export_card_model, export_name, is_current

    stored = "int8" if precision == "int8" else "fp32"
    name = export_name(card.name, fmt, stored)
    usable = [name] if fmt == "onnx" else [name, export_name(card.name, "onnx", stored)]
    registry = registry or Registry.default()
    for candidate in (root / n for n in usable for root in registry.roots):  # OpenVINO reads ONNX
        if (candidate / CARD_FILE).is_file():
            exported = ModelCard.read(candidate)
            if is_current(exported, card):
                return embedder_from_card(
                    exported, candidate, backend=backend, precision=precision, **options
                )
            log.info("%s is stale (made from other weights of %s)", candidate, card.name)
    if stored == "int8":
        raise InvalidOptionError(
            f"no current int8 export of {card.name} for {backend}: make one with `reunite models "
            f"export {card.name} --format {fmt} --int8 --calibration DIR` (DIR: person crops)"
        )
    user_dir = registry.user_dir
    if user_dir is not None and user_dir.parent.is_dir():
        from filelock import FileLock

        user_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(user_dir / f".{name}.lock")):
            target = user_dir / name
            if (target / CARD_FILE).is_file() and is_current(ModelCard.read(target), card):
                result_folder, result_card = target, ModelCard.read(target)
            else:
                log.info("exporting %s to %s (once)", card.name, target)
                result = export_card_model(card, folder, fmt, user_dir, overwrite=True)
                result_folder, result_card = result.folder, result.card
        return embedder_from_card(
            result_card, result_folder, backend=backend, precision=precision, **options
        )
    with tempfile.TemporaryDirectory(prefix="reunite-export-") as temp:  # read once, then gone
        result = export_card_model(card, folder, fmt, Path(temp))
        return embedder_from_card(
            result.card, result.folder, backend=backend, precision=precision, **options
        )


# --- any spec to an embedder -------------------------------------------------------------------


def load_embedder(
    spec: str | Path,
    *,
    device: str = "cpu",
    batch_size: int = 64,
    preprocessing: Preprocessing | None = None,
    registry: Registry | None = None,
    backend: str | None = None,
    precision: str | None = None,
) -> Embedder:
    """The embedder a ``--model`` value names, tried in this order: ``default`` (the shipped
    ``DEFAULT_MODEL``), a registry name (built-in,
    shipped, pulled), a folder holding ``card.json``, an ``.onnx`` file (TORCHREID preprocessing
    unless given), an OpenVINO ``.xml`` (OPENVINO_OMZ unless given), or a PyTorch checkpoint: a
    ``reunite train`` checkpoint (recognised by its ``format`` key) or a torchreid OSNet one
    (width read from the weights). ``registry`` defaults to ``Registry.default()``.

    ``backend`` (torch, onnxruntime, openvino, auto) and ``precision`` (fp32, bf16, int8, auto)
    choose the runtime (see ``load_card_model``); both None keep the model's own. Loose
    checkpoints run on PyTorch only: save them as a model folder to export them.
    """
    registry = registry or Registry.default()
    text = DEFAULT_MODEL if str(spec) == "default" else str(spec)
    choice = {"backend": backend, "precision": precision}
    entry = registry.find(text)
    if entry is not None:
        return registry.load(
            text, device=device, batch_size=batch_size, preprocessing=preprocessing, **choice
        )
    path = Path(text).expanduser()
    options = {"device": device, "batch_size": batch_size, "preprocessing": preprocessing}
    if path.is_dir():
        if not (path / CARD_FILE).is_file():
            raise ModelNotFoundError(f"{path} is a folder without {CARD_FILE}: not a model folder")
        return load_card_model(ModelCard.read(path), path, registry=registry, **choice, **options)
    if path.is_file():
        name = path.name.lower()
        chosen = None
        if backend is not None or precision is not None:
            from reunite.models.backends import check_choice

            chosen = check_choice(backend, precision)
        if name.endswith(".onnx"):
            prep = preprocessing or TORCHREID
            if chosen is not None and chosen[0] == "openvino":
                from reunite.models.openvino_reid import OpenVinoReidEmbedder

                return OpenVinoReidEmbedder(
                    path, prep, batch_size=batch_size, name=path.stem, precision=chosen[1]
                )
            if chosen is not None and chosen != ("onnxruntime", "fp32"):
                raise InvalidOptionError(
                    f"{path.name} runs on onnxruntime in fp32 or on openvino, not {chosen[0]} "
                    f"{chosen[1]}"
                )
            return _onnx_embedder(path, prep, batch_size, path.stem)
        if name.endswith(".xml"):
            from reunite.models.openvino_reid import OpenVinoReidEmbedder

            if chosen is not None and chosen[0] != "openvino":
                raise InvalidOptionError(f"{path.name} is OpenVINO IR: it runs on openvino only")
            prep = preprocessing or OPENVINO_OMZ
            return OpenVinoReidEmbedder(
                path,
                prep,
                device=device.upper(),
                batch_size=batch_size,
                precision=chosen[1] if chosen else "fp32",
            )
        if name.endswith(CHECKPOINT_SUFFIXES):
            automatic = backend in (None, "auto") and precision in (None, "auto")
            if not automatic and chosen != ("torch", "fp32"):
                raise InvalidOptionError(
                    f"{path.name} is a loose PyTorch checkpoint: it runs on torch in fp32; save "
                    "it as a model folder (card.json) to run it on another backend"
                )
            return _checkpoint_embedder(path, **options)
        raise ModelNotFoundError(
            f"{path} is not a model file this tool reads; it takes a registry name, "
            f"{ACCEPTED_FILES}"
        )
    raise ModelNotFoundError(
        f"no model {text!r}: not a registry name, nor an existing file or folder. Registry names: "
        f"{', '.join(registry.names())}; files: {ACCEPTED_FILES}"
    )


def _checkpoint_embedder(
    path: Path, *, device: str, batch_size: int, preprocessing: Preprocessing | None
) -> Embedder:
    name = path.name
    for suffix in CHECKPOINT_SUFFIXES:
        name = name.removesuffix(suffix)
    content = _read_checkpoint(path)
    if isinstance(content, dict) and "format" in content:
        return _train_checkpoint_embedder(path, content, name, device, batch_size, preprocessing)
    from reunite.models.architectures import build_network
    from reunite.models.osnet_weights import infer_osnet_arch, load_torchreid_checkpoint

    state = content.get("state_dict", content) if isinstance(content, dict) else content
    if not isinstance(state, dict):
        raise UnreadableCheckpointError(
            f"{path} holds a {type(state).__name__}; expected a torchreid checkpoint or a "
            f"`reunite train` checkpoint"
        )
    network = build_network(infer_osnet_arch(state))
    load_torchreid_checkpoint(network, path)
    return _torch_embedder(network, preprocessing or TORCHREID, name, batch_size, device)


def _train_checkpoint_embedder(
    path: Path,
    content: dict,
    name: str,
    device: str,
    batch_size: int,
    preprocessing: Preprocessing | None,
) -> Embedder:
    if content["format"] != TRAIN_CHECKPOINT_FORMAT:
        raise UnreadableCheckpointError(
            f"{path} is a {content['format']!r} checkpoint; this version of Reunite reads "
            f"{TRAIN_CHECKPOINT_FORMAT!r}"
        )
    missing = [k for k in ("architecture", "preprocessing", "model") if k not in content]
    if missing:
        raise UnreadableCheckpointError(f"{path} is a training checkpoint without {missing}")
    network = _network_for(str(content["architecture"]), path.parent)
    _load_state_dict(network, content["model"], path)
    try:
        prep = preprocessing or Preprocessing.model_validate(content["preprocessing"])
    except ValidationError as error:
        raise UnreadableCheckpointError(f"{path}: invalid preprocessing: {error}") from error
    return _torch_embedder(network, prep, name, batch_size, device)


# --- saving a trained model --------------------------------------------------------------------


def save_card_model(folder: str | Path, network: nn.Module, card: ModelCard) -> ModelCard:
    """Write ``weights.pt`` (the state dict without classifier keys) and ``card.json``.

    The weights are checked first: they must load strictly into ``card.architecture`` and give
    ``card.embedding_dim``-d embeddings. Returns the card as written, with ``weights`` and
    ``sha256`` filled in.
    """
    import torch

    folder = Path(folder)
    state = {
        k: v.detach().cpu().clone()
        for k, v in network.state_dict().items()
        if not k.startswith("classifier.")
    }
    check = _network_for(card.architecture, folder)
    _load_state_dict(check, state, folder / WEIGHTS_FILE)
    width, height = card.preprocessing.input_size
    with torch.inference_mode():
        dim = int(check.eval()(torch.zeros(2, 3, height, width)).shape[1])
    if dim != card.embedding_dim:
        raise ModelCardError(
            f"card {card.name} says embedding_dim {card.embedding_dim} but {card.architecture} "
            f"gives {dim}-d embeddings"
        )
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / WEIGHTS_FILE
    handle, temp = tempfile.mkstemp(dir=folder, prefix=f".{WEIGHTS_FILE}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            torch.save(state, out)
        os.replace(temp, weights)
    finally:
        Path(temp).unlink(missing_ok=True)
    card = card.model_copy(
        update={
            "weights": WEIGHTS_FILE,
            "sha256": sha256_of(weights),
            "weights_format": "state_dict",
        }
    )
    card.write(folder)
    return card
