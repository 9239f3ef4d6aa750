"""Output folders that appear complete or not at all.

A generator writes into a hidden temporary sibling and renames it into place at the end, so an
interrupted run (a crash, Ctrl-C, a full disk) never leaves a half-written folder that looks done.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from reunite.errors import DiskFullError, OutputExistsError


def check_output_dir(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out} exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise OutputExistsError(f"{out} exists and is not empty (use --overwrite to replace it)")


def check_free_space(folder: Path, needed_bytes: int) -> None:
    probe = folder if folder.exists() else folder.parent
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed_bytes:
        raise DiskFullError(
            f"not enough disk space in {probe}: about {needed_bytes / 2**20:.0f} MiB needed, "
            f"{free / 2**20:.0f} MiB free"
        )


@contextlib.contextmanager
def atomic_output_dir(out: Path, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``out``, on any failure it is removed."""
    out = Path(out)
    check_output_dir(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno == errno.ENOSPC:
            raise DiskFullError(
                f"the disk filled up while writing {out}; nothing was kept"
            ) from exc
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if overwrite and out.exists():
        trash = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
    try:
        # rename(2) onto a non-empty folder fails: another run that wrote ``out`` meanwhile
        # (checked empty at the start) keeps its folder
        tmp.rename(out)
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
            raise
        kept = out.parent / f"{out.name}.new-{os.getpid()}"
        tmp.rename(kept)
        raise OutputExistsError(
            f"{out} was written by another run while this one worked; it is left as it was, "
            f"and this run's output is kept in {kept}"
        ) from exc


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False, default=_jsonable) + "\n")


def _jsonable(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value)}")


def write_jpeg(path: Path, rgb: np.ndarray, quality: int = 92) -> None:
    """Write an RGB image; a failed write (e.g. a full disk) raises instead of passing silently."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    )
    if not ok:
        raise OSError(f"could not encode {path}")
    path.write_bytes(buf.tobytes())
