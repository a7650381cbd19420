"""Stores as several tests build them: a new location (SQLite or PostgreSQL), a generated clinic."""

from __future__ import annotations

import contextlib
import gc
import uuid
import warnings
from pathlib import Path

import pytest

from hipanalytics.store import Store
from hipanalytics.synthetic import write_clinic

from .system import postgres_url


@contextlib.contextmanager
def postgres_database():
    """A fresh PostgreSQL database on the test server (its URL), dropped afterwards."""
    server = postgres_url()
    import psycopg
    import sqlalchemy as sa

    url = sa.make_url(server)
    name = f"hipanalytics_test_{uuid.uuid4().hex[:12]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with warnings.catch_warnings():  # pools of stores a test left open are dropped with the database
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path):
    """A new, empty store location: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield str(tmp_path / "clinic.sqlite")
        return
    with postgres_database() as url:
        yield url


@pytest.fixture
def postgres_location():
    """A fresh PostgreSQL database (its URL)."""
    with postgres_database() as url:
        yield url


def clinic_store(clinic: dict, folder: Path, name: str = "clinic.sqlite") -> Path:
    """Write ``clinic`` (from :func:`hipanalytics.synthetic.generate_clinic`) as CSV files under
    ``folder / "data"`` and import every table, as a clinic would, into ``folder / name``."""
    paths = write_clinic(clinic, Path(folder) / "data")
    with Store(Path(folder) / name) as store:
        for table in ("patients", "programs", "measurements", "sessions"):
            store.import_file(paths[table], table)
    return Path(folder) / name
