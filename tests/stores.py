"""A store holding a generated clinic, as several tests build one."""

from __future__ import annotations

from pathlib import Path

from hipanalytics.store import Store
from hipanalytics.synthetic import write_clinic


def clinic_store(clinic: dict, folder: Path, name: str = "clinic.sqlite") -> Path:
    """Write ``clinic`` (from :func:`hipanalytics.synthetic.generate_clinic`) as CSV files under
    ``folder / "data"`` and import every table, as a clinic would, into ``folder / name``."""
    paths = write_clinic(clinic, Path(folder) / "data")
    with Store(Path(folder) / name) as store:
        for table in ("patients", "programs", "measurements", "sessions"):
            store.import_file(paths[table], table)
    return Path(folder) / name
