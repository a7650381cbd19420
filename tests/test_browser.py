"""A real browser drives the apps served by ``hipanalytics app`` (Voilà).

Uses playwright-python with Debian's chromium (``executable_path``; no browser download). Locally
the test skips loudly when chromium is missing; in CI (``CI=true``) a missing browser fails it.
Every page is offline: each request to anything but this machine is blocked and recorded, and
the tests assert that none was attempted (a clinic laptop without internet, a hospital network
that blocks CDNs). The screenshots are kept in ``build/test-artifacts/``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

import pytest

from hipanalytics.program import Program, program_from_record
from hipanalytics.store import Store

from .system import chromium

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "build" / "test-artifacts"


def _offline_page(browser, **options):
    """A page on which every request to another host is blocked; returns it and the blocked URLs."""
    from urllib.parse import urlsplit

    blocked: list[str] = []
    context = browser.new_context(**options)

    def guard(route):
        url = route.request.url
        if urlsplit(url).scheme in ("http", "https", "ws", "wss") and urlsplit(url).hostname not in (
                "127.0.0.1", "localhost", "::1"):
            blocked.append(url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", guard)
    return context.new_page(), blocked


def _icons_drawn(page) -> bool:
    """Whether the buttons' Font Awesome icons are drawn with the icon font served by Voilà."""
    return page.evaluate("""async () => {
        await document.fonts.ready;
        const icon = document.querySelector('button i.fa');
        if (!icon) return false;
        const family = getComputedStyle(icon, '::before').fontFamily;
        return family.includes('Font Awesome') && document.fonts.check('900 16px "Font Awesome 5 Free"');
    }""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served_builder(tmp_path):
    """The builder app on a free localhost port, working on a fresh store with two patients."""
    yield from _serve("builder", tmp_path)


def _serve(app: str, tmp_path: Path):
    store_path = tmp_path / "clinic.sqlite"
    with Store(store_path) as store:
        store.add_records("patients", [{"patient_id": "P001", "birth_year": 1970, "involved_side": "right"},
                                       {"patient_id": "P002", "birth_year": 1985, "involved_side": "left"}])
    port = _free_port()
    log = (tmp_path / "voila.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "hipanalytics.cli", "app", app, "--store", str(store_path),
         "--port", str(port), "--no-browser"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 90
    while True:
        try:
            token = re.search(r"/\?token=([\w-]+) ", (tmp_path / "voila.log").read_text())
            if token is None:
                raise OSError("no token printed yet")
            url = f"http://127.0.0.1:{port}/?token={token.group(1)}"
            urllib.request.urlopen(url, timeout=5).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                os.killpg(server.pid, signal.SIGTERM)
                pytest.fail(f"Voilà did not start:\n{(tmp_path / 'voila.log').read_text()}")
            time.sleep(0.5)
    yield url, store_path
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
    log.close()


def test_a_clinician_builds_and_saves_a_three_per_week_program_in_a_real_browser(served_builder):
    browser_path = chromium()
    from playwright.sync_api import expect, sync_playwright

    url, store_path = served_builder
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox", "--disable-gpu"])
        page, blocked = _offline_page(browser, viewport={"width": 1200, "height": 1750}, accept_downloads=True)
        try:
            page.goto(url)
            expect(page.get_by_text("Program builder")).to_be_visible(timeout=90_000)
            page.locator(".hip-patient select").select_option("P002")
            page.get_by_role("button", name="Breakouts 3x/week").click()
            page.get_by_text("90/90 hip internal rotation contract-relax (PAILs)").click()
            sets = page.locator(".hip-dose-ninety-ninety-ir-pails-sets input")
            sets.fill("4")
            sets.press("Tab")
            start = page.locator(".hip-start input")
            start.fill("2026-11-30")
            start.press("Tab")
            weeks = page.locator(".hip-weeks input")
            weeks.fill("8")
            weeks.press("Tab")
            expect(page.get_by_text("Breakouts 3x/week: Mon 30 Nov 2026 to Sun 24 Jan 2027")).to_be_visible()
            expect(page.get_by_role("row", name="with breakouts 3 3 3 3 3 3 3 3 24")).to_be_visible()
            page.get_by_role("button", name="Save program").click()
            expect(page.get_by_text("Saved program P002-20261130-three-per-week")).to_be_visible(timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "program-builder.png"), full_page=True)
            page.get_by_role("button", name="Handout and calendar").click()
            with page.expect_download() as download:
                page.get_by_text("Handout (PDF)").click()
            assert download.value.suggested_filename == "P002-20261130-three-per-week-handout.pdf"
            pdf = Path(download.value.path()).read_bytes()
            with page.expect_download() as download:
                page.get_by_text("Calendar (.ics)").click()
            ics = Path(download.value.path()).read_bytes()
            assert _icons_drawn(page), "the buttons' icons are not drawn: Font Awesome did not load from Voilà"
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "program-builder-failed.png"), full_page=True)
            raise
        finally:
            browser.close()

    assert blocked == [], f"the app tried to load from other hosts: {blocked}"
    assert pdf.startswith(b"%PDF-")
    assert ics.count(b"BEGIN:VEVENT") == 8 * 7 * 2  # two sessions a day for eight weeks
    with Store(store_path, create=False) as store:
        saved = store.read("programs")
    assert saved["program_id"].tolist() == ["P002-20261130-three-per-week"]
    program = program_from_record(saved.iloc[0])
    assert (program.schedule, program.start_date, program.end_date) == (
        "three-per-week", date(2026, 11, 30), date(2027, 1, 24))
    assert program.choices == {"ninety-ninety": "ninety-ninety-ir-pails"}
    assert str(program.dose("ninety-ninety-ir-pails").sets) == "4"


@pytest.mark.parametrize(("app", "title"), [("entry", "Record a visit"), ("dashboard", "Patient dashboard")])
def test_the_entry_and_dashboard_apps_render_in_a_real_browser(app, title, tmp_path):
    browser_path = chromium()
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    served = _serve(app, tmp_path)
    url, store_path = next(served)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox", "--disable-gpu"])
            page, blocked = _offline_page(browser, viewport={"width": 1200, "height": 1400})
            page.goto(url)
            expect(page.get_by_text(title, exact=True).first).to_be_visible(timeout=90_000)
            if app == "dashboard":  # an entry saved elsewhere appears without a click
                expect(page.get_by_text("No hip IR measurements yet")).to_be_visible()
                with Store(store_path, create=False) as store:
                    store.add_records("measurements", [{
                        "patient_id": "P001", "measured_on": date.today(), "side": "right",
                        "motion": "internal_rotation", "position": "seated_90", "mode": "active",
                        "instrument": "inclinometer", "degrees": 27}])
                expect(page.get_by_text("Right hip IR measured once so far: 27.0 degrees;")).to_be_visible(timeout=30_000)
                # each chart is an image a screen reader can name: its alt text says what it shows
                expect(page.get_by_role("img", name="Right hip IR measured once: 27.0 degrees, above the breakout "
                                                     "sessions planned and done each week.")).to_be_visible()
            if app == "entry":  # both hips of a visit in one save, then a session whose pain flags at once
                expect(page.get_by_text("(involved)")).to_be_visible()
                page.locator(".hip-trial-left-1 input").fill("38")
                page.locator(".hip-trial-right-1 input").fill("31")
                page.locator(".hip-trial-right-2 input").fill("32")
                page.get_by_role("button", name="Save measurement").click()
                expect(page.get_by_text("Saved 3 trials of hip IR: left 38 degrees; right 31, 32 degrees.")).to_be_visible(
                    timeout=30_000)
                with Store(store_path, create=False) as store:  # P001 on daily breakouts since last week
                    store.save_program(Program(patient_id="P001", protocol="hip-ir-breakouts", schedule="daily",
                                               start_date=date.today() - timedelta(days=7), weeks=4))
                page.get_by_role("tab", name="Session log").click()
                page.get_by_placeholder("0-10").nth(0).fill("3")
                page.get_by_placeholder("0-10").nth(1).fill("8")
                page.get_by_role("button", name="Save session").click()
                expect(page.get_by_role("alert")).to_contain_text("Pain flag on daily breakouts since",
                                                                  timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / f"{app}.png"), full_page=True)
            assert "Traceback" not in page.content()
            assert _icons_drawn(page), "the buttons' icons are not drawn: Font Awesome did not load from Voilà"
            browser.close()
        assert blocked == [], f"the app tried to load from other hosts: {blocked}"
    finally:
        next(served, None)
    if app == "entry":
        with Store(store_path, create=False) as store:
            assert store.read("measurements")[["side", "degrees"]].values.tolist() == [
                ["left", 38.0], ["right", 31.0], ["right", 32.0]]
            assert store.read("sessions")[["pain_before", "pain_after"]].values.tolist() == [[3, 8]]
