"""``hipanalytics app`` as a clinic's IT person runs it: it stops cleanly, refuses a taken port
before starting, and the sample it serves is a private copy that goes when it stops."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from hipanalytics.cli import main
from hipanalytics.store import Store
from hipanalytics.synthetic import sample_store, sample_store_path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _token(log_path: Path) -> str:
    """The launch's token, from the address the command printed (LookupError until it has)."""
    found = re.search(r"/\?token=([\w-]+) ", log_path.read_text())
    if not found:
        raise LookupError("no token printed yet")
    return found.group(1)


@contextlib.contextmanager
def _served_app(tmp_path: Path, *args: str):
    """Start ``hipanalytics app builder`` and request its page (so that a kernel runs); yields the
    process, its port and a function returning what it printed. Killed if the test leaves it."""
    port = _free_port()
    log_path = tmp_path / "app.log"
    with log_path.open("w") as log:
        app = subprocess.Popen([sys.executable, "-m", "hipanalytics.cli", "app", "builder", *args, "--port",
                                str(port), "--no-browser"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:  # the page request makes Voilà start a kernel and run the app notebook on it
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/?token={_token(log_path)}", timeout=60) as page:
                    page.read()
                break
            except (OSError, LookupError):
                if app.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the app did not start:\n{log_path.read_text()}")
                time.sleep(0.5)
        yield app, port, log_path.read_text
    finally:
        if app.poll() is None:
            for process in psutil.Process(app.pid).children(recursive=True):
                process.kill()
            app.kill()
            app.wait()


@pytest.fixture
def clinic_store(tmp_path) -> Path:
    path = tmp_path / "clinic.sqlite"
    with Store(path) as store:
        store.add_records("patients", [{"patient_id": "P001", "birth_year": 1970, "involved_side": "right"}])
    return path


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_a_stop_signal_closes_the_port_and_leaves_no_server_or_kernel(signum, tmp_path, clinic_store):
    with _served_app(tmp_path, "--store", str(clinic_store)) as (app, port, output):
        started = psutil.Process(app.pid).children(recursive=True)
        commands = [" ".join(p.cmdline()) for p in started]
        assert any("voila" in c for c in commands) and any("ipykernel" in c for c in commands), commands
        os.kill(app.pid, signum)  # the command's own process only, as `kill PID` does
        assert app.wait(timeout=60) == 0
    assert not _listening(port), "the port still answers after the app stopped"
    left = [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"processes left running: {[p.cmdline() for p in left]}"
    assert f"stopping (signal {signum.name})" in output()


def test_a_taken_port_is_refused_before_anything_starts(tmp_path, clinic_store):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = CliRunner().invoke(main, ["app", "entry", "--store", str(clinic_store), "--port", str(port),
                                           "--no-browser"])
    assert result.exit_code == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.output and "--port" in result.output
    assert "open http" not in result.output


def test_the_sample_app_serves_a_private_copy_that_goes_when_it_stops(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with _served_app(tmp_path, "--sample") as (app, port, output):
        store = Path(re.search(r"store: (\S+) \(synthetic sample", output()).group(1))
        assert store.is_file() and stat.S_IMODE(store.parent.stat().st_mode) == 0o700
        with Store(store, create=False) as opened:
            assert len(opened.read("patients")) == 40
        app.send_signal(signal.SIGTERM)
        assert app.wait(timeout=60) == 0
    assert not store.parent.exists(), "the private sample store outlived the app"
    assert not (tmp_path / "cache" / "hipanalytics").exists()  # the served sample is not the cached one


def test_the_cached_sample_is_reused_until_something_is_saved_into_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = sample_store()
    assert path == sample_store_path() and path.parent == tmp_path / "cache" / "hipanalytics"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    built = path.stat().st_mtime_ns
    assert sample_store() == path and path.stat().st_mtime_ns == built  # reused as it is
    with Store(path, create=False) as store:
        store.add_records("patients", [{"patient_id": "P999", "birth_year": 1980, "involved_side": "left"}])
    assert sample_store() == path
    with Store(path, create=False) as store:  # built anew: the entry saved into the sample is gone
        assert "P999" not in set(store.read("patients")["patient_id"]) and len(store.read("patients")) == 40


def _request(port: int, path: str, headers: dict) -> int:
    """The status of a GET to the app (redirects not followed)."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def test_the_app_answers_only_its_own_host_origin_and_token(tmp_path, clinic_store):
    # the shape of a DNS-rebinding attack: a hostile page whose name resolves to 127.0.0.1
    with _served_app(tmp_path, "--store", str(clinic_store)) as (app, port, output):
        token = _token(tmp_path / "app.log")
        assert f"open http://localhost:{port}/?token={token} " in output()
        here = f"127.0.0.1:{port}"
        assert _request(port, f"/?token={token}", {"Host": here}) == 200
        assert _request(port, f"/?token={token}", {"Host": f"localhost:{port}"}) == 200
        assert _request(port, f"/?token={token}", {"Host": "evil.example"}) == 403
        assert _request(port, f"/?token={token}", {"Host": f"evil.example:{port}", "Origin": "http://evil.example"}) == 403
        assert _request(port, "/", {"Host": here}) in (302, 403)  # no token: to the login page, never the app
        assert _request(port, "/?token=wrong", {"Host": here}) in (302, 403)
        kernels = re.findall(r"Kernel started: ([0-9a-f-]{36})", output())
        assert kernels
        upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                   "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
        channels = f"/api/kernels/{kernels[-1]}/channels"
        assert _request(port, f"{channels}?token={token}", {**upgrade, "Host": "evil.example",
                                                            "Origin": "http://evil.example"}) == 403
        assert _request(port, channels, {**upgrade, "Host": here, "Origin": f"http://{here}"}) == 403  # no token
        # the browser's cookie from the token login: same origin opens the kernel, another origin does not
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", f"/?token={token}", headers={"Host": here})
        response = connection.getresponse()
        cookie = "; ".join(c.split(";")[0] for c in response.headers.get_all("Set-Cookie") or [])
        response.read()
        connection.close()
        assert cookie
        assert _request(port, channels, {**upgrade, "Host": here, "Origin": "http://evil.example", "Cookie": cookie}) == 403
        assert _request(port, channels, {**upgrade, "Host": here, "Origin": f"http://{here}", "Cookie": cookie}) == 101
