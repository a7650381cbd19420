"""The store: patient records in SQLite (default) or PostgreSQL, append-only, with an audit trail.

Rows are never updated or deleted. A correction adds a new version of a record with a reason; a
void adds a version marked ``voided`` with a reason. Reads return the current state (the latest
version of each record, unless voided) by default, or the full history on request. Every write
(import, correction, void) is recorded in the ``audit`` table with when, who, what and why.

Imports run in one transaction. In ``strict`` mode nothing is imported when any row has an error;
in ``quarantine`` mode the good rows are imported and the bad rows, unchanged and with their
reasons, go to a quarantine CSV, which imports directly once corrected. Either way ``rows_read ==
imported + quarantined + duplicates + skipped``. Importing the same file again adds nothing, but
tries again the rows it set aside.

The modules are the store's jobs: :mod:`.schema` (the tables), :mod:`.migrate` (schema versions
and upgrades, with the Alembic revisions in ``migrations/``), :mod:`.imports`,
:mod:`.history` (corrections, voids, schedule changes), :mod:`.export` (exports),
:mod:`.deidentify` (the de-identified research export) and :mod:`.core` (the :class:`Store` that opens and reads).

Examples
--------
>>> import io, tempfile
>>> store = Store(tempfile.mkdtemp() + "/clinic.sqlite")
>>> csv = io.StringIO("patient_id,birth_year,involved_side\\nP001,1970,right\\n")
>>> store.import_file(csv, "patients").imported
1
>>> store.read("patients")["involved_side"].tolist()
['right']
"""

from .core import Store
from .deidentify import DEIDENTIFY_NOTE, ResearchExport, check_key, deidentify, export_research, small_cells
from .export import EXPORT_FORMATS, spreadsheet_safe, write_table
from .imports import ImportSummary
from .migrate import HEAD, SCHEMA_VERSION
from .schema import HISTORY_COLUMNS, ID_COLUMN

__all__ = ["HEAD", "SCHEMA_VERSION", "DEIDENTIFY_NOTE", "EXPORT_FORMATS", "HISTORY_COLUMNS", "ID_COLUMN", "ImportSummary",
           "ResearchExport", "Store", "check_key", "deidentify", "export_research", "small_cells", "spreadsheet_safe",
           "write_table"]
