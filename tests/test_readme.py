"""The README's examples run as written: its Python blocks (twice, as a user re-running them would)
and its shell blocks in order on a fresh copy of the checkout (``tests/readme_runner.py``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .readme_runner import ROOT, run_block, shell_blocks

BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_python_example_runs_and_runs_again(code, tmp_path, monkeypatch):
    (tmp_path / "data").symlink_to(ROOT / "data")
    monkeypatch.chdir(tmp_path)
    for _ in range(2):  # a user runs a block again: it must not fail on what the first run stored
        exec(compile(code, "README.md", "exec"), {})
    assert os.listdir(tmp_path)  # the examples write their outputs here, not into the repository


def _fresh_copy(target: Path) -> Path:
    """The checkout as a fresh clone of the working tree would be, with the test environment as its .venv."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if not os.path.lexists(source):
            continue  # deleted in the working tree, not yet in git
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            dest.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, dest)
    (target / ".venv").symlink_to(Path(sys.prefix))
    return target


def test_readme_shell_blocks_run_in_order_on_a_fresh_checkout(tmp_path):
    clone = _fresh_copy(tmp_path / "clone")
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("HIPANALYTICS_STORE", "XDG_CACHE_HOME")}
    env["HOME"] = str(home)
    blocks = [b for b in shell_blocks(clone / "README.md") if b.marker is None]
    assert len(blocks) >= 4
    for block in blocks:
        result = run_block(block, clone, env)
        assert result.returncode == 0, (f"README.md block at line {block.line} failed:\n{result.stdout[-3000:]}\n"
                                        f"{result.stderr[-5000:]}")
    assert (clone / "hipanalytics.sqlite").is_file() and (clone / "research" / "patients.csv").is_file()
    assert (clone / "reports" / "patients" / "progress-SYN-00004.pdf").is_file()
    # the 40 sample patients and NEW-01, the patient added in the quarantine round trip
    assert len(list((clone / "reports" / "everyone").glob("progress-*.html"))) == 41


def test_every_shell_block_is_run_somewhere():
    markers = [b.marker for b in shell_blocks()]
    assert set(markers) <= {None, "ci", "make"}, markers
    ci = (ROOT / ".ci" / "run").read_text()
    assert "readme_runner.py --marked ci" in ci and "make demo" in ci and "make test" in ci
