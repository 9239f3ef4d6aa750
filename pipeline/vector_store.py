"""The vector index of sightings: one FAISS index per camera and UTC day, behind a small interface.

``VectorStore`` is the contract the ingest orchestrator and the matcher are written against, so
that the vectors can later move to a server (Milvus) without touching the pipeline.
``FaissShardStore`` implements it on local files. Why camera-day shards rather than one index:

* the usual query is "these cameras, the last few hours or days": only the shards in the window
  are searched, and only the two boundary days of the window need a per-vector time filter;
* retention is a file delete per camera-day instead of compacting one large index;
* a corrupt file loses one camera-day, which the caller rebuilds from the database (the source of
  truth; this index is a cache of it), instead of the whole index.

On disk, under ``root``::

    manifest.json                                   # written last: names the current files
    shards/<camera dir>/<YYYY-MM-DD>.g<gen>.faiss   # the FAISS index of one camera-day
    shards/<camera dir>/<YYYY-MM-DD>.g<gen>.meta.npz  # ids, times (int64 epoch ms), row-aligned

``<camera dir>`` is an ASCII slug of the camera id plus a hash of it, so any camera id ("a/b",
"Bahnhofstraße", "..") gives a safe, distinct folder name; the manifest maps it back. ``<gen>`` is
the manifest generation that wrote the file: a flush writes changed shards under new names, then
atomically replaces the manifest, then deletes the files it no longer names. A process killed at
any point therefore leaves the old or the new state readable, plus at worst unreferenced files
that the next flush deletes.

Kinds (``kind=`` of ``FaissShardStore.open``), memory per vector of dimension d:

* ``flat`` (default): exact inner product, ``IndexIDMap2(IndexFlatIP)``; 4·d bytes.
* ``hnsw``: ``IndexIDMap2(IndexHNSWFlat)``, options ``M``, ``efConstruction``, ``efSearch``;
  4·d + ~8·M bytes. HNSW cannot delete: ``remove`` (and re-adding an id) rebuilds the shard from
  its stored vectors, which costs a graph build of that camera-day.
* ``ivfpq``: ``IndexIVFPQ`` (options ``nlist``, ``m``, ``nbits``, ``nprobe``), trained per shard
  once the shard holds ``train_min = max(40·nlist, 40·2**nbits)`` vectors; below that the shard
  stays exact flat. The raw vectors are kept in the ``.meta.npz`` and in memory as well (PQ
  codes are lossy and rebuilds need the originals), so this kind saves search time on large
  shards, not memory.

Everything here holds every row's id, time and shard key in memory (about 100 bytes a row for
the id → shard map, 16 for the row metadata) besides the FAISS data. Index files are loaded
lazily, on the first search, ``get_vectors`` or change that needs them; metadata at open.

Only one process may write a root at a time: callers serialise writers (e.g. with their job
lock). A reader in another process sees a writer's flushes only once it opens the store again;
until then a shard file the writer replaced, and the reader had not loaded yet, is reported as
missing and left out of its searches. Methods of one instance are thread-safe.

Measurements (``bench/index_bench.py``, ``bench/index_results.md``): narrow windows are as fast
as one filtered index, "everything" over ~1500 small shards is about 2-4× slower (a FAISS call
per shard), and an ingest chunk or the daily retention persists 10× faster or more: only the
changed camera-days are written or deleted.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import logging
import os
import re
import threading
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import faiss
import numpy as np

from reunite.errors import DiskFullError, InvalidOptionError, NotFoundError, VectorIndexError

log = logging.getLogger(__name__)

ShardKey = tuple[str, date]
"""(camera id, UTC day): one FAISS index per camera-day."""

FORMAT = "reunite-faiss-shards"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SHARDS_DIR = "shards"

KIND_DEFAULTS: dict[str, dict[str, int]] = {
    "flat": {},
    "hnsw": {"M": 32, "efConstruction": 40, "efSearch": 64},
    "ivfpq": {"nlist": 64, "m": 0, "nbits": 8, "nprobe": 8},  # m=0: chosen from dim at open
}
SEARCH_TIME_OPTIONS = frozenset({"efSearch", "nprobe"})
"""Options that only steer searching: an existing root may be opened with other values."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_MS = 86_400_000
_NORM_TOLERANCE = 1e-3
_FILE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}\.g\d+\.(faiss|meta\.npz)$")


@dataclass(frozen=True, slots=True)
class SearchFilter:
    """Which sightings a search may return: ``start <= time < end`` and camera in ``cameras``."""

    start: datetime | None = None
    end: datetime | None = None
    cameras: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class ShardInfo:
    """One camera-day as the store holds it; ``sha256`` is of its last flushed ``.faiss`` file
    ("" until the shard is first flushed)."""

    key: ShardKey
    count: int
    sha256: str
    min_time: datetime
    max_time: datetime


