"""Keep a vector index equal to the database: the database is the source of truth.

At start-up (and after any crash between a database commit and an index write) each camera-day
shard is compared with the sightings the database holds for it — ids, not just counts — and a
shard that is missing, corrupt or stale is rebuilt from the stored embeddings. Shards the database
no longer has (purged, deleted) are dropped.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
from sqlalchemy import select

from reunite.pipeline.db import Database
from reunite.pipeline.schema import Embedding, Sighting
from reunite.pipeline.vector_store import ShardKey, VectorStore


@dataclass
class SyncReport:
    checked: int = 0
    rebuilt: list[ShardKey] = field(default_factory=list)
    dropped: list[ShardKey] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.rebuilt or self.dropped)

    def __str__(self) -> str:
        return (
            f"{self.checked} shards checked, {len(self.rebuilt)} rebuilt, "
            f"{len(self.dropped)} dropped"
            + (f"; {'; '.join(self.problems)}" if self.problems else "")
        )


def shard_key(camera_id: str, time: datetime) -> ShardKey:
    return camera_id, time.date()


def _database_shards(db: Database, model: str) -> dict[ShardKey, list[tuple[int, datetime]]]:
    shards: dict[ShardKey, list[tuple[int, datetime]]] = defaultdict(list)
    with db.session() as session:
        rows = session.execute(
            select(Sighting.id, Sighting.camera_id, Sighting.start_time)
            .join(Embedding, Embedding.sighting_id == Sighting.id)
            .where(Embedding.model == model)
        )
        for sighting_id, camera_id, start in rows:
            shards[shard_key(camera_id, start)].append((sighting_id, start))
    return shards


def _load_vectors(db: Database, model: str, ids: list[int]) -> np.ndarray:
    found: dict[int, np.ndarray] = {}
    with db.session() as session:
        for start in range(0, len(ids), 900):  # SQLite's bound-parameter limit
            batch = ids[start : start + 900]
            for embedding in session.scalars(
                select(Embedding).where(Embedding.model == model, Embedding.sighting_id.in_(batch))
            ):
                found[embedding.sighting_id] = embedding.array()
    return np.stack([found[i] for i in ids]).astype(np.float32)


def sync_index(db: Database, store: VectorStore) -> SyncReport:
    """Rebuild every shard of ``store`` whose ids differ from the database's; drop orphans."""
    report = SyncReport(problems=store.verify())
    truth = _database_shards(db, store.model)
    on_disk = store.shards()
    for key in sorted(set(truth) | set(on_disk), key=lambda k: (k[0], k[1] or date.min)):
        report.checked += 1
        rows = truth.get(key)
        if not rows:
            store.drop_shard(key)
            report.dropped.append(key)
            continue
        want = np.array(sorted(i for i, _ in rows), dtype=np.int64)
        have = np.sort(store.shard_ids(key)) if key in on_disk else np.empty(0, np.int64)
        if key in on_disk and np.array_equal(want, have) and not _is_broken(report, key):
            continue
        rows.sort()
        ids = [i for i, _ in rows]
        store.replace_shard(
            key,
            np.array(ids, dtype=np.int64),
            _load_vectors(db, store.model, ids),
            [t for _, t in rows],
        )
        report.rebuilt.append(key)
    if report.changed:
        store.flush()
    return report


def _is_broken(report: SyncReport, key: ShardKey) -> bool:
    """Whether ``verify`` named this shard's file as missing or corrupt."""
    camera, day = key
    return any(camera in problem and day.isoformat() in problem for problem in report.problems)
