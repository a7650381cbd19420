"""File names derived from ids are safe."""

from __future__ import annotations

import pytest

from hipanalytics.config import safe_filename


@pytest.mark.parametrize(("raw", "safe"), [
    ("P001", "P001"),
    ("P-001_a.1", "P-001_a.1"),
    ("../../etc/passwd", "etc_passwd-"),
    ("..", "unnamed-"),
    ("", "unnamed-"),
    ("a/b\\c", "a_b_c-"),
    (".hidden", "hidden-"),
    ("CON:1", "CON_1-"),
    ("Zoë O'Neil", "Zoe_O_Neil-"),
])
def test_safe_filename_keeps_ids_inside_their_folder_and_marks_every_change(raw, safe):
    name = safe_filename(raw)
    if safe.endswith("-"):  # changed: a hash of the original id follows
        assert name.startswith(safe) and len(name) == len(safe) + 6 and name[-6:].isalnum()
    else:
        assert name == safe
    assert "/" not in name and "\\" not in name and not name.startswith(".")


def test_ids_that_clean_up_alike_get_different_file_names():
    names = {safe_filename(i) for i in ("Q/1", "Q_1", "Q:1", "Q 1", "Q\\1", "q/1")}
    assert len(names) == 6 and "Q_1" in names


def test_safe_filename_limits_length():
    assert len(safe_filename("x" * 500)) == 80
    assert safe_filename("x" * 500) != safe_filename("x" * 499)
