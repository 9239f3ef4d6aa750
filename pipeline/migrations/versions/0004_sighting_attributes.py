"""Sighting attributes: each sighting's 인상착의 probabilities under an attribute model.

A description search ("노란 우비, 남색 바지") ranks sightings by these stored probabilities and
never re-reads a crop; rows go with their sighting (ON DELETE CASCADE), one per model.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

Written by hand, free of model imports, every constraint named (see 0001).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sighting_attributes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sighting_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("probabilities", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sighting_attributes")),
        sa.ForeignKeyConstraint(
            ["sighting_id"],
            ["sightings.id"],
            name=op.f("fk_sighting_attributes_sighting_id_sightings"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "sighting_id", "model", name=op.f("uq_sighting_attributes_sighting_id_model")
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_sighting_attributes_model"), "sighting_attributes", ["model"])


def downgrade() -> None:
    op.drop_index(op.f("ix_sighting_attributes_model"), table_name="sighting_attributes")
    op.drop_table("sighting_attributes")
