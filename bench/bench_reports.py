"""Benchmark: the same patient progress reports (HTML) made three ways, in one run, and where a
warm worker's time goes.

1. A naive loop, per patient: the ``papermill`` command line, then
   ``jupyter nbconvert --to html --no-input`` (a new process, kernel and imports every time).
2. ``hipanalytics report clinic --jobs 2`` (two worker processes, each on one warm kernel).
3. ``hipanalytics report clinic --cluster local:2`` (the same on a Dask LocalCluster of two
   worker processes, its start-up included).

It checks that all three give identical key figures for every patient and prints the times and
ratios. Targets (issue 14): 2 at least 10x faster than 1 (aim 15x); 3 at most 10% slower than 2.

Then one warm worker, in this process, makes 20 reports while every stage is timed: the kernel's
cells (each a round trip), the host's parameter injection, HTML export and file writes, and, by
replaying the kernel's work here, how the chart time splits into building, layout and drawing,
and PNG encoding.

Run: .venv/bin/python bench/bench_reports.py [N_PATIENTS]
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from hipanalytics.reports import TEMPLATES_DIR
from hipanalytics.store import Store
from hipanalytics.synthetic import generate_clinic, write_clinic


def _figures(path: Path) -> dict:
    figures = json.loads(path.read_text())
    figures.pop("stamp", None)
    return figures


def breakdown(store_path: Path, ids: list[str], folder: Path) -> None:
    """Time every stage of one warm worker over ``ids`` (in this process, as a batch worker runs)."""
    from hipanalytics import charts
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    from hipanalytics.reports import open_patient, render, render_patient
    from hipanalytics.reports.kernel import close_worker_kernel, worker_kernel

    spent: dict[str, float] = defaultdict(float)

    def timed(owner, name, label):
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - start
        setattr(owner, name, wrapper)
        return original

    start = time.perf_counter()
    render_patient(store_path, ids[0], folder / "warm-up", warm=True)
    spent.clear()
    kernel_start = time.perf_counter() - start
    exporter = render._exporter()
    originals = [(render, "_execute", timed(render, "_execute", "execute")),
                 (exporter, "from_notebook_node", timed(exporter, "from_notebook_node", "export"))]
    cells_time: dict[str, float] = defaultdict(float)
    start = time.perf_counter()
    try:
        for patient_id in ids:
            render_patient(store_path, patient_id, folder / "profile", warm=True)
            for source, seconds in worker_kernel().timings:
                cells_time[source] += seconds
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)
    total = time.perf_counter() - start
    # a kernel round trip: a notebook of empty-handed cells
    import nbformat

    blank = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("pass", metadata={"tags": ["parameters"]})]
                                     + [nbformat.v4.new_code_cell("pass") for _ in range(19)])
    worker_kernel().run(blank, {})
    trip = sorted(s for _, s in worker_kernel().timings[1:])[10]
    close_worker_kernel()

    # the kernel's chart work, replayed here and split into its stages
    stages: dict[str, float] = defaultdict(float)
    for patient_id in ids:
        t = time.perf_counter()
        p = open_patient(str(store_path), patient_id)
        stages["open"] += time.perf_counter() - t
        for make in (lambda: charts.rom_progress(p.measurements, p.programs, p.sessions, patient_id,
                                                 patients=p.patient.to_frame().T, method=p.method,
                                                 as_of=p.as_of, trends=p.trends),
                     lambda: charts.adherence_calendar(p.programs, p.sessions, patient_id, as_of=p.as_of),
                     lambda: charts.pain_chart(p.sessions, p.programs, patient_id)):
            t = time.perf_counter()
            figure = make()
            t1 = time.perf_counter()
            charts.lay_out_once(figure, 110)  # as reports.show does, through charts.png
            canvas = FigureCanvasAgg(figure)
            canvas.draw()
            t2 = time.perf_counter()
            Image.fromarray(np.asarray(canvas.buffer_rgba())).save(io.BytesIO(), format="png")  # as savefig encodes
            t3 = time.perf_counter()
            stages["build"] += t1 - t
            stages["draw"] += t2 - t1
            stages["png"] += t3 - t2

    n = len(ids)
    kernel_total = sum(cells_time.values())
    by = defaultdict(float)
    for source, seconds in cells_time.items():
        if source.startswith("(empty"):
            by["kernel: empty the namespace"] += seconds
        elif "charts." in source:
            by["kernel: three charts (build, lay out, draw, PNG, display)"] += seconds
        elif source.startswith("from IPython.display"):
            by["kernel: check parameters, store reads and analysis (open_patient)"] += seconds
        else:
            by["kernel: tables, flags, text, key figures, parameters"] += seconds
    by["host: inject parameters, collect outputs (beyond the cells)"] = spent["execute"] - kernel_total
    by["host: HTML export (nbconvert, templates loaded once)"] = spent["export"]
    by["host: store checks, fingerprint, stamps, writing HTML and JSON"] = total - spent["execute"] - spent["export"]
    print(f"\nwhere one warm worker's time goes, per report (mean of {n} reports; kernel start-up, "
          f"paid once per worker: {kernel_start:.1f} s)")
    for label, seconds in sorted(by.items(), key=lambda kv: -kv[1]):
        print(f"  {label:66} {1000 * seconds / n:7.1f} ms  {100 * seconds / total:5.1f} %")
    print(f"  {'total':66} {1000 * total / n:7.1f} ms")
    print(f"  each of the {len(cells_time)} kernel calls is a round trip of about {1000 * trip:.1f} ms "
          "(an empty cell); no watchdog thread: deadlines are checked while receiving")
    charts_total = stages["build"] + stages["draw"] + stages["png"]
    print("  the charts, replayed in one process: "
          + ", ".join(f"{label} {1000 * stages[key] / n:.0f} ms ({100 * stages[key] / charts_total:.0f} %)"
                      for key, label in (("build", "building the artists"), ("draw", "layout and drawing"),
                                         ("png", "PNG encoding")))
          + f"; open_patient alone {1000 * stages['open'] / n:.0f} ms")


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

    runs = {}
    for label, options in (("local", ["--jobs", "2"]), ("cluster", ["--cluster", "local:2"])):
        start = time.perf_counter()
        subprocess.run([str(bin_dir / "hipanalytics"), "report", "clinic", "--store", str(store_path),
                        "--out", str(folder / label), "--patients", ",".join(ids), *options],
                       check=True, capture_output=True)
        runs[label] = time.perf_counter() - start

    for pid in ids:
        expected = _figures(naive / f"{pid}.json")
        for label in runs:
            assert _figures(folder / label / f"progress-{pid}.json") == expected, f"figures differ for {pid} ({label})"
    n = len(ids)
    print(f"  naive loop (papermill CLI + nbconvert CLI per patient) {t_naive:8.1f} s  {t_naive / n:5.2f} s/report")
    print(f"  hipanalytics report clinic --jobs 2                   {runs['local']:8.1f} s  "
          f"{runs['local'] / n:5.2f} s/report  {t_naive / runs['local']:5.1f}x the naive loop (target >= 10x, aim 15x)")
    print(f"  hipanalytics report clinic --cluster local:2 (Dask)   {runs['cluster']:8.1f} s  "
          f"{runs['cluster'] / n:5.2f} s/report  {runs['cluster'] / runs['local']:5.3f} x the local batch "
          "(target <= 1.10, its start-up included)")
    print(f"  key figures identical for all {n} patients, three ways")
    breakdown(store_path, ids[:20], folder)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
