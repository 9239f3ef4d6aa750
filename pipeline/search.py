"""Search the active index with photos or embeddings, and return sightings with their metadata.

This is the one entry point the CLI and the API use for "recent sightings of this person": it
clamps every time window to the retention period, so sightings past it are never returned even
before a purge has deleted them, and drops index hits whose database row is gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
from sqlalchemy import select

from reunite.errors import InvalidOptionError, NotFoundError, VectorIndexError
from reunite.pipeline.embedding_model import EmbeddingModel, load_embedding_model
from reunite.pipeline.matching import Fusion, match
from reunite.pipeline.schema import Camera, Sighting
from reunite.pipeline.vector_store import SearchFilter
from reunite.pipeline.workspace import Workspace

MAX_PHOTO_BYTES = 20 * 2**20


@dataclass(frozen=True, slots=True)
class SightingResult:
    sighting_id: int
    score: float
    camera_id: str
    camera_name: str
    start_time: datetime
    end_time: datetime
    box: tuple[float, float, float, float]
    thumbnail_sha256: str | None
    thumbnail_path: Path | None

    @classmethod
    def of(cls, ws: Workspace, sighting: Sighting, camera: Camera, score: float) -> SightingResult:
        """A stored sighting as a ranked result (both the photo and the description search)."""
        sha = sighting.thumbnail_sha256
        return cls(
            sighting_id=sighting.id,
            score=score,
            camera_id=sighting.camera_id,
            camera_name=camera.name,
            start_time=sighting.start_time,
            end_time=sighting.end_time,
            box=(sighting.x1, sighting.y1, sighting.x2, sighting.y2),
            thumbnail_sha256=sha,
            thumbnail_path=ws.crops.path(sha) if sha else None,
        )

    def as_dict(self) -> dict:
        row = asdict(self)
        row["start_time"] = self.start_time.isoformat()
        row["end_time"] = self.end_time.isoformat()
        row["thumbnail_path"] = str(self.thumbnail_path) if self.thumbnail_path else None
        return row


def read_photo(path: Path) -> np.ndarray:
    """A BGR image from a file, with a clear error for anything that is not one."""
    if not path.is_file():
        raise InvalidOptionError(f"photo {path} does not exist")
    if path.stat().st_size > MAX_PHOTO_BYTES:
        raise InvalidOptionError(f"photo {path} is larger than {MAX_PHOTO_BYTES >> 20} MB")
    image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise InvalidOptionError(f"photo {path} is not a readable image (JPEG, PNG, WebP, BMP)")
    return image


def window(
    since: datetime | None,
    until: datetime | None,
    cameras: Sequence[str] | None,
    retention_days: int,
) -> SearchFilter:
    oldest = datetime.now(UTC) - timedelta(days=retention_days)
    start = max(since, oldest) if since is not None else oldest
    if until is not None and until <= start:
        raise InvalidOptionError(
            f"the time window is empty: {start:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M}"
        )
    return SearchFilter(start=start, end=until, cameras=frozenset(cameras) if cameras else None)


def active_model(ws: Workspace, spec: str | None = None) -> EmbeddingModel:
    """The model the active index was built with (a file-based one needs its ``spec`` again)."""
    version = ws.active_version()
    if version is None:
        raise NotFoundError("there is no index yet: ingest footage first (`reunite ingest`)")
    model = load_embedding_model(
        spec or version.model.split("@")[0].split("#")[0], data_dir=ws.data_dir
    )
    if model.version != version.model:
        raise InvalidOptionError(
            f"the active index holds {version.model} embeddings but the model loaded is "
            f"{model.version}; pass the same --model the footage was ingested with"
        )
    return model


def search_embeddings(
    ws: Workspace,
    queries: np.ndarray,
    where: SearchFilter,
    *,
    k: int = 10,
    fusion: Fusion = "max",
    rerank: bool = False,
) -> list[SightingResult]:
    version = ws.active_version()
    if version is None:
        raise NotFoundError("there is no index yet: ingest footage first (`reunite ingest`)")
    for attempt in range(2):
        try:
            with ws.reading(version) as store:
                matches = match(store, queries, k=k, where=where, fusion=fusion, rerank=rerank)
            break
        except (VectorIndexError, FileNotFoundError):
            if attempt:  # a writer swapped files under us twice in a row: say so
                raise
    ids = [m.sighting_id for m in matches]
    with ws.db.session() as session:
        rows = {
            s.id: (s, cam)
            for s, cam in session.execute(
                select(Sighting, Camera).join(Camera).where(Sighting.id.in_(ids))
            )
        }
        results = []
        for m in matches:
            if m.sighting_id not in rows:
                continue  # deleted since the index was written; the next sync drops it
            s, cam = rows[m.sighting_id]
            results.append(SightingResult.of(ws, s, cam, m.score))
    return results


def search_photos(
    ws: Workspace,
    photos: Sequence[Path],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    cameras: Sequence[str] | None = None,
    k: int = 10,
    fusion: Fusion = "max",
    rerank: bool = False,
    retention_days: int = 30,
    model_spec: str | None = None,
) -> list[SightingResult]:
    if not photos:
        raise InvalidOptionError("give at least one --photo")
    images = [read_photo(Path(p)) for p in photos]
    model = active_model(ws, model_spec)
    queries = model.embedder.embed(images)
    return search_embeddings(
        ws,
        queries,
        window(since, until, cameras, retention_days),
        k=k,
        fusion=fusion,
        rerank=rerank,
    )
