"""The model card (``card.json``): what a re-ID model is, how to feed it, how good it is and
where it came from. Every model folder holds one beside its weights; the registry reads them."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from reunite.errors import ModelCardError
from reunite.models.preprocessing import Preprocessing

CARD_FILE = "card.json"
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class ModelCard(BaseModel):
    """What a model is, how to feed it, how good it is and where it came from (``card.json``).

    ``weights`` and ``extra_files`` (companions such as OpenVINO's ``.bin``, name -> sha256) are
    file names inside the card's folder; ``weights_format`` says how a PyTorch file is laid out:
    ``state_dict`` (the default: a plain state dict without classifier keys, loaded strictly) or
    ``torchreid`` (a torchreid checkpoint). ``metrics`` holds, per data set, fractions in 0..1;
    ``threshold`` a calibrated "same person" cosine distance with the FPR/TPR it gave and on which
    data.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=MODEL_NAME.pattern)
    version: str = "1.0.0"
    architecture: str
    preprocessing: Preprocessing
    embedding_dim: int = Field(gt=0)
    weights: str | None = None
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    weights_format: Literal["state_dict", "torchreid"] | None = None
    extra_files: dict[str, str] = {}
    licence: str
    description: str
    training: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    threshold: dict[str, Any] | None = None
    source_url: str | None = None
    flip: bool = False

    @field_validator("weights")
    @classmethod
    def _plain_file_name(cls, value: str | None) -> str | None:
        if value is not None and (Path(value).name != value or value in ("", ".", "..")):
            raise ValueError(f"must be a file name inside the card's folder, got {value!r}")
        return value

    @field_validator("extra_files")
    @classmethod
    def _plain_extra_files(cls, value: dict[str, str]) -> dict[str, str]:
        for name, digest in value.items():
            cls._plain_file_name(name)
            if not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise ValueError(f"{name}: {digest!r} is not a lower-case hex sha256")
        return value

    @classmethod
    def read(cls, folder: Path) -> ModelCard:
        """The card in ``folder``; ModelCardError names the file and what is wrong with it."""
        path = Path(folder) / CARD_FILE
        try:
            return cls.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise ModelCardError(f"no {CARD_FILE} in {folder}") from None
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'card'}: {e['msg']}" for e in error.errors()
            )
            raise ModelCardError(f"{path} is not a valid model card: {problems}") from error

    def write(self, folder: Path) -> Path:
        """Write ``card.json`` into ``folder`` atomically (a reader never sees half a card)."""
        return write_atomically(Path(folder) / CARD_FILE, self.model_dump_json(indent=2) + "\n")

    def headline(self) -> tuple[str, dict[str, Any]] | None:
        """The first data set in ``metrics`` that has a rank-1, with its figures."""
        return next(
            ((data, m) for data, m in self.metrics.items() if isinstance(m, dict) and "rank1" in m),
            None,
        )


def write_atomically(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename: readers never see half."""
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temp, path)
    finally:
        Path(temp).unlink(missing_ok=True)
    return path