class VectorStore(Protocol):
    """A vector index of sighting embeddings, sharded by camera and UTC day."""

    model: str
    dim: int

    def add(
        self,
        ids: np.ndarray,
        vectors: np.ndarray,
        cameras: Sequence[str],
        times: Sequence[datetime],
    ) -> None: ...

    def search(
        self, queries: np.ndarray, k: int, where: SearchFilter | None = None
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def get_vectors(self, ids: np.ndarray) -> np.ndarray: ...

    def remove(self, ids: np.ndarray) -> int: ...

    def remove_before(self, cutoff: datetime) -> int: ...

    def count(self) -> int: ...

    def shards(self) -> dict[ShardKey, ShardInfo]: ...

    def shard_ids(self, key: ShardKey) -> np.ndarray: ...

    def replace_shard(
        self, key: ShardKey, ids: np.ndarray, vectors: np.ndarray, times: Sequence[datetime]
    ) -> None: ...

    def drop_shard(self, key: ShardKey) -> None: ...

    def flush(self) -> None: ...

    def verify(self) -> list[str]: ...


# --- time and naming helpers -------------------------------------------------------------------


def to_epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch (floored); a naive datetime is refused, as in the database,
    because a local time taken for UTC would silently move a sighting to another shard."""
    if not isinstance(moment, datetime):
        raise InvalidOptionError(f"expected a datetime, got {type(moment).__name__}: {moment!r}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidOptionError(
            f"naive datetime {moment.isoformat()}: give timezone-aware UTC times, "
            "e.g. datetime.now(UTC) or dt.replace(tzinfo=UTC)"
        )
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def from_epoch_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=int(ms))


def _day_of_ms(ms: int) -> date:
    return date.fromordinal(_EPOCH.toordinal() + int(ms) // _DAY_MS)


def _day_start_ms(day: date) -> int:
    return (day.toordinal() - _EPOCH.toordinal()) * _DAY_MS


def _times_to_ms(times: Sequence[datetime] | np.ndarray) -> np.ndarray:
    if isinstance(times, np.ndarray) and np.issubdtype(times.dtype, np.datetime64):
        return times.astype("datetime64[ms]").astype(np.int64)  # numpy datetimes are UTC
    return np.fromiter((to_epoch_ms(t) for t in times), dtype=np.int64, count=len(times))


def camera_dir_name(camera: str) -> str:
    """A file-system-safe, collision-free folder name for any camera id: an ASCII slug for
    people, plus a hash so "A" and "a" (case-insensitive file systems) or "a/b" and "a_b" differ."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", camera).strip("_")[:40] or "camera"
    digest = hashlib.sha256(camera.encode("utf-8")).hexdigest()[:16]
    return f"{slug}-{digest}"


def _check_camera(camera: object) -> str:
    if not isinstance(camera, str) or not camera:
        raise InvalidOptionError(f"camera ids must be non-empty strings, got {camera!r}")
    return camera


# --- file helpers ------------------------------------------------------------------------------


def _sha256(data: bytes | memoryview | np.ndarray) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_error(path: Path, error: OSError) -> Exception:
    if error.errno == errno.ENOSPC:
        return DiskFullError(
            f"no space left to write {path}: free disk space and run again (the index on disk "
            "is unchanged)"
        )
    return VectorIndexError(f"cannot write {path}: {error.strerror or error}")


