"""Schema 4: episodes of care and next-day pain.

- ``episodes``: a patient's episode of care (start, discharge date and reason), a record table
  with the usual history columns;
- ``programs.episode_id``: the episode a program belongs to, when the clinic says so (otherwise
  episodes are found from the programs' dates: :func:`hipanalytics.analysis.episodes.episodes_of_care`);
- ``sessions.pain_next_day``: NPRS pain the morning after the session.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA_VERSION = 4

_META = sa.table("meta", sa.column("key", sa.String), sa.column("value", sa.Text))


def upgrade() -> None:
    op.create_table(
        "episodes",
        sa.Column("row_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("episode_id", sa.String, nullable=False),
        sa.Column("patient_id", sa.String, nullable=False),
        sa.Column("start_date", sa.Date, nullable=False),
        sa.Column("end_date", sa.Date),
        sa.Column("discharge_reason", sa.String),
        sa.Column("notes", sa.Text),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("supersedes", sa.Integer),
        sa.Column("change_reason", sa.Text),
        sa.Column("import_id", sa.Integer),
        sa.Column("source_row", sa.Integer),
        sa.Column("recorded_at", sa.String(32), nullable=False),
        sa.Column("recorded_by", sa.Text, nullable=False),
        sa.UniqueConstraint("episode_id", "version", name="uq_episodes_version"),
    )
    op.create_index("ix_episodes_patient", "episodes", ["patient_id"])
    op.add_column("programs", sa.Column("episode_id", sa.String))
    op.add_column("sessions", sa.Column("pain_next_day", sa.Integer))
    op.execute(_META.update().where(_META.c.key == "schema_version").values(value=str(SCHEMA_VERSION)))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("pain_next_day")
    with op.batch_alter_table("programs") as batch:
        batch.drop_column("episode_id")
    op.drop_index("ix_episodes_patient", "episodes")
    op.drop_table("episodes")
    op.execute(_META.update().where(_META.c.key == "schema_version").values(value="3"))
