"""Tables of the case service: users, missing-person cases with their photos, match decisions,
alerts and the hash-chained audit log.

Kept apart from ``schema.py`` (footage and sightings) because they change for other reasons; they
share its ``Base`` and conventions (named constraints, ids never reused, aware UTC times), and
``schema.py`` imports this module so that ``Base.metadata`` always holds every table.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import numpy as np
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.ext.mutable import MutableDict
from sqlalchemy.orm import Mapped, mapped_column, relationship

from reunite.pipeline.schema import SHA256_LENGTH, Base, UTCDateTime, _in, utcnow


class Role(StrEnum):
    OPERATOR = "operator"
    """Registers cases, searches, confirms or rejects matches."""
    SUPERVISOR = "supervisor"
    """An operator who also closes cases, reads the audit log and manages users."""
    RESEARCHER = "researcher"
    """Evaluation and synthetic data only: never real sightings or cases."""
    ADMIN = "admin"


class CaseStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class AgeGroup(StrEnum):
    CHILD = "child"
    ADULT = "adult"
    ELDERLY = "elderly"


class PhotoKind(StrEnum):
    FAMILY = "family"
    """A family photo: often other clothes than on the day."""
    CCTV = "cctv"
    """A still from CCTV where the person was last seen: the best query."""
    OTHER = "other"


class Decision(StrEnum):
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(_in("role", Role), name="role"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    """Tokens issued before this are refused: changing a password logs the user out everywhere."""


class Case(Base):
    """A missing-person case: who, since when and where, and how sure an alert must be."""

    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint(_in("status", CaseStatus), name="status"),
        CheckConstraint(f"age_group IS NULL OR {_in('age_group', AgeGroup)}", name="age_group"),
        Index(None, "status"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alias: Mapped[str] = mapped_column(String(200))
    age_group: Mapped[str | None] = mapped_column(String(16))
    description: Mapped[str | None] = mapped_column(Text)
    """The appearance description (인상착의) as the caller gave it."""
    clothing_notes: Mapped[str | None] = mapped_column(Text)
    last_seen_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen_place: Mapped[str | None] = mapped_column(Text)
    last_seen_camera_id: Mapped[str | None] = mapped_column(
        ForeignKey("cameras.id", ondelete="SET NULL")
    )
    last_seen_x: Mapped[float | None] = mapped_column(Float)
    last_seen_y: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default=CaseStatus.OPEN.value)
    alert_threshold: Mapped[float] = mapped_column(Float)
    """Least match score (cosine similarity) for which a new sighting raises an alert."""
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    photos: Mapped[list[CasePhoto]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="CasePhoto.id"
    )


class CasePhoto(Base):
    """A photo of the person: the cleaned image and the person crop live in the crop store."""

    __tablename__ = "case_photos"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    image_sha256: Mapped[str] = mapped_column(String(SHA256_LENGTH))
    """The upload re-encoded: orientation applied, EXIF (GPS, device) stripped."""
    crop_sha256: Mapped[str] = mapped_column(String(SHA256_LENGTH))
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    found_by: Mapped[str] = mapped_column(String(16))
    """How the person was found: box (given), detector, face, whole (the photo is a crop)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    case: Mapped[Case] = relationship(back_populates="photos")
    embeddings: Mapped[list[PhotoEmbedding]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )


class PhotoEmbedding(Base):
    """A case photo's vector under one model (a reindex adds the new model's)."""

    __tablename__ = "photo_embeddings"
    __table_args__ = (UniqueConstraint("photo_id", "model"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("case_photos.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(200))
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)

    def array(self) -> np.ndarray:
        return np.frombuffer(self.vector, dtype="<f4").astype(np.float32)


class MatchDecision(Base):
    """An operator's verdict on one sighting for one case."""

    __tablename__ = "match_decisions"
    __table_args__ = (CheckConstraint(_in("decision", Decision), name="decision"),)

    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    sighting_id: Mapped[int] = mapped_column(
        ForeignKey("sightings.id", ondelete="CASCADE"), primary_key=True
    )
    decision: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Alert(Base):
    """A newly ingested sighting that matches an open case above its threshold."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("case_id", "sighting_id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    sighting_id: Mapped[int] = mapped_column(ForeignKey("sightings.id", ondelete="CASCADE"))
    score: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    webhook_status: Mapped[str | None] = mapped_column(String(200))
    """None: no webhook configured or not sent yet; "delivered" or the last failure."""
    webhook_attempts: Mapped[int] = mapped_column(Integer, default=0)


class AlertCursor(Base):
    """How far the alert scanner has looked: the highest sighting id already scanned."""

    __tablename__ = "alert_cursor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_sighting_id: Mapped[int] = mapped_column(Integer, default=0)


class AuditEntry(Base):
    """One audited action. ``seq`` is dense and unique and each row carries the hash of the one
    before it, so an edited, inserted or deleted row breaks the chain (see ``audit.verify``)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "time"), Index(None, "username"), Index(None, "case_id"))

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    time: Mapped[datetime] = mapped_column(UTCDateTime)
    username: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[int | None] = mapped_column(Integer)
    """No foreign key: the audit outlives the case."""
    purpose: Mapped[str | None] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(MutableDict.as_mutable(JSON()), default=dict)
    result_ids: Mapped[list[Any]] = mapped_column(JSON(), default=list)
    outcome: Mapped[str] = mapped_column(String(64))
    client: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(SHA256_LENGTH))
    hash: Mapped[str] = mapped_column(String(SHA256_LENGTH), unique=True)
