"""The clinic batch on Dask distributed, and the warm kernel every batch worker runs reports on."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from hipanalytics.cli import main
from hipanalytics.errors import ReportError
from hipanalytics.progress import patient_progress
from hipanalytics.reports import render_clinic
from hipanalytics.reports.kernel import NotebookFailed, WarmKernel
from hipanalytics.store import Store
from hipanalytics.synthetic import generate_clinic

from .stores import clinic_store


@pytest.fixture(scope="module")
def store_path(tmp_path_factory) -> str:
    return str(clinic_store(generate_clinic(8, seed=11), tmp_path_factory.mktemp("clinic")))


def _notebook(*sources: str):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 0", metadata={"tags": ["parameters"]}),
                                         *(nbformat.v4.new_code_cell(s) for s in sources)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def test_a_warm_kernel_runs_notebook_after_notebook_each_from_an_empty_namespace(tmp_path):
    kernel = WarmKernel()
    folders = [kernel._sockets, kernel._cwd]
    try:
        first = kernel.run(_notebook("secret = x * 2\nprint(secret)"), {"x": 21}, cwd=tmp_path)
        assert first.cells[2].outputs[0]["text"] == "42\n"
        assert "x = 21" in first.cells[1].source and first.cells[1].metadata["tags"] == ["injected-parameters"]
        second = kernel.run(_notebook("print('secret' in dir(), x, os.getcwd() if 'os' in dir() else 'no os')"),
                            {"x": 1}, cwd=tmp_path)
        assert second.cells[2].outputs[0]["text"] == "False 1 no os\n"  # nothing survives the last report
        with pytest.raises(NotebookFailed, match="ZeroDivisionError") as failed:
            kernel.run(_notebook("y = 1", "1 / 0", "never = 1"), {})
        cells = failed.value.executed.cells
        assert cells[3].outputs[0]["output_type"] == "error" and cells[4].outputs == []
        assert kernel.alive() and kernel.reports == 2
    finally:
        kernel.shutdown()
    assert not any(folder.exists() for folder in folders)  # its socket and working folders go with it


def test_a_warm_kernel_that_died_is_replaced_for_the_next_report(tmp_path):
    from hipanalytics.reports.kernel import close_worker_kernel, worker_kernel

    try:
        kernel = worker_kernel()
        with pytest.raises(NotebookFailed, match="the kernel died"):
            kernel.run(_notebook("import os; os._exit(3)"), {}, timeout=30)
        again = worker_kernel()
        assert again is not kernel and again.alive()
        assert again.run(_notebook("print(x + 1)"), {"x": 1}).cells[2].outputs[0]["text"] == "2\n"
    finally:
        close_worker_kernel()


def test_on_a_local_dask_cluster_a_killed_worker_s_report_is_made_on_another(store_path, tmp_path):
    from distributed import Client, LocalCluster

    ids = sorted(Store(store_path).read("measurements")["patient_id"].unique())[:6]
    assert len(ids) == 6
    out = tmp_path / "cluster"
    killed: dict[str, object] = {}

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:

        def kill_a_busy_worker():
            """Once the first report is written, SIGKILL a worker while it runs a report."""
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and "pid" not in killed:
                if list(out.glob("progress-*.json")):
                    for worker, keys in client.processing().items():
                        if keys:
                            killed["keys"] = list(keys)
                            killed["pid"] = client.run(os.getpid, workers=[worker])[worker]
                            os.kill(killed["pid"], signal.SIGKILL)
                            break
                time.sleep(0.05)

        thread = threading.Thread(target=kill_a_busy_worker, daemon=True)
        thread.start()
        result = render_clinic(store_path, out, patients=ids, cluster=client, progress=False)
        thread.join(timeout=5)

    assert "pid" in killed, "no worker was killed mid-batch: the test did not test anything"
    rerun = {str(key).split(":", 1)[1] for key in killed["keys"]}
    assert rerun <= set(ids) and rerun  # the reports the killed worker was running
    assert result["failed"] == {} and sorted(result["done"]) == ids
    store = Store(store_path)
    for patient_id in ids:  # every report there, with the package's figures, whoever made it
        written = json.loads((out / f"progress-{patient_id}.json").read_text())
        written.pop("stamp")
        expected = patient_progress(store, patient_id, as_of=result["as_of"]).key_figures  # the batch's one date
        assert written == json.loads(json.dumps(expected, default=str))
        assert (out / f"progress-{patient_id}.html").stat().st_size > 10_000
    index = result["index"].read_text()
    assert all(f'href="progress-{p}.html"' in index for p in ids)


def test_cluster_option_refuses_what_is_not_a_cluster(store_path, tmp_path):
    for value, message in (("local:0", "expected local:N"), ("localhost", "expected a scheduler address")):
        result = CliRunner().invoke(main, ["report", "clinic", "--store", store_path, "--out", str(tmp_path),
                                           "--all", "--cluster", value])
        assert result.exit_code == 1 and message in result.output, result.output
    with pytest.raises(ReportError, match="cannot reach the Dask scheduler"):
        render_clinic(store_path, tmp_path, patients=["SYN-00001"], cluster="tcp://127.0.0.1:9", progress=False)
    assert not list(Path(tmp_path).glob("progress-*"))


def test_a_killed_local_worker_process_does_not_lose_the_batch(store_path, tmp_path):
    import psutil

    ids = sorted(Store(store_path).read("measurements")["patient_id"].unique())[:6]
    out = tmp_path / "local"
    killed: list[int] = []

    def kill_a_pool_worker():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            workers = [p for p in psutil.Process().children() if "multiprocessing" in " ".join(p.cmdline())
                       and "resource_tracker" not in " ".join(p.cmdline())]
            if list(out.glob("progress-*.json")) and workers:
                killed.append(workers[0].pid)
                workers[0].kill()
            time.sleep(0.05)

    thread = threading.Thread(target=kill_a_pool_worker, daemon=True)
    thread.start()
    result = render_clinic(store_path, out, patients=ids, jobs=2, progress=False)
    thread.join(timeout=5)
    assert killed, "no worker process was killed mid-batch: the test did not test anything"
    assert result["failed"] == {} and sorted(result["done"]) == ids
    store = Store(store_path)
    for patient_id in ids:
        written = json.loads((out / f"progress-{patient_id}.json").read_text())
        written.pop("stamp")
        expected = patient_progress(store, patient_id, as_of=result["as_of"]).key_figures  # the batch's one date
        assert written == json.loads(json.dumps(expected, default=str))
