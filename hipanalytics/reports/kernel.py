"""A long-lived Jupyter kernel that runs report notebook after report notebook.

papermill starts a kernel client, waits for the kernel to be ready, writes the notebook to disk
before and after every cell and hands the result to nbconvert, which reads it back: for a report
whose cells take half a second, that bookkeeping costs as much again. A batch worker instead keeps
one kernel and one client open for its whole life and sends the cells itself, over Unix sockets
(no port races between parallel workers), collecting the outputs into the notebook in memory, as
nbclient would (``nbformat.v4.output_from_msg``). Parameters are injected by papermill's own
``parameterize_notebook``, so a report notebook runs the same way here, under papermill, or in
JupyterLab.

Every report starts from an empty namespace (every name the last one defined is removed). A cell
has ``timeout`` seconds and the report as a whole has them too: at the deadline the kernel is
interrupted; a kernel that does not come back is restarted, and one that died is replaced before
the next report. The kernel's socket and working folders are removed when it shuts down.
"""

from __future__ import annotations

import atexit
import copy
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import ReportError

__all__ = ["WarmKernel", "NotebookFailed", "worker_kernel", "close_worker_kernel", "ipc_kernel_manager"]


class NotebookFailed(ReportError):
    """A cell raised or the report ran out of time; ``executed`` is the notebook as far as it ran."""

    def __init__(self, message: str, *, executed=None, timed_out: bool = False):
        super().__init__(message)
        self.executed = executed
        self.timed_out = timed_out


