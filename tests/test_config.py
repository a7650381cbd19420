"""File names derived from ids are safe."""

from __future__ import annotations

import pytest

from hipanalytics.config import safe_filename


@pytest.mark.parametrize(("raw", "safe"), [
    ("P001", "P001"),
    ("../../etc/passwd", "etc_passwd"),
    ("..", "unnamed"),
    ("", "unnamed"),
    ("a/b\\c", "a_b_c"),
    (".hidden", "hidden"),
    ("CON:1", "CON_1"),
    ("Zoë O'Neil", "Zoe_O_Neil"),
])
def test_safe_filename_keeps_ids_inside_their_folder(raw, safe):
    assert safe_filename(raw) == safe


def test_safe_filename_limits_length():
    assert len(safe_filename("x" * 500)) == 80
