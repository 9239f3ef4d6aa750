"""The database schema: cameras, footage sources, sightings with their crops and embeddings, jobs
and vector-index versions (SQLAlchemy 2 typed ORM; SQLite by default, PostgreSQL by URL).

The migrations in ``migrations/versions`` create exactly these tables; a test compares the two so
that they cannot drift. Every constraint has a name (``NAMING``): SQLite can only alter a table by
copying it, and Alembic's batch mode needs names to drop or change constraints later.

Integer ids are never reused (AUTOINCREMENT on SQLite, sequences on PostgreSQL): the vector index
and the index folders refer to rows by id, and a purged sighting's id given to a new one would
make a stale index entry look current.

Times are stored as naive UTC (``UTCDateTime``) and come back timezone-aware; a naive datetime is
refused on write, because a local time taken for UTC would silently shift every sighting.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import numpy as np
from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.exc import DontWrapMixin
from sqlalchemy.ext.mutable import MutableDict, MutableList
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from reunite.errors import StoreError

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint names, deterministic so that later migrations can refer to them on any backend."""

SHA256_LENGTH = 64


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class JobKind(StrEnum):
    INGEST = "ingest"
    REINDEX = "reindex"
    PURGE = "purge"


class IndexStatus(StrEnum):
    BUILDING = "building"
    ACTIVE = "active"
    RETIRED = "retired"


class IndexKind(StrEnum):
    FLAT = "flat"
    HNSW = "hnsw"
    IVFPQ = "ivfpq"


def _in(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


JOB_STATUS_CHECK = _in("status", JobStatus)
INDEX_STATUS_CHECK = _in("status", IndexStatus)
"""Statuses are checked by the database: a misspelt "runing" would escape the lock index."""


class NaiveDatetimeError(DontWrapMixin, ValueError):
    """A datetime without a time zone was given for a UTC column (raised as is, not wrapped)."""


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, naive UTC in the database, aware UTC datetimes out.

    SQLite keeps no zone, and ``timestamp without time zone`` on PostgreSQL is the portable
    equivalent; converting at the boundary keeps comparisons (``start_time >= ...``) correct.
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise NaiveDatetimeError(f"expected a timezone-aware datetime, got {value!r}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise NaiveDatetimeError(
                f"naive datetime {value.isoformat()} refused: give it a time zone "
                "(e.g. datetime.now(UTC)) so that it cannot be mistaken for local time"
            )
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Camera(Base):
    __tablename__ = "cameras"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)
    area: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    sources: Mapped[list[Source]] = relationship(back_populates="camera")


