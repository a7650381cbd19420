"""Schema 5: the randomised arm of a patient, declared.

- ``patients.allocation``: the schedule the patient was allocated to (``daily`` or
  ``three-per-week``), and ``patients.allocated_on``: the allocation date (time zero when given).

Earlier versions read the randomised arm from ``cohort`` when it named a schedule; from this
revision ``cohort`` is a free research label only. So that upgrading does not change a store's
analysis, a ``cohort`` of exactly ``daily`` or ``three-per-week`` is copied into ``allocation``
(every version of the row; ``allocated_on`` stays empty: time zero remains the first program's
start).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA_VERSION = 5

SCHEDULES = ("daily", "three-per-week")
"""The allocations of this revision (frozen here: the code's list may grow)."""

_META = sa.table("meta", sa.column("key", sa.String), sa.column("value", sa.Text))
_PATIENTS = sa.table("patients", sa.column("cohort", sa.Text), sa.column("allocation", sa.String))


def upgrade() -> None:
    op.add_column("patients", sa.Column("allocation", sa.String))
    op.add_column("patients", sa.Column("allocated_on", sa.Date))
    op.execute(_PATIENTS.update().where(_PATIENTS.c.cohort.in_(SCHEDULES)).values(allocation=_PATIENTS.c.cohort))
    op.execute(_META.update().where(_META.c.key == "schema_version").values(value=str(SCHEMA_VERSION)))


def downgrade() -> None:
    with op.batch_alter_table("patients") as batch:
        batch.drop_column("allocated_on")
        batch.drop_column("allocation")
    op.execute(_META.update().where(_META.c.key == "schema_version").values(value="4"))
