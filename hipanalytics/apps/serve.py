"""Serving the apps with Voilà, and JupyterLab at the notebooks.

The commands are built by plain functions (tested) and run by :func:`run`. Both listen on this
machine only unless a host is given: the apps have no login of their own, and patient data
beyond one machine need an authenticated deployment (e.g. JupyterHub behind HTTPS).

Everything the apps show comes from this machine: Voilà runs with the package's own template
(``hipanalytics/jupyter/voila/templates/hipanalytics``), which drops the lab template's links to
a CDN. :func:`run` stops the server and every process it started (kernels included) on
SIGTERM, SIGINT (Ctrl-C) or SIGHUP, and waits for them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from ..config import PACKAGE_DIR, SAMPLE_ENV, STORE_ENV, notebooks_dir, package_folder
from ..errors import ServeError

__all__ = ["APPS", "APPS_DIR", "NOTEBOOKS_DIR", "VOILA_TEMPLATE", "voila_command", "lab_command", "lab_folder",
           "exposure_warning", "check_port", "new_token", "run"]

NOTEBOOKS_DIR = notebooks_dir()
"""The shipped notebooks (report templates, tutorials, apps); ``notebooks/`` in a checkout links here."""

APPS_DIR = NOTEBOOKS_DIR / "apps"

APPS = {"builder": "program_builder.ipynb", "entry": "data_entry.ipynb", "dashboard": "dashboard.ipynb"}
"""App name -> its notebook in :data:`APPS_DIR`."""

VOILA_TEMPLATE = "hipanalytics"
"""The Voilà template the apps are served with (found through ``JUPYTER_PATH``, see :func:`run`)."""

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def voila_command(app: str, *, port: int = 8866, host: str = "127.0.0.1", idle_minutes: int = 60,
                  open_browser: bool = True) -> list[str]:
    """The Voilà command line that serves one app.

    Kernels of closed pages are shut down after ``idle_minutes`` without activity (checked every
    minute); an open page keeps its kernel.

    Who may ask: every request needs the launch's token (``$JUPYTER_TOKEN``, set by :func:`run`
    from :func:`new_token`; in the URL the command prints, then a cookie), as JupyterLab does.
    Served on this machine, a request naming any other host (``Host: evil.example``, the shape of a
    DNS-rebinding attack) is refused with 403, and the kernel websocket refuses a page of another
    origin (Voilà's own default lets any host through).

    Examples
    --------
    >>> cmd = voila_command("builder", port=9000, open_browser=False)
    >>> cmd[3].endswith("program_builder.ipynb"), "--Voila.ip=127.0.0.1" in cmd, "--no-browser" in cmd
    (True, True, True)
    >>> "--template=hipanalytics" in cmd, "--Voila.auto_token=True" in cmd
    (True, True)
    >>> [c for c in cmd if "tornado_settings" in c]
    ["--Voila.tornado_settings={'allow_remote_access': False, 'local_hostnames': ['localhost']}"]
    """
    if app not in APPS:
        raise ValueError(f"unknown app {app!r}: expected one of {', '.join(APPS)}")
    local = host in LOCAL_HOSTS  # elsewhere the Host check cannot tell the served name from another: the token guards
    settings = {"allow_remote_access": not local, "local_hostnames": ["localhost"]}
    return [
        sys.executable, "-m", "voila", str(APPS_DIR / APPS[app]),
        f"--Voila.ip={host}", f"--port={port}", "--Voila.port_retries=0",
        "--Voila.auto_token=True", f"--Voila.tornado_settings={settings!r}",
        f"--template={VOILA_TEMPLATE}",
        "--MappingKernelManager.cull_interval=60",
        f"--MappingKernelManager.cull_idle_timeout={idle_minutes * 60}",
        "--MappingKernelManager.cull_connected=False",
        "--VoilaConfiguration.show_tracebacks=False",
        "--strip_sources=True",
        *([] if open_browser else ["--no-browser"]),
    ]


def lab_folder(folder: str | Path | None = None) -> tuple[Path, list[Path]]:
    """The folder JupyterLab opens, and the notebooks copied into it.

    In a source checkout, its ``notebooks/`` (a link to the shipped notebooks, edited in place by
    developers). Installed from a wheel, the shipped notebooks are copied into ``folder``
    (default ``./hipanalytics-notebooks``) so that running them writes beside them, never inside
    the installed package; notebooks already there are kept as they are.

    Returns
    -------
    (Path, list of Path)
        The folder, and the notebooks this call copied (empty when nothing was new).
    """
    checkout = PACKAGE_DIR.parent / "notebooks"
    if folder is None and checkout.is_dir() and checkout.resolve() == NOTEBOOKS_DIR.resolve():
        return checkout, []
    target = Path(folder) if folder is not None else Path.cwd() / "hipanalytics-notebooks"
    copied = []
    for source in sorted(NOTEBOOKS_DIR.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in source.parts:
            continue
        dest = target / source.relative_to(NOTEBOOKS_DIR)
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)
            copied.append(dest)
    return target, copied


def lab_command(folder: str | Path, *, port: int = 8888, host: str = "127.0.0.1", open_browser: bool = True,
                allow_root: bool = False) -> list[str]:
    """The JupyterLab command line, opened at ``folder``.

    Examples
    --------
    >>> cmd = lab_command("notebooks", open_browser=False)
    >>> cmd[1:3], cmd[3].endswith("notebooks")
    (['-m', 'jupyterlab'], True)
    """
    return [
        sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={Path(folder).resolve()}",
        f"--ServerApp.ip={host}", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        *([] if open_browser else ["--no-browser"]),
        *(["--allow-root"] if allow_root else []),
    ]


def exposure_warning(host: str) -> str:
    """What the command says before serving: who can reach the app, and what that means for patient data."""
    if host in LOCAL_HOSTS:
        return ("Serving on this machine only (localhost), to requests that name this machine and carry this "
                "launch's token. The app has no login of its own: patient data may be used like this on one "
                "machine, but serving it beyond one machine needs an authenticated deployment (for example "
                "JupyterHub behind HTTPS).")
    return (f"WARNING: serving on {host}: anyone who can reach this address sees and changes patient records, "
            "and nothing is encrypted. Use an authenticated deployment (for example JupyterHub behind HTTPS) "
            "for patient data beyond one machine.")


def check_port(host: str, port: int) -> None:
    """Refuse a port that another program already listens on, before anything is started.

    Raises
    ------
    ServeError
        Naming the port and how to choose another.

    Examples
    --------
    >>> import socket
    >>> with socket.create_server(("127.0.0.1", 0)) as taken:
    ...     check_port("127.0.0.1", taken.getsockname()[1])
    Traceback (most recent call last):
    ...
    hipanalytics.errors.ServeError: port ... on 127.0.0.1 is already in use ...
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServeError(f"cannot listen on {host!r}: {exc.strerror}") from None
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
            try:
                probe.bind(address)
            except OSError as exc:
                raise ServeError(
                    f"port {port} on {host} is already in use ({exc.strerror}): another app or server is "
                    f"listening there. Stop it, or choose another port with --port (e.g. --port {port + 1})."
                ) from None


def _descendants(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _stop(server: subprocess.Popen, timeout: float) -> None:
    """Stop the server's process group and every process it started (kernels run in sessions of
    their own, so they are tracked as descendants), escalating to SIGKILL after ``timeout``."""
    import psutil

    children = _descendants(server.pid)
    try:
        os.killpg(server.pid, signal.SIGTERM)  # Voilà and JupyterLab shut their kernels down on SIGTERM
    except ProcessLookupError:
        pass
    try:
        server.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(server.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        server.wait()
    _, alive = psutil.wait_procs(children, timeout=timeout)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=timeout)


def new_token() -> str:
    """A per-launch token for the apps' URL: 256 random bits, URL-safe."""
    import secrets

    return secrets.token_urlsafe(32)


def run(command: list[str], *, store: str | Path | None = None, sample: bool = False, stop_timeout: float = 20,
        token: str | None = None) -> int:
    """Run a server command until it stops, with ``$HIPANALYTICS_STORE`` set to ``store`` (and
    ``$JUPYTER_TOKEN`` to ``token``: in the environment, never on a command line other users can read).

    With ``sample``, ``store`` is a private copy of the synthetic sample store, and
    ``$HIPANALYTICS_SAMPLE_STORE`` names it too, so the apps say they run on the sample; otherwise
    that variable is removed (a store named by the user is never taken for the sample).

    The server runs in a process group of its own. SIGTERM, SIGINT (Ctrl-C) and SIGHUP sent to
    this process stop the server and every process it started (its kernels included): they are
    asked to stop, given ``stop_timeout`` seconds, then killed. Nothing is left serving.

    Returns
    -------
    int
        The server's exit code, or 0 when it was stopped by one of those signals.
    """
    env = dict(os.environ)
    if store is not None:
        text = str(store)
        env[STORE_ENV] = text if "://" in text else str(Path(text).resolve())
    env.pop(SAMPLE_ENV, None)
    if token is not None:
        env["JUPYTER_TOKEN"] = token
    if sample and store is not None:
        env[SAMPLE_ENV] = env[STORE_ENV]
    # The package's Voilà template (offline) is found through JUPYTER_PATH.
    env["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(package_folder("jupyter")), env.get("JUPYTER_PATH")) if p)
    stopping: list[int] = []

    def request_stop(signum, _frame):
        stopping.append(signum)

    previous = {signum: signal.signal(signum, request_stop) for signum in STOP_SIGNALS}
    try:
        server = subprocess.Popen(command, env=env, start_new_session=True)
    except BaseException:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        raise
    try:
        while not stopping:
            try:
                return server.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                continue
        print(f"stopping (signal {signal.Signals(stopping[0]).name}) ...", file=sys.stderr, flush=True)
        return 0
    finally:
        try:
            if server.poll() is None:
                _stop(server, stop_timeout)  # further stop signals are absorbed until this is done
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
