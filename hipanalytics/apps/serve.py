"""Serving the apps with Voilà, and JupyterLab at the notebooks.

The commands are built by plain functions (tested) and run by :func:`run`. Both listen on this
machine only unless a host is given: the apps have no login of their own, and patient data
beyond one machine need an authenticated deployment (e.g. JupyterHub behind HTTPS).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ..config import PACKAGE_DIR, STORE_ENV

__all__ = ["APPS", "APPS_DIR", "NOTEBOOKS_DIR", "voila_command", "lab_command", "exposure_warning", "run"]

NOTEBOOKS_DIR = PACKAGE_DIR.parent / "notebooks"
"""The notebooks of the source checkout (report templates, tutorials, apps)."""

APPS_DIR = NOTEBOOKS_DIR / "apps"

APPS = {"builder": "program_builder.ipynb", "entry": "data_entry.ipynb", "dashboard": "dashboard.ipynb"}
"""App name -> its notebook in :data:`APPS_DIR`."""

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def voila_command(app: str, *, port: int = 8866, host: str = "127.0.0.1", idle_minutes: int = 60,
                  open_browser: bool = True) -> list[str]:
    """The Voilà command line that serves one app.

    Kernels of closed pages are shut down after ``idle_minutes`` without activity (checked every
    minute); an open page keeps its kernel.

    Examples
    --------
    >>> cmd = voila_command("builder", port=9000, open_browser=False)
    >>> cmd[3].endswith("program_builder.ipynb"), "--Voila.ip=127.0.0.1" in cmd, "--no-browser" in cmd
    (True, True, True)
    """
    if app not in APPS:
        raise ValueError(f"unknown app {app!r}: expected one of {', '.join(APPS)}")
    return [
        sys.executable, "-m", "voila", str(APPS_DIR / APPS[app]),
        f"--Voila.ip={host}", f"--port={port}", "--Voila.port_retries=0",
        "--MappingKernelManager.cull_interval=60",
        f"--MappingKernelManager.cull_idle_timeout={idle_minutes * 60}",
        "--MappingKernelManager.cull_connected=False",
        "--VoilaConfiguration.show_tracebacks=False",
        "--strip_sources=True",
        *([] if open_browser else ["--no-browser"]),
    ]


def lab_command(*, port: int = 8888, host: str = "127.0.0.1", open_browser: bool = True,
                allow_root: bool = False) -> list[str]:
    """The JupyterLab command line, opened at the notebooks folder.

    Examples
    --------
    >>> cmd = lab_command(open_browser=False)
    >>> cmd[1:3], cmd[3].endswith("notebooks")
    (['-m', 'jupyterlab'], True)
    """
    return [
        sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={NOTEBOOKS_DIR}",
        f"--ServerApp.ip={host}", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        *([] if open_browser else ["--no-browser"]),
        *(["--allow-root"] if allow_root else []),
    ]


def exposure_warning(host: str) -> str:
    """What the command says before serving: who can reach the app, and what that means for patient data."""
    if host in LOCAL_HOSTS:
        return ("Serving on this machine only (localhost). The app has no login: patient data may be used like "
                "this on one machine, but serving it beyond one machine needs an authenticated deployment "
                "(for example JupyterHub behind HTTPS).")
    return (f"WARNING: serving on {host}: anyone who can reach this address sees and changes patient records, "
            "and nothing is encrypted. Use an authenticated deployment (for example JupyterHub behind HTTPS) "
            "for patient data beyond one machine.")


def run(command: list[str], *, store: str | Path | None = None) -> int:
    """Run a server command until it stops (Ctrl-C), with ``$HIPANALYTICS_STORE`` set to ``store``."""
    env = dict(os.environ)
    if store is not None:
        text = str(store)
        env[STORE_ENV] = text if "://" in text else str(Path(text).resolve())
    try:
        return subprocess.run(command, env=env, check=False).returncode
    except KeyboardInterrupt:
        return 0
