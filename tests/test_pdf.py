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


def test_printed_pages_finds_a_gap_a_heading_cut_off_from_its_content_and_inserted_hyphens():
    from hipanalytics.pdf import printed_pages as page_flow

    page = "<style>@page { size: A7; margin: 5mm } body { margin: 0; font-size: 8pt }</style>"

    def block(mm: int) -> str:
        return f'<div style="height: {mm}mm; break-inside: avoid; border: 1px solid">a block that cannot be split</div>'

    gap = page_flow(f"{page}<p>first lines</p>{block(92)}")  # A7: 95 mm of content height
    assert len(gap) == 2 and gap[0].filled < 0.2 and not gap[0].forced_break_after
    spacer = '<div style="height: 85mm"></div>'
    stranded = page_flow(f'{page}{spacer}<h3 style="break-after: auto">Exercise 2</h3>{block(80)}')
    assert stranded[0].heading_at_bottom == "Exercise 2" and stranded[1].heading_at_bottom is None
    kept = page_flow(f'{page}{spacer}<h3 style="break-after: avoid">Exercise 2</h3>{block(80)}')
    assert [p.heading_at_bottom for p in kept] == [None, None]
    words = page_flow(f'{page}<p lang="en" style="width: 12mm; hyphens: auto">Movement Sequence</p>')
    assert words[0].hyphenated and all(line.endswith("\u2010") for line in words[0].hyphenated)
    assert not page_flow(f'{page}<p lang="en" style="width: 12mm; hyphens: manual">Movement Sequence</p>')[0].hyphenated
    broken = page_flow(f'{page}<p style="width: 9mm; overflow-wrap: anywhere">Wednesday and Movement Sequence</p>')
    assert broken[0].broken_words and all("|" in w for w in broken[0].broken_words)
    whole = page_flow(f'{page}<p style="width: 30mm; overflow-wrap: anywhere">Wednesday and Movement Sequence</p>')
    assert whole[0].broken_words == ()  # lines break between words only