def _atomic_write(path: Path, data: bytes | memoryview | np.ndarray) -> None:
    """Write ``path`` whole or not at all: a temporary file in the same folder, fsynced, then
    renamed over the target (the caller fsyncs the folder once its files are all in place)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise _write_error(path, error) from error


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_files(paths: Iterable[Path]) -> None:
    """Delete files the manifest no longer names (and then their camera folders, if empty)."""
    parents = set()
    for path in paths:
        path.unlink(missing_ok=True)
        parents.add(path.parent)
    for parent in parents:
        with contextlib.suppress(OSError):  # not empty: other days of that camera
            parent.rmdir()


def _encode_meta(ids: np.ndarray, times: np.ndarray, vectors: np.ndarray | None) -> bytes:
    buffer = io.BytesIO()
    arrays = {"ids": ids, "times": times}
    if vectors is not None:
        arrays["vectors"] = vectors
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _decode_meta(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


# --- the store ---------------------------------------------------------------------------------


@dataclass(eq=False)
class _Shard:
    """One camera-day in memory. ``ids``/``times`` (and ``vectors`` for ivfpq) are row-aligned,
    and for ``IndexIDMap2`` indexes in the same order as its internal rows."""

    key: ShardKey
    ids: np.ndarray
    times: np.ndarray
    vectors: np.ndarray | None = None
    index: Any = None  # None: on disk, not loaded yet
    entry: dict[str, Any] | None = None  # its manifest entry as on disk; None: never flushed
    dirty: bool = False
    damaged: str | None = None  # its file was lost: holds only rows added since
    inner: Any = field(default=None, repr=False)  # index.index of an IndexIDMap2, cached
    inner_of: Any = field(default=None, repr=False)
    _min: int = field(default=0, repr=False)
    _max: int = field(default=-1, repr=False)

    def __post_init__(self) -> None:
        self.refresh_bounds()

    def refresh_bounds(self) -> None:
        if len(self.times):
            self._min, self._max = int(self.times.min()), int(self.times.max())
        else:
            self._min, self._max = 0, -1

    @property
    def count(self) -> int:
        return len(self.ids)


class FaissShardStore:
    """``VectorStore`` on FAISS files, one index per camera-day; see the module docstring."""

    def __init__(
        self,
        root: Path,
        model: str,
        dim: int,
        kind: str,
        options: dict[str, int],
        generation: int,
    ) -> None:
        self.root = root
        self.model = model
        self.dim = dim
        self.kind = kind
        self.kind_options = options
        self._generation = generation
        self._shards: dict[ShardKey, _Shard] = {}
        self._where: dict[int, ShardKey] = {}
        self._disk_files: set[str] = set()  # files named by the manifest on disk
        self._changed = False  # shards dropped (or damaged ones emptied) since the last flush
        self._scan_orphans = True  # first flush (and after a failed one): sweep stray files
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return (
            f"FaissShardStore({str(self.root)!r}, model={self.model!r}, dim={self.dim}, "
            f"kind={self.kind!r}: {len(self._where)} vectors in {len(self._shards)} shards)"
        )

    # -- opening --

    @classmethod
    def open(
        cls,
        root: Path,
        *,
        model: str,
        dim: int,
        kind: str = "flat",
        create: bool = True,
        **kind_options: int,
    ) -> FaissShardStore:
        """Open the store at ``root`` (creating an empty one there when ``create``).

        Raises ``VectorIndexError`` when the root holds another model, dimension or kind (build a
        new index version), or when its manifest is unreadable (rebuild from the database).
        """
        if not isinstance(model, str) or not model:
            raise InvalidOptionError(f"model must be a non-empty version string, got {model!r}")
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise InvalidOptionError(f"dim must be a positive integer, got {dim!r}")
        if kind not in KIND_DEFAULTS:
            raise InvalidOptionError(
                f"unknown index kind {kind!r}: use one of {', '.join(KIND_DEFAULTS)}"
            )
        unknown = set(kind_options) - set(KIND_DEFAULTS[kind])
        if unknown:
            raise InvalidOptionError(
                f"unknown option(s) {', '.join(sorted(unknown))} for kind {kind!r}; it takes "
                f"{', '.join(KIND_DEFAULTS[kind]) or 'none'}"
            )
        for name, value in kind_options.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidOptionError(f"{name} must be a positive integer, got {value!r}")
        root = Path(root)
        manifest_path = root / MANIFEST
        if not manifest_path.exists():
            if not create:
                raise VectorIndexError(
                    f"no vector index at {root} ({MANIFEST} is missing): open it with "
                    "create=True to start an empty one, or rebuild it from the database"
                )
            options = _resolve_options(kind, dim, kind_options)
            store = cls(root, model, dim, kind, options, generation=0)
            store._changed = True
            store.flush()  # an empty, valid store on disk from the start
            return store
        manifest = _read_manifest(manifest_path)
        if manifest["model"] != model or manifest["dim"] != dim:
            raise VectorIndexError(
                f"the vector index at {root} holds {manifest['model']} vectors of dimension "
                f"{manifest['dim']}, not {model} of dimension {dim}: build a new index version "
                "for this model (or open the index of that model)"
            )
        if manifest["kind"] != kind:
            raise VectorIndexError(
                f"the vector index at {root} is of kind {manifest['kind']!r}, not {kind!r}: open "
                f"it with kind={manifest['kind']!r}, or build a new index version"
            )
        stored = manifest["kind_options"]
        for name, value in kind_options.items():
            if name not in SEARCH_TIME_OPTIONS and stored.get(name) != value:
                raise VectorIndexError(
                    f"the vector index at {root} was built with {name}={stored.get(name)}, not "
                    f"{value}: open it without {name}, or build a new index version"
                )
        options = {**stored, **kind_options}
        store = cls(root, model, dim, kind, options, generation=manifest["generation"])
        for entry in manifest["shards"]:
            store._load_entry(entry)
        store._disk_files = {f for e in manifest["shards"] for f in _entry_files(e)}
        return store

    def _load_entry(self, entry: dict[str, Any]) -> None:
        key: ShardKey = (entry["camera"], date.fromisoformat(entry["day"]))
        shard = _Shard(key, np.empty(0, np.int64), np.empty(0, np.int64), entry=entry)
        shard.damaged = entry.get("damaged")
        try:
            data = (self.root / entry["meta_file"]).read_bytes()
            if _sha256(data) != entry["meta_sha256"]:
                raise ValueError("sha256 differs from the manifest")
            meta = _decode_meta(data)
            ids = meta["ids"].astype(np.int64, copy=False)
            times = meta["times"].astype(np.int64, copy=False)
            if len(ids) != entry["count"] or len(times) != len(ids):
                raise ValueError(f"{len(ids)} rows, the manifest says {entry['count']}")
            if self.kind == "ivfpq":
                vectors = meta["vectors"].astype(np.float32, copy=False)
                if vectors.shape != (len(ids), self.dim):
                    raise ValueError(f"vectors of shape {vectors.shape}")
                shard.vectors = vectors
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            self._shards[key] = shard
            self._damage(shard, f"metadata file {entry['meta_file']}: {error}")
            return
        shard.ids, shard.times = ids, times
        shard.refresh_bounds()
        self._shards[key] = shard
        self._where.update(dict.fromkeys(ids.tolist(), key))

    # -- FAISS indexes of one shard --

    @property
    def _train_min(self) -> int:
        return max(40 * self.kind_options["nlist"], 40 * 2 ** self.kind_options["nbits"])

    def _empty_index(self) -> Any:
        return self._build_index(np.empty(0, np.int64), np.empty((0, self.dim), np.float32))

    def _build_index(self, ids: np.ndarray, vectors: np.ndarray) -> Any:
        """A fresh index of this store's kind holding ``vectors`` under ``ids``."""
        opts = self.kind_options
        if self.kind == "hnsw":
            inner = faiss.IndexHNSWFlat(self.dim, opts["M"], faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = opts["efConstruction"]
            inner.hnsw.efSearch = opts["efSearch"]
            index = faiss.IndexIDMap2(inner)
        elif self.kind == "ivfpq" and len(ids) >= self._train_min:
            quantizer = faiss.IndexFlatIP(self.dim)
            index = faiss.IndexIVFPQ(
                quantizer,
                self.dim,
                opts["nlist"],
                opts["m"],
                opts["nbits"],
                faiss.METRIC_INNER_PRODUCT,
            )
            index.train(vectors)
            index.nprobe = opts["nprobe"]
        else:
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        if len(ids):
            index.add_with_ids(vectors, ids)
        return index

    def _index(self, shard: _Shard) -> Any | None:
        """The shard's FAISS index, read from disk on first use; None when its file is
        missing or corrupt (the shard is then marked damaged and left out of searches)."""
        if shard.index is not None:
            return shard.index
        entry = shard.entry
        if entry is None:  # not on disk yet (new shards get their index when made)
            shard.index = self._empty_index()
            return shard.index
        try:
            data = np.fromfile(self.root / entry["file"], dtype=np.uint8)
            if _sha256(data) != entry["sha256"]:
                raise ValueError("sha256 differs from the manifest")
            index = faiss.deserialize_index(data)
            if index.d != self.dim or index.ntotal != shard.count:
                raise ValueError(f"{index.ntotal} vectors of dimension {index.d}")
            if isinstance(index, faiss.IndexIDMap2) and not np.array_equal(
                faiss.vector_to_array(index.id_map), shard.ids
            ):
                raise ValueError("its ids differ from the metadata file")
        except (OSError, ValueError, RuntimeError) as error:
            self._damage(shard, f"index file {entry['file']}: {error}")
            return None
        if self.kind == "ivfpq" and isinstance(index, faiss.IndexIVF):
            index.nprobe = self.kind_options["nprobe"]
        shard.index = index
        return index

    def _damage(self, shard: _Shard, reason: str) -> None:
        camera, day = shard.key
        log.warning(
            "vector shard %s %s left out of searches: %s; rebuild it from the database "
            "(replace_shard)",
            camera,
            day.isoformat(),
            reason,
        )
        for i in shard.ids.tolist():
            self._where.pop(i, None)
        shard.ids = np.empty(0, np.int64)
        shard.times = np.empty(0, np.int64)
        shard.vectors = np.empty((0, self.dim), np.float32) if self.kind == "ivfpq" else None
        shard.index = self._empty_index()
        shard.damaged = reason
        shard.refresh_bounds()

    def _shard_vectors(self, shard: _Shard, rows: np.ndarray | None = None) -> np.ndarray:
        """Raw vectors of the shard's rows (all of them by default), in row order."""
        if shard.vectors is not None:
            return shard.vectors if rows is None else shard.vectors[rows]
        index = self._index(shard)
        if index is None or not shard.count:
            return np.empty((0, self.dim), np.float32)
        everything = index.index.reconstruct_n(0, shard.count)  # IDMap2 rows = our rows
        return everything if rows is None else everything[rows]

    def _shard_add(
        self, shard: _Shard, ids: np.ndarray, vectors: np.ndarray, times: np.ndarray
    ) -> None:
        index = self._index(shard)
        if index is None:  # its file is lost: _damage gave it an empty index, still flagged
            index = self._index(shard)
        shard.ids = np.concatenate([shard.ids, ids])
        shard.times = np.concatenate([shard.times, times])
        if shard.vectors is not None:  # ivfpq
            shard.vectors = np.concatenate([shard.vectors, vectors])
            if not isinstance(index, faiss.IndexIVF) and shard.count >= self._train_min:
                shard.index = self._build_index(shard.ids, shard.vectors)  # train now
                index = None
        if index is not None:
            index.add_with_ids(vectors, ids)
        shard.refresh_bounds()
        shard.dirty = True
        self._where.update(dict.fromkeys(ids.tolist(), shard.key))

    def _shard_remove(self, shard: _Shard, ids: np.ndarray) -> int:
        """Remove ``ids`` (all known to be in ``shard``) from it; drops the shard when empty."""
        index = self._index(shard)  # first: finding its file corrupt empties the shard
        gone = np.isin(shard.ids, ids)
        removed = int(gone.sum())
        if not removed:
            return 0
        keep = ~gone
        if removed == shard.count:
            self._drop(shard.key)
            return removed
        if index is not None:
            if self.kind == "hnsw":  # HNSW cannot delete: rebuild from the kept vectors
                shard.index = self._build_index(shard.ids[keep], self._shard_vectors(shard, keep))
            else:
                index.remove_ids(faiss.IDSelectorBatch(shard.ids[gone]))
        for i in shard.ids[gone].tolist():
            self._where.pop(i, None)
        shard.ids, shard.times = shard.ids[keep], shard.times[keep]
        if shard.vectors is not None:
            shard.vectors = shard.vectors[keep]
        shard.refresh_bounds()
        shard.dirty = True
        return removed

    def _drop(self, key: ShardKey) -> None:
        shard = self._shards.pop(key, None)
        if shard is None:
            return
        for i in shard.ids.tolist():
            self._where.pop(i, None)
        self._changed = True

    def _search_shard(
        self, shard: _Shard, queries: np.ndarray, k: int, rows: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Top-k of one shard, among its ``rows`` (a boolean mask) when given."""
        index = self._index(shard)
        if index is None:
            return None
        if isinstance(index, faiss.IndexIVF):  # holds sighting ids itself
            selector = None if rows is None else faiss.IDSelectorBatch(shard.ids[rows])
            params = faiss.SearchParametersIVF(nprobe=self.kind_options["nprobe"], sel=selector)
            return index.search(queries, k, params=params)
        # IndexIDMap2: search the index inside it and map its row numbers to ids here, which
        # skips the wrapper's id translation and its OpenMP region (slow on a busy machine).
        bitmap = None if rows is None else np.packbits(rows, bitorder="little")
        selector = None if bitmap is None else faiss.IDSelectorBitmap(bitmap)
        if self.kind == "hnsw":
            # Always pass efSearch: a SearchParametersHNSW would otherwise reset it to 16.
            efs = max(self.kind_options["efSearch"], k)
            params = faiss.SearchParametersHNSW(efSearch=efs, sel=selector)
        else:
            params = None if selector is None else faiss.SearchParameters(sel=selector)
        if shard.inner_of is not index:  # SWIG makes a new proxy on each .index: keep one
            shard.inner, shard.inner_of = index.index, index
        scores, found = shard.inner.search(queries, k, params=params)
        return scores, np.where(found >= 0, shard.ids[found], -1)

    # -- VectorStore --

    def add(
        self,
        ids: np.ndarray,
        vectors: np.ndarray,
        cameras: Sequence[str],
        times: Sequence[datetime],
    ) -> None:
        """Index sightings; an id already in the store (in any shard) is replaced."""
        ids = _check_ids(ids)
        vectors = self._check_vectors(vectors, len(ids))
        if len(cameras) != len(ids) or len(times) != len(ids):
            raise InvalidOptionError(
                f"add() needs one camera and one time per id: {len(ids)} ids, "
                f"{len(cameras)} cameras, {len(times)} times"
            )
        if not len(ids):
            return
        ms = _times_to_ms(times)
        cams = [_check_camera(c) for c in cameras]
        keep = _last_occurrences(ids)
        if len(keep) != len(ids):
            ids, vectors, ms = ids[keep], vectors[keep], ms[keep]
            cams = [cams[i] for i in keep.tolist()]
        with self._lock:
            self._remove_known(ids)
            days = ms // _DAY_MS
            groups: dict[tuple[str, int], list[int]] = {}
            for row, (camera, day) in enumerate(zip(cams, days.tolist(), strict=True)):
                groups.setdefault((camera, day), []).append(row)
            for (camera, day), rows in groups.items():
                key = (camera, date.fromordinal(_EPOCH.toordinal() + day))
                shard = self._shards.get(key)
                if shard is None:
                    shard = self._new_shard(key)
                sel = np.asarray(rows)
                self._shard_add(shard, ids[sel], vectors[sel], ms[sel])

    def _new_shard(self, key: ShardKey) -> _Shard:
        shard = _Shard(key, np.empty(0, np.int64), np.empty(0, np.int64))
        shard.index = self._empty_index()
        if self.kind == "ivfpq":
            shard.vectors = np.empty((0, self.dim), np.float32)
        self._shards[key] = shard
        return shard

    def _remove_known(self, ids: np.ndarray) -> int:
        by_shard: dict[ShardKey, list[int]] = {}
        for i in ids.tolist():
            key = self._where.get(i)
            if key is not None:
                by_shard.setdefault(key, []).append(i)
        removed = 0
        for key, members in by_shard.items():
            removed += self._shard_remove(self._shards[key], np.asarray(members, np.int64))
        return removed

    def search(
        self, queries: np.ndarray, k: int, where: SearchFilter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` inner products per query among the sightings ``where`` allows, best first;
        rows with fewer hits are padded with score -inf and id -1.

        Only shards of the cameras and days in the window are touched, and of those only the
        ones holding times outside the window (its boundary days) get a per-vector filter
        (``IDSelectorBitmap`` over the shard's rows; ``IDSelectorBatch`` of ids for IVF).
        """
        queries = self._check_vectors(queries, None, normalised=False, what="queries")
        if not isinstance(k, int | np.integer) or k < 1:
            raise InvalidOptionError(f"k must be a positive integer, got {k!r}")
        k = int(k)
        n_queries = len(queries)
        scores = np.full((n_queries, k), -np.inf, dtype=np.float32)
        found = np.full((n_queries, k), -1, dtype=np.int64)
        where = where or SearchFilter()
        start = to_epoch_ms(where.start) if where.start is not None else None
        end = to_epoch_ms(where.end) if where.end is not None else None
        if (start is not None and end is not None and start >= end) or not n_queries:
            return scores, found
        cameras = where.cameras
        if isinstance(cameras, str):
            raise InvalidOptionError(
                f"SearchFilter.cameras must be a set of camera ids, not the string {cameras!r}"
            )
        parts_s: list[np.ndarray] = []
        parts_i: list[np.ndarray] = []
        with self._lock:
            for key, shard in list(self._shards.items()):
                if cameras is not None and key[0] not in cameras:
                    continue
                if not shard.count:
                    continue
                if (start is not None and shard._max < start) or (
                    end is not None and shard._min >= end
                ):
                    continue  # outside the window: never touched
                rows, allowed = None, shard.count
                if (start is not None and shard._min < start) or (
                    end is not None and shard._max >= end
                ):  # a boundary day: filter its vectors by time
                    rows = np.ones(shard.count, dtype=bool)
                    if start is not None:
                        rows &= shard.times >= start
                    if end is not None:
                        rows &= shard.times < end
                    allowed = int(rows.sum())
                    if not allowed:
                        continue
                hits = self._search_shard(shard, queries, min(k, allowed), rows)
                if hits is not None:
                    parts_s.append(hits[0])
                    parts_i.append(hits[1])
        if not parts_s:
            return scores, found
        all_s = np.concatenate(parts_s, axis=1)
        all_i = np.concatenate(parts_i, axis=1)
        all_s[all_i < 0] = -np.inf
        if all_s.shape[1] > k:
            top = np.argpartition(-all_s, k - 1, axis=1)[:, :k]
            all_s = np.take_along_axis(all_s, top, axis=1)
            all_i = np.take_along_axis(all_i, top, axis=1)
        order = np.lexsort((all_i, -all_s), axis=1)  # best score first, then lower id
        width = all_s.shape[1]
        scores[:, :width] = np.take_along_axis(all_s, order, axis=1)
        found[:, :width] = np.take_along_axis(all_i, order, axis=1)
        found[~np.isfinite(scores)] = -1
        return scores, found

    def get_vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of ``ids`` in that order (for re-ranking); ``NotFoundError``
        names ids that are not in the store."""
        ids = _check_ids(ids)
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        with self._lock:
            keys = [self._where.get(i) for i in ids.tolist()]
            missing = [int(i) for i, key in zip(ids, keys, strict=True) if key is None]
            if missing:
                shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
                raise NotFoundError(
                    f"{len(missing)} sighting id(s) not in the vector index: {shown}; they were "
                    "removed, never indexed, or their shard is being rebuilt"
                )
            rows_by_key: dict[ShardKey, list[int]] = {}
            for row, key in enumerate(keys):
                rows_by_key.setdefault(key, []).append(row)  # type: ignore[arg-type]
            for key, rows in rows_by_key.items():
                shard = self._shards[key]
                wanted = ids[rows]
                if shard.vectors is not None:
                    order = np.argsort(shard.ids, kind="stable")
                    pos = order[np.searchsorted(shard.ids, wanted, sorter=order)]
                    out[rows] = shard.vectors[pos]
                    continue
                index = self._index(shard)
                if index is None:
                    raise VectorIndexError(
                        f"vector shard {key[0]} {key[1].isoformat()} is corrupt: rebuild it "
                        "from the database (replace_shard) and ask again"
                    )
                out[rows] = index.reconstruct_batch(wanted)
        return out

    def remove(self, ids: np.ndarray) -> int:
        """Remove sightings by id; unknown ids are ignored. Returns how many were removed."""
        ids = _check_ids(ids)
        with self._lock:
            return self._remove_known(np.unique(ids))

    def remove_before(self, cutoff: datetime) -> int:
        """Retention: forget every sighting older than ``cutoff``. Camera-days wholly before the
        cutoff's day are dropped (their files deleted at the next flush, no index is loaded);
        shards of the cutoff's day lose their rows before it. Returns how many were removed."""
        cutoff_ms = to_epoch_ms(cutoff)
        cutoff_day = _day_of_ms(cutoff_ms)
        removed = 0
        with self._lock:
            for key, shard in list(self._shards.items()):
                if key[1] < cutoff_day:
                    removed += shard.count
                    self._drop(key)
                elif key[1] == cutoff_day and shard.count and shard._min < cutoff_ms:
                    removed += self._shard_remove(shard, shard.ids[shard.times < cutoff_ms])
        return removed

    def count(self) -> int:
        with self._lock:
            return len(self._where)

    def shards(self) -> dict[ShardKey, ShardInfo]:
        """Every camera-day the store has, damaged ones included (with the rows they still
        hold, often none)."""
        with self._lock:
            out = {}
            for key, shard in self._shards.items():
                entry = shard.entry or {}
                if shard.count:
                    low, high = from_epoch_ms(shard._min), from_epoch_ms(shard._max)
                else:
                    low = datetime.fromisoformat(entry.get("min_time", f"{key[1]}T00:00:00+00:00"))
                    high = datetime.fromisoformat(entry.get("max_time", low.isoformat()))
                sha = "" if shard.dirty else entry.get("sha256", "")
                out[key] = ShardInfo(key, shard.count, sha, low, high)
            return out

    def shard_ids(self, key: ShardKey) -> np.ndarray:
        """Ids in one camera-day, sorted; empty for a camera-day the store does not have."""
        with self._lock:
            shard = self._shards.get(key)
            return np.sort(shard.ids) if shard is not None else np.empty(0, np.int64)

    def replace_shard(
        self, key: ShardKey, ids: np.ndarray, vectors: np.ndarray, times: Sequence[datetime]
    ) -> None:
        """Make one camera-day hold exactly these sightings (rebuilt from the database); ids
        found in other shards are moved here. No ids drops the shard."""
        camera, day = key
        _check_camera(camera)
        if not isinstance(day, date) or isinstance(day, datetime):
            raise InvalidOptionError(f"a shard key's day must be a date, got {day!r}")
        ids = _check_ids(ids)
        vectors = self._check_vectors(vectors, len(ids))
        if len(times) != len(ids):
            raise InvalidOptionError(f"replace_shard: {len(ids)} ids but {len(times)} times")
        ms = _times_to_ms(times)
        first = _day_start_ms(day)
        outside = (ms < first) | (ms >= first + _DAY_MS)
        if outside.any():
            raise InvalidOptionError(
                f"replace_shard {camera} {day.isoformat()}: {int(outside.sum())} time(s) are not "
                f"on that UTC day (e.g. {from_epoch_ms(int(ms[outside][0])).isoformat()})"
            )
        keep = _last_occurrences(ids)
        ids, vectors, ms = ids[keep], vectors[keep], ms[keep]
        with self._lock:
            self._drop(key)
            self._remove_known(ids)
            if not len(ids):
                return
            shard = _Shard(key, ids, ms)
            if self.kind == "ivfpq":
                shard.vectors = vectors.copy()
            shard.index = self._build_index(ids, vectors)
            shard.dirty = True
            self._shards[key] = shard
            self._where.update(dict.fromkeys(ids.tolist(), key))

    def drop_shard(self, key: ShardKey) -> None:
        """Forget one camera-day (its files go at the next flush); a no-op for an unknown one."""
        with self._lock:
            self._drop(key)

    def flush(self) -> None:
        """Persist every changed shard under new file names, then the manifest (atomically),
        then delete the files the new manifest no longer names."""
        with self._lock:
            if not self._changed and not any(s.dirty for s in self._shards.values()):
                return
            generation = self._generation + 1
            entries: dict[ShardKey, dict[str, Any]] = {}
            touched_dirs: set[Path] = set()
            sweep, self._scan_orphans = self._scan_orphans, True  # True again if this fails
            for key, shard in sorted(self._shards.items(), key=_key_order):
                if shard.dirty:
                    entries[key] = self._write_shard(shard, generation)
                    touched_dirs.add((self.root / entries[key]["file"]).parent)
                elif shard.entry is not None:
                    entries[key] = shard.entry
            if touched_dirs:  # new camera folders must be durable in shards/ too
                touched_dirs.add(self.root / SHARDS_DIR)
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "model": self.model,
                "dim": self.dim,
                "kind": self.kind,
                "kind_options": self.kind_options,
                "generation": generation,
                "count": sum(e["count"] for e in entries.values()),
                "written_at": datetime.now(UTC).isoformat(),
                "shards": list(entries.values()),
            }
            text = json.dumps(manifest, indent=1, ensure_ascii=False)
            try:
                for directory in touched_dirs:
                    _fsync_dir(directory)
                self.root.mkdir(parents=True, exist_ok=True)
                _atomic_write(self.root / MANIFEST, text.encode("utf-8"))
                _fsync_dir(self.root)
            except OSError as error:
                raise _write_error(self.root / MANIFEST, error) from error
            # The new state is durable: adopt it, then clear away what it no longer names.
            self._generation = generation
            for key, shard in self._shards.items():
                if key in entries:
                    shard.entry = entries[key]
                shard.dirty = False
            self._changed = False
            referenced = {f for e in entries.values() for f in _entry_files(e)}
            stale = self._disk_files - referenced
            self._disk_files = referenced
            if sweep:
                stale |= self._stray_files(referenced)
            _remove_files(self.root / f for f in stale)
            self._scan_orphans = False

    def _write_shard(self, shard: _Shard, generation: int) -> dict[str, Any]:
        camera, day = shard.key
        folder = PurePosixPath(SHARDS_DIR, camera_dir_name(camera))
        stem = f"{day.isoformat()}.g{generation:06d}"
        index = self._index(shard)
        if index is None:  # unreachable: a damaged shard gets an empty index
            raise VectorIndexError(f"vector shard {camera} {day} has no index to write")
        blob = faiss.serialize_index(index)
        meta = _encode_meta(shard.ids, shard.times, shard.vectors if self.kind == "ivfpq" else None)
        index_file, meta_file = f"{folder}/{stem}.faiss", f"{folder}/{stem}.meta.npz"
        _atomic_write(self.root / index_file, blob)
        _atomic_write(self.root / meta_file, meta)
        entry = {
            "camera": camera,
            "day": day.isoformat(),
            "file": index_file,
            "sha256": _sha256(blob),
            "meta_file": meta_file,
            "meta_sha256": _sha256(meta),
            "count": shard.count,
            "min_time": from_epoch_ms(shard._min).isoformat(),
            "max_time": from_epoch_ms(shard._max).isoformat(),
            "index": _index_kind(index),
            "written_at": datetime.now(UTC).isoformat(),
        }
        if shard.damaged is not None:
            entry["damaged"] = shard.damaged
        return entry

    def _stray_files(self, referenced: set[str]) -> set[str]:
        """Shard and temporary files under ``shards/`` that no manifest names (a crashed flush)."""
        base = self.root / SHARDS_DIR
        if not base.is_dir():
            return set()
        stray = set()
        for path in base.glob("*/*"):
            name = path.name
            ours = _FILE_RE.match(name) or (name.startswith(".") and name.endswith(".tmp"))
            relative = path.relative_to(self.root).as_posix()
            if path.is_file() and ours and relative not in referenced:
                stray.add(relative)
        return stray

    def verify(self) -> list[str]:
        """Problems of the index on disk, one line each (empty when healthy): an unreadable
        manifest, another model or dimension, missing or corrupt shard files (sha256), row
        counts that differ from the manifest, and shards flagged damaged. Each shard problem
        names the camera id and the ISO day. Reads every file; changes nothing."""
        try:
            manifest = _read_manifest(self.root / MANIFEST)
        except VectorIndexError as error:
            return [str(error)]
        problems = []
        if manifest["model"] != self.model or manifest["dim"] != self.dim:
            problems.append(
                f"manifest: holds {manifest['model']} (dim {manifest['dim']}), this store is "
                f"{self.model} (dim {self.dim})"
            )
        if manifest["kind"] != self.kind:
            problems.append(f"manifest: kind {manifest['kind']!r}, this store is {self.kind!r}")
        total = 0
        for entry in manifest["shards"]:
            total += entry["count"]
            label = f"shard {entry['camera']} {entry['day']}"
            if entry.get("damaged"):
                problems.append(
                    f"{label}: its files were lost ({entry['damaged']}); it holds only sightings "
                    "indexed since — rebuild it with replace_shard"
                )
            for name, sha, is_meta in (
                (entry["file"], entry["sha256"], False),
                (entry["meta_file"], entry["meta_sha256"], True),
            ):
                problem = _check_file(self.root / name, sha, entry["count"] if is_meta else None)
                if problem:
                    problems.append(f"{label}: file {name} {problem}")
        if total != manifest["count"]:
            problems.append(
                f"manifest: total count {manifest['count']} differs from its shards' sum {total}"
            )
        return problems

    # -- argument checks --

    def _check_vectors(
        self,
        vectors: np.ndarray,
        rows: int | None,
        *,
        normalised: bool = True,
        what: str = "vectors",
    ) -> np.ndarray:
        array = np.asarray(vectors)
        if array.ndim == 1 and what == "queries":
            array = array[None, :]
        if array.ndim != 2 or array.shape[1] != self.dim:
            raise VectorIndexError(
                f"{what} of shape {array.shape} do not fit this index of {self.model} "
                f"(dimension {self.dim}): embed with that model, or open the index of yours"
            )
        if rows is not None and len(array) != rows:
            raise InvalidOptionError(f"{len(array)} {what} for {rows} ids")
        array = np.ascontiguousarray(array, dtype=np.float32)
        if not np.isfinite(array).all():
            raise VectorIndexError(f"{what} contain NaN or infinite values")
        if normalised and len(array):
            norms = np.linalg.norm(array, axis=1)
            if np.abs(norms - 1).max() > _NORM_TOLERANCE:
                raise VectorIndexError(
                    f"{what} are not L2-normalised (norms from {norms.min():.3g} to "
                    f"{norms.max():.3g}): normalise them (reunite.models.embedder.l2_normalise)"
                )
        return array


# --- module helpers ----------------------------------------------------------------------------


def _resolve_options(kind: str, dim: int, given: dict[str, int]) -> dict[str, int]:
    options = {**KIND_DEFAULTS[kind], **given}
    if kind == "ivfpq":
        if not options["m"]:
            options["m"] = next(m for m in (64, 48, 32, 16, 8, 4, 2, 1) if dim % m == 0)
        if dim % options["m"]:
            raise InvalidOptionError(
                f"ivfpq needs m to divide the dimension: m={options['m']}, dim={dim}"
            )
        if options["nbits"] > 16:
            raise InvalidOptionError(f"ivfpq nbits must be <= 16, got {options['nbits']}")
    return options


def _check_ids(ids: np.ndarray) -> np.ndarray:
    array = np.asarray(ids)
    if array.ndim != 1 or (len(array) and not np.issubdtype(array.dtype, np.integer)):
        raise InvalidOptionError(
            f"ids must be a 1-D integer array, got {array.dtype} {array.shape}"
        )
    array = array.astype(np.int64, copy=False)
    if len(array) and array.min() < 0:
        raise InvalidOptionError("sighting ids must be >= 0 (-1 marks an empty result slot)")
    return array


def _last_occurrences(ids: np.ndarray) -> np.ndarray:
    """Row numbers keeping the last occurrence of each id, in order: a repeated id in one batch
    is a re-add, and re-adding replaces."""
    _, first_in_reversed = np.unique(ids[::-1], return_index=True)
    return np.sort(len(ids) - 1 - first_in_reversed)


def _key_order(item: tuple[ShardKey, Any]) -> tuple[str, date]:
    return item[0]


def _index_kind(index: Any) -> str:
    if isinstance(index, faiss.IndexIVFPQ):
        return "ivfpq"
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else index
    return "hnsw" if isinstance(inner, faiss.IndexHNSW) else "flat"


def _check_file(path: Path, sha256: str, rows: int | None) -> str | None:
    """What is wrong with one shard file (None: nothing); ``rows``: a metadata file's count."""
    try:
        data = path.read_bytes()
    except OSError as error:
        return f"is missing or unreadable ({error.strerror})"
    if _sha256(data) != sha256:
        return "is corrupt (its sha256 differs from the manifest)"
    if rows is not None:
        try:
            found = len(_decode_meta(data)["ids"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            return f"is unreadable ({error})"
        if found != rows:
            return f"holds {found} rows, the manifest says {rows}"
    return None


def _entry_files(entry: dict[str, Any]) -> tuple[str, str]:
    return entry["file"], entry["meta_file"]


def _read_manifest(path: Path) -> dict[str, Any]:
    """The parsed manifest, checked field by field; ``VectorIndexError`` when it is unusable."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise VectorIndexError(f"vector index manifest {path} is missing") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise VectorIndexError(
            f"vector index manifest {path} is unreadable ({error}): move the index folder aside "
            "and rebuild it from the database"
        ) from error
    try:
        if manifest["format"] != FORMAT:
            raise ValueError(f"format {manifest['format']!r}")
        if manifest["format_version"] > FORMAT_VERSION:
            raise VectorIndexError(
                f"vector index {path.parent} has format version {manifest['format_version']}, "
                f"newer than this Reunite ({FORMAT_VERSION}): upgrade Reunite"
            )
        for name, kind in (("model", str), ("dim", int), ("kind", str), ("generation", int)):
            if not isinstance(manifest[name], kind):
                raise ValueError(f"{name} is {manifest[name]!r}")
        if manifest["kind"] not in KIND_DEFAULTS or not isinstance(manifest["kind_options"], dict):
            raise ValueError(f"kind {manifest['kind']!r}")
        seen = set()
        for entry in manifest["shards"]:
            date.fromisoformat(entry["day"])
            if not isinstance(entry["camera"], str) or not isinstance(entry["count"], int):
                raise ValueError(f"shard entry {entry!r}")
            for name in _entry_files(entry):
                parts = PurePosixPath(name).parts
                if len(parts) != 3 or parts[0] != SHARDS_DIR or ".." in parts:
                    raise ValueError(f"shard file {name!r} outside {SHARDS_DIR}/")
            str(entry["sha256"]), str(entry["meta_sha256"])
            key = (entry["camera"], entry["day"])
            if key in seen:
                raise ValueError(f"shard {key} listed twice")
            seen.add(key)
        int(manifest["count"])
    except VectorIndexError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise VectorIndexError(
            f"vector index manifest {path} is corrupt ({type(error).__name__}: {error}): move "
            "the index folder aside and rebuild it from the database"
        ) from error
    return manifest
