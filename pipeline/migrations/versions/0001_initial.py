"""Initial schema.

Cameras, sources, ingest chunks, sightings, crops, embeddings, jobs and index versions.

Revision ID: 0001
Revises:
Create Date: 2025-11-25

Written by hand and kept free of model imports (a migration must create the schema as it was, not
as ``schema.py`` says today). Portable: generic types only, partial indexes given for SQLite and
PostgreSQL, every constraint named (``op.f``: final names, not run through the naming
convention again).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUTOINCREMENT = {"sqlite_autoincrement": True}
"""Ids are never reused: the vector index refers to sightings by id."""


def _box() -> list[sa.Column]:
    return [sa.Column(name, sa.Float(), nullable=False) for name in ("x1", "y1", "x2", "y2")]


def _partial(condition: str) -> dict[str, sa.TextClause]:
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


def upgrade() -> None:
    op.create_table(
        "cameras",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("x", sa.Float(), nullable=False),
        sa.Column("y", sa.Float(), nullable=False),
        sa.Column("area", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cameras")),
    )
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("fingerprint", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sources")),
        sa.ForeignKeyConstraint(
            ["camera_id"], ["cameras.id"], name=op.f("fk_sources_camera_id_cameras")
        ),
        sa.UniqueConstraint(
            "camera_id", "fingerprint", name=op.f("uq_sources_camera_id_fingerprint")
        ),
        **AUTOINCREMENT,
    )
    op.create_table(
        "ingest_chunks",
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("chunk_index", sa.Integer(), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("sightings", sa.Integer(), nullable=False),
        sa.Column("next_frame_index", sa.Integer(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source_id", "chunk_index", name=op.f("pk_ingest_chunks")),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name=op.f("fk_ingest_chunks_source_id_sources"),
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "sightings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("chunk_index", sa.Integer(), nullable=False),
        sa.Column("track_id", sa.Integer(), nullable=False),
        sa.Column("start_time", sa.DateTime(), nullable=False),
        sa.Column("end_time", sa.DateTime(), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("quality", sa.Float(), nullable=False),
        *_box(),
        sa.Column("thumbnail_sha256", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sightings")),
        sa.ForeignKeyConstraint(
            ["camera_id"], ["cameras.id"], name=op.f("fk_sightings_camera_id_cameras")
        ),
        sa.ForeignKeyConstraint(
            ["source_id"], ["sources.id"], name=op.f("fk_sightings_source_id_sources")
        ),
        sa.UniqueConstraint(
            "source_id",
            "chunk_index",
            "track_id",
            name=op.f("uq_sightings_source_id_chunk_index_track_id"),
        ),
        sa.CheckConstraint("end_time >= start_time", name=op.f("ck_sightings_time_order")),
        **AUTOINCREMENT,
    )
    op.create_index(
        op.f("ix_sightings_camera_id_start_time"), "sightings", ["camera_id", "start_time"]
    )
    op.create_index(op.f("ix_sightings_start_time"), "sightings", ["start_time"])
    op.create_index(op.f("ix_sightings_end_time"), "sightings", ["end_time"])
    op.create_table(
        "crops",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sighting_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("frame_index", sa.Integer(), nullable=False),
        sa.Column("time", sa.DateTime(), nullable=False),
        *_box(),
        sa.Column("quality", sa.Float(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crops")),
        sa.ForeignKeyConstraint(
            ["sighting_id"],
            ["sightings.id"],
            name=op.f("fk_crops_sighting_id_sightings"),
            ondelete="CASCADE",
        ),
        **AUTOINCREMENT,
    )
    op.create_index(op.f("ix_crops_sighting_id"), "crops", ["sighting_id"])
    op.create_index("ix_crops_sha256", "crops", ["sha256"])
    op.create_table(
        "embeddings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sighting_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_embeddings")),
        sa.ForeignKeyConstraint(
            ["sighting_id"],
            ["sightings.id"],
            name=op.f("fk_embeddings_sighting_id_sightings"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("sighting_id", "model", name=op.f("uq_embeddings_sighting_id_model")),
        sa.CheckConstraint("dim > 0", name=op.f("ck_embeddings_dim_positive")),
        **AUTOINCREMENT,
    )
    op.create_index(op.f("ix_embeddings_model"), "embeddings", ["model"])
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("lock_key", sa.String(length=200), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("checkpoint", sa.JSON(), nullable=False),
        sa.Column("progress_done", sa.Integer(), nullable=False),
        sa.Column("progress_total", sa.Integer(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed', 'interrupted')",
            name=op.f("ck_jobs_status"),
        ),
        **AUTOINCREMENT,
    )
    op.create_index(op.f("ix_jobs_status"), "jobs", ["status"])
    op.create_index(
        op.f("uq_jobs_running_lock_key"),
        "jobs",
        ["lock_key"],
        unique=True,
        **_partial("status = 'running'"),
    )
    op.create_table(
        "index_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("activated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_index_versions")),
        sa.CheckConstraint(
            "status IN ('building', 'active', 'retired')", name=op.f("ck_index_versions_status")
        ),
        **AUTOINCREMENT,
    )
    op.create_index(
        op.f("uq_index_versions_one_active"),
        "index_versions",
        ["status"],
        unique=True,
        **_partial("status = 'active'"),
    )


def downgrade() -> None:
    for table in (
        "index_versions",
        "jobs",
        "embeddings",
        "crops",
        "sightings",
        "ingest_chunks",
        "sources",
        "cameras",
    ):
        op.drop_table(table)
