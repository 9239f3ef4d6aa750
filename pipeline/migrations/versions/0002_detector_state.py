"""Ingest chunks keep the detector's learnt state.

A resumed ingest must find exactly what an uninterrupted one would; the background detector
learns the camera's person scale and shadow depth across chunks, so each chunk checkpoint carries
them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ingest_chunks") as batch:
        batch.add_column(sa.Column("detector_state", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ingest_chunks") as batch:
        batch.drop_column("detector_state")
