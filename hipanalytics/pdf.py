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

__all__ = ["PDF_SYSTEM_PACKAGES", "PrintedPage", "html_to_pdf", "layout_overflow", "printed_pages"]

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
_HEADINGS = {"h1", "h2", "h3", "h4"}
_HYPHENS = ("\u2010", "\u00ad")  # WeasyPrint's default hyphenate-character, a soft hyphen


@dataclass(frozen=True)
class PrintedPage:
    """One printed page of a document (see :func:`printed_pages`)."""

    height: float
    """Height of the page's content area (CSS px)."""
    filled: float
    """Share of the content height down to the lowest line, image, table cell or block (0-1)."""
    blocks: list[dict]
    """The elements shown on the page, in order: ``tag``, ``top`` and ``bottom`` (CSS px from the
    top of the content area; an element split over pages is a block on each, a table's ``thead``
    too where its header row is repeated), ``width``, ``text`` (an image's alt text) and ``src``
    (an image's source, else None)."""
    forced_break_after: bool
    """The next page starts an element that asks for a page of its own (``break-before: page``)."""
    heading_at_bottom: str | None
    """The text of a heading (h1-h4) that is the last line of the page, cut off from its content."""
    hyphenated: tuple[str, ...]
    """Lines that end in a hyphen the layout inserted (``hyphens: auto``)."""
    broken_words: tuple[str, ...]
    """Words split across two lines without a hyphen (``overflow-wrap: anywhere``), as ``Wednesda|y``."""


def printed_pages(document: str, *, font: str | None = None) -> list[PrintedPage]:
    """Where a document's headings, paragraphs, lists, tables (and their header rows), images and
    footer fall when printed, how full each page is, and what breaks badly: a heading left alone
    at the foot of a page, a gap before a block that did not fit, inserted hyphens, split words.

    Lays the document out as :func:`html_to_pdf` prints it, to check a layout without reading the
    PDF. A page that ends well before its bottom although the next page is not a new sheet by
    design (``forced_break_after``) shows a block that did not fit and left a gap.

    Parameters
    ----------
    document : str
        A complete HTML document.
    font : str, optional
        One font family forced on every element (see :func:`layout_overflow`).

    Returns
    -------
    list of PrintedPage
        One per page, in order.

    Examples
    --------
    >>> pages = printed_pages('<body><h1>Hip IR</h1><p>one</p><p style="break-before: page">two</p></body>')
    >>> [[(b["tag"], b["text"]) for b in page.blocks] for page in pages]
    [[('h1', 'Hip IR'), ('p', 'one')], [('p', 'two')]]
    >>> pages[0].filled < 0.2, pages[0].forced_break_after
    (True, True)
    >>> doc = '<style>@page { size: A5 }</style><p style="width: 3em; hyphens: auto" lang="en">internationalisation</p>'
    >>> printed_pages(doc)[0].hyphenated[:1]
    ('inter\u2010',)
    >>> printed_pages('<p style="width: 2em; overflow-wrap: anywhere">Wednesday</p>')[0].broken_words[:1]
    ('We|dne',)
    """
    from weasyprint.formatting_structure import boxes

    laid = _layout(document, font).pages
    pages = []
    for number, page in enumerate(laid):
        root = page._page_box
        top, height = root.content_box_y(), root.height
        flow = [b for child in root.children if not isinstance(child, boxes.MarginBox)  # not running footers
                for b in child.descendants()]
        blocks: dict[int, dict] = {}  # by element: a table is a wrapper box and a table box
        for b in flow:
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
        content = [b for b in flow if isinstance(b, (boxes.LineBox, boxes.ReplacedBox, boxes.TableCellBox))]
        bottom = max([b.position_y + b.margin_height() - top for b in content]
                     + [block["bottom"] for block in blocks.values()], default=0.0)
        lines = [b for b in content if isinstance(b, boxes.LineBox)]
        texts = ["".join(t.text for t in line.descendants() if isinstance(t, boxes.TextBox)) for line in lines]
        heading = None
        if lines:
            last = max(lines, key=lambda b: b.position_y + b.margin_height())
            parent = next((b for b in flow if isinstance(b, boxes.BlockBox)
                           and getattr(b, "element_tag", None) in _HEADINGS and last in b.descendants()), None)
            if parent is not None:
                heading = texts[lines.index(last)].strip()
        pages.append(PrintedPage(
            height=height, filled=bottom / height,
            blocks=sorted(blocks.values(), key=lambda block: block["top"]),
            forced_break_after=number + 1 < len(laid) and _starts_own_page(laid[number + 1]._page_box),
            heading_at_bottom=heading,
            hyphenated=tuple(t.rstrip() for t in texts if t.rstrip().endswith(_HYPHENS)),
            broken_words=_broken_words(flow, boxes),
        ))
    return pages


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
