"""PDF output: offline, and a precise message when WeasyPrint's system libraries are missing."""

from __future__ import annotations

import importlib.abc
import sys

import pytest

from hipanalytics.errors import MissingDependencyError
from hipanalytics.pdf import PDF_SYSTEM_PACKAGES, html_to_pdf


class _NoPango(importlib.abc.MetaPathFinder):
    """Import weasyprint as on a machine without Pango: cffi's dlopen raises OSError."""

    def find_spec(self, name, path=None, target=None):
        if name == "weasyprint" or name.startswith("weasyprint."):
            raise OSError("cannot load library 'libpango-1.0-0': libpango-1.0-0: cannot open shared object file")
        return None


def test_a_missing_pango_is_named_with_the_packages_that_provide_it(monkeypatch):
    for name in [m for m in sys.modules if m == "weasyprint" or m.startswith("weasyprint.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_NoPango(), *sys.meta_path])
    with pytest.raises(MissingDependencyError) as info:
        html_to_pdf("<p>x</p>")
    message = str(info.value)
    assert "Pango" in message and "libpango-1.0-0: cannot open shared object file" in message
    assert PDF_SYSTEM_PACKAGES["debian"] in message and "HTML output works without it" in message


def test_a_printed_document_never_fetches_anything():
    with pytest.raises(ValueError, match="must not fetch anything"):
        html_to_pdf('<html><body><img src="https://example.org/tracker.png"></body></html>')
    with pytest.raises(ValueError, match="must not fetch anything"):
        html_to_pdf('<html><head><link rel="stylesheet" href="file:///etc/passwd"></head><body>x</body></html>')
    tiny_png = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
    pdf, pages = html_to_pdf(f'<html><body><img src="data:image/png;base64,{tiny_png}"></body></html>')
    assert pdf.startswith(b"%PDF-") and pages == 1
