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


WALKTHROUGH = [  # what the steps of the README's walk-through ("One patient, from prescription to discharge") print
    "p101.csv -> patients: 1 rows read, 1 imported",
    "P101-20260601-daily: Daily breakouts, 2026-06-01 to 2026-07-12, 84 sessions, 42 with breakouts",
    "saved in p101.sqlite: program P101-20260601-daily",
    "p101-visit1.csv -> measurements: 3 rows read, 3 imported",
    "p101-week1.csv -> sessions: 5 rows read, 5 imported",
    "worklist on 2026-06-05: 1 active patient, 1 needing attention\n"
    "  P101: new pain flag; next: review tolerance before the next breakout session\n",
    "P101: daily -> three-per-week from 2026-06-08 (pain rise after daily breakouts)\n"
    "  ended  P101-20260601-daily: now ends 2026-06-07 (was 2026-07-12); kept on record\n"
    "  new    P101-20260608-three-per-week: Breakouts 3x/week, 2026-06-08 to 2026-07-12",
    "  first breakout day: Wed 2026-06-10 (2 days without breakouts after the last daily one, Sun 2026-06-07)",
    "  handout     reports/p101/P101-20260608-three-per-week/handout.html",
    "p101-weeks2-3.csv -> sessions: 5 rows read, 5 imported",
    "p101-visit2.csv -> measurements: 3 rows read, 3 imported",
    "  html  reports/p101/progress-P101.html",
    "P101: episode of care P101-E20260601 (2026-06-01 to 2026-06-26) discharged on 2026-06-26 (goals met)\n"
    "  program P101-20260608-three-per-week ended early on 2026-06-26 (was to 2026-07-12); kept on record\n",
    "1 patients; current program as of 2026-06-26",
    " discharged 2026-06-26 (goals met) ",
]


def _check_walkthrough(output: str, clone: Path) -> None:
    """Each step's lines appear, in the order of the steps; the report tells the pain before the switch
    as history and judges the new schedule on its own; the discharged patient is not active."""
    import html

    at = 0
    for expected in WALKTHROUGH:
        found = output.find(expected, at)
        assert found >= 0, f"the walk-through did not print, after what came before:\n{expected}\n---\n{output}"
        at = found + len(expected)
    assert output.rstrip().splitlines()[-1].split()[-1] == "2", "P101 is still listed as active after the discharge"
    report = html.unescape((clone / "reports" / "p101" / "progress-P101.html").read_text(encoding="utf-8"))
    assert ("Before the switch to three-per-week on 2026-06-08, pain rose by 2+ points after 1 breakout session on "
            "daily (2026-06-05: 2 -> 6).") in report
    assert "No pain flag in the last 5 breakout sessions on three-per-week breakouts since 2026-06-08" in report


def test_readme_shell_blocks_run_in_order_on_a_fresh_checkout(tmp_path):
    clone = _fresh_copy(tmp_path / "clone")
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("HIPANALYTICS_STORE", "XDG_CACHE_HOME")}
    env["HOME"] = str(home)
    blocks = [b for b in shell_blocks(clone / "README.md") if b.marker is None]
    assert len(blocks) >= 4
    walked = False
    for block in blocks:
        result = run_block(block, clone, env)
        assert result.returncode == 0, (f"README.md block at line {block.line} failed:\n{result.stdout[-3000:]}\n"
                                        f"{result.stderr[-5000:]}")
        if "HIPANALYTICS_STORE=p101.sqlite" in block.code:
            _check_walkthrough(result.stdout, clone)
            walked = True
    assert walked, "the README's walk-through block is missing"
    assert (clone / "hipanalytics.sqlite").is_file() and (clone / "research" / "patients.csv").is_file()
    assert (clone / "reports" / "patients" / "progress-SYN-00004.pdf").is_file()
    # the 40 sample patients and NEW-01, the patient added in the quarantine round trip
    assert len(list((clone / "reports" / "everyone").glob("progress-*.html"))) == 41


def test_every_shell_block_is_run_somewhere():
    markers = [b.marker for b in shell_blocks()]
    assert set(markers) <= {None, "ci", "make"}, markers
    ci = (ROOT / ".ci" / "run").read_text()
    assert "readme_runner.py --marked ci" in ci and "make demo" in ci and "make test" in ci