class WarmKernel:
    """One kernel (``python3``, IPC transport) with its client, reused for every notebook run on it.

    Examples
    --------
    >>> kernel = WarmKernel()                                    # doctest: +SKIP
    >>> executed = kernel.run(notebook, {"patient_id": "P001"}, timeout=600)  # doctest: +SKIP
    >>> kernel.shutdown()                                        # doctest: +SKIP
    """

    def __init__(self, kernel_name: str = "python3", startup_timeout: float = 60):
        from jupyter_client.manager import KernelManager

        self._sockets = Path(tempfile.mkdtemp(prefix="hipanalytics-ipc-"))
        self._cwd = Path(tempfile.mkdtemp(prefix="hipanalytics-kernel-"))
        self.kernel_name = kernel_name
        self.km = KernelManager(kernel_name=kernel_name, transport="ipc", ip=str(self._sockets / "kernel"))
        self.km.start_kernel(cwd=str(self._cwd))
        self.kc = self.km.blocking_client()
        self.kc.start_channels()
        try:
            self.kc.wait_for_ready(timeout=startup_timeout)
            # The package's modules loaded once, then kept out of the garbage collector's way:
            # later collections walk what a report allocates, not all of pandas and matplotlib.
            self._execute("import gc, hipanalytics.charts, hipanalytics.reports; gc.freeze()",
                          time.monotonic() + startup_timeout, outputs=None)
        except (RuntimeError, NotebookFailed):
            self.shutdown()
            raise
        self.reports = 0
        self.timings: list[tuple[str, float]] = []  # the last notebook's (cell's first line, seconds)
        self._lock = threading.Lock()  # one notebook at a time, whatever the threads of the worker

    # -- running ---------------------------------------------------------------------------------

    def alive(self) -> bool:
        return self.km.is_alive()

    def run(self, notebook, parameters: dict[str, Any], *, timeout: float = 600, cwd: str | Path | None = None):
        """Run ``notebook`` (a NotebookNode, changed in place and returned) with ``parameters``
        injected after its ``parameters`` cell, on an emptied namespace.

        Raises
        ------
        NotebookFailed
            A cell raised (the message is its error) or the report took longer than ``timeout``
            seconds; ``executed`` is the notebook with the outputs up to there.
        """
        from papermill.parameterize import parameterize_notebook

        nb = copy.deepcopy(notebook)
        nb.metadata.setdefault("papermill", {"default_parameters": {}, "parameters": {}, "environment_variables": {}})
        for cell in nb.cells:  # what papermill's reader adds, as its parameterisation expects
            cell.metadata.setdefault("tags", [])
            cell.metadata.setdefault("papermill", {})
        nb = parameterize_notebook(nb, parameters, kernel_name=self.kernel_name, language="python")
        with self._lock:
            return self._run(nb, timeout, cwd)

    def _run(self, nb, timeout: float, cwd):
        deadline = time.monotonic() + timeout
        # Into the report's folder (the last report's may be gone), then every name the last report
        # defined is removed. Not ``%reset -f``: its full garbage collection costs a fifth of a second
        # per report with pandas, SciPy and matplotlib loaded; the collector runs on its own anyway.
        setup = (f"(lambda ip, os: (os.chdir({str(cwd or self._cwd)!r}), "
                 "[ip.user_ns.pop(k) for k in list(ip.user_ns) if k not in ip.user_ns_hidden]))"
                 "(get_ipython(), __import__('os'));")
        self.timings = []
        start = time.perf_counter()
        self._execute(setup, deadline, outputs=None)
        self.timings.append(("(empty the namespace)", time.perf_counter() - start))
        count = 0
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            cell.outputs = []
            if not cell.source.strip():
                continue
            count += 1
            cell.execution_count = count
            start = time.perf_counter()
            try:
                self._execute(cell.source, deadline, outputs=cell.outputs)
            except NotebookFailed as exc:
                exc.executed = nb
                raise
            self.timings.append((cell.source.strip().splitlines()[0], time.perf_counter() - start))
        self.reports += 1
        return nb

    def _execute(self, code: str, deadline: float, *, outputs: list | None) -> None:
        from nbformat.v4 import output_from_msg

        msg_id = self.kc.execute(code, store_history=False, allow_stdin=False, stop_on_error=True)
        error = None  # from the error output; the reply below is read so no reply piles up unread
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._interrupt()
                raise NotebookFailed("ran out of time", timed_out=True)
            try:
                msg = self.kc.get_iopub_msg(timeout=min(remaining, 1.0))  # a second at a time: is it alive?
            except Exception:  # noqa: BLE001 - queue.Empty: nothing within that second
                if not self.alive():
                    raise NotebookFailed("the kernel died") from None
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue  # left over from an interrupted report
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content["execution_state"] == "idle":
                break
            if kind == "error":
                error = f"{content['ename']}: {content['evalue']}"
            if outputs is None:
                continue
            if kind == "clear_output":
                outputs.clear()
            elif kind in ("stream", "display_data", "execute_result", "error"):
                outputs.append(output_from_msg(msg))
        self._reply(msg_id, deadline)
        if error is not None:
            raise NotebookFailed(error)

    def _reply(self, msg_id: str, deadline: float) -> None:
        while True:
            try:
                reply = self.kc.get_shell_msg(timeout=max(1.0, deadline - time.monotonic()))
            except Exception:  # noqa: BLE001 - queue.Empty: a reply that never came is not waited for
                return
            if reply["parent_header"].get("msg_id") == msg_id:
                return

    def _interrupt(self) -> None:
        """Stop the running cell; a kernel that does not return to idle within 10 s is restarted."""
        self.km.interrupt_kernel()
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                msg = self.kc.get_iopub_msg(timeout=max(0.01, end - time.monotonic()))
            except Exception:  # noqa: BLE001 - queue.Empty
                break
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return
        self.km.restart_kernel(now=True)
        self.kc.wait_for_ready(timeout=60)

    # -- ending ----------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop the kernel and remove its folders (idempotent)."""
        try:
            self.kc.stop_channels()
            if self.km.has_kernel:
                self.km.shutdown_kernel(now=True)
        finally:
            self.km.cleanup_resources()
            shutil.rmtree(self._sockets, ignore_errors=True)
            shutil.rmtree(self._cwd, ignore_errors=True)


def ipc_kernel_manager(prefix: str | Path):
    """A kernel manager class whose kernels talk over Unix sockets named ``prefix-N`` instead of
    TCP ports, so parallel report runs cannot race for the same port (a known failure of parallel
    papermill runs); for papermill's ``kernel_manager_class``."""
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            kwargs.setdefault("transport", "ipc")
            kwargs.setdefault("ip", str(prefix))
            super().__init__(**kwargs)

    return IPCKernelManager


_WORKER: dict[str, Any] = {}


def worker_kernel() -> WarmKernel:
    """This process's warm kernel: started on first use, replaced when it died, shut down (and its
    folders removed) when the process exits or :func:`close_worker_kernel` is called."""
    kernel = _WORKER.get("kernel")
    if kernel is not None and kernel.alive():
        return kernel
    if kernel is not None:
        kernel.shutdown()
    if "exit" not in _WORKER:
        _WORKER["exit"] = atexit.register(close_worker_kernel)
    _WORKER["kernel"] = kernel = WarmKernel()
    return kernel


def close_worker_kernel() -> None:
    """Shut this process's warm kernel down, if it has one."""
    kernel = _WORKER.pop("kernel", None)
    if kernel is not None:
        kernel.shutdown()
