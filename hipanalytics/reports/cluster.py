"""The clinic batch on Dask distributed: the same reports, on workers of one or many machines.

Each Dask worker holds one warm report kernel, started by a worker plugin when the worker joins
and shut down with it, and runs the same work unit as the local batch
(:func:`hipanalytics.reports.batch.render_one`): it reads the shared store and writes the report
into the shared output folder. Dask runs a task again on another worker when its worker dies
(up to ``distributed.scheduler.allowed-failures`` times, 3 by default); a report that fails
(a notebook error, a timeout) is retried on its worker and then recorded as failed, as on one
machine. See ``docs/cluster.md`` for a deployment on several machines.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

from ..errors import ReportError
from .kernel import close_worker_kernel, worker_kernel

try:
    from distributed import WorkerPlugin
except ImportError:  # the optional extra is not installed: connect() says how to install it
    WorkerPlugin = object

__all__ = ["WarmKernelPlugin", "connect", "run_on_cluster"]


class WarmKernelPlugin(WorkerPlugin):
    """Starts the worker's report kernel when the worker starts; stops it with the worker."""

    name = "hipanalytics-warm-kernel"

    def setup(self, worker):
        worker_kernel()

    def teardown(self, worker):
        close_worker_kernel()


@contextlib.contextmanager
def connect(cluster) -> Iterator:
    """A ``distributed.Client`` for ``cluster``: a Client (used as it is), ``"local:N"`` (a
    LocalCluster of N single-threaded worker processes on this machine, closed afterwards) or a
    scheduler address (``tcp://HOST:8786``)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ReportError("--cluster needs Dask distributed: pip install 'hipanalytics[cluster]'") from None
    if isinstance(cluster, Client):
        yield cluster
        return
    text = str(cluster).strip()
    if text.startswith("local:"):
        count = text.removeprefix("local:")
        if not count.isdigit() or int(count) < 1:
            raise ReportError(f"--cluster {text!r}: expected local:N with N worker processes, e.g. local:2")
        with LocalCluster(n_workers=int(count), threads_per_worker=1, processes=True, dashboard_address=None) as local:
            with Client(local) as client:
                yield client
        return
    if "://" not in text:
        raise ReportError(f"--cluster {text!r}: expected a scheduler address (tcp://HOST:8786) or local:N")
    try:
        client = Client(text, timeout="10s")
    except OSError as exc:
        raise ReportError(f"--cluster {text}: cannot reach the Dask scheduler ({exc})") from None
    with client:
        yield client


def run_on_cluster(cluster, work: list[tuple]) -> Iterator[tuple[str, dict | None, str | None]]:
    """Results of the batch's work units as they come, from the workers of ``cluster``."""
    from distributed import as_completed

    from .batch import render_one

    with connect(cluster) as client:
        client.register_plugin(WarmKernelPlugin())
        batch = uuid.uuid4().hex[:8]
        futures = {client.submit(render_one, item, key=f"hipanalytics-report-{batch}:{item[1]}", pure=False): item[1]
                   for item in work}
        for future in as_completed(futures):
            try:
                yield future.result()
            except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker: the report's workers kept dying
                yield futures[future], None, f"failed on the cluster: {type(exc).__name__}: {exc}"
