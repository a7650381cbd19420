"""Benchmark: the same patient progress reports (HTML) made two ways, in one run.

1. A naive loop, per patient: the ``papermill`` command line, then
   ``jupyter nbconvert --to html --no-input`` (a new process, kernel and imports every time).
2. ``hipanalytics report clinic --jobs 2`` (two workers, each on one warm kernel).

It checks that both ways give identical key figures and prints the times and the ratio.
Target (issue 5): at least 5x faster than the naive loop (aim 10x).

Run: .venv/bin/python bench/bench_reports.py [N_PATIENTS]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hipanalytics.reports import TEMPLATES_DIR
from hipanalytics.store import Store
from hipanalytics.synthetic import generate_clinic, write_clinic


def main(n_patients: int = 50) -> None:
    folder = Path(tempfile.mkdtemp(prefix="hipanalytics-bench-reports-"))
    files = write_clinic(generate_clinic(n_patients, seed=7), folder / "data")
    store_path = folder / "clinic.sqlite"
    store = Store(store_path)
    for table in ("patients", "programs", "measurements", "sessions"):
        store.import_file(files[table], table)
    ids = sorted(store.read("measurements")["patient_id"].unique())
    print(f"{len(ids)} patients with measurements, synthetic store {store_path}")
    bin_dir = Path(sys.executable).parent
    template = TEMPLATES_DIR / "patient_progress.ipynb"

    naive = folder / "naive"
    naive.mkdir()
    start = time.perf_counter()
    for pid in ids:
        executed = naive / f"{pid}.ipynb"
        subprocess.run([str(bin_dir / "papermill"), str(template), str(executed), "-p", "store", str(store_path),
                        "-p", "patient_id", pid, "-p", "figures_json", str(naive / f"{pid}.json"),
                        "--no-progress-bar", "--cwd", str(naive)], check=True, capture_output=True)
        subprocess.run([str(bin_dir / "jupyter"), "nbconvert", "--to", "html", "--no-input", str(executed)],
                       check=True, capture_output=True)
    t_naive = time.perf_counter() - start

    ours = folder / "ours"
    start = time.perf_counter()
    subprocess.run([str(bin_dir / "hipanalytics"), "report", "clinic", "--store", str(store_path), "--out", str(ours),
                    "--patients", ",".join(ids), "--jobs", "2"], check=True, capture_output=True)
    t_ours = time.perf_counter() - start

    for pid in ids:
        a = json.loads((naive / f"{pid}.json").read_text())
        b = json.loads((ours / f"progress-{pid}.json").read_text())
        b.pop("stamp")
        assert a == b, f"figures differ for {pid}"
    print(f"  naive loop (papermill CLI + nbconvert CLI per patient) {t_naive:8.1f} s  {t_naive / len(ids):5.2f} s/report")
    print(f"  hipanalytics report clinic --jobs 2                   {t_ours:8.1f} s  {t_ours / len(ids):5.2f} s/report")
    print(f"  speed-up {t_naive / t_ours:5.1f}x   target >= 5x (aim 10x); key figures identical for all {len(ids)}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
