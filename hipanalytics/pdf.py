"""PDF from self-contained HTML, with WeasyPrint (no TeX, no browser).

WeasyPrint is a Python package, but it draws text with system libraries: Pango (with HarfBuzz
and Fontconfig) and at least one font. Where one is missing, :func:`html_to_pdf` raises
:class:`~hipanalytics.errors.MissingDependencyError` naming the library and the packages that
provide it, instead of an ``OSError`` from deep inside the import; HTML output never needs them.
HarfBuzz-Subset is optional (WeasyPrint then embeds whole fonts: larger files, same pages).
"""

from __future__ import annotations

from .errors import MissingDependencyError

__all__ = ["PDF_SYSTEM_PACKAGES", "html_to_pdf", "layout_overflow", "printed_pages"]

PDF_SYSTEM_PACKAGES = {
    "debian": "libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fontconfig fonts-dejavu-core",
    "fedora": "pango harfbuzz fontconfig dejavu-sans-fonts",
    "macos": "brew install pango",
}
"""System packages that WeasyPrint's PDF output needs, per platform (also listed in the README)."""


def _weasyprint():
    try:
        import weasyprint
    except OSError as exc:  # a shared library that cffi could not open
        raise MissingDependencyError(
            f"PDF output needs the Pango text library, which could not be loaded ({exc}). "
            f"Install it: Debian/Ubuntu `apt-get install {PDF_SYSTEM_PACKAGES['debian']}`; "
            f"Fedora `dnf install {PDF_SYSTEM_PACKAGES['fedora']}`; macOS `{PDF_SYSTEM_PACKAGES['macos']}`. "
            "HTML output works without it."
        ) from None
    return weasyprint


def html_to_pdf(document: str) -> tuple[bytes, int]:
    """Render a self-contained HTML document as A4 PDF bytes, and say how many pages it has.

    Any attempt to load a resource (an image, a style sheet, a font by URL) is refused: what we
    print is self-contained by design, so a fetch would be a bug, and nothing leaves the machine.

    Parameters
    ----------
    document : str
        A complete HTML document (its ``@page`` rule sets the paper size).

    Returns
    -------
    (bytes, int)
        The PDF and its number of pages.

    Raises
    ------
    MissingDependencyError
        When WeasyPrint's system libraries are missing (the message names the packages).
    ValueError
        When the document tries to load anything but an embedded ``data:`` URI.

    Examples
    --------
    >>> pdf, pages = html_to_pdf("<!DOCTYPE html><html><body><p>Hip IR</p></body></html>")
    >>> pdf[:5], pages
    (b'%PDF-', 1)
    """
    rendered = _layout(document)
    return rendered.write_pdf(), len(rendered.pages)


def _layout(document: str, font: str | None = None):
    """The document laid out on pages as it prints, offline: only data: URIs (embedded chart
    images) are read, any other URL stops it (ValueError). ``font`` forces one font family.
    HTML size attributes count, as in a browser (an image's ``width``: the size it prints at)."""
    weasyprint = _weasyprint()
    offline = weasyprint.URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)
    sheets = [weasyprint.CSS(string=f'* {{ font-family: "{font}" !important; }}')] if font else []
    try:
        return weasyprint.HTML(string=document, url_fetcher=offline).render(stylesheets=sheets,
                                                                            presentational_hints=True)
    except weasyprint.urls.FatalURLFetchingError as exc:
        raise ValueError(f"{exc}; printed documents must not fetch anything") from None


def layout_overflow(document: str, *, font: str | None = None) -> list[float]:
    """How far the widest box of each printed page reaches past the page's content area (CSS px).

    Lays the document out as :func:`html_to_pdf` prints it and walks every box of every page;
    0 everywhere means nothing is cut off at the right edge. ``font`` forces one font family on
    every element, to check a layout against fonts wider than the one this machine would pick.

    Examples
    --------
    >>> layout_overflow('<body><p>fits</p></body>')
    [0.0]
    >>> layout_overflow('<body><table style="width: 300mm"><tr><td>wide</td></tr></table></body>')[0] > 0
    True
    """
    worst = []
    for page in _layout(document, font).pages:
        box = page._page_box
        right = box.content_box_x() + box.width
        reach = [b.border_box_x() + b.border_width() for b in box.descendants() if hasattr(b, "border_box_x")]
        worst.append(max([0.0] + [r - right for r in reach]))
    return worst


_BLOCKS = {"h1", "h2", "h3", "h4", "p", "ul", "ol", "table", "thead", "img", "footer"}


def printed_pages(document: str, *, font: str | None = None) -> list[dict]:
    """Where a document's headings, paragraphs, lists, tables (and their header rows), images and
    footer fall when printed.

    Lays the document out as :func:`html_to_pdf` prints it, to check a layout without reading
    the PDF: a heading left alone at the foot of a page, a chart away from its heading, a page
    left mostly blank.

    Parameters
    ----------
    document : str
        A complete HTML document.
    font : str, optional
        One font family forced on every element (see :func:`layout_overflow`).

    Returns
    -------
    list of dict
        One per page: ``height`` (of the content area, CSS px), ``filled`` (the share of it down
        to the end of the last block) and ``blocks``, in order: one dict per element shown on the
        page with ``tag``, ``top`` and ``bottom`` (CSS px from the top of the content area; an
        element split over pages is a block on each, a table's ``thead`` too where its header
        row is repeated), ``width``, ``text`` (the element's text, an image's alt text) and
        ``src`` (an image's source, else None).

    Examples
    --------
    >>> pages = printed_pages('<body><h1>Hip IR</h1><p>one</p><p style="break-before: page">two</p></body>')
    >>> [[(b["tag"], b["text"]) for b in page["blocks"]] for page in pages]
    [[('h1', 'Hip IR'), ('p', 'one')], [('p', 'two')]]
    >>> pages[0]["filled"] < 0.2
    True
    """
    pages = []
    for page in _layout(document, font).pages:
        box = page._page_box
        top = box.content_box_y()
        blocks: dict[int, dict] = {}  # by element: a table is a wrapper box and a table box
        for b in box.descendants():
            if getattr(b, "element_tag", None) not in _BLOCKS or not hasattr(b, "border_box_y"):
                continue
            y0, y1 = b.border_box_y() - top, b.border_box_y() + b.border_height() - top
            seen = blocks.get(id(b.element))
            if seen is not None:
                seen["top"], seen["bottom"] = min(seen["top"], y0), max(seen["bottom"], y1)
                continue
            image = b.element_tag == "img"
            text = b.element.get("alt", "") if image else " ".join(" ".join(b.element.itertext()).split())
            blocks[id(b.element)] = {"tag": b.element_tag, "top": y0, "bottom": y1, "width": b.border_width(),
                                     "text": text, "src": b.element.get("src") if image else None}
        ordered = sorted(blocks.values(), key=lambda block: block["top"])
        end = max((block["bottom"] for block in ordered), default=0.0)
        pages.append({"height": box.height, "filled": end / box.height, "blocks": ordered})
    return pages
