"""Schema 3, the store before Alembic: patients, programs, measurements, sessions, imports, audit.

The four record tables carry their history columns; ``meta`` holds the schema version.

A store made before Alembic carries ``meta.schema_version`` 3 (or 1 or 2, brought to 3 first by
:func:`hipanalytics.store.migrate.legacy_to_3`) and no ``alembic_version`` table: it is stamped
with this revision, not rebuilt.

Revision ID: 0003
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA_VERSION = 3


def _history() -> list[sa.Column]:
    """The history columns every record table had in schema 3."""
    return [
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("supersedes", sa.Integer),
        sa.Column("change_reason", sa.Text),
        sa.Column("import_id", sa.Integer),
        sa.Column("source_row", sa.Integer),
        sa.Column("recorded_at", sa.String(32), nullable=False),
        sa.Column("recorded_by", sa.Text, nullable=False),
    ]


def _record_table(name: str, id_column: str, *columns: sa.Column, patient_index: bool = True) -> None:
    op.create_table(
        name,
        sa.Column("row_id", sa.Integer, primary_key=True, autoincrement=True),
        *columns,
        *_history(),
        sa.UniqueConstraint(id_column, "version", name=f"uq_{name}_version"),
    )
    if patient_index:
        op.create_index(f"ix_{name}_patient", name, ["patient_id"])


def upgrade() -> None:
    op.create_table("meta", sa.Column("key", sa.String(64), primary_key=True), sa.Column("value", sa.Text))
    op.create_table(
        "imports",
        sa.Column("import_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("table_name", sa.String(32), nullable=False),
        sa.Column("file", sa.Text, nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("rows_read", sa.Integer, nullable=False),
        sa.Column("imported", sa.Integer, nullable=False),
        sa.Column("quarantined", sa.Integer, nullable=False),
        sa.Column("duplicates", sa.Integer, nullable=False),
        sa.Column("skipped", sa.Integer),
        sa.Column("origin", sa.Text),
        sa.Column("imported_at", sa.String(32), nullable=False),
        sa.Column("imported_by", sa.Text, nullable=False),
    )
    op.create_index("ix_imports_sha", "imports", ["table_name", "file_sha256"])
    op.create_table(
        "audit",
        sa.Column("audit_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("who", sa.Text, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("table_name", sa.String(32), nullable=False),
        sa.Column("record_id", sa.Text),
        sa.Column("row_id", sa.Integer),
        sa.Column("import_id", sa.Integer),
        sa.Column("reason", sa.Text),
        sa.Column("details", sa.Text),
    )
    _record_table(
        "patients", "patient_id",
        sa.Column("patient_id", sa.String, nullable=False),
        sa.Column("birth_year", sa.Integer, nullable=False),
        sa.Column("sex", sa.String),
        sa.Column("involved_side", sa.String, nullable=False),
        sa.Column("site", sa.Text),
        sa.Column("cohort", sa.Text),
        sa.Column("display_name", sa.Text),
        patient_index=False,
    )
    _record_table(
        "programs", "program_id",
        sa.Column("program_id", sa.String, nullable=False),
        sa.Column("patient_id", sa.String, nullable=False),
        sa.Column("protocol_id", sa.String, nullable=False),
        sa.Column("protocol_version", sa.Text, nullable=False),
        sa.Column("schedule", sa.Text, nullable=False),
        sa.Column("start_date", sa.Date, nullable=False),
        sa.Column("end_date", sa.Date, nullable=False),
        sa.Column("breakout_slot", sa.Text),
        sa.Column("choices", sa.Text),
        sa.Column("dose_overrides", sa.Text),
        sa.Column("omit", sa.Text),
        sa.Column("reason", sa.Text),
    )
    _record_table(
        "measurements", "measurement_id",
        sa.Column("measurement_id", sa.String, nullable=False),
        sa.Column("patient_id", sa.String, nullable=False),
        sa.Column("measured_on", sa.Date, nullable=False),
        sa.Column("side", sa.String, nullable=False),
        sa.Column("joint", sa.Text),
        sa.Column("motion", sa.String, nullable=False),
        sa.Column("position", sa.String, nullable=False),
        sa.Column("mode", sa.String, nullable=False),
        sa.Column("instrument", sa.String, nullable=False),
        sa.Column("degrees", sa.Float, nullable=False),
        sa.Column("trial", sa.Integer, nullable=False),
        sa.Column("assessor", sa.Text),
        sa.Column("notes", sa.Text),
    )
    _record_table(
        "sessions", "session_id",
        sa.Column("session_id", sa.String, nullable=False),
        sa.Column("patient_id", sa.String, nullable=False),
        sa.Column("performed_on", sa.Date, nullable=False),
        sa.Column("performed_at", sa.Text),
        sa.Column("session", sa.String, nullable=False),
        sa.Column("completion", sa.String, nullable=False),
        sa.Column("rounds_done", sa.Integer),
        sa.Column("pain_before", sa.Integer),
        sa.Column("pain_after", sa.Integer),
        sa.Column("notes", sa.Text),
    )
    op.bulk_insert(sa.table("meta", sa.column("key", sa.String), sa.column("value", sa.Text)),
                   [{"key": "schema_version", "value": str(SCHEMA_VERSION)}])


def downgrade() -> None:
    raise NotImplementedError("schema 3 is the first revision: there is nothing to go back to")
