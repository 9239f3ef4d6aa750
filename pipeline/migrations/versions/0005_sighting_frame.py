"""Sightings keep the frame their best crop came from.

The console shows an officer where in the scene the person was (the box on the whole frame).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sightings") as batch:
        batch.add_column(sa.Column("frame_sha256", sa.String(length=64), nullable=True))
        batch.create_index(op.f("ix_sightings_frame_sha256"), ["frame_sha256"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sightings") as batch:
        batch.drop_index(op.f("ix_sightings_frame_sha256"))
        batch.drop_column("frame_sha256")