class Source(Base):
    """One piece of footage (a file, a folder of frames, a stream) of one camera.

    The fingerprint identifies the content, so that the same footage ingested twice (renamed,
    moved) is recognised and resumed rather than stored again.
    """

    __tablename__ = "sources"
    __table_args__ = (UniqueConstraint("camera_id", "fingerprint"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id"))
    uri: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    fingerprint: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """Set when every frame was ingested (files and folders; a stream never finishes)."""

    camera: Mapped[Camera] = relationship(back_populates="sources")
    chunks: Mapped[list[IngestChunk]] = relationship(
        back_populates="source", cascade="all, delete-orphan", passive_deletes=True
    )


class IngestChunk(Base):
    """A chunk of a source that has been ingested completely: resuming skips it."""

    __tablename__ = "ingest_chunks"

    source_id: Mapped[int] = mapped_column(
        ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True
    )
    chunk_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    frames: Mapped[int] = mapped_column(Integer)
    sightings: Mapped[int] = mapped_column(Integer)
    next_frame_index: Mapped[int] = mapped_column(Integer)
    """Source frame index where the next chunk starts: where a resumed ingest reads from."""
    errors: Mapped[list[Any]] = mapped_column(MutableList.as_mutable(JSON()), default=list)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    detector_state: Mapped[dict[str, Any] | None] = mapped_column(JSON(), nullable=True)
    """What the detector had learnt about the camera at the chunk's end (stateful detectors
    only): a resumed ingest starts from it, so it finds what an uninterrupted one would."""

    source: Mapped[Source] = relationship(back_populates="chunks")


class Sighting(Base):
    """One person's pass in front of one camera (a tracklet), with its best box and crops."""

    __tablename__ = "sightings"
    __table_args__ = (
        UniqueConstraint("source_id", "chunk_index", "track_id"),
        Index(None, "camera_id", "start_time"),
        Index(None, "start_time"),
        Index(None, "end_time"),
        CheckConstraint("end_time >= start_time", name="time_order"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id"))
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    chunk_index: Mapped[int] = mapped_column(Integer)
    track_id: Mapped[int] = mapped_column(Integer)
    start_time: Mapped[datetime] = mapped_column(UTCDateTime)
    end_time: Mapped[datetime] = mapped_column(UTCDateTime)
    frames: Mapped[int] = mapped_column(Integer)
    quality: Mapped[float] = mapped_column(Float)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    thumbnail_sha256: Mapped[str | None] = mapped_column(String(SHA256_LENGTH))
    frame_sha256: Mapped[str | None] = mapped_column(String(SHA256_LENGTH), index=True)
    """The whole frame the best crop (and the box) came from, in the crop store; shared by the
    sightings cut from one frame, and None for sightings stored before migration 0005."""

    camera: Mapped[Camera] = relationship()
    source: Mapped[Source] = relationship()
    crops: Mapped[list[Crop]] = relationship(
        back_populates="sighting",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Crop.id",
    )
    embeddings: Mapped[list[Embedding]] = relationship(
        back_populates="sighting", cascade="all, delete-orphan", passive_deletes=True
    )


class Crop(Base):
    """One stored crop image of a sighting; the image itself lives in the crop store by sha256."""

    __tablename__ = "crops"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sighting_id: Mapped[int] = mapped_column(
        ForeignKey("sightings.id", ondelete="CASCADE"), index=True
    )
    sha256: Mapped[str] = mapped_column(String(SHA256_LENGTH), index=True)
    frame_index: Mapped[int] = mapped_column(Integer)
    time: Mapped[datetime] = mapped_column(UTCDateTime)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    quality: Mapped[float] = mapped_column(Float)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)

    sighting: Mapped[Sighting] = relationship(back_populates="crops")


class Embedding(Base):
    """A sighting's vector under one model: float32 little-endian bytes, so that any machine (and
    any later numpy) reads the same numbers back."""

    __tablename__ = "embeddings"
    __table_args__ = (
        UniqueConstraint("sighting_id", "model"),
        CheckConstraint("dim > 0", name="dim_positive"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sighting_id: Mapped[int] = mapped_column(ForeignKey("sightings.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(200), index=True)
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)

    sighting: Mapped[Sighting] = relationship(back_populates="embeddings")

    @classmethod
    def from_array(cls, model: str, vector: np.ndarray, **fields: Any) -> Embedding:
        """An embedding row from a 1-D vector; pass ``sighting=`` or ``sighting_id=`` in fields."""
        array = np.asarray(vector)
        if array.ndim != 1 or array.size == 0:
            raise ValueError(
                f"an embedding must be a non-empty 1-D vector, got shape {array.shape}"
            )
        if not np.issubdtype(array.dtype, np.number) or not np.all(np.isfinite(array)):
            raise ValueError("an embedding must hold finite numbers (got NaN, inf or non-numbers)")
        data = array.astype("<f4").tobytes()
        return cls(model=model, dim=int(array.size), vector=data, **fields)

    def array(self) -> np.ndarray:
        """The vector as a writable float32 array of length ``dim``."""
        if len(self.vector) != 4 * self.dim:
            raise StoreError(
                f"embedding {self.id} ({self.model}) holds {len(self.vector)} bytes, not "
                f"{4 * self.dim} for dim {self.dim}: the row is corrupt; re-run "
                "`reunite reindex` to recompute it"
            )
        return np.frombuffer(self.vector, dtype="<f4").astype(np.float32)


class Job(Base):
    """A batch job (ingest, reindex, purge): its progress, checkpoint and outcome.

    A running job holds ``lock_key``; the partial unique index lets only one running job hold a
    given key, on SQLite and PostgreSQL alike, with no lock server.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        Index(
            "uq_jobs_running_lock_key",
            "lock_key",
            unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
        Index(None, "status"),
        CheckConstraint(JOB_STATUS_CHECK, name="status"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED.value)
    lock_key: Mapped[str | None] = mapped_column(String(200))
    params: Mapped[dict[str, Any]] = mapped_column(MutableDict.as_mutable(JSON()), default=dict)
    checkpoint: Mapped[dict[str, Any]] = mapped_column(MutableDict.as_mutable(JSON()), default=dict)
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[Any]] = mapped_column(MutableList.as_mutable(JSON()), default=list)
    message: Mapped[str | None] = mapped_column(Text)
    pid: Mapped[int | None] = mapped_column(Integer)
    host: Mapped[str | None] = mapped_column(String(255))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IndexVersion(Base):
    """One build of the vector index; searches use the single active one."""

    __tablename__ = "index_versions"
    __table_args__ = (
        Index(
            "uq_index_versions_one_active",
            "status",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        CheckConstraint(INDEX_STATUS_CHECK, name="status"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(200))
    dim: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=IndexStatus.BUILDING.value)
    path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SightingAttributes(Base):
    """A sighting's 인상착의 probabilities under one attribute model: the quality-weighted mean of
    its crops' calibrated probabilities, ``{field: {value: p}, "accessories": {name: p}}`` (see
    ``reunite.models.attribute_model``). Stored with the sighting so that a description search
    never reads an image; one row per model, so a new model is backfilled beside the old one."""

    __tablename__ = "sighting_attributes"
    __table_args__ = (UniqueConstraint("sighting_id", "model"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sighting_id: Mapped[int] = mapped_column(ForeignKey("sightings.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(200), index=True)
    probabilities: Mapped[dict[str, Any]] = mapped_column(JSON())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# The case service's tables share this Base; importing them here keeps Base.metadata complete for
# whoever imports the schema (migrations, the drift test, create_all in tools).
from reunite.pipeline import case_schema as _case_schema  # noqa: E402, F401
