"""Shared fixtures: the shipped protocol and a helper that writes edited copies of it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from hipanalytics.config import SHIPPED_PROTOCOLS_DIR
from hipanalytics.protocol import Protocol, load_protocol

SHIPPED_FILE = SHIPPED_PROTOCOLS_DIR / "hip-ir-breakouts.yaml"
MONDAY = date(2026, 1, 5)


@pytest.fixture
def protocol() -> Protocol:
    return load_protocol("hip-ir-breakouts")


@pytest.fixture
def edited_protocol(tmp_path: Path):
    """Write the shipped protocol with text replacements applied; each must match exactly once."""

    def write(*replacements: tuple[str, str], name: str = "edited.yaml") -> Path:
        text = SHIPPED_FILE.read_text(encoding="utf-8")
        for old, new in replacements:
            assert text.count(old) == 1, f"fixture edit {old!r} matches {text.count(old)} times"
            text = text.replace(old, new)
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


def line_of(path: Path, fragment: str) -> int:
    """1-based line of the only line of ``path`` containing ``fragment``."""
    hits = [i for i, line in enumerate(path.read_text().splitlines(), start=1) if fragment in line]
    assert len(hits) == 1, f"{fragment!r} found on lines {hits}"
    return hits[0]
