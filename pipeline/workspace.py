"""Everything a pipeline command works on, opened from one ``Settings``: the database (the source
of truth), the crop store and the active vector index, kept consistent with the database."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock
from sqlalchemy import select

from reunite.config import Settings
from reunite.errors import InvalidOptionError, VectorIndexError
from reunite.pipeline.crop_store import CropStore
from reunite.pipeline.db import Database, open_database
from reunite.pipeline.index_sync import SyncReport, sync_index
from reunite.pipeline.jobs import now
from reunite.pipeline.schema import IndexVersion
from reunite.pipeline.vector_store import MANIFEST, FaissShardStore

log = logging.getLogger(__name__)

ACTIVE, BUILDING, RETIRED = "active", "building", "retired"


@dataclass
class Workspace:
    data_dir: Path
    db: Database
    crops: CropStore
    _readers: dict[int, tuple[tuple[int, ...] | None, FaissShardStore]] = field(
        default_factory=dict, init=False, repr=False
    )
    _reader_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def open(cls, settings: Settings) -> Workspace:
        data_dir = Path(settings.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        db = open_database(settings.resolved_database_url())
        return cls(data_dir, db, CropStore(data_dir / "crops"))

    def close(self) -> None:
        self.db.dispose()

    # -- index versions ---------------------------------------------------------------------

    def active_version(self) -> IndexVersion | None:
        with self.db.session() as session:
            version = session.scalars(
                select(IndexVersion).where(IndexVersion.status == ACTIVE)
            ).first()
            if version is not None:
                session.expunge(version)
            return version

    def new_version(
        self, model: str, dim: int, kind: str = "flat", status: str = BUILDING
    ) -> IndexVersion:
        """Record a new index version (its folder is named after its id and model)."""
        with self.db.session() as session:
            version = IndexVersion(
                model=model, dim=dim, kind=kind, status=status, path="", created_at=now()
            )
            if status == ACTIVE:
                version.activated_at = now()
            session.add(version)
            session.flush()
            slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", model)[:60]
            version.path = f"indexes/v{version.id:04d}-{slug}"
            session.flush()
            session.expunge(version)
            return version

    def _open_unlocked(self, version: IndexVersion) -> FaissShardStore:
        root = self.data_dir / version.path
        try:
            return FaissShardStore.open(
                root, model=version.model, dim=version.dim, kind=version.kind
            )
        except VectorIndexError as error:
            log.warning("index %s unusable (%s); rebuilding it from the database", root, error)
            _move_aside(root)
            return FaissShardStore.open(
                root, model=version.model, dim=version.dim, kind=version.kind
            )

    @contextmanager
    def writing(self, version: IndexVersion) -> Iterator[FaissShardStore]:
        """The store of ``version`` opened fresh under an exclusive file lock, flushed on exit.

        FAISS files have no multi-writer protocol: two processes (ingests of two cameras) that
        each kept a store open would overwrite each other's manifest. So every write reopens the
        store under the lock, reading what other writers flushed, and flushes before releasing.
        Opening reads only the manifest and the small id/time files; shard indexes load lazily.
        """
        lock_path = self.data_dir / f"{version.path}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(lock_path), timeout=600):
            store = self._open_unlocked(version)
            yield store
            store.flush()

    def open_store(self, version: IndexVersion, *, sync: bool = True) -> FaissShardStore:
        """The FAISS store of ``version`` for searching, first checked against the database and
        repaired from it (under the write lock): the database is the source of truth, the
        index only a cache of it. A missing or corrupt manifest is rebuilt from stored
        embeddings."""
        if sync:
            with self.writing(version) as store:
                report = sync_index(self.db, store)
                if report.changed:
                    log.info("index %s: %s", version.path, report)
            return store
        return self._open_unlocked(version)

    @contextmanager
    def reading(self, version: IndexVersion) -> Iterator[FaissShardStore]:
        """The store of ``version`` for searching, kept open between searches.

        Reopening (and syncing) the store for every query cost 2.7 s of a 4 s query at 100 000
        sightings; a long-running reader (the API) keeps it and reopens it only when a writer
        has flushed since (the manifest, written last by an atomic rename, changed). The first
        open in a process syncs with the database. Searches of one store are serialised: its
        shards load lazily, and FAISS parallelises each search by itself.
        """
        manifest = self.data_dir / version.path / MANIFEST
        with self._reader_lock:
            cached = self._readers.get(version.id)
            signature = _signature(manifest)
            if cached is None or signature is None or cached[0] != signature:
                store = self.open_store(version, sync=cached is None)
                self._readers[version.id] = (_signature(manifest), store)
            store = self._readers[version.id][1]
            try:
                yield store
            except (VectorIndexError, FileNotFoundError):
                # A writer replaced a shard file this store had not loaded yet: next time the
                # store is reopened from the current manifest.
                self._readers.pop(version.id, None)
                raise

    def index_for(self, model: str, dim: int, kind: str = "flat") -> IndexVersion:
        """The active index version, created for ``model`` when there is none yet, and synced
        with the database; refuses another model."""
        version = self.active_version()
        if version is None:
            version = self.new_version(model, dim, kind, status=ACTIVE)
        elif version.model != model:
            raise InvalidOptionError(
                f"the active index holds {version.model} embeddings, not {model}: ingest with "
                f"--model {version.model.split('@')[0]}, or switch with "
                "`reunite reindex --model ...` first"
            )
        self.open_store(version)
        return version

    def sync_report(self, version: IndexVersion) -> SyncReport:
        with self.writing(version) as store:
            return sync_index(self.db, store)


def _signature(path: Path) -> tuple[int, ...] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


def _move_aside(root: Path) -> None:
    if root.exists():
        target = root.with_name(root.name + f".broken-{now():%Y%m%dT%H%M%S}")
        root.rename(target)
        log.warning("kept the broken index as %s", target)
