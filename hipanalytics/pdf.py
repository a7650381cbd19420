"""PDF from self-contained HTML, with WeasyPrint (no TeX, no browser).

WeasyPrint is a Python package, but it draws text with system libraries: Pango (with HarfBuzz
and Fontconfig) and at least one font. Where one is missing, :func:`html_to_pdf` raises
:class:`~hipanalytics.errors.MissingDependencyError` naming the library and the packages that
provide it, instead of an ``OSError`` from deep inside the import; HTML output never needs them.
HarfBuzz-Subset is optional (WeasyPrint then embeds whole fonts: larger files, same pages).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import MissingDependencyError

__all__ = ["PDF_SYSTEM_PACKAGES", "PageFlow", "html_to_pdf", "layout_overflow", "page_flow"]

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
    weasyprint = _weasyprint()
    # Only data: URIs (embedded chart images) are read; any other URL stops the rendering.
    offline = weasyprint.URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)
    try:
        rendered = weasyprint.HTML(string=document, url_fetcher=offline).render()
    except weasyprint.urls.FatalURLFetchingError as exc:
        raise ValueError(f"{exc}; printed documents must not fetch anything") from None
    return rendered.write_pdf(), len(rendered.pages)


def _render(document: str, font: str | None):
    """The document laid out as :func:`html_to_pdf` prints it; ``font`` forces one family everywhere."""
    weasyprint = _weasyprint()
    offline = weasyprint.URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)
    sheets = [weasyprint.CSS(string=f'* {{ font-family: "{font}" !important; }}')] if font else []
    return weasyprint.HTML(string=document, url_fetcher=offline).render(stylesheets=sheets)


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
    for page in _render(document, font).pages:
        box = page._page_box
        right = box.content_box_x() + box.width
        reach = [b.border_box_x() + b.border_width() for b in box.descendants() if hasattr(b, "border_box_x")]
        worst.append(max([0.0] + [r - right for r in reach]))
    return worst


@dataclass(frozen=True)
class PageFlow:
    """How one printed page is filled (see :func:`page_flow`)."""

    fill: float
    """Share of the page's content height down to its lowest line, image or table cell (0-1)."""
    forced_break_after: bool
    """The next page starts an element that asks for a page of its own (``break-before: page``)."""
    heading_at_bottom: str | None
    """The text of a heading (h1-h4) that is the last line of the page, cut off from its content."""
    hyphenated: tuple[str, ...]
    """Lines that end in a hyphen the layout inserted (``hyphens: auto``)."""
    broken_words: tuple[str, ...]
    """Words split across two lines without a hyphen (``overflow-wrap: anywhere``), as ``Wednesda|y``."""


_HYPHENS = ("\u2010", "\u00ad")  # WeasyPrint's default hyphenate-character, a soft hyphen


def page_flow(document: str, *, font: str | None = None) -> list[PageFlow]:
    """How each printed page of a document is filled, to find gaps, stranded headings and hyphens.

    Lays the document out as :func:`html_to_pdf` prints it (``font`` as in :func:`layout_overflow`).
    A page that ends well before its bottom although the next page is not a new sheet by design
    (``forced_break_after``) shows a block that did not fit and left a gap.

    Returns
    -------
    list of PageFlow
        One per page, in order.

    Examples
    --------
    >>> doc = ('<style>@page { size: A5 } h2 { break-before: page }</style>'
    ...        '<p>one</p><h2>A sheet of its own</h2><p>two</p>')
    >>> [(round(p.fill, 2), p.forced_break_after, p.heading_at_bottom) for p in page_flow(doc)]
    [(0.05, True, None), (0.13, False, None)]
    >>> page_flow('<p style="width: 3em; hyphens: auto" lang="en">internationalisation</p>')[0].hyphenated[:1]
    ('inter\u2010',)
    >>> page_flow('<p style="width: 2em; overflow-wrap: anywhere">Wednesday</p>')[0].broken_words[:1]
    ('We|dne',)
    """
    from weasyprint.formatting_structure import boxes

    pages = _render(document, font).pages
    flows = []
    for number, page in enumerate(pages):
        root = page._page_box
        top, height = root.content_box_y(), root.height
        flow = [b for child in root.children if not isinstance(child, boxes.MarginBox)  # not running footers
                for b in child.descendants()]
        content = [b for b in flow if isinstance(b, (boxes.LineBox, boxes.ReplacedBox, boxes.TableCellBox))]
        bottom = max((b.position_y + b.margin_height() for b in content), default=top)
        lines = [b for b in content if isinstance(b, boxes.LineBox)]
        texts = ["".join(t.text for t in line.descendants() if isinstance(t, boxes.TextBox)) for line in lines]
        last_heading = None
        if lines:
            last = max(lines, key=lambda b: b.position_y + b.margin_height())
            parent = next((b for b in flow if isinstance(b, boxes.BlockBox)
                           and getattr(b, "element_tag", None) in ("h1", "h2", "h3", "h4") and last in b.descendants()),
                          None)
            if parent is not None:
                last_heading = texts[lines.index(last)].strip()
        flows.append(PageFlow(
            fill=(bottom - top) / height,
            forced_break_after=number + 1 < len(pages) and _starts_own_page(pages[number + 1]._page_box),
            heading_at_bottom=last_heading,
            hyphenated=tuple(t.rstrip() for t in texts if t.rstrip().endswith(_HYPHENS)),
            broken_words=_broken_words(flow, boxes),
        ))
    return flows


def _broken_words(flow, boxes) -> tuple[str, ...]:
    """Pieces of a word of a block's own text that end one line and start the next."""
    def text(line) -> str:
        return "".join(t.text for t in line.descendants() if isinstance(t, boxes.TextBox))

    found = []
    for block in flow:
        lines = [c for c in getattr(block, "children", ()) if isinstance(c, boxes.LineBox)]
        element = getattr(block, "element", None)
        if len(lines) < 2 or element is None:
            continue
        words = set(_text_of(element).split())
        for first, second in zip(lines, lines[1:]):
            head, tail = text(first).split(), text(second).split()
            if head and tail and head[-1] not in words and any(head[-1] + tail[0] in w for w in words):
                found.append(f"{head[-1]}|{tail[0]}")
    return tuple(found)


def _starts_own_page(root) -> bool:
    """Whether the page begins with the start of an element that has ``break-before: page``."""
    for box in root.descendants():
        element = getattr(box, "element", None)
        if element is None or getattr(box, "element_tag", None) in ("html", "body"):
            continue
        if box.style["break_before"] in ("page", "left", "right", "recto", "verso"):
            first = next(iter(element), None)  # its first child element starts on this page: not a continuation
            return first is None or any(getattr(b, "element", None) is first for b in box.descendants())
        return False
    return False


def _text_of(element) -> str:
    """An element's text, a line break (``<br>``) counting as a space."""
    parts = [element.text or ""]
    for child in element:
        parts += [" " if str(child.tag).endswith("br") else _text_of(child), child.tail or ""]
    return "".join(parts)
